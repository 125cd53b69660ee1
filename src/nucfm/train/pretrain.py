"""Masked-LM pretraining loop for every nucfm architecture (RNA transformer, DNA ConvNet).

One process, or several under ``torchrun`` (DDP; gloo on CPU, nccl on GPU). fp32 on CPU, bf16
autocast on GPU. Every ``ckpt_every`` steps a checkpoint directory is written atomically
(written as ``step_N.tmp`` then renamed; ``latest`` is replaced last) holding the model
(``model.safetensors`` + ``config.json``) and ``trainer.pt`` (optimizer, scheduler, RNG states,
step and data position). Batches and masks are pure functions of (seed, step), so ``resume``
replays exactly the batches an uninterrupted run would have seen.

Run directory::

    OUTPUT/config.yaml       resolved config        OUTPUT/metrics.jsonl  one JSON object per log/eval
    OUTPUT/loss.png          loss curves            OUTPUT/data/          prepared corpus + baseline counts
    OUTPUT/checkpoints/      step_N/, latest        OUTPUT/final/         last model + mlm_counts.npz
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from nucfm.alphabet import get_alphabet
from nucfm.checkpoint import build_model, save_model, unwrap
from nucfm.data.collate import collate
from nucfm.data.corpus import (PREP_FILE, DnaBatches, Example, RnaBatches, TokenStore, prepare_dna, prepare_rna,
                               validation_examples)
from nucfm.data.masking import IGNORE, mask_tokens
from nucfm.errors import InputError
from nucfm.train.config import RunConfig, save_config

log = logging.getLogger("nucfm")
COUNTS_FILE = "mlm_counts.npz"


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


def lr_factor(step: int, cfg) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (1-based)."""
    w = max(1, cfg.warmup)
    if step < w:
        return step / w
    if cfg.schedule == "inverse_sqrt":
        return math.sqrt(w / step)
    progress = min(1.0, (step - w) / max(1, cfg.steps - w))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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
    batch = collate(alphabet, [e.ids for e in examples])
    g = torch.Generator().manual_seed(int(np.random.default_rng(step_seed).integers(2**62)))
    m = mask_tokens(batch.input_ids, alphabet, g, mask_prob=mask_prob)
    weight = None
    if any(e.weight is not None for e in examples):
        weight = torch.zeros(batch.input_ids.shape, dtype=torch.float32)
        for i, e in enumerate(examples):
            w = e.weight if e.weight is not None else np.ones(len(e.ids), np.float32)
            weight[i, batch.offset : batch.offset + len(e.ids)] = torch.from_numpy(np.ascontiguousarray(w))
        weight = weight.to(device)
    return (m.input_ids.to(device), batch.attention_mask.to(device), m.labels.to(device), weight,
            int(batch.attention_mask.sum()))


def prepare_data(cfg: RunConfig, prep_dir: Path, model_max_len: int | None) -> dict:
    """Prepare the corpus once (rank 0); later runs and resumes reuse ``prep_dir``."""
    if (prep_dir / PREP_FILE).exists():
        return json.loads((prep_dir / PREP_FILE).read_text())
    d = cfg.data
    tmp = prep_dir.with_name(prep_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if d.kind == "rna":
        if not d.fasta:
            raise InputError("data.fasta must list at least one RNA FASTA file")
        summary = prepare_rna(d.fasta, tmp, d.families, d.valid_fraction, d.min_len, cfg.train.seed)
    else:
        if not d.genome or not d.valid_region:
            raise InputError("a DNA run needs data.genome and data.valid_region (CHROM:START-END)")
        summary = prepare_dna(d.genome, tmp, d.valid_region, d.window, d.stride, d.min_acgt)
    if prep_dir.exists():
        shutil.rmtree(prep_dir)
    os.replace(tmp, prep_dir)
    return summary


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_checkpoint(ckpt_root: Path, step: int, model, opt, sched, position: dict, keep: int) -> Path:
    """Atomically write ``ckpt_root/step_N`` and point ``ckpt_root/latest`` at it."""
    name = f"step_{step:08d}"
    tmp = ckpt_root / (name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(unwrap(model), tmp)
    torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": _rng_state(), "data_position": position}, tmp / "trainer.pt")
    final = ckpt_root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = ckpt_root / "latest.tmp"
    pointer.write_text(name + "\n")
    os.replace(pointer, ckpt_root / "latest")
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp"))
    for p in old[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(output: Path) -> Path | None:
    pointer = output / "checkpoints" / "latest"
    if not pointer.exists():
        return None
    return output / "checkpoints" / pointer.read_text().strip()


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


def pretrain(cfg: RunConfig, resume: bool = False, interrupt_at: int | None = None) -> Path:
    """Run (or resume) masked-LM pretraining; returns the run directory.

    ``interrupt_at`` stops the process-level loop right after that step, as a crash would (used by
    the resume test); nothing after the last checkpoint survives but what is on disk.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    use_cuda = t.device == "cuda" or (t.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if t.batch_size % (world * t.accum):
        raise InputError(f"train.batch_size {t.batch_size} is not divisible by processes x accum = {world * t.accum}")

    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    prep_dir = Path(cfg.data.prepared) if cfg.data.prepared else output / "data"
    torch.manual_seed(t.seed)  # identical initial weights on every rank
    model = build_model(cfg.model)
    init_weights(model)
    if t.init_from and not resume:
        load_initial_weights(model, t.init_from)
    if getattr(model.config, "alphabet", None) != {"rna": "rna-fm", "dna": "gpn"}[cfg.data.kind]:
        raise InputError(f"data.kind {cfg.data.kind} does not match the model alphabet {model.config.alphabet!r}")
    if rank == 0:
        summary = prepare_data(cfg, prep_dir, model.max_len)
        save_config(cfg, output / "config.yaml")
    if world > 1:
        dist.barrier()
    summary = json.loads((prep_dir / PREP_FILE).read_text())
    alphabet = get_alphabet(model.config.alphabet)

    if cfg.data.kind == "rna":
        batches = RnaBatches(TokenStore(prep_dir / "train"), model.max_len, t.batch_size, t.seed)
        valid = validation_examples(prep_dir, "rna", model.max_len, None, t.eval_size, t.seed)
    else:
        batches = DnaBatches(TokenStore(prep_dir / "genome"), np.load(prep_dir / "train.starts.npy"),
                             summary["window"], t.batch_size, t.seed, cfg.data.rc_augment, cfg.data.soft_mask_weight)
        valid = validation_examples(prep_dir, "dna", None, summary["window"], t.eval_size, t.seed)

    model.to(device).train()
    objective = MLMObjective(model)
    if world > 1:
        objective = nn.parallel.DistributedDataParallel(objective, device_ids=[device.index] if use_cuda else None)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=t.lr, betas=t.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, t))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_cuda else nullcontext

    start = 0
    metrics_path = output / "metrics.jsonl"
    if resume:
        ckpt = latest_checkpoint(output)
        if ckpt is None:
            raise InputError(f"--resume: no checkpoint under {output / 'checkpoints'}")
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(ckpt / "model.safetensors")), strict=True)
        state = torch.load(ckpt / "trainer.pt", weights_only=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start = state["step"]
        if rank == 0 and metrics_path.exists():  # forget what was logged after the checkpoint
            kept = [l for l in metrics_path.read_text().splitlines() if json.loads(l)["step"] <= start]
            metrics_path.write_text("".join(l + "\n" for l in kept))
        log.info("resumed from %s (step %d, epoch %d)", ckpt, start, state["data_position"]["epoch"])
    elif rank == 0 and metrics_path.exists():
        metrics_path.unlink()

    n_params = sum(p.numel() for p in model.parameters())
    if rank == 0:
        log.info("%s: %.2fM parameters, %d training items, %d steps of %d on %s x%d", cfg.model["architecture"],
                 n_params / 1e6, batches.n_items, t.steps, t.batch_size, device, world)
    from tqdm.auto import tqdm

    bar = tqdm(total=t.steps, initial=start, disable=rank != 0, unit="step", dynamic_ncols=True)
    t0, tokens_window = time.time(), 0
    loss_window, n_window = 0.0, 0
    for step in range(start, t.steps):
        opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for micro in range(t.accum):
            examples = batches.micro_batch(step, rank, world, micro, t.accum)
            ids, am, labels, weight, ntok = make_batch(alphabet, examples, [t.seed, step, rank * t.accum + micro, 0],
                                                       t.mask_prob, device)
            sync = world > 1 and micro < t.accum - 1
            with objective.no_sync() if sync else nullcontext():
                with autocast():
                    logits = objective(ids, am)
                loss, _, _, _ = masked_loss(logits, labels, weight)
                (loss / t.accum).backward()
            step_loss += loss.item() / t.accum
            tokens_window += ntok
        if world > 1:  # log the global mean loss, not rank 0's share
            lt = torch.tensor([step_loss], dtype=torch.float64)
            dist.all_reduce(lt)
            step_loss = float(lt) / world
        if t.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
        opt.step()
        sched.step()
        done = step + 1
        loss_window += step_loss
        n_window += 1
        bar.update(1)
        if rank == 0 and (done % t.log_every == 0 or done == t.steps):
            dt = time.time() - t0
            tps = tokens_window * world / max(dt, 1e-9)
            rec = {"step": done, "loss": loss_window / n_window, "lr": sched.get_last_lr()[0],
                   "tokens_per_s": tps, "epoch": batches.position(step)["epoch"], "time": time.time()}
            with open(metrics_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            bar.set_postfix(loss=f"{rec['loss']:.4f}", tok_s=f"{tps:,.0f}")
            t0, tokens_window, loss_window, n_window = time.time(), 0, 0.0, 0
        if done % t.eval_every == 0 or done == t.steps:
            if rank == 0:
                ev = evaluate(objective.module if world > 1 else objective, alphabet, valid,
                              max(1, t.batch_size // world // t.accum), t.mask_prob, t.seed, device, autocast)
                with open(metrics_path, "a") as f:
                    f.write(json.dumps({"step": done, **ev}) + "\n")
                bar.write(f"step {done}: val loss {ev['val_loss']:.4f} acc {ev['val_acc']:.4f} ppl {ev['val_ppl']:.3f}")
                _plot(output)
            if world > 1:
                dist.barrier()
        if done % t.ckpt_every == 0 or done == t.steps:
            if rank == 0:
                save_checkpoint(output / "checkpoints", done, model, opt, sched, batches.position(done),
                                t.keep_ckpts)
            if world > 1:
                dist.barrier()
        if interrupt_at is not None and done == interrupt_at:
            bar.close()
            return output
    bar.close()
    if rank == 0:
        final = output / "final"
        save_model(unwrap(model), final, metadata={"training_run": str(output), "steps": t.steps})
        shutil.copy(prep_dir / "counts.npz", final / COUNTS_FILE)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return output


def _plot(output: Path) -> None:
    try:
        from nucfm.analysis.training import plot_loss_curve

        plot_loss_curve(output / "metrics.jsonl", output / "loss.png")
    except Exception as e:  # a plotting failure must never stop training
        log.warning("could not plot the loss curve: %s", e)
