"""Pair features for structure models: ViennaRNA base-pair probabilities and one-hot pair maps.

Inputs are sequences in structure letters (:func:`nucfm.alphabet.structure_letters`: A, C, G,
U, N); callers clean once at their boundary. Maps are (L, L) with ``[i, j]`` about residues i
and j (0-based).
"""

from __future__ import annotations

import numpy as np

from nucfm.alphabet import STRUCTURE_LETTERS
from nucfm.errors import InputError

# ViennaRNA base-pair probabilities under each energy parameter set a model may read, by feature
# name; "bpp" is RNAfold's default (Turner 2004). Langdon 2018 (parameters fitted for structure
# prediction accuracy) folds bpRNA VL0 better than the default, and the head learns from both.
BPP_PARAMS = {"bpp": "Turner2004", "bpp-langdon2018": "Langdon2018", "bpp-andronescu2007": "Andronescu2007"}
FEATURES = ("onehot", *BPP_PARAMS)  # extra pair channels a structure model may use
FEATURE_CHANNELS = {"onehot": 16, **{f: 1 for f in BPP_PARAMS}}


def check_features(features) -> tuple[str, ...]:
    """``features`` as a tuple, refusing unknown names."""
    for f in features:
        if f not in FEATURES:
            raise InputError(f"unknown pair feature {f!r}; known: {', '.join(FEATURES)}")
    return tuple(features)


def feature_channels(features) -> int:
    return sum(FEATURE_CHANNELS[f] for f in check_features(features))


def _vienna():
    try:
        import RNA
    except ImportError:
        raise InputError("this needs ViennaRNA's Python module: pip install viennarna") from None
    return RNA


_LOADED_PARAMS = ["Turner2004"]  # the set now loaded in ViennaRNA's global state


def energy_parameters(params: str = "Turner2004"):
    """ViennaRNA with the energy parameter set ``params`` loaded. Its parameters are global, so
    every nucfm fold names its set and this switches only when the set changes (a switch costs
    ~8 ms here; folding one long list under one set pays it once)."""
    RNA = _vienna()
    if _LOADED_PARAMS[0] != params:
        loader = getattr(RNA, f"params_load_RNA_{params}", None)
        if loader is None:
            raise InputError(f"unknown ViennaRNA energy parameter set {params!r}")
        loader()
        _LOADED_PARAMS[0] = params
    return RNA


def vienna_bpp(seq: str, params: str = "Turner2004") -> np.ndarray:
    """ViennaRNA (RNAfold -p, 37 °C) base-pair probabilities under the energy parameter set
    ``params`` (``Turner2004`` = RNAfold's default, ``Langdon2018``, ``Andronescu2007``):
    (L, L) float32, symmetric, zero diagonal."""
    L = len(seq)
    out = np.zeros((L, L), dtype=np.float32)
    if L < 2:
        return out
    fc = energy_parameters(params).fold_compound(seq)
    fc.pf()
    p = np.asarray(fc.bpp(), dtype=np.float32)[1:, 1:]  # (L, L) upper triangle, 1-based in Vienna
    out[:] = np.triu(p, 1)
    return out + out.T


def vienna_mfe(seq: str, params: str = "Turner2004") -> list[tuple[int, int]]:
    """Pairs of the RNAfold minimum-free-energy structure (the thermodynamic baseline) under the
    energy parameter set ``params`` (default: RNAfold's own, Turner 2004)."""
    from nucfm.io.structure import parse_dot_bracket

    if len(seq) < 2:
        return []
    db, _ = energy_parameters(params).fold(seq)
    return parse_dot_bracket(db)


def onehot_outer(seq: str) -> np.ndarray:
    """(16, L, L) float32: channel 4 a + b is 1 where residue i is nucleotide a and j is b
    (a, b in A, C, G, U; N rows are all zero).

    >>> onehot_outer("AU")[3].tolist()  # channel A-U
    [[0.0, 1.0], [0.0, 0.0]]
    """
    oh = np.zeros((4, len(seq)), dtype=np.float32)
    for k, c in enumerate(seq):
        if c in STRUCTURE_LETTERS:
            oh[STRUCTURE_LETTERS.index(c), k] = 1
    return (oh[:, None, :, None] * oh[None, :, None, :]).reshape(16, len(seq), len(seq))


def bpp_maps(seqs: list[str], features) -> list[dict[str, np.ndarray]]:
    """``{feature: (L, L)}`` per sequence for the ``bpp*`` features among ``features``, one
    energy parameter set at a time (ViennaRNA switches sets once per call)."""
    out: list[dict[str, np.ndarray]] = [{} for _ in seqs]
    for f in check_features(features):
        if f in BPP_PARAMS:
            for d, s in zip(out, seqs):
                d[f] = vienna_bpp(s, BPP_PARAMS[f])
    return out


def pair_features(seq: str, features, bpps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(C, L, L) float32 extra channels, in the order of ``features`` (``onehot`` = 16, each
    ``bpp*`` = 1). Precomputed (L, L) bpp maps may be given by feature name in ``bpps``."""
    parts = []
    for f in check_features(features):
        if f == "onehot":
            parts.append(onehot_outer(seq))
        else:
            given = (bpps or {}).get(f)
            parts.append((vienna_bpp(seq, BPP_PARAMS[f]) if given is None else given)[None])
    L = len(seq)
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, L, L), dtype=np.float32)


def bpp_to_sparse(p: np.ndarray, cutoff: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle entries above ``cutoff``: (idx (N, 2) int16, values (N,) float16)."""
    i, j = np.nonzero(np.triu(p, 1) > cutoff)
    return np.stack([i, j], 1).astype(np.int16), p[i, j].astype(np.float16)


def sparse_to_bpp(idx: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """The symmetric (L, L) float32 map of :func:`bpp_to_sparse` output."""
    out = np.zeros((length, length), dtype=np.float32)
    idx = np.asarray(idx, dtype=np.int64)
    out[idx[:, 0], idx[:, 1]] = values
    return out + out.T
