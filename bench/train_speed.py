"""CPU training throughput of nucfm's pretraining step against a plain PyTorch loop, as a fraction
of this machine's measured fp32 matmul peak, in one run.

For each model (the DNA ConvNet of ``configs/dna-tair10.yaml`` and the RNA transformer of
``configs/rna-rfam.yaml``, both at their config's batch size):

* **nucfm**: ``PretrainRecipe.train_step`` itself, the step ``nucfm pretrain`` runs (batch
  assembly, masking, forward, weighted masked loss, backward, gradient clipping, AdamW,
  scheduler), on a synthetic corpus prepared by the recipe in a temporary directory (a random
  genome; random RNAs all of one length, so that both loops see the same tokens and no padding);
* **plain**: the same model written the plain PyTorch way (``nn.Conv1d(padding="same")`` on
  channel-first tensors; ``nn.TransformerEncoderLayer(norm_first=True)``), the same batch shape,
  15 % masked positions, cross-entropy, backward, clipping, ``torch.optim.AdamW``. The ConvNet
  gets nucfm's weights and its logits are checked equal to nucfm's (the same model).

Model FLOPs are the matmul/convolution multiply-adds x2 of the forward, x3 for forward and
backward (element-wise work not counted), the same count for both loops: for the ConvNet
:meth:`ConvNet.matmul_flops` (the first convolution reads one-hot input, counted 0), for the
transformer the projections, feed-forward, attention products and LM head. The matmul peak is a
square fp32 matmul (``torch.matmul``, MKL) on the same threads; beside it the rate of a large
fp32 convolution through oneDNN, which on AMD CPUs is about twice MKL's (MKL takes its AVX2 path
there), and the fractions of both. The machine is shared, so peak and steps are timed in
CPU seconds of this process (``time.process_time``: time slices given to other processes do not
count; cache and memory-bandwidth contention still do; ``--wall`` times wall-clock instead) and in
interleaved blocks; the fraction reported is the best step over the best peak (and the median of
the per-block ratios), with the load average before and after.

    PYTHONPATH=src python bench/train_speed.py --threads 1 -o bench/results/train_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
# CPU seconds of this process, not wall time: on a shared machine the scheduler's time slicing
# would otherwise count other sessions' work against every loop (``--wall`` switches)
CLOCK = time.process_time


# ---- peak --------------------------------------------------------------------------------------
def peak_gflops(n: int = 1536, reps: int = 5) -> float:
    """Best of ``reps`` square fp32 matmuls (n x n) @ (n x n), GFLOP/s, on this process's clock."""
    from nucfm.train.pretrain import matmul_peak

    return matmul_peak(torch.device("cpu"), torch.float32, n, reps, clock=CLOCK) / 1e9


def conv_peak_gflops(channels: int = 256, length: int = 4096, k: int = 9, reps: int = 5) -> float:
    """Best of ``reps`` fp32 convolutions through oneDNN (channels-last (1, C, 1, L), kernel (1, k)),
    GFLOP/s. On AMD CPUs MKL's sgemm (``torch.matmul``) takes a slower code path than oneDNN's JIT
    kernels, so this rate, not :func:`peak_gflops`, is what the FMA units can do from PyTorch."""
    x = torch.randn(1, channels, 1, length).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 1, k).contiguous(memory_format=torch.channels_last)
    F.conv2d(x, w, padding=(0, k // 2))
    best = float("inf")
    for _ in range(reps):
        t = CLOCK()
        F.conv2d(x, w, padding=(0, k // 2))
        best = min(best, CLOCK() - t)
    return 2 * channels * channels * k * length / best / 1e9


# ---- nucfm's step --------------------------------------------------------------------------------
def synthetic_corpus(kind: str, tmp: Path, length: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    if kind == "dna":
        seq = "".join(rng.choice(list("ACGT"), 600_000))
        (tmp / "genome.fa").write_text(">chr1\n" + "\n".join(seq[i : i + 80] for i in range(0, len(seq), 80)) + "\n")
        return {"kind": "dna", "genome": str(tmp / "genome.fa"), "valid_region": "chr1:500001-600000"}
    lines = []
    for i in range(3000):
        lines += [f">r{i} RF{i % 60 + 1:05d}", "".join(rng.choice(list("ACGU"), length))]
    (tmp / "rna.fa").write_text("\n".join(lines) + "\n")
    return {"kind": "rna", "fasta": [str(tmp / "rna.fa")], "min_len": 10}


def nucfm_recipe(config: Path, tmp: Path, threads: int, rna_length: int):
    from nucfm.train.config import from_dict
    from nucfm.train.pretrain import PretrainRecipe

    d = yaml.safe_load(config.read_text())
    kind = d["data"]["kind"]
    data = synthetic_corpus(kind, tmp, rna_length)
    if kind == "dna":
        data |= {k: d["data"][k] for k in ("window", "stride", "rc_augment", "soft_mask_weight")}
    cfg = from_dict({"model": d["model"], "data": data, "output": str(tmp / f"run-{kind}"),
                     "train": {**d["train"], "threads": threads, "device": "cpu", "steps": 10**6}})
    recipe = PretrainRecipe(cfg, restart=True)
    recipe.setup()
    recipe.build()
    recipe.maybe_resume()  # the step counter, progress bar and (where the recipe has one) data loader
    recipe.bar.disable = True
    return recipe


# ---- the plain loops ---------------------------------------------------------------------------
class PlainConvNet(nn.Module):
    """GPN's ConvNet the plain way: one-hot (B, D, L) channels-first, Conv1d "same", transposes."""

    def __init__(self, cfg):
        super().__init__()
        D, k = cfg.hidden_size, cfg.kernel_size
        self.D = D
        self.convs = nn.ModuleList(nn.Conv1d(D, D, k, dilation=d, padding="same") for d in cfg.dilations())
        self.norm1 = nn.ModuleList(nn.LayerNorm(D, eps=cfg.layer_norm_eps) for _ in cfg.dilations())
        self.ffn = nn.ModuleList(nn.Linear(D, D) for _ in cfg.dilations())
        self.norm2 = nn.ModuleList(nn.LayerNorm(D, eps=cfg.layer_norm_eps) for _ in cfg.dilations())
        self.dense, self.norm, self.decoder = nn.Linear(D, D), nn.LayerNorm(D, eps=cfg.layer_norm_eps), None

    def load_from(self, model) -> None:
        for i, blk in enumerate(model.layers):
            self.convs[i].load_state_dict(blk.conv.state_dict())
            self.norm1[i].load_state_dict(blk.conv_norm.state_dict())
            self.ffn[i].load_state_dict(blk.ffn.state_dict())
            self.norm2[i].load_state_dict(blk.ffn_norm.state_dict())
        self.dense.load_state_dict(model.lm_head.dense.state_dict())
        self.norm.load_state_dict(model.lm_head.norm.state_dict())
        self.decoder = nn.Linear(self.D, model.lm_head.decoder.out_features)
        self.decoder.load_state_dict(model.lm_head.decoder.state_dict())

    def forward(self, ids):
        x = F.one_hot(ids, self.D).float()
        for conv, n1, ffn, n2 in zip(self.convs, self.norm1, self.ffn, self.norm2):
            x = x + n1(F.gelu(conv(x.transpose(1, 2)).transpose(1, 2)))
            x = x + n2(F.gelu(ffn(x)))
        return self.decoder(self.norm(F.gelu(self.dense(x))))


class PlainTransformer(nn.Module):
    """Pre-LN encoder of the same sizes: nn.TransformerEncoderLayer, learned positions, tied head."""

    def __init__(self, cfg, vocab: int, T: int):
        super().__init__()
        D = cfg.hidden_size
        self.tok, self.pos = nn.Embedding(vocab, D), nn.Embedding(T, D)
        self.ln0 = nn.LayerNorm(D)
        self.enc = nn.ModuleList(
            nn.TransformerEncoderLayer(D, cfg.num_heads, cfg.ffn_size, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(cfg.num_layers))
        self.ln1, self.dense, self.ln2 = nn.LayerNorm(D), nn.Linear(D, D), nn.LayerNorm(D)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, ids):
        x = self.ln0(self.tok(ids) + self.pos.weight[: ids.shape[1]])
        for layer in self.enc:
            x = layer(x)
        return F.linear(self.ln2(F.gelu(self.dense(self.ln1(x)))), self.tok.weight) + self.bias


def plain_step_fn(model: nn.Module, vocab: int, B: int, T: int, lr: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    lo = 0 if isinstance(model, PlainConvNet) else 4

    def step():
        ids = torch.randint(lo, lo + 4, (B, T), generator=g)
        sel = torch.rand(B, T, generator=g) < 0.15
        labels = ids[sel]
        inp = ids.masked_fill(sel, vocab - 1)
        opt.zero_grad(set_to_none=True)
        logits = model(inp)
        loss = F.cross_entropy(logits[sel], labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss.detach())

    return step


# ---- FLOPs -------------------------------------------------------------------------------------
def timed(fn, n: int) -> float:
    t = CLOCK()
    for _ in range(n):
        fn()
    return (CLOCK() - t) / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dna-config", type=Path, default=ROOT / "configs" / "dna-tair10.yaml")
    ap.add_argument("--rna-config", type=Path, default=ROOT / "configs" / "rna-rfam.yaml")
    ap.add_argument("--rna-length", type=int, default=126, help="residues per synthetic RNA (tokens = +2)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per block and loop")
    ap.add_argument("--blocks", type=int, default=3, help="interleaved timing blocks")
    ap.add_argument("--wall", action="store_true", help="time wall-clock seconds, not this process's CPU seconds")
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args(argv)
    global CLOCK
    if a.wall:
        CLOCK = time.perf_counter
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    load0 = os.getloadavg()
    items = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name, config in (("convnet", a.dna_config), ("transformer", a.rna_config)):
            rec = nucfm_recipe(config, tmp, a.threads, a.rna_length)
            model = rec.model
            B = rec.t.batch_size
            if name == "convnet":
                T = rec.data_summary["window"]
                flops = 3.0 * model.matmul_flops(T) * B
                plain = PlainConvNet(model.config)
                plain.load_from(model)
                ids = torch.randint(0, 4, (2, 300))
                with torch.no_grad():
                    diff = float((plain(ids) - model.token_logits(ids)).abs().max())
                assert diff < 1e-4, f"the plain ConvNet differs from nucfm's: {diff}"
            else:
                T = a.rna_length + 2
                flops = 3.0 * model.matmul_flops(T) * B
                plain = PlainTransformer(model.config, len(model.alphabet), T)
                diff = None

            def nucfm_step(rec=rec):
                out = rec.train_step(rec.step)
                rec.step += 1
                return out

            first = nucfm_step()
            assert first["tokens"] == B * T, f"{name}: nucfm step saw {first['tokens']} tokens, not {B * T}"
            step = plain_step_fn(plain, len(model.alphabet), B, T, rec.t.lr)
            step()
            items[name] = {"nucfm": nucfm_step, "plain": step, "flops": flops, "batch": B, "tokens": B * T,
                           "params": sum(p.numel() for p in model.parameters()), "plain_max_abs_diff": diff,
                           "model": dict(model.config.to_dict())}
        peaks: list[float] = []
        conv_peaks: list[float] = []
        times = {(n, k): [] for n in items for k in ("nucfm", "plain")}
        for _ in range(a.blocks):
            peaks.append(peak_gflops())
            conv_peaks.append(conv_peak_gflops())
            for n, it in items.items():
                for k in ("nucfm", "plain"):
                    times[(n, k)].append(timed(it[k], a.steps))
        peaks.append(peak_gflops())
        conv_peaks.append(conv_peak_gflops())
    peak, conv_peak = max(peaks), max(conv_peaks)
    res = {"threads": a.threads, "clock": "wall" if a.wall else "process CPU time", "torch": torch.__version__,
           "load_avg_before": load0, "load_avg_after": os.getloadavg(),
           "cpu_count": os.cpu_count(), "matmul_peak_gflops": peak, "matmul_peak_gflops_all": peaks,
           "onednn_conv_peak_gflops": conv_peak, "onednn_conv_peak_gflops_all": conv_peaks,
           "steps_per_block": a.steps, "blocks": a.blocks, "models": {}}
    for n, it in items.items():
        row = {k: v for k, v in it.items() if k not in ("nucfm", "plain")}
        for k in ("nucfm", "plain"):
            ts = times[(n, k)]
            ratios = [it["flops"] / t / 1e9 / p for t, p in zip(ts, peaks)]
            row[k] = {"step_s_best": min(ts), "step_s_all": ts, "tokens_per_s": it["tokens"] / min(ts),
                      "model_gflops": it["flops"] / min(ts) / 1e9,
                      "fraction_of_peak": it["flops"] / min(ts) / 1e9 / peak,
                      "fraction_of_onednn_conv_peak": it["flops"] / min(ts) / 1e9 / conv_peak,
                      "fraction_of_peak_median_per_block": statistics.median(ratios)}
        row["nucfm_speedup_vs_plain"] = row["plain"]["step_s_best"] / row["nucfm"]["step_s_best"]
        res["models"][n] = row
        print(f"{n}: nucfm {row['nucfm']['tokens_per_s']:,.0f} tok/s = {row['nucfm']['fraction_of_peak']:.0%} of "
              f"peak (median per block {row['nucfm']['fraction_of_peak_median_per_block']:.0%}; "
              f"{row['nucfm']['fraction_of_onednn_conv_peak']:.0%} of the oneDNN rate); plain "
              f"{row['plain']['tokens_per_s']:,.0f} tok/s = {row['plain']['fraction_of_peak']:.0%}; "
              f"speed-up {row['nucfm_speedup_vs_plain']:.2f}x", flush=True)
    print(f"matmul peak {peak:.1f} GFLOP/s on {a.threads} thread(s) (all: {', '.join(f'{p:.1f}' for p in peaks)}); "
          f"oneDNN convolution {conv_peak:.1f} GFLOP/s; "
          f"load average {load0[0]:.1f} -> {res['load_avg_after'][0]:.1f}")
    if a.output:
        a.output.parent.mkdir(parents=True, exist_ok=True)
        a.output.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
