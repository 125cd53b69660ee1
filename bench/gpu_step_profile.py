"""Where does a one-GPU training step's time go? (issue 26: the first GPU run measured a model
FLOPs utilisation of 4.5 % for the DNA ConvNet and 6.6 % for the RNA transformer, against the 25-30 %
the scaling decision assumed.)

For each model of ``configs/gpu/`` this times, after warm-up and synchronised:

* ``step``: forward (bf16 autocast) + masked cross-entropy + backward + fused AdamW on a batch that
  is already on the GPU (no data loader): the ceiling of the training loop;
* ``forward``: the forward alone;
* the same step at twice the batch;

and reports tokens/s and model FLOPs utilisation (``train_flops_per_token``) against the measured
bf16 matmul peak. A ``step`` rate far above the training run's logged tokens/s means the input
pipeline is the bottleneck; one close to it means the model's kernels are.

    python bench/gpu_step_profile.py --device cuda -o profile.json
    python bench/gpu_step_profile.py --device cpu --tiny -o profile.json     # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import torch
import torch.nn.functional as F
from device_parity import _timeit  # the one synchronised timer of the device benchmarks

from nucfm.checkpoint import build_model
from nucfm.train.config import load_config
from nucfm.train.pretrain import matmul_peak, train_flops_per_token

TINY = {"dna": ["model.num_layers=2", "model.hidden_size=32"],
        "rna": ["model.num_layers=2", "model.hidden_size=32", "model.num_heads=4", "model.ffn_size=64"]}


def profile(kind: str, device: torch.device, tiny: bool, reps: int, peak: float) -> dict:
    cfg = load_config(ROOT / "configs" / "gpu" / f"{kind}.yaml", TINY[kind] if tiny else [])
    model = build_model(cfg.model).to(device).train()
    B = 8 if tiny else cfg.train.batch_size
    T = (cfg.data.window if kind == "dna" else 118) if not tiny else 64  # RNA: the corpus's mean length + 2
    V = len(model.alphabet)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    cast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    lo, hi = (3, 7) if kind == "dna" else (4, 8)  # residue ids of the alphabet
    flops = train_flops_per_token(model, T)
    out = {"config": cfg.model, "parameters": sum(p.numel() for p in model.parameters()), "tokens_per_step": B * T,
           "flops_per_token": flops}
    for name, b in (("step", B), ("step_2x_batch", 2 * B), ("forward", B)):
        ids = torch.randint(lo, hi, (b, T), device=device)
        if kind == "rna":
            ids[:, 0], ids[:, -1] = model.alphabet.bos_id, model.alphabet.eos_id
        am = torch.ones_like(ids, dtype=torch.bool)
        labels = torch.where(torch.rand(ids.shape, device=device) < 0.15, ids, torch.full_like(ids, -100))

        def step(ids=ids, am=am, labels=labels):
            opt.zero_grad(set_to_none=True)
            with cast:
                logits = model.token_logits(ids, am)
            F.cross_entropy(logits.float().view(-1, V), labels.view(-1), ignore_index=-100).backward()
            opt.step()

        def forward(ids=ids, am=am):
            with torch.no_grad(), cast:
                model.token_logits(ids, am)

        try:
            t = _timeit(forward if name == "forward" else step, device, reps)
        except torch.OutOfMemoryError:
            out[name] = "out of memory"
            continue
        tps = b * T / t
        useful = flops / 3 if name == "forward" else flops
        out[name] = {"seconds": t, "tokens_per_s": tps, "mfu": tps * useful / peak}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as nucfm pretrain on CUDA
        torch.backends.cuda.matmul.allow_tf32 = True
    peak = matmul_peak(device)
    res = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "matmul_peak_tflops": peak / 1e12}
    for kind in ("dna", "rna"):
        try:
            res[kind] = profile(kind, device, a.tiny, a.reps, peak)
        except Exception as e:  # one family failing must not hide the other's figures
            res[kind] = {"error": f"{type(e).__name__}: {e}"}
        print(kind, json.dumps(res[kind]), flush=True)
    Path(a.output).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
