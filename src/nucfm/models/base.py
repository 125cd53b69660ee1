"""What every nucfm language model offers, whatever its architecture."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nucfm.alphabet import Alphabet, get_alphabet


class NucleotideLM(nn.Module):
    """Base class: subclasses set ``config``, ``alphabet`` and implement ``hidden`` and
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

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
        """Hidden states of ``layer`` (negative counts from the end; -1 = final), (B, T, D)."""
        raise NotImplementedError

    def token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Masked-LM logits over the vocabulary, (B, T, V)."""
        raise NotImplementedError

    def embed(self, seqs, layer: int = -1, pool: str | None = None, **kwargs) -> list[np.ndarray]:
        """Per-sequence float32 embeddings: (L_i, D) aligned with the residues, or (D,) with
        ``pool="mean"``. See :func:`nucfm.tasks.embed.embed_sequences` for the options."""
        from nucfm.tasks.embed import embed_sequences

        return embed_sequences(self, seqs, layer=layer, pool=pool, **kwargs)
