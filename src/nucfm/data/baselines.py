"""Count-based masked-token baselines: unigram frequencies and a ±k context model.

Counted on the training data at preparation time (``counts.npz``, shipped beside each model as
``mlm_counts.npz``) so ``nucfm eval-mlm`` can score the same masked positions with the model and
with both baselines. The context model predicts the centre base from its ``k`` left and ``k``
right neighbours, each one of the four canonical bases or "other" (sequence edge, N, ambiguity
letter): ``5 ** (2k)`` contexts x 4 bases, add-one smoothed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nucfm.alphabet import Alphabet, get_alphabet

OTHER = 4
WILDCARD = 5  # a neighbour the model cannot see (masked): counts summed over the four bases


@dataclass
class ContextCounts:
    alphabet: Alphabet
    k: int
    unigram: np.ndarray  # (4,) int64
    context: np.ndarray  # (5 ** 2k, 4) int64

    def __post_init__(self):
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    @classmethod
    def empty(cls, alphabet: Alphabet, k: int = 3) -> ContextCounts:
        return cls(alphabet, k, np.zeros(4, np.int64), np.zeros((5 ** (2 * k), 4), np.int64))

    def codes(self, ids: np.ndarray) -> np.ndarray:
        """Residue ids (L,) -> codes 0..3 for the canonical bases (vocabulary order), 4 otherwise."""
        table = np.full(max(256, len(self.alphabet)), OTHER, dtype=np.int64)
        table[self.alphabet.residue_ids()] = np.arange(4)
        return table[ids]

    def context_index(self, codes: np.ndarray) -> np.ndarray:
        """(L,) codes -> (L,) index of each position's ±k neighbourhood (edges count as other)."""
        k = self.k
        padded = np.concatenate([np.full(k, OTHER), codes, np.full(k, OTHER)])
        L = len(codes)
        idx = np.zeros(L, dtype=np.int64)
        offsets = [o for o in range(-k, k + 1) if o != 0]
        for o in offsets:
            idx = idx * 5 + padded[k + o : k + o + L]
        return idx

    def add(self, ids: np.ndarray, chunk: int = 1 << 20) -> None:
        """Count one sequence (residue ids, no specials); long sequences in chunks, short ones
        buffered so that many small sequences cost one bincount."""
        codes = self.codes(np.asarray(ids))
        for s in range(0, len(codes), chunk):
            # context of a chunk needs k neighbours on each side
            lo, hi = max(0, s - self.k), min(len(codes), s + chunk + self.k)
            ctx = self.context_index(codes[lo:hi])[s - lo : s - lo + min(chunk, len(codes) - s)]
            c = codes[s : s + chunk]
            ok = c < 4
            self._pending.append(ctx[ok] * 4 + c[ok])
            self._n_pending += int(ok.sum())
            if self._n_pending >= chunk:
                self.flush()

    def flush(self) -> None:
        if self._pending:
            keys = np.concatenate(self._pending)
            self.context += np.bincount(keys, minlength=self.context.size).reshape(self.context.shape)
            self.unigram += np.bincount(keys % 4, minlength=4)
            self._pending, self._n_pending = [], 0

    def log_probs(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Natural-log probabilities of the 4 bases at every position of ``ids`` (L,):
        (unigram (4,), context (L, 4))."""
        self.flush()
        uni = np.log((self.unigram + 1) / (self.unigram.sum() + 4))
        ctx = self.context[self.context_index(self.codes(np.asarray(ids)))] + 1
        return uni, np.log(ctx / ctx.sum(-1, keepdims=True))

    def log_probs_masked(self, codes: np.ndarray) -> np.ndarray:
        """Context-baseline log-probs (L, 4) when some neighbours are hidden: ``codes`` (L,) are
        0..3 (base), 4 (other) or 5 (:data:`WILDCARD`, e.g. a masked position); a hidden
        neighbour is marginalised (its slot summed over the four bases)."""
        self.flush()
        table = getattr(self, "_wild", None)
        if table is None:
            arr = self.context.reshape((5,) * (2 * self.k) + (4,))
            for ax in range(2 * self.k):
                arr = np.concatenate([arr, arr.take(range(4), axis=ax).sum(axis=ax, keepdims=True)], axis=ax)
            table = self._wild = arr.reshape(6 ** (2 * self.k), 4)
        k = self.k
        padded = np.concatenate([np.full(k, OTHER), np.asarray(codes), np.full(k, OTHER)])
        L = len(codes)
        idx = np.zeros(L, dtype=np.int64)
        for o in [o for o in range(-k, k + 1) if o != 0]:
            idx = idx * 6 + padded[k + o : k + o + L]
        c = table[idx] + 1
        return np.log(c / c.sum(-1, keepdims=True))

    def save(self, path: str | Path) -> None:
        self.flush()
        np.savez(path, unigram=self.unigram, context=self.context, k=self.k,
                 alphabet=np.array(self.alphabet.name))

    @classmethod
    def load(cls, path: str | Path) -> ContextCounts:
        z = np.load(path)
        return cls(get_alphabet(str(z["alphabet"])), int(z["k"]), z["unigram"], z["context"])
