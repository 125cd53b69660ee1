"""Base-pair metrics for RNA secondary structure, per sequence and macro-averaged.

A pair is a 0-based ``(i, j)`` with ``i < j`` (:mod:`nucfm.io.structure`). Per sequence:

* precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN);
* MCC over all L (L - 1) / 2 candidate pairs (TN = candidates - TP - FP - FN);
* when the reference and the prediction both have no pair, every metric is 1 (nothing to find,
  nothing wrongly predicted); when only one of them is empty, the undefined ratios are 0.

The ``shift`` variant (``shift=1``) counts a predicted pair ``(i, j)`` as correct when the
reference holds ``(i, j)``, ``(i ± 1, j)`` or ``(i, j ± 1)`` (the tolerance used by SPOT-RNA,
UFold and RNA-FM's "allow shift" columns); it is reported separately from the exact one.

Tables in the RNA-FM paper are macro averages: the mean over sequences of the per-sequence value.

>>> score_pairs([(0, 9), (1, 8)], [(0, 9), (2, 7)], length=10).f1
0.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

METRICS = ("precision", "recall", "f1", "mcc")


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    f1: float
    mcc: float
    tp: int
    fp: int
    fn: int

    def to_dict(self) -> dict:
        return asdict(self)


def _shifted(ref: set[tuple[int, int]], shift: int) -> set[tuple[int, int]]:
    out = set(ref)
    for i, j in ref:
        for d in range(1, shift + 1):
            out.update({(i - d, j), (i + d, j), (i, j - d), (i, j + d)})
    return out


def score_pairs(pred: Iterable[Sequence[int]], ref: Iterable[Sequence[int]], length: int,
                shift: int = 0) -> PairScores:
    """Scores of one predicted structure against its reference (``length`` residues)."""
    pred_s = {(min(a, b), max(a, b)) for a, b in pred}
    ref_s = {(min(a, b), max(a, b)) for a, b in ref}
    if shift:
        tp = len(pred_s & _shifted(ref_s, shift))
        tp_ref = min(tp, len(ref_s))
    else:
        tp = tp_ref = len(pred_s & ref_s)
    fp = len(pred_s) - tp
    fn = len(ref_s) - tp_ref
    if not pred_s and not ref_s:
        return PairScores(1.0, 1.0, 1.0, 1.0, 0, 0, 0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp_ref / (tp_ref + fn) if tp_ref + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    total = length * (length - 1) // 2
    tn = max(total - tp - fp - fn, 0)
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = (tp * tn - fp * fn) / denom if denom else 0.0
    return PairScores(precision, recall, f1, mcc, tp, fp, fn)


def macro_average(scores: Sequence[PairScores]) -> dict[str, float]:
    """Mean of each metric over sequences (the paper's tables), plus ``n``."""
    if not scores:
        return {m: float("nan") for m in METRICS} | {"n": 0}
    return {m: float(np.mean([getattr(s, m) for s in scores])) for m in METRICS} | {"n": len(scores)}
