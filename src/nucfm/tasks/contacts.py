"""3D closeness (contact) maps: predicting them from FASTA, listing the top pairs, scoring them.

A contact model is a structure model with ``task: contact`` (:mod:`nucfm.models.structure`): the
same pair head, trained on contact maps (``nucfm train-ss --task contact``). Its (L, L) map is a
ranking, not a structure: nothing is decoded; precision is read on the top-L/k pairs
(:func:`nucfm.metrics.contact_hits`). Coordinates are 0-based; pairs ``(i, j)`` with ``i < j``.
Long inputs use the structure models' local mode (pairs within a maximum span, bounded memory).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.metrics import average_contact_scores, score_contacts
from nucfm.models.structure import StructureModel
from nucfm.tasks.structure import (
    MAX_LENGTH,
    announce,
    check_lengths,
    clean_records,
    is_sparse,
    read_pair_probs,
    write_pair_probs,
)

log = logging.getLogger("nucfm")

LIST_MIN_SEPARATION = 6  # listed top pairs skip |i - j| < 6 (near-diagonal contacts are trivial)


def top_pairs(probs, k: int, min_separation: int = LIST_MIN_SEPARATION) -> list[tuple[int, int, float]]:
    """The ``k`` highest-scoring pairs ``(i, j, p)`` with ``j - i >= min_separation``, best first
    (ties in row-major order). ``probs``: dense (L, L) or a local-mode sparse upper triangle."""
    if is_sparse(probs):
        coo = probs.tocoo()
        i, j, v = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
        keep = j - i >= min_separation
        i, j, v = i[keep], j[keep], v[keep]
        order = np.lexsort((j, i))
        i, j, v = i[order], j[order], v[order]
    else:
        i, j = np.triu_indices(probs.shape[0], min_separation)
        v = np.asarray(probs, dtype=np.float64)[i, j]
    best = np.argsort(-v, kind="stable")[:k]
    return [(int(i[t]), int(j[t]), float(v[t])) for t in best]


def contacts_fasta(model: StructureModel, fasta: str, output: str, plot_dir: str | None = None,
                   top_k: int | None = None, ref: str | None = None, workers: int = 1,
                   max_span: int | None = None, chunk_records: int = 256, restart: bool = False,
                   max_length: int | None = MAX_LENGTH, show_progress: bool = True) -> dict:
    """Contact maps of every record of ``fasta``: ``output`` (.npz/.h5, one map per record under
    its :func:`~nucfm.paths.unique_names` key, float16; local-mode maps sparse, see
    :func:`~nucfm.tasks.structure.write_pair_probs`), the top pairs as TSV beside it
    (``<output stem>.top.tsv``: key, id, i, j (0-based), separation, probability; ``top_k`` per
    record, default L, pairs with j - i >= 6), and with ``plot_dir`` a PNG per record, the known
    contacts of ``ref`` (contact JSON lines, matched by id) drawn beside the prediction; with
    ``ref`` the summary holds the scores. A record over ``max_length`` nt is refused before any
    work. Resumable like ``fold`` (``OUTPUT.parts/``, chunks of ``chunk_records`` records,
    ``restart``). Returns a summary dict."""
    from nucfm import distributed
    from nucfm.paths import unique_names
    from nucfm.progress import bar
    from nucfm.tasks.structure import load_map_chunks, map_parts, run_map_chunks

    if model.config.task != "contact":
        log.warning("model %s was trained for %s, not contacts: its map ranks base pairs", model.name,
                    model.config.task)
    refs = _read_refs(ref) if ref else {}
    recs, seqs, counts = clean_records(fasta, "given empty maps")
    check_lengths(recs, seqs, max_length, "contacts")
    announce("contacts", seqs, max_span, workers)
    keys = unique_names([r.id for r in recs])
    parts = map_parts(model, fasta, output, restart, chunk_records, max_span=max_span)
    with bar(total=sum(map(len, seqs)), unit="nt", unit_scale=True, desc="contacts", enabled=show_progress) as b:
        n_chunks = run_map_chunks(
            parts, seqs, lambda s: [((), p) for p in model.predict_probs(s, workers=workers, max_span=max_span,
                                                                        progress=b)],
            chunk_records, distributed.Context(), keep_probs=True)
    lengths = [len(s) for s in seqs]

    def maps():
        return (p for _, p in load_map_chunks(parts, n_chunks, lengths))

    write_pair_probs(output, keys, maps())
    tops = [top_pairs(p, top_k or len(s)) for p, s in zip(maps(), seqs)]
    _write_top(_top_path(output), keys, [r.id for r in recs], tops)
    if plot_dir:
        from nucfm.analysis.contact_plots import write_contact_plots

        known = [refs[r.id].contacts if r.id in refs else None for r in recs]
        write_contact_plots(plot_dir, [(s, p, k, r.id, kn) for s, p, k, r, kn in zip(seqs, maps(), keys, recs, known)])
    summary = {"records": len(recs), "top_pairs": str(_top_path(output))} | counts
    if refs:
        scored = [(r, p) for r, p in zip(recs, maps()) if r.id in refs]
        per = [score_contacts(_dense(p), refs[r.id].contacts, len(refs[r.id].seq)) for r, p in scored]
        summary["scores"] = average_contact_scores(per) if per else {}
        summary["scored"] = len(per)
    parts.remove()
    return summary


def _top_path(output: str) -> Path:
    p = Path(output)
    return p.with_name(p.name[: -len(p.suffix)] + ".top.tsv" if p.suffix else p.name + ".top.tsv")


def _write_top(path: Path, keys, ids, tops) -> None:
    from nucfm.paths import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write("key\tid\ti\tj\tseparation\tprobability\n")
        for key, rid, top in zip(keys, ids, tops):
            for i, j, p in top:
                fh.write(f"{key}\t{rid}\t{i}\t{j}\t{j - i}\t{p:.4f}\n")


def _dense(p) -> np.ndarray:
    return p.toarray() + p.toarray().T if is_sparse(p) else p


def _read_refs(path: str) -> dict:
    from nucfm.io.contacts import read_contacts

    out = {}
    for r in read_contacts(path):
        out.setdefault(r.id, r)
    return out


def score_contact_files(pred_path: str, ref_path: str) -> tuple[dict, list[tuple[str, dict]]]:
    """Contact precision of predicted maps (``nucfm contacts`` output, .npz) against a contact
    JSON-lines file. References are matched by key (:func:`~nucfm.paths.unique_names` of the
    reference ids in file order, as ``nucfm contacts`` names records). Returns (averages per
    metric (see :func:`~nucfm.metrics.average_contact_scores`) plus ``missing`` (references
    without a map, not scored), per-reference ``(id, hits)``). Lengths must agree."""
    from nucfm.io.contacts import read_contacts
    from nucfm.paths import unique_names

    refs = read_contacts(ref_path)
    if not refs:
        raise InputError(f"{ref_path}: no reference contact maps")
    keys = unique_names([r.id for r in refs])
    preds = read_pair_probs(pred_path, {k: len(r.seq) for k, r in zip(keys, refs)})
    per, missing = [], 0
    for key, r in zip(keys, refs):
        p = preds.get(key)
        if p is None:
            missing += 1
            continue
        if p.shape != (len(r.seq), len(r.seq)):
            raise InputError(f"record {r.id!r}: the predicted map is {p.shape[0]} long, the reference {len(r.seq)}")
        per.append((r.id, score_contacts(p, r.contacts, len(r.seq))))
    if not per:
        raise InputError(f"{pred_path}: no map matches a reference id of {ref_path}")
    avg = average_contact_scores([s for _, s in per])
    return {"metrics": avg, "missing": missing, "scored": len(per)}, per
