"""Model architectures. ``ARCHITECTURES`` maps the ``architecture`` field of a checkpoint's
config to its (config class, model class)."""

from nucfm.models.base import NucleotideLM
from nucfm.models.config import TransformerConfig
from nucfm.models.transformer import Transformer

ARCHITECTURES: dict[str, type[NucleotideLM]] = {
    "transformer": Transformer,
}

__all__ = ["ARCHITECTURES", "NucleotideLM", "Transformer", "TransformerConfig"]
