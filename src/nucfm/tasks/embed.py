"""Per-residue and pooled embeddings from any nucfm language model.

Long sequences (more residues than the model's ``max_len``, 1022 for RNA-FM, or
``UNBOUNDED_WINDOW`` for models without a limit such as GPN's ConvNet) are cut into
overlapping windows of ``max_len`` residues, ``overlap`` residues apart at each seam (default a
quarter of the window). Every window is embedded on its own and each residue takes its vector from
the window whose centre region owns it: the seam between two consecutive windows is the middle of
their overlap, so a residue is never closer than ``overlap // 2`` to the edge of the window it is
read from (except at the true ends of the sequence). Windows are full length: the last one is
aligned to the sequence end.

Work is grouped by length: pieces are sorted by length and packed into batches of at most
``batch_tokens`` tokens (padding included), so little compute is spent on padding; results come
back in input order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from nucfm.alphabet import Alphabet, EncodingReport
from nucfm.data.collate import collate, n_special
from nucfm.errors import InputError

log = logging.getLogger("nucfm")

# Tokens per batch: measured on 2 cores, 512-1024 was ~35 % faster than 4096 for RNA-FM size, as
# the (tokens x 4*hidden) feed-forward activations then stay in cache.
DEFAULT_BATCH_TOKENS = 1024
# Window for models without a length limit (GPN's ConvNet): bounds memory on chromosome-sized
# records; a quarter-window overlap leaves 512 bases of context beyond each seam, about the
# receptive radius of GPN-brassicales.
UNBOUNDED_WINDOW = 4096


@dataclass(frozen=True)
class Window:
    """Residues ``[start, end)`` of a sequence embedded together; rows ``[own_start, own_end)`` of
    the result are taken from this window."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_windows(length: int, max_len: int, overlap: int | None = None) -> list[Window]:
    """Windows covering ``length`` residues with at most ``max_len`` each (see module docstring).

    >>> [(w.start, w.end, w.own_start, w.own_end) for w in plan_windows(10, 6, 2)]
    [(0, 6, 0, 5), (4, 10, 5, 10)]
    """
    if length <= max_len:
        return [Window(0, length, 0, length)]
    if overlap is None:
        overlap = max_len // 4
    if not 0 <= overlap < max_len:
        raise ValueError(f"overlap must be in [0, {max_len}), got {overlap}")
    step = max_len - overlap
    starts = list(range(0, length - max_len, step)) + [length - max_len]
    windows = []
    for k, s in enumerate(starts):
        own_start = 0 if k == 0 else (s + starts[k - 1] + max_len) // 2
        own_end = length if k == len(starts) - 1 else (starts[k + 1] + s + max_len) // 2
        windows.append(Window(s, s + max_len, own_start, own_end))
    return windows


def _batches(lengths: Sequence[int], budget: int, extra: int) -> list[list[int]]:
    """Indices grouped into length-sorted batches of at most ``budget`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, cur = [], []
    for i in order:
        width = lengths[i] + extra  # longest so far, since sorted
        if cur and (len(cur) + 1) * width > budget:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def encode_all(alphabet: Alphabet, seqs: Iterable[str], report: EncodingReport | None = None) -> list[np.ndarray]:
    return [alphabet.encode(s, report) for s in seqs]


@torch.inference_mode()
def embed_ids(
    model,
    ids: Sequence[np.ndarray],
    layer: int = -1,
    pool: str | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    overlap: int | None = None,
    progress=None,
) -> list[np.ndarray]:
    """Embeddings of already-encoded sequences; see :func:`embed_sequences`."""
    if pool not in (None, "none", "mean"):
        raise ValueError(f"pool must be 'mean' or None, got {pool!r}")
    if not -model.num_layers - 1 <= layer <= model.num_layers:
        raise InputError(f"layer {layer} does not exist: the model has layers 0..{model.num_layers} "
                         f"(or -1..-{model.num_layers + 1} from the end)")
    alphabet = model.alphabet
    max_len = model.max_len or UNBOUNDED_WINDOW
    D = model.hidden_size
    pieces: list[tuple[int, Window]] = []
    for i, a in enumerate(ids):
        for w in plan_windows(len(a), max_len, overlap):
            pieces.append((i, w))
    out = [np.empty((len(a), D), dtype=np.float32) for a in ids]
    piece_lengths = [w.end - w.start for _, w in pieces]
    for batch_idx in _batches(piece_lengths, batch_tokens, n_special(alphabet)):
        chunk = [ids[pieces[j][0]][pieces[j][1].start : pieces[j][1].end] for j in batch_idx]
        batch = collate(alphabet, chunk, max_len=model.max_len)
        hidden = model.hidden(batch.input_ids, batch.attention_mask, layer)  # (B, T, D)
        for row, j in enumerate(batch_idx):
            i, w = pieces[j]
            h = batch.residues(hidden, row)  # (L_w, D)
            out[i][w.own_start : w.own_end] = h[w.own_start - w.start : w.own_end - w.start].float().numpy()
        if progress is not None:  # residues finished, not tokens computed (windows overlap)
            progress.update(sum(pieces[j][1].own_end - pieces[j][1].own_start for j in batch_idx))
    if pool == "mean":
        return [a.mean(0) if len(a) else np.full(D, np.nan, dtype=np.float32) for a in out]
    return out


def embed_sequences(
    model,
    seqs: Sequence[str],
    layer: int = -1,
    pool: str | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    overlap: int | None = None,
    alphabet: Alphabet | None = None,
    report: EncodingReport | None = None,
    progress=None,
) -> list[np.ndarray]:
    """Embed sequences with ``model``; one float32 array per input sequence, in input order.

    Returns (L_i, D) arrays aligned with the residues of sequence i (BOS/EOS stripped, gaps
    removed) or, with ``pool="mean"``, (D,) vectors (NaN for an empty sequence). ``layer`` follows
    RNA-FM: 0 = token+position embeddings, k = after block k, -1 or ``num_layers`` = final output
    after the last LayerNorm. ``alphabet`` overrides the model's letter policy (e.g. without T->U);
    conversions are tallied in ``report``.

    >>> model.embed(["GGGAAACUUCGGUUUCCC"])[0].shape  # doctest: +SKIP
    (18, 640)
    """
    if isinstance(seqs, str):
        raise TypeError("seqs must be a list of sequences, not a single string")
    alphabet = alphabet or model.alphabet
    ids = encode_all(alphabet, seqs, report)
    was_training = model.training
    model.eval()
    try:
        return embed_ids(model, ids, layer=layer, pool=pool, batch_tokens=batch_tokens, overlap=overlap,
                         progress=progress)
    finally:
        model.train(was_training)


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
) -> dict:
    """Embed every record of ``fasta`` into ``output`` (format by extension, see
    :mod:`nucfm.io.embeddings`), streaming chunks of about ``chunk_residues`` residues.

    Letter conversions, unknown letters and empty records are counted and logged as warnings;
    nothing is dropped. Returns a summary dict (records, residues, report counts).
    """
    import dataclasses
    import itertools

    from tqdm.auto import tqdm

    from nucfm import __version__
    from nucfm.io.embeddings import EmbeddingWriter
    from nucfm.io.fasta import read_fasta

    alphabet = model.alphabet if convert else dataclasses.replace(model.alphabet, convert=())
    pooled = pool == "mean"
    report = EncodingReport()
    n_records, windowed, empty = 0, 0, []
    records = read_fasta(fasta)
    first = next(records)  # bad input fails here, before any output file or progress bar exists
    attrs = {"model": model_name, "layer": layer, "pool": pool or "none", "nucfm_version": __version__}
    writer = EmbeddingWriter(output, pooled=pooled, dim=model.hidden_size, attrs=attrs)
    bar = tqdm(total=None, unit="nt", unit_scale=True, desc="embed", disable=not show_progress, smoothing=0.1)

    def flush(ids_chunk, enc_chunk):
        arrays = embed_ids(model, enc_chunk, layer=layer, pool=pool, batch_tokens=batch_tokens,
                           overlap=overlap, progress=bar)
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
        writer.close()
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
