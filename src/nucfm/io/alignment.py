"""Multiple alignments projected onto a target genome, for GPN-MSA (``nucfm vep --msa``).

An :class:`Alignment` holds, per target chromosome, an (L, S) array of ASCII letters: row ``i``
is target position ``i`` (0-based), column 0 the target species, columns 1.. the aligned
species in a fixed order. It answers the genome questions of the variant code (``fetch``,
``length``, ``resolve``: the target sequence is the reference, as in GPN-MSA) and
:meth:`Alignment.aligned` gives the letters of every species for a window.

Three sources:

* GPN-MSA's own release format (``gpn.data.GenomeMSA``): a Zarr group with one uint8 array
  (L, S) per chromosome, target first (e.g. ``89.zarr`` of ``songlab/multiz100way``); read
  lazily, window by window (needs ``zarr``: ``pip install nucfm[msa]``);
* MAF (UCSC multiz; ``src`` = ``species.chrom``): the first ``s`` line of each block is the
  target; columns with a gap in the target are dropped (insertions relative to it), a species
  absent from a block reads ``-`` there;
* aligned FASTA of one region: the first record is the target, its header
  ``>SPECIES CHROM:START-END`` (1-based, inclusive) places it; the same column rule.

Letters follow GPN-MSA's tokenizer: upper-cased; anything but A, C, G, T (gaps, ``N``, missing
species, positions past a contig end or outside an alignment of a region) reads ``-``, its
gap/unknown/padding token. A species list (``species``: target first) fixes the column order
of MAF and FASTA input, a listed species missing from the alignment reads ``-`` throughout
(counted in a warning), and an unlisted one is dropped (counted); without it the order is that
of first appearance.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.io.fasta import open_text
from nucfm.io.genome import Contigs

log = logging.getLogger("nucfm")

GAP = ord("-")
MSA_LETTERS = "-ACGT"  # GPN-MSA's auxiliary feature vocabulary (its tokenizer without the mask '?')
_TOKENS = np.zeros(256, dtype=np.uint8)  # ASCII -> 0..4; every other byte -> 0 ('-')
for _i, _c in enumerate(MSA_LETTERS):
    _TOKENS[ord(_c)] = _TOKENS[ord(_c.lower())] = _i
_UPPER = np.frombuffer(bytes(range(256)).upper(), dtype=np.uint8)
_COMPLEMENT_TOKENS = np.array([0, 4, 3, 2, 1], dtype=np.uint8)  # - A C G T -> - T G C A


def msa_tokens(letters: np.ndarray) -> np.ndarray:
    """GPN-MSA tokens (``-ACGT`` = 0..4, case folded, any other byte 0) of uint8 ASCII letters."""
    return _TOKENS[letters]


def reverse_complement_tokens(tokens: np.ndarray, axis: int) -> np.ndarray:
    """Reverse complement of ``-ACGT`` tokens along ``axis`` (the position axis)."""
    return _COMPLEMENT_TOKENS[np.flip(tokens, axis=axis)]


class Alignment(Contigs):
    """A multiple alignment keyed by target chromosome (see the module docstring).

    ``arrays[chrom]`` is (L_c, S) uint8 (numpy or a lazy Zarr array) covering target positions
    ``[offsets[chrom], offsets[chrom] + L_c)``; ``lengths[chrom]`` is the chromosome's length.
    """

    def __init__(self, path: Path, arrays: dict, offsets: dict[str, int], lengths: dict[str, int],
                 species: list[str] | None, aliases: dict[str, str] | None = None):
        self.path = Path(path)
        self.arrays, self.offsets, self.lengths = arrays, offsets, lengths
        self.species = species
        self.aliases = dict(aliases or {})
        if not arrays:
            raise InputError(f"{path}: the alignment holds no target sequence")
        self.n_species = int(next(iter(arrays.values())).shape[1])

    # ---- the genome interface of the variant code (io/variants, tasks/variants) ---------------
    def unknown_contig_message(self, chrom: str) -> str:
        names = ", ".join(list(self.lengths)[:10])
        return f"contig {chrom!r} is not in the alignment {self.path.name}; its target contigs: {names}"

    def covered(self, chrom: str) -> tuple[int, int]:
        """The target interval [start, end) (0-based) the alignment has rows for."""
        name = self.resolve(chrom)
        return self.offsets[name], self.offsets[name] + int(self.arrays[name].shape[0])

    def aligned(self, chrom: str, start: int, end: int) -> np.ndarray:
        """(end - start, S) uint8 letters of every species at target ``[start, end)``, ``-`` where
        the alignment has no row (past a contig end, outside an alignment of a region)."""
        name = self.resolve(chrom)
        lo, hi = self.covered(name)
        out = np.full((end - start, self.n_species), GAP, dtype=np.uint8)
        a, b = max(start, lo), min(end, hi)
        if a < b:
            out[a - start : b - start] = np.asarray(self.arrays[name][a - lo : b - lo])
        return out

    def fetch(self, chrom: str, start: int, end: int, pad: str | None = "N") -> str:
        """The target's letters at ``[start, end)``, upper case; ``N`` where it has no base (the
        variant code's REF check then names the position)."""
        col = _UPPER[self.aligned(chrom, start, end)[:, 0]]
        col[~np.isin(col, np.frombuffer(b"ACGT", dtype=np.uint8))] = ord("N")
        return col.tobytes().decode("ascii")

    def check_covers(self, sites) -> None:
        """One-line error for the first (chrom, 0-based start) the alignment has no row for."""
        for chrom, start in sites:
            if not self.has(chrom):
                raise InputError(self.unknown_contig_message(chrom))
            lo, hi = self.covered(chrom)
            if not lo <= start < hi:
                raise InputError(f"the alignment {self.path.name} does not cover {chrom}:{start + 1} "
                                 f"(it covers {self.resolve(chrom)}:{lo + 1}-{hi})")

    def check_model(self, n_aligned: int, model_name: str = "the model") -> None:
        """Refuse an alignment whose species count differs from what the model reads."""
        if self.n_species - 1 != n_aligned:
            raise InputError(f"the alignment {self.path.name} has {self.n_species} species (target + "
                             f"{self.n_species - 1}); {model_name} reads the target + {n_aligned} aligned species")

    def __repr__(self) -> str:
        return f"Alignment({str(self.path)!r}, {len(self.lengths)} contigs, {self.n_species} species)"


# ---- readers ------------------------------------------------------------------------------------
def read_alignment(path: str | Path, species: list[str] | None = None,
                   aliases: dict[str, str] | None = None) -> Alignment:
    """An :class:`Alignment` from a Zarr directory (GPN-MSA's format), a MAF[.gz] or an aligned
    FASTA[.gz] of one region, by its name; ``species`` (target first) fixes the column order of
    MAF and FASTA input (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such alignment")
    name = path.name.lower().removesuffix(".gz")
    if path.is_dir() or name.endswith(".zarr"):
        return _read_zarr(path, aliases)
    if name.endswith(".maf"):
        records = _maf_blocks(path)
    elif name.endswith((".fa", ".fasta", ".fas", ".afa", ".fna")):
        records = [_fasta_block(path)]
    else:
        raise InputError(f"{path}: an alignment must be a .zarr directory, .maf[.gz] or aligned .fa/.fasta[.gz]")
    return _project(path, records, species, aliases)


def read_species_list(spec: str | None) -> list[str] | None:
    """Species names, target first, from a comma-separated list or a file of one name a line."""
    if not spec:
        return None
    p = Path(spec)
    names = p.read_text().split() if p.is_file() else [s.strip() for s in spec.split(",") if s.strip()]
    if len(set(names)) != len(names):
        raise InputError(f"species list {spec}: a name appears twice")
    return names


def _read_zarr(path: Path, aliases) -> Alignment:
    try:
        import zarr
    except ImportError:
        raise InputError("reading a Zarr alignment needs zarr: pip install 'nucfm[msa]'") from None
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as e:
        raise InputError(f"{path}: not a Zarr group of per-chromosome alignment arrays ({type(e).__name__}: {e})") \
            from None
    arrays = {}
    for name, arr in root.arrays():
        if arr.ndim != 2 or arr.dtype.itemsize != 1:
            raise InputError(f"{path}/{name}: expected a 2-D array of one-byte letters (positions x species), "
                             f"got shape {arr.shape} {arr.dtype}")
        arrays[name] = _ByteView(arr)
    counts = {a.shape[1] for a in arrays.values()}
    if len(counts) > 1:
        raise InputError(f"{path}: chromosomes have different species counts {sorted(counts)}")
    species = root.attrs.get("species")
    return Alignment(path, arrays, {c: 0 for c in arrays}, {c: int(a.shape[0]) for c, a in arrays.items()},
                     list(species) if species else None, aliases)


class _ByteView:
    """A Zarr array of ``S1`` or ``uint8`` letters read as uint8 rows, through a small cache of
    whole blocks: a genome-wide alignment is compressed in large chunks, and variants close to
    each other (a sorted VCF) then decompress each chunk once instead of once per window."""

    BLOCK = 1 << 16  # rows per cached block (65,536 x 90 species = 5.9 MB)
    KEEP = 4  # blocks kept

    def __init__(self, arr):
        self.arr, self.shape = arr, arr.shape
        self._blocks: dict[int, np.ndarray] = {}

    def _block(self, k: int) -> np.ndarray:
        if k not in self._blocks:
            if len(self._blocks) >= self.KEEP:
                self._blocks.pop(next(iter(self._blocks)))  # the oldest
            self._blocks[k] = np.asarray(self.arr[k * self.BLOCK : (k + 1) * self.BLOCK]).view(np.uint8)
        return self._blocks[k]

    def __getitem__(self, key: slice) -> np.ndarray:
        a, b = key.start, key.stop  # 0 <= a < b <= len (Alignment.aligned clips)
        parts = [self._block(k)[max(a, k * self.BLOCK) - k * self.BLOCK : min(b, (k + 1) * self.BLOCK) - k * self.BLOCK]
                 for k in range(a // self.BLOCK, (b - 1) // self.BLOCK + 1)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _maf_blocks(path: Path) -> list[list[tuple[str, str, int, int, str, int, str]]]:
    """MAF blocks, each a list of (species, chrom, start, size, strand, src_size, text) rows."""
    blocks, block = [], None
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if line.startswith("a"):
                block = []
                blocks.append(block)
            elif line.startswith("s "):
                f = line.split()
                if len(f) != 7 or block is None:
                    raise InputError(f"{path}:{n}: not a MAF 's' line inside an 'a' block")
                src = f[1]
                sp, _, chrom = src.partition(".")
                try:
                    block.append((sp, chrom or src, int(f[2]), int(f[3]), f[4], int(f[5]), f[6]))
                except ValueError:
                    raise InputError(f"{path}:{n}: start, size and srcSize of a MAF 's' line must be integers") \
                        from None
    if not any(blocks):
        raise InputError(f"{path}: no alignment blocks ('a' then 's' lines)")
    return [b for b in blocks if b]


def _fasta_block(path: Path) -> list[tuple[str, str, int, int, str, int, str]]:
    """An aligned FASTA as one MAF-like block; the first header places the target."""
    records, header = [], None
    with open_text(path) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                records.append([line[1:], []])
            elif line and records:
                records[-1][1].append(line)
    if not records:
        raise InputError(f"{path}: no FASTA records")
    header = records[0][0].split()
    m = re.fullmatch(r"(.+):([\d,]+)-([\d,]+)", header[1]) if len(header) > 1 else None
    if m is None:
        raise InputError(f"{path}: the first (target) record's header must be '>SPECIES CHROM:START-END' "
                         f"(1-based, inclusive), not {records[0][0]!r}")
    chrom, start, end = m[1], int(m[2].replace(",", "")) - 1, int(m[3].replace(",", ""))
    rows = []
    for name, parts in records:
        text = "".join(parts)
        rows.append((name.split()[0], chrom, start, end - start, "+", end, text))
    widths = {len(r[6]) for r in rows}
    if len(widths) > 1:
        raise InputError(f"{path}: aligned sequences have different lengths {sorted(widths)}")
    ungapped = sum(c not in "-." for c in rows[0][6])
    if ungapped != end - start:
        raise InputError(f"{path}: the target has {ungapped} bases but its header says {end - start}")
    return rows


def _project(path: Path, blocks, species: list[str] | None, aliases) -> Alignment:
    """Project blocks onto the target: per target chromosome an (L, S) array over the interval
    the blocks span (rows between blocks read '-')."""
    target = blocks[0][0][0]
    order = list(species) if species else list(dict.fromkeys(r[0] for b in blocks for r in b))
    if order[0] != target:
        raise InputError(f"{path}: the target species is {target!r} (first row) but the species list starts "
                         f"with {order[0]!r}")
    col = {s: i for i, s in enumerate(order)}
    seen, dropped, dup = set(), set(), 0
    spans: dict[str, list] = {}
    for b in blocks:
        sp, chrom, start, size, strand, src_size, text = b[0]
        if sp != target:
            raise InputError(f"{path}: a block starts with {sp!r}, not the target {target!r}")
        if strand != "+":
            raise InputError(f"{path}: the target row of a block is on the '-' strand; only '+' target rows "
                             "can be projected")
        spans.setdefault(chrom, []).append((start, size, src_size, b))
    arrays, offsets, lengths = {}, {}, {}
    for chrom, items in spans.items():
        lo = min(s for s, _, _, _ in items)
        hi = max(s + n for s, n, _, _ in items)
        arr = np.full((hi - lo, len(order)), GAP, dtype=np.uint8)
        for start, size, _, b in items:
            keep = np.frombuffer(b[0][6].encode("ascii"), dtype=np.uint8) != GAP  # target columns with a base
            if int(keep.sum()) != size:
                raise InputError(f"{path}: a {target}.{chrom} row has {int(keep.sum())} bases, its size field {size}")
            used = set()
            for sp, _, _, _, _, _, text in b:
                if sp not in col:
                    dropped.add(sp)
                    continue
                if sp in used:
                    dup += 1  # paralogous rows: the first is kept
                    continue
                used.add(sp)
                seen.add(sp)
                row = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
                if len(row) != len(keep):
                    raise InputError(f"{path}: rows of a block differ in length ({sp})")
                arr[start - lo : start - lo + size, col[sp]] = row[keep]
        arrays[chrom], offsets[chrom], lengths[chrom] = arr, lo, max(src for _, _, src, _ in items)
    missing = [s for s in order if s not in seen]
    if missing:
        log.warning("%s: %d species of the list are not in the alignment and read as gaps: %s", path.name,
                    len(missing), ", ".join(missing[:10]))
    if dropped:
        log.warning("%s: %d species are not in the species list and are left out: %s", path.name, len(dropped),
                    ", ".join(sorted(dropped)[:10]))
    if dup:
        log.warning("%s: %d repeated species rows within blocks (the first of each is used)", path.name, dup)
    return Alignment(path, arrays, offsets, lengths, order, aliases)
