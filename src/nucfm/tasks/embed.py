"""``nucfm embed``: embeddings of every record of a FASTA file, streamed into one output file.

The model-level work (windows over long sequences, length-sorted batches) is
:mod:`nucfm.models.embedding`; this module reads records, shards them over processes under
``torchrun`` and writes them (:mod:`nucfm.io.embeddings`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nucfm import distributed
from nucfm.alphabet import EncodingReport
from nucfm.errors import InputError
from nucfm.models.embedding import DEFAULT_BATCH_TOKENS, embed_ids, embed_sequences  # noqa: F401

log = logging.getLogger("nucfm")


# Each chunk's embeddings are held in memory before they are saved: about this many bytes of
# float32 (a 640-wide RNA-FM: ~100k residues, ~1,700 records of 60 nt, tens of seconds on a CPU).
CHUNK_BYTES = 256 << 20


def read_chunks(records, alphabet, chunk_residues: int, stats: dict, report: EncodingReport, max_len=None,
                prepare=None):
    """Cut a stream of FASTA records into chunks of about ``chunk_residues`` encoded residues:
    yields ``(ids, encoded)`` lists, in input order. The cut depends only on the input and
    ``chunk_residues``, so a resumed run sees the same chunks. ``stats`` counts records, windowed
    (longer than ``max_len``) and empty records (with the first five empty ids). ``prepare(id,
    seq) -> seq``, when given, comes before encoding (a codon model's reading frame)."""
    ids_chunk, enc_chunk, size = [], [], 0
    for rec in records:
        stats["records"] += 1
        enc = alphabet.encode(prepare(rec.id, rec.seq) if prepare else rec.seq, report)
        if len(enc) == 0:
            stats["empty"] += 1
            if len(stats["empty_ids"]) < 5:
                stats["empty_ids"].append(rec.id)
        if max_len is not None and len(enc) > max_len:
            stats["windowed"] += 1
        ids_chunk.append(rec.id)
        enc_chunk.append(enc)
        size += len(enc)
        if size >= chunk_residues:
            yield ids_chunk, enc_chunk
            ids_chunk, enc_chunk, size = [], [], 0
    if ids_chunk:
        yield ids_chunk, enc_chunk


def save_chunk(path, ids: list[str], arrays: list[np.ndarray]) -> None:
    """One finished chunk as ``.npz``: ``ids``, ``lengths`` (rows per record) and ``data`` (the
    arrays stacked along axis 0: (sum L_i, D) per residue, or (N, D) pooled)."""
    lengths = np.array([len(a) if a.ndim == 2 else 1 for a in arrays], dtype=np.int64)
    data = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays]) if arrays else np.empty((0, 0), np.float32)
    np.savez(path, ids=np.array(ids, dtype=str), lengths=lengths, data=data.astype(np.float32, copy=False))


def load_chunk(path, pooled: bool) -> tuple[list[str], list[np.ndarray]]:
    """The ``(ids, arrays)`` of a :func:`save_chunk` file."""
    with np.load(path) as z:
        ids, lengths, data = [str(i) for i in z["ids"]], z["lengths"], z["data"]
    if pooled:
        return ids, list(data)
    return ids, np.split(data, np.cumsum(lengths)[:-1]) if len(ids) else []


def embed_fasta(
    model,
    fasta: str,
    output: str,
    layer: int = -1,
    pool: str | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    overlap: int | None = None,
    convert: bool = True,
    chunk_residues: int | None = None,
    model_name: str | None = None,
    show_progress: bool = True,
    progress=None,
    frame: int | None = None,
    longest_orf: bool = False,
    layout: str = "records",
    restart: bool = False,
) -> dict:
    """Embed every record of ``fasta`` into ``output`` (format by extension, ``layout`` for
    per-residue ``.h5``: see :mod:`nucfm.io.embeddings`); resumable, memory flat in the number
    of records.

    Records are streamed and cut into chunks of about ``chunk_residues`` residues (default: 256
    MiB of float32 embeddings); each finished chunk is saved in ``OUTPUT.parts/``
    (:mod:`nucfm.resume`), and when all are done they are merged, in input order, into the output.
    Rerunning the same command after an interruption skips the finished chunks (the output is
    the same bytes as an uninterrupted run's); other settings are refused unless ``restart``.

    Under ``torchrun`` each process embeds its share of every chunk (:func:`nucfm.distributed.shard`)
    and rank 0 gathers, saves and merges them: the same file as one process writes.

    Letter conversions, unknown letters and empty records are counted and logged as warnings;
    nothing is dropped. A codon model (mRNA-FM) reads each record as a coding sequence
    (:func:`nucfm.data.cds.prepare_cds`: ``frame`` 1-3 or ``longest_orf``; frame errors are
    one-line errors, a missing start or an internal stop counted warnings) and gives one vector per
    codon. Returns a summary dict (records, residues, report counts). ``progress``:
    a tqdm-like object advanced by residues, used instead of a progress bar (``nucfm serve``).
    """
    import dataclasses
    import itertools

    from nucfm import __version__
    from nucfm.checkpoint import fingerprint
    from nucfm.data.cds import CdsReport, prepare_cds
    from nucfm.io.embeddings import check_embedding_output
    from nucfm.io.fasta import read_fasta
    from nucfm.progress import bar as progress_bar
    from nucfm.resume import Parts, input_identity

    alphabet = model.alphabet if convert else dataclasses.replace(model.alphabet, convert=())
    pooled = pool == "mean"
    check_embedding_output(output, pooled, layout)
    if not Path(output).parent.is_dir():
        raise InputError(f"{output}: the directory {Path(output).parent} does not exist")
    chunk_residues = chunk_residues or max(1, CHUNK_BYTES // (4 * model.hidden_size))
    report = EncodingReport()
    codons = alphabet.kmer > 1
    cds_report = CdsReport()
    stats = {"records": 0, "windowed": 0, "empty": 0, "empty_ids": []}
    records = read_fasta(fasta)
    first = next(records)  # bad input fails here, before any output file or progress bar exists
    attrs = {"model": model_name, "layer": layer, "pool": pool or "none", "nucfm_version": __version__}
    ctx = distributed.setup()
    manifest = {**input_identity(fasta), "model_fingerprint": fingerprint(model), "layer": layer,
                "pool": pool or "none", "overlap": overlap, "convert": convert, "batch_tokens": batch_tokens,
                "chunk_residues": chunk_residues, "frame": frame, "longest_orf": longest_orf}
    parts = Parts(output, manifest, suffix=".npz", restart=restart)
    if ctx.is_main:
        parts.prepare()
    distributed.barrier(ctx)
    finished = parts.finished()
    bar = progress if progress is not None else progress_bar(
        total=None, unit="nt", unit_scale=True, desc="embed", enabled=show_progress and ctx.is_main,
        smoothing=0.1)

    was_training = model.training
    model.eval()
    n_chunks = 0
    try:
        cds = (lambda rid, seq: prepare_cds(rid, seq, frame, longest_orf, cds_report).seq) if codons else None
        chunks = read_chunks(itertools.chain([first], records), alphabet, chunk_residues, stats, report,
                             model.max_len, cds)
        for i, (ids_chunk, enc_chunk) in enumerate(chunks):
            n_chunks = i + 1
            if i in finished:
                continue
            mine = distributed.shard(enc_chunk, ctx)
            # forming batches from the records of a chunk, and running them, is embed_ids' job
            local = embed_ids(model, [enc_chunk[k] for k in mine], layer=layer, pool=pool,
                              batch_tokens=batch_tokens, overlap=overlap, progress=bar)
            arrays = distributed.gather(local, ctx, len(enc_chunk))
            if ctx.is_main:
                with parts.writing(i) as tmp:
                    save_chunk(tmp, ids_chunk, arrays)
    finally:
        if progress is None:
            bar.close()
        model.train(was_training)
    distributed.barrier(ctx)
    if ctx.is_main:
        merge_chunks(parts, n_chunks, output, pooled=pooled, dim=model.hidden_size, attrs=attrs, layout=layout)
    conversion = "->".join(alphabet.convert[0]) if alphabet.convert else ""
    for msg in report.messages(conversion) + cds_report.messages():
        log.warning(msg)
    if stats["windowed"]:
        unit = "codons" if codons else "nt"
        log.info(f"{stats['windowed']} records longer than {model.max_len} {unit} were embedded in overlapping "
                 "windows")
    if stats["empty"]:
        shown = ", ".join(stats["empty_ids"]) + (" ..." if stats["empty"] > 5 else "")
        what = "NaN vectors" if pooled else "empty arrays"
        log.warning(f"{stats['empty']} empty records written as {what}: {shown}")
    return {"records": stats["records"], "windowed": stats["windowed"], "residues": report.residues,
            "empty": stats["empty"], "converted": report.converted, "unknown": sum(report.unknown.values()),
            "gaps_removed": report.gaps_removed}


def merge_chunks(parts, n_chunks: int, output: str, pooled: bool, dim: int, attrs: dict, layout: str) -> None:
    """Write chunks ``0..n_chunks-1`` of ``parts`` into ``output``, one chunk in memory at a
    time, then delete the parts."""
    from nucfm.io.embeddings import EmbeddingWriter

    with EmbeddingWriter(output, pooled=pooled, dim=dim, attrs=attrs, layout=layout) as writer:
        for i in range(n_chunks):
            writer.add(*load_chunk(parts.path(i), pooled))
    parts.remove()
