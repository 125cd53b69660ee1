"""Job bodies of ``nucfm serve``: ``fn(job, ...) -> dict`` (the JSON result), run on a worker
thread by :class:`nucfm.serve.jobs.JobManager`. Each reads its input from a file the route wrote
into the job's private directory, calls the same library functions as the CLI, writes its
downloads into that directory and registers them with :meth:`Job.add_file`. Limits are checked
here, as the input is read, before any model runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.serve.jobs import Job
from nucfm.serve.resources import PLOT_LOCK, GenomeSlot, ModelSlot
from nucfm.serve.settings import Limits

MEDIA = {".dbn": "text/plain", ".ct": "text/plain", ".bpseq": "text/plain", ".zip": "application/zip",
         ".npz": "application/octet-stream", ".h5": "application/x-hdf5", ".parquet": "application/vnd.apache.parquet",
         ".tsv": "text/tab-separated-values", ".csv": "text/csv", ".vcf": "text/plain", ".gz": "application/gzip",
         ".png": "image/png"}


def media_type(path: Path) -> str:
    return MEDIA.get(Path(path).suffix.lower(), "application/octet-stream")


def read_records(path: Path, limits: Limits, max_len: int, max_total: int, what: str) -> list:
    """FASTA records of ``path``, refused as soon as a limit is passed (records per request,
    residues per sequence, residues per request)."""
    from nucfm.io.fasta import read_fasta

    recs, total = [], 0
    for rec in read_fasta(path):
        recs.append(rec)
        total += len(rec.seq)
        if len(recs) > limits.max_records:
            raise InputError(f"more than {limits.max_records} records: this server's limit per request "
                             "(nucfm serve --max-records)")
        if len(rec.seq) > max_len:
            raise InputError(f"record {rec.id!r} has {len(rec.seq)} letters: longer than this server's {what} "
                             f"limit of {max_len} per sequence (nucfm serve --max-{what}-len)")
        if total > max_total:
            raise InputError(f"more than {max_total} letters in all: this server's {what} limit per request "
                             f"(nucfm serve --max-{what}-residues)")
    return recs


# ---- fold and contacts ----------------------------------------------------------------------------
def _per_record(job: Job, slot: ModelSlot, seqs: list[str], predict, empty):
    """``predict(model, [seq])[0]`` for every sequence (``empty`` for an empty one), one record at
    a time under the model's lock, with progress and the job's timeout checked between records."""
    job.set_total(sum(map(len, seqs)), "nt")
    out = []
    for s in seqs:
        job.check()
        if not s:
            out.append(empty)
        else:
            with slot.lock:
                out.append(predict(slot.model, [s])[0])
        job.update(len(s))
    return out


def fold(job: Job, slot: ModelSlot, path: Path, opts, limits: Limits) -> dict:
    """Structures, pair probabilities and downloads (dbn, ct, bpseq (a zip for several records),
    probabilities .npz) of every record; pictures are drawn on request (:func:`fold_plot`)."""
    from nucfm.alphabet import structure_letters
    from nucfm.io.structure import StructureRecord, dot_bracket_pairs, to_dot_bracket, write_structures
    from nucfm.paths import unique_names
    from nucfm.tasks.structure import fold_sequences, write_pair_probs

    recs = read_records(path, limits, limits.max_fold_len, limits.max_fold_residues, "fold")
    seqs = [structure_letters(r.seq, drop_gaps=True) for r in recs]
    results = _per_record(job, slot, seqs, lambda m, s: fold_sequences(m, s, opts),
                          ([], np.zeros((0, 0), dtype=np.float32)))
    keys = unique_names([r.id for r in recs])
    out = [StructureRecord(r.id, s, pairs) for r, s, (pairs, _) in zip(recs, seqs, results)]
    downloads = {}
    for fmt in ("dbn", "ct"):
        write_structures(out, job.dir / f"structures.{fmt}", fmt)
        downloads[fmt] = job.add_file(f"structures.{fmt}", job.dir / f"structures.{fmt}", "text/plain")
    if len(out) == 1:
        write_structures(out, job.dir / f"{keys[0]}.bpseq", "bpseq")
        downloads["bpseq"] = job.add_file(f"{keys[0]}.bpseq", job.dir / f"{keys[0]}.bpseq", "text/plain")
    else:
        import shutil

        write_structures(out, job.dir / "bpseq", "bpseq")
        shutil.make_archive(str(job.dir / "structures.bpseq"), "zip", job.dir / "bpseq")
        downloads["bpseq"] = job.add_file("structures.bpseq.zip", job.dir / "structures.bpseq.zip", "application/zip")
    write_pair_probs(job.dir / "probs.npz", keys, [p for _, p in results])
    downloads["probs"] = job.add_file("probs.npz", job.dir / "probs.npz", "application/octet-stream")
    records = []
    for k, (rec, key, (pairs, probs)) in enumerate(zip(out, keys, results)):
        np.save(job.dir / f"probs_{k}.npy", probs.astype(np.float16))
        writable, left_out = dot_bracket_pairs(pairs)  # as the .dbn download: every pair in BPSEQ / CT
        records.append({"id": rec.id, "key": key, "length": len(rec.seq), "sequence": rec.seq,
                        "dot_bracket": to_dot_bracket(writable, len(rec.seq)), "pairs": [list(p) for p in pairs],
                        "pairs_not_in_dot_bracket": left_out, "plot": f"/api/jobs/{job.id}/plots/{k}.png"})
    return {"model": slot.name, "threshold": opts.threshold, "records": records, "downloads": downloads}


def contacts(job: Job, slot: ModelSlot, path: Path, top_k: int | None, limits: Limits) -> dict:
    """Contact probability maps (a .npz download) and each record's top pairs (``nucfm contacts``)."""
    from nucfm.alphabet import structure_letters
    from nucfm.paths import unique_names
    from nucfm.tasks.contacts import top_pairs
    from nucfm.tasks.structure import write_pair_probs

    recs = read_records(path, limits, limits.max_fold_len, limits.max_fold_residues, "contacts")
    seqs = [structure_letters(r.seq, drop_gaps=True) for r in recs]
    maps = _per_record(job, slot, seqs, lambda m, s: m.predict_probs(s), np.zeros((0, 0), dtype=np.float32))
    keys = unique_names([r.id for r in recs])
    write_pair_probs(job.dir / "contacts.npz", keys, maps)
    downloads = {"maps": job.add_file("contacts.npz", job.dir / "contacts.npz", "application/octet-stream")}
    records = [{"id": r.id, "key": key, "length": len(s), "sequence": s,
                "top_pairs": [{"i": i, "j": j, "p": round(p, 5)} for i, j, p in top_pairs(m, top_k or len(s))]}
               for r, key, s, m in zip(recs, keys, seqs, maps)]
    return {"model": slot.name, "records": records, "downloads": downloads}


def fold_plot(job: Job, index: int) -> Path:
    """The PNG of record ``index`` of a finished fold job (``nucfm fold --plot``'s picture),
    drawn once and kept with the job."""
    from nucfm.analysis.structure_plots import plot_structure

    records = (job.result or {}).get("records", [])
    if not 0 <= index < len(records):
        raise InputError(f"no record {index} in job {job.id} ({len(records)} records)")
    png = job.dir / f"plot_{index}.png"
    if not png.exists():
        rec = records[index]
        probs = np.load(job.dir / f"probs_{index}.npy").astype(np.float32)
        tmp = job.dir / f".plot_{index}.tmp.png"
        with PLOT_LOCK:  # pyplot's state is global
            plot_structure(rec["sequence"], [tuple(p) for p in rec["pairs"]], probs, tmp, title=rec["id"])
        tmp.replace(png)
    return png


# ---- embed --------------------------------------------------------------------------------------
def embed(job: Job, slot: ModelSlot, path: Path, pool: str, layer: int, limits: Limits) -> dict:
    """Per-residue embeddings as HDF5 (``pool="none"``) or mean-pooled vectors as Parquet."""
    from nucfm.tasks.embed import embed_fasta

    recs = read_records(path, limits, limits.max_embed_len, limits.max_embed_residues, "embed")
    n = slot.model.num_layers
    if not -n - 1 <= layer <= n:
        raise InputError(f"layer {layer} does not exist: {slot.name} has layers 0..{n} (or -1..-{n + 1})")
    job.set_total(sum(len(r.seq) for r in recs), "nt")
    out = job.dir / ("embeddings.parquet" if pool == "mean" else "embeddings.h5")
    with slot.lock:
        summary = embed_fasta(slot.model, str(path), str(out), layer=layer, pool=None if pool == "none" else pool,
                              model_name=slot.name, show_progress=False, progress=job)
    job.done = job.total or job.done  # gaps and windows make the residue count differ from letters
    return {"model": slot.name, "layer": layer, "pool": pool, "dim": slot.model.hidden_size, **summary,
            "download": job.add_file(out.name, out, media_type(out))}


# ---- variants -----------------------------------------------------------------------------------
def vep(job: Job, slot: ModelSlot, gslot: GenomeSlot, path: Path, method: str, window: int, limits: Limits) -> dict:
    """Scores and statuses of every row (as ``nucfm vep``), the scored file in the input's
    format, and the table as JSON (columns, rows)."""
    from nucfm.io.variants import check_variants, output_names, read_variants, status_counts, write_scored
    from nucfm.tasks.variants import STRATEGIES, score_variants

    if method not in STRATEGIES:
        raise InputError(f"unknown method {method!r}; known: {', '.join(STRATEGIES)}")
    vt = read_variants(path)
    if len(vt) == 0:
        raise InputError("no variants in the input")
    if len(vt) > limits.max_variants:
        raise InputError(f"{len(vt)} variant rows: more than this server's limit of {limits.max_variants} per "
                         "request (nucfm serve --max-variants)")
    values = np.full(len(vt), np.nan)
    with slot.lock, gslot.lock:
        status = check_variants(vt, gslot.genome)
        ok = np.flatnonzero(status == "ok")
        job.set_total(len({(vt.variants[i].chrom, vt.variants[i].start) for i in ok}), "site")
        if len(ok):
            values[ok] = score_variants(slot.model, gslot.genome, [vt.variants[i] for i in ok], window=window,
                                        method=method, progress=job)["score"]
    out = job.dir / ("scored" + "".join(path.suffixes))
    write_scored(vt, {"score": values}, out, description=f"{method} of alt vs ref, masked LM, mean of both "
                 f"strands, window {window}, model {slot.name}")
    names = output_names(vt.table, ["score", "status"])
    table = vt.table.copy()
    table[names["score"]] = values
    table[names["status"]] = status.astype(str)
    split = json.loads(table.to_json(orient="split", index=False, double_precision=7))
    return {"model": slot.name, "genome": gslot.name, "method": method, "window": window,
            "format": vt.format, "counts": status_counts(status), "columns": split["columns"],
            "rows": split["data"], "score_column": names["score"], "status_column": names["status"],
            "download": job.add_file(out.name, out, media_type(out))}


# ---- position probabilities ---------------------------------------------------------------------
def probs(job: Job, slot: ModelSlot, gslot: GenomeSlot, region: str, strands: str, window: int,
          limits: Limits) -> dict:
    """A/C/G/T probabilities at each position of ``region`` (1-based inclusive, as ``nucfm
    probs``) and each position's information content in bits (``2 - entropy``): a logo's heights."""
    from nucfm.io.genome import parse_region
    from nucfm.tasks.variants import position_probs, write_position_probs

    chrom, start, end = parse_region(region)
    if end - start > limits.max_region:
        raise InputError(f"region {region} has {end - start} positions: more than this server's limit of "
                         f"{limits.max_region} (nucfm serve --max-region)")
    job.set_total(end - start, "position")
    with slot.lock, gslot.lock:
        result = position_probs(slot.model, gslot.genome, chrom, start, end, window=window, strands=strands,
                                progress=job)
    out = write_position_probs(result, chrom, job.dir / "probs.tsv")
    p = np.clip(result["probs"], 1e-12, 1.0)
    info = 2.0 + (p * np.log2(p)).sum(axis=1)  # bits: 2 - entropy over A, C, G, T
    return {"model": slot.name, "genome": gslot.name, "chrom": chrom, "start": start + 1, "end": end,
            "strands": strands, "bases": "ACGT", "pos": result["pos"].tolist(), "ref": "".join(result["ref"]),
            "probs": np.round(result["probs"], 5).tolist(), "information": np.round(info, 4).tolist(),
            "download": job.add_file(out.name, out, media_type(out))}
