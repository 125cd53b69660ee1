"""Streaming FASTA / FASTQ reading and writing (plain, gzip or bgzip; detected by content).

Bad input raises :class:`nucfm.errors.InputError` with a one-line message: empty file, binary or
non-FASTA content, a FASTQ record cut short, a corrupt or truncated gzip stream (named with the
compressed byte offset where decompression failed, whenever during reading that happens).
CRLF line ends and blank lines are accepted.
Empty records are yielded (``seq == ""``) so callers can report them instead of dropping them.

Text is decoded as UTF-8 (a leading byte-order mark is dropped; undecodable bytes become
U+FFFD): headers keep non-ASCII characters as they are, and non-ASCII letters in a sequence
become the alphabet's unknown token when encoded (:meth:`nucfm.alphabet.Alphabet.encode`).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nucfm.alphabet import check_nucleotide
from nucfm.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Record:
    id: str
    seq: str
    description: str = ""


class _CheckedGzip(io.BufferedIOBase):
    """A gzip reader whose decompression errors become one-line InputErrors.

    Errors in gzip data surface lazily, at whatever read reaches the damage, so every read
    path (``read``, ``read1``, ``readinto``, ``peek``) goes through one guard.
    """

    def __init__(self, path: Path):
        self.path = path
        self._raw = open(path, "rb")
        self._size = os.fstat(self._raw.fileno()).st_size
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="rb")
        self.failed = False

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except (EOFError, zlib.error, OSError) as e:  # gzip.BadGzipFile is an OSError
            if self._raw.closed:
                raise
            self.failed = True
            # _raw.tell() is where the reader's (up to 128 kB) read-ahead ends: approximate.
            raise InputError(f"{self.path}: corrupt or truncated gzip data near byte {self._raw.tell():,} of "
                             f"{self._size:,} ({type(e).__name__}: {e})") from None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._guard(self._gz.read, -1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self._guard(self._gz.read1, size)

    def readinto(self, b) -> int:
        return self._guard(self._gz.readinto, b)

    def peek(self, size: int = 0) -> bytes:
        return self._guard(self._gz.peek, size)

    def drain(self, limit: int = 256 << 20) -> None:
        """Decompress up to ``limit`` more bytes (checking the CRC when the end is reached);
        InputError if they are damaged."""
        while not self.failed and limit > 0:
            n = len(self.read1(1 << 20))
            if not n:
                return
            limit -= n

    def close(self) -> None:
        if not self.closed:
            self._gz.close()
            self._raw.close()
        super().close()


class _Text(io.TextIOWrapper):
    """A text stream that, when a reader fails on what it read from gzip data, checks the rest of
    the data: flipped bits in deflate data decode to garbage that only the CRC at the end of the
    member catches, and "corrupt gzip" is then the true explanation of the parse error."""

    def __exit__(self, exc_type, exc, tb):
        buf = self.buffer
        if (exc_type is not None and issubclass(exc_type, Exception) and isinstance(buf, _CheckedGzip)
                and not buf.failed):
            try:
                buf.drain()
            except InputError as damaged:
                self.close()
                raise damaged from None
        return super().__exit__(exc_type, exc, tb)


def _check_file(path: Path) -> bytes:
    """The first two bytes of an existing regular file; InputError otherwise."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    with open(path, "rb") as f:
        return f.read(2)


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a possibly gzip/bgzip compressed file (by its magic bytes) for reading bytes;
    decompression errors raise InputError naming the file and the compressed byte offset."""
    path = Path(path)
    if _check_file(path) == GZIP_MAGIC:
        return _CheckedGzip(path)
    return open(path, "rb")


def open_text(path: str | Path) -> IO[str]:
    """Open a text file that may be gzip/bgzip compressed (by its magic bytes, not its name).

    Decoded as UTF-8 with a leading byte-order mark dropped and undecodable bytes replaced by
    U+FFFD; universal newlines. Corrupt or truncated gzip data raises InputError when reached;
    an exception raised inside ``with open_text(...)`` over gzip data whose rest turns out
    damaged is replaced by that InputError.

    >>> with open_text("genes.gff.gz") as fh:  # doctest: +SKIP
    ...     first = fh.readline()
    """
    return _Text(open_binary(path), encoding="utf-8-sig", errors="replace", newline=None)


_CONTROL = {chr(c) for c in range(32)} - {"\t", "\r", "\n", "\x0c"}


def is_binary_line(line: str) -> bool:
    """True for a first line that cannot be text: a NUL byte; undecodable bytes (U+FFFD) or
    control characters in a line that starts with neither ``>``, ``@`` nor ``#``; or both in
    one that does (a Latin-1 letter in a header alone is accepted, as U+FFFD)."""
    if "\x00" in line:
        return True
    bad, ctrl = "\ufffd" in line, not _CONTROL.isdisjoint(line)
    if line.startswith((">", "@", "#")):
        return bad and ctrl
    return bad or ctrl


def read_fasta(path: str | Path, nucleotide: bool = True) -> Iterator[Record]:
    """Yield records of a FASTA (or FASTQ) file one at a time; memory stays one record. With
    ``nucleotide`` a record that looks like protein is refused
    (:func:`nucfm.alphabet.check_nucleotide`, unless ``--allow-nonstandard``).

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
        if is_binary_line(first):
            raise InputError(f"{path}: binary content, not FASTA (a compressed format other than gzip?)")
        if first.startswith((">", "@")):
            reader = _fasta_records if first.startswith(">") else _fastq_records
            for rec in reader(fh, first, path):
                if nucleotide:
                    check_nucleotide(rec.seq, rec.id, str(path))
                yield rec
        else:
            raise InputError(f"{path}: not FASTA: the first line should start with '>' but is {first[:40]!r}")


def scan_fasta(path: str | Path) -> dict[str, int]:
    """One streaming pass before any model loads: every record read and checked (not protein,
    see :func:`read_fasta`), and what there is to do: ``{"records": n, "nt": residues}``."""
    records = residues = 0
    for rec in read_fasta(path):
        records += 1
        residues += len(rec.seq)
    return {"records": records, "nt": residues}


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
