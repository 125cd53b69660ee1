"""Random access to a reference genome, 0-based half-open, soft-masking kept as case.

Storage, chosen by the file's content (not its name):

* **plain FASTA** — indexed with pyfaidx (a standard ``.fai`` next to the file, or in
  ``$NUCFM_HOME/fai/`` when that directory is read-only) and read on demand: constant memory
  for any genome size, 6 µs per random 512-bp fetch (2,000 fetches on an uncompressed TAIR10
  chr1: 12 ms; a model forward pass per variant takes ~1 s on a CPU). pyfaidx is pure Python
  and small (pysam, a dependency for BGZF output, was not needed for speed here).
* **gzip or bgzip** — gzip has no random access, so the file is decompressed once into memory
  (one ``str`` per contig): TAIR10 chr1 (30.4 Mb, 10 MB gz) loads in about 0.3 s and takes
  30 MB (``genome_load_s`` in ``bench/vep_vs_official.py``'s output). bgzip is read the same
  way (it is valid multi-member gzip); indexed bgzip access (pysam.FastaFile) is not used yet.
  For genomes too large for memory, decompress once (``gunzip -k``) and pass the plain FASTA.
  Corrupt or truncated gzip data raises an InputError naming the compressed byte offset.
* **plain FASTA starting with a UTF-8 byte-order mark** — pyfaidx cannot index it, so it is
  read into memory like a gzip file (strip the mark to get on-demand access).

Contig names are decoded as UTF-8.

Contig names are the first word of each header. Names in variant files that differ from the
genome's (``chr1`` / ``1`` / ``NC_003070.9``) raise an :class:`InputError` that lists the
genome's contigs; map them explicitly with ``aliases`` (CLI: ``--chrom-alias 1=NC_003070.9`` or a
two-column TSV), never by guessing.

>>> g = Genome("TAIR10_chr1.fna.gz", aliases={"1": "NC_003070.9"})  # doctest: +SKIP
>>> g.fetch("1", -2, 3)  # doctest: +SKIP
'NNCCC'
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from nucfm.alphabet import reverse_complement  # noqa: F401  (re-exported: genome strings)
from nucfm.errors import InputError
from nucfm.io.fasta import GZIP_MAGIC, open_binary

log = logging.getLogger("nucfm")

def parse_region(region: str) -> tuple[str, int, int]:
    """``chrom:start-end`` (1-based, inclusive, as samtools; commas allowed) -> (chrom, start,
    end) 0-based half-open. ``chrom`` alone is not accepted (say the range).

    >>> parse_region("chr1:1,001-1,010")
    ('chr1', 1000, 1010)
    """
    chrom, sep, rng = region.rpartition(":")
    a, dash, b = rng.replace(",", "").partition("-")
    if not sep or not chrom or not dash or not a.isdigit() or not b.isdigit():
        raise InputError(f"region {region!r}: expected CHROM:START-END (1-based, inclusive)")
    start, end = int(a) - 1, int(b)
    if start < 0 or end <= start:
        raise InputError(f"region {region!r}: START must be >= 1 and <= END")
    return chrom, start, end


def parse_aliases(specs: list[str] | None) -> dict[str, str]:
    """``{name_in_input: name_in_genome}`` from ``A=B`` strings or paths of two-column files
    (tab, comma or whitespace separated; ``#`` comments skipped)."""
    out: dict[str, str] = {}
    for spec in specs or []:
        if "=" in spec and not Path(spec).exists():
            a, b = spec.split("=", 1)
            pairs = [(a.strip(), b.strip())]
        else:
            path = Path(spec)
            if not path.is_file():
                raise InputError(f"--chrom-alias {spec!r}: neither NAME=CONTIG nor a file")
            pairs = []
            for n, line in enumerate(path.read_text().splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.replace(",", "\t").split()
                if len(parts) != 2:
                    raise InputError(f"{path}:{n}: expected two columns (name in input, contig in genome)")
                pairs.append((parts[0], parts[1]))
        for a, b in pairs:
            if not a or not b:
                raise InputError(f"--chrom-alias {spec!r}: empty name")
            out[a] = b
    return out


BOM = b"\xef\xbb\xbf"


def _read_fasta_in_memory(path: Path) -> dict[str, str]:
    """Whole (gzip/bgzip or plain) FASTA into memory; one bytes pass (4x faster than line streaming)."""
    with open_binary(path) as f:
        raw = f.read().removeprefix(BOM)
    contigs: dict[str, str] = {}
    if not raw.lstrip().startswith(b">"):
        raise InputError(f"{path}: not FASTA (the first line should start with '>')")
    for block in raw.split(b"\n>"):
        header, _, body = block.partition(b"\n")
        name = header.lstrip(b">").split(None, 1)
        if not name:
            raise InputError(f"{path}: a FASTA header without a name")
        key = name[0].decode("utf-8", errors="replace")
        if key in contigs:
            raise InputError(f"{path}: contig {key!r} appears twice")
        contigs[key] = body.translate(None, b"\r\n\t ").decode("ascii", errors="replace")
    return contigs


class Contigs:
    """Contig names of a sequence source (a genome, an alignment's target): ``lengths`` (name ->
    bases) and ``aliases`` (other name -> contig), resolved the one way every caller uses;
    subclasses say what an unknown name's error reads (:meth:`unknown_contig_message`)."""

    lengths: dict[str, int]
    aliases: dict[str, str]

    def resolve(self, chrom: str) -> str:
        """The contig name for ``chrom`` (itself or its alias); InputError otherwise."""
        if chrom in self.lengths:
            return chrom
        if chrom in self.aliases:
            return self.aliases[chrom]
        raise InputError(self.unknown_contig_message(chrom))

    def has(self, chrom: str) -> bool:
        return chrom in self.lengths or chrom in self.aliases

    def __contains__(self, chrom: str) -> bool:
        return self.has(chrom)

    def length(self, chrom: str) -> int:
        return self.lengths[self.resolve(chrom)]

    def unknown_contig_message(self, chrom: str) -> str:
        raise NotImplementedError


class Genome(Contigs):
    """A reference genome: ``fetch(chrom, start, end)`` 0-based half-open.

    ``aliases`` maps names used in inputs to contig names of this genome.
    """

    def __init__(self, path: str | Path, aliases: dict[str, str] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such genome file")
        with open(self.path, "rb") as f:
            magic = f.read(3)
        self._faidx = None
        self._mem: dict[str, str] | None = None
        if magic[:2] == GZIP_MAGIC or magic == BOM:
            self._mem = _read_fasta_in_memory(self.path)
            self.lengths = {k: len(v) for k, v in self._mem.items()}
        else:
            self._faidx = self._open_faidx()
            self.lengths = {k: len(self._faidx[k]) for k in self._faidx.keys()}
        if not self.lengths:
            raise InputError(f"{self.path}: no sequences")
        self.aliases = dict(aliases or {})
        bad = {a: b for a, b in self.aliases.items() if b not in self.lengths}
        if bad:
            raise InputError(f"chromosome alias target(s) {sorted(bad.values())} not in {self.path}; "
                             f"its contigs: {self._contig_list()}")
        from nucfm.alphabet import check_nucleotide

        for name in list(self.lengths)[:5]:  # a protein FASTA given as the genome: said at once
            check_nucleotide(self.fetch(name, 0, min(self.lengths[name], 10_000), pad=None), name, str(self.path))

    def _open_faidx(self):
        import pyfaidx

        fai = Path(str(self.path) + ".fai")
        indexname = None
        if not fai.exists() and not os.access(self.path.parent, os.W_OK):
            from nucfm.paths import cache_dir

            cache = cache_dir("fai")
            digest = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:12]
            indexname = str(cache / f"{digest}_{self.path.name}.fai")
        try:
            return pyfaidx.Fasta(str(self.path), indexname=indexname, sequence_always_upper=False,
                                 as_raw=True, duplicate_action="stop")
        except (ValueError, pyfaidx.FastaIndexingError, pyfaidx.FastaNotFoundError) as e:
            raise InputError(f"{self.path}: cannot index as FASTA ({e})") from e

    # ---- names --------------------------------------------------------------------------------
    def _contig_list(self, n: int = 10) -> str:
        names = list(self.lengths)
        shown = ", ".join(f"{k} ({self.lengths[k]:,} bp)" for k in names[:n])
        return shown + (f" and {len(names) - n} more" if len(names) > n else "")

    def unknown_contig_message(self, chrom: str) -> str:
        hint = ""
        norm = {k.lower().removeprefix("chr"): k for k in self.lengths}
        if chrom.lower().removeprefix("chr") in norm:
            hint = f" (did you mean {norm[chrom.lower().removeprefix('chr')]!r}?)"
        return (f"contig {chrom!r} is not in {self.path.name}{hint}; its contigs: {self._contig_list()}. "
                f"Map names with --chrom-alias {chrom}=CONTIG (or a two-column TSV file)")

    # ---- sequence -----------------------------------------------------------------------------
    def fetch(self, chrom: str, start: int, end: int, pad: str | None = "N") -> str:
        """Bases ``[start, end)`` of ``chrom`` (0-based, half-open), case as in the file.

        Positions before 0 or past the contig end are filled with ``pad`` (one letter), or
        raise InputError when ``pad`` is None.

        >>> g.fetch("chr1", -2, 3)  # doctest: +SKIP
        'NNacg'
        """
        name = self.resolve(chrom)
        n = self.lengths[name]
        if end < start:
            raise ValueError(f"end {end} < start {start}")
        lo, hi = max(start, 0), min(end, n)
        if (lo != start or hi != end) and pad is None:
            raise InputError(f"{chrom}:{start}-{end} runs past the contig (0..{n})")
        if hi <= lo:
            core = ""
        elif self._mem is not None:
            core = self._mem[name][lo:hi]
        else:
            core = self._faidx[name][lo:hi]
        if lo == start and hi == end:
            return core
        pad = pad or "N"
        return pad * (min(lo, end) - start) + core + pad * (end - max(hi, start))

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, {len(self.lengths)} contigs, {sum(self.lengths.values()):,} bp)"
