"""GFF3 annotation reading: features with 0-based half-open coordinates.

GFF3 positions are 1-based and closed; :func:`read_gff` converts them once, here
(``start = gff_start - 1``, ``end = gff_end``). Plain, gzip or bgzip (by content), UTF-8 with an
optional byte-order mark; ``#`` lines are skipped and a ``##FASTA`` section ends the features.
A malformed line raises :class:`nucfm.errors.InputError` naming its line number. Attribute
values are URL-unescaped (``%3B`` -> ``;``); multi-valued ones (``Parent=a,b``) stay one string
(use :meth:`Feature.parents`).

Contig names of the annotation may differ from the genome's (``1`` / ``chr1`` / ``NC_003070.9``):
``aliases`` (``{name_in_gff: contig_in_genome}``, the ``--chrom-alias`` mapping that
``Genome(aliases=...)`` takes) renames them as they are read.

>>> for f in read_gff("TAIR10_chr1.gff.gz", contig="NC_003070.9", start=0, end=10_000):  # doctest: +SKIP
...     print(f.type, f.start, f.end, f.strand, f.attributes.get("ID"))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from nucfm.errors import InputError
from nucfm.io.fasta import is_binary_line, open_text


@dataclass(frozen=True)
class Feature:
    """One GFF3 line: ``[start, end)`` 0-based half-open on ``contig`` (after aliases)."""

    contig: str
    type: str
    start: int
    end: int
    strand: str  # "+", "-", "." or "?"
    attributes: dict[str, str] = field(default_factory=dict, compare=False)
    source: str = ""
    phase: int | None = None  # CDS phase (column 8): bases to skip to the first complete codon

    @property
    def id(self) -> str:
        return self.attributes.get("ID", "")

    def parents(self) -> list[str]:
        """The ``Parent`` IDs (a feature may have several, comma-separated)."""
        p = self.attributes.get("Parent", "")
        return p.split(",") if p else []


def _attributes(text: str) -> dict[str, str]:
    out = {}
    for kv in text.split(";"):
        k, eq, v = kv.strip().partition("=")
        if eq:
            out[unquote(k)] = unquote(v)
    return out


def read_gff(path: str | Path, contig: str | None = None, start: int | None = None, end: int | None = None,
             aliases: dict[str, str] | None = None, seen: set[str] | None = None) -> Iterator[Feature]:
    """Yield features of a GFF3 file, optionally only those on ``contig`` overlapping
    ``[start, end)`` (0-based half-open; names compared after ``aliases``).

    Every line is checked (9 tab-separated columns, integer ``1 <= start <= end``) even when
    filtered out. ``seen``, when given, collects every contig name of the file (after aliases),
    so a caller can tell "no features here" from "the names do not match".
    """
    aliases = aliases or {}
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n").rstrip("\r")
            if n == 1 and is_binary_line(line):
                raise InputError(f"{path}: binary content, not GFF (a compressed format other than gzip?)")
            if not line or line.startswith("#"):
                if line.startswith("##FASTA"):
                    return
                continue
            f = line.split("\t")
            while len(f) > 9 and not f[-1].strip():  # trailing tabs
                f.pop()
            if len(f) != 9:
                raise InputError(f"{path}:{n}: a GFF3 line needs 9 tab-separated columns, got {len(f)}")
            a, b = f[3].strip(), f[4].strip()
            if not (a.isascii() and a.isdigit() and b.isascii() and b.isdigit()) or not 1 <= int(a) <= int(b):
                raise InputError(f"{path}:{n}: start and end must be whole numbers with 1 <= start <= end, "
                                 f"got {f[3]!r} and {f[4]!r}")
            name = aliases.get(f[0], f[0])
            if seen is not None:
                seen.add(name)
            s, e = int(a) - 1, int(b)  # 1-based closed -> 0-based half-open
            if contig is not None and name != contig:
                continue
            if (start is not None and e <= start) or (end is not None and s >= end):
                continue
            phase = int(f[7]) if f[7].strip() in ("0", "1", "2") else None
            yield Feature(name, f[2], s, e, f[6], _attributes(f[8]), f[1], phase)
