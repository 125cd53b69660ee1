"""What every nucfm language model offers, whatever its architecture: typed outputs, hidden
states, masked-LM logits (everywhere or at one position per row) and embeddings of sequences of
any length (:mod:`nucfm.models.embedding`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nucfm.alphabet import Alphabet, get_alphabet


@dataclass
class LMOutput:
    """What ``model(input_ids, attention_mask)`` returns, for every architecture.

    ``logits`` (B, T, V) or None; ``hidden_states[k]`` (B, T, D) for each requested layer k
    (0 = embeddings, ``num_layers`` = final output); ``attentions`` (B, layers, heads, T, T) and
    ``contacts`` (B, T-2, T-2) over residues when asked (transformers only)."""

    logits: torch.Tensor | None
    hidden_states: dict[int, torch.Tensor] = field(default_factory=dict)
    attentions: torch.Tensor | None = None
    contacts: torch.Tensor | None = None


class NucleotideLM(nn.Module):
    """Base class: subclasses set ``config_class`` and implement ``hidden`` and
    ``token_logits`` over collated batches (:class:`nucfm.data.collate.Batch`)."""

    config_class: ClassVar[type]
    alphabet: Alphabet

    def __init__(self, config):
        super().__init__()
        self.config = config  # frozen dataclass: architecture, sizes, alphabet name
        self.alphabet = get_alphabet(config.alphabet)

    @property
    def max_len(self) -> int | None:
        """Most residues one forward pass takes (None: unbounded, e.g. a ConvNet)."""
        return None

    @property
    def num_layers(self) -> int:
        return self.config.num_layers

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
        """Hidden states of ``layer`` (negative counts from the end; -1 = final), (B, T, D)."""
        raise NotImplementedError

    def token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Masked-LM logits over the vocabulary, (B, T, V)."""
        raise NotImplementedError

    def logits_at(self, residue_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) at one residue per row: ``residue_ids`` (B, W) are equal-length windows
        of residue ids (no special tokens; the collator adds them), ``positions`` (B,) 0-based
        residue indices. Architectures override this with a cheaper exact path (the ConvNet
        computes only the receptive cone)."""
        from nucfm.data.collate import collate

        batch = collate(self.alphabet, list(residue_ids.cpu().numpy()), max_len=self.max_len)
        dev = residue_ids.device
        logits = self.token_logits(batch.input_ids.to(dev), batch.attention_mask.to(dev))
        return logits[torch.arange(len(positions), device=dev), positions.to(dev) + batch.offset]

    def embed(self, seqs, layer: int = -1, pool: str | None = None, **kwargs) -> list[np.ndarray]:
        """Per-sequence float32 embeddings: (L_i, D) aligned with the residues, or (D,) with
        ``pool="mean"``. See :func:`nucfm.models.embedding.embed_sequences` for the options."""
        from nucfm.models.embedding import embed_sequences

        return embed_sequences(self, seqs, layer=layer, pool=pool, **kwargs)
