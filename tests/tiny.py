"""Tiny models for the suite, built in one place (STYLE.md: hidden 16-64, 1-3 layers, L <= 100).

Every test that needs a model asks for one here, with overrides where its numbers depend on a
particular shape. Models are seeded (``seed=None`` keeps the caller's RNG state) and in eval mode
unless ``train=True``.
"""

from __future__ import annotations

import torch

from nucfm.models import GPN, ConvNet, ConvNetConfig, GPNConfig, Transformer, TransformerConfig

RNA_DEFAULTS = {"num_layers": 2, "hidden_size": 16, "num_heads": 2, "ffn_size": 32, "max_len": 50}
DNA_DEFAULTS = {"num_layers": 2, "hidden_size": 16, "kernel_size": 5}


def rna_config(**overrides) -> TransformerConfig:
    """A tiny RNA-FM-style transformer config: 2 layers, hidden 16, 2 heads, max_len 50."""
    return TransformerConfig(**{**RNA_DEFAULTS, **overrides})


def dna_config(**overrides) -> ConvNetConfig:
    """A tiny GPN-style ConvNet config: 2 layers, hidden 16, kernel 5."""
    return ConvNetConfig(**{**DNA_DEFAULTS, **overrides})


def _build(cls, config, seed: int | None, train: bool):
    if seed is not None:
        torch.manual_seed(seed)
    model = cls(config)
    return model.train() if train else model.eval()


def rna_model(seed: int | None = 0, train: bool = False, **overrides) -> Transformer:
    """``Transformer(rna_config(**overrides))`` initialised after ``torch.manual_seed(seed)``."""
    return _build(Transformer, rna_config(**overrides), seed, train)


def codon_model(seed: int | None = 0, train: bool = False, **overrides) -> Transformer:
    """A tiny mRNA-FM-style transformer over codon tokens (the 73-token ``mrna-fm`` alphabet)."""
    return rna_model(seed, train, **{"alphabet": "mrna-fm", **overrides})


def dna_model(seed: int | None = 0, train: bool = False, **overrides) -> ConvNet:
    """``ConvNet(dna_config(**overrides))`` initialised after ``torch.manual_seed(seed)``."""
    return _build(ConvNet, dna_config(**overrides), seed, train)


def gpn_model(seed: int | None = 0, **overrides) -> GPN:
    """A tiny model of the current GPN format (:class:`GPNConfig`): 2 layers, hidden 16."""
    cfg = {"num_layers": 2, "hidden_size": 16, "intermediate_size": 32, "first_kernel_size": 5,
           "rest_kernel_size": 3, "num_heads": 2, "max_len": 256, **overrides}
    return _build(GPN, GPNConfig(**cfg), seed, False)


def vep_dna_model() -> ConvNet:
    """The tiny ConvNet the variant-effect tests score with (3 layers, dilations 1, 2, 4), its
    LayerNorms and biases moved off their init too, so that scores are not near zero."""
    model = dna_model(seed=0, num_layers=3, dilation_max=4, dilation_cycle=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def interrupt_on_call(monkeypatch, owner, name: str, n: int) -> list:
    """Make ``owner.name`` raise KeyboardInterrupt at its ``n``-th call (a run stopped by Ctrl-C
    there); the real function serves the other calls. Returns the list counting the calls."""
    real, calls = getattr(owner, name), []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(owner, name, interrupted)
    return calls
