"""Model architectures. ``ARCHITECTURES`` maps the ``architecture`` field of a checkpoint's
config to its model class (whose ``config_class`` parses the rest)."""

from nucfm.models.base import NucleotideLM
from nucfm.models.config import ConvNetConfig, TransformerConfig
from nucfm.models.convnet import ConvNet
from nucfm.models.transformer import Transformer

ARCHITECTURES: dict[str, type[NucleotideLM]] = {
    "transformer": Transformer,
    "convnet": ConvNet,
}

__all__ = ["ARCHITECTURES", "ConvNet", "ConvNetConfig", "NucleotideLM", "Transformer", "TransformerConfig"]
