"""Collation: the ONLY place where special tokens are added and sequences are padded.

``Batch.input_ids`` rows look like ``[BOS] r1 .. rL [EOS] [PAD]...`` for alphabets with BOS/EOS
(RNA-FM) and ``r1 .. rL [PAD]...`` for those without (GPN). ``Batch.residues(t, i)`` slices the
residue rows of sequence ``i`` out of any (B, T, ...) tensor, so no caller ever writes
``t[:, 1:L+1]`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nucfm.alphabet import Alphabet


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) int64
    attention_mask: torch.Tensor  # (B, T) bool, True on real tokens (specials included)
    lengths: list[int]  # residues per row
    offset: int  # token index of the first residue (1 after BOS, else 0)

    def residues(self, t: torch.Tensor, i: int) -> torch.Tensor:
        """Residue positions of row ``i`` of a (B, T, ...) tensor: (L_i, ...)."""
        return t[i, self.offset : self.offset + self.lengths[i]]

    def residue_mask(self) -> torch.Tensor:
        """(B, T) True on residue tokens only (not BOS, EOS or padding)."""
        T = self.input_ids.shape[1]
        idx = torch.arange(T)[None, :]
        lengths = torch.tensor(self.lengths)[:, None]
        return (idx >= self.offset) & (idx < self.offset + lengths)


def n_special(alphabet: Alphabet) -> int:
    """Tokens the collator adds around each sequence (2 for RNA-FM, 0 for GPN)."""
    return int(alphabet.bos_token is not None) + int(alphabet.eos_token is not None)


def collate(alphabet: Alphabet, ids: Sequence[np.ndarray], max_len: int | None = None) -> Batch:
    """Pad a list of residue-id arrays (from :meth:`Alphabet.encode`) into a batch.

    ``max_len`` is the most residues a row may hold; longer input raises ValueError (windowing of
    long sequences happens before collation, in the tasks).

    >>> from nucfm.alphabet import RNA
    >>> collate(RNA, [RNA.encode("ACG"), RNA.encode("U")]).input_ids.tolist()
    [[0, 4, 5, 6, 2], [0, 7, 2, 1, 1]]
    """
    if not len(ids):
        raise ValueError("cannot collate an empty list of sequences")
    lengths = [len(a) for a in ids]
    if max_len is not None and max(lengths) > max_len:
        raise ValueError(f"sequence of {max(lengths)} residues exceeds the model maximum of {max_len}")
    bos, eos = alphabet.bos_id, alphabet.eos_id
    offset = int(bos is not None)
    T = max(lengths) + n_special(alphabet)
    out = np.full((len(ids), T), alphabet.pad_id, dtype=np.int64)
    for i, a in enumerate(ids):
        if bos is not None:
            out[i, 0] = bos
        out[i, offset : offset + len(a)] = a
        if eos is not None:
            out[i, offset + len(a)] = eos
    input_ids = torch.from_numpy(out)
    # by length, not by pad id: GPN-MSA's pad token '-' is also its unknown letter
    mask = torch.from_numpy(np.arange(T)[None, :] < (np.asarray(lengths) + n_special(alphabet))[:, None])
    return Batch(input_ids=input_ids, attention_mask=mask, lengths=lengths, offset=offset)
