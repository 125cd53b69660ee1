"""Labelled sequence sets for fine-tuning: read, clean, check and encode labels.

A source is a table or FASTA path, a list of them, or a mapping ``{path: label}`` that gives
every record of a file one label (CLIP positives / negatives). Bad labels stop the run with a
message that says what to fix (missing column, unknown values, a single class, labels that do not
fit their sequence); NaN regression targets are counted, reported and left out of training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nucfm.data.task_inputs import TRANSFORMS, clean
from nucfm.errors import InputError
from nucfm.io.tables import read_sequence_table

log = logging.getLogger("nucfm")


@dataclass
class LabelledSet:
    ids: list[str]
    seqs: list[str]  # cleaned (task_inputs.clean), transform applied
    y: np.ndarray  # (N, T) float targets, (N,) int classes, or (N,) object per-residue int arrays
    table: pd.DataFrame  # the source columns (split column, file)


def read_sources(spec, seq_col: str | None, label_col: str, header_regex: str | None) -> pd.DataFrame:
    """One DataFrame from a source spec (path, list of paths, or {path: label})."""
    if spec is None:
        return pd.DataFrame(columns=["id", "seq"])
    items = spec.items() if isinstance(spec, dict) else [(p, None) for p in ([spec] if isinstance(spec, str) else spec)]
    frames = []
    for path, fixed in items:
        df = read_sequence_table(path, seq_col, None if fixed is not None else header_regex, label_col)
        if fixed is not None:
            df[label_col] = str(fixed)
        df["source"] = str(path)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def encode_labels(df: pd.DataFrame, task: str, label_col: str, classes: tuple[str, ...] | None,
                  what: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """(encoded labels, label names, keep mask) for a table; see the module doc for the checks."""
    cols = [c.strip() for c in label_col.split(",")] if task == "regression" else [label_col]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{what}: no label column {', '.join(missing)}; columns: {', '.join(map(str, df.columns))}"
                         " (a FASTA needs header_regex)")
    if task == "regression":
        y = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        raw = df[cols].astype(str).to_numpy()
        bad = [v for v, f in zip(raw.ravel(), np.isnan(y).ravel()) if f and v.strip().lower() not in ("", "nan", "na")]
        if bad:
            raise InputError(f"{what}: {len(bad)} label values are not numbers (first: {bad[0]!r})")
        keep = ~np.isnan(y).any(1)
        if (~keep).any():
            log.warning("%s: %d records have NaN or empty targets and are left out", what, int((~keep).sum()))
        return y, tuple(cols), keep
    values = df[label_col].astype(str).tolist()
    if task == "residue":
        names = classes or tuple(sorted(set("".join(values))))
        index = {c: i for i, c in enumerate(names)}
        unknown = sorted(set("".join(values)) - set(index))
        if unknown:
            raise InputError(f"{what}: per-residue labels {', '.join(unknown)} are not among {', '.join(names)}")
        y = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            y[i] = np.array([index[c] for c in v], dtype=np.int64)
        return y, names, np.ones(len(values), bool)
    names = classes or tuple(sorted(set(values)))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise InputError(f"{what}: label values {', '.join(unknown[:10])} are not among the classes "
                         f"{', '.join(names[:20])}")
    if len(set(values)) < 2 and classes is None:
        raise InputError(f"{what}: every record has the label {values[0]!r}; a classifier needs at least two classes")
    if task == "binary" and len(names) != 2:
        raise InputError(f"{what}: binary task with {len(names)} classes ({', '.join(names[:10])}); use multiclass")
    index = {c: i for i, c in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names, np.ones(len(values), bool)


def labelled_set(df: pd.DataFrame, task: str, label_col: str, classes, transform: str, seed: int,
                 what: str) -> tuple[LabelledSet, tuple[str, ...]]:
    """Clean, transform and encode a table; records with NaN targets are left out (counted)."""
    if transform not in TRANSFORMS:
        raise InputError(f"transform must be one of {', '.join(TRANSFORMS)}, not {transform!r}")
    if not len(df):
        raise InputError(f"{what}: no records")
    y, names, keep = encode_labels(df, task, label_col, classes, what)
    seqs = [clean(TRANSFORMS[transform](s, seed)) for s in df["seq"]]
    empty = [i for i, s in enumerate(seqs) if not s]
    if empty:
        log.warning("%s: %d empty sequences are left out", what, len(empty))
        keep[empty] = False
    if task == "residue":
        bad = [i for i in np.flatnonzero(keep) if len(y[i]) != len(seqs[i])]
        if bad:
            raise InputError(f"{what}: {len(bad)} per-residue labels differ in length from their sequence "
                             f"(first: record {df['id'].iloc[bad[0]]!r})")
    idx = np.flatnonzero(keep)
    return LabelledSet([df["id"].iloc[i] for i in idx], [seqs[i] for i in idx], y[idx],
                       df.iloc[idx].reset_index(drop=True)), names
