"""``nucfm predict``: a task model's predictions for every record of a FASTA file or table.

Every input record gets one output row, in input order, keyed by its own ``id`` (repeated ids
stay repeated; an empty sequence gets empty predictions and is counted in a warning). Columns:
regression, one per target (the label names); classification, ``pred`` (the class name) and
``prob_<class>`` per class; per-residue, ``pred`` (one class letter per residue).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from nucfm.errors import InputError
from nucfm.paths import atomic_path

log = logging.getLogger("nucfm")


PREDICT_CHUNK = 256  # records per model.predict call (the progress bar advances per chunk)


def prediction_table(model, ids: list[str], seqs: list[str], progress=None) -> pd.DataFrame:
    """One row per input record (see the module doc); ``progress`` (a bar) advances by records."""
    cfg = model.config
    preds = []
    for c in range(0, len(seqs), PREDICT_CHUNK):
        preds += list(model.predict(list(seqs[c : c + PREDICT_CHUNK])))
        if progress is not None:
            progress.update(len(seqs[c : c + PREDICT_CHUNK]))
    preds = [np.asarray(p, dtype=np.float64) for p in preds]  # one dtype whatever a chunk holds (NaN rows)
    out = pd.DataFrame({"id": ids, "length": [len(s) for s in seqs]})
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


def predict_file(model, path: str | Path, output: str | Path, seq_col: str | None = None,
                 chunk_records: int = 4096, restart: bool = False) -> int:
    """Predict every record of ``path`` into ``output`` (.tsv/.csv/.parquet); returns the count.

    Records are read and predicted ``chunk_records`` at a time; each finished chunk is kept in
    ``OUTPUT.parts/`` (:mod:`nucfm.resume`) until all are merged into the output, so memory does
    not grow with the input and a rerun of the same command resumes (``restart``: start over)."""
    from nucfm.checkpoint import fingerprint
    from nucfm.io.tables import iter_sequence_table
    from nucfm.resume import Parts, input_identity

    output = Path(output)
    manifest = {**input_identity(path), "model_fingerprint": fingerprint(model), "seq_col": seq_col,
                "chunk_records": chunk_records}
    parts = Parts(output, manifest, suffix=".parquet", restart=restart)
    chunks = iter_sequence_table(path, seq_col, chunk_records)
    first = next(chunks, None)  # bad input fails here, before the parts directory exists
    if first is None:
        raise InputError(f"{path}: no records")
    parts.prepare()
    finished = parts.finished()
    bb = getattr(model, "backbone", None)
    max_len = bb.max_len if bb is not None else None
    n = n_long = n_empty = n_chunks = 0
    from nucfm.progress import bar

    with bar(total=None, unit="record", desc="predict") as b:
        for i, df in enumerate(itertools.chain([first], chunks)):
            n_chunks = i + 1
            seqs = df["seq"].tolist()
            n += len(seqs)
            n_long += sum(len(s) > max_len for s in seqs) if max_len else 0
            n_empty += sum(not s for s in seqs)
            if i not in finished:
                table = prediction_table(model, df["id"].tolist(), seqs, progress=b)
                with parts.writing(i) as tmp:
                    table.to_parquet(tmp, index=False)
            else:
                b.update(len(seqs))
    if n_long:
        log.warning("%d sequences are longer than the backbone's maximum of %d residues: embedded in "
                    "overlapping windows", n_long, max_len)
    if n_empty:
        log.warning("%d empty sequences: their predictions are left empty (rows kept)", n_empty)
    with atomic_path(output) as tmp:
        if output.suffix == ".parquet":
            import pyarrow.parquet as pq

            writer = None
            for i in range(n_chunks):
                table = pq.read_table(parts.path(i))
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            writer.close()
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                for i in range(n_chunks):
                    pd.read_parquet(parts.path(i)).to_csv(fh, sep="," if output.suffix == ".csv" else "\t",
                                                          index=False, header=i == 0, float_format="%.6g")
    parts.remove()
    return n
