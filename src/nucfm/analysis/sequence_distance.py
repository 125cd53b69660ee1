"""Sequence distances between whole records, without an external aligner (``nucfm compare``).

Two distances, both over the letters A, C, G, U (T is read as U, case is folded; every other
letter, N included, is *uncalled*: it never counts as a difference):

* :func:`mash_distances` — ``-ln(2J / (1 + J)) / k`` from the Jaccard index J of the two
  records' sets of k-mers (Ondov et al. 2016, Mash), computed exactly over all k-mers (no
  sketch; records of a few Mb are fine). k-mers holding an uncalled letter are left out. No shared
  k-mer gives 1 (Mash's cap). Fast and alignment-free, but coarse between near-identical
  records: one substitution removes up to k k-mers of each side, and a run of N removes every
  k-mer it touches, so sequencing gaps count like mutations.
* :func:`aligned_distances` — the p-distance of a pairwise global alignment: differing columns
  (substitutions between called letters, plus internal gap columns) over compared columns
  (columns with a called letter on both sides, plus internal gap columns); columns with an
  uncalled letter and end gaps (ragged ends of partial genomes, different precursor boundaries)
  are not compared. Short pairs (``len(a) * len(b) <= max_cells``) get one full alignment
  (Biopython's ``PairwiseAligner``, BLASTN-like scores +2/-3, gap -5/-2, end gaps -1 per
  letter, N a wildcard);
  longer pairs are anchored first: k-mers unique in both records, chained co-linearly (longest
  increasing chain), merged into exact-match blocks, and only the stretches between blocks are
  aligned. For near-identical genomes (30 kb viruses with a handful of mutations) this is
  exact and takes about 40 ms a pair; for long divergent records a stretch between anchors can exceed
  ``max_cells``, and the distance stops with a message pointing at ``mash``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from nucfm.errors import InputError

UNCALLED = 4  # code of every letter but A, C, G, U
_CODE = np.full(256, UNCALLED, dtype=np.uint8)
for _i, _letters in enumerate(("Aa", "Cc", "Gg", "UuTt")):
    for _c in _letters:
        _CODE[ord(_c)] = _i
LETTERS = "ACGUN"
# Full alignments up to this many DP cells (about 4,000 x 4,000 nt; ~0.5 s and ~100 MB).
MAX_CELLS = 16_000_000
ANCHOR_K = 21


def encode(seq: str) -> np.ndarray:
    """Codes 0-3 for A, C, G, U (T read as U, any case) and 4 for every other letter.

    >>> encode("ACGTun-").tolist()
    [0, 1, 2, 3, 3, 4, 4]
    """
    return _CODE[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def kmer_codes(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid): the 2-bit packed k-mer starting at every position (uint64, k <= 31) and
    whether it holds called letters only.

    >>> v, ok = kmer_codes(encode("ACGNA"), 2)
    >>> v.tolist(), ok.tolist()
    ([1, 6, 11, 12], [True, True, False, False])
    """
    if not 1 <= k <= 31:
        raise InputError(f"k-mer size {k} must be in 1..31")
    n = len(codes) - k + 1
    if n <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    bad = np.concatenate([[0], np.cumsum(codes == UNCALLED)])
    valid = bad[k:] - bad[:-k] == 0
    c = np.minimum(codes, 3).astype(np.uint64)
    v = np.zeros(n, np.uint64)
    for j in range(k):
        v = (v << np.uint64(2)) | c[j : j + n]
    return v, valid


def kmer_set(codes: np.ndarray, k: int) -> np.ndarray:
    """Sorted distinct k-mers of called letters (packed as in :func:`kmer_codes`)."""
    v, valid = kmer_codes(codes, k)
    return np.unique(v[valid])


def mash_distance(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Mash distance between two sorted k-mer sets (:func:`kmer_set`): 1 when none is shared.

    >>> s = kmer_set(encode("ACGUACGGUCA"), 3)
    >>> mash_distance(s, s, 3)
    0.0
    """
    shared = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - shared
    if union == 0 or shared == 0:
        return 1.0
    j = shared / union
    return float(min(1.0, max(0.0, -np.log(2 * j / (1 + j)) / k)))


def mash_distances(seqs: list[str], k: int = ANCHOR_K, names: list[str] | None = None, progress=None) -> np.ndarray:
    """(N, N) Mash distances between ``seqs``; InputError for a record with no k-mer of called
    letters (shorter than k, or N everywhere). ``progress``: a tqdm-like object advanced per pair."""
    names = names or [str(i) for i in range(len(seqs))]
    sets = [kmer_set(encode(s), k) for s in seqs]
    for name, s in zip(names, sets):
        if not len(s):
            raise InputError(f"record {name!r} has no {k}-mer of A/C/G/U letters, so no Mash distance; "
                             f"use a smaller --kmer or --seq-distance aligned")
    n = len(seqs)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            d[i, j] = d[j, i] = mash_distance(sets[i], sets[j], k)
            if progress is not None:
                progress.update(1)
    return d


@dataclass
class PairCount:
    """Columns of one pairwise alignment: ``differences`` (= ``substitutions`` + ``gaps``) among
    ``compared`` columns; p-distance ``differences / compared``."""

    substitutions: int = 0
    gaps: int = 0
    compared: int = 0

    @property
    def differences(self) -> int:
        return self.substitutions + self.gaps

    def add(self, other: PairCount) -> None:
        self.substitutions += other.substitutions
        self.gaps += other.gaps
        self.compared += other.compared


def _aligner(left_end: bool = False, right_end: bool = False):
    """BLASTN-like scores; a gap at a true end of a record (``left_end``, ``right_end``) costs 1
    per letter: cheaper than an internal gap, so a ragged end stays at the end instead of being
    moved inside to gain one match, but not free, so two divergent records still overlap instead
    of sliding apart."""
    from Bio.Align import PairwiseAligner

    al = PairwiseAligner(mode="global", match_score=2, mismatch_score=-3, open_gap_score=-5, extend_gap_score=-2)
    al.wildcard = "N"  # an uncalled letter scores 0 against anything
    if left_end:
        al.open_left_gap_score = al.extend_left_gap_score = -1
    if right_end:
        al.open_right_gap_score = al.extend_right_gap_score = -1
    return al


def _letters(codes: np.ndarray) -> str:
    return np.frombuffer(b"ACGUN", dtype=np.uint8)[codes].tobytes().decode()


def align_segment(a: np.ndarray, b: np.ndarray, left_free: bool = False, right_free: bool = False,
                  max_cells: int = MAX_CELLS) -> PairCount:
    """Count the columns of the global alignment of two coded stretches (:func:`encode`); gaps
    at a ``left_free`` / ``right_free`` end (a true end of the records: ragged ends of partial
    genomes, different precursor boundaries) are cheap in the alignment and not compared.

    >>> c = align_segment(encode("ACGUACGUAC"), encode("ACGAACGUAC"))
    >>> c.substitutions, c.gaps, c.compared
    (1, 0, 10)
    """
    count = PairCount()
    if not len(a) or not len(b):
        rest = a if len(a) else b
        if len(rest) and not (left_free or right_free):
            count.gaps = count.compared = int((rest != UNCALLED).sum())
        return count
    if len(a) * len(b) > max_cells:
        raise InputError(f"a stretch of {len(a):,} x {len(b):,} nt has no shared anchor to split it; these records "
                         "are too divergent for --seq-distance aligned: use --seq-distance mash")
    aln = _aligner(left_free, right_free).align(_letters(a), _letters(b))[0]
    coords = np.asarray(aln.coordinates)
    steps = np.diff(coords, axis=1)  # (2, S): letters of a and of b taken by each step
    paired = np.flatnonzero((steps[0] > 0) & (steps[1] > 0))
    first, last = (paired[0], paired[-1]) if len(paired) else (steps.shape[1], -1)
    for s in range(steps.shape[1]):
        (a0, b0), (da, db) = coords[:, s], steps[:, s]
        if da and db:
            x, y = a[a0 : a0 + da], b[b0 : b0 + db]
            called = (x != UNCALLED) & (y != UNCALLED)
            count.compared += int(called.sum())
            count.substitutions += int((called & (x != y)).sum())
        elif (s < first and left_free) or (s > last and right_free):
            continue  # a ragged end, not a mutation
        else:
            gap = a[a0 : a0 + da] if da else b[b0 : b0 + db]
            n = int((gap != UNCALLED).sum())
            count.gaps += n
            count.compared += n
    return count


def _unique_kmers(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, positions) of the k-mers of called letters that occur once, sorted by value."""
    v, valid = kmer_codes(codes, k)
    pos = np.flatnonzero(valid)
    vals, first, counts = np.unique(v[pos], return_index=True, return_counts=True)
    once = counts == 1
    return vals[once], pos[first[once]]


def _chain(pa: np.ndarray, pb: np.ndarray) -> list[int]:
    """Indices of the longest chain of anchors increasing in both records (``pa`` sorted)."""
    tails: list[int] = []  # pb value ending the best chain of each length
    tail_idx: list[int] = []
    prev = [-1] * len(pb)
    for i, y in enumerate(pb.tolist()):
        k = bisect.bisect_left(tails, y)
        if k == len(tails):
            tails.append(y)
            tail_idx.append(i)
        else:
            tails[k], tail_idx[k] = y, i
        prev[i] = tail_idx[k - 1] if k else -1
    out, i = [], tail_idx[-1] if tail_idx else -1
    while i >= 0:
        out.append(i)
        i = prev[i]
    return out[::-1]


def exact_blocks(a: np.ndarray, b: np.ndarray, k: int = ANCHOR_K, index_a=None, index_b=None) -> list[tuple]:
    """Co-linear exact-match blocks ``(start_a, start_b, length)`` of two coded records, from
    the k-mers unique in each (non-overlapping, increasing in both)."""
    va, pa = index_a if index_a is not None else _unique_kmers(a, k)
    vb, pb = index_b if index_b is not None else _unique_kmers(b, k)
    _, ia, ib = np.intersect1d(va, vb, assume_unique=True, return_indices=True)
    pa, pb = pa[ia], pb[ib]
    order = np.argsort(pa, kind="stable")
    pa, pb = pa[order], pb[order]
    blocks: list[list[int]] = []
    for i in _chain(pa, pb):
        x, y = int(pa[i]), int(pb[i])
        if blocks:
            bx, by, bn = blocks[-1]
            if x - y == bx - by and x <= bx + bn:  # the same diagonal, touching: extend
                blocks[-1][2] = max(bn, x + k - bx)
                continue
            skip = max(0, bx + bn - x, by + bn - y)  # overlap with the last block: trim this anchor
            if skip >= k:
                continue
            x, y = x + skip, y + skip
            blocks.append([x, y, k - skip])
        else:
            blocks.append([x, y, k])
    return [tuple(bl) for bl in blocks]


def align_pair(a: np.ndarray, b: np.ndarray, max_cells: int = MAX_CELLS, k: int = ANCHOR_K,
               index_a=None, index_b=None) -> PairCount:
    """Columns of the alignment of two coded records (ends free): one full alignment when
    ``len(a) * len(b) <= max_cells``, else anchored on exact-match blocks (:func:`exact_blocks`)."""
    if len(a) * len(b) <= max_cells:
        return align_segment(a, b, True, True, max_cells)
    blocks = exact_blocks(a, b, k, index_a, index_b)
    total, ea, eb = PairCount(), 0, 0
    for i, (x, y, n) in enumerate(blocks):
        total.add(align_segment(a[ea:x], b[eb:y], left_free=i == 0, max_cells=max_cells))
        total.compared += n  # an exact match of called letters
        ea, eb = x + n, y + n
    total.add(align_segment(a[ea:], b[eb:], left_free=not blocks, right_free=True, max_cells=max_cells))
    return total


def aligned_distances(seqs: list[str], names: list[str] | None = None, max_cells: int = MAX_CELLS,
                      progress=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(N, N) alignment p-distances between ``seqs`` (see the module docstring) and the count
    matrices behind them: ``differences``, ``substitutions``, ``gaps``, ``compared``.
    InputError when a pair has no compared column. ``progress``: advanced per pair."""
    names = names or [str(i) for i in range(len(seqs))]
    codes = [encode(s) for s in seqs]
    index: list = [None] * len(codes)  # unique k-mers, built once per record that needs anchors
    n = len(seqs)
    counts = {key: np.zeros((n, n), dtype=np.int64) for key in ("differences", "substitutions", "gaps", "compared")}
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if len(codes[i]) * len(codes[j]) > max_cells:
                for x in (i, j):
                    index[x] = index[x] if index[x] is not None else _unique_kmers(codes[x], ANCHOR_K)
            c = align_pair(codes[i], codes[j], max_cells, index_a=index[i], index_b=index[j])
            if c.compared == 0:
                raise InputError(f"records {names[i]!r} and {names[j]!r} share no aligned column of called "
                                 "letters (A/C/G/U), so no aligned distance")
            for key in counts:
                counts[key][i, j] = counts[key][j, i] = getattr(c, key)
            d[i, j] = d[j, i] = c.differences / c.compared
            if progress is not None:
                progress.update(1)
    return d, counts
