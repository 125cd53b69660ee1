"""``nucfm finetune``: the fine-tuning recipe (RNA function tasks) on the shared Recipe loop.

A labelled table (or FASTA with the label in the header) becomes a self-describing task model
(:mod:`nucfm.checkpoint.task`) in ``OUT/best``. The backbone is used frozen (its embeddings
computed once and cached by weights fingerprint), fully fine-tuned, with LoRA adapters, or not at
all (``backbone: none``: the one-hot baseline, same head). Batches hold sequences of similar
length (``batch_tokens`` residues, padding included); sequences longer than the backbone takes
are cut to a random window when the backbone trains, and embedded in windows otherwise. Early
stopping on the validation ``metric``; the best model is scored on the test set (and on the
test records whose sequence is not in the training file, ``test_unseen``). ``split: kfold`` runs
one recipe per fold (``OUT/fold_K``) and reports the mean. Resumable like every recipe.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from nucfm.checkpoint import training_state
from nucfm.data.batching import length_batches
from nucfm.errors import InputError
from nucfm.models.config import from_dict_strict
from nucfm.paths import atomic_write_text
from nucfm.train.recipe import Recipe

log = logging.getLogger("nucfm")
CONFIG_FILE = "config.yaml"
DEFAULT_METRIC = {"regression": "r2_pearson", "binary": "auroc", "multiclass": "accuracy", "residue": "accuracy"}


@dataclass
class FinetuneConfig:
    task: str = "regression"  # regression, binary, multiclass, residue
    train: str | list | dict = ""  # path, [paths], or {path: label}
    test: str | list | dict | None = None
    seq_col: str | None = None
    label_col: str = "label"  # regression: comma-separated for several targets
    header_regex: str | None = None  # FASTA: label from the header (named group 'label' or group 1)
    classes: list[str] | None = None  # fixed class names (default: sorted training labels)
    transform: str = "none"  # none, upper, viewpoint, site-random (CLIP site handling)
    split: str = "fraction"  # fraction, column, kfold
    split_col: str = "split"
    valid_fraction: float = 0.1
    test_fraction: float = 0.1  # fraction split without a test file
    folds: int = 5
    fold: int = -1  # kfold: -1 = every fold in turn
    backbone: str | None = None  # registered name or path; None = one-hot baseline
    backbone_mode: str = "frozen"  # frozen, full, lora
    backbone_layer: int = -1
    lora_rank: int = 8
    lora_alpha: float = 16.0
    inputs: list[str] = field(default_factory=lambda: ["lm"])
    head: dict = field(default_factory=dict)
    lr: float = 1e-3
    backbone_lr: float = 1e-4
    weight_decay: float = 0.01
    batch_tokens: int = 4096
    max_epochs: int = 30
    max_steps: int = 100_000
    max_minutes: float = 0.0
    patience: int = 5  # evaluations without improvement before stopping
    eval_every: int = 0  # steps; 0 = once per epoch
    save_every: int = 500
    log_every: int = 50
    metric: str = ""  # validation metric for early stopping ("" = per-task default)
    threads: int = 1
    seed: int = 0
    limit_train: int = 0
    output: str = "runs/finetune"
    description: str = ""

    def __post_init__(self):
        if self.backbone_mode not in ("none", "frozen", "full", "lora"):
            raise InputError(f"backbone_mode must be frozen, full or lora, not {self.backbone_mode!r}")
        if self.backbone in ("none", ""):
            self.backbone = None
        if self.backbone is None:
            self.backbone_mode = "none"
            self.inputs = [f for f in self.inputs if f != "lm"] or ["onehot"]
        elif "lm" not in self.inputs:
            self.inputs = ["lm", *self.inputs]
        self.metric = self.metric or DEFAULT_METRIC.get(self.task, "accuracy")
        if not self.train:
            raise InputError("finetune needs training data: train=PATH (a table or FASTA)")
        if self.split == "kfold" and self.test:
            raise InputError("split kfold takes its test sets from the training data; drop test (test=null)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneConfig:
        return from_dict_strict(cls, dict(d), "finetune option")


RESUMABLE_CHANGES = {"max_steps", "max_minutes", "max_epochs", "patience", "save_every", "log_every", "threads",
                     "description", "fold", "output"}


class FinetuneRecipe(Recipe):
    """One training run (one fold); ``run()`` returns the summary written to ``OUT/summary.json``."""

    def __init__(self, cfg: FinetuneConfig, restart: bool = False, interrupt_at: int | None = None):
        self.cfg, self.restart, self.interrupt_at = cfg, restart, interrupt_at
        self.output = Path(cfg.output)

    def setup(self) -> None:
        import yaml

        from nucfm.train.finetune_data import prepare

        torch.set_num_threads(self.cfg.threads)
        self.resuming = self.decide_resume(self.cfg.to_dict(), self.output / CONFIG_FILE, RESUMABLE_CHANGES,
                                           ("checkpoints", "best", "metrics.jsonl", "summary.json",
                                            "test_predictions.tsv", CONFIG_FILE), restart=self.restart)
        self.output.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.output / CONFIG_FILE, yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        self.data = prepare(self.cfg)

    def build(self) -> None:
        from nucfm.train.finetune_data import build_task_model

        torch.manual_seed(self.cfg.seed)
        self.model = build_task_model(self.cfg, self.data)
        head_params = list(self.model.head.parameters())
        groups = [{"params": head_params, "lr": self.cfg.lr}]
        bb = [p for p in (self.model.backbone.parameters() if self.trains_backbone else []) if p.requires_grad]
        if bb:
            groups.append({"params": bb, "lr": self.cfg.backbone_lr})
        self.opt = torch.optim.AdamW(groups, weight_decay=self.cfg.weight_decay)
        seed = self.cfg.seed
        self.streams = {"shuffle": random.Random(f"{seed}:shuffle"), "crop": random.Random(f"{seed}:crop")}
        self.epoch, self.best, self.bad_evals, self.elapsed, self.pending = 0, -np.inf, 0, 0.0, []

    @property
    def trains_backbone(self) -> bool:
        return self.cfg.backbone_mode in ("full", "lora")

    def maybe_resume(self) -> None:
        if self.resuming:
            st = training_state.load_training_state(training_state.latest(self.output / "checkpoints"))
            self.model.load_state_dict(st["model_state"], strict=True)
            self.opt.load_state_dict(st["optimizer"])
            training_state.restore_rng(st["rng"], self.streams)
            for k in ("step", "epoch", "best", "bad_evals", "elapsed", "pending"):
                setattr(self, k, st[k])
            log.info("resumed from step %d (best valid %s %.4f)", self.step, self.cfg.metric, self.best)
        elif (self.output / "metrics.jsonl").exists():
            (self.output / "metrics.jsonl").unlink()
        from nucfm.progress import bar as progress_bar

        self.start_clock(self.elapsed)
        self.epoch_done = False
        self.bar = progress_bar(initial=self.step, unit="step", desc="finetune", mininterval=2, leave=False)
        self.model.train()

    def train_step(self, step: int) -> dict:
        from nucfm.train.finetune_data import batch_loss

        if not self.pending:
            lengths = [min(len(s), self.data.crop) for s in self.data.train.data.seqs]
            self.pending = length_batches(lengths, self.cfg.batch_tokens, rng=self.streams["shuffle"])
            self.epoch += 1
        idx = self.pending.pop()
        self.epoch_done = not self.pending
        loss = batch_loss(self.model, self.data, idx, self.streams["crop"], self.trains_backbone)
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], 1.0)
        self.opt.step()
        return {"loss": loss.item()}

    def on_step_end(self, metrics: dict) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", epoch=self.epoch, refresh=False)
        self.log_running_loss(metrics["loss"])

    def done(self) -> bool:
        cfg = self.cfg
        return (self.step >= cfg.max_steps or self.bad_evals >= cfg.patience
                or (self.epoch >= cfg.max_epochs and self.epoch_done)
                or bool(cfg.max_minutes and self.minutes() > cfg.max_minutes))

    def eval_due(self) -> bool:
        return self.step % self.cfg.eval_every == 0 if self.cfg.eval_every else self.epoch_done

    def save_due(self) -> bool:
        return self.step % self.cfg.save_every == 0 or self.epoch_done

    def stop_early(self) -> bool:
        return self.interrupt_at is not None and self.step == self.interrupt_at

    def evaluate(self) -> dict:
        from nucfm.train.finetune_data import score

        res = score(self.model, self.data, "valid")
        value = res.get(self.cfg.metric, float("nan"))
        self.log_metrics({"step": self.step, "epoch": self.epoch, "valid": res, "minutes": self.minutes()})
        log.info("eval step %d epoch %d: valid %s %.4f", self.step, self.epoch, self.cfg.metric, value)
        if value > self.best:
            self.best, self.bad_evals = value, 0
            self.save_best()
        else:
            self.bad_evals += 1
        self.model.train()
        return res

    def save_best(self) -> None:
        from nucfm.checkpoint.task import save_task_model
        from nucfm.train.finetune_data import task_model_for_saving

        save_task_model(task_model_for_saving(self.model), self.output / "best",
                        metadata={"kind": "task", "step": self.step, "valid": self.best})

    def save(self) -> None:
        from nucfm.checkpoint.task import save_task_model
        from nucfm.train.finetune_data import task_model_for_saving

        trainer = {k: getattr(self, k) for k in ("step", "epoch", "best", "bad_evals", "pending")}
        trainer.update(elapsed=self.minutes() * 60, optimizer=self.opt.state_dict(),
                       rng=training_state.capture_rng(self.streams), model_state=self.model.state_dict())
        plain = task_model_for_saving(self.model)
        training_state.save_step(self.output / "checkpoints", self.step, lambda d: save_task_model(plain, d),
                                 trainer, keep=1)

    def finish(self) -> dict:
        from nucfm.train.finetune_data import final_summary

        self.bar.close()
        summary = final_summary(self)
        atomic_write_text(self.output / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
        return summary


def finetune(cfg: FinetuneConfig, restart: bool = False, interrupt_at: int | None = None) -> dict | None:
    """Run (or resume) fine-tuning; k-fold runs every fold into ``OUT/fold_K`` and summarises."""
    if cfg.split != "kfold" or cfg.fold >= 0:
        return FinetuneRecipe(cfg, restart=restart, interrupt_at=interrupt_at).run()
    folds = []
    for k in range(cfg.folds):
        sub = FinetuneConfig.from_dict({**cfg.to_dict(), "fold": k, "output": str(Path(cfg.output) / f"fold_{k}")})
        folds.append(FinetuneRecipe(sub, restart=restart).run())
    keys = [k for k, v in folds[0]["test"].items() if isinstance(v, float)]
    summary = {"folds": cfg.folds, "test_mean": {k: float(np.mean([f["test"][k] for f in folds])) for k in keys},
               "test_std": {k: float(np.std([f["test"][k] for f in folds])) for k in keys},
               "per_fold": [f["test"] for f in folds], "fold_epochs": [f["epochs"] for f in folds],
               "train_minutes": sum(f["train_minutes"] for f in folds),
               "config": cfg.to_dict()}
    Path(cfg.output).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(cfg.output) / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary
