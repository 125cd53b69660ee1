"""Pretraining run configuration: a YAML file plus ``key.sub=value`` overrides.

Sections: ``model`` (the model config, passed to :func:`nucfm.checkpoint.build_model`),
``data``, ``train`` and ``output``. Unknown keys are errors, so a typo never becomes a default.
The resolved configuration is written to ``OUTPUT/config.yaml`` by every run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nucfm.errors import InputError
from nucfm.models.config import check_range, from_dict_strict


@dataclass
class DataConfig:
    kind: str = "rna"  # "rna" (FASTA corpus) or "dna" (genome windows)
    fasta: list[str] = field(default_factory=list)  # RNA sources
    families: str | None = None  # optional Rfam family table: clan grouping of held-out families
    # (headers without Rfam accessions: validation is similarity groups instead, see data.corpus)
    valid_fraction: float = 0.05  # RNA: fraction of family groups held out
    min_len: int = 10  # RNA: shorter sequences are dropped
    genome: str | list[str] | None = None  # DNA source: one genome FASTA or a list (e.g. a relative's too)
    exclude_regions: list[str] = field(default_factory=list)  # DNA: CHROM:START-END no training window overlaps
    valid_region: str | None = None  # DNA: CHROM:START-END held out (1-based inclusive)
    window: int = 512  # DNA window (bases)
    stride: int = 256  # DNA window stride
    min_acgt: float = 0.0  # DNA: windows with less A/C/G/T are skipped (all-N windows always)
    rc_augment: bool = True  # DNA: reverse-complement half of the windows
    soft_mask_weight: float = 0.1  # DNA: loss weight of lowercase (repeat) positions
    prepared: str | None = None  # prepared data directory; default OUTPUT/data

    def __post_init__(self):
        if self.kind not in ("rna", "dna"):
            raise InputError(f"data.kind must be rna or dna, not {self.kind!r}")
        check_range(self, "data", "valid_fraction", 0, 1, low_open=True, high_open=True)
        check_range(self, "data", ["min_len", "window", "stride"], 1)
        check_range(self, "data", "min_acgt", 0, 1)
        check_range(self, "data", "soft_mask_weight", 0)
        if any(not isinstance(f, str) for f in self.fasta):
            raise InputError("data.fasta must be a list of file paths")
        if isinstance(self.genome, list) and (not self.genome or any(not isinstance(g, str) for g in self.genome)):
            raise InputError("data.genome must be a file path or a non-empty list of file paths")
        if any(not isinstance(r, str) for r in self.exclude_regions):
            raise InputError("data.exclude_regions must be a list of CHROM:START-END regions")

    def genomes(self) -> list[str]:
        """``genome`` as a list of paths."""
        return [] if self.genome is None else [self.genome] if isinstance(self.genome, str) else list(self.genome)


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32  # global batch, sequences (or windows) per optimizer step
    accum: int = 1  # micro-batches per step per process
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    schedule: str = "inverse_sqrt"  # or "cosine"
    warmup: int = 100
    min_lr_ratio: float = 0.1  # cosine floor, as a fraction of lr
    clip: float = 1.0  # gradient-norm clipping (0 = off)
    mask_prob: float = 0.15
    seed: int = 0
    threads: int = 0  # torch CPU threads per process (0 = leave torch's default)
    log_every: int = 10
    eval_every: int = 200
    eval_size: int = 256  # validation sequences / windows per evaluation (fixed sample)
    ckpt_every: int = 200
    keep_ckpts: int = 2
    device: str = "auto"  # "cpu", "cuda" or "auto"
    init_from: str | None = None  # start from these weights (a model dir or registered name), fresh optimizer
    max_minutes: float = 0.0  # stop cleanly (evaluate, save) after this much training time; 0 = no limit.
    # With a cosine schedule the decay then follows elapsed time / max_minutes, so the run ends at the floor
    workers: int = 0  # data-loader processes preparing batches (0 = in the training process)
    compile: bool = False  # torch.compile the model (GPU: pays on long runs; compile time counts in max_minutes)

    def __post_init__(self):
        check_range(self, "train", ["steps", "batch_size", "accum", "log_every", "eval_every", "eval_size",
                                    "ckpt_every"], 1)
        check_range(self, "train", ["warmup", "threads", "keep_ckpts", "workers"], 0)
        check_range(self, "train", "max_minutes", 0)
        check_range(self, "train", ["lr", "weight_decay", "clip"], 0)
        check_range(self, "train", "min_lr_ratio", 0, 1)
        check_range(self, "train", "mask_prob", 0, 1, low_open=True)
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise InputError(f"train.betas must be two numbers in [0, 1), not {list(self.betas)!r}")
        if self.schedule not in ("inverse_sqrt", "cosine"):
            raise InputError(f"train.schedule must be inverse_sqrt or cosine, not {self.schedule!r}")
        kind, _, index = self.device.partition(":")
        if kind not in ("auto", "cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
            raise InputError(f"train.device must be auto, cpu, cuda, cuda:N or mps, not {self.device!r}")


@dataclass
class RunConfig:
    model: dict[str, Any]
    data: DataConfig
    train: TrainConfig
    output: str = "runs/pretrain"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"]["betas"] = list(self.train.betas)
        return d


def _strict(cls, d: dict | None, where: str):
    if d is not None and not isinstance(d, dict):
        raise InputError(f"the {where} section must be a mapping of keys to values")
    d = dict(d or {})
    if isinstance(d.get("betas"), list):
        d["betas"] = tuple(d["betas"])
    return from_dict_strict(cls, d, where)


def apply_override(d: dict, override: str) -> None:
    """``train.lr=3e-4`` -> d["train"]["lr"] = 0.0003 (value parsed as YAML)."""
    if "=" not in override:
        raise InputError(f"override {override!r} is not KEY=VALUE (e.g. train.steps=100)")
    key, value = override.split("=", 1)
    parts = key.strip().split(".")
    node = d
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise InputError(f"override {override!r}: {p} is not a section")
    parsed = yaml.safe_load(value)
    if isinstance(parsed, str):
        try:  # YAML 1.1 reads "5e-4" (no dot) as a string
            parsed = float(parsed)
        except ValueError:
            pass
    node[parts[-1]] = parsed


def from_dict(d: dict) -> RunConfig:
    d = dict(d)
    unknown = set(d) - {"model", "data", "train", "output"}
    if unknown:
        raise InputError(f"unknown config sections: {', '.join(sorted(unknown))}; known: model, data, train, output")
    if "model" not in d or "architecture" not in d["model"]:
        raise InputError("the config needs a model section with an architecture (e.g. transformer)")
    if not isinstance(d["model"], dict):
        raise InputError("the model section must be a mapping of keys to values")
    cfg = RunConfig(model=dict(d["model"]), data=_strict(DataConfig, d.get("data"), "data"),
                    train=_strict(TrainConfig, d.get("train"), "train"), output=str(d.get("output", "runs/pretrain")))
    from nucfm.models import ARCHITECTURES

    arch = cfg.model.get("architecture")
    if arch not in ARCHITECTURES:
        raise InputError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    ARCHITECTURES[arch].config_class.from_dict(cfg.model)  # sizes checked now, not after data preparation
    return cfg


def load_dict(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """A config YAML (or an empty config when ``path`` is None) with ``KEY=VALUE`` overrides
    applied in order: the one reader of every recipe's config."""
    d: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such config file")
        try:
            d = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            problem = getattr(e, "problem", None) or type(e).__name__
            raise InputError(f"{path}: not valid YAML{at} ({problem})") from None
        if not isinstance(d, dict):
            raise InputError(f"{path}: a config must be a mapping of keys to values")
    for o in overrides:
        apply_override(d, o)
    return d


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a pretraining run YAML and apply overrides in order."""
    return from_dict(load_dict(path, overrides))


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
