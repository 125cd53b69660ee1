"""Sequence tables: labelled training data and the inputs of ``nucfm predict``.

A table is CSV, TSV (``.tsv``/``.tab``/``.txt``) or Parquet, optionally gzipped, with a sequence
column (``seq`` by default; ``sequence`` and ``utr`` are found too) and any other columns, which
are kept. A FASTA file becomes a table with columns ``id``, ``seq`` and ``header`` (the whole
header line); a label can be read from the header with a regular expression (its named group
``label``, or its first group). Record order is file order; nothing is dropped or reordered here.

>>> read_table("train.csv").columns.tolist()  # doctest: +SKIP
['id', 'seq', 'rl']
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from nucfm.errors import InputError

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".ffn", ".fq", ".fastq")
SEQ_COLUMNS = ("seq", "sequence", "utr", "Sequence", "SEQ")


def table_format(path: str | Path) -> str:
    """``fasta``, ``csv``, ``tsv`` or ``parquet`` from the file name (``.gz`` ignored)."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    for ext, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".txt", "tsv"), (".parquet", "parquet"),
                     (".pq", "parquet")):
        if name.endswith(ext):
            return fmt
    raise InputError(f"{path}: unknown table type; use FASTA, .csv, .tsv or .parquet (optionally .gz)")


def read_table(path: str | Path, seq_col: str | None = None, header_regex: str | None = None,
               label_col: str = "label") -> pd.DataFrame:
    """The records of ``path`` as a DataFrame with at least ``id`` and ``seq`` (strings).

    FASTA: ``header_regex`` (when given) must match every header; the match fills ``label_col``.
    Tables: ``seq_col`` names the sequence column (default: the first of ``seq``, ``sequence``,
    ``utr`` present); an ``id`` column is used when present, else the row number.
    """
    fmt = table_format(path)
    if fmt == "fasta":
        from nucfm.io.fasta import read_fasta

        recs = list(read_fasta(path))
        df = pd.DataFrame({"id": [r.id for r in recs], "seq": [r.seq for r in recs],
                           "header": [f"{r.id} {r.description}".strip() for r in recs]})
        if header_regex:
            df[label_col] = _labels_from_headers(df["header"].tolist(), header_regex, path)
        return df
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise InputError(f"{path}: cannot read it as {fmt} ({' '.join(str(e).split())[:200]})") from None
    col = seq_col or next((c for c in SEQ_COLUMNS if c in df.columns), None)
    if col is None or col not in df.columns:
        raise InputError(f"{path}: no sequence column {seq_col or ' / '.join(SEQ_COLUMNS[:3])!r}; columns: "
                         f"{', '.join(map(str, df.columns[:20]))}")
    df = df.rename(columns={col: "seq"}) if col != "seq" else df
    if "id" not in df.columns:
        df.insert(0, "id", [str(i) for i in range(len(df))])
    df["id"] = df["id"].astype(str)
    df["seq"] = df["seq"].fillna("").astype(str)
    return df


def _labels_from_headers(headers: list[str], pattern: str, path) -> list[str]:
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise InputError(f"header regex {pattern!r} is not a regular expression ({e})") from None
    if rx.groups == 0:
        raise InputError(f"header regex {pattern!r} needs a group (e.g. '(\\S+)$' or '(?P<label>...)')")
    out, bad = [], []
    for h in headers:
        m = rx.search(h)
        if m is None:
            bad.append(h)
            continue
        out.append(m.group("label") if "label" in rx.groupindex else m.group(1))
    if bad:
        raise InputError(f"{path}: {len(bad)} of {len(headers)} headers do not match the label regex {pattern!r} "
                         f"(first: {bad[0][:80]!r})")
    return out
