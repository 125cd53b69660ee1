"""Masked-language-model corruption: BERT / RNA-FM's 15 % selection with 80/10/10.

Of the *maskable* tokens (canonical and ambiguous residues; never BOS, EOS, padding or other
special tokens) each is selected independently with probability ``mask_prob``; a selected token
becomes ``<mask>`` with probability 0.8, a random canonical nucleotide with 0.1, and stays as it
is with 0.1. ``labels`` hold the original id at selected positions and -100 elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nucfm.alphabet import Alphabet

IGNORE = -100


@dataclass
class MaskedBatch:
    input_ids: torch.Tensor  # (B, T) int64, corrupted
    labels: torch.Tensor  # (B, T) int64, original id where selected, else -100
    selected: torch.Tensor  # (B, T) bool


def maskable(input_ids: torch.Tensor, alphabet: Alphabet) -> torch.Tensor:
    """(B, T) True on residue tokens (single letters), False on every special token."""
    special = torch.zeros(len(alphabet), dtype=torch.bool)
    special[alphabet.special_ids()] = True
    return ~special[input_ids]


def mask_tokens(input_ids: torch.Tensor, alphabet: Alphabet, generator: torch.Generator,
                mask_prob: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1) -> MaskedBatch:
    """Corrupt ``input_ids`` (B, T) for masked-LM training or evaluation.

    ``generator`` makes the corruption reproducible (the training loop seeds one per step,
    which is what makes ``--resume`` exact). Random replacements are drawn uniformly from the
    four canonical nucleotides of ``alphabet``.
    """
    can = maskable(input_ids, alphabet)
    u = torch.rand(input_ids.shape, generator=generator)
    selected = can & (u < mask_prob)
    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = selected & (action < mask_frac)
    to_random = selected & (action >= mask_frac) & (action < mask_frac + random_frac)
    residues = torch.tensor(alphabet.residue_ids())
    random_ids = residues[torch.randint(len(residues), input_ids.shape, generator=generator)]
    out = input_ids.clone()
    out[to_mask] = alphabet.mask_id
    out[to_random] = random_ids[to_random]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE))
    return MaskedBatch(input_ids=out, labels=labels, selected=selected)
