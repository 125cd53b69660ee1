"""RNA secondary structure tasks: decoding pair probabilities into structures, folding FASTA
files, scoring predicted structures against references.

Coordinates: residues are 0-based; a pair is ``(i, j)`` with ``i < j``; maps are (L, L) with
``[i, j]`` the probability of residues i and j pairing. The model that gives the maps is
:class:`nucfm.models.structure.StructureModel`; its pair features are
:mod:`nucfm.data.structure_features`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator

import numpy as np

from nucfm import distributed
from nucfm.alphabet import structure_letters
from nucfm.errors import InputError
from nucfm.models.config import DecodeOptions
from nucfm.models.structure import StructureModel

log = logging.getLogger("nucfm")

CANONICAL = frozenset({("A", "U"), ("U", "A"), ("G", "C"), ("C", "G"), ("G", "U"), ("U", "G")})


# ---- decoding -----------------------------------------------------------------------------------
def candidate_pairs(probs, seq: str, opts: DecodeOptions) -> tuple[np.ndarray, np.ndarray]:
    """Allowed pairs above threshold: (idx (N, 2) with i < j, probabilities (N,)). ``probs`` is
    a dense (L, L) map or a sparse upper triangle (local mode)."""
    if is_sparse(probs):
        coo = probs.tocoo()
        i, j, v = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
        keep = (j - i > opts.min_hairpin) & (v > opts.threshold)
        i, j, v = i[keep], j[keep], v[keep]
    else:
        L = probs.shape[0]
        allowed = np.triu(np.ones((L, L), dtype=bool), opts.min_hairpin + 1)
        allowed &= probs > opts.threshold
        i, j = np.nonzero(allowed)
        v = probs[i, j]
    if opts.canonical_only:
        s = np.array(list(structure_letters(seq)))
        ok = np.zeros(len(i), dtype=bool)
        for a, b in CANONICAL:
            ok |= (s[i] == a) & (s[j] == b)
        i, j, v = i[ok], j[ok], v[ok]
    order = np.lexsort((j, i))  # row-major, as np.nonzero gives: ties decode the same either way
    return np.stack([i[order], j[order]], 1).reshape(-1, 2), v[order]


def is_sparse(probs) -> bool:
    """True for a local-mode map (a scipy sparse upper triangle)."""
    return hasattr(probs, "tocoo")


def _greedy(idx: np.ndarray, p: np.ndarray) -> list[tuple[int, int]]:
    used: set[int] = set()
    out = []
    for k in np.argsort(-p, kind="stable"):
        i, j = int(idx[k, 0]), int(idx[k, 1])
        if i not in used and j not in used:
            used.update((i, j))
            out.append((i, j))
    return sorted(out)


def _matching(idx: np.ndarray, p: np.ndarray) -> list[tuple[int, int]]:
    try:
        import networkx as nx
    except ImportError:
        raise InputError("decoding by matching needs networkx: pip install networkx") from None

    g = nx.Graph()
    g.add_weighted_edges_from((int(i), int(j), float(w)) for (i, j), w in zip(idx, p))
    return sorted((min(a, b), max(a, b)) for a, b in nx.max_weight_matching(g))


DECODERS = {"greedy": _greedy, "matching": _matching}


def decode_structure(probs, seq: str, opts: DecodeOptions | None = None) -> list[tuple[int, int]]:
    """A valid structure from a pair-probability map (dense (L, L) or a local-mode sparse upper
    triangle): every residue in at most one pair,
    every pair leaving ``min_hairpin`` residues inside, optional canonical-only and nesting.

    >>> p = np.zeros((8, 8)); p[0, 7] = p[7, 0] = 0.9; p[0, 6] = p[6, 0] = 0.8
    >>> decode_structure(p, "GAAAAAAC")
    [(0, 7)]
    """
    from nucfm.io.structure import remove_pseudoknots

    opts = opts or DecodeOptions()
    if not is_sparse(probs):
        probs = np.asarray(probs, dtype=np.float64)
    idx, p = candidate_pairs(probs, seq, opts)
    pairs = DECODERS[opts.method](idx, p) if len(p) else []
    if not opts.pseudoknots:
        pairs = remove_pseudoknots(pairs)
    return pairs


def fold_sequences(model: StructureModel, seqs: list[str], opts: DecodeOptions | None = None,
                   workers: int = 1, max_span: int | None = None,
                   progress=None) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
    """(pairs, probabilities) per sequence: a dense (L, L) map, or a sparse upper triangle for
    sequences folded in local mode (longer than ``max_span + 1``, or than
    :data:`~nucfm.models.structure.LOCAL_ABOVE` without one). ViennaRNA features of different
    sequences run in ``workers`` processes (the same result as one). ``progress``: an optional
    bar advanced by residues.

    >>> pairs, probs = fold_sequences(model, ["GGGAAACUUCGGUUUCCC"])[0]  # doctest: +SKIP
    >>> pairs  # doctest: +SKIP
    [(0, 17), (1, 16), ...]
    """
    opts = opts or model.decode_options
    seqs = [structure_letters(s) for s in seqs]
    probs = model.predict_probs(seqs, workers=workers, max_span=max_span, progress=progress)
    return [(decode_structure(p, s, opts), p) for s, p in zip(seqs, probs)]


def score_structures(preds, refs, shift: int = 0) -> list:
    """Per-record :class:`~nucfm.metrics.PairScores` of predicted pair lists against reference
    :class:`~nucfm.io.structure.StructureRecord`\\ s (same order): THE scoring loop of folding,
    training and the benchmarks."""
    from nucfm.metrics import score_pairs

    return [score_pairs(p, r.pairs, len(r.seq), shift=shift) for p, r in zip(preds, refs)]


# ---- files in, files out ------------------------------------------------------------------------
PROBS_FORMATS = (".npz", ".h5", ".hdf5")


def write_pair_probs(path, keys: Iterable[str], probs: Iterable) -> None:
    """Each record's (L, L) pair probabilities (float16) under its unique key, atomically:
    ``.npz`` arrays or ``.h5`` datasets under ``/probs/<key>``, plus the keys in input order
    (``__keys__`` / ``keys``). A local-mode (sparse) map is written as ``<key>.sparse``: an
    (N, 3) float32 array of rows ``i, j, p`` (0-based, i < j; unlisted pairs are 0).

    One map in memory at a time: ``probs`` may be a generator. ``keys`` is read several times
    (a list, or a collection that reads its file again, as :attr:`RecordStream.keys`). An
    ``.npz`` output keeps nothing per record in memory (the zip's directory waits in a temporary
    file beside it); an ``.h5`` output holds its keys at the end (HDF5 lays out strings written
    in parts differently, and the file is the one the whole list gives)."""
    from pathlib import Path

    from nucfm.paths import atomic_path

    ext = Path(path).suffix.lower()
    if ext not in PROBS_FORMATS:
        raise InputError(f"{path}: pair probabilities are written as {', '.join(PROBS_FORMATS)}")
    if iter(keys) is keys:  # a one-pass iterator
        keys = list(keys)
    with atomic_path(path) as tmp:
        if ext == ".npz":
            import tempfile
            import zipfile

            from nucfm.paths import iter_unique_names, repeated_names

            repeated = repeated_names(keys)

            def names():  # the key array's own name is never a record's
                return iter_unique_names(keys, reserved=("__keys__",), repeated=repeated)

            # numpy.savez's own layout, written by hand: any key (even "file") is a valid name
            with (tempfile.TemporaryFile(dir=tmp.parent) as spool,
                  zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf):
                zf.filelist, zf.NameToInfo = _SpooledEntries(spool), _Forgetful()
                with zf.open("__keys__.npy", "w", force_zip64=True) as fh:
                    _write_string_array(fh, names)
                for k, p in zip(names(), probs):
                    name, data = _stored(k, p)
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array(fh, data, allow_pickle=False)
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                g = f.create_group("probs")
                for k, p in zip(keys, probs):
                    name, data = _stored(k, p)
                    g.create_dataset(name, data=data, compression="gzip")
                f.create_dataset("keys", data=np.array(list(keys), dtype=object), dtype=h5py.string_dtype())


class _SpooledEntries:
    """``ZipFile.filelist`` for a zip of any number of members: zipfile keeps every member's
    ZipInfo (about 500 bytes) for the central directory it writes on closing; here each one
    finished is pickled to ``spool`` instead, and read back, in order, for that directory."""

    def __init__(self, spool):
        self.spool, self.n = spool, 0

    def append(self, info) -> None:
        import pickle

        pickle.dump(info, self.spool)
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        import pickle

        self.spool.seek(0)
        for _ in range(self.n):
            yield pickle.load(self.spool)


class _Forgetful(dict):
    """``ZipFile.NameToInfo`` that keeps nothing: it only serves a duplicate-name warning, and
    the member names written here are unique."""

    def __setitem__(self, key, value) -> None:
        pass


def _write_string_array(fh, strings, batch: int = 256) -> None:
    """``np.lib.format.write_array(fh, np.array(list(strings())))`` for strings, without the
    list: ``strings()`` is called twice (the length and width first, as the header needs them),
    and the array is written ``batch`` strings at a time (the same bytes)."""
    from itertools import islice

    n = width = 0
    for text in strings():
        n += 1
        width = max(width, len(text))
    if not n:  # np.array([]) is float64
        np.lib.format.write_array(fh, np.array([]), allow_pickle=False)
        return
    dtype = np.dtype(f"<U{max(width, 1)}")
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
    np.lib.format.write_array_header_1_0(fh, header)
    it = strings()
    while part := list(islice(it, batch)):
        fh.write(np.array(part, dtype=dtype).tobytes())


def _stored(key: str, p) -> tuple[str, np.ndarray]:
    if is_sparse(p):
        coo = p.tocoo()
        return f"{key}.sparse", np.stack([coo.row, coo.col, coo.data], 1).astype(np.float32)
    return key, np.asarray(p).astype(np.float16)


def read_pair_probs(path, lengths: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """``{key: (L, L) float32}`` from :func:`write_pair_probs` ``.npz`` output; sparse
    (local-mode) maps are made dense and symmetric, L from ``lengths`` (else their last listed
    residue), so only for maps that fit in memory."""
    from pathlib import Path

    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    z = np.load(path)
    out = {}
    for name in z.files:
        if name == "__keys__":
            continue
        a = z[name].astype(np.float32)
        if name.endswith(".sparse"):
            key = name[: -len(".sparse")]
            n = (lengths or {}).get(key) or (int(a[:, :2].max()) + 1 if len(a) else 0)
            m = np.zeros((n, n), dtype=np.float32)
            m[a[:, 0].astype(int), a[:, 1].astype(int)] = a[:, 2]
            out[name[: -len(".sparse")]] = m + m.T
        else:
            out[name] = a
    return out


# The longest record fold/contacts take unless told otherwise (--max-length). Local mode runs at
# about LOCAL_SECONDS_PER_NT on one core and keeps about LOCAL_BYTES_PER_NT of pair probabilities:
# measured with the shipped SS model (three ViennaRNA energy sets), 3,000 random nt with span 200
# in 152 s holding 371,435 pairs (12 bytes each) on the 2-core development machine.
MAX_LENGTH = 100_000
LOCAL_SECONDS_PER_NT = 0.05
LOCAL_BYTES_PER_NT = 1500


def check_lengths(recs, seqs: list[str], max_length: int | None, command: str = "fold") -> None:
    """Refuse, before any work, a record longer than ``max_length`` (default :data:`MAX_LENGTH`;
    None: no limit), naming it, its length and the time and memory local mode would take."""
    if max_length is None:
        return
    for r, s in zip(recs, seqs):
        if len(s) > max_length:
            from nucfm.progress import duration

            n = len(s)
            raise InputError(
                f"record {r.id!r} is {n:,} nt, over the {command} limit of {max_length:,} nt: local mode would take "
                f"about {duration(n * LOCAL_SECONDS_PER_NT)} on one core and {n * LOCAL_BYTES_PER_NT / 1e9:.1f} GB "
                f"of pair probabilities; {command} a region of it, or give --max-length {n} to go ahead")


def precheck_fasta(fasta: str, max_length: int | None, command: str = "fold") -> None:
    """Stream ``fasta`` once before any model loads: not protein (the reader checks), no record
    over ``max_length`` (:func:`check_lengths`). Memory: one record."""
    from nucfm.io.fasta import read_fasta

    for rec in read_fasta(fasta):
        check_lengths([rec], [structure_letters(rec.seq, drop_gaps=True)], max_length, command)


ODD_RECORDS = {"empty": "empty record(s) {} with no pairs", "single": "1-nt record(s) {} with no pairs",
               "all_n": "all-N record(s) {} (no known nucleotide: predictions carry no information)"}


@dataclasses.dataclass
class RecordStream:
    """The records of a FASTA file as fold and contacts read them, in memory that does not grow
    with their number: :func:`scan_records` reads the file once for the counts below, then every
    iteration reads it again and yields ``(id, sequence in structure letters)``; :attr:`keys`
    are the records' :func:`~nucfm.paths.unique_names`, read the same way."""

    fasta: str
    records: int = 0  # how many records
    nt: int = 0  # their residues (structure letters, gaps dropped)
    local: int = 0  # records folded in local mode, their residues, the longest of them
    local_nt: int = 0
    longest_local: int = 0
    windowed: int = 0  # records longer than the language model's maximum
    counts: dict = dataclasses.field(default_factory=dict)  # odd records (ODD_RECORDS) and converted letters
    repeated: frozenset = frozenset()  # the ids' names that repeat (nucfm.paths.repeated_names), for the keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        from nucfm.io.fasta import read_fasta

        for rec in read_fasta(self.fasta, nucleotide=False):  # checked by the scan already
            yield rec.id, structure_letters(rec.seq, drop_gaps=True)

    @property
    def keys(self) -> Iterable[str]:
        """The records' unique keys, in order; every iteration reads the file again."""
        return _Keys(self)

    def chunks(self, size: int) -> Iterator[list[str]]:
        """The sequences in lists of ``size`` (the last one shorter), read as they are asked for."""
        from itertools import islice

        seqs = (s for _, s in self)
        while chunk := list(islice(seqs, size)):
            yield chunk


@dataclasses.dataclass
class _Keys:
    """:attr:`RecordStream.keys`: re-iterable, so that writers can read the keys more than once."""

    records: RecordStream

    def __iter__(self) -> Iterator[str]:
        from nucfm.paths import iter_unique_names

        return iter_unique_names((rid for rid, _ in self.records), repeated=self.records.repeated)


def scan_records(fasta: str, what: str = "folded", max_length: int | None = MAX_LENGTH, command: str = "fold",
                 max_span: int | None = None, lm_max_len: int | None = None) -> RecordStream:
    """Read ``fasta`` once, a record at a time, before any model work: each record checked
    (:func:`check_lengths`), counted (records, residues, those in local mode for ``max_span``,
    those over ``lm_max_len``), with one counted warning per kind of odd input naming the first
    five (no record is dropped): empty, 1-nt (nothing to pair), all-N, letters other than
    A, C, G, U/T (read as N). Memory: one record, and a few bytes per record while it runs
    (:func:`~nucfm.paths.repeated_names`). Returns the :class:`RecordStream` to read it by."""
    from nucfm.io.fasta import read_fasta
    from nucfm.models.structure import span_for
    from nucfm.paths import repeated_names

    out = RecordStream(fasta)
    found = {k: 0 for k in ODD_RECORDS}
    first = {k: [] for k in ODD_RECORDS}  # the first five ids of each kind, to show
    converted = 0

    def ids():
        nonlocal converted
        for rec in read_fasta(fasta):
            seq = structure_letters(rec.seq, drop_gaps=True)
            check_lengths([rec], [seq], max_length, command)
            n = len(seq)
            out.records += 1
            out.nt += n
            if span_for(n, max_span) is not None:
                out.local += 1
                out.local_nt += n
                out.longest_local = max(out.longest_local, n)
            if lm_max_len and n > lm_max_len:
                out.windowed += 1
            kind = "empty" if not n else "single" if n == 1 else "all_n" if seq.count("N") == n else None
            if kind:
                found[kind] += 1
                if len(first[kind]) < 5:
                    first[kind].append(rec.id)
            upper = rec.seq.upper()
            converted += len(upper) - sum(upper.count(c) for c in "ACGUT-.")
            yield rec.id

    out.repeated = repeated_names(ids())
    for k, n in found.items():
        if n:
            shown = ", ".join(first[k]) + (" ..." if n > 5 else "")
            log.warning("%d %s: %s", n, ODD_RECORDS[k].format(what), shown)
    if converted:
        log.warning("%d residue(s) other than A, C, G, U/T are read as N (unknown nucleotide)", converted)
    out.counts = found | {"converted": converted}
    return out


def announce(command: str, records: RecordStream, workers: int = 1) -> None:
    """The one line a fold or contacts run states before it works: records, residues, how many
    fold in local mode and, for those, the time they should take (:data:`LOCAL_SECONDS_PER_NT`)."""
    from nucfm.progress import estimate_line

    counts = {"records": records.records, "nt": records.nt}
    if records.local_nt:
        counts["nt in local mode"] = records.local_nt
    seconds = records.local_nt * LOCAL_SECONDS_PER_NT / max(1, workers) if records.local_nt > 100_000 else None
    log.info(estimate_line(command, counts, seconds))


def fold_fasta(model: StructureModel, fasta: str, output: str, fmt: str = "dbn",
               probs_path: str | None = None, plot_dir: str | None = None,
               opts: DecodeOptions | None = None, workers: int = 1, max_span: int | None = None,
               chunk_records: int = 256, restart: bool = False, max_length: int | None = MAX_LENGTH,
               show_progress: bool = True) -> dict:
    """Fold every record of ``fasta`` and write structures to ``output`` (see
    :func:`nucfm.io.structure.write_structures` for the layout). ``probs_path`` (.npz or .h5)
    receives each record's (L, L) float16 pair probabilities; ``plot_dir`` a PNG per record
    (probability map + 2D diagram). Records are keyed by :func:`nucfm.paths.unique_names` of
    their ids in every output. ``workers``: processes for the ViennaRNA features; ``max_span``:
    local mode for longer records (default: records over
    :data:`~nucfm.models.structure.LOCAL_ABOVE` nt fold locally). Under ``torchrun`` each process
    folds its share and rank 0 writes all outputs (the same files as one process). A record
    over ``max_length`` nt is refused before any work (:func:`check_lengths`). Resumable:
    every ``chunk_records`` folded records are kept in ``OUTPUT.parts/`` (:mod:`nucfm.resume`)
    until all are written; a rerun skips them (``restart``: start over). Memory does not grow
    with the number of records: the file is read again for each output (:class:`RecordStream`)
    beside the kept maps, a chunk at a time. Returns a summary dict."""
    from nucfm.io.structure import StructureRecord, write_structures
    from nucfm.models.structure import span_for

    opts = opts or model.decode_options
    if model.config.task != "structure":
        log.warning("model %s predicts %s maps, not base pairs: the structures decoded from them are not "
                    "secondary structures", model.name, model.config.task)
    lm_max_len = model.lm.max_len if model.lm is not None else None
    records = scan_records(fasta, "written", max_length, "fold", max_span, lm_max_len)
    announce("fold", records, workers)
    if records.windowed:
        log.info("%d sequence(s) longer than the language model maximum (%d): embedded in overlapping windows",
                 records.windowed, lm_max_len)
    if records.local:
        log.info("%d sequence(s) (up to %d nt) folded in local mode (pairs spanning at most %d nt)", records.local,
                 records.longest_local, span_for(records.longest_local, max_span))
    ctx = distributed.setup()  # under torchrun: each process folds its share, rank 0 writes everything
    keep_probs = bool(probs_path or plot_dir)
    parts = map_parts(model, fasta, output, restart, chunk_records, max_span=max_span, opts=dataclasses.asdict(opts),
                       probs=keep_probs)
    from nucfm.progress import bar

    # this process's share of the residues (torchrun: every rank folds 1/world of each chunk)
    with bar(total=records.nt // ctx.world, unit="nt", unit_scale=True, desc="fold",
             enabled=show_progress and ctx.is_main) as b:
        n_chunks = run_map_chunks(
            parts, records.chunks(chunk_records),
            lambda s: fold_sequences(model, s, opts, workers=workers, max_span=max_span, progress=b), ctx, keep_probs)
    if not ctx.is_main:
        return {"records": records.records, "rank": ctx.rank}
    n_pairs = 0

    def structures():
        nonlocal n_pairs
        for rid, seq, _, pairs, _ in merge_map_chunks(records, parts, n_chunks, probs=False):
            n_pairs += len(pairs)
            yield StructureRecord(rid, seq, pairs)

    write_structures(structures(), output, fmt, names=records.keys)
    if probs_path:
        write_pair_probs(probs_path, records.keys, (p for *_, p in merge_map_chunks(records, parts, n_chunks)))
    if plot_dir:
        write_plots(plot_dir, ((seq, pairs, p, key, rid)
                               for rid, seq, key, pairs, p in merge_map_chunks(records, parts, n_chunks)))
    parts.remove()
    counts = records.counts
    return {"records": records.records, "pairs": n_pairs, "empty": counts["empty"], "windowed": records.windowed,
            "local": records.local, "converted": counts["converted"], "single": counts["single"],
            "all_n": counts["all_n"]}


# ---- resumable chunks of maps (fold, contacts): OUTPUT.parts/, see nucfm.resume ----------------
def map_parts(model, fasta: str, output: str, restart: bool, chunk_records: int, **options):
    from nucfm.checkpoint import fingerprint
    from nucfm.resume import Parts, input_identity

    manifest = {**input_identity(fasta), "model_fingerprint": fingerprint(model), "chunk_records": chunk_records,
                **options}
    return Parts(output, manifest, suffix=".npz", restart=restart)


def run_map_chunks(parts, chunks: Iterable[list[str]], compute, ctx, keep_probs: bool) -> int:
    """``compute(seqs) -> [(pairs, probs)]`` over ``chunks`` (lists of sequences, read as they
    come, :meth:`RecordStream.chunks`), each chunk's share on every process (torchrun), each
    finished chunk saved by rank 0 in ``parts`` (pairs, and the maps when ``keep_probs``);
    finished chunks of an earlier run are skipped. Returns the number of chunks."""
    if ctx.is_main:
        parts.prepare()
    distributed.barrier(ctx)
    finished = parts.finished()
    n_chunks = 0
    for i, chunk in enumerate(chunks):
        n_chunks += 1
        if i in finished:
            continue
        mine = distributed.shard(chunk, ctx)
        results = distributed.gather(compute([chunk[k] for k in mine]), ctx, len(chunk))
        if ctx.is_main:
            arrays = {}
            for k, (pairs, p) in enumerate(results):
                arrays[f"pairs{k}"] = np.array(pairs, dtype=np.int64).reshape(-1, 2)
                if keep_probs:
                    name, data = _stored(str(k), p)
                    arrays[f"probs{name}"] = data
            with parts.writing(i) as tmp:
                np.savez(tmp, **arrays)
    distributed.barrier(ctx)
    return n_chunks


def load_map_chunks(parts, n_chunks: int, lengths: Iterable[int], probs: bool = True):
    """``(pairs, probs)`` per sequence from :func:`run_map_chunks`' parts, one chunk in memory
    at a time: maps as written (float16 dense, or a sparse upper triangle), None when not kept.
    ``lengths``: the sequences' lengths in order (a sparse map's shape), read one per map."""
    from scipy import sparse

    lengths = iter(lengths)
    for i in range(n_chunks):
        with np.load(parts.path(i)) as z:
            n = sum(name.startswith("pairs") for name in z.files)
            for k in range(n):
                pairs = [(int(a), int(b)) for a, b in z[f"pairs{k}"]]
                L = next(lengths)
                p = None
                if probs and f"probs{k}" in z.files:
                    p = z[f"probs{k}"]
                elif probs and f"probs{k}.sparse" in z.files:
                    a = z[f"probs{k}.sparse"]
                    p = sparse.coo_matrix((a[:, 2], (a[:, 0].astype(np.int64), a[:, 1].astype(np.int64))),
                                          shape=(L, L)).tocsr()
                yield pairs, p


def merge_map_chunks(records: RecordStream, parts, n_chunks: int, probs: bool = True):
    """``(id, sequence, key, pairs, probs)`` of every record in input order: the records read
    again beside their maps from :func:`load_map_chunks`; a record and a chunk in memory."""
    from itertools import tee

    items, ahead = tee(zip(records, records.keys))  # ahead: the lengths, one record before
    maps = load_map_chunks(parts, n_chunks, (len(seq) for (_, seq), _ in ahead), probs)
    for ((rid, seq), key), (pairs, p) in zip(items, maps):
        yield rid, seq, key, pairs, p


MAX_PLOT_LENGTH = 3000  # longer records get no probability-map figure (an L x L image)


def write_plots(plot_dir: str, items, ref_pairs: dict | None = None) -> None:
    """A PNG per ``(seq, pairs, probs, key, title)`` into ``plot_dir`` (atomically, as a
    whole); records over :data:`MAX_PLOT_LENGTH` nt are skipped with a counted warning."""
    from pathlib import Path

    from nucfm.analysis.structure_plots import plot_structure
    from nucfm.paths import atomic_path, check_output_dir

    check_output_dir(plot_dir, (".png",), "plot")
    skipped = 0
    with atomic_path(plot_dir, directory=True) as tmp:
        for seq, pairs, p, key, title in items:
            if len(seq) > MAX_PLOT_LENGTH:
                skipped += 1
                continue
            dense = p.toarray() + p.toarray().T if is_sparse(p) else p
            plot_structure(seq, pairs, dense, Path(tmp) / f"{key}.png", title=title)
    if skipped:
        log.warning("%d record(s) longer than %d nt were not plotted", skipped, MAX_PLOT_LENGTH)


def score_files(pred_path: str, ref_path: str, shift: int = 0) -> tuple[dict, list[tuple[str, object]]]:
    """Macro scores of predicted structures against references, matched by id.

    Repeated ids are matched in order (the k-th prediction named ``a`` with the k-th reference
    named ``a``) and every reference is scored once. Returns (macro averages with ``n``,
    ``missing`` (references without a prediction, scored as empty predictions), ``unmatched``
    (predictions with no reference, not scored) and ``duplicate_ids`` (reference ids seen more
    than once); per-reference ``(id, PairScores)`` in reference order). Sequences must agree."""
    from collections import defaultdict

    from nucfm.io.structure import read_structures
    from nucfm.metrics import macro_average

    preds = read_structures(pred_path)
    refs = read_structures(ref_path)
    if not refs:
        raise InputError(f"{ref_path}: no reference structures")
    by_id: dict[str, list] = defaultdict(list)
    for p in preds:
        by_id[p.id].append(p)
    seen: dict[str, int] = defaultdict(int)
    pred_pairs, missing = [], 0
    for ref in refs:
        k = seen[ref.id]
        seen[ref.id] += 1
        cands = by_id.get(ref.id, [])
        if k >= len(cands):
            missing += 1
            pred_pairs.append([])
            continue
        pred = cands[k]
        if structure_letters(pred.seq) != structure_letters(ref.seq):
            raise InputError(f"record {ref.id!r}: the predicted and reference sequences differ")
        pred_pairs.append(pred.pairs)
    unmatched = sum(max(0, len(c) - seen.get(i, 0)) for i, c in by_id.items())
    duplicates = sum(1 for n in seen.values() if n > 1)
    scores = score_structures(pred_pairs, refs, shift=shift)
    avg = macro_average(scores) | {"missing": missing, "unmatched": unmatched, "duplicate_ids": duplicates}
    return avg, [(r.id, s) for r, s in zip(refs, scores)]
