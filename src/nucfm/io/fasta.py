"""Streaming FASTA / FASTQ reading and writing (plain, gzip or bgzip; detected by content).

Bad input raises :class:`nucfm.errors.InputError` with a one-line message: empty file, binary or
non-FASTA content, a FASTQ record cut short. CRLF line ends and blank lines are accepted.
Empty records are yielded (``seq == ""``) so callers can report them instead of dropping them.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from nucfm.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Record:
    id: str
    seq: str
    description: str = ""


def open_text(path: str | Path) -> IO[str]:
    """Open a text file that may be gzip/bgzip compressed (by its magic bytes, not its name)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="ascii", errors="replace", newline=None)
    return open(path, encoding="ascii", errors="replace", newline=None)


def read_fasta(path: str | Path) -> Iterator[Record]:
    """Yield records of a FASTA (or FASTQ) file one at a time; memory stays one record.

    >>> for rec in read_fasta("examples/rna.fa"):  # doctest: +SKIP
    ...     print(rec.id, len(rec.seq))
    """
    with open_text(path) as fh:
        first = ""
        for line in fh:
            first = line.strip()
            if first:
                break
        if not first:
            raise InputError(f"{path}: empty file")
        if "\x00" in first or "\ufffd" in first:
            raise InputError(f"{path}: binary content, not FASTA (a compressed format other than gzip?)")
        if first.startswith(">"):
            yield from _fasta_records(fh, first, path)
        elif first.startswith("@"):
            yield from _fastq_records(fh, first, path)
        else:
            raise InputError(f"{path}: not FASTA: the first line should start with '>' but is {first[:40]!r}")


def _header(line: str) -> tuple[str, str]:
    parts = line[1:].strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def _fasta_records(fh: Iterable[str], first: str, path) -> Iterator[Record]:
    rid, desc = _header(first)
    chunks: list[str] = []
    for line in fh:
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            yield Record(rid, "".join(chunks), desc)
            rid, desc = _header(line)
            chunks = []
        elif line.startswith(";"):
            continue  # old-style comment
        else:
            chunks.append("".join(line.split()))
    yield Record(rid, "".join(chunks), desc)


def _fastq_records(fh: Iterator[str], first: str, path) -> Iterator[Record]:
    header = first
    it = iter(fh)
    while header:
        rid, desc = _header(header)
        seq = next(it, "").strip()
        plus = next(it, "").strip()
        qual = next(it, None)
        if not plus.startswith("+") or qual is None:
            raise InputError(f"{path}: FASTQ record {rid!r} is incomplete")
        yield Record(rid, seq, desc)
        header = ""
        for line in it:
            if line.strip():
                header = line.strip()
                break


def write_fasta(records: Iterable[Record], path: str | Path, width: int = 80) -> None:
    with open(path, "w") as f:
        for r in records:
            head = f">{r.id} {r.description}".rstrip()
            f.write(head + "\n")
            for i in range(0, len(r.seq), width):
                f.write(r.seq[i : i + width] + "\n")
