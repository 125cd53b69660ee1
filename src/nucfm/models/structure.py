"""A structure model: a pair head, the language model it reads (if any) and its pair features.

``StructureModel.predict_probs(seqs)`` gives (L, L) pair probabilities (base pairs, or 3D
closeness for a ``task: contact`` model); turning them into a structure (decoding) is
:mod:`nucfm.tasks.structure`; the checkpoint format and the official RNA-FM heads are
:mod:`nucfm.checkpoint.structure`.

Local mode (any length, bounded memory): pairs are limited to a maximum span; the bpp channels
come from ViennaRNA's local folding (RNAplfold) and the head runs on overlapping square blocks
along the diagonal, cut with a margin of its receptive field so that every kept pair has exactly
the logit the whole map would give it. Memory is O(L · span), the result a sparse upper triangle.
"""

from __future__ import annotations

import numpy as np
import torch

from nucfm import interrupts
from nucfm.alphabet import structure_letters
from nucfm.data.batching import plan_windows
from nucfm.data.structure_features import BPP_PARAMS, bpp_maps, feature_pool, onehot_outer, pair_features
from nucfm.errors import InputError
from nucfm.models.config import DecodeOptions, StructureConfig
from nucfm.models.heads import PairHead

# Sequences longer than this fold in local mode unless a span is given: a whole-map head on 1,500
# nt holds ~0.2 GB per activation (24 channels); a 3,000-nt map would need four times that.
LOCAL_ABOVE = 1500
DEFAULT_SPAN = 200  # maximum base-pair span of local mode when none is given
SPARSE_CUTOFF = 1e-4  # local-mode probabilities below this are not stored


def span_for(length: int, max_span: int | None = None, local_above: int = LOCAL_ABOVE) -> int | None:
    """The local-mode span for a sequence of ``length`` (None: fold the whole map)."""
    if max_span is not None:
        if max_span < 1:
            raise InputError(f"the maximum base-pair span must be >= 1, not {max_span}")
        return max_span if length > max_span + 1 else None
    return DEFAULT_SPAN if length > local_above else None


_WORKER: dict = {}  # the model inside a worker process of predict_probs


def _init_worker(model) -> None:
    torch.set_num_threads(1)
    _WORKER["model"] = model


def _predict_in_worker(seq: str) -> np.ndarray:
    """One whole-map prediction in a worker: features and head on one thread, so the result is
    the one a single-threaded process gives."""
    model = _WORKER["model"]
    return model._predict_chunk([seq], [None], None, None)[0]


class StructureModel:
    """A pair head, its optional language model and decoding options.

    >>> model = load_structure_model("nucfm-ss-res8x24-vienna3-bprna")  # doctest: +SKIP
    >>> probs = model.predict_probs(["GGGAAACUUCGGUUUCCC"])[0]  # (18, 18)  # doctest: +SKIP
    """

    def __init__(self, head: PairHead, config: StructureConfig, lm=None, name: str | None = None):
        self.head = head.eval()
        self.config = config
        self.lm = lm if config.lm is not None else None
        self.name = name
        if config.lm is not None and lm is None:
            raise InputError(f"structure model needs language model {config.lm!r}")
        if self.lm is not None and self.lm.hidden_size != config.lm_hidden_size:
            raise InputError(f"the head reads {config.lm_hidden_size}-dim embeddings but the language model "
                             f"has {self.lm.hidden_size}")

    @property
    def decode_options(self) -> DecodeOptions:
        return self.config.decode_options

    def to(self, device) -> StructureModel:
        self.head.to(device)
        if self.lm is not None:
            self.lm.to(device)
        return self

    def inputs(self, seqs: list[str], embeddings=None, bpps=None, workers: int = 1) -> list[tuple]:
        """Head inputs per sequence (structure letters): (embedding (L, D) or None, pair
        features (C, L, L) or None). ``bpps``: optional precomputed ``{feature: (L, L)}`` dicts."""
        if self.lm is not None and embeddings is None:
            embeddings = self.lm.embed(seqs, layer=self.config.lm_layer)
        features = self.config.features
        if bpps is None and any(f in BPP_PARAMS for f in features):
            bpps = bpp_maps(seqs, features, workers=workers)
        out = []
        for k, s in enumerate(seqs):
            e = embeddings[k] if embeddings is not None else None
            f = pair_features(s, features, bpps[k] if bpps is not None else None) if features else None
            out.append((e, f))
        return out

    @torch.inference_mode()
    def predict_probs(self, seqs: list[str], embeddings=None, bpps=None, chunk: int = 16, workers: int = 1,
                      max_span: int | None = None, local_above: int = LOCAL_ABOVE, progress=None) -> list:
        """Pair probabilities per sequence (sigmoid of the head's logits). Sequences are read with
        :func:`nucfm.alphabet.structure_letters`; inputs are built ``chunk`` sequences at a
        time, so memory holds one chunk's pair features. With ``workers > 1`` (and a model with
        bpp channels) sequences are predicted in that many processes, each sequence whole in one
        process on one thread (its ViennaRNA folds and its head pass), so the output is
        identical to one thread's; local-mode sequences run their ViennaRNA folds in the
        workers. A sequence folds whole, as a (L, L) float32 symmetric array, unless it is
        longer than ``max_span + 1`` (or, with no ``max_span``, than ``local_above``): then in
        local mode (:meth:`predict_local`), as a ``scipy.sparse.csr_matrix`` (L, L) holding the
        upper triangle ``i < j <= i + span`` above :data:`SPARSE_CUTOFF`. ``progress``: an
        optional bar (:func:`nucfm.progress.bar`) advanced by the residues of each finished sequence."""
        if isinstance(seqs, str):
            raise TypeError("seqs must be a list of sequences, not a single string")
        seqs = [structure_letters(s) for s in seqs]
        spans = [span_for(len(s), max_span, local_above) for s in seqs]
        thermo = any(f in BPP_PARAMS for f in self.config.features)
        given = embeddings is not None or bpps is not None
        in_workers = workers > 1 and thermo and not given  # whole predictions in worker processes
        pool = feature_pool(workers, _init_worker, (self,)) if in_workers else None
        if pool is None and thermo and not given and interrupts.armed():
            pool = feature_pool(1)  # under the CLI ViennaRNA folds in a worker, so Ctrl-C stops it at once
        try:
            probs: list = [None] * len(seqs)
            whole = [k for k, span in enumerate(spans) if span is None] if in_workers else []
            # whole-map sequences: one worker predicts each (features and head, one thread), longest first
            order = sorted(whole, key=lambda k: -len(seqs[k]))
            for k, p in zip(order, pool.imap(_predict_in_worker, [seqs[k] for k in order]) if order else ()):
                probs[k] = p
                if progress is not None:
                    progress.update(len(seqs[k]))
            rest = [k for k in range(len(seqs)) if probs[k] is None]
            for c in range(0, len(rest), chunk):
                idx = rest[c : c + chunk]
                part, part_spans = [seqs[k] for k in idx], [spans[k] for k in idx]
                e_part = None if embeddings is None else [embeddings[k] for k in idx]
                b_part = None if bpps is None else [bpps[k] for k in idx]
                if b_part is None and thermo:  # local-mode sequences: their ViennaRNA folds in the workers
                    b_part = bpp_maps(part, self.config.features, spans=part_spans, pool=pool)
                for k, p in zip(idx, self._predict_chunk(part, part_spans, e_part, b_part)):
                    probs[k] = p
                if progress is not None:
                    progress.update(sum(map(len, part)))
            return probs
        finally:
            if pool is not None:
                pool.terminate()

    def _predict_chunk(self, seqs, spans, embeddings, bpps) -> list:
        if self.lm is not None and embeddings is None:
            embeddings = self.lm.embed(seqs, layer=self.config.lm_layer)
        out = []
        for k, (s, span) in enumerate(zip(seqs, spans)):
            e = None if embeddings is None else embeddings[k]
            b = None if bpps is None else bpps[k]
            if len(s) == 0:
                out.append(np.zeros((0, 0), dtype=np.float32))
            elif span is not None:
                out.append(self.predict_local(s, span, e, b))
            else:
                f = pair_features(s, self.config.features, b) if self.config.features else None
                out.append(self._head_probs(e, f))
        return out

    @torch.inference_mode()
    def _head_probs(self, e, f) -> np.ndarray:
        """(L, L) exactly symmetric probabilities of one sequence's inputs."""
        device = next(self.head.parameters()).device
        et = None if e is None else torch.as_tensor(np.asarray(e, dtype=np.float32), device=device)[None]
        ft = None if f is None else torch.as_tensor(f, device=device)[None]
        p = torch.sigmoid(self.head(et, ft))[0].float().cpu().numpy()
        return np.triu(p) + np.triu(p, 1).T  # exactly symmetric, whatever the SIMD lanes did

    @torch.inference_mode()
    def predict_local(self, seq: str, span: int, embedding=None, bpps: dict | None = None):
        """Local-mode probabilities of one sequence (structure letters): pairs ``i < j <= i +
        span`` as a ``scipy.sparse.csr_matrix`` (L, L), upper triangle, entries above
        :data:`SPARSE_CUTOFF`. bpp channels are RNAplfold's (``bpps``: precomputed ``{feature:
        (idx, values)}`` from :func:`~nucfm.data.structure_features.bpp_maps` with ``spans``).
        The head runs on diagonal blocks overlapping by 2 (span + receptive radius); each pair is
        read from the block that holds it with that margin, so it equals the whole-map logit
        (with the same inputs). Peak memory: one block of ``4 (span + radius)`` residues."""
        import scipy.sparse as sp

        L = len(seq)
        if self.lm is not None and embedding is None:
            embedding = self.lm.embed([seq], layer=self.config.lm_layer)[0]
        thermo = [f for f in self.config.features if f in BPP_PARAMS]
        if thermo and bpps is None:
            bpps = bpp_maps([seq], thermo, spans=[span])[0]
        overlap = 2 * (span + self.head.receptive_radius)
        rows, cols, vals = [], [], []
        for w in plan_windows(L, max(2 * overlap, 1024), overlap):
            e = None if embedding is None else np.asarray(embedding)[w.start : w.end]
            p = self._head_probs(e, self._block_features(seq, w.start, w.end, bpps))
            i = np.arange(w.own_start, w.own_end)[:, None]  # (n, 1) owned rows
            j = i + np.arange(1, span + 1)[None, :]  # (n, span) partners within the span
            ok = j < L
            v = p[(i - w.start).repeat(span, 1)[ok], j[ok] - w.start]
            keep = v > SPARSE_CUTOFF
            rows.append(i.repeat(span, 1)[ok][keep])
            cols.append(j[ok][keep])
            vals.append(v[keep])
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt)) if rows else (lambda xs, dt: np.zeros(0, dt))
        return sp.csr_matrix((cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))), shape=(L, L))

    def _block_features(self, seq: str, start: int, end: int, bpps: dict | None) -> np.ndarray | None:
        """(C, n, n) pair channels of residues [start, end): one-hot, and local bpp entries
        falling inside the block."""
        if not self.config.features:
            return None
        n = end - start
        parts = []
        for f in self.config.features:
            if f == "onehot":
                parts.append(onehot_outer(seq[start:end]))
                continue
            idx, val = bpps[f]
            inside = (idx[:, 0] >= start) & (idx[:, 1] < end)
            m = np.zeros((n, n), dtype=np.float32)
            m[idx[inside, 0] - start, idx[inside, 1] - start] = val[inside]
            parts.append((m + m.T)[None])
        return np.concatenate(parts, axis=0)
