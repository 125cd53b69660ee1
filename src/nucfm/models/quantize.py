"""Optional int8 inference: dynamic quantization of the linear layers (weights int8 per tensor,
activations quantized on the fly). Faster than fp32 on CPUs with VNNI, at a small accuracy cost
that ``bench/embed_vs_official.py --int8`` reports as cosine similarity to fp32."""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose ``nn.Linear`` layers run in int8; heads that
    compute on raw weights (the tied LM projection) stay fp32."""
    from torch.ao.quantization import quantize_dynamic

    model = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates the quantized-tensor API it still ships
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
