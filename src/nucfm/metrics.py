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


# ---- contact (3D closeness) maps ----------------------------------------------------------------
# Sequence-separation ranges of contact evaluation: the CASP convention for protein contacts
# (short 6-11, medium 12-23, long >= 24), as RNAcontact (Sun et al. 2021) and SPOT-RNA-2D
# (Singh et al. 2021) use it for RNA. Bounds are inclusive; None = no upper bound.
CONTACT_RANGES: dict[str, tuple[int, int | None]] = {"short": (6, 11), "medium": (12, 23), "long": (24, None)}
CONTACT_TOPS = (10, 5, 2, 1)  # top-L/k predictions


def range_candidates(length: int, separation: tuple[int, int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Row-major ``(i, j)`` with ``i < j`` and ``lo <= j - i <= hi``: two int arrays."""
    lo, hi = separation
    i, j = np.triu_indices(length, max(lo, 1))
    if hi is not None:
        keep = (j - i) <= hi
        i, j = i[keep], j[keep]
    return i, j


def contact_hits(probs: np.ndarray, contacts, length: int, k: int,
                 separation: tuple[int, int | None] = CONTACT_RANGES["long"]) -> tuple[int, int] | None:
    """(true contacts among the top ``max(1, length // k)`` predicted pairs in the separation
    range, number of predictions). ``probs`` (L, L) scores, read on the upper triangle; ties are
    broken by row-major order. None when the reference has no contact in the range (such chains
    are skipped and counted). Fewer candidates than L/k: all candidates are taken.

    >>> p = np.zeros((30, 30)); p[0, 29] = 0.9; p[1, 28] = 0.8
    >>> contact_hits(p, [(0, 29), (2, 27)], 30, k=10)  # top 3 of the 21 pairs with j - i >= 24
    (1, 3)
    """
    i, j = range_candidates(length, separation)
    ref = {(min(a, b), max(a, b)) for a, b in contacts}
    lo, hi = separation
    if not any(lo <= b - a and (hi is None or b - a <= hi) for a, b in ref):
        return None
    n = min(max(1, length // k), len(i))
    order = np.argsort(-np.asarray(probs, dtype=np.float64)[i, j], kind="stable")[:n]
    return sum((int(i[t]), int(j[t])) in ref for t in order), n


def score_contacts(probs: np.ndarray, contacts, length: int, ranges=("long", "medium"),
                   tops=CONTACT_TOPS) -> dict[str, tuple[int, int] | None]:
    """:func:`contact_hits` for every range and top-L/k, keyed ``"long_L/5"`` etc."""
    return {f"{r}_L/{k}": contact_hits(probs, contacts, length, k, CONTACT_RANGES[r]) for r in ranges for k in tops}


def average_contact_scores(per_chain: Sequence[dict[str, tuple[int, int] | None]]) -> dict[str, dict]:
    """Per metric key: ``precision`` (mean over chains of hits / n: the headline, as in RNAcontact
    and the RNA-FM paper), ``pooled`` (all hits / all predictions), ``chains`` scored and
    ``skipped`` (chains without a reference contact in the range) and ``precision_all`` (the mean
    over every chain with skipped chains scored 0, for tables that count them so)."""
    out = {}
    for key in per_chain[0] if per_chain else ():
        vals = [s[key] for s in per_chain if s[key] is not None]
        out[key] = {"precision": float(np.mean([h / n for h, n in vals])) if vals else float("nan"),
                    "pooled": sum(h for h, _ in vals) / sum(n for _, n in vals) if vals else float("nan"),
                    "chains": len(vals), "skipped": len(per_chain) - len(vals),
                    "precision_all": float(sum(h / n for h, n in vals) / len(per_chain))}
    return out


# ---- function tasks: regression and classification ---------------------------------------------
def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Scores of predicted values against measured ones (1-D arrays of equal length).

    ``r2_pearson`` is the squared Pearson correlation (what Optimus 5-Prime and RNA-FM report as
    R²); ``r2`` is the coefficient of determination ``1 - SSE / SST`` (penalises bias and scale).

    >>> round(regression_metrics([1, 2, 3, 4], [2, 3, 4, 5])["r2_pearson"], 3)
    1.0
    """
    from scipy.stats import pearsonr, spearmanr

    y, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(y) < 2 or np.std(y) == 0 or np.std(p) == 0:
        r = rho = float("nan")
    else:
        r, rho = float(pearsonr(y, p)[0]), float(spearmanr(y, p)[0])
    sst = float(((y - y.mean()) ** 2).sum())
    sse = float(((y - p) ** 2).sum())
    return {"r2_pearson": r * r, "r2": 1 - sse / sst if sst else float("nan"), "pearson": r, "spearman": rho,
            "mse": sse / max(len(y), 1), "mae": float(np.abs(y - p).mean()) if len(y) else float("nan"), "n": len(y)}


def classification_metrics(y_true, probs) -> dict[str, float]:
    """AUROC, AUPRC, accuracy and macro-F1 of class probabilities ``probs`` (N, K) against
    integer labels ``y_true`` (N,). Binary (K = 2): AUROC / AUPRC of class 1; K > 2: their
    one-vs-rest macro averages over the classes present.

    >>> classification_metrics([0, 1, 1, 0], [[.9, .1], [.2, .8], [.4, .6], [.3, .7]])["auroc"]
    0.75
    """
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

    y, P = np.asarray(y_true, int), np.asarray(probs, float)
    K = P.shape[1]
    pred = P.argmax(1)
    out = {"accuracy": float(accuracy_score(y, pred)),
           "macro_f1": float(f1_score(y, pred, average="macro", labels=sorted(set(y) | set(pred)))), "n": len(y)}
    present = [k for k in range(K) if 0 < (y == k).sum() < len(y)]
    if K == 2 and len(present) == 2:
        out["auroc"] = float(roc_auc_score(y, P[:, 1]))
        out["auprc"] = float(average_precision_score(y, P[:, 1]))
    elif K > 2 and present:
        out["auroc"] = float(np.mean([roc_auc_score(y == k, P[:, k]) for k in present]))
        out["auprc"] = float(np.mean([average_precision_score(y == k, P[:, k]) for k in present]))
    else:
        out["auroc"] = out["auprc"] = float("nan")
    return out
