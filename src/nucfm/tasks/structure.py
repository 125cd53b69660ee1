"""RNA secondary structure tasks: decoding pair probabilities into structures, folding FASTA
files, scoring predicted structures against references.

Coordinates: residues are 0-based; a pair is ``(i, j)`` with ``i < j``; maps are (L, L) with
``[i, j]`` the probability of residues i and j pairing. The model that gives the maps is
:class:`nucfm.models.structure.StructureModel`; its pair features are
:mod:`nucfm.data.structure_features`.
"""

from __future__ import annotations

import logging

import numpy as np

from nucfm import distributed
from nucfm.alphabet import structure_letters
from nucfm.errors import InputError
from nucfm.models.config import DecodeOptions
from nucfm.models.structure import StructureModel

log = logging.getLogger("nucfm")

CANONICAL = frozenset({("A", "U"), ("U", "A"), ("G", "C"), ("C", "G"), ("G", "U"), ("U", "G")})


# ---- decoding -----------------------------------------------------------------------------------
def candidate_pairs(probs: np.ndarray, seq: str, opts: DecodeOptions) -> tuple[np.ndarray, np.ndarray]:
    """Allowed pairs above threshold: (idx (N, 2) with i < j, probabilities (N,))."""
    L = probs.shape[0]
    allowed = np.triu(np.ones((L, L), dtype=bool), opts.min_hairpin + 1)
    allowed &= probs > opts.threshold
    if opts.canonical_only:
        s = np.array(list(structure_letters(seq)))
        ok = np.zeros((L, L), dtype=bool)
        for a, b in CANONICAL:
            ok |= (s[:, None] == a) & (s[None, :] == b)
        allowed &= ok
    i, j = np.nonzero(allowed)
    return np.stack([i, j], 1), probs[i, j]


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


def decode_structure(probs: np.ndarray, seq: str, opts: DecodeOptions | None = None) -> list[tuple[int, int]]:
    """A valid structure from a (L, L) pair-probability map: every residue in at most one pair,
    every pair leaving ``min_hairpin`` residues inside, optional canonical-only and nesting.

    >>> p = np.zeros((8, 8)); p[0, 7] = p[7, 0] = 0.9; p[0, 6] = p[6, 0] = 0.8
    >>> decode_structure(p, "GAAAAAAC")
    [(0, 7)]
    """
    from nucfm.io.structure import remove_pseudoknots

    opts = opts or DecodeOptions()
    probs = np.asarray(probs, dtype=np.float64)
    idx, p = candidate_pairs(probs, seq, opts)
    pairs = DECODERS[opts.method](idx, p) if len(p) else []
    if not opts.pseudoknots:
        pairs = remove_pseudoknots(pairs)
    return pairs


def fold_sequences(model: StructureModel, seqs: list[str], opts: DecodeOptions | None = None
                   ) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
    """(pairs, (L, L) probabilities) per sequence.

    >>> fold_sequences(model, ["GGGAAACUUCGGUUUCCC"])[0][0]  # doctest: +SKIP
    [(0, 17), (1, 16), ...]
    """
    opts = opts or model.decode_options
    seqs = [structure_letters(s) for s in seqs]
    return [(decode_structure(p, s, opts), p) for s, p in zip(seqs, model.predict_probs(seqs))]


def score_structures(preds, refs, shift: int = 0) -> list:
    """Per-record :class:`~nucfm.metrics.PairScores` of predicted pair lists against reference
    :class:`~nucfm.io.structure.StructureRecord`\\ s (same order): THE scoring loop of folding,
    training and the benchmarks."""
    from nucfm.metrics import score_pairs

    return [score_pairs(p, r.pairs, len(r.seq), shift=shift) for p, r in zip(preds, refs)]


# ---- files in, files out ------------------------------------------------------------------------
PROBS_FORMATS = (".npz", ".h5", ".hdf5")


def write_pair_probs(path, keys: list[str], probs: list[np.ndarray]) -> None:
    """Each record's (L, L) pair probabilities (float16) under its unique key, atomically:
    ``.npz`` arrays or ``.h5`` datasets under ``/probs/<key>``, plus ``ids`` in input order."""
    from pathlib import Path

    from nucfm.paths import atomic_path

    ext = Path(path).suffix.lower()
    if ext not in PROBS_FORMATS:
        raise InputError(f"{path}: pair probabilities are written as {', '.join(PROBS_FORMATS)}")
    if ext == ".npz":  # the key array's own name is never a record's
        from nucfm.paths import unique_names

        keys = unique_names(keys, reserved=("__keys__",))
    with atomic_path(path) as tmp:
        if ext == ".npz":
            import zipfile

            # numpy.savez's own layout, written by hand: any key (even "file") is a valid name
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                for k, p in [("__keys__", np.array(keys)), *zip(keys, (p.astype(np.float16) for p in probs))]:
                    with zf.open(f"{k}.npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array(fh, np.asanyarray(p), allow_pickle=False)
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                g = f.create_group("probs")
                for k, p in zip(keys, probs):
                    g.create_dataset(k, data=p.astype(np.float16), compression="gzip")
                f.create_dataset("keys", data=np.array(keys, dtype=object), dtype=h5py.string_dtype())


def fold_fasta(model: StructureModel, fasta: str, output: str, fmt: str = "dbn",
               probs_path: str | None = None, plot_dir: str | None = None,
               opts: DecodeOptions | None = None) -> dict:
    """Fold every record of ``fasta`` and write structures to ``output`` (see
    :func:`nucfm.io.structure.write_structures` for the layout). ``probs_path`` (.npz or .h5)
    receives each record's (L, L) float16 pair probabilities; ``plot_dir`` a PNG per record
    (probability map + 2D diagram). Records are keyed by :func:`nucfm.paths.unique_names` of
    their ids in every output. Under ``torchrun`` each process folds its share and rank 0 writes
    all outputs (the same files as one process). Returns a summary dict."""
    from pathlib import Path

    from nucfm.io.fasta import read_fasta
    from nucfm.io.structure import StructureRecord, write_structures
    from nucfm.paths import atomic_path, check_output_dir, unique_names

    recs = list(read_fasta(fasta))
    opts = opts or model.decode_options
    seqs = [structure_letters(r.seq, drop_gaps=True) for r in recs]
    empty = [r.id for r, s in zip(recs, seqs) if not s]
    converted = sum(c not in "ACGUT" for r in recs for c in r.seq.upper() if c not in "-.")
    if empty:
        log.warning("%d empty record(s) written with no pairs: %s", len(empty), ", ".join(empty[:5]))
    if converted:
        log.warning("%d residue(s) other than A, C, G, U/T are read as N (unknown nucleotide)", converted)
    long = [r.id for r, s in zip(recs, seqs) if model.lm is not None and model.lm.max_len
            and len(s) > model.lm.max_len]
    if long:
        log.info("%d sequence(s) longer than the language model maximum (%d): embedded in overlapping windows",
                 len(long), model.lm.max_len)
    ctx = distributed.setup()  # under torchrun: each process folds its share, rank 0 writes everything
    mine = distributed.shard(seqs, ctx)
    results = distributed.gather(fold_sequences(model, [seqs[i] for i in mine], opts), ctx, len(seqs))
    if results is None:
        return {"records": len(mine), "rank": ctx.rank}
    out_recs = [StructureRecord(r.id, s, pairs) for r, s, (pairs, _) in zip(recs, seqs, results)]
    write_structures(out_recs, output, fmt)
    keys = unique_names([r.id for r in recs])
    if probs_path:
        write_pair_probs(probs_path, keys, [p for _, p in results])
    if plot_dir:
        from nucfm.analysis.structure_plots import plot_structure

        check_output_dir(plot_dir, (".png",), "plot")
        with atomic_path(plot_dir, directory=True) as tmp:
            for rec, key, (pairs, p) in zip(out_recs, keys, results):
                plot_structure(rec.seq, pairs, p, Path(tmp) / f"{key}.png", title=rec.id)
    return {"records": len(recs), "pairs": sum(len(p) for p, _ in results), "empty": len(empty),
            "windowed": len(long), "converted": converted}


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
