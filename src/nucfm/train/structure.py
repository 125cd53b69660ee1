"""``nucfm train-ss``: the pair-task recipe (a pair head for RNA secondary structure or for 3D
closeness maps).

``task: structure`` (default): train on a structure file (bpRNA TR0 by default), pick the
checkpoint and the decoding threshold on a validation file (VL0) by macro F1. ``task: contact``:
train on a contact JSON-lines file (:mod:`nucfm.io.contacts`), pick the checkpoint by long-range
contact precision on the validation file (:data:`CONTACT_SELECTION`). ``init_from`` starts the
head from a trained structure model (RNA-FM's transfer from secondary structure to contacts).

The language model is frozen: its embeddings are computed once and cached
(:mod:`nucfm.train.feature_cache`), as are the ViennaRNA bpp maps. Batches hold sequences of similar
length (at most ``batch_pairs`` L² pairs each); sequences longer than ``crop`` are cut to a random
``crop``-residue window (the 2D head is translation-equivariant, so this only loses pairs spanning
more than ``crop``). Loss: binary cross-entropy over the pairs ``i < j``.

The run takes a YAML config (keys of :class:`TrainStructureConfig`) plus ``KEY=VALUE`` overrides,
as ``pretrain`` does. Resumable: a training checkpoint (:mod:`nucfm.checkpoint.training_state`)
every ``save_every`` steps; rerunning the same config continues from it, a different config into
the same output is refused, ``restart`` starts over. The best checkpoint (by the task's
validation score) is ``OUT/best/``, a self-describing structure model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from nucfm.alphabet import structure_letters
from nucfm.checkpoint import training_state
from nucfm.checkpoint.structure import load_structure_model, save_structure_model
from nucfm.data.batching import length_batches
from nucfm.data.structure_features import BPP_PARAMS, FEATURE_CHANNELS, check_features, onehot_outer, sparse_to_bpp
from nucfm.errors import InputError
from nucfm.io.structure import StructureRecord, read_structures
from nucfm.metrics import macro_average
from nucfm.models.config import PAIR_TASKS, DecodeOptions, PairHeadConfig, StructureConfig, from_dict_strict
from nucfm.models.heads import PairHead
from nucfm.paths import atomic_write_text
from nucfm.tasks.structure import decode_structure, score_structures
from nucfm.train.recipe import Recipe
from nucfm.train.schedule import lr_factor

log = logging.getLogger("nucfm")

DEFAULT_DATA = Path("../shared/data/ss/bprna")
CONFIG_FILE = "config.yaml"
# Contact checkpoints are chosen by the mean of the long-range top-L/5, L/2 and L precisions
# (per chain, then averaged): the validation chains are short and sparse (VL: 19 of 30 have fewer
# than L long-range contacts), so one cut-off alone is a noisy few predictions per chain.
CONTACT_SELECTION = ("long_L/5", "long_L/2", "long_L/1")


@dataclass
class TrainStructureConfig:
    train: str = str(DEFAULT_DATA / "TR0.dbn")
    valid: str = str(DEFAULT_DATA / "VL0.dbn")
    output: str = "runs/ss"
    task: str = "structure"  # "structure" (base pairs) or "contact" (3D closeness)
    init_from: str | None = None  # a trained structure model (dir or name) whose head weights start this run
    lm: str | None = None  # registered name or path; None = pair features only
    lm_layer: int = -1
    features: tuple[str, ...] = ("onehot", "bpp")
    blocks: int = 8
    channels: int = 32
    reduction: int = 32
    dropout: float = 0.3
    crop: int = 160
    batch_pairs: int = 160 * 160 * 4
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: int = 100
    min_lr_ratio: float = 0.05  # cosine floor, as a fraction of lr
    pos_weight: float = 1.0
    max_steps: int = 100_000
    max_minutes: float = 40.0  # 0 = no time limit; with one, the cosine runs over the time budget
    eval_every: int = 300
    eval_subset: int = 300  # validation sequences used for checkpoint choice during training
    save_every: int = 100
    log_every: int = 20
    threads: int = 2
    seed: int = 0
    limit_train: int = 0  # use only the first N training records (0 = all; for smoke tests)
    description: str = ""

    def __post_init__(self):
        self.features = check_features(self.features)
        if self.task not in PAIR_TASKS:
            raise InputError(f"unknown task {self.task!r}; known: {', '.join(PAIR_TASKS)}")
        for key in ("crop", "batch_pairs", "max_steps", "eval_every", "save_every", "log_every", "threads",
                    "blocks", "channels", "reduction"):
            if getattr(self, key) < 1:
                raise InputError(f"{key} must be >= 1, not {getattr(self, key)}")
        if self.lr <= 0 or self.max_minutes < 0 or not 0 <= self.dropout < 1:
            raise InputError("lr must be > 0, max_minutes >= 0 and dropout in [0, 1)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainStructureConfig:
        d = dict(d)
        for key in ("lm", "init_from"):
            if d.get(key) in ("none", ""):
                d[key] = None
        if isinstance(d.get("features"), str):
            d["features"] = [] if d["features"] in ("none", "") else d["features"].split(",")
        return from_dict_strict(cls, d, "train-ss option")


# Settings a rerun may change and still resume (how long and how often, not what is learned).
RESUMABLE_CHANGES = {"max_steps", "max_minutes", "eval_every", "save_every", "log_every", "threads", "description"}


@dataclass
class Example:
    seq: str  # structure letters
    pairs: list
    bpp: dict | None = None  # feature name -> sparse (idx, val) ViennaRNA map
    emb: np.ndarray | None = None  # (L, D) float16 frozen LM embeddings
    id: str = ""


def read_pair_records(path: str, task: str) -> list:
    """Labelled records of a pair task (each with ``id``, ``seq`` and ``pairs``): structures
    (.dbn, .bpseq, .ct) for ``structure``, contact JSON lines for ``contact``."""
    if task == "contact":
        from nucfm.io.contacts import read_contacts

        return read_contacts(path)
    records: list[StructureRecord] = read_structures(path)
    return records


def load_examples(path: str, cfg: TrainStructureConfig, lm, limit: int = 0) -> list[Example]:
    """Records of a structure file with their cached features (sequences cleaned here, once)."""
    from nucfm.data.structure_features import bpp_to_sparse
    from nucfm.train.feature_cache import bpp_maps, lm_embeddings

    recs = [r for r in read_pair_records(path, cfg.task) if len(r.seq) > 0]
    if limit:
        recs = recs[:limit]
    if not recs:
        raise InputError(f"{path}: no structures to train or validate on")
    seqs = [structure_letters(r.seq) for r in recs]
    bpps: list[dict] = [{} for _ in recs]
    for f in cfg.features:
        if f in BPP_PARAMS:
            for d, b in zip(bpps, bpp_maps(seqs, params=BPP_PARAMS[f])):
                d[f] = bpp_to_sparse(b)
    embs = lm_embeddings(lm, seqs, cfg.lm_layer) if lm is not None else [None] * len(recs)
    return [Example(s, r.pairs, b, e, r.id) for s, r, b, e in zip(seqs, recs, bpps, embs)]


def crop_windows(examples: list[Example], crop: int | None, rng: random.Random | None) -> list[tuple[int, int]]:
    """A random ``crop``-residue window per longer example (the whole sequence otherwise)."""
    out = []
    for ex in examples:
        L = len(ex.seq)
        if crop and L > crop and rng is not None:
            s = rng.randrange(0, L - crop + 1)
            out.append((s, s + crop))
        else:
            out.append((0, L))
    return out


def make_batch(examples: list[Example], features: tuple[str, ...], windows: list[tuple[int, int]]):
    """Padded tensors for examples cut to ``windows``: embeddings (B, L, D) or None, pair
    features (B, C, L, L) or None, labels (B, L, L), mask (B, L)."""
    Lmax = max(e - s for s, e in windows)
    B = len(examples)
    C = sum(FEATURE_CHANNELS[f] for f in features)
    feats = torch.zeros(B, C, Lmax, Lmax) if C else None
    labels = torch.zeros(B, Lmax, Lmax)
    mask = torch.zeros(B, Lmax, dtype=torch.bool)
    embs = torch.zeros(B, Lmax, examples[0].emb.shape[1]) if examples[0].emb is not None else None
    for b, (ex, (s, e)) in enumerate(zip(examples, windows)):
        L = e - s
        mask[b, :L] = True
        for i, j in ex.pairs:
            if s <= i < e and s <= j < e:
                labels[b, i - s, j - s] = labels[b, j - s, i - s] = 1
        c = 0
        for f in features:
            if f == "onehot":
                feats[b, c : c + 16, :L, :L] = torch.from_numpy(onehot_outer(ex.seq[s:e]))
            else:
                idx, val = ex.bpp[f]
                feats[b, c, :L, :L] = torch.from_numpy(sparse_to_bpp(idx, val, len(ex.seq))[s:e, s:e])
            c += FEATURE_CHANNELS[f]
        if embs is not None:
            embs[b, :L] = torch.from_numpy(ex.emb[s:e].astype(np.float32))
    return embs, feats, labels, mask


def pair_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """Mean BCE over real pairs i < j. logits, labels: (B, L, L); mask: (B, L)."""
    L = logits.shape[1]
    m = (mask[:, :, None] & mask[:, None, :]) & torch.ones(L, L, dtype=torch.bool).triu(1)
    pw = torch.tensor(pos_weight) if pos_weight != 1.0 else None
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[m], labels[m], pos_weight=pw)


@torch.no_grad()
def predict_examples(head: PairHead, examples: list[Example], features: tuple[str, ...],
                     batch_pairs: int = 4 * 256 * 256) -> list[np.ndarray]:
    """Full-length (L, L) probabilities for each example, batched by length."""
    head.eval()
    out: list[np.ndarray | None] = [None] * len(examples)
    for idx in length_batches([len(e.seq) for e in examples], batch_pairs, cost=lambda n: n * n):
        batch = [examples[i] for i in idx]
        embs, feats, _, mask = make_batch(batch, features, crop_windows(batch, None, None))
        probs = torch.sigmoid(head(embs, feats, mask))
        for row, i in enumerate(idx):
            L = len(examples[i].seq)
            out[i] = probs[row, :L, :L].numpy()
    return out  # type: ignore[return-value]


def evaluate_thresholds(probs: list[np.ndarray], examples: list[Example], thresholds, opts: DecodeOptions
                        ) -> dict[float, dict]:
    """Macro P/R/F1/MCC on ``examples`` for each threshold."""
    res = {}
    for t in thresholds:
        o = dataclasses.replace(opts, threshold=float(t))
        preds = [decode_structure(p, e.seq, o) for p, e in zip(probs, examples)]
        res[float(t)] = macro_average(score_structures(preds, examples))
    return res


# The train-ss option that sets each head setting (embed_dim follows the LM's width,
# extra_channels the pair features).
_HEAD_OPTIONS = {"embed_dim": "lm", "extra_channels": "features", "blocks": "blocks", "channels": "channels",
                 "reduction": "reduction"}


def check_init_from(config: StructureConfig, source: str, lm=None):
    """The trained structure model ``source`` (directory or name), checked to have this run's
    architecture (head sizes but dropout, pair features, LM width) BEFORE any feature is
    computed; else one :class:`InputError` listing every difference and the options that fix it."""
    src = load_structure_model(source, lm=lm)
    ours, theirs = config.head_config, src.config.head_config
    diffs, fixes = [], {}
    if tuple(src.config.features) != tuple(config.features):
        theirs_f = ",".join(src.config.features) or "none"
        diffs.append(f"features={theirs_f} (this run {','.join(config.features) or 'none'})")
        fixes["features"] = theirs_f
    for k in PairHeadConfig.__dataclass_fields__:
        if k != "dropout" and getattr(ours, k) != getattr(theirs, k):
            if k == "extra_channels" and "features" in fixes:
                continue  # explained by the features
            diffs.append(f"{k}={getattr(theirs, k)!r} (this run {getattr(ours, k)!r})")
            option = _HEAD_OPTIONS.get(k, k)
            fixes[option] = src.config.lm if option == "lm" else getattr(theirs, k)
    if diffs:
        how = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in fixes.items())
        raise InputError(f"init_from {source}: its head differs from this run's: {'; '.join(diffs)}; "
                         f"to continue from it give {how} (or drop --init-from)")
    return src


def init_head_from(head: PairHead, config: StructureConfig, source: str, lm=None, checked=None) -> None:
    """Copy the head weights of the trained structure model ``source`` into ``head`` (after
    :func:`check_init_from`, whose result ``checked`` saves loading it again)."""
    src = checked if checked is not None else check_init_from(config, source, lm)
    head.load_state_dict(src.head.state_dict(), strict=True)
    log.info("head initialised from %s", source)


def evaluate_structure(probs: list[np.ndarray], examples: list[Example]) -> dict:
    """Best macro F1 over a few decoding thresholds (checkpoint choice during training)."""
    res = evaluate_thresholds(probs, examples, [0.3, 0.4, 0.5, 0.6], DecodeOptions())
    t_best = max(res, key=lambda t: res[t]["f1"])
    return {"name": "F1", "score": res[t_best]["f1"], "threshold": t_best, "log": {"threshold": t_best}}


def evaluate_contacts(probs: list[np.ndarray], examples: list[Example]) -> dict:
    """Contact precisions (long and medium range, top-L/k); the score is the mean of the
    :data:`CONTACT_SELECTION` precisions."""
    from nucfm.metrics import average_contact_scores, score_contacts

    avg = average_contact_scores([score_contacts(p, e.pairs, len(e.seq)) for p, e in zip(probs, examples)])
    score = float(np.mean([avg[k]["precision"] for k in CONTACT_SELECTION]))
    return {"name": "long-range precision (L/5, L/2, L)", "score": score, "metrics": avg,
            "log": {k: round(v["precision"], 4) for k, v in avg.items()}}


TASK_EVALUATORS = {"structure": evaluate_structure, "contact": evaluate_contacts}


class StructureRecipe(Recipe):
    """Train a pair head; ``run()`` returns the summary written to ``OUT/summary.json``."""

    def __init__(self, cfg: TrainStructureConfig, restart: bool = False, interrupt_at: int | None = None):
        self.cfg = cfg
        self.restart = restart
        self.interrupt_at = interrupt_at
        self.output = Path(cfg.output)

    # ---- setup --------------------------------------------------------------------------------
    def setup(self) -> None:
        from nucfm.checkpoint import load_model

        cfg = self.cfg
        torch.set_num_threads(cfg.threads)
        self.resuming = self._decide_resume()
        self.output.mkdir(parents=True, exist_ok=True)
        import yaml

        atomic_write_text(self.output / CONFIG_FILE, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        self.lm = load_model(cfg.lm) if cfg.lm else None
        self.head_config = self._head_config()
        # before the features (minutes of ViennaRNA): a mismatching init_from costs nothing
        self.init_source = None
        if cfg.init_from:
            self.init_source = check_init_from(self.structure_config(0.5), cfg.init_from, self.lm)
        t0 = time.time()
        self.train_set = load_examples(cfg.train, cfg, self.lm, cfg.limit_train)
        self.valid_set = load_examples(cfg.valid, cfg, self.lm)
        log.info("data: %d train, %d valid sequences; features ready in %.0f s", len(self.train_set),
                 len(self.valid_set), time.time() - t0)
        pick = random.Random(1234)
        self.valid_subset = (pick.sample(self.valid_set, min(cfg.eval_subset, len(self.valid_set)))
                             if cfg.eval_subset else self.valid_set)

    def _decide_resume(self) -> bool:
        return self.decide_resume(self.cfg.to_dict(), self.output / CONFIG_FILE, RESUMABLE_CHANGES,
                                  ("checkpoints", "best", "metrics.jsonl", "summary.json", "valid_probs.npz",
                                   CONFIG_FILE), restart=self.restart)

    # ---- build --------------------------------------------------------------------------------
    def _head_config(self) -> PairHeadConfig:
        cfg = self.cfg
        D = self.lm.hidden_size if self.lm is not None else 0
        return PairHeadConfig(embed_dim=D, reduction=cfg.reduction, channels=cfg.channels, blocks=cfg.blocks,
                              dropout=cfg.dropout, extra_channels=sum(FEATURE_CHANNELS[f] for f in cfg.features))

    def build(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.head = PairHead(self.head_config)
        if cfg.init_from:
            init_head_from(self.head, self.structure_config(0.5), cfg.init_from, self.lm, checked=self.init_source)
        self.opt = torch.optim.AdamW(self.head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        # The random streams exact resume depends on, by name (saved in every training checkpoint).
        self.streams = {"shuffle": random.Random(f"{cfg.seed}:shuffle"), "crop": random.Random(f"{cfg.seed}:crop")}
        self.epoch, self.best, self.elapsed, self.pending = 0, -1.0, 0.0, []
        self.lengths = [min(len(e.seq), cfg.crop) for e in self.train_set]
        self.n_params = sum(p.numel() for p in self.head.parameters())

    def structure_config(self, threshold: float) -> StructureConfig:
        cfg = self.cfg
        return StructureConfig(head=self.head_config.to_dict(), features=cfg.features, lm=cfg.lm,
                               lm_hidden_size=self.head_config.embed_dim, lm_layer=cfg.lm_layer,
                               decode=DecodeOptions(threshold=threshold).to_dict(), task=cfg.task)

    # ---- resume -------------------------------------------------------------------------------
    def maybe_resume(self) -> None:
        from nucfm.checkpoint import read_weights

        if self.resuming:
            ckpt = training_state.latest(self.output / "checkpoints")
            self.head.load_state_dict(read_weights(ckpt), strict=True)
            st = training_state.load_training_state(ckpt)
            self.opt.load_state_dict(st["optimizer"])
            training_state.restore_rng(st["rng"], self.streams)
            self.step, self.epoch, self.best = st["step"], st["epoch"], st["best"]
            self.elapsed, self.pending = st["elapsed"], st["pending"]
            log.info("resumed from step %d (best valid score %.4f)", self.step, self.best)
        elif (self.output / "metrics.jsonl").exists():
            (self.output / "metrics.jsonl").unlink()
        log.info("head: %s, %d parameters", self.head_config, self.n_params)
        self.start_clock(self.elapsed)
        self.head.train()

    # ---- one step -----------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        progress = self.minutes() / cfg.max_minutes if cfg.max_minutes else None
        return cfg.lr * lr_factor(step, cfg.warmup, "cosine", total=cfg.max_steps, min_ratio=cfg.min_lr_ratio,
                                  progress=progress)

    def train_step(self, step: int) -> dict:
        cfg = self.cfg
        if not self.pending:
            self.pending = length_batches(self.lengths, cfg.batch_pairs, cost=lambda n: n * n,
                                          rng=self.streams["shuffle"])
            self.epoch += 1
        idx = self.pending.pop()
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(step + 1)
        batch = [self.train_set[i] for i in idx]
        embs, feats, labels, mask = make_batch(batch, cfg.features, crop_windows(batch, cfg.crop, self.streams["crop"]))
        loss = pair_loss(self.head(embs, feats, mask), labels, mask, cfg.pos_weight)
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.head.parameters(), 1.0)
        self.opt.step()
        return {"loss": loss.item()}

    def on_step_end(self, metrics: dict) -> None:
        if getattr(self, "bar", None) is None:
            from nucfm.progress import bar

            self.bar = bar(total=self.cfg.max_steps, initial=self.step - 1, unit="step", desc="train-ss")
        self.bar.update(1)
        self.log_running_loss(metrics["loss"], lr=self.opt.param_groups[0]["lr"])

    # ---- cadence ------------------------------------------------------------------------------
    def done(self) -> bool:
        cfg = self.cfg
        return self.step >= cfg.max_steps or bool(cfg.max_minutes and self.minutes() > cfg.max_minutes)

    def eval_due(self) -> bool:
        return self.step % self.cfg.eval_every == 0

    def save_due(self) -> bool:
        return self.step % self.cfg.save_every == 0

    def stop_early(self) -> bool:
        return self.interrupt_at is not None and self.step == self.interrupt_at

    # ---- evaluate / save / finish ---------------------------------------------------------------
    def evaluate(self) -> dict:
        probs = predict_examples(self.head, self.valid_subset, self.cfg.features)
        res = TASK_EVALUATORS[self.cfg.task](probs, self.valid_subset)
        score = res["score"]
        self.log_metrics({"step": self.step, "epoch": self.epoch, "valid_subset_score": score,
                          "minutes": self.minutes()} | res["log"])
        log.info("eval step %d: valid-subset %s %.4f", self.step, res["name"], score)
        if score > self.best:
            self.best = score
            save_structure_model(self.head, self.structure_config(res.get("threshold", 0.5)), self.output / "best",
                                 metadata={"kind": self.kind, "step": self.step, "valid_subset_score": score})
        self.head.train()
        return res

    @property
    def kind(self) -> str:
        """The registry kind of the models this run writes."""
        return "contact" if self.cfg.task == "contact" else "ss"

    def save(self) -> None:
        trainer = {"step": self.step, "epoch": self.epoch, "best": self.best, "elapsed": self.minutes() * 60,
                   "pending": self.pending, "optimizer": self.opt.state_dict(),
                   "rng": training_state.capture_rng(self.streams)}
        config = self.structure_config(0.5)
        training_state.save_step(self.output / "checkpoints", self.step,
                                 lambda d: save_structure_model(self.head, config, d), trainer, keep=1)

    def finish(self) -> dict:
        """Score the best head on the full validation set (structure: choose the threshold there);
        write the final model and the summary."""
        cfg = self.cfg
        if getattr(self, "bar", None) is not None:
            self.bar.close()
        train_minutes = self.minutes()
        head = load_structure_model(self.output / "best").head
        probs = predict_examples(head, self.valid_set, cfg.features)
        meta = json.loads((self.output / "best" / "config.json").read_text()).get("metadata", {})
        summary = {"task": cfg.task, "train_records": len(self.train_set), "valid_records": len(self.valid_set),
                   "steps": self.step, "epochs": self.epoch, "train_minutes": round(train_minutes, 1),
                   "head_parameters": self.n_params, "best_step": meta.get("step")}
        if cfg.task == "contact":
            res = evaluate_contacts(probs, self.valid_set)
            threshold = 0.5
            summary |= {"valid_score": res["score"], "valid": res["metrics"]}
        else:
            grid = [round(t, 2) for t in np.arange(0.1, 0.91, 0.05)]
            res = evaluate_thresholds(probs, self.valid_set, grid, DecodeOptions())
            threshold = max(res, key=lambda t: res[t]["f1"])
            summary |= {"threshold": threshold, "valid": res[threshold],
                        "valid_by_threshold": {str(k): v["f1"] for k, v in res.items()}}
        summary["config"] = cfg.to_dict()
        save_structure_model(head, self.structure_config(threshold), self.output / "best",
                             metadata={"kind": self.kind, "description": cfg.description or "nucfm pair head",
                                       "default": False, "training": summary})
        from nucfm.paths import atomic_path

        with atomic_path(self.output / "valid_probs.npz") as tmp:
            np.savez_compressed(tmp, *[p.astype(np.float16) for p in probs])
        atomic_write_text(self.output / "summary.json", json.dumps(summary, indent=2) + "\n")
        log.info("done: %d steps in %.1f min; validation %s", self.step, train_minutes,
                 f"score {summary['valid_score']:.4f}" if cfg.task == "contact"
                 else f"macro F1 {res[threshold]['f1']:.4f} at threshold {threshold:.2f}")
        return summary


def train_structure(cfg: TrainStructureConfig, restart: bool = False, interrupt_at: int | None = None) -> dict | None:
    """Run (or resume) structure training; returns the summary (None when interrupted)."""
    return StructureRecipe(cfg, restart=restart, interrupt_at=interrupt_at).run()
