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
from nucfm.data.batching import Window, plan_windows
from nucfm.data.collate import collate, n_special
from nucfm.errors import InputError
from nucfm.inference import TokenBudget, budget_batches, pin, prefetch, run_halving, to_device

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
    budget: TokenBudget | None = None,
) -> list[np.ndarray]:
    """Embeddings of already-encoded sequences; see :func:`embed_sequences`. Batches hold at most
    ``batch_tokens`` padded tokens, or follow ``budget`` (a :class:`~nucfm.inference.TokenBudget`
    shared across calls, which on a GPU adapts to free memory); a batch that runs out of device
    memory is split in halves (:func:`~nucfm.inference.run_halving`)."""
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
        if len(a) == 0:  # nothing to compute (and a ConvNet cannot run on zero positions)
            continue
        for w in plan_windows(len(a), max_len, overlap):
            pieces.append((i, w))
    pooled = pool == "mean"
    # pooled: each window's own residues are summed where the model runs, so only (B, D) comes back
    sums = np.zeros((len(ids), D)) if pooled else None
    out = None if pooled else [np.empty((len(a), D), dtype=np.float32) for a in ids]
    dev = model.device  # the batch follows the model (--device)
    if budget is None:
        budget = TokenBudget(batch_tokens, dev, cost=lambda n: n + n_special(alphabet))
    items = ((j, range(w.start, w.end)) for j, (_, w) in enumerate(pieces))  # (piece, residue span)

    def prepare(part):  # collated and pinned, in the prefetch thread
        batch = collate(alphabet, [ids[pieces[j][0]][span.start : span.stop] for j, span in part],
                        max_len=model.max_len)
        own = None
        if pooled:  # (B, T) 1 on the residues each window owns
            own = torch.zeros(batch.input_ids.shape, dtype=torch.float32)
            for row, (j, _) in enumerate(part):
                w = pieces[j][1]
                own[row, batch.offset + w.own_start - w.start : batch.offset + w.own_end - w.start] = 1
            own = pin(own, dev)
        return part, batch, pin(batch.input_ids, dev), pin(batch.attention_mask, dev), own

    for whole in prefetch(map(prepare, budget_batches(items, budget))):

        def forward(part, whole=whole):  # a half after an out-of-memory error is collated again
            _, batch, input_ids, mask, own = whole if part is whole[0] else prepare(part)
            hidden = model.hidden(to_device(input_ids, dev), to_device(mask, dev), layer)  # (B, T, D)
            if pooled:  # fp32 sums (outside autocast: a plain multiply and sum)
                return batch, (hidden.float() * to_device(own, dev).unsqueeze(-1)).sum(1).cpu()
            return batch, hidden.float().cpu()

        for part, (batch, hidden) in run_halving(forward, whole[0], budget):
            for row, (j, _) in enumerate(part):
                i, w = pieces[j]
                if pooled:
                    sums[i] += hidden[row].numpy()
                    continue
                h = batch.residues(hidden, row)  # (L_w, D)
                out[i][w.own_start : w.own_end] = h[w.own_start - w.start : w.own_end - w.start].numpy()
            if progress is not None:  # residues finished, not tokens computed (windows overlap)
                progress.update(sum(pieces[j][1].own_end - pieces[j][1].own_start for j, _ in part))
    if pooled:
        return [(sums[i] / len(a)).astype(np.float32) if len(a) else np.full(D, np.nan, dtype=np.float32)
                for i, a in enumerate(ids)]
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
