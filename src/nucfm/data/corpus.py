"""Pretraining corpora: preparation to disk and streaming batches from memory-mapped files.

Preparation (once per run directory, see :func:`prepare_rna` and :func:`prepare_dna`) encodes
the raw FASTA into a flat ``uint8`` token file plus an ``int64`` offset index, so training
memory-maps the tokens and reads only the rows of the current batch. What stays in memory is
the offset index and one epoch's shuffled order (8-16 bytes per sequence or window), never the
sequences themselves.

RNA (RNA-FM recipe): T->U through the alphabet, exact duplicates removed (the paper's
cd-hit-est at 100 %), sequences shorter than ``min_len`` dropped, random crop to the model's
``max_len`` at batch time. Validation = whole Rfam families, grouped by clan so that no
homologous family stays in training; any training sequence identical to a validation sequence
is dropped too. A corpus whose headers carry no Rfam accession (any RNA FASTA) is split by
similarity instead (:func:`similarity_groups`): groups of sequences sharing k-mer MinHash bands
(near-identical and strongly overlapping sequences) are held out whole, and the log says so.

DNA (GPN recipe): a genome -> windows of ``window`` bases every ``stride`` bases, all-``N``
windows skipped; validation = one contiguous region, and no training window overlaps it.
Tokens keep soft-masking in bit 7 (``id | 128`` = lowercase/repeat) so the loss can weight
repeats; reverse-complement augmentation happens at batch time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nucfm.alphabet import DNA, RNA, Alphabet, EncodingReport
from nucfm.data.baselines import ContextCounts
from nucfm.errors import InputError
from nucfm.io.fasta import open_text, read_fasta
from nucfm.io.genome import parse_region

log = logging.getLogger("nucfm")
FAMILY = re.compile(r"^RF\d{5}$")
SOFT_BIT = 128
PREP_FILE = "prep.json"


# ---- token stores -------------------------------------------------------------------------------
class TokenWriter:
    """Appends id arrays to ``PREFIX.bin`` (uint8) and records offsets for ``PREFIX.idx.npy``."""

    def __init__(self, prefix: Path):
        self.prefix = prefix
        self.fh = open(str(prefix) + ".bin", "wb")
        self.offsets = [0]

    def add(self, ids: np.ndarray) -> None:
        self.fh.write(ids.astype(np.uint8).tobytes())
        self.offsets.append(self.offsets[-1] + len(ids))

    def close(self) -> int:
        self.fh.close()
        np.save(str(self.prefix) + ".idx.npy", np.asarray(self.offsets, dtype=np.int64))
        return len(self.offsets) - 1


class TokenStore:
    """Read-only, memory-mapped sequences written by :class:`TokenWriter`."""

    def __init__(self, prefix: str | Path):
        self.offsets = np.load(str(prefix) + ".idx.npy")
        n = int(self.offsets[-1])
        self.data = (np.memmap(str(prefix) + ".bin", dtype=np.uint8, mode="r", shape=(n,)) if n
                     else np.zeros(0, np.uint8))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.data[self.offsets[i] : self.offsets[i + 1]], dtype=np.int64)

    def span(self, start: int, end: int) -> np.ndarray:
        """Raw tokens ``[start, end)`` of the concatenated data (DNA: soft-mask bit kept)."""
        return np.asarray(self.data[start:end], dtype=np.int64)


def store_to_fasta(store: TokenStore, alphabet: Alphabet, path: str | Path, prefix: str = "seq") -> int:
    """Write every sequence of ``store`` as FASTA (ids ``PREFIX_i``), e.g. the validation split
    for ``nucfm eval-mlm --fasta``. Returns the number of records."""
    from nucfm.io.fasta import Record, write_fasta

    write_fasta((Record(f"{prefix}_{i}", alphabet.decode(store[i])) for i in range(len(store))), path)
    return len(store)


# ---- RNA ----------------------------------------------------------------------------------------
def _digest(ids: np.ndarray) -> bytes:
    return hashlib.blake2b(ids.astype(np.uint8).tobytes(), digest_size=12).digest()


def _group_is_valid(group: str, seed: int, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha256(f"{seed}:{group}".encode()).digest()[:8], "little")
    return (h % 1_000_000) < fraction * 1_000_000


def read_families(path: str | Path) -> dict[str, dict]:
    """Rfam family table (TSV with AC, ID, TP, CL columns) -> {accession: row}."""
    rows = {}
    with open_text(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            row = dict(zip(header, parts))
            if "AC" in row:
                rows[row["AC"]] = row
    return rows


def family_of(description: str) -> str | None:
    """The Rfam accession in a header description (``RF00001 5S_rRNA TP=...``), or None."""
    first = description.split(None, 1)[0] if description else ""
    return first if FAMILY.match(first) else None


def split_rna_families(families: dict[str, dict], valid_fraction: float, seed: int,
                       exclude_types: tuple[str, ...] = ("miRNA",)) -> set[str]:
    """Accessions of the validation families: whole clans (a family without a clan is its own
    group) drawn by a seeded hash, so the split does not depend on file order. Families whose
    type contains one of ``exclude_types`` stay in training (miRBase hairpins in the training
    set would otherwise be homologues of held-out miRNA families)."""
    out = set()
    for ac, row in families.items():
        if any(t in row.get("TP", "") for t in exclude_types):
            continue
        clan = row.get("CL") or ""
        group = clan if clan else ac
        if _group_is_valid(group, seed, valid_fraction):
            out.add(ac)
    # a clan is held out whole: drop it from validation if any member is an excluded type
    bad_clans = {row.get("CL") for ac, row in families.items()
                 if row.get("CL") and any(t in row.get("TP", "") for t in exclude_types)}
    return {ac for ac in out if families[ac].get("CL") not in bad_clans or not families[ac].get("CL")}


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (uint64, wrapping): a well-mixed hash of each value."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _minhash(ids: np.ndarray, k: int, seeds: np.ndarray) -> np.ndarray:
    """(H,) minimum of ``mix(x + seed)`` over the k-mer codes x of ``ids`` (token ids below
    32), one value per seed: the MinHash signature of the sequence's k-mer set."""
    ids = ids.astype(np.uint64)
    if len(ids) < k:
        codes = np.array([int.from_bytes(ids.astype(np.uint8).tobytes().ljust(8, b"\0")[:8], "little")], np.uint64)
    else:
        codes = np.zeros(len(ids) - k + 1, dtype=np.uint64)
        for j in range(k):  # 5 bits per token: k <= 12 fits in 64 bits
            codes = (codes << np.uint64(5)) | ids[j : len(ids) - k + 1 + j]
    with np.errstate(over="ignore"):
        return _mix(np.unique(codes)[None, :] + seeds[:, None]).min(axis=1)


def similarity_groups(seqs, k: int = 10, bands: int = 8, rows: int = 2, seed: int = 0) -> np.ndarray:
    """A group number per sequence (token id arrays): sequences whose k-mer MinHash signatures
    agree on all ``rows`` values of any of ``bands`` bands are joined (union-find), so near-
    identical sequences, and ones sharing most of their k-mers, land in one group. Two sequences
    of k-mer Jaccard similarity J share a band with probability ``1 - (1 - J**rows)**bands``:
    0.90 at J = 0.5, 0.08 at J = 0.1 (LSH; Broder 1997, Leskovec et al. 2014 ch. 3).

    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.integers(4, 8, 300), rng.integers(4, 8, 300)
    >>> similarity_groups([x, y, x.copy(), np.r_[y[:290], 4, 5, 6]]).tolist()
    [0, 1, 0, 1]
    """
    seeds = np.random.default_rng(seed).integers(0, 1 << 62, bands * rows).astype(np.uint64)
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple, int] = {}
    for i, ids in enumerate(seqs):
        parent.append(i)
        sig = _minhash(np.asarray(ids), k, seeds)
        for band in range(bands):
            key = (band, *sig[band * rows : (band + 1) * rows].tolist())
            j = first.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)
    roots = [find(i) for i in range(len(parent))]
    _, groups = np.unique(roots, return_inverse=True)
    return groups.astype(np.int64)


def _valid_groups(groups: np.ndarray, valid_fraction: float, seed: int) -> set[int]:
    """The held-out similarity groups: drawn by a seeded hash, at least one, never all."""
    ids = np.unique(groups).tolist()
    chosen = {g for g in ids if _group_is_valid(f"similarity-{g}", seed, valid_fraction)}
    if not chosen and len(ids) > 1:
        chosen = {min(ids, key=lambda g: hashlib.sha256(f"{seed}:similarity-{g}".encode()).digest())}
    if len(chosen) == len(ids):
        chosen.discard(max(ids))
    return chosen


def prepare_rna(fastas: list[str | Path], out_dir: str | Path, families_tsv: str | Path | None,
                valid_fraction: float = 0.05, min_len: int = 10, seed: int = 0) -> dict:
    """Encode RNA FASTA files into ``out_dir/{train,valid}.{bin,idx.npy}`` plus baseline counts.

    Records whose description starts with an Rfam accession belong to that family; the
    validation families are :func:`split_rna_families` of ``families_tsv`` (or of the
    accessions seen, without clan grouping, when no table is given). When no header carries an
    Rfam accession, validation is ``valid_fraction`` of the :func:`similarity_groups` of the
    records instead (at least one group), and ``families_tsv`` is not needed. Returns the
    summary that is also written to ``out_dir/prep.json``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen_families = {}
    for path in fastas:
        for rec in read_fasta(path):
            fam = family_of(rec.description)
            if fam:
                seen_families.setdefault(fam, {"AC": fam})
    by_similarity = not seen_families
    if by_similarity:
        groups = similarity_groups(RNA.encode(rec.seq) for path in fastas for rec in read_fasta(path))
        held = _valid_groups(groups, valid_fraction, seed)
        valid_records = np.isin(groups, list(held))
        valid_fams: set[str] = set()
        log.info("no Rfam accession in the FASTA headers: validation = %d of %d similarity groups (k-mer MinHash; "
                 "near-identical sequences held out together, %d records), exact duplicates removed",
                 len(held), int(groups.max()) + 1 if len(groups) else 0, int(valid_records.sum()))
    else:
        families = read_families(families_tsv) if families_tsv is not None else seen_families
        valid_fams = split_rna_families(families, valid_fraction, seed)

    def in_valid(index: int, rec) -> bool:
        return bool(valid_records[index]) if by_similarity else family_of(rec.description) in valid_fams

    report = EncodingReport()
    # pass 1: validation sequences (deduplicated among themselves)
    valid_digests: set[bytes] = set()
    writer = TokenWriter(out_dir / "valid")
    records = (rec for path in fastas for rec in read_fasta(path))
    for index, rec in enumerate(records):
        if not in_valid(index, rec):
            continue
        ids = RNA.encode(rec.seq, report)
        d = _digest(ids)
        if len(ids) < min_len or d in valid_digests:
            continue
        valid_digests.add(d)
        writer.add(ids)
    n_valid = writer.close()

    # pass 2: training sequences; exact duplicates and copies of validation sequences removed
    seen: set[bytes] = set()
    counts = ContextCounts.empty(RNA)
    stats = {"records": 0, "too_short": 0, "duplicates": 0, "identical_to_valid": 0, "valid_family_records": 0}
    writer = TokenWriter(out_dir / "train")
    records = (rec for path in fastas for rec in read_fasta(path))
    for index, rec in enumerate(records):
        stats["records"] += 1
        if in_valid(index, rec):
            stats["valid_family_records"] += 1
            continue
        ids = RNA.encode(rec.seq)
        if len(ids) < min_len:
            stats["too_short"] += 1
            continue
        d = _digest(ids)
        if d in valid_digests:
            stats["identical_to_valid"] += 1
            continue
        if d in seen:
            stats["duplicates"] += 1
            continue
        seen.add(d)
        writer.add(ids)
        counts.add(ids)
    n_train = writer.close()
    if n_train == 0 or n_valid == 0:
        why = ("too few distinct sequences of at least min_len to split" if by_similarity else
               "check valid_fraction, and that the Rfam accessions of the headers are in the families table")
        raise InputError(f"RNA preparation left {n_train} training and {n_valid} validation sequences: {why}")
    counts.save(out_dir / "counts.npz")
    store_to_fasta(TokenStore(out_dir / "valid"), RNA, out_dir / "valid.fa", "valid")
    summary = {
        "kind": "rna", "sources": [str(p) for p in fastas], "families_tsv": str(families_tsv),
        "valid_fraction": valid_fraction, "min_len": min_len, "seed": seed,
        "split": "similarity groups (k-mer MinHash)" if by_similarity else "Rfam families by clan",
        "valid_families": sorted(valid_fams), "n_valid_families": len(valid_fams),
        "n_train": n_train, "n_valid": n_valid,
        "train_residues": int(TokenStore(out_dir / "train").offsets[-1]),
        "valid_residues": int(TokenStore(out_dir / "valid").offsets[-1]),
        **stats, "encoding": report.messages(),
    }
    (out_dir / PREP_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


# ---- DNA ----------------------------------------------------------------------------------------
def encode_genome_soft(seq: str) -> np.ndarray:
    """DNA ids with the soft-mask bit: ``id | 128`` where the input letter is lower case."""
    ids = DNA.encode(seq)
    raw = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
    if len(raw) != len(ids):  # gaps in a genome: drop them from the soft-mask too
        raw = raw[~np.isin(raw, np.frombuffer(b"-.", dtype=np.uint8))]
    lower = (raw >= ord("a")) & (raw <= ord("z"))
    return ids | (lower.astype(np.int64) * SOFT_BIT)


def window_starts(length: int, window: int, stride: int, start: int = 0, end: int | None = None,
                  exclude: tuple[int, int] | list[tuple[int, int]] | None = None) -> np.ndarray:
    """Starts of windows ``[s, s + window)`` inside ``[start, end)`` every ``stride`` bases,
    none overlapping ``exclude`` (one half-open region, or a list of them); a region shorter than
    ``window`` gives none."""
    end = length if end is None else min(end, length)
    if end - start < window:
        return np.zeros(0, dtype=np.int64)
    s = np.arange(start, end - window + 1, stride, dtype=np.int64)
    regions = [exclude] if isinstance(exclude, tuple) else exclude or []
    for lo, hi in regions:
        s = s[(s + window <= lo) | (s >= hi)]
    return s


def prepare_dna(genome: str | Path | list, out_dir: str | Path, valid_region: str, window: int = 512,
                stride: int = 256, min_acgt: float = 0.0, exclude_regions: list[str] | tuple = ()) -> dict:
    """Encode genome FASTA file(s) into ``out_dir/genome.{bin,idx.npy}`` and window starts.

    ``genome`` is one FASTA or a list (e.g. the reference and a close relative; record names must
    be distinct). Training windows (``train.starts.npy``, global token positions) cover every record
    except ``valid_region`` and ``exclude_regions`` (e.g. the relative's region syntenic to the
    validation block, so that it does not leak); validation windows tile ``valid_region`` without
    overlap. Windows with no A/C/G/T (all ``N``), or with an A/C/G/T fraction below ``min_acgt``, are
    skipped. The k-mer baseline counts see the training positions only.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    genomes = [genome] if isinstance(genome, (str, Path)) else list(genome)
    vchrom, vstart, vend = parse_region(valid_region)  # 1-based inclusive, as samtools
    excluded: dict[str, list[tuple[int, int]]] = {}
    for region in exclude_regions:
        c, s, e = parse_region(region)
        excluded.setdefault(c, []).append((s, e))
    writer = TokenWriter(out_dir / "genome")
    names, train_starts, valid_starts = [], [], []
    counts = ContextCounts.empty(DNA)
    skipped = 0
    for path in genomes:
        for rec in read_fasta(path):
            if rec.id in names:
                raise InputError(f"record {rec.id!r} occurs twice in data.genome ({path}); "
                                 "record names must be distinct")
            ids = encode_genome_soft(rec.seq)
            base = writer.offsets[-1]
            writer.add(ids)
            names.append(rec.id)
            acgt = np.isin(ids & ~SOFT_BIT, DNA.residue_ids())
            csum = np.concatenate([[0], np.cumsum(acgt)])
            held = list(excluded.get(rec.id, []))
            if rec.id == vchrom:
                if vend > len(ids):
                    raise InputError(f"validation region {valid_region} runs past {rec.id} ({len(ids)} bp)")
                held.append((vstart, vend))
            for lo, hi in held:
                if hi > len(ids):
                    raise InputError(f"excluded region {rec.id}:{lo + 1}-{hi} runs past {rec.id} ({len(ids)} bp)")
            valid_here = (window_starts(len(ids), window, window, vstart, vend) if rec.id == vchrom
                          else np.zeros(0, np.int64))
            for starts, target in ((window_starts(len(ids), window, stride, exclude=held), train_starts),
                                   (valid_here, valid_starts)):
                frac = (csum[starts + window] - csum[starts]) / window
                keep = (frac > 0) & (frac >= min_acgt)
                skipped += int((~keep).sum())
                target.append(starts[keep] + base)
            clean = ids & ~SOFT_BIT
            edges = [0] + [x for lo, hi in sorted(held) for x in (lo, hi)] + [len(ids)]
            for lo, hi in zip(edges[::2], edges[1::2]):  # the stretches between held-out regions
                if hi > lo:
                    counts.add(clean[lo:hi])
    writer.close()
    if vchrom not in names:
        raise InputError(f"validation region chromosome {vchrom!r} is not in {', '.join(map(str, genomes))} "
                         f"(records: {', '.join(names[:5])})")
    missing = sorted(set(excluded) - set(names))
    if missing:
        raise InputError(f"data.exclude_regions name records not in data.genome: {', '.join(missing)}")
    train = np.concatenate(train_starts)
    valid = np.concatenate(valid_starts)
    np.save(out_dir / "train.starts.npy", train)
    np.save(out_dir / "valid.starts.npy", valid)
    counts.save(out_dir / "counts.npz")
    summary = {"kind": "dna", "genome": str(genomes[0]) if len(genomes) == 1 else [str(g) for g in genomes],
               "records": names, "valid_region": valid_region, "exclude_regions": list(exclude_regions),
               "window": window, "stride": stride, "min_acgt": min_acgt, "n_train_windows": int(len(train)),
               "n_valid_windows": int(len(valid)), "skipped_windows": skipped,
               "genome_residues": int(writer.offsets[-1])}
    (out_dir / PREP_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


# ---- batch streams ------------------------------------------------------------------------------
@dataclass
class Example:
    ids: np.ndarray  # (L,) residue ids, no specials
    weight: np.ndarray | None = None  # (L,) loss weight per residue, None = all 1


class Batches:
    """Deterministic batches: global batch ``step`` is a pure function of (seed, step), so
    resuming from a checkpoint needs only the step and DDP ranks take disjoint slices.

    Subclasses give ``n_items``, ``item_lengths()`` (for length bucketing) and ``example(i, rng)``.
    """

    bucket = False

    def __init__(self, global_batch: int, seed: int):
        self.global_batch = global_batch
        self.seed = seed
        self._epoch = None
        self._order = None
        self.n_batches = self.n_items // global_batch
        if self.n_batches == 0:
            raise InputError(f"only {self.n_items} training items for a global batch of {global_batch}")

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._epoch != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            perm = rng.permutation(self.n_items)[: self.n_batches * self.global_batch]
            if self.bucket:
                # sort by length inside chunks of 64 batches, then shuffle the batches: less padding
                lengths = self.item_lengths()
                chunk = 64 * self.global_batch
                for c in range(0, len(perm), chunk):
                    part = perm[c : c + chunk]
                    perm[c : c + chunk] = part[np.argsort(lengths[part], kind="stable")]
            batches = perm.reshape(self.n_batches, self.global_batch)
            self._order = batches[rng.permutation(self.n_batches)]
            self._epoch = epoch
        return self._order

    def position(self, step: int) -> dict:
        """Where ``step`` (0-based) reads: epoch and batch index in that epoch."""
        return {"epoch": step // self.n_batches, "batch": step % self.n_batches}

    def micro_batch(self, step: int, rank: int, world: int, micro: int, accum: int) -> list[Example]:
        pos = self.position(step)
        items = self._epoch_order(pos["epoch"])[pos["batch"]]
        per_rank = self.global_batch // world
        mine = items[rank * per_rank : (rank + 1) * per_rank]
        per_micro = per_rank // accum
        mine = mine[micro * per_micro : (micro + 1) * per_micro]
        # seeded by the global micro-batch index: N processes x A micro-batches == 1 x N*A
        rng = np.random.default_rng([self.seed, step, rank * accum + micro, 0, 1])
        return [self.example(int(i), rng) for i in mine]


class RnaBatches(Batches):
    bucket = True

    def __init__(self, store: TokenStore, max_len: int, global_batch: int, seed: int):
        self.store = store
        self.max_len = max_len
        self.n_items = len(store)
        self._lengths = store.lengths()
        super().__init__(global_batch, seed)

    def item_lengths(self) -> np.ndarray:
        return self._lengths

    def example(self, i: int, rng: np.random.Generator) -> Example:
        return Example(random_crop(self.store[i], self.max_len, rng))


def random_crop(ids: np.ndarray, max_len: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``max_len`` slice of ``ids`` when longer, else ``ids`` itself."""
    if len(ids) <= max_len:
        return ids
    s = int(rng.integers(0, len(ids) - max_len + 1))
    return ids[s : s + max_len]


class DnaBatches(Batches):
    def __init__(self, store: TokenStore, starts: np.ndarray, window: int, global_batch: int, seed: int,
                 rc_augment: bool = True, soft_mask_weight: float = 0.1):
        self.store = store
        self.starts = starts
        self.window = window
        self.rc_augment = rc_augment
        self.soft_mask_weight = soft_mask_weight
        self.n_items = len(starts)
        super().__init__(global_batch, seed)

    def example(self, i: int, rng: np.random.Generator) -> Example:
        return dna_window(self.store, int(self.starts[i]), self.window,
                          bool(self.rc_augment and rng.random() < 0.5), self.soft_mask_weight)


def dna_window(store: TokenStore, start: int, window: int, reverse: bool, soft_mask_weight: float) -> Example:
    """One genome window as ids (soft bit stripped) and loss weights (``soft_mask_weight`` on
    lowercase positions), reverse-complemented when ``reverse``."""
    raw = store.span(start, start + window)
    ids = raw & ~SOFT_BIT
    weight = np.where(raw & SOFT_BIT, soft_mask_weight, 1.0).astype(np.float32)
    if reverse:
        ids, weight = DNA.reverse_complement_ids(ids), weight[::-1].copy()
    return Example(ids, weight)


def validation_examples(prep_dir: str | Path, kind: str, max_len: int | None, window: int | None,
                        limit: int, seed: int) -> list[Example]:
    """A fixed sample of at most ``limit`` validation examples (same every evaluation)."""
    prep_dir = Path(prep_dir)
    rng = np.random.default_rng([seed, 7])
    if kind == "rna":
        store = TokenStore(prep_dir / "valid")
        idx = rng.permutation(len(store))[:limit]
        return [Example(random_crop(store[int(i)], max_len, rng)) for i in np.sort(idx)]
    store = TokenStore(prep_dir / "genome")
    starts = np.load(prep_dir / "valid.starts.npy")
    idx = np.sort(rng.permutation(len(starts))[:limit])
    return [dna_window(store, int(starts[i]), window, False, 1.0) for i in idx]
