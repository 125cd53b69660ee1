"""Tabular files in: TSV / CSV (plain, gzip or bgzip, by content; UTF-8 with an optional BOM) and
Parquet, read into a pandas DataFrame with every problem a one-line :class:`InputError`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nucfm.errors import InputError
from nucfm.io.fasta import open_text

TABLE_SUFFIXES = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str | Path) -> str | None:
    """``tsv``, ``csv`` or ``parquet`` from the file name (``.gz`` / ``.bgz`` ignored), else None."""
    name = Path(path).name.lower()
    for suffix in (".gz", ".bgz"):
        name = name.removesuffix(suffix)
    return next((fmt for ext, fmt in TABLE_SUFFIXES.items() if name.endswith(ext)), None)


def read_table(path: str | Path, fmt: str | None = None, dtype=str) -> pd.DataFrame:
    """The table at ``path`` (format from the name unless ``fmt``); text columns as ``dtype``
    (``str``: values exactly as written, empty cells as ""; None: pandas' own parsing)."""
    path = Path(path)
    fmt = fmt or table_format(path)
    if fmt is None:
        raise InputError(f"{path}: expected a table: .tsv[.gz], .csv[.gz] or .parquet")
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        with open_text(path) as fh:  # gzip by content, UTF-8 with BOM, gzip errors as InputError
            return pd.read_csv(fh, sep="\t" if fmt == "tsv" else ",", dtype=dtype, keep_default_na=dtype is not str,
                               comment=None, low_memory=False)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{path}: cannot read as {fmt.upper()} ({type(e).__name__}: {str(e)[:200]})") from e
