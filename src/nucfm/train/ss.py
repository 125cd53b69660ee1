"""``nucfm train-ss``: train a pair head for RNA secondary structure.

Train on a structure file (bpRNA TR0 by default), pick the checkpoint and the decoding threshold
on a validation file (VL0). The language model is frozen: its embeddings are computed once and
cached (:mod:`nucfm.train.ss_cache`), as are the ViennaRNA bpp maps. Batches hold sequences of
similar length (at most ``batch_pairs`` L² pairs each); sequences longer than ``crop`` are cut to a
random ``crop``-residue window (the 2D head is translation-equivariant, so this only loses
pairs spanning more than ``crop``). Loss: binary cross-entropy over the pairs ``i < j``.

Resumable: ``OUT/train_state.pt`` (head, optimizer, step, RNG, best score) is written atomically
every ``save_every`` steps; rerunning the same command continues from it. The best checkpoint
(macro F1 on the validation subset) is ``OUT/best/``, a self-describing structure model.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from nucfm.models.config import from_dict_strict
from nucfm.io.structure import StructureRecord, read_structures
from nucfm.metrics import macro_average, score_pairs
from nucfm.models.heads import PairHead, PairHeadConfig
from nucfm.tasks.structure import (
    BPP_PARAMS,
    FEATURE_CHANNELS,
    DecodeOptions,
    StructureConfig,
    decode_structure,
    onehot_outer,
)

log = logging.getLogger("nucfm")

DEFAULT_DATA = Path("../shared/data/ss/bprna")


@dataclass
class TrainSSConfig:
    train: str = str(DEFAULT_DATA / "TR0.dbn")
    valid: str = str(DEFAULT_DATA / "VL0.dbn")
    output: str = "runs/ss"
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
    pos_weight: float = 1.0
    max_steps: int = 100_000
    max_minutes: float = 40.0
    eval_every: int = 300
    eval_subset: int = 300  # validation sequences used for checkpoint choice during training
    save_every: int = 100
    threads: int = 2
    seed: int = 0
    limit_train: int = 0  # use only the first N training records (0 = all; for smoke tests)
    description: str = ""

    def __post_init__(self):
        self.features = tuple(self.features)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSSConfig":
        return from_dict_strict(cls, d, "train-ss option")


@dataclass
class Example:
    seq: str
    pairs: list
    bpp: dict | None = None  # feature name -> sparse (idx, val) ViennaRNA map
    emb: np.ndarray | None = None  # (L, D) float16 frozen LM embeddings
    id: str = ""


def _load_split(path: str, cfg: TrainSSConfig, lm, limit: int = 0) -> list[Example]:
    from nucfm.tasks.structure import bpp_to_sparse
    from nucfm.train.ss_cache import bpp_maps, lm_embeddings

    recs: list[StructureRecord] = [r for r in read_structures(path) if len(r.seq) > 0]
    if limit:
        recs = recs[:limit]
    seqs = [r.seq for r in recs]
    bpps: list[dict] = [{} for _ in recs]
    for f in cfg.features:
        if f in BPP_PARAMS:
            for d, b in zip(bpps, bpp_maps(seqs, params=BPP_PARAMS[f])):
                d[f] = bpp_to_sparse(b)
    embs = lm_embeddings(lm, cfg.lm, seqs, cfg.lm_layer) if lm is not None else [None] * len(recs)
    return [Example(r.seq, r.pairs, b, e, r.id) for r, b, e in zip(recs, bpps, embs)]


def make_batch(examples: list[Example], features: tuple[str, ...], crop: int | None, rng: random.Random):
    """Padded tensors for a list of examples: embeddings (B, L, D) or None, pair features
    (B, C, L, L) or None, labels (B, L, L), mask (B, L)."""
    from nucfm.tasks.structure import sparse_to_bpp

    windows = []
    for ex in examples:
        L = len(ex.seq)
        if crop and L > crop:
            s = rng.randrange(0, L - crop + 1)
            windows.append((s, s + crop))
        else:
            windows.append((0, L))
    Lmax = max(e - s for s, e in windows)
    B = len(examples)
    C = sum(FEATURE_CHANNELS[f] for f in features)
    feats = torch.zeros(B, C, Lmax, Lmax) if C else None
    labels = torch.zeros(B, Lmax, Lmax)
    mask = torch.zeros(B, Lmax, dtype=torch.bool)
    embs = None
    if examples[0].emb is not None:
        embs = torch.zeros(B, Lmax, examples[0].emb.shape[1])
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
            elif f in BPP_PARAMS:
                idx, val = ex.bpp[f]
                full = sparse_to_bpp(idx.astype(np.int64), val, len(ex.seq))
                feats[b, c, :L, :L] = torch.from_numpy(full[s:e, s:e])
            c += FEATURE_CHANNELS[f]
        if embs is not None:
            embs[b, :L] = torch.from_numpy(ex.emb[s:e].astype(np.float32))
    return embs, feats, labels, mask


def length_batches(lengths: list[int], batch_pairs: int, crop: int | None, rng: random.Random | None) -> list[list[int]]:
    """Indices in batches of similar length with at most ``batch_pairs`` padded pairs each;
    shuffled within near-equal lengths and across batches when ``rng`` is given."""
    eff = [min(L, crop) if crop else L for L in lengths]
    if rng is not None:
        keys = [(e, rng.random()) for e in eff]
    else:
        keys = [(e, 0) for e in eff]
    order = sorted(range(len(lengths)), key=lambda i: keys[i])
    batches, cur = [], []
    for i in order:
        if cur and (len(cur) + 1) * eff[i] ** 2 > batch_pairs:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def pair_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """Mean BCE over real pairs i < j. logits, labels: (B, L, L); mask: (B, L)."""
    L = logits.shape[1]
    m = (mask[:, :, None] & mask[:, None, :]) & torch.ones(L, L, dtype=torch.bool).triu(1)
    pw = torch.tensor(pos_weight) if pos_weight != 1.0 else None
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[m], labels[m], pos_weight=pw)
    return loss


@torch.no_grad()
def predict_examples(head: PairHead, examples: list[Example], features: tuple[str, ...],
                     batch_pairs: int = 4 * 256 * 256) -> list[np.ndarray]:
    """Full-length (L, L) probabilities for each example, batched by length."""
    head.eval()
    out: list[np.ndarray | None] = [None] * len(examples)
    for idx in length_batches([len(e.seq) for e in examples], batch_pairs, None, None):
        embs, feats, _, mask = make_batch([examples[i] for i in idx], features, None, random.Random(0))
        probs = torch.sigmoid(head(embs, feats, mask))
        for row, i in enumerate(idx):
            L = len(examples[i].seq)
            out[i] = probs[row, :L, :L].numpy()
    return out  # type: ignore[return-value]


def evaluate(probs: list[np.ndarray], examples: list[Example], thresholds, opts: DecodeOptions
             ) -> dict[float, dict]:
    """Macro P/R/F1/MCC on ``examples`` for each threshold."""
    import dataclasses

    res = {}
    for t in thresholds:
        o = dataclasses.replace(opts, threshold=float(t))
        scores = [score_pairs(decode_structure(p, e.seq, o), e.pairs, len(e.seq)) for p, e in zip(probs, examples)]
        res[float(t)] = macro_average(scores)
    return res


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_ss(cfg: TrainSSConfig) -> dict:
    """Run (or resume) a training run; returns the summary written to ``OUT/summary.json``."""
    from nucfm.checkpoint import load_model
    from nucfm.checkpoint.ss_head import save_structure_model

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    lm = load_model(cfg.lm) if cfg.lm else None
    D = lm.hidden_size if lm is not None else 0
    t0 = time.time()
    train = _load_split(cfg.train, cfg, lm, cfg.limit_train)
    valid = _load_split(cfg.valid, cfg, lm)
    log.info("data: %d train, %d valid sequences; features ready in %.0f s", len(train), len(valid), time.time() - t0)
    rng_sub = random.Random(1234)
    valid_sub = rng_sub.sample(valid, min(cfg.eval_subset, len(valid))) if cfg.eval_subset else valid

    head_cfg = PairHeadConfig(embed_dim=D, reduction=cfg.reduction, channels=cfg.channels, blocks=cfg.blocks,
                              dropout=cfg.dropout, extra_channels=sum(FEATURE_CHANNELS[f] for f in cfg.features))
    torch.manual_seed(cfg.seed)
    head = PairHead(head_cfg)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state_path = out / "train_state.pt"
    rng = random.Random(cfg.seed)
    step, epoch, best, elapsed, pending = 0, 0, -1.0, 0.0, []
    if state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=False)  # our own file, written below
        head.load_state_dict(st["head"])
        opt.load_state_dict(st["opt"])
        step, epoch, best, elapsed, pending = st["step"], st["epoch"], st["best"], st["elapsed"], st["pending"]
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        log.info("resumed from step %d (best valid F1 %.4f)", step, best)
    n_params = sum(p.numel() for p in head.parameters())
    log.info("head: %s, %d parameters", head_cfg, n_params)
    opts = DecodeOptions()
    lengths = [len(e.seq) for e in train]
    log_f = open(out / "log.jsonl", "a")
    start_wall = time.time() - elapsed
    total_steps_est = cfg.max_steps

    def lr_at(s: int) -> float:
        warm = 100
        if s < warm:
            return cfg.lr * (s + 1) / warm
        frac = min(1.0, (time.time() - start_wall) / (cfg.max_minutes * 60)) if cfg.max_minutes else s / total_steps_est
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))

    def save_state():
        _atomic_torch_save({"head": head.state_dict(), "opt": opt.state_dict(), "step": step, "epoch": epoch,
                            "best": best, "elapsed": time.time() - start_wall, "pending": pending,
                            "rng": rng.getstate(), "torch_rng": torch.get_rng_state()}, state_path)

    def structure_config(threshold: float) -> StructureConfig:
        return StructureConfig(head=head_cfg.to_dict(), features=cfg.features, lm=cfg.lm, lm_hidden_size=D,
                               lm_layer=cfg.lm_layer, decode=DecodeOptions(threshold=threshold).to_dict())

    def run_eval():
        nonlocal best
        probs = predict_examples(head, valid_sub, cfg.features)
        res = evaluate(probs, valid_sub, [0.3, 0.4, 0.5, 0.6], opts)
        t_best = max(res, key=lambda t: res[t]["f1"])
        f1 = res[t_best]["f1"]
        rec = {"step": step, "epoch": epoch, "valid_subset_f1": f1, "threshold": t_best,
               "minutes": (time.time() - start_wall) / 60}
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()
        log.info("eval step %d: valid-subset F1 %.4f at threshold %.2f", step, f1, t_best)
        if f1 > best:
            best = f1
            save_structure_model(head, structure_config(t_best), out / "best",
                                 metadata={"kind": "ss", "step": step, "valid_subset_f1": f1})
        head.train()

    head.train()
    done = False
    running = []
    while not done:
        if not pending:
            pending = length_batches(lengths, cfg.batch_pairs, cfg.crop, rng)
            epoch += 1
        idx = pending.pop()
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        embs, feats, labels, mask = make_batch([train[i] for i in idx], cfg.features, cfg.crop, rng)
        logits = head(embs, feats, mask)
        loss = pair_loss(logits, labels, mask, cfg.pos_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        step += 1
        running.append(loss.item())
        if step % 20 == 0:
            rec = {"step": step, "epoch": epoch, "loss": float(np.mean(running)), "lr": opt.param_groups[0]["lr"],
                   "minutes": (time.time() - start_wall) / 60}
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()
            log.info("step %d epoch %d loss %.5f (%.1f min)", step, epoch, rec["loss"], rec["minutes"])
            running = []
        out_of_time = cfg.max_minutes and (time.time() - start_wall) > cfg.max_minutes * 60
        done = step >= cfg.max_steps or bool(out_of_time)
        if step % cfg.eval_every == 0 or done:
            run_eval()
        if step % cfg.save_every == 0 or done:
            save_state()
    train_minutes = (time.time() - start_wall) / 60

    # Final choice of threshold and decoding on the full validation set, with the best head.
    from nucfm.checkpoint.ss_head import load_structure_model

    best_pred = load_structure_model(out / "best")
    head = best_pred.head
    probs = predict_examples(head, valid, cfg.features)
    grid = [round(t, 2) for t in np.arange(0.1, 0.91, 0.05)]
    res = evaluate(probs, valid, grid, opts)
    t_best = max(res, key=lambda t: res[t]["f1"])
    final_cfg = structure_config(t_best)
    meta = json.loads((out / "best" / "config.json").read_text()).get("metadata", {})
    summary = {"train_records": len(train), "valid_records": len(valid), "steps": step, "epochs": epoch,
               "train_minutes": round(train_minutes, 1), "head_parameters": n_params, "best_step": meta.get("step"),
               "threshold": t_best, "valid": res[t_best], "valid_by_threshold": {str(k): v["f1"] for k, v in res.items()},
               "config": asdict(cfg)}
    save_structure_model(head, final_cfg, out / "best",
                         metadata={"kind": "ss", "description": cfg.description or "nucfm pair head",
                                   "default": False, "training": summary})
    np.savez_compressed(out / "valid_probs.npz", *[p.astype(np.float16) for p in probs])
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("done: %d steps in %.1f min; VL0 macro F1 %.4f at threshold %.2f", step, train_minutes,
             res[t_best]["f1"], t_best)
    return summary
