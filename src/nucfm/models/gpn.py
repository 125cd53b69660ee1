"""GPN in its current format (``gpn.model.GPNForMaskedLM``, Benegas et al. 2023, 2025): an input
embedding, a ConvNet, ByteNet or RoFormer encoder, a final LayerNorm and the MLM head. With the
RoFormer encoder and auxiliary features this is GPN-MSA: every position of the target window also
carries the one-hot aligned bases of the other species (:class:`nucfm.models.config.GPNConfig`).

Numerically equivalent to the official model on unpadded input (the parity tests build the
official one with random weights). Padding (``attention_mask`` False) is zeroed before every
convolution and masked out of attention, so a padded batch gives each sequence's own outputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nucfm.models.base import LMOutput, NucleotideLM
from nucfm.models.config import GPNConfig


def _ln(dim: int, bias: bool) -> nn.LayerNorm:
    return nn.LayerNorm(dim, bias=bias)  # eps 1e-5, as the GPN modules


def _zero_pad(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded positions of ``x`` (B, L, D), as the convolution's own zero padding past
    the end of an unpadded sequence."""
    return x if keep is None else x * keep


class Conv(nn.Module):
    """Conv1d with "same" padding over (B, L, D) hidden states."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, groups: int, bias: bool):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size, dilation=dilation, groups=groups, padding="same", bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class ConvBlock(nn.Module):
    """GPNConfig ``convnet`` layer: ``x + Linear(GELU(conv(LN(x))))``, ``x + FFN(LN(x))``."""

    def __init__(self, c: GPNConfig, kernel_size: int, dilation: int, groups: int):
        super().__init__()
        D, b = c.hidden_size, c.bias
        self.conv_norm = _ln(D, b)
        self.conv = Conv(D, kernel_size, dilation, groups, b)
        self.conv_out = nn.Linear(D, D, bias=b)
        self.ffn_norm = _ln(D, b)
        self.ffn_in = nn.Linear(D, c.intermediate_size, bias=b)
        self.ffn_out = nn.Linear(c.intermediate_size, D, bias=b)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = x + self.conv_out(F.gelu(self.conv(_zero_pad(self.conv_norm(x), keep))))
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class ByteNetBlock(nn.Module):
    """GPNConfig ``bytenet`` layer: ``x + Linear(GELU(LN(conv(GELU(LN(Linear(GELU(LN(x)))))))))``."""

    def __init__(self, c: GPNConfig, kernel_size: int, dilation: int, groups: int):
        super().__init__()
        D, b = c.hidden_size, c.bias
        inner = D // 2 if c.slim else D
        self.norm_in = _ln(D, b)
        self.down = nn.Linear(D, inner, bias=b)
        self.norm_mid = _ln(inner, b)
        self.conv = Conv(inner, kernel_size, dilation, groups, b)
        self.norm_out = _ln(inner, b)
        self.up = nn.Linear(inner, D, bias=b)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        h = F.gelu(self.norm_mid(self.down(F.gelu(self.norm_in(x)))))
        return x + self.up(F.gelu(self.norm_out(self.conv(_zero_pad(h, keep)))))


def rotary_table(length: int, head_dim: int) -> torch.Tensor:
    """RoFormer's sinusoid table (length, head_dim): ``sin`` of the even-indexed frequencies in the
    first half, ``cos`` of the odd-indexed ones in the second, computed in float64 as the
    official table is and rounded to float32."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    j = np.arange(head_dim)
    angle = pos / np.power(10000, 2 * (j // 2) / head_dim)  # (length, head_dim)
    half = (head_dim + 1) // 2
    out = np.empty((length, head_dim), dtype=np.float64)
    out[:, :half] = np.sin(angle[:, 0::2])
    out[:, half:] = np.cos(angle[:, 1::2])
    return torch.from_numpy(out.astype(np.float32))


def _rotate(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotary embedding on interleaved pairs: (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin)."""
    rot = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).reshape_as(x)
    return x * cos + rot * sin


class RoFormerBlock(nn.Module):
    """Post-LayerNorm self-attention block with rotary positions (HF ``RoFormerLayer``)."""

    def __init__(self, c: GPNConfig):
        super().__init__()
        D = c.hidden_size
        self.num_heads = c.num_heads
        self.rotary_value = c.rotary_value
        self.query, self.key, self.value = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.attn_out = nn.Linear(D, D)
        self.attn_norm = nn.LayerNorm(D, eps=c.layer_norm_eps)
        self.ffn_in = nn.Linear(D, c.intermediate_size)
        self.ffn_out = nn.Linear(c.intermediate_size, D)
        self.ffn_norm = nn.LayerNorm(D, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None, sin: torch.Tensor,
                cos: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        H = self.num_heads

        def heads(t):
            return t.view(B, L, H, D // H).transpose(1, 2)  # (B, H, L, D/H)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        q, k = _rotate(q, sin, cos), _rotate(k, sin, cos)
        if self.rotary_value:
            v = _rotate(v, sin, cos)
        mask = None if keep is None else keep[:, None, None, :, 0].bool()  # (B, 1, 1, L): keys to attend
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, L, D/H)
        x = self.attn_norm(self.attn_out(ctx.transpose(1, 2).reshape(B, L, D)) + x)
        return self.ffn_norm(self.ffn_out(F.gelu(self.ffn_in(x))) + x)


class GPN(NucleotideLM):
    """GPN masked LM (``GPNForMaskedLM``) over the GPN alphabet (``gpn``, 7 tokens) or GPN-MSA's
    (``gpn-msa``, 6 tokens). Models with auxiliary features take ``aux`` (B, T, S) int tokens of
    the ``S`` aligned species (``-ACGT`` = 0..4, :mod:`nucfm.io.alignment`) in every method."""

    config_class = GPNConfig

    def __init__(self, config: GPNConfig):
        super().__init__(config)
        c = config
        V, D = len(self.alphabet), c.hidden_size
        if c.embedding == "one_hot" and V + c.n_aux_features > D:
            raise ValueError(f"hidden_size {D} is smaller than the vocabulary ({V}) plus {c.n_aux_features} "
                             "auxiliary features: one-hot input impossible")
        self.word_embeddings = nn.Embedding(V, D, padding_idx=0) if c.embedding == "embedding" else None
        if c.encoder == "roformer":
            self.layers = nn.ModuleList(RoFormerBlock(c) for _ in range(c.num_layers))
            # the official model keeps its sinusoid table among its weights: loaded, not assumed
            self.register_buffer("rotary", rotary_table(c.max_len, D // c.num_heads))
        else:
            block = ConvBlock if c.encoder == "convnet" else ByteNetBlock
            inner = D // 2 if c.encoder == "bytenet" and c.slim else D
            self.layers = nn.ModuleList(
                block(c, c.first_kernel_size if i == 0 else c.rest_kernel_size, d,
                      1 if (not c.depthwise or i == 0) else inner)
                for i, d in enumerate(c.dilations()))
        self.final_norm = _ln(D, c.bias) if c.final_norm else nn.Identity()
        self.head_transform = (nn.Sequential(nn.Linear(D, D, bias=c.bias), nn.GELU(),
                                             nn.LayerNorm(D, eps=c.head_layer_norm_eps, bias=c.bias))
                               if c.mlm_head_transform else nn.Identity())
        self.decoder = nn.Linear(D, V, bias=c.bias)

    @property
    def max_len(self) -> int | None:
        return self.config.max_len if self.config.encoder == "roformer" else None

    def embed_input(self, input_ids: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        """Layer-0 hidden states (B, T, D): one-hot ids (aux one-hot in the channels after the
        vocabulary; zeros when ``aux`` is None, as the official ``--disable_aux_features``) or
        the learned embedding."""
        c = self.config
        if self.word_embeddings is not None:
            return self.word_embeddings(input_ids)
        x = F.one_hot(input_ids, num_classes=c.hidden_size).to(self.decoder.weight.dtype)
        if aux is not None and c.n_aux_features:
            B, T = input_ids.shape
            if aux.shape != (B, T, c.n_aligned_species):
                raise ValueError(f"aux features {tuple(aux.shape)} do not match ids {(B, T)} and the model's "
                                 f"{c.n_aligned_species} aligned species")
            a = F.one_hot(aux.long(), num_classes=c.aux_features_vocab_size).reshape(B, T, -1)  # (B, T, S*5)
            V = len(self.alphabet)
            x[:, :, V : V + c.n_aux_features] = a.to(x.dtype)
        return x

    def _encode(self, input_ids, attention_mask, last: int, aux=None) -> torch.Tensor:
        keep = None if attention_mask is None else attention_mask[..., None].to(self.decoder.weight.dtype)
        x = self.embed_input(input_ids, aux)
        if self.config.encoder == "roformer":
            T = x.shape[1]
            if T > self.config.max_len:
                raise ValueError(f"{T} positions exceed the model's {self.config.max_len}")
            table = self.rotary[:T].to(x.dtype)  # (T, D/H)
            sin, cos = table.chunk(2, dim=-1)
            sin = torch.stack([sin, sin], dim=-1).reshape_as(table)  # (T, D/H): each frequency twice
            cos = torch.stack([cos, cos], dim=-1).reshape_as(table)
            for layer in self.layers[:last]:
                x = layer(x, keep, sin, cos)
        else:
            for layer in self.layers[:last]:
                x = layer(x, keep)
        return x

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, layer: int = -1,
               aux: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states after block ``layer`` (0 = the input embedding; ``num_layers`` or -1 =
        the model's output, after its final LayerNorm where it has one), (B, T, D)."""
        if layer < 0:
            layer = self.num_layers + 1 + layer
        if not 0 <= layer <= self.num_layers:
            raise ValueError(f"layer {layer} out of range 0..{self.num_layers}")
        x = self._encode(input_ids, attention_mask, layer, aux)
        return self.final_norm(x) if layer == self.num_layers else x

    def token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                     aux: torch.Tensor | None = None) -> torch.Tensor:
        """Masked-LM logits (B, T, V) at every position."""
        return self.decoder(self.head_transform(self.hidden(input_ids, attention_mask, -1, aux)))

    def logits_at(self, residue_ids: torch.Tensor, positions: torch.Tensor | list[int],
                  aux: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, V) at one position per row of equal-length windows (no padding)."""
        pos = torch.as_tensor(positions, dtype=torch.long, device=residue_ids.device)
        return self.token_logits(residue_ids, None, aux)[torch.arange(len(pos), device=pos.device), pos]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                aux: torch.Tensor | None = None) -> LMOutput:
        return LMOutput(logits=self.token_logits(input_ids, attention_mask, aux))
