"""Frozen model configurations, stored inside every checkpoint (``config.json``).

A checkpoint rebuilds its model from this alone: architecture, sizes and alphabet.
``from_dict`` rejects unknown keys so a typo never silently becomes a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from nucfm.errors import InputError


def from_dict_strict(cls, d: dict[str, Any], what: str):
    """``cls(**d)`` for a dataclass ``cls``, refusing keys it does not have, so a typo in a
    config file never silently becomes a default. The one strict-keys check of the package."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise InputError(f"unknown {what} keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
    return cls(**d)


class ConfigMixin:
    """to_dict / from_dict for frozen dataclasses, strict about keys."""

    architecture: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        d["architecture"] = self.architecture
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        d = {k: v for k, v in d.items() if k != "architecture"}
        return from_dict_strict(cls, d, f"{cls.__name__} config")


@dataclass(frozen=True)
class TransformerConfig(ConfigMixin):
    """RNA-FM / ESM-1b encoder: pre-LayerNorm blocks, learned positions, tied LM head.

    ``max_len`` counts residues; the model has ``max_len + 2`` positions (BOS and EOS) and its
    position table ``max_len + 2 + pad_id + 1`` rows (fairseq's offset convention).
    """

    architecture: ClassVar[str] = "transformer"
    alphabet: str = "rna-fm"
    num_layers: int = 12
    hidden_size: int = 640
    num_heads: int = 20
    ffn_size: int = 5120
    max_len: int = 1022
    emb_layer_norm_before: bool = False
    token_dropout: bool = False
    contact_head: bool = False
    layer_norm_eps: float = 1e-5
    dropout: float = 0.0

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


@dataclass(frozen=True)
class ConvNetConfig(ConfigMixin):
    """GPN dilated CNN (``ConvNetForMaskedLM``): one-hot input, ``num_layers`` blocks of
    ``x + LN(GELU(dilated conv(x)))`` then ``x + LN(GELU(Linear(x)))``, MLM head
    ``Linear -> GELU -> LN -> Linear``. No final LayerNorm, no position limit.

    Dilation of layer ``i`` (0-based): ``min(dilation_max, dilation_base ** ((i % dilation_cycle)
    // dilation_double_every))``; for GPN-brassicales 1, 2, 4, 8, 16, 32 repeated.
    """

    architecture: ClassVar[str] = "convnet"
    alphabet: str = "gpn"
    num_layers: int = 25
    hidden_size: int = 512
    kernel_size: int = 9
    dilation_double_every: int = 1
    dilation_max: int = 32
    dilation_cycle: int = 6
    dilation_base: int = 2
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.kernel_size < 1 or self.num_layers < 1:
            raise ValueError("kernel_size and num_layers must be positive")

    def dilations(self) -> list[int]:
        return [min(self.dilation_max, self.dilation_base ** ((i % self.dilation_cycle) // self.dilation_double_every))
                for i in range(self.num_layers)]
