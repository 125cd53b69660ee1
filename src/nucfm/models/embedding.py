"""Per-residue and pooled embeddings of sequences of any length, from any nucfm language model.

Long sequences (more residues than the model's ``max_len``, 1022 for RNA-FM, or
``UNBOUNDED_WINDOW`` for models without a limit such as GPN's ConvNet) are cut into
overlapping windows (:func:`nucfm.data.batching.plan_windows`): every window is embedded on its
own and each residue takes its vector from the window whose centre region owns it, so a residue
is never closer than ``overlap // 2`` to the edge of the window it is read from (except at the
true ends of the sequence).

Work is grouped by length: pieces are sorted by length and packed into batches of at most
``batch_tokens`` tokens (padding included), so little compute is spent on padding; results come
back in input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from nucfm.alphabet import Alphabet, EncodingReport
from nucfm.data.batching import Window, length_batches, plan_windows
from nucfm.data.collate import collate, n_special
from nucfm.errors import InputError

# Tokens per batch: measured on 2 cores, 512-1024 was ~35 % faster than 4096 for RNA-FM size, as
# the (tokens x 4*hidden) feed-forward activations then stay in cache.
DEFAULT_BATCH_TOKENS = 1024
# Window for models without a length limit (GPN's ConvNet): bounds memory on chromosome-sized
# records; a quarter-window overlap leaves 512 bases of context beyond each seam, about the
# receptive radius of GPN-brassicales.
UNBOUNDED_WINDOW = 4096


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
    extra = n_special(alphabet)
    for batch_idx in length_batches(piece_lengths, batch_tokens, cost=lambda n: n + extra):
        chunk = [ids[pieces[j][0]][pieces[j][1].start : pieces[j][1].end] for j in batch_idx]
        batch = collate(alphabet, chunk, max_len=model.max_len)
        dev = model.device  # the batch follows the model (--device)
        hidden = model.hidden(batch.input_ids.to(dev), batch.attention_mask.to(dev), layer).cpu()  # (B, T, D)
        for row, j in enumerate(batch_idx):
            i, w = pieces[j]
            h = batch.residues(hidden, row)  # (L_w, D)
            out[i][w.own_start : w.own_end] = h[w.own_start - w.start : w.own_end - w.start].float().cpu().numpy()
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
