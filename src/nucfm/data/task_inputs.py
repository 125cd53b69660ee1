"""Per-residue input channels of task models, and the binding-site transforms of CLIP data.

Every channel is an (L, C) float32 array aligned with the cleaned sequence
(:func:`clean`: upper case, T->U, gaps removed, other letters N), so LM embeddings, one-hot and
structure channels line up residue by residue:

* ``onehot``   (4): A, C, G, U; N is all zeros;
* ``position`` (4): distance to the 3' end / 100 and that distance modulo 3 as a one-hot (where
  a start codon sits relative to the end: what makes 5' UTR ribosome load position-dependent,
  for a head that pools over any length);
* ``unpaired`` (1): ViennaRNA (Turner 2004, 37 °C) probability that the residue is unpaired.

CLIP sets (GraphProt) mark the binding site in UPPER case inside lowercase flanks, always at the
same place: :func:`site_window` cuts the site plus a random stretch of flank on each side, so the
site edges no longer sit at fixed positions (the leak control of RBP-24).
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from nucfm.alphabet import structure_letters
from nucfm.errors import InputError

CHANNELS = {"onehot": 4, "position": 4, "unpaired": 1}
_ONEHOT = {c: i for i, c in enumerate("ACGU")}


def clean(seq: str) -> str:
    """The letters every task input is built from (``structure_letters`` without gaps)."""
    return structure_letters(seq, drop_gaps=True)


def check_inputs(inputs) -> tuple[str, ...]:
    inputs = tuple(inputs)
    bad = [f for f in inputs if f not in CHANNELS and f != "lm"]
    if bad:
        raise InputError(f"unknown task input(s) {', '.join(bad)}; known: lm, {', '.join(CHANNELS)}")
    return inputs


def onehot(seq: str) -> np.ndarray:
    out = np.zeros((len(seq), 4), np.float32)
    for i, c in enumerate(seq):
        k = _ONEHOT.get(c)
        if k is not None:
            out[i, k] = 1
    return out


def position(seq: str) -> np.ndarray:
    d = np.arange(len(seq), 0, -1)  # 1 = the last residue (next to the start codon of a 5' UTR)
    out = np.zeros((len(seq), 4), np.float32)
    out[:, 0] = d / 100.0
    out[np.arange(len(seq)), 1 + d % 3] = 1
    return out


def unpaired(seq: str) -> np.ndarray:
    from nucfm.data.structure_features import vienna_bpp

    return (1 - vienna_bpp(seq).sum(1)).clip(0, 1).astype(np.float32)[:, None]


def channels(seq: str, inputs, unpaired_probs: np.ndarray | None = None) -> np.ndarray:
    """(L, C) non-LM channels of a cleaned sequence, in the order of ``inputs``."""
    parts = []
    for f in inputs:
        if f == "onehot":
            parts.append(onehot(seq))
        elif f == "position":
            parts.append(position(seq))
        elif f == "unpaired":
            parts.append(unpaired(seq) if unpaired_probs is None else unpaired_probs.reshape(-1, 1))
    return np.concatenate(parts, 1) if parts else np.zeros((len(seq), 0), np.float32)


def site_span(seq: str) -> tuple[int, int] | None:
    """``[start, end)`` of the upper-case run of a CLIP sequence (None if there is none)."""
    m = re.search(r"[ACGTUN]+", seq)
    return (m.start(), m.end()) if m else None


def site_window(seq: str, max_flank: int = 50, seed: int = 0) -> str:
    """The binding site plus 0..``max_flank`` flanking residues on each side (drawn per
    sequence from a hash of it and ``seed``: the same sequence always gets the same window),
    upper-cased: neither case nor a fixed site position is left to learn from."""
    span = site_span(seq)
    if span is None:
        return seq.upper()
    s, e = span
    rng = np.random.default_rng(zlib.crc32(seq.encode()) ^ seed)
    a = max(0, s - int(rng.integers(0, max_flank + 1)))
    b = min(len(seq), e + int(rng.integers(0, max_flank + 1)))
    return seq[a:b].upper()


def viewpoint(seq: str) -> str:
    """Only the upper-case site (GraphProt's viewpoint): its edges ARE the site edges."""
    span = site_span(seq)
    return seq if span is None else seq[span[0] : span[1]]


TRANSFORMS = {"none": lambda s, seed: s, "viewpoint": lambda s, seed: viewpoint(s),
              "site-random": lambda s, seed: site_window(s, seed=seed), "upper": lambda s, seed: s.upper()}
