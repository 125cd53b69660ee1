"""Masked-LM pretraining loop for every nucfm architecture (RNA transformer, DNA ConvNet).

One process, or several under ``torchrun`` (DDP; gloo on CPU, nccl on GPU). fp32 on CPU, bf16
autocast on GPU. A recipe (:class:`PretrainRecipe`, the steps of :mod:`nucfm.train.recipe`).
Every ``ckpt_every`` steps a training checkpoint is written atomically
(:mod:`nucfm.checkpoint.training_state`: the model, optimizer, scheduler, RNG states, step and
data position). Batches and masks are pure functions of (seed, step), so a resumed run replays
exactly the batches an uninterrupted run would have seen. Rerunning the same config into the
same output resumes; a different config there is refused; ``--restart`` starts over.

Run directory::

    OUTPUT/config.yaml       resolved config        OUTPUT/metrics.jsonl  one JSON object per log/eval
    OUTPUT/loss.png          loss curves            OUTPUT/data/          prepared corpus + baseline counts
    OUTPUT/checkpoints/      step_N/, latest        OUTPUT/final/         last model + mlm_counts.npz
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nucfm import distributed
from nucfm.alphabet import get_alphabet
from nucfm.checkpoint import COUNTS_FILE, build_model, read_weights, save_model, training_state, unwrap
from nucfm.data.collate import collate
from nucfm.data.corpus import (
    PREP_FILE,
    DnaBatches,
    Example,
    RnaBatches,
    TokenStore,
    prepare_dna,
    prepare_rna,
    validation_examples,
)
from nucfm.data.masking import IGNORE, mask_tokens
from nucfm.errors import InputError
from nucfm.inference import to_device
from nucfm.paths import atomic_path
from nucfm.train.config import RunConfig, save_config
from nucfm.train.recipe import Recipe
from nucfm.train.schedule import lr_factor

log = logging.getLogger("nucfm")


class MLMObjective(nn.Module):
    """Wraps a model so DDP sees ``forward`` (``module`` keeps :func:`unwrap` working)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.module.token_logits(input_ids, attention_mask)


def init_weights(model: nn.Module, std: float = 0.02) -> None:
    """BERT / fairseq initialisation for a fresh run: Linear and Embedding weights N(0, std),
    biases and padding rows zero. PyTorch's defaults give embeddings of unit scale, which with
    a tied LM head start the loss near 20 nats instead of ln(V)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()


def load_initial_weights(model: nn.Module, source: str) -> None:
    """Copy the weights of ``source`` (anything :func:`nucfm.load_model` takes) into ``model``;
    the architectures must match exactly (same config), or the run stops with the difference."""
    from nucfm.checkpoint import load_model

    src = load_model(source)
    mine, theirs = model.config.to_dict(), src.config.to_dict()
    diff = {k: (theirs.get(k), mine.get(k)) for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)}
    if diff:
        raise InputError(f"train.init_from {source}: its config differs from the run's model config "
                         f"(key: theirs, ours): {diff}")
    model.load_state_dict(src.state_dict(), strict=True)


def schedule_factor(step: int, t, progress: float | None = None) -> float:
    """The run's learning-rate multiplier after ``step`` optimizer steps (``progress``: the
    fraction of ``train.max_minutes`` spent, for a time-budgeted cosine run)."""
    return lr_factor(step, t.warmup, t.schedule, total=t.steps, min_ratio=t.min_lr_ratio, progress=progress)


def train_flops_per_token(model: nn.Module, seq_len: int) -> float:
    """Model FLOPs of one training step per token of a length-``seq_len`` row: forward + backward
    = 3 x the forward's matrix work (:meth:`matmul_flops` of the model: convolutions or attention
    projections and products, feed-forward and head; element-wise work not counted). The PaLM
    convention of model FLOPs utilisation: recomputation and padding are not useful work. A model
    without that count is taken as 6 x its parameters per token."""
    if hasattr(model, "matmul_flops"):
        return 3.0 * model.matmul_flops(seq_len) / seq_len
    return 6.0 * sum(p.numel() for p in model.parameters())


def matmul_peak(device: torch.device, dtype: torch.dtype | None = None, size: int | None = None,
                reps: int = 5, clock=time.perf_counter) -> float:
    """Measured dense matrix-product rate (FLOP/s) of ``device``, the best of ``reps`` square
    products after two warm-ups: the ceiling that model FLOPs utilisation is stated against (bf16
    on CUDA, fp32 on the CPU, by default). ``clock``: e.g. ``time.process_time`` on a shared CPU."""
    cuda = device.type == "cuda"
    dtype = dtype or (torch.bfloat16 if cuda else torch.float32)
    n = size or (8192 if cuda else 1024)
    with torch.random.fork_rng(devices=[device] if cuda else []):  # the run's random stream stays untouched
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = clock()
        a @ b
        if cuda:
            torch.cuda.synchronize(device)
        best = min(best, clock() - t0)
    return 2.0 * n**3 / best


class StepBatches(torch.utils.data.Dataset):
    """Optimizer step -> this process's micro-batches as CPU tensors. Batches and masks are pure
    functions of (seed, step), so data-loader workers build them in any order and a resumed run
    reads exactly what an uninterrupted one would."""

    def __init__(self, batches, alphabet, t, rank: int, world: int):
        self.batches, self.alphabet, self.t, self.rank, self.world = batches, alphabet, t, rank, world

    def __len__(self) -> int:
        return self.t.steps

    def __getitem__(self, step: int):
        t = self.t
        return step, [cpu_batch(self.alphabet, self.batches.micro_batch(step, self.rank, self.world, micro, t.accum),
                                [t.seed, step, self.rank * t.accum + micro, 0], t.mask_prob)
                      for micro in range(t.accum)]


def masked_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None):
    """Weighted cross-entropy over selected positions: (loss, sum of weights, correct, count)."""
    sel = labels != IGNORE
    lg = logits[sel].float()
    y = labels[sel]
    ce = F.cross_entropy(lg, y, reduction="none")
    w = weight[sel] if weight is not None else torch.ones_like(ce)
    wsum = w.sum()
    loss = (ce * w).sum() / wsum.clamp_min(1e-8)
    correct = (lg.argmax(-1) == y).sum()
    return loss, ce.sum().detach(), correct, sel.sum()


def make_batch(alphabet, examples: list[Example], step_seed: list[int], mask_prob: float, device):
    """Collate, mask with a generator seeded by ``step_seed``; returns tensors on ``device``."""
    return batch_to(cpu_batch(alphabet, examples, step_seed, mask_prob), device)


def batch_to(batch: tuple, device) -> tuple:
    """A :func:`cpu_batch` on ``device`` (:func:`nucfm.inference.to_device`: non-blocking from
    the data loader's pinned memory)."""
    ids, am, labels, weight, ntok = batch
    return (to_device(ids, device), to_device(am, device), to_device(labels, device),
            to_device(weight, device) if weight is not None else None, ntok)


def cpu_batch(alphabet, examples: list[Example], step_seed: list[int], mask_prob: float) -> tuple:
    """Collate and mask on the CPU: (input_ids, attention_mask, labels, weight or None, tokens).
    A pure function of its arguments, so data-loader workers may build it."""
    batch = collate(alphabet, [e.ids for e in examples])
    g = torch.Generator().manual_seed(int(np.random.default_rng(step_seed).integers(2**62)))
    m = mask_tokens(batch.input_ids, alphabet, g, mask_prob=mask_prob)
    weight = None
    if any(e.weight is not None for e in examples):
        weight = torch.zeros(batch.input_ids.shape, dtype=torch.float32)
        for i, e in enumerate(examples):
            w = e.weight if e.weight is not None else np.ones(len(e.ids), np.float32)
            weight[i, batch.offset : batch.offset + len(e.ids)] = torch.from_numpy(np.ascontiguousarray(w))
    return m.input_ids, batch.attention_mask, m.labels, weight, int(batch.attention_mask.sum())


def prepare_data(cfg: RunConfig, prep_dir: Path) -> dict:
    """Prepare the corpus once (rank 0), atomically; later runs and resumes reuse ``prep_dir``
    while the data settings that made it are unchanged."""
    d = cfg.data
    source = json.loads(json.dumps(dataclasses.asdict(d) | {"seed": cfg.train.seed}))
    if (prep_dir / PREP_FILE).exists():
        done = json.loads((prep_dir / PREP_FILE).read_text())
        if done.get("source", source) == source:
            return done
        log.info("the data settings changed since %s was prepared: preparing again", prep_dir)
    if d.kind == "rna" and not d.fasta:
        raise InputError("data.fasta must list at least one RNA FASTA file")
    if d.kind == "dna" and (not d.genomes() or not d.valid_region):
        raise InputError("a DNA run needs data.genome and data.valid_region (CHROM:START-END)")
    prep_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(prep_dir, directory=True) as tmp:
        if d.kind == "rna":
            summary = prepare_rna(d.fasta, tmp, d.families, d.valid_fraction, d.min_len, cfg.train.seed)
        else:
            summary = prepare_dna(d.genomes(), tmp, d.valid_region, d.window, d.stride, d.min_acgt,
                                  d.exclude_regions)
        summary["source"] = source
        (tmp / PREP_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


@torch.no_grad()
def evaluate(model, alphabet, examples: list[Example], batch_size: int, mask_prob: float, seed: int, device,
             autocast) -> dict:
    """Validation loss (unweighted), masked-token accuracy and perplexity on a fixed mask."""
    model.eval()
    ce_sum, correct, count = 0.0, 0, 0
    for b in range(0, len(examples), batch_size):
        ids, am, labels, _, _ = make_batch(alphabet, examples[b : b + batch_size], [seed, 99, b], mask_prob, device)
        with autocast():
            logits = model(ids, am)
        _, ce, c, n = masked_loss(logits, labels, None)
        ce_sum += float(ce)
        correct += int(c)
        count += int(n)
    model.train()
    loss = ce_sum / max(count, 1)
    return {"val_loss": loss, "val_acc": correct / max(count, 1), "val_ppl": math.exp(loss), "val_tokens": count}


# Keys a rerun may change and still resume: how long and how often, not what is learned.
RESUMABLE_CHANGES = {"train.steps", "train.threads", "train.device", "train.log_every", "train.eval_every",
                     "train.ckpt_every", "train.keep_ckpts", "train.workers", "train.compile"}


class PretrainRecipe(Recipe):
    """Masked-LM pretraining (see the module docstring); ``run()`` returns the run directory."""

    def __init__(self, cfg: RunConfig, resume: bool | None = None, restart: bool = False,
                 interrupt_at: int | None = None):
        self.cfg = cfg
        self.t = cfg.train
        self.resume = resume
        self.restart = restart
        self.interrupt_at = interrupt_at
        self.output = Path(cfg.output)

    # ---- setup --------------------------------------------------------------------------------
    def setup(self) -> None:
        t = self.t
        self.ctx = distributed.setup()
        self.is_main = self.ctx.is_main
        if t.threads:
            torch.set_num_threads(t.threads)
        self.device = self.ctx.device(t.device)
        self.use_cuda = self.device.type == "cuda"
        world = self.ctx.world
        if t.batch_size % (world * t.accum):
            raise InputError(f"train.batch_size {t.batch_size} is not divisible by processes x accum = "
                             f"{world * t.accum}")
        self.resuming = self._decide_resume()
        self.output.mkdir(parents=True, exist_ok=True)
        self.prep_dir = Path(self.cfg.data.prepared) if self.cfg.data.prepared else self.output / "data"

    def _decide_resume(self) -> bool:
        resuming = self.decide_resume(self.cfg.to_dict(), self.output / "config.yaml", RESUMABLE_CHANGES,
                                      ("checkpoints", "final", "metrics.jsonl", "loss.png", "config.yaml"),
                                      restart=self.restart, insist=bool(self.resume))
        distributed.barrier(self.ctx)
        return resuming

    # ---- build --------------------------------------------------------------------------------
    def build(self) -> None:
        cfg, t = self.cfg, self.t
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.model = build_model(cfg.model)
        init_weights(self.model)
        if t.init_from and not self.resuming:
            load_initial_weights(self.model, t.init_from)
        if getattr(self.model.config, "alphabet", None) != {"rna": "rna-fm", "dna": "gpn"}[cfg.data.kind]:
            raise InputError(f"data.kind {cfg.data.kind} does not match the model alphabet "
                             f"{self.model.config.alphabet!r}")
        if self.is_main:
            prepare_data(cfg, self.prep_dir)
            save_config(cfg, self.output / "config.yaml")
        distributed.barrier(self.ctx)
        self.data_summary = json.loads((self.prep_dir / PREP_FILE).read_text())
        self.alphabet = get_alphabet(self.model.config.alphabet)
        self.batches, self.valid = self._data()

        self.model.to(self.device).train()
        self.objective = MLMObjective(self.model)
        if self.ctx.world > 1:
            self.objective = nn.parallel.DistributedDataParallel(
                self.objective, device_ids=[self.device.index] if self.use_cuda else None)
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim < 2]
        # fused AdamW: one kernel for all parameters on the GPU (the foreach loop on the CPU)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=t.lr, betas=t.betas,
                                     fused=self.use_cuda or None)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: schedule_factor(s, t, self.time_progress()))
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if self.use_cuda else nullcontext
        if self.use_cuda:
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 work left outside autocast
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True  # fixed window shapes: autotuned convolutions pay
        self.forward = torch.compile(self.objective) if t.compile else self.objective
        seq = self.data_summary.get("window") or self.model.max_len
        self.flops_per_token = train_flops_per_token(self.model, seq)
        self.peak = matmul_peak(self.device) if self.is_main else 0.0

    def _data(self):
        t, prep = self.t, self.prep_dir
        if self.cfg.data.kind == "rna":
            batches = RnaBatches(TokenStore(prep / "train"), self.model.max_len, t.batch_size, t.seed)
            valid = validation_examples(prep, "rna", self.model.max_len, None, t.eval_size, t.seed)
        else:
            window = self.data_summary["window"]
            batches = DnaBatches(TokenStore(prep / "genome"), np.load(prep / "train.starts.npy"), window,
                                 t.batch_size, t.seed, self.cfg.data.rc_augment, self.cfg.data.soft_mask_weight)
            valid = validation_examples(prep, "dna", None, window, t.eval_size, t.seed)
        return batches, valid

    # ---- resume -------------------------------------------------------------------------------
    def maybe_resume(self) -> None:
        metrics_path = self.output / "metrics.jsonl"
        if self.resuming:
            ckpt = training_state.latest(self.output / "checkpoints")
            self.model.load_state_dict(read_weights(ckpt), strict=True)
            state = training_state.load_training_state(ckpt)
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            training_state.restore_rng(state["rng"])
            self.step = state["step"]
            self.elapsed_before = float(state.get("elapsed", 0.0))
            if self.is_main and metrics_path.exists():  # forget what was logged after the checkpoint
                kept = [ln for ln in metrics_path.read_text().splitlines() if json.loads(ln)["step"] <= self.step]
                metrics_path.write_text("".join(ln + "\n" for ln in kept))
            log.info("resumed from %s (step %d, epoch %d)", ckpt, self.step, state["data_position"]["epoch"])
        elif self.is_main and metrics_path.exists():
            metrics_path.unlink()
        if self.is_main:
            n_params = sum(p.numel() for p in self.model.parameters())
            log.info("%s: %.2fM parameters, %d training items, %d steps of %d on %s x%d",
                     self.cfg.model["architecture"], n_params / 1e6, self.batches.n_items, self.t.steps,
                     self.t.batch_size, self.device, self.ctx.world)
        from nucfm.progress import bar as progress_bar

        self.loader = iter(torch.utils.data.DataLoader(
            StepBatches(self.batches, self.alphabet, self.t, self.ctx.rank, self.ctx.world), batch_size=None,
            sampler=range(self.step, self.t.steps), num_workers=self.t.workers, pin_memory=self.use_cuda,
            prefetch_factor=4 if self.t.workers else None, persistent_workers=False,
            generator=torch.Generator()))  # its own seed draw: the global stream (dropout) is the run's
        if self.is_main:
            log.info("%.3g model FLOPs per token; measured matmul peak of %s: %.1f TFLOP/s", self.flops_per_token,
                     self.device, self.peak / 1e12)
        if self.is_main and self.t.max_minutes:
            log.info("training for %g minutes (or %d steps, whichever comes first)", self.t.max_minutes, self.t.steps)
        # a time-budgeted run has no step total worth an ETA (train.steps is only a bound there)
        self.bar = progress_bar(total=None if self.t.max_minutes else self.t.steps, initial=self.step,
                                enabled=self.is_main, unit="step", desc="pretrain")
        self.t0, self.tokens_window, self.loss_window, self.n_window = time.time(), 0, 0.0, 0
        self.loop_start = time.time() - self.elapsed_before  # the time budget counts from here

    # ---- one step -----------------------------------------------------------------------------
    def train_step(self, step: int) -> dict:
        t, world = self.t, self.ctx.world
        self.opt.zero_grad(set_to_none=True)
        step_loss, ntok_total = 0.0, 0
        loaded_step, micro_batches = next(self.loader)
        assert loaded_step == step, (loaded_step, step)
        for micro in range(t.accum):
            ids, am, labels, weight, ntok = batch_to(micro_batches[micro], self.device)
            sync = world > 1 and micro < t.accum - 1
            with self.objective.no_sync() if sync else nullcontext():
                with self.autocast():
                    logits = self.forward(ids, am)
                loss, _, _, _ = masked_loss(logits, labels, weight)
                (loss / t.accum).backward()
            step_loss += loss.item() / t.accum
            ntok_total += ntok
        step_loss = distributed.all_sum(step_loss, self.ctx) / world  # the global mean, not rank 0's share
        if t.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip)
        self.opt.step()
        self.sched.step()
        return {"loss": step_loss, "tokens": ntok_total}

    def on_step_end(self, metrics: dict) -> None:
        t = self.t
        self.loss_window += metrics["loss"]
        self.n_window += 1
        self.tokens_window += metrics["tokens"]
        self.bar.update(1)
        if self.step % t.log_every == 0 or self.step == t.steps:
            dt = time.time() - self.t0
            tps = self.tokens_window * self.ctx.world / max(dt, 1e-9)
            rec = {"step": self.step, "loss": self.loss_window / self.n_window, "lr": self.sched.get_last_lr()[0],
                   "tokens_per_s": tps, "mfu": tps * self.flops_per_token / self.peak if self.peak else None,
                   "epoch": self.batches.position(self.step - 1)["epoch"], "time": time.time(),
                   "minutes": self.elapsed() / 60}
            self.log_metrics(rec)
            self.bar.set_postfix(loss=f"{rec['loss']:.4f}", tok_s=f"{tps:,.0f}")
            self.t0, self.tokens_window, self.loss_window, self.n_window = time.time(), 0, 0.0, 0

    # ---- cadence ------------------------------------------------------------------------------
    def done(self) -> bool:
        return self.step >= self.t.steps or self.out_of_time()

    # ---- time budget (train.max_minutes) --------------------------------------------------------
    elapsed_before = 0.0  # training seconds of the run before this process (resume)
    loop_start = None

    def elapsed(self) -> float:
        return 0.0 if self.loop_start is None else time.time() - self.loop_start

    def out_of_time(self) -> bool:
        """True once ``train.max_minutes`` of training time are spent (the same on every rank)."""
        if not self.t.max_minutes:
            return False
        over = self.elapsed() >= self.t.max_minutes * 60
        return bool(distributed.all_sum(float(over), self.ctx)) if self.ctx.world > 1 else over

    def time_progress(self) -> float | None:
        """The fraction of the time budget spent: drives the cosine decay of a time-budgeted run."""
        if not self.t.max_minutes or self.t.schedule != "cosine":
            return None
        return min(1.0, self.elapsed() / (self.t.max_minutes * 60))

    def eval_due(self) -> bool:
        return self.step % self.t.eval_every == 0

    def save_due(self) -> bool:
        return self.step % self.t.ckpt_every == 0

    def stop_early(self) -> bool:
        if self.interrupt_at is not None and self.step == self.interrupt_at:
            self.bar.close()
            return True
        return False

    # ---- evaluate / save / finish ---------------------------------------------------------------
    def evaluate(self) -> dict:
        t, world = self.t, self.ctx.world
        ev: dict = {}
        if self.is_main:
            ev = evaluate(self.objective.module if world > 1 else self.objective, self.alphabet, self.valid,
                          max(1, t.batch_size // world // t.accum), t.mask_prob, t.seed, self.device, self.autocast)
            self.log_metrics({"step": self.step, **ev})
            self.bar.write(f"step {self.step}: val loss {ev['val_loss']:.4f} acc {ev['val_acc']:.4f} "
                           f"ppl {ev['val_ppl']:.3f}")
            _plot(self.output)
        distributed.barrier(self.ctx)
        return ev

    def save(self) -> None:
        if self.is_main:
            trainer = {"step": self.step, "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                       "rng": training_state.capture_rng(), "data_position": self.batches.position(self.step),
                       "elapsed": self.elapsed()}
            training_state.save_step(self.output / "checkpoints", self.step,
                                     lambda d: save_model(unwrap(self.model), d), trainer, self.t.keep_ckpts)
        distributed.barrier(self.ctx)

    def finish(self) -> Path:
        self.bar.close()
        if self.is_main:
            final = self.output / "final"
            save_model(unwrap(self.model), final, metadata={"training_run": str(self.output), "steps": self.step})
            shutil.copy(self.prep_dir / "counts.npz", final / COUNTS_FILE)
        distributed.teardown(self.ctx)
        return self.output


def pretrain(cfg: RunConfig, resume: bool | None = None, restart: bool = False,
             interrupt_at: int | None = None) -> Path:
    """Run (or resume) masked-LM pretraining; returns the run directory.

    Rerunning the same config into the same output resumes from its latest checkpoint; a
    different config there is refused (``restart=True`` starts over); ``resume=True`` insists on
    resuming. ``interrupt_at`` stops right after that step, as a crash would (resume tests).
    """
    return PretrainRecipe(cfg, resume=resume, restart=restart, interrupt_at=interrupt_at).run() or Path(cfg.output)


def _plot(output: Path) -> None:
    try:
        from nucfm.analysis.training import plot_loss_curve

        plot_loss_curve(output / "metrics.jsonl", output / "loss.png")
    except Exception as e:  # a plotting failure must never stop training
        log.warning("could not plot the loss curve: %s", e)
