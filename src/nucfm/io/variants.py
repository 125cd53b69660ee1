"""Variant files in and out: VCF / VCF.gz, TSV, CSV, Parquet; 1-based positions become 0-based here.

Inputs (text decoded as UTF-8, a leading byte-order mark dropped; gzip/bgzip found by content):

* **VCF** (plain or gzip/bgzip): ``##`` header lines and the ``#CHROM`` line are kept; each
  record becomes one row per ALT allele (multi-allelic records are split), keeping CHROM, POS,
  ID, REF, ALT (the one allele), QUAL, FILTER, INFO. Sample columns are kept only for VCF output.
* **TSV / CSV / Parquet** with columns ``chrom, pos, ref, alt`` (``pos`` 1-based, as VCF and
  GPN); every other column is kept. An ``alt`` holding ``A,T`` is split like a VCF.

Each row gets a normalised :class:`Variant` (0-based ``start``, upper-case alleles) and, after
:func:`check_variants` against the genome, a ``status``: ``ok`` or the reason it is not scored.
No row is ever dropped and one bad row never fails the file. Reasons, in the order checked:

* ``invalid_pos``: POS is not a whole number >= 1 (``100.7``, ``abc``, ``-5``, ``0``, empty;
  integral floats such as a Parquet ``100.0`` are accepted, text must be digits). Such rows
  carry ``start == -1``.
* ``missing_allele`` (``.`` or empty), ``symbolic_allele`` (``<DEL>``), ``spanning_deletion``
  (``*``), ``breakend`` (``N[chr1:123[``, ``.A``), ``invalid_allele`` (any other letter than
  A, C, G, T, N);
* ``unknown_contig``, ``pos_out_of_range``, ``ref_mismatch:genome=X``;
* ``ref_not_acgt`` / ``alt_not_acgt`` (an ``N`` in an allele); ``allele_too_long``: the bases
  that differ between the REF and ALT haplotypes (:func:`variant_span`, a repeat-shiftable indel
  counted over its whole repeat) exceed ``max_span`` (``nucfm vep``: a quarter of the window);
  ``not_snv``: an MNV or indel given to a GPN-MSA model (SNVs only, as its official code).

SNVs, MNVs and indels are all ``ok`` when they pass these checks; REF == ALT is ``ok`` (score 0).
Overlapping records are each scored against the reference on their own.

Outputs (:func:`write_scored`): tables keep the input rows and columns and add ``score`` (and
``score_fwd``, ``score_rev`` on request) and ``status``. **User columns are never overwritten**:
if any of those four names (any case) already is an input column, *all* of nucfm's columns get
the prefix ``nucfm_`` (``nucfm_score``, ``nucfm_status``, ...; the prefix repeats in the unlikely
case that still collides), and a warning says so. VCF output is the input file with INFO fields
(``Number=A``: one value per ALT allele, ``.`` where not scored) declared in the header; its keys
are namespaced already (``NUCFM_SCORE``, ``NUCFM_SCORE_STATUS``).

Every ``.gz`` / ``.bgz`` output (VCF and tables) is BGZF, written by htslib through pysam: valid
gzip for any reader, and a position-sorted VCF (nucfm keeps the input order) can be indexed by
``tabix -p vcf`` / ``bcftools index`` directly.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nucfm.errors import InputError
from nucfm.io.fasta import is_binary_line, open_text

log = logging.getLogger("nucfm")
VCF_FIXED = ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
TABLE_FORMATS = ("tsv", "csv", "parquet")
ACGT = set("ACGT")
ACGTN = set("ACGTN")
INVALID_POS = "invalid_pos"
OUTPUT_NAMES = ("score", "score_fwd", "score_rev", "status")


@dataclass(frozen=True)
class Variant:
    """One allele: ``start`` is 0-based (``pos - 1``; -1 when the input's POS is unusable,
    see ``VariantTable.read_status``); ``ref``/``alt`` upper case."""

    chrom: str
    start: int
    ref: str
    alt: str

    @property
    def pos(self) -> int:
        """1-based position, as in VCF."""
        return self.start + 1

    @property
    def kind(self) -> str:
        if len(self.ref) == 1 and len(self.alt) == 1:
            return "snv"
        return "mnv" if len(self.ref) == len(self.alt) else "indel"


@dataclass
class VariantTable:
    """Rows of a variant file, one per ALT allele, in input order.

    ``table`` holds the input's columns (VCF: the eight fixed ones, ALT split); ``variants[i]``
    is row ``i`` normalised; for VCF, ``record[i]`` / ``allele[i]`` locate the row in
    ``records`` (raw lines) so a VCF can be written back with a per-allele INFO value.
    """

    path: Path
    format: str  # "vcf" or one of TABLE_FORMATS
    table: pd.DataFrame
    variants: list[Variant]
    header: list[str] = field(default_factory=list)  # VCF: "##" lines and the "#CHROM" line
    records: list[str] = field(default_factory=list)  # VCF: raw record lines
    record: np.ndarray | None = None  # (N,) record index of each row
    allele: np.ndarray | None = None  # (N,) 0-based ALT index within its record
    status: np.ndarray | None = None  # (N,) object: "ok" or a reason, set by check_variants
    read_status: np.ndarray | None = None  # (N,) object: "" or a reason found on reading (invalid_pos)
    input_rows: int | None = None  # rows of the file this was read from (VCF records; table rows before ALTs split)

    def __len__(self) -> int:
        return len(self.variants)


def detect_format(path: str | Path) -> str:
    """``vcf``, ``tsv``, ``csv`` or ``parquet`` from the file name (``.gz`` / ``.bgz`` ignored)."""
    from nucfm.io.tables import table_format

    if Path(path).name.lower().removesuffix(".gz").removesuffix(".bgz").endswith(".vcf"):
        return "vcf"
    fmt = table_format(path)
    if fmt is None:
        raise InputError(f"{path}: unknown variant file type; use .vcf[.gz], .tsv[.gz], .csv[.gz] or .parquet")
    return fmt


def read_variants(path: str | Path) -> VariantTable:
    """Read a VCF / TSV / CSV / Parquet variant file (1-based positions) into rows of alleles.

    >>> vt = read_variants("variants.vcf.gz")  # doctest: +SKIP
    >>> vt.variants[0]  # doctest: +SKIP
    Variant(chrom='1', start=99, ref='A', alt='G')
    """
    return next(iter_variant_chunks(path, None))


def iter_variant_chunks(path: str | Path, rows: int | None = 65536) -> Iterator[VariantTable]:
    """:func:`read_variants` in pieces of about ``rows`` alleles each (a VCF's pieces hold whole
    records, so a piece can be longer by the ALTs of its last record; ``None``: the whole file as
    one piece), streamed: memory holds one piece. Always at least one piece (an input with no
    rows gives one empty piece, which carries the header or the columns)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such variant file")
    fmt = detect_format(path)
    yield from _vcf_chunks(path, rows) if fmt == "vcf" else _table_chunks(path, fmt, rows)


def count_rows(path: str | Path) -> int:
    """Data rows of a variant file (VCF records, before ALTs are split; table rows), counted by
    streaming (Parquet: from its metadata): the total of a progress bar, and for a VCF a first
    pass that checks every record's shape before any work."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if fmt == "vcf":  # every record's shape checked on the way: a bad line fails before any scoring
        return sum(cols is not None for _, cols in _vcf_lines(path))
    with open_text(path) as fh:
        return max(0, sum(bool(line.strip()) for line in fh) - 1)  # less the header


def chunk_table(vt: VariantTable, rows: int) -> Iterator[VariantTable]:
    """An in-memory table in pieces of about ``rows`` alleles (a VCF's whole records), as
    :func:`iter_variant_chunks` reads a file; at least one piece."""
    bounds = [0]
    while bounds[-1] < len(vt):
        b = min(len(vt), bounds[-1] + max(1, rows))
        if vt.record is not None:  # whole records
            while b < len(vt) and vt.record[b] == vt.record[b - 1]:
                b += 1
        bounds.append(b)
    if len(bounds) == 1:
        bounds.append(0)
    for a, b in zip(bounds, bounds[1:]):
        piece = VariantTable(vt.path, vt.format, vt.table.iloc[a:b].reset_index(drop=True), vt.variants[a:b],
                             header=vt.header,
                             read_status=None if vt.read_status is None else vt.read_status[a:b])
        if vt.record is not None:
            r0 = int(vt.record[a]) if b > a else 0
            r1 = int(vt.record[b - 1]) + 1 if b > a else 0
            piece.records, piece.record, piece.allele = vt.records[r0:r1], vt.record[a:b] - r0, vt.allele[a:b]
        yield piece


def _allele_status(a: str) -> str | None:
    """Why allele ``a`` (upper case) cannot be scored, or None when it is A/C/G/T/N letters."""
    if set(a) <= ACGTN and a:
        return None
    if a in ("", "."):
        return "missing_allele"
    if a.startswith("<") and a.endswith(">"):
        return "symbolic_allele"
    if a == "*":
        return "spanning_deletion"
    if "[" in a or "]" in a or a.startswith(".") or a.endswith("."):
        return "breakend"
    return "invalid_allele"


def _vcf_chunks(path: Path, rows: int | None) -> Iterator[VariantTable]:
    header: list[str] = []
    records: list[str] = []
    fields, rec_idx, alt_idx = [], [], []
    yielded = False

    def piece() -> VariantTable:
        table = pd.DataFrame(fields, columns=VCF_FIXED, dtype=object)
        variants, read_status = _normalise(path, table["CHROM"], table["POS"], table["REF"], table["ALT"])
        return VariantTable(path, "vcf", table, variants, header=header, records=records,
                            record=np.asarray(rec_idx, dtype=np.int64), allele=np.asarray(alt_idx, dtype=np.int64),
                            read_status=read_status, input_rows=len(records))

    for line, cols in _vcf_lines(path):
        if cols is None:
            header.append(line)
            continue
        if rows is not None and len(fields) >= rows:
            yield piece()
            yielded = True
            records, fields, rec_idx, alt_idx = [], [], [], []
        cols += ["."] * (8 - len(cols))
        r = len(records)
        records.append(line)
        for a, alt in enumerate(cols[4].split(",")):
            fields.append(cols[:4] + [alt] + cols[5:8])
            rec_idx.append(r)
            alt_idx.append(a)
    if not header:
        raise InputError(f"{path}: empty file or no VCF header")
    if fields or not yielded:
        yield piece()


def _vcf_lines(path: Path) -> Iterator[tuple[str, list[str] | None]]:
    """A VCF's non-empty lines, checked: ``(line, None)`` for a header line, ``(line, columns)``
    for a record (at least 5 tab-separated columns, after a ``#CHROM`` line, no header after it)."""
    seen_record, last_header = False, ""
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n").rstrip("\r")
            if n == 1 and is_binary_line(line):
                raise InputError(f"{path}: binary content, not VCF (a compressed format other than gzip?)")
            if not line:
                continue
            if line.startswith("#"):
                if seen_record:
                    raise InputError(f"{path}:{n}: header line after the first record")
                last_header = line
                yield line, None
                continue
            if not seen_record and not last_header.startswith("#CHROM"):
                raise InputError(f"{path}: not a VCF: no '#CHROM' header line before the first record")
            seen_record = True
            cols = line.split("\t")
            if len(cols) < 5:
                raise InputError(f"{path}:{n}: a VCF record needs at least 5 tab-separated columns, got {len(cols)}")
            yield line, cols


def _table_chunks(path: Path, fmt: str, rows: int | None) -> Iterator[VariantTable]:
    from nucfm.io.tables import read_table_chunks

    yielded = False
    for table in read_table_chunks(path, fmt, chunk_rows=rows):
        yield _table_piece(path, fmt, table)
        yielded = True
    if not yielded:  # no data rows: the one (empty) piece carries the columns
        yield _table_piece(path, fmt, next(read_table_chunks(path, fmt, chunk_rows=None)))


def _table_piece(path: Path, fmt: str, table: pd.DataFrame) -> VariantTable:
    cols = {str(c).lower().lstrip("#"): c for c in table.columns}
    missing = [c for c in ("chrom", "pos", "ref", "alt") if c not in cols]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; need chrom, pos (1-based), ref, alt; "
                         f"found {list(table.columns)}")
    alt_col, n = cols["alt"], len(table)
    alts = table[alt_col].astype(str)
    if alts.str.contains(",").any():  # multi-allelic rows: one row per allele
        table = table.assign(**{alt_col: alts.str.split(",")}).explode(alt_col, ignore_index=True)
    variants, read_status = _normalise(path, table[cols["chrom"]], table[cols["pos"]], table[cols["ref"]],
                                       table[alt_col])
    return VariantTable(path, fmt, table.reset_index(drop=True), variants, read_status=read_status, input_rows=n)


def _parse_pos(p) -> int | None:
    """A 1-based position >= 1 from a table cell, or None: text must be ASCII digits; numbers
    (Parquet) must be integral (a float column of whole numbers is fine)."""
    if isinstance(p, (bool, np.bool_)):
        return None
    if isinstance(p, (int, np.integer)):
        v = int(p)
    elif isinstance(p, (float, np.floating)):
        v = int(p) if np.isfinite(p) and float(p).is_integer() else None
    else:
        t = str(p).strip()
        v = int(t) if t.isascii() and t.isdigit() else None
    return v if v is not None and v >= 1 else None


def _normalise(path, chrom, pos, ref, alt) -> tuple[list[Variant], np.ndarray]:
    """Variants (``start = -1`` where POS is unusable) and the per-row read status ("" or
    ``invalid_pos``); bad positions are logged, never fatal."""
    variants, read_status, bad = [], np.full(len(chrom), "", dtype=object), []
    for i, (c, p, r, a) in enumerate(zip(chrom, pos, ref, alt)):
        v = _parse_pos(p)
        if v is None:
            read_status[i] = INVALID_POS
            bad.append(p)
        variants.append(Variant(str(c), -1 if v is None else v - 1, str(r).upper(), str(a).upper()))
    if bad:
        log.warning("%s: %d row(s) with a position that is not a whole number >= 1 (e.g. %s) get status %s",
                    path, len(bad), ", ".join(repr(b) for b in bad[:3]), INVALID_POS)
    return variants, read_status


def check_variants(vt: VariantTable, genome, strict_ref: bool = False, max_span: int | None = None,
                   all_unknown_fails: bool = True) -> np.ndarray:
    """Set and return ``vt.status`` (N,): ``ok`` for scorable variants, else the reason (see the
    module docstring for the list). Every row gets a status; none is dropped.

    ``strict_ref`` raises InputError on the first REF mismatch instead of marking the row;
    ``max_span`` (bases) marks longer variants ``allele_too_long`` (None: no limit). When every
    row is on a contig the genome lacks (names spelled differently, ``chr1`` vs ``1``) it is an
    InputError naming the contig, unless ``all_unknown_fails`` is off (a later piece of a file).
    """
    status = np.empty(len(vt), dtype=object)
    read_status = vt.read_status if vt.read_status is not None else np.full(len(vt), "", dtype=object)
    for i, v in enumerate(vt.variants):
        allele = _allele_status(v.ref) or _allele_status(v.alt)
        if read_status[i]:
            status[i] = read_status[i]
        elif allele:
            status[i] = allele
        elif not genome.has(v.chrom):
            status[i] = "unknown_contig"
        elif v.start < 0 or v.start + len(v.ref) > genome.length(v.chrom):
            status[i] = "pos_out_of_range"
        else:
            seq = genome.fetch(v.chrom, v.start, v.start + len(v.ref)).upper()
            if seq != v.ref:
                if strict_ref:
                    raise InputError(f"{vt.path}: REF {v.ref} at {v.chrom}:{v.pos} differs from the genome's {seq} "
                                     "(omit --strict-ref to mark such rows instead)")
                status[i] = f"ref_mismatch:genome={seq}"
            elif not set(v.ref) <= ACGT:
                status[i] = "ref_not_acgt"
            elif not set(v.alt) <= ACGT:
                status[i] = "alt_not_acgt"
            elif max_span is not None and v.kind != "snv" and max(
                    (sp := variant_span(genome, v, limit=max_span))[1] - sp[0], len(sp[2])) > max_span:
                status[i] = "allele_too_long"
            else:
                status[i] = "ok"
    unknown = sorted({v.chrom for v, s in zip(vt.variants, status) if s == "unknown_contig"})
    if unknown and all_unknown_fails and all(s == "unknown_contig" for s in status):
        raise InputError(genome.unknown_contig_message(unknown[0]))
    vt.status = status
    return status


def variant_span(genome, v: Variant, limit: int = 1 << 20) -> tuple[int, int, str]:
    """The representation-invariant change of a variant: ``(u, v, alt)`` such that the ALT
    haplotype is ``genome[:u] + alt + genome[v:]`` (0-based half-open REF interval ``[u, v)``).

    Shared bases of REF and ALT are trimmed, and an indel that can slide in a repeat covers
    *every* placement (the union of its left- and right-aligned forms, Tan et al. 2015,
    Bioinformatics 31:2202), so ``chr1:10 CA>C`` and its right-shifted twin in ``CACACA`` give
    the same span: anything computed from the span and the two haplotypes does not depend on
    how the VCF wrote the variant (no normaliser needed). REF == ALT gives an empty span
    ``(start, start, "")``. The local context grows until the span stops at a differing base or
    a contig end, or exceeds ``limit`` (the caller then rejects the variant).
    """
    if v.ref == v.alt:
        return v.start, v.start, ""
    if len(v.ref) == 1 and len(v.alt) == 1:
        return v.start, v.start + 1, v.alt
    n = genome.length(v.chrom)
    margin = 16
    while True:
        lo, hi = max(0, v.start - margin), min(n, v.start + len(v.ref) + margin)
        R = genome.fetch(v.chrom, lo, hi).upper()
        A = R[: v.start - lo] + v.alt + R[v.start - lo + len(v.ref):]
        m = min(len(R), len(A))
        p = next((k for k in range(m) if R[k] != A[k]), m)  # common prefix
        q = next((k for k in range(m) if R[-1 - k] != A[-1 - k]), m)  # common suffix
        left, right = min(p, m - q), min(q, m - p)  # left-aligned start, right-aligned end
        u, w = lo + left, hi - right
        grow = (left == 0 and lo > 0) or (right == 0 and hi < n)
        if not grow or max(w - u, len(A) - right - left) > limit:
            return u, w, A[left : len(A) - right]
        margin *= 2


def status_counts(status: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(np.asarray([s.split(":")[0] for s in status], dtype=object), return_counts=True)
    return {str(k): int(c) for k, c in zip(keys, counts)}


# ---- output ------------------------------------------------------------------------------------
def output_format(path: str | Path) -> str:
    return detect_format(path)


def check_scored_output(path: str | Path, variants: str | Path) -> str:
    """The format of a scored-variants output ``path`` for the input file ``variants``, or a
    one-line error (unknown extension, compressed Parquet, VCF output from a non-VCF input),
    from the names alone: callers check before any work."""
    fmt = output_format(path)
    if fmt == "parquet" and Path(path).name.lower().endswith((".gz", ".bgz")):
        raise InputError(f"{path}: Parquet is compressed inside the file; drop the .gz suffix")
    if fmt == "vcf" and detect_format(variants) != "vcf":
        raise InputError(f"{path}: VCF output needs a VCF input ({variants} is {detect_format(variants).upper()}); "
                         "write .tsv, .csv or .parquet")
    return fmt


def _open_out(path: Path, gz: bool):
    """A UTF-8 text writer; BGZF-compressed when ``gz`` (htslib's writer, via pysam, so tabix
    and bcftools accept the file; BGZF is also plain multi-member gzip for every other reader)."""
    if gz:
        import pysam

        return io.TextIOWrapper(pysam.BGZFile(str(path), "wb"), encoding="utf-8", newline="\n")
    return open(path, "w", encoding="utf-8", newline="\n")


def output_names(table: pd.DataFrame, names) -> dict[str, str]:
    """{nucfm column: name written}: ``names`` themselves, or all prefixed with ``nucfm_``
    (repeatedly) when any of them equals an input column, ignoring case.

    >>> output_names(pd.DataFrame(columns=["chrom", "Score"]), ["score", "status"])
    {'score': 'nucfm_score', 'status': 'nucfm_status'}
    """
    taken = {str(c).lower() for c in table.columns}
    prefix = ""
    while any((prefix + n).lower() in taken for n in names):
        prefix += "nucfm_"
    return {n: prefix + n for n in names}


def write_scored(vt: VariantTable, columns: dict[str, np.ndarray], path: str | Path,
                 info_key: str = "NUCFM_SCORE", description: str = "nucfm variant score") -> Path:
    """Write the input rows plus ``columns`` (each (N,) float, NaN = not scored, or text such as
    ``consequence``) and ``status``.

    Table outputs (``.tsv[.gz]``, ``.csv[.gz]``, ``.parquet``) keep every input column; nucfm's
    columns are renamed ``nucfm_*`` when their names are taken (:func:`output_names`). A VCF
    output needs a VCF input: each record gets ``{info_key}=v1,v2`` (one value per ALT,
    ``.`` for NaN; for every extra column ``{info_key}_{NAME}``) and ``{info_key}_STATUS``
    (per ALT), both declared in the header. ``.gz`` / ``.bgz`` outputs are BGZF. Written to a
    temporary file, then renamed. (A file scored in pieces: :class:`ScoredFormat` and
    :func:`write_scored_pieces`, which this is the one-piece case of.)

    >>> write_scored(vt, {"score": scores}, "scored.vcf.gz")  # doctest: +SKIP
    """
    status = vt.status if vt.status is not None else np.full(len(vt), "ok", dtype=object)
    form = ScoredFormat(path, vt, {k: _is_text(v) for k, v in columns.items()}, info_key, description)
    return write_scored_pieces(path, form, [form.piece(vt, columns, status)])


class ScoredFormat:
    """How scored rows of one input are written to ``path``: the header (from the first piece
    of the input ``vt``: its columns, or its VCF header) and each piece's rows, so that a file
    scored piece by piece (``nucfm vep``'s chunks) is the same bytes as one written whole.
    ``columns``: nucfm's column names in order, each True when it holds text."""

    def __init__(self, path: str | Path, vt: VariantTable, columns: dict[str, bool],
                 info_key: str = "NUCFM_SCORE", description: str = "nucfm variant score"):
        path = Path(path)
        self.fmt = output_format(path)
        self.gz = path.name.lower().endswith((".gz", ".bgz"))
        if self.fmt == "parquet" and self.gz:
            raise InputError(f"{path}: Parquet is compressed inside the file; drop the .gz suffix")
        if self.fmt == "vcf" and vt.format != "vcf":
            raise InputError(f"{path}: VCF output needs a VCF input ({vt.path} is {vt.format.upper()})")
        self.columns, self.info_key = dict(columns), info_key
        if self.fmt == "vcf":
            self.names = {k: info_key if k == "score" else f"{info_key}_{k.removeprefix('score_').upper()}"
                          for k in columns}
            self.header = self._vcf_header(vt, description)
        else:
            self.names = output_names(vt.table, [*columns, "status"])
            if any(k != v for k, v in self.names.items()):
                log.warning("%s already has a column named like nucfm's (%s, ignoring case); nucfm's columns are "
                            "written as %s", vt.path, ", ".join(OUTPUT_NAMES), ", ".join(self.names.values()))
            self.header = "" if self.fmt == "parquet" else self._text(self.frame(
                vt.table.iloc[:0], {k: np.empty(0, dtype=object if t else np.float64) for k, t in columns.items()},
                np.empty(0, dtype=object)), header=True)

    def frame(self, table: pd.DataFrame, columns: dict[str, np.ndarray], status: np.ndarray) -> pd.DataFrame:
        """The input rows and columns plus nucfm's (renamed on a clash, see :func:`output_names`)."""
        out = table.copy()
        for k, v in columns.items():
            out[self.names[k]] = _column(v)
        out[self.names["status"]] = np.asarray(status).astype(str)
        return out

    def _text(self, frame: pd.DataFrame, header: bool = False) -> str:
        return frame.to_csv(sep="\t" if self.fmt == "tsv" else ",", index=False, header=header, na_rep="NA",
                            float_format="%.7g", lineterminator="\n")

    def piece(self, vt: VariantTable, columns: dict[str, np.ndarray], status: np.ndarray):
        """One piece's rows: text (TSV/CSV/VCF, no header) or a DataFrame (Parquet)."""
        if self.fmt == "vcf":
            return self._vcf_records(vt, columns, status)
        frame = self.frame(vt.table, columns, status)
        return frame if self.fmt == "parquet" else self._text(frame)

    def _vcf_header(self, vt: VariantTable, description: str) -> str:
        names, key = self.names, self.info_key
        decl = [f'##INFO=<ID={names[k]},Number=A,Type={"String" if text else "Float"},Description="{description}'
                f'{"" if k == "score" else " (" + k + ")"}; . = not scored, see {key}_STATUS">'
                for k, text in self.columns.items()]
        decl.append(f'##INFO=<ID={key}_STATUS,Number=A,Type=String,Description="ok, or why the allele was not '
                    f'scored (invalid_pos, symbolic_allele, unknown_contig, ref_mismatch, allele_too_long, ...)">')
        header = [h for h in vt.header[:-1] if not any(h.startswith(f"##INFO=<ID={n},") for n in
                                                      [*names.values(), f"{key}_STATUS"])]
        return "\n".join(header + decl + [vt.header[-1]]) + "\n"

    def _vcf_records(self, vt: VariantTable, columns: dict[str, np.ndarray], status: np.ndarray) -> str:
        per_rec: list[list[int]] = [[] for _ in vt.records]
        for i, r in enumerate(vt.record):
            per_rec[r].append(i)
        ours = {*self.names.values(), f"{self.info_key}_STATUS"}
        lines = []
        for r, line in enumerate(vt.records):
            cols = line.split("\t")
            cols += ["."] * (8 - len(cols))
            rows = per_rec[r]
            fields = [f for f in cols[7].split(";") if f and f != "." and f.split("=")[0] not in ours]
            for k, v in columns.items():
                fields.append(f"{self.names[k]}=" + ",".join(_fmt(v[i]) for i in rows))
            fields.append(f"{self.info_key}_STATUS=" + ",".join(str(status[i]).replace(":", "_").replace("=", "_")
                                                                for i in rows))
            cols[7] = ";".join(fields)
            lines.append("\t".join(cols) + "\n")
        return "".join(lines)


def write_scored_pieces(path: str | Path, form: ScoredFormat, pieces: Iterable) -> Path:
    """Write ``form``'s header and then each piece (from :meth:`ScoredFormat.piece`, or the path
    of a file holding one: text, or a Parquet file) to ``path``, atomically; memory holds one
    piece. Parquet: one row group per piece, the schema of the first."""
    from nucfm.paths import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        if form.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            try:
                for piece in pieces:
                    t = pq.read_table(piece) if isinstance(piece, Path) else pa.Table.from_pandas(
                        piece, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, t.schema)
                    writer.write_table(t.cast(writer.schema) if t.schema != writer.schema else t)
            finally:
                if writer is not None:
                    writer.close()
        else:
            with _open_out(tmp, form.gz) as f:
                f.write(form.header)
                for piece in pieces:
                    f.write(piece.read_text(encoding="utf-8") if isinstance(piece, Path) else piece)
    return path


def _column(v) -> np.ndarray:
    """Scores as float64 (NaN = not scored); text columns (consequence, gene) as str."""
    v = np.asarray(v)
    return v.astype(str) if v.dtype.kind in "OUS" else v.astype(np.float64)


def _is_text(v) -> bool:
    return np.asarray(v).dtype.kind in "OUS"


def _fmt(x) -> str:
    if isinstance(x, str):  # text INFO values: no spaces, commas or semicolons allowed
        return "." if not x else x.replace(",", "&").replace(";", "&").replace(" ", "_")
    x = float(x)
    return "." if np.isnan(x) else f"{x:.7g}"
