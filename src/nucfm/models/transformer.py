"""RNA-FM / ESM-1b transformer encoder with masked-LM head and optional contact head.

Numerically equivalent to the official ``fm.BioBertModel`` (``arch="roberta_large"``): learned
positions with fairseq's padding offset, pre-LayerNorm blocks, exact erf GELU, a tied LM head and
ESM-1b's attention-map logistic-regression contact head. Written for speed on plain PyTorch:
``scaled_dot_product_attention``, no attention weights unless asked, and no work past the last
layer the caller needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nucfm.models.base import LMOutput, NucleotideLM
from nucfm.models.config import TransformerConfig

TransformerOutput = LMOutput  # the typed output every architecture returns


class SelfAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.dropout = dropout
        self._fused: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def fused_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(3D, D) weight and (3D,) bias of the q, k, v projections stacked, for one matmul instead
        of three. Without autograd the stack is cached until a parameter changes (in place or
        replaced), so inference does not re-copy the weights on every call."""
        params = (self.q_proj.weight, self.k_proj.weight, self.v_proj.weight,
                  self.q_proj.bias, self.k_proj.bias, self.v_proj.bias)
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return torch.cat(params[:3]), torch.cat(params[3:])
        key = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
        if self._fused is None or self._fused[0] != key:
            with torch.no_grad():
                self._fused = (key, torch.cat(params[:3]), torch.cat(params[3:]))
        return self._fused[1], self._fused[2]

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None, need_weights: bool):
        B, T, D = x.shape
        H, Dh = self.num_heads, self.head_dim
        if type(self.q_proj) is nn.Linear:
            qkv = F.linear(x, *self.fused_qkv())
        else:  # int8-quantized projections (nucfm.models.quantize)
            qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], -1)
        qkv = qkv.view(B, T, 3, H, Dh).permute(2, 0, 3, 1, 4)  # (3, B, H, T, Dh)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = None
        if need_weights:
            scores = (q * Dh**-0.5) @ k.transpose(-1, -2)  # (B, H, T, T)
            if key_mask is not None:
                scores = scores.masked_fill(~key_mask, float("-inf"))
            weights = scores.float().softmax(-1).to(q.dtype)
            p = F.dropout(weights, self.dropout, self.training)
            out = p @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=key_mask, dropout_p=self.dropout if self.training else 0.0
            )
        out = out.transpose(1, 2).reshape(B, T, D)
        return self.out_proj(out), weights


class TransformerLayer(nn.Module):
    """Pre-LayerNorm block: ``x + Attn(LN(x))`` then ``x + fc2(gelu(fc1(LN(x))))``."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.self_attn = SelfAttention(cfg.hidden_size, cfg.num_heads, cfg.dropout)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.ffn_size)
        self.fc2 = nn.Linear(cfg.ffn_size, cfg.hidden_size)
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = cfg.dropout

    def forward(self, x, key_mask, need_weights: bool = False):
        h, w = self.self_attn(self.self_attn_layer_norm(x), key_mask, need_weights)
        x = x + F.dropout(h, self.dropout, self.training)
        # exact erf GELU: the official checkpoint was trained with it
        h = self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        x = x + F.dropout(h, self.dropout, self.training)
        return x, w


class LMHead(nn.Module):
    """RoBERTa LM head; the output projection is tied to the token embedding."""

    def __init__(self, cfg: TransformerConfig, vocab_size: int):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(self.layer_norm(F.gelu(self.dense(x))), weight) + self.bias


class ContactHead(nn.Module):
    """ESM-1b contact head: symmetrised, APC-corrected attention maps -> logistic regression."""

    def __init__(self, num_maps: int):
        super().__init__()
        self.regression = nn.Linear(num_maps, 1)

    def forward(self, attentions: torch.Tensor, residue_mask: torch.Tensor) -> torch.Tensor:
        """attentions (B, layers, heads, T, T); residue_mask (B, T) True on residues only
        (not BOS/EOS/pad). Returns (B, T-2, T-2) probabilities over residue positions."""
        B, nl, nh, T, _ = attentions.shape
        pair = (residue_mask[:, :, None] & residue_mask[:, None, :]).to(attentions.dtype)
        a = (attentions * pair[:, None, None]).reshape(B, nl * nh, T, T)[..., 1:-1, 1:-1]
        a = a + a.transpose(-1, -2)  # symmetrise
        a1 = a.sum(-1, keepdim=True)
        a2 = a.sum(-2, keepdim=True)
        a12 = a.sum((-1, -2), keepdim=True)
        a = a - a1 * a2 / a12  # average product correction
        return torch.sigmoid(self.regression(a.permute(0, 2, 3, 1)).squeeze(-1))


class Transformer(NucleotideLM):
    config_class = TransformerConfig

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        V, D = len(self.alphabet), config.hidden_size
        self.pad_id = self.alphabet.pad_id
        self.embed_tokens = nn.Embedding(V, D, padding_idx=self.pad_id)
        # fairseq offset: position p (1-based) is row p + pad_id; rows up to max_len + 2 + pad_id
        self.embed_positions = nn.Embedding(config.max_len + 2 + self.pad_id + 1, D, padding_idx=self.pad_id)
        self.emb_layer_norm_before = (
            nn.LayerNorm(D, eps=config.layer_norm_eps) if config.emb_layer_norm_before else None
        )
        self.layers = nn.ModuleList(TransformerLayer(config) for _ in range(config.num_layers))
        self.emb_layer_norm_after = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.lm_head = LMHead(config, V)
        self.contact_head = ContactHead(config.num_layers * config.num_heads) if config.contact_head else None

    @property
    def max_len(self) -> int | None:
        return self.config.max_len

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        repr_layers: tuple[int, ...] | list[int] = (),
        need_logits: bool = True,
        need_attentions: bool = False,
        return_contacts: bool = False,
    ) -> TransformerOutput:
        """input_ids (B, T) with BOS/EOS/pad as made by the collator; attention_mask (B, T) True
        on real tokens (derived from pad ids when None)."""
        if return_contacts:
            if self.contact_head is None:
                raise ValueError("this checkpoint has no contact head")
            need_attentions = True
        if attention_mask is None:
            attention_mask = input_ids.ne(self.pad_id)
        T = input_ids.shape[1]
        if T > self.config.max_len + 2:
            raise ValueError(f"{T} tokens exceed the model's {self.config.max_len + 2} positions")
        repr_layers = {self.num_layers + 1 + r if r < 0 else r for r in repr_layers}
        last = self.num_layers if (need_logits or need_attentions) else max(repr_layers, default=0)

        x = self.embed_tokens(input_ids)
        if self.config.token_dropout:
            # ESM token dropout: zero <mask> embeddings, rescale by the observed mask ratio
            is_mask = input_ids.eq(self.alphabet.mask_id)
            x = x.masked_fill(is_mask[..., None], 0.0)
            ratio = is_mask.sum(-1) / attention_mask.sum(-1)
            x = x * (1 - 0.15 * 0.8) / (1 - ratio)[:, None, None]
        mask_long = attention_mask.long()
        positions = torch.cumsum(mask_long, dim=1) * mask_long + self.pad_id
        x = x + self.embed_positions(positions)
        if self.emb_layer_norm_before is not None:
            x = self.emb_layer_norm_before(x)
        has_pad = not bool(attention_mask.all())
        if has_pad:
            x = x * attention_mask[..., None].to(x.dtype)
        key_mask = attention_mask[:, None, None, :] if has_pad else None  # (B, 1, 1, T)

        hidden: dict[int, torch.Tensor] = {}
        if 0 in repr_layers:
            hidden[0] = x
        attn_maps = []
        for i, layer in enumerate(self.layers[:last]):
            x, w = layer(x, key_mask, need_attentions)
            if need_attentions:
                attn_maps.append(w)
            if i + 1 == self.num_layers:
                x = self.emb_layer_norm_after(x)
            if (i + 1) in repr_layers:
                hidden[i + 1] = x

        out = TransformerOutput(logits=self.lm_head(x, self.embed_tokens.weight) if need_logits else None,
                                hidden_states=hidden)
        if need_attentions:
            attn = torch.stack(attn_maps, 1)  # (B, layers, heads, T, T)
            if has_pad:
                pair = attention_mask[:, :, None] & attention_mask[:, None, :]
                attn = attn * pair[:, None, None].to(attn.dtype)
            out.attentions = attn
            if return_contacts:
                residue = attention_mask & input_ids.ne(self.alphabet.eos_id) & input_ids.ne(self.alphabet.bos_id)
                out.contacts = self.contact_head(attn, residue)
        return out

    def matmul_flops(self, T: int) -> int:
        """Multiply-add FLOPs (2 per MAC) of one length-``T`` row through :meth:`token_logits`: the
        four attention projections, the feed-forward, the two attention products (scores and
        values) and the LM head's dense layer and vocabulary projection; element-wise work
        (softmax, GELU, LayerNorm) left out, as :meth:`ConvNet.matmul_flops`."""
        c = self.config
        D, F, V = c.hidden_size, c.ffn_size, len(self.alphabet)
        per_token = c.num_layers * (2 * 4 * D * D + 2 * 2 * D * F + 2 * 2 * T * D) + 2 * (D * D + D * V)
        return per_token * T

    def token_logits(self, input_ids, attention_mask=None) -> torch.Tensor:
        return self(input_ids, attention_mask).logits

    def hidden(self, input_ids, attention_mask, layer: int) -> torch.Tensor:
        return self(input_ids, attention_mask, repr_layers=(layer,), need_logits=False).hidden_states[
            layer if layer >= 0 else self.num_layers + 1 + layer
        ]
