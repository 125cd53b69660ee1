"""Task models: a language-model backbone (or none) and a small head that maps per-residue
features to a value per sequence (regression), a class per sequence (binary / multi-class) or a
class per residue (``residue``).

Inputs per residue (B, L, ·): the backbone's hidden states of layer ``backbone_layer`` (projected
to ``head.lm_proj`` channels when that is > 0) concatenated with the channels of
:mod:`nucfm.data.task_inputs` (one-hot, 3'-anchored position, ViennaRNA unpaired probability).
Heads (:class:`TaskHeadConfig`):

* ``pool``: Linear + ReLU per residue, mean or attention pooling over real residues, MLP;
* ``cnn``:  Optimus 5-Prime's shape, ``layers`` 1D convolutions (``channels`` filters, width
  ``kernel``, ReLU, dropout), then masked mean and max pooling and a dense layer. Length-free,
  so a model trained on 50-nt UTRs takes any length.

Per-residue tasks skip the pooling. :meth:`TaskModel.predict` returns de-normalised values or
class probabilities for a list of sequences; sequences longer than the backbone's maximum are
embedded in overlapping windows (:meth:`NucleotideLM.embed`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from nucfm.data.task_inputs import CHANNELS, channels, check_inputs, clean
from nucfm.errors import InputError
from nucfm.models.config import from_dict_strict

TASKS = ("regression", "binary", "multiclass", "residue")
MODES = ("none", "frozen", "full", "lora")


@dataclass(frozen=True)
class TaskHeadConfig:
    kind: str = "cnn"  # "cnn" or "pool"
    pool: str = "mean"  # pool head: "mean" or "attention"
    lm_proj: int = 0  # project LM embeddings to this many channels first (0 = use as they are)
    channels: int = 120
    kernel: int = 7  # odd: "same" padding without a copy (Optimus used 8)
    layers: int = 3
    hidden: int = 64
    dropout: float = 0.2

    def __post_init__(self):
        if self.kind not in ("cnn", "pool") or self.pool not in ("mean", "attention"):
            raise InputError(f"head.kind must be cnn or pool and head.pool mean or attention, not {self.kind}/"
                             f"{self.pool}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TaskConfig:
    task: str
    labels: tuple[str, ...]  # class names (classification) or target names (regression)
    inputs: tuple[str, ...] = ("onehot",)
    head: dict = field(default_factory=dict)
    target_mean: tuple[float, ...] = ()  # regression: targets are learned as (y - mean) / std
    target_std: tuple[float, ...] = ()
    backbone: str | None = None  # registered name or path the backbone was loaded from
    backbone_mode: str = "none"
    backbone_layer: int = -1
    backbone_hidden_size: int = 0
    backbone_fingerprint: str | None = None  # of the weights the head was trained on
    backbone_stored: bool = False  # the backbone's own weights are in this task model

    def __post_init__(self):
        object.__setattr__(self, "inputs", check_inputs(self.inputs))
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.backbone_mode not in MODES:
            raise InputError(f"backbone mode must be one of {', '.join(MODES)}, not {self.backbone_mode!r}")
        if ("lm" in self.inputs) != (self.backbone_mode != "none"):
            raise InputError("input 'lm' needs a backbone, and a backbone needs input 'lm'")
        if not self.inputs:
            raise InputError("a task model needs at least one input (lm, onehot, position, unpaired)")

    @property
    def head_config(self) -> TaskHeadConfig:
        return from_dict_strict(TaskHeadConfig, dict(self.head), "head option")

    @property
    def n_out(self) -> int:
        return len(self.labels)

    @property
    def extra_channels(self) -> int:
        return sum(CHANNELS[f] for f in self.inputs if f != "lm")

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("labels", "inputs", "target_mean", "target_std"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TaskConfig:
        d = dict(d)
        for k in ("labels", "inputs", "target_mean", "target_std"):
            if k in d:
                d[k] = tuple(d[k])
        return from_dict_strict(cls, d, "task config")


def _masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x * mask[:, :, None].to(x.dtype)


class TaskHead(nn.Module):
    """Logits from per-residue features: (B, n_out) per sequence or (B, L, n_out) per residue."""

    def __init__(self, config: TaskConfig):
        super().__init__()
        self.config = config
        h = config.head_config
        D = config.backbone_hidden_size if "lm" in config.inputs else 0
        self.lm_proj = nn.Linear(D, h.lm_proj) if D and h.lm_proj else None
        c_in = (h.lm_proj or D) + config.extra_channels
        self.per_residue = config.task == "residue"
        if h.kind == "cnn":
            convs, c = [], c_in
            for _ in range(h.layers):
                convs.append(nn.Conv1d(c, h.channels, h.kernel, padding="same"))
                c = h.channels
            self.convs = nn.ModuleList(convs)
            width = h.channels if self.per_residue else 2 * h.channels
        else:
            self.convs = None
            self.embed = nn.Sequential(nn.Linear(c_in, h.hidden), nn.ReLU())
            self.attn = nn.Linear(h.hidden, 1) if h.pool == "attention" else None
            width = h.hidden
        self.drop = nn.Dropout(h.dropout)
        self.out = nn.Sequential(nn.Linear(width, h.hidden), nn.ReLU(), nn.Dropout(h.dropout),
                                 nn.Linear(h.hidden, config.n_out))

    def forward(self, emb: torch.Tensor | None, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """emb: (B, L, D) or None; feats: (B, L, C); mask: (B, L) True on residues."""
        parts = []
        if emb is not None:
            parts.append(self.lm_proj(emb) if self.lm_proj is not None else emb)
        if feats.shape[2]:
            parts.append(feats)
        x = _masked(torch.cat(parts, 2), mask)  # (B, L, C_in)
        if self.convs is not None:
            x = x.transpose(1, 2)  # (B, C, L)
            m = mask[:, None, :].to(x.dtype)
            for conv in self.convs:
                x = self.drop(torch.relu(conv(x * m))) * m
            x = x.transpose(1, 2)  # (B, L, C)
            if self.per_residue:
                return self.out(x)
            n = mask.sum(1, keepdim=True).clamp(min=1)
            pooled = torch.cat([x.sum(1) / n, x.masked_fill(~mask[:, :, None], -1e4).amax(1)], 1)
            return self.out(pooled)
        x = _masked(self.embed(x), mask)  # (B, L, H)
        if self.per_residue:
            return self.out(self.drop(x))
        if self.attn is not None:
            w = torch.softmax(self.attn(x).squeeze(2).masked_fill(~mask, -1e4), 1)  # (B, L)
            pooled = (w[:, :, None] * x).sum(1)
        else:
            pooled = x.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.out(self.drop(pooled))


def pad_features(arrays: list[np.ndarray], dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, Lmax, C) zero-padded tensor and (B, Lmax) mask from (L_i, C) arrays."""
    B, L = len(arrays), max(max(len(a) for a in arrays), 1)
    C = arrays[0].shape[1] if arrays[0].ndim == 2 else 0
    out = torch.zeros(B, L, C, dtype=dtype)
    mask = torch.zeros(B, L, dtype=torch.bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = torch.from_numpy(np.asarray(a, np.float32))
        mask[i, : len(a)] = True
    return out, mask


class TaskModel(nn.Module):
    """A backbone (frozen, fine-tuned or none) and a :class:`TaskHead`; see the module doc."""

    def __init__(self, config: TaskConfig, head: TaskHead, backbone=None):
        super().__init__()
        self.config = config
        self.head = head
        self.backbone = backbone

    def backbone_states(self, seqs: list[str]) -> torch.Tensor:
        """Differentiable backbone states (B, Lmax, D) of cleaned sequences no longer than the
        backbone's maximum (training path; predict() windows longer ones)."""
        from nucfm.data.collate import collate

        bb = self.backbone
        batch = collate(bb.alphabet, [bb.alphabet.encode(s) for s in seqs], max_len=bb.max_len)
        dev = bb.device
        h = bb.hidden(batch.input_ids.to(dev), batch.attention_mask.to(dev), self.config.backbone_layer)
        return h[:, batch.offset : batch.offset + max(batch.lengths)]  # (B, Lmax, D)

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """Values in the targets' units (regression) or class probabilities."""
        if self.config.task == "regression":
            mean = torch.tensor(self.config.target_mean, dtype=logits.dtype, device=logits.device)
            std = torch.tensor(self.config.target_std, dtype=logits.dtype, device=logits.device)
            return logits * std + mean
        return torch.softmax(logits, -1)

    @torch.no_grad()
    def predict(self, seqs: list[str], batch_size: int = 64, embeddings: list[np.ndarray] | None = None,
                extra: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """Per sequence: (n_out,) values / class probabilities, or (L, n_out) per residue.
        ``embeddings`` / ``extra`` (precomputed LM states / channels) skip that work. An empty
        sequence gives NaN."""
        from nucfm.data.batching import length_batches

        if isinstance(seqs, str):
            raise TypeError("seqs must be a list of sequences, not a single string")
        self.eval()
        seqs = [clean(s) for s in seqs]
        cfg = self.config
        if embeddings is None and self.backbone is not None:
            embeddings = self.backbone.embed(seqs, layer=cfg.backbone_layer)
        if extra is None:
            extra = [channels(s, cfg.inputs) for s in seqs]
        out: list[np.ndarray] = [np.full(cfg.n_out if cfg.task != "residue" else (0, cfg.n_out), np.nan)] * len(seqs)
        keep = [i for i, s in enumerate(seqs) if len(s)]
        for idx in length_batches([len(seqs[i]) for i in keep], batch_size * 64):
            rows = [keep[j] for j in idx]
            dev = next(self.head.parameters()).device  # the batch follows the model (--device)
            feats, mask = (t.to(dev) for t in pad_features([extra[i] for i in rows]))
            emb = pad_features([embeddings[i] for i in rows])[0].to(dev) if embeddings is not None else None
            y = self.output(self.head(emb, feats, mask).float()).cpu().numpy()
            for r, i in enumerate(rows):
                out[i] = y[r, : len(seqs[i])] if cfg.task == "residue" else y[r]
        return out
