"""``nucfm predict``: a task model's predictions for every record of a FASTA file or table.

Every input record gets one output row, in input order, keyed by its own ``id`` (repeated ids
stay repeated; an empty sequence gets empty predictions and is counted in a warning). Columns:
regression, one per target (the label names); classification, ``pred`` (the class name) and
``prob_<class>`` per class; per-residue, ``pred`` (one class letter per residue).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from nucfm.errors import InputError
from nucfm.io.tables import read_sequence_table
from nucfm.paths import atomic_path

log = logging.getLogger("nucfm")


PREDICT_CHUNK = 256  # records per model.predict call (the progress bar advances per chunk)


def prediction_table(model, ids: list[str], seqs: list[str]) -> pd.DataFrame:
    """One row per input record (see the module doc)."""
    from nucfm.progress import bar

    cfg = model.config
    preds = []
    with bar(total=len(seqs), unit="record", desc="predict") as b:
        for c in range(0, len(seqs), PREDICT_CHUNK):
            preds += list(model.predict(list(seqs[c : c + PREDICT_CHUNK])))
            b.update(len(seqs[c : c + PREDICT_CHUNK]))
    out = pd.DataFrame({"id": ids, "length": [len(s) for s in seqs]})
    bb = getattr(model, "backbone", None)
    n_long = sum(len(s) > bb.max_len for s in seqs) if bb is not None and bb.max_len else 0
    if n_long:
        log.warning("%d sequences are longer than the backbone's maximum of %d residues: embedded in "
                    "overlapping windows", n_long, bb.max_len)
    empty = [i for i, s in enumerate(seqs) if not s]
    if empty:
        log.warning("%d empty sequences: their predictions are left empty (rows kept)", len(empty))
    if cfg.task == "regression":
        P = np.stack(preds)
        for k, name in enumerate(cfg.labels):
            out[name] = P[:, k]
    elif cfg.task == "residue":
        out["pred"] = ["".join(cfg.labels[k] for k in p.argmax(1)) if len(p) else "" for p in preds]
    else:
        P = np.stack(preds)
        out["pred"] = [cfg.labels[int(k)] if np.isfinite(p).all() else "" for k, p in zip(P.argmax(1), P)]
        for k, name in enumerate(cfg.labels):
            out[f"prob_{name}"] = P[:, k]
    return out


def predict_file(model, path: str | Path, output: str | Path, seq_col: str | None = None) -> int:
    """Predict every record of ``path`` into ``output`` (.tsv/.csv/.parquet); returns the count."""
    df = read_sequence_table(path, seq_col)
    if not len(df):
        raise InputError(f"{path}: no records")
    table = prediction_table(model, df["id"].tolist(), df["seq"].tolist())
    output = Path(output)
    with atomic_path(output) as tmp:
        if output.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, sep="," if output.suffix == ".csv" else "\t", index=False, float_format="%.6g")
    return len(table)
