"""Task heads on top of language-model embeddings.

:class:`PairHead` is RNA-FM's secondary-structure head ("pc-resnet_1_sym_first"), with its depth,
width and inputs configurable: residue embeddings (B, L, D) are reduced by a Linear layer to
``reduction`` channels, concatenated pairwise into (B, 2r, L, L) (channel order ``[x_i, x_j]``),
optionally joined by extra pair channels (ViennaRNA base-pair probabilities, one-hot outer
product), projected by a 1×1 conv to ``channels``, passed through ``blocks`` residual blocks
``x + conv2(relu(dropout(conv1(relu(bn(x))))))`` (conv2 dilated ``2 ** (k % dilation_cycle)``),
and a final 3×3 conv to one logit per pair; the output is symmetrised from the upper triangle
(``triu(o) + triu(o, 1).T``). With the defaults (D = 640, r = 128, 64 channels, 32 blocks) it
holds exactly the parameters of the official head (converter: :mod:`nucfm.checkpoint.structure`).

The head is length-free (a 2D CNN): the only bound on L is memory, O(channels · L²).
"""

from __future__ import annotations

import torch
from torch import nn

from nucfm.models.config import PairHeadConfig  # noqa: F401  (the head's config; imported from here too)


class ResBlock2d(nn.Module):
    """``x + conv2(relu(dropout(conv1(relu(bn1(x))))))``; conv2 dilated, no biases."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor, m2: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, L, L); m2: (B, 1, L, L) pair mask or None. Padded pairs are zeroed at every
        conv input, as the zero padding of an unbatched sequence would be."""
        out = torch.relu(self.bn1(x))
        out = self.conv1(out if m2 is None else out * m2)
        out = torch.relu(self.dropout(out))
        return x + self.conv2(out if m2 is None else out * m2)


class PairHead(nn.Module):
    """Pair logits (B, L, L), symmetric, from residue embeddings and/or pair features."""

    def __init__(self, config: PairHeadConfig):
        super().__init__()
        self.config = config
        self.pre_reduction = nn.Linear(config.embed_dim, config.reduction) if config.embed_dim else None
        self.first = nn.Conv2d(config.in_channels, config.channels, kernel_size=1)
        self.blocks = nn.ModuleList(
            ResBlock2d(config.channels, 2 ** (k % config.dilation_cycle), config.dropout) for k in range(config.blocks)
        )
        self.final = nn.Conv2d(config.channels, 1, kernel_size=3, padding=1)

    @property
    def receptive_radius(self) -> int:
        """How far (in residues, along either axis) an output pair sees its inputs: conv1 (1) +
        dilated conv2 (d) per block, the final 3×3 conv (1). Blocks of a pair map cut with this
        margin give exactly the logits of the whole map (:meth:`StructureModel.predict_local`)."""
        return sum(1 + 2 ** (k % self.config.dilation_cycle) for k in range(self.config.blocks)) + 1

    def forward(self, embeddings: torch.Tensor | None = None, pair_features: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        embeddings: (B, L, D) residue embeddings (no BOS/EOS rows), or None when embed_dim == 0.
        pair_features: (B, extra_channels, L, L), or None when extra_channels == 0.
        mask: (B, L) bool, True on real residues; padded pairs are zeroed after every block so a
            batched sequence gets the same logits as alone (in eval mode). None = all real.
        Returns logits (B, L, L), symmetric; padded pairs are 0.
        """
        parts = []
        if self.pre_reduction is not None:
            if embeddings is None:
                raise ValueError("this PairHead needs residue embeddings")
            x = self.pre_reduction(embeddings)  # (B, L, r)
            B, L, r = x.shape
            xi = x.unsqueeze(2).expand(B, L, L, r)  # [b, i, j] = x_i
            parts.append(torch.cat([xi, xi.transpose(1, 2)], dim=3).permute(0, 3, 1, 2))  # (B, 2r, L, L)
        if self.config.extra_channels:
            if pair_features is None or pair_features.shape[1] != self.config.extra_channels:
                raise ValueError(f"this PairHead needs pair_features with {self.config.extra_channels} channels")
            parts.append(pair_features.to(self.first.weight.dtype))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if x.is_cuda:
            # the pair map comes out of cat/permute channels-last; cuDNN's dilated convolutions on
            # channels-last inputs ran GPN's model 50x slower than on contiguous ones (bench/gpu_conv.py)
            x = x.contiguous()
        m2 = None
        if mask is not None:
            m2 = (mask[:, :, None] & mask[:, None, :]).unsqueeze(1).to(x.dtype)  # (B, 1, L, L)
        x = self.first(x)
        for block in self.blocks:
            x = block(x, m2)
        if m2 is not None:
            x = x * m2
        o = self.final(x).squeeze(1)  # (B, L, L)
        o = torch.triu(o) + torch.triu(o, 1).transpose(1, 2)
        if m2 is not None:
            o = o * m2.squeeze(1)
        return o
