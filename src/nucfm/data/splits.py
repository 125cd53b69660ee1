"""Train / validation / test assignment of labelled records: from a column, by fraction with a
seed, or k-fold (fold ``k`` is the test set; validation is carved from the rest)."""

from __future__ import annotations

import numpy as np

from nucfm.errors import InputError

SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "dev": "valid",
               "test": "test"}


def assign_splits(n: int, method: str = "fraction", seed: int = 0, valid_fraction: float = 0.1,
                  test_fraction: float = 0.1, folds: int = 5, fold: int = 0, column=None) -> np.ndarray:
    """(n,) array of ``"train"``, ``"valid"``, ``"test"``.

    >>> assign_splits(10, seed=1).tolist().count("test")
    1
    >>> sorted(set(assign_splits(6, "column", column=["train", "val", "test"] * 2)))
    ['test', 'train', 'valid']
    """
    out = np.full(n, "train", dtype=object)
    if method == "column":
        if column is None:
            raise InputError("split 'column' needs a split column in the table")
        bad = sorted({str(v) for v in column} - set(SPLIT_NAMES))
        if bad:
            raise InputError(f"split column values must be train, valid or test; found {', '.join(bad[:5])}")
        return np.array([SPLIT_NAMES[str(v)] for v in column], dtype=object)
    perm = np.random.default_rng(seed).permutation(n)
    if method == "kfold":
        if not 0 <= fold < folds or folds < 2:
            raise InputError(f"fold must be in 0..{folds - 1} with folds >= 2")
        test = perm[fold::folds]
        rest = np.setdiff1d(perm, test, assume_unique=True)
        rest = rest[np.random.default_rng(seed + 1).permutation(len(rest))]
        out[test] = "test"
        out[rest[: int(round(valid_fraction * len(rest)))]] = "valid"
        return out
    if method != "fraction":
        raise InputError(f"split must be fraction, column or kfold, not {method!r}")
    n_test, n_valid = int(round(test_fraction * n)), int(round(valid_fraction * n))
    out[perm[:n_test]] = "test"
    out[perm[n_test : n_test + n_valid]] = "valid"
    return out
