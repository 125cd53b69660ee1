"""Tables in: TSV / CSV (plain, gzip or bgzip, by content; UTF-8 with an optional BOM) and
Parquet, read into a pandas DataFrame with every problem a one-line :class:`InputError`
(:func:`read_table`); and sequence tables, the labelled training data and the inputs of
``nucfm predict`` (:func:`read_sequence_table`).

A sequence table is such a table with a sequence column (``seq`` by default; ``sequence`` and
``utr`` are found too) and any other columns, which are kept; or a FASTA file, which becomes a
table with columns ``id``, ``seq`` and ``header`` (the whole header line), where a label can be
read from the header with a regular expression (its named group ``label``, or its first group).
Record order is file order; nothing is dropped or reordered here.

>>> read_sequence_table("train.csv").columns.tolist()  # doctest: +SKIP
['id', 'seq', 'rl']
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from nucfm.errors import InputError
from nucfm.io.fasta import open_text

TABLE_SUFFIXES = {".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".csv": "csv", ".parquet": "parquet",
                  ".pq": "parquet"}
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".ffn", ".fq", ".fastq")
SEQ_COLUMNS = ("seq", "sequence", "utr", "Sequence", "SEQ")


def _bare_name(path: str | Path) -> str:
    name = Path(path).name.lower()
    for suffix in (".gz", ".bgz"):
        name = name.removesuffix(suffix)
    return name


def table_format(path: str | Path) -> str | None:
    """``tsv``, ``csv`` or ``parquet`` from the file name (``.gz`` / ``.bgz`` ignored), else None."""
    name = _bare_name(path)
    return next((fmt for ext, fmt in TABLE_SUFFIXES.items() if name.endswith(ext)), None)


def read_table(path: str | Path, fmt: str | None = None, dtype=str) -> pd.DataFrame:
    """The table at ``path`` (format from the name unless ``fmt``); text columns as ``dtype``
    (``str``: values exactly as written, empty cells as ""; None: pandas' own parsing)."""
    pieces = read_table_chunks(path, fmt, dtype, chunk_rows=None)
    try:
        return next(pieces)
    finally:
        pieces.close()


def read_table_chunks(path: str | Path, fmt: str | None = None, dtype=str, chunk_rows: int | None = 65536):
    """:func:`read_table` in pieces of ``chunk_rows`` rows (None: one piece), for tables of any size."""
    path = Path(path)
    fmt = fmt or table_format(path)
    if fmt is None:
        raise InputError(f"{path}: expected a table: .tsv[.gz], .csv[.gz] or .parquet")
    try:
        if fmt == "parquet":
            if chunk_rows is None:
                yield pd.read_parquet(path)
                return
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
            return
        with open_text(path) as fh:  # gzip by content, UTF-8 with BOM, gzip errors as InputError
            reader = pd.read_csv(fh, sep="\t" if fmt == "tsv" else ",", dtype=dtype, keep_default_na=dtype is not str,
                                 comment=None, low_memory=False, chunksize=chunk_rows)
            if chunk_rows is None:
                yield reader
            else:
                yield from reader
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{path}: cannot read as {fmt.upper()} ({type(e).__name__}: {str(e)[:200]})") from e


def read_sequence_table(path: str | Path, seq_col: str | None = None, header_regex: str | None = None,
                        label_col: str = "label") -> pd.DataFrame:
    """The records of ``path`` as a DataFrame with at least ``id`` and ``seq`` (strings).

    FASTA: ``header_regex`` (when given) must match every header; the match fills ``label_col``.
    Tables: ``seq_col`` names the sequence column (default: the first of ``seq``, ``sequence``,
    ``utr`` present); an ``id`` column is used when present, else the row number.
    """
    if _bare_name(path).endswith(FASTA_SUFFIXES):
        from nucfm.io.fasta import read_fasta

        recs = list(read_fasta(path))
        df = pd.DataFrame({"id": [r.id for r in recs], "seq": [r.seq for r in recs],
                           "header": [f"{r.id} {r.description}".strip() for r in recs]})
        if header_regex:
            df[label_col] = _labels_from_headers(df["header"].tolist(), header_regex, path)
        return df
    if table_format(path) is None:
        raise InputError(f"{path}: unknown table type; use FASTA, .csv, .tsv or .parquet (optionally .gz)")
    return _sequence_columns(read_table(path), seq_col, path, 0)


def _sequence_columns(df: pd.DataFrame, seq_col: str | None, path, first_row: int) -> pd.DataFrame:
    """A table's sequence column renamed ``seq`` and an ``id`` column (the row number, counted
    from ``first_row``, when the table has none)."""
    col = seq_col or next((c for c in SEQ_COLUMNS if c in df.columns), None)
    if col is None or col not in df.columns:
        raise InputError(f"{path}: no sequence column {seq_col or ' / '.join(SEQ_COLUMNS[:3])!r}; columns: "
                         f"{', '.join(map(str, df.columns[:20]))}")
    df = df.rename(columns={col: "seq"}) if col != "seq" else df
    if "id" not in df.columns:
        df.insert(0, "id", [str(i) for i in range(first_row, first_row + len(df))])
    df["id"] = df["id"].astype(str)
    df["seq"] = df["seq"].fillna("").astype(str)
    from nucfm.alphabet import check_nucleotide

    for rid, seq in zip(df["id"], df["seq"]):
        check_nucleotide(seq, rid, str(path))
    return df


def iter_sequence_table(path: str | Path, seq_col: str | None = None, chunk_records: int = 4096):
    """:func:`read_sequence_table` streamed: DataFrames of ``chunk_records`` records (columns
    ``id`` and ``seq``), in file order, so that inputs of any size are read in flat memory."""
    from itertools import islice

    if _bare_name(path).endswith(FASTA_SUFFIXES):
        from nucfm.io.fasta import read_fasta

        records = read_fasta(path)
        while batch := list(islice(records, chunk_records)):
            yield pd.DataFrame({"id": [r.id for r in batch], "seq": [r.seq for r in batch]})
        return
    if table_format(path) is None:
        raise InputError(f"{path}: unknown table type; use FASTA, .csv, .tsv or .parquet (optionally .gz)")
    first = 0
    for df in read_table_chunks(path, chunk_rows=chunk_records):
        yield _sequence_columns(df, seq_col, path, first)[["id", "seq"]]
        first += len(df)


def compile_label_regex(text: str, option: str = "--label-regex") -> re.Pattern:
    """The one rule for labels in FASTA headers (``nucfm atlas --label-regex``, finetune's
    ``header_regex``): a regular expression with a named group ``label`` or at least one group."""
    try:
        pattern = re.compile(text)
    except re.error as e:
        raise InputError(f"{option} {text!r} is not a regular expression ({e})") from None
    if pattern.groups == 0:
        raise InputError(f"{option} {text!r} has no group: put the label in (...) or (?P<label>...)")
    return pattern


def header_label(pattern: re.Pattern, header: str) -> str | None:
    r"""The label of a header (``id description``): the named group ``label`` when the regex has
    one, else the first group that took part in the match; None when the regex does not match.

    >>> p = compile_label_regex(r"^(?:.*\sTP=(\S+)|\S+\s+(\S+))")
    >>> header_label(p, "X01556.1/3-118 RF00001 5S_rRNA TP=Gene;rRNA"), header_label(p, "URS0001 tRNA from 3 species")
    ('Gene;rRNA', 'tRNA')
    """
    m = pattern.search(header)
    if m is None:
        return None
    if "label" in pattern.groupindex:
        value = m.group("label")
    else:
        value = next((g for g in m.groups() if g is not None), None)
    return value.strip() if value and value.strip() else None


def _labels_from_headers(headers: list[str], pattern: str, path) -> list[str]:
    rx = compile_label_regex(pattern, "header regex")
    out, bad = [], []
    for h in headers:
        label = header_label(rx, h)
        if label is None:
            bad.append(h)
            continue
        out.append(label)
    if bad:
        raise InputError(f"{path}: {len(bad)} of {len(headers)} headers do not match the label regex {pattern!r} "
                         f"(first: {bad[0][:80]!r})")
    return out
