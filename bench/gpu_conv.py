"""Forward throughput of nucfm's GPN ConvNet on one device, by the convolution's implementation:
the GPU inference path (one GEMM over the im2col view, ``ConvBlock.cuda_gemm``) against cuDNN's
dilated 2-D convolution with and without autotuning (``torch.backends.cudnn.benchmark``), in fp32
(no TF32) and bf16 autocast, at GPN-brassicales' size (25 layers x 512, kernel 9, dilations 1..32),
random weights, a batch of 64 windows of 512 nt. Each row also gives the largest logit difference
from the GEMM path's fp32 logits.

    python bench/gpu_conv.py --device cuda -o conv.json
    python bench/gpu_conv.py --device cpu --small -o conv.json        # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch


def measure(device: torch.device, small: bool, reps: int = 10, budget_s: float = 6.0, on_row=None) -> dict:
    from nucfm.inference import inference_context
    from nucfm.models.config import ConvNetConfig
    from nucfm.models.convnet import ConvBlock, ConvNet

    layers, dim, batch, length = (3, 32, 4, 64) if small else (25, 512, 64, 512)
    torch.manual_seed(0)
    model = ConvNet(ConvNetConfig(num_layers=layers, hidden_size=dim)).eval().to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ids = torch.randint(3, 7, (batch, length), generator=torch.Generator().manual_seed(1)).to(device)
    res: dict = {"config": {"layers": layers, "dim": dim, "batch": batch, "length": length}, "rows": {}}
    ref = None
    for impl in ("gemm", "cudnn", "cudnn_autotuned"):
        for precision in ("fp32", "bf16"):
            ConvBlock.cuda_gemm = impl == "gemm"
            torch.backends.cudnn.benchmark = impl == "cudnn_autotuned"
            with inference_context(device, precision):
                def run():
                    out = model.token_logits(ids)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    return out

                t0 = time.perf_counter()
                logits = run().float()  # warm-up (and the autotuning, when on)
                first = time.perf_counter() - t0
                t0, n = time.perf_counter(), 0
                while n < reps and (n == 0 or time.perf_counter() - t0 < budget_s):
                    run()
                    n += 1
                sec = (time.perf_counter() - t0) / n
            if ref is None:
                ref = logits
            row = {"first_call_s": round(first, 3), "seconds": round(sec, 5),
                   "tokens_per_s": round(batch * length / sec), "reps": n,
                   "max_abs_diff_vs_gemm_fp32": float((logits - ref).abs().max())}
            res["rows"][f"{impl}_{precision}"] = row
            print(impl, precision, json.dumps(row), file=sys.stderr, flush=True)
            if on_row is not None:
                on_row(res)  # a run cut short keeps its rows
    ConvBlock.cuda_gemm, torch.backends.cudnn.benchmark = True, False
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    device = torch.device(a.device)
    head = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__}

    def save(rows: dict) -> None:
        Path(a.output).write_text(json.dumps({**head, **rows}, indent=1) + "\n")

    save(measure(device, a.small, a.reps, on_row=save))


if __name__ == "__main__":
    main()
