"""GPN dilated convolutional masked language model (Benegas et al. 2023).

Numerically equivalent to the official ``gpn`` ``ConvNetForMaskedLM``: one-hot input into
``hidden_size`` channels, blocks ``x = x + LN(GELU(conv(x)))``, ``x = x + LN(GELU(Linear(x)))``
(exact erf GELU, zero "same" padding of the hidden states at the sequence ends), and the head
``Linear -> GELU -> LN -> Linear``.

Written for speed on plain PyTorch:

* the dilated convolution runs as oneDNN's 2-D convolution on a channels-last view of the
  (B, L, D) hidden states, so there are no transposes between it and the per-position layers
  and no padded copies (kernels of even size fall back to one GEMM over an im2col view);
* the first convolution reads the one-hot input as a table lookup (``V`` of the ``D`` input
  channels can be non-zero), skipping a full layer of multiply-adds;
* :meth:`ConvNet.logits_at` computes each layer only where the requested output positions can
  see it (the receptive cone, narrowing towards the top), with the same zero padding at the
  window ends as the full computation, so the results equal the full forward pass;
* in CPU inference the element-wise steps run in place and on one thread
  (:data:`ELEMENTWISE_THREADS`).

Padding (``attention_mask`` False) is zeroed before every convolution, which is exactly what the
convolution's own zero padding does past the end of an unpadded sequence: a batched, padded
sequence gives the same outputs as the sequence alone.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from nucfm.models.base import LMOutput, NucleotideLM
from nucfm.models.config import ConvNetConfig

# Threads for the memory-bound element-wise steps (GELU, LayerNorm, residual adds) of CPU
# inference. On a 2-core machine shared with other work, OpenMP's fork/join made each such op on
# (8192, 512) floats cost 11-20 ms with 2 threads against 2.3-2.9 ms with 1 (measured); the
# convolutions and matmuls keep every thread. On a quiet machine 2 threads were faster (the
# benchmark went 1.25x -> 1.31x with None), so the default leaves torch's setting alone; set 1
# when the machine is shared.
ELEMENTWISE_THREADS: int | None = None


@contextmanager
def _few_threads(t: torch.Tensor):
    n = torch.get_num_threads()
    if ELEMENTWISE_THREADS is None or t.device.type != "cpu" or n <= ELEMENTWISE_THREADS:
        yield
        return
    torch.set_num_threads(ELEMENTWISE_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class ConvBlock(nn.Module):
    cuda_gemm = True  # CUDA inference path (conv_range); bench/gpu_conv.py times both

    def __init__(self, hidden_size: int, kernel_size: int, dilation: int, eps: float):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        # "same" padding as torch.nn.Conv1d(padding="same"): total d*(k-1), left half rounded down
        total = dilation * (kernel_size - 1)
        self.pad_left = total // 2
        self.pad_right = total - self.pad_left
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel_size, dilation=dilation)  # weight (D_out, D_in, k)
        self.conv_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.ffn = nn.Linear(hidden_size, hidden_size)
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=eps)

    def conv_valid(self, xp: torch.Tensor, out_len: int) -> torch.Tensor:
        """Valid dilated convolution of a padded input ``xp`` (B, out_len + d*(k-1), D) as one
        GEMM over its im2col view; returns (B, out_len, D_out) before the activation."""
        B, Lp, D = xp.shape
        k, d = self.kernel_size, self.dilation
        xp = xp.contiguous()
        s = xp.stride()
        cols = xp.as_strided((B, out_len, k, D), (s[0], s[1], d * s[1], s[2]))  # (B, L, k, D), a view
        w = self.conv.weight.permute(0, 2, 1).reshape(self.conv.weight.shape[0], k * D)  # (D_out, k*D_in)
        return F.linear(cols.reshape(B * out_len, k * D), w, self.conv.bias).view(B, out_len, -1)

    def _weight_2d(self) -> torch.Tensor:
        """Conv weight as (D_out, D_in, 1, k) channels-last, cached while the weight is unchanged
        (recomputed, differentiably, whenever gradients flow)."""
        w = self.conv.weight
        if torch.is_grad_enabled() and w.requires_grad:
            return w.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        key = (w.data_ptr(), w._version, w.device, w.dtype)
        if getattr(self, "_w2d_key", None) != key:
            self._w2d = w.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
            self._w2d_key = key
        return self._w2d

    def conv_range(self, x: torch.Tensor, a: int, b: int, lo: int, hi: int, T: int) -> torch.Tensor:
        """Convolution outputs at positions ``[lo, hi)`` from ``x`` (B, b - a, D) holding positions
        ``[a, b)`` of a length-``T`` sequence, zeros outside ``[0, T)``: (B, hi - lo, D_out)."""
        pl, pr = a - (lo - self.pad_left), (hi + self.pad_right) - b  # zeros needed beyond the sequence
        if x.is_cuda and self.cuda_gemm and not torch.is_grad_enabled():
            # on a GPU, inference as one GEMM over the im2col view: cuDNN's dilated kernels, picked
            # without autotuning, ran GPN's 25 x 512 model at about 10k tokens/s on an H200
            return self.conv_valid(F.pad(x, (0, 0, pl, pr)), hi - lo)
        if self.pad_left == self.pad_right:
            # oneDNN 2-D convolution on a channels-last (B, D, 1, L) view of x: no transpose or
            # padded copies in and a (B, L, D) view out; pad both sides by the larger need and
            # drop the extra outputs
            p = max(pl, pr, 0)
            x4 = x.unsqueeze(1).permute(0, 3, 1, 2)  # (B, D, 1, b - a), channels-last strides
            y = F.conv2d(x4, self._weight_2d(), self.conv.bias, padding=(0, p), dilation=(1, self.dilation))
            first = lo - (a - p + self.pad_left)
            return y.permute(0, 2, 3, 1)[:, 0, first : first + hi - lo]  # (B, hi - lo, D_out)
        return self.conv_valid(F.pad(x, (0, 0, pl, pr)), hi - lo)

    def finish(self, x: torch.Tensor, conv_out: torch.Tensor) -> torch.Tensor:
        """Residual conv sub-block, then the feed-forward sub-block; (B, L, D). ``conv_out`` is
        consumed (overwritten in inference)."""
        if torch.is_grad_enabled():
            x = x + self.conv_norm(F.gelu(conv_out))
            return x + self.ffn_norm(F.gelu(self.ffn(x)))
        # inference: the same arithmetic in place on fresh buffers (fewer large allocations),
        # element-wise work on few threads (see _few_threads)
        with _few_threads(conv_out):
            h = self.conv_norm(torch.ops.aten.gelu_(conv_out)).add_(x)
        f = self.ffn(h)
        with _few_threads(f):
            return h.add_(self.ffn_norm(torch.ops.aten.gelu_(f)))


class LMHead(nn.Module):
    def __init__(self, hidden_size: int, vocab_size: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=eps)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(x))))


class ConvNet(NucleotideLM):
    """GPN ConvNet masked LM over the GPN DNA alphabet (``a c g t`` lower case, no specials)."""

    config_class = ConvNetConfig

    def __init__(self, config: ConvNetConfig):
        super().__init__(config)
        V, D = len(self.alphabet), config.hidden_size
        if V > D:
            raise ValueError(f"hidden_size {D} is smaller than the vocabulary ({V}): one-hot input impossible")
        eps = config.layer_norm_eps
        self.layers = nn.ModuleList(ConvBlock(D, config.kernel_size, d, eps) for d in config.dilations())
        self.lm_head = LMHead(D, V, eps)

    def cone(self, T: int, last: int, lo: int | None = None, hi: int | None = None) -> list[tuple[int, int]]:
        """``ranges[i]`` = the positions (start, end) needed after layer ``i`` (0 = the input) so
        that layer ``last`` is right on ``[lo, hi)`` (default: everything) of a length-``T`` input:
        going down, each layer widens the range by its padding, clipped to the sequence."""
        if lo is None:
            lo, hi = 0, T
        ranges = [(lo, hi)]
        for b in reversed(self.layers[:last]):
            lo_, hi_ = ranges[-1]
            ranges.append((max(0, lo_ - b.pad_left), min(T, hi_ + b.pad_right)))
        return ranges[::-1]

    def matmul_flops(self, T: int, positions: list[int] | None = None) -> int:
        """Multiply-add FLOPs (2 per MAC) of one length-``T`` row through :meth:`logits_at` for
        ``positions`` (all rows of the batch share its cone), or of :meth:`token_logits` when
        None. Counts the convolutions (the first one is a lookup: 0), the feed-forward and head
        matmuls; the element-wise work (GELU, LayerNorm) is left out."""
        D, k, V = self.config.hidden_size, self.config.kernel_size, len(self.alphabet)
        ranges = self.cone(T, self.num_layers, *((min(positions), max(positions) + 1) if positions else (None, None)))
        flops = 0
        for i in range(self.num_layers):
            n = ranges[i + 1][1] - ranges[i + 1][0]
            flops += 2 * n * D * D * (k if i else 0) + 2 * n * D * D
        n_head = len(set(positions)) if positions else T
        return flops + 2 * n_head * (D * D + D * V)

    # ---- the one encoder loop ------------------------------------------------------------------
    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, last: int,
                lo: int | None = None, hi: int | None = None) -> tuple[torch.Tensor, int]:
        """Run layers ``1..last`` and return (hidden (B, hi_last - lo_last, D), lo_last).

        With ``lo``/``hi`` (token range whose outputs after layer ``last`` are wanted), each layer
        is computed only on the part of the sequence that range depends on. Positions outside
        ``[0, T)`` are zero, exactly as the convolution's "same" padding of the full sequence.
        """
        B, T = input_ids.shape
        D = self.config.hidden_size
        blocks = self.layers[:last]
        ranges = self.cone(T, last, lo, hi)
        keep = None
        if attention_mask is not None and not bool(attention_mask.all()):
            keep = attention_mask.to(torch.float32).unsqueeze(-1)  # (B, T, 1)
        a, b_ = ranges[0]
        if not blocks:
            x = F.one_hot(input_ids[:, a:b_], D).to(torch.float32)
            return (x if keep is None else x * keep[:, a:b_]), a
        x = None
        for i, blk in enumerate(blocks):
            (a, b_), (lo_, hi_) = ranges[i], ranges[i + 1]
            if i == 0:
                with _few_threads(input_ids):  # gathers and adds only
                    conv = self._first_conv(input_ids, attention_mask, blk, lo_, hi_)
                    x0 = F.one_hot(input_ids[:, lo_:hi_], D).to(torch.float32)
                if keep is not None:
                    x0 = x0 * keep[:, lo_:hi_]
                x = blk.finish(x0, conv)
            else:
                xin = x if keep is None else x * keep[:, a:b_]
                conv = blk.conv_range(xin, a, b_, lo_, hi_, T)
                x = blk.finish(x[:, lo_ - a : hi_ - a], conv)
        return x, ranges[-1][0]

    def _first_conv(self, input_ids, attention_mask, blk: ConvBlock, lo: int, hi: int) -> torch.Tensor:
        """First convolution over one-hot input as a lookup: out[l] = bias + sum_j W[:, id[l+j*d-pl], j].
        (B, hi - lo, D)."""
        V = len(self.alphabet)
        k, d = blk.kernel_size, blk.dilation
        w = blk.conv.weight[:, :V, :].permute(2, 1, 0)  # (k, V, D_out)
        table = F.pad(w, (0, 0, 0, 1))  # (k, V+1, D_out): row V is the zero padding
        ids = input_ids
        if attention_mask is not None:
            ids = ids.masked_fill(~attention_mask.bool(), V)
        T = ids.shape[1]
        start, stop = lo - blk.pad_left, hi + blk.pad_right
        ids = F.pad(ids[:, max(0, start) : min(T, stop)], (max(0, -start), max(0, stop - T)), value=V)
        out = blk.conv.bias.expand(ids.shape[0], hi - lo, -1)
        for j in range(k):
            out = out + table[j][ids[:, j * d : j * d + hi - lo]]
        return out

    # ---- NucleotideLM interface -----------------------------------------------------------------
    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               layer: int = -1) -> torch.Tensor:
        """Hidden states after block ``layer`` (0 = one-hot input, ``num_layers`` or -1 = last
        block; GPN has no final LayerNorm), (B, T, D)."""
        if layer < 0:
            layer = self.num_layers + 1 + layer
        if not 0 <= layer <= self.num_layers:
            raise ValueError(f"layer {layer} out of range 0..{self.num_layers}")
        return self._encode(input_ids, attention_mask, layer)[0]

    def hidden_range(self, input_ids: torch.Tensor, layer: int, lo: int, hi: int) -> torch.Tensor:
        """Hidden states after block ``layer`` at positions ``[lo, hi)`` only, (B, hi - lo, D): equal
        to ``hidden(input_ids)[:, lo:hi]`` (no padding inside ``input_ids``) but computing each
        layer only inside the receptive cone of those positions (``genome-clusters``' centres)."""
        if layer < 0:
            layer = self.num_layers + 1 + layer
        if not 0 <= layer <= self.num_layers:
            raise ValueError(f"layer {layer} out of range 0..{self.num_layers}")
        x, start = self._encode(input_ids, None, layer, lo, hi)
        return x[:, lo - start : hi - start]

    def token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Masked-LM logits (B, T, V) at every position."""
        return self.lm_head(self._encode(input_ids, attention_mask, self.num_layers)[0])

    def logits_at(self, input_ids: torch.Tensor, positions: torch.Tensor | list[int]) -> torch.Tensor:
        """Logits (B, V) at one position per row (``positions`` (B,); no special tokens), equal to
        ``token_logits(input_ids)[arange(B), positions]`` but computing each layer only inside
        the receptive cone of the requested positions (no padding inside ``input_ids``)."""
        pos = torch.as_tensor(positions, dtype=torch.long)
        lo, hi = int(pos.min()), int(pos.max()) + 1
        x, start = self._encode(input_ids, None, self.num_layers, lo, hi)
        rows = x[torch.arange(x.shape[0]), pos - start]  # (B, D)
        return self.lm_head(rows)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> LMOutput:
        return LMOutput(logits=self.token_logits(input_ids, attention_mask))
