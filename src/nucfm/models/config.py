"""Frozen model configurations, stored inside every checkpoint (``config.json``).

A checkpoint rebuilds its model from this alone: architecture, sizes and alphabet.
``from_dict`` rejects unknown keys so a typo never silently becomes a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from nucfm.errors import InputError


def _coerce(value, hint, key: str, what: str):
    """``value`` as the type ``hint`` of a config field, or an InputError naming the key.
    YAML 1.1 reads ``1e-3`` as a string: numbers written so become numbers here."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, what) if len(inner) == 1 else value
    bad = InputError(f"{what} {key}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if hint is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        raise bad
    if hint is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if origin in (tuple, list) or hint in (tuple, list):
        if isinstance(value, (list, tuple)):
            return value
        raise bad
    if origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
        raise bad
    return value


def from_dict_strict(cls, d: dict[str, Any], what: str):
    """``cls(**d)`` for a dataclass ``cls``, refusing keys it does not have, so a typo in a
    config file never silently becomes a default, and values of the wrong type (``steps: abc``),
    numbers written as text (``lr: 1e-3``) becoming numbers. The one strict check of the package.

    >>> from_dict_strict(DecodeOptions, {"threshold": "3e-1"}, "decoding option").threshold
    0.3
    """
    if not isinstance(d, dict):
        raise InputError(f"{what}s must be a mapping of keys to values, not {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise InputError(f"unknown {what} keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], k, what) for k, v in d.items()})


def check_range(obj, what: str, keys, low=None, high=None, low_open: bool = False, high_open: bool = False) -> None:
    """Refuse (one-line InputError) a config value of ``keys`` outside ``[low, high]`` (open ends
    with ``low_open`` / ``high_open``); NaN is always outside.

    >>> check_range(DecodeOptions(), "decoding option", ["threshold"], 0, 0.4)
    Traceback (most recent call last):
    nucfm.errors.InputError: decoding option threshold must be in [0, 0.4], not 0.5
    """
    for key in [keys] if isinstance(keys, str) else keys:
        v = getattr(obj, key)
        ok = v == v  # NaN
        if low is not None:
            ok = ok and (v > low if low_open else v >= low)
        if high is not None:
            ok = ok and (v < high if high_open else v <= high)
        if not ok:
            lo = "(" if low_open else "["
            hi = ")" if high_open else "]"
            if low is not None and high is not None:
                rule = f"in {lo}{low}, {high}{hi}"
            elif low is not None:
                rule = f"{'>' if low_open else '>='} {low}"
            else:
                rule = f"{'<' if high_open else '<='} {high}"
            raise InputError(f"{what} {key} must be {rule}, not {v!r}")


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
        check_range(self, "model", ["num_layers", "hidden_size", "num_heads", "ffn_size", "max_len"], 1)
        check_range(self, "model", "dropout", 0, 1, high_open=True)
        check_range(self, "model", "layer_norm_eps", 0, low_open=True)
        if self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


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
        check_range(self, "model", ["num_layers", "kernel_size", "dilation_double_every", "dilation_max",
                                    "dilation_cycle", "dilation_base"], 1)
        check_range(self, "model", "hidden_size", 7)  # one-hot input of the 7-token GPN vocabulary
        check_range(self, "model", "layer_norm_eps", 0, low_open=True)

    def dilations(self) -> list[int]:
        return [min(self.dilation_max, self.dilation_base ** ((i % self.dilation_cycle) // self.dilation_double_every))
                for i in range(self.num_layers)]


@dataclass(frozen=True)
class GPNConfig(ConfigMixin):
    """The current GPN format (``gpn.model.GPNConfig``, ``model_type: GPN``): an input embedding,
    one of three encoders, a final LayerNorm and the MLM head.

    ``embedding``: ``one_hot`` (token one-hot into ``hidden_size`` channels, auxiliary features in
    the channels after the vocabulary) or ``embedding`` (a learned table; no auxiliary features).
    ``encoder``:

    * ``convnet``: blocks ``x + Dropout(Linear(GELU(conv(LN(x)))))`` then
      ``x + Linear(GELU(Linear(LN(x))))`` (``intermediate_size`` inside);
    * ``bytenet``: blocks ``x + Linear(GELU(LN(conv(GELU(LN(Linear(GELU(LN(x)))))))))`` with
      ``hidden_size // 2`` channels inside when ``slim``;
    * ``roformer``: post-LayerNorm BERT blocks with rotary position embeddings (GPN-MSA);
      ``num_heads``, ``layer_norm_eps`` (RoFormer's 1e-12), ``max_len`` (RoFormer's
      ``max_position_embeddings``: a limit of the official model, kept) and ``rotary_value`` apply.

    Convolutions: kernel ``first_kernel_size`` in layer 0 and ``rest_kernel_size`` after, dilation
    ``min(dilation_max, dilation_base ** ((i % dilation_cycle) // dilation_double_every))``,
    depthwise (groups = channels) after layer 0 when ``depthwise``. ``bias`` applies to every
    Linear/Conv/LayerNorm of the GPN modules (RoFormer's own layers always have biases).
    ``n_aux_features`` > 0: each position also carries ``n_aux_features`` input channels, the
    one-hot (``aux_features_vocab_size`` letters) of the aligned bases of the other species.
    The legacy ``GPNRoFormer`` format (the released GPN-MSA) is this model with the RoFormer
    encoder, no final LayerNorm and RoFormer's MLM head (``final_norm`` False, ``bias`` True,
    ``head_layer_norm_eps`` = ``layer_norm_eps``).
    """

    architecture: ClassVar[str] = "gpn"
    alphabet: str = "gpn"
    encoder: str = "convnet"
    embedding: str = "one_hot"
    num_layers: int = 25
    hidden_size: int = 512
    intermediate_size: int = 2048
    bias: bool = False
    mlm_head_transform: bool = True
    slim: bool = False
    first_kernel_size: int = 9
    rest_kernel_size: int = 5
    dilation_double_every: int = 1
    dilation_max: int = 9999
    dilation_cycle: int = 8
    dilation_base: int = 2
    depthwise: bool = False
    num_heads: int = 12
    max_len: int = 1536
    rotary_value: bool = False
    layer_norm_eps: float = 1e-12
    n_aux_features: int = 0
    aux_features_vocab_size: int = 5
    final_norm: bool = True  # False: the legacy GPNRoFormer (GPN-MSA's release) has no final LayerNorm
    head_layer_norm_eps: float = 1e-5  # the legacy GPNRoFormer head uses RoFormer's layer_norm_eps

    def __post_init__(self):
        if self.encoder not in GPN_ENCODERS:
            raise InputError(f"unknown GPN encoder {self.encoder!r}; known: {', '.join(GPN_ENCODERS)}")
        if self.embedding not in GPN_EMBEDDINGS:
            raise InputError(f"unknown GPN embedding {self.embedding!r}; known: {', '.join(GPN_EMBEDDINGS)}")
        check_range(self, "model", ["num_layers", "hidden_size", "intermediate_size", "first_kernel_size",
                                    "rest_kernel_size", "dilation_double_every", "dilation_max", "dilation_cycle",
                                    "dilation_base", "num_heads", "max_len", "aux_features_vocab_size"], 1)
        check_range(self, "model", "n_aux_features", 0)
        check_range(self, "model", ["layer_norm_eps", "head_layer_norm_eps"], 0, low_open=True)
        if self.n_aux_features and self.embedding != "one_hot":
            raise InputError("auxiliary features (n_aux_features > 0) need the one_hot embedding")
        if self.n_aux_features % self.aux_features_vocab_size:
            raise InputError(f"n_aux_features {self.n_aux_features} is not a multiple of aux_features_vocab_size "
                             f"{self.aux_features_vocab_size}")
        if self.encoder == "roformer" and self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")

    @property
    def n_aligned_species(self) -> int:
        """Species besides the target whose aligned bases the model reads (0: a single-genome model)."""
        return self.n_aux_features // self.aux_features_vocab_size

    def dilations(self) -> list[int]:
        return [min(self.dilation_max, self.dilation_base ** ((i % self.dilation_cycle) // self.dilation_double_every))
                for i in range(self.num_layers)]


GPN_ENCODERS = ("convnet", "bytenet", "roformer")
GPN_EMBEDDINGS = ("one_hot", "embedding")


# ---- structure models ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PairHeadConfig:
    """RNA-FM's 2D ResNet pair head (:class:`nucfm.models.heads.PairHead`)."""

    embed_dim: int = 640  # LM hidden size D; 0 = no LM embeddings (extra channels only)
    reduction: int = 128  # Linear D -> reduction before the pairwise concatenation
    channels: int = 64
    blocks: int = 32
    dilation_cycle: int = 3  # conv2 of block k is dilated 2 ** (k % dilation_cycle)
    dropout: float = 0.3
    extra_channels: int = 0  # pair features appended after the concatenation, (B, extra, L, L)

    def __post_init__(self):
        if self.embed_dim < 0 or self.reduction < 1 or self.channels < 1 or self.blocks < 0:
            raise InputError(f"invalid PairHeadConfig {self}")
        if self.embed_dim == 0 and self.extra_channels == 0:
            raise InputError("PairHeadConfig needs embeddings (embed_dim > 0) or extra_channels > 0")

    @property
    def in_channels(self) -> int:
        return (2 * self.reduction if self.embed_dim else 0) + self.extra_channels

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PairHeadConfig:
        return from_dict_strict(cls, d, "PairHeadConfig")


DECODE_METHODS = ("greedy", "matching")
PAIR_TASKS = ("structure", "contact")  # what a pair head's map means: base pairs or 3D closeness


@dataclass(frozen=True)
class DecodeOptions:
    """How a pair-probability map becomes a structure (:mod:`nucfm.tasks.structure`).

    method: ``greedy`` (highest probability first, skipping conflicts: the official RNA-FM rule)
        or ``matching`` (maximum-weight matching of the pairs above threshold, networkx).
    threshold: pairs need probability > threshold, in [0, 1].
    min_hairpin: j - i - 1 >= min_hairpin unpaired residues inside every pair.
    canonical_only: keep only AU, GC, GU pairs.
    pseudoknots: keep crossing pairs; False removes them (keeps the nested page 0).
    """

    method: str = "greedy"
    threshold: float = 0.5
    min_hairpin: int = 3
    canonical_only: bool = False
    pseudoknots: bool = True

    def __post_init__(self):
        if self.method not in DECODE_METHODS:
            raise InputError(f"unknown decoding method {self.method!r}; known: {', '.join(DECODE_METHODS)}")
        check_range(self, "decoding option", "threshold", 0, 1)
        check_range(self, "decoding option", "min_hairpin", 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DecodeOptions:
        return from_dict_strict(cls, d, "decoding option")


@dataclass(frozen=True)
class StructureConfig:
    """Everything a structure checkpoint needs to rebuild and run itself.

    head: the :class:`PairHeadConfig` as a dict.
    features: extra pair channels, in order (:mod:`nucfm.data.structure_features`).
    lm: the language model whose embeddings the head reads (a registered name or a path), or
        None for a head on pair features only; ``lm_hidden_size`` guards against a mismatch.
    lm_layer: which LM layer (RNA-FM numbering, -1 = final output).
    decode: :class:`DecodeOptions` as a dict (threshold chosen on validation data).
    task: what the pair map means: ``structure`` (base pairs, decoded into a structure) or
        ``contact`` (3D closeness, ranked; ``decode`` unused). Checkpoints written before the
        field existed are structure models.
    """

    head: dict
    features: tuple[str, ...] = ()
    lm: str | None = None
    lm_hidden_size: int = 0
    lm_layer: int = -1
    decode: dict = None  # type: ignore[assignment]
    task: str = "structure"

    def __post_init__(self):
        from nucfm.data.structure_features import check_features

        if self.task not in PAIR_TASKS:
            raise InputError(f"unknown pair task {self.task!r}; known: {', '.join(PAIR_TASKS)}")
        object.__setattr__(self, "features", check_features(self.features))
        if self.decode is None:
            object.__setattr__(self, "decode", DecodeOptions().to_dict())

    @property
    def head_config(self) -> PairHeadConfig:
        return PairHeadConfig.from_dict(self.head)

    @property
    def decode_options(self) -> DecodeOptions:
        return DecodeOptions.from_dict(self.decode)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StructureConfig:
        return from_dict_strict(cls, d, "structure-model config")
