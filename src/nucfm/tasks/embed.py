"""``nucfm embed``: embeddings of every record of a FASTA file, streamed into one output file.

The model-level work (windows over long sequences, length-sorted batches) is
:mod:`nucfm.models.embedding`; this module reads records, shards them over processes under
``torchrun`` and writes them (:mod:`nucfm.io.embeddings`).
"""

from __future__ import annotations

import logging

from nucfm import distributed
from nucfm.alphabet import EncodingReport
from nucfm.models.embedding import DEFAULT_BATCH_TOKENS, embed_ids, embed_sequences  # noqa: F401

log = logging.getLogger("nucfm")


def embed_fasta(
    model,
    fasta: str,
    output: str,
    layer: int = -1,
    pool: str | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    overlap: int | None = None,
    convert: bool = True,
    chunk_residues: int = 2_000_000,
    model_name: str | None = None,
    show_progress: bool = True,
    progress=None,
) -> dict:
    """Embed every record of ``fasta`` into ``output`` (format by extension, see
    :mod:`nucfm.io.embeddings`), streaming chunks of about ``chunk_residues`` residues.

    Under ``torchrun`` each process embeds its share of every chunk (:func:`nucfm.distributed.shard`)
    and rank 0 gathers and writes them in input order: the same file as one process writes.

    Letter conversions, unknown letters and empty records are counted and logged as warnings;
    nothing is dropped. Returns a summary dict (records, residues, report counts). ``progress``:
    a tqdm-like object advanced by residues, used instead of a progress bar (``nucfm serve``).
    """
    import dataclasses
    import itertools

    from nucfm import __version__
    from nucfm.io.embeddings import EmbeddingWriter
    from nucfm.io.fasta import read_fasta
    from nucfm.progress import bar as progress_bar

    alphabet = model.alphabet if convert else dataclasses.replace(model.alphabet, convert=())
    pooled = pool == "mean"
    report = EncodingReport()
    n_records, windowed, empty = 0, 0, []
    records = read_fasta(fasta)
    first = next(records)  # bad input fails here, before any output file or progress bar exists
    attrs = {"model": model_name, "layer": layer, "pool": pool or "none", "nucfm_version": __version__}
    ctx = distributed.setup()
    writer = EmbeddingWriter(output, pooled=pooled, dim=model.hidden_size, attrs=attrs) if ctx.is_main else None
    bar = progress if progress is not None else progress_bar(
        total=None, unit="nt", unit_scale=True, desc="embed", enabled=show_progress and ctx.is_main,
        smoothing=0.1)

    def flush(ids_chunk, enc_chunk):
        mine = distributed.shard(enc_chunk, ctx)
        local = embed_ids(model, [enc_chunk[i] for i in mine], layer=layer, pool=pool, batch_tokens=batch_tokens,
                          overlap=overlap, progress=bar)
        arrays = distributed.gather(local, ctx, len(enc_chunk))
        if writer is not None:
            writer.add(ids_chunk, arrays)

    was_training = model.training
    model.eval()
    try:
        ids_chunk, enc_chunk, size = [], [], 0
        for rec in itertools.chain([first], records):
            n_records += 1
            enc = alphabet.encode(rec.seq, report)
            if len(enc) == 0:
                empty.append(rec.id)
            if model.max_len is not None and len(enc) > model.max_len:
                windowed += 1
            ids_chunk.append(rec.id)
            enc_chunk.append(enc)
            size += len(enc)
            if size >= chunk_residues:
                flush(ids_chunk, enc_chunk)
                ids_chunk, enc_chunk, size = [], [], 0
        if ids_chunk:
            flush(ids_chunk, enc_chunk)
    finally:
        if writer is not None:
            writer.close()
        if progress is None:
            bar.close()
        model.train(was_training)
    conversion = "->".join(alphabet.convert[0]) if alphabet.convert else ""
    for msg in report.messages(conversion):
        log.warning(msg)
    if windowed:
        log.info(f"{windowed} records longer than {model.max_len} nt were embedded in overlapping windows")
    if empty:
        shown = ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else "")
        what = "NaN vectors" if pooled else "empty arrays"
        log.warning(f"{len(empty)} empty records written as {what}: {shown}")
    return {"records": n_records, "windowed": windowed, "residues": report.residues, "empty": len(empty),
            "converted": report.converted, "unknown": sum(report.unknown.values()),
            "gaps_removed": report.gaps_removed}
