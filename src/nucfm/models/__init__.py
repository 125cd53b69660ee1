"""Model architectures. ``ARCHITECTURES`` maps the ``architecture`` field of a checkpoint's
config to its model class (whose ``config_class`` parses the rest)."""

from nucfm.models.base import NucleotideLM
from nucfm.models.config import ConvNetConfig, GPNConfig, TransformerConfig
from nucfm.models.convnet import ConvNet
from nucfm.models.gpn import GPN
from nucfm.models.transformer import Transformer

ARCHITECTURES: dict[str, type[NucleotideLM]] = {
    "transformer": Transformer,
    "convnet": ConvNet,
    "gpn": GPN,
}

__all__ = ["ARCHITECTURES", "GPN", "ConvNet", "ConvNetConfig", "GPNConfig", "NucleotideLM", "Transformer",
           "TransformerConfig"]
