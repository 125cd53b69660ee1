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
    is_sparse,
    read_pair_probs,
    scan_records,
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
    ``restart``); memory does not grow with the number of records, as in ``fold``. Returns a
    summary dict."""
    from nucfm import distributed
    from nucfm.progress import bar
    from nucfm.tasks.structure import map_parts, merge_map_chunks, run_map_chunks

    if model.config.task != "contact":
        log.warning("model %s was trained for %s, not contacts: its map ranks base pairs", model.name,
                    model.config.task)
    refs = _read_refs(ref) if ref else {}
    records = scan_records(fasta, "given empty maps", max_length, "contacts", max_span)
    announce("contacts", records, workers)
    parts = map_parts(model, fasta, output, restart, chunk_records, max_span=max_span)
    with bar(total=records.nt, unit="nt", unit_scale=True, desc="contacts", enabled=show_progress) as b:
        n_chunks = run_map_chunks(
            parts, records.chunks(chunk_records),
            lambda s: [((), p) for p in model.predict_probs(s, workers=workers, max_span=max_span, progress=b)],
            distributed.Context(), keep_probs=True)

    def maps():  # (id, sequence, key, probs) per record, read again for each output
        return ((rid, seq, key, p) for rid, seq, key, _, p in merge_map_chunks(records, parts, n_chunks))

    write_pair_probs(output, records.keys, (p for *_, p in maps()))
    _write_top(_top_path(output), ((key, rid, top_pairs(p, top_k or len(seq))) for rid, seq, key, p in maps()))
    if plot_dir:
        from nucfm.analysis.contact_plots import write_contact_plots

        write_contact_plots(plot_dir, ((seq, p, key, rid, refs[rid].contacts if rid in refs else None)
                                       for rid, seq, key, p in maps()))
    summary = {"records": records.records, "top_pairs": str(_top_path(output))} | records.counts
    if refs:  # a score per referenced record, not its map
        per = [score_contacts(_dense(p), refs[rid].contacts, len(refs[rid].seq)) for rid, _, _, p in maps()
               if rid in refs]
        summary["scores"] = average_contact_scores(per) if per else {}
        summary["scored"] = len(per)
    parts.remove()
    return summary


def _top_path(output: str) -> Path:
    p = Path(output)
    return p.with_name(p.name[: -len(p.suffix)] + ".top.tsv" if p.suffix else p.name + ".top.tsv")


def _write_top(path: Path, rows) -> None:
    """The top-pairs TSV from ``(key, id, top pairs)`` per record, written as they come."""
    from nucfm.paths import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write("key\tid\ti\tj\tseparation\tprobability\n")
        for key, rid, top in rows:
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
