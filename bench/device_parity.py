"""Parity and forward throughput of nucfm against the official packages on one device
(issue 25's device check): RNA-FM (``fm``, 12 layers, 640 dim, 20 heads) and GPN-brassicales
(``gpn.legacy`` ConvNet, 25 layers, 512 channels, kernel 9, dilations 1..32), both at the official
sizes with random weights, saved in the official formats and loaded by nucfm.

For each family: the largest absolute difference of the final hidden states and logits between
nucfm and the official model on the same device in fp32 (tolerance 1e-4 on CUDA), and of nucfm under
bf16 autocast against the official fp32 (reported relative to the logits' scale; bf16 keeps 8 bits of
mantissa, so about 1e-2 is expected); then tokens/s of the forward pass of each implementation on
the same batches (fp32, and bf16 autocast for both), after warm-up, synchronised.

    python bench/device_parity.py --device cuda -o parity.json
    python bench/device_parity.py --device cpu --small -o parity.json     # a quick CPU run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch

T0 = time.perf_counter()


def stamp(what: str) -> None:
    """Elapsed seconds on stderr (the device check's log shows where a stage's time goes)."""
    print(f"[{time.perf_counter() - T0:7.1f} s] {what}", file=sys.stderr, flush=True)


def _timeit(fn, device, reps: int, budget_s: float = 8.0) -> float:
    """Seconds per call after a warm-up: ``reps`` calls, or fewer once ``budget_s`` is spent (a
    slow implementation must not eat the stage's time limit)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    fn()
    sync()
    if time.perf_counter() - t0 < budget_s / 4:
        fn()  # a second warm-up unless one call is already slow
    sync()
    t0, n = time.perf_counter(), 0
    while n < reps and (n == 0 or time.perf_counter() - t0 < budget_s):
        fn()
        n += 1
        sync()
    return (time.perf_counter() - t0) / n


def _autocast(device, on: bool):
    """nucfm's own inference context (``--precision``): bf16 autocast, or fp32 with TF32 off."""
    from nucfm.inference import inference_context

    return inference_context(device, "bf16" if on else "fp32")


def rnafm(device, small: bool, reps: int, batch: int, length: int) -> dict:
    from gpu_throughput import official_rnafm  # the one builder of an official-format RNA-FM

    layers, dim, heads, ffn = (2, 64, 4, 128) if small else (12, 640, 20, 5120)
    official, alphabet, ours = official_rnafm(layers, dim, heads, ffn, seed=0, perturb=0.02)
    stamp("rna-fm: built and converted")
    official, ours = official.eval().to(device), ours.eval().to(device)
    stamp("rna-fm: on the device")
    import numpy as np

    from nucfm.alphabet import RNA
    from nucfm.data.collate import collate

    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGU"), length)) for _ in range(batch)]
    _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(seqs)])
    batch_ = collate(RNA, [RNA.encode(s) for s in seqs])
    assert torch.equal(batch_.input_ids, tokens), "token ids differ from the official converter's"
    tokens, mask = tokens.to(device), batch_.attention_mask.to(device)
    out: dict = {"config": {"layers": layers, "dim": dim, "heads": heads, "batch": batch, "length": length}}
    with torch.no_grad():
        with _autocast(device, False):  # the reference in IEEE fp32 too (cuDNN's TF32 off)
            ref = official(tokens, repr_layers=[layers])
        ref_h, ref_l = ref["representations"][layers].float(), ref["logits"].float()
        for name, bf16 in (("fp32", False), ("bf16", True)):
            with _autocast(device, bf16):
                o = ours(tokens, mask, repr_layers=(layers,))
            logits, hid = o.logits.float(), o.hidden_states[layers].float()
            out[name] = {"max_abs_diff_logits": float((logits - ref_l).abs().max()),
                         "logit_scale": float(ref_l.abs().max()),
                         "max_abs_diff_hidden": float((hid - ref_h).abs().max()),
                         "hidden_scale": float(ref_h.abs().max())}
        stamp("rna-fm: parity measured")
        for name, bf16 in (("fp32", False), ("bf16", True)):
            t_off = _timeit(lambda bf16=bf16: _run(lambda: official(tokens, repr_layers=[layers]), device, bf16),
                            device, reps)
            t_our = _timeit(lambda bf16=bf16: _run(lambda: ours.token_logits(tokens, mask), device, bf16), device, reps)
            ntok = batch * length
            out[name].update({"official_tokens_per_s": ntok / t_off, "nucfm_tokens_per_s": ntok / t_our,
                              "speedup": t_off / t_our})
    return out


def gpn(device, small: bool, reps: int, batch: int, length: int) -> dict:
    from vep_vs_official import official_model  # GPN-brassicales' architecture, weights moved off init

    from nucfm import load_model

    layers, dim = (4, 32) if small else (25, 512)
    official = official_model(layers, dim, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        official.save_pretrained(tmp)
        ours = load_model(tmp)
    stamp("gpn: built and converted")
    official, ours = official.eval().to(device), ours.eval().to(device)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 7, (batch, length), generator=g).to(device)  # a c g t
    out: dict = {"config": {"layers": layers, "dim": dim, "batch": batch, "length": length}}
    with torch.no_grad():
        with _autocast(device, False):  # IEEE fp32: by default cuDNN convolves fp32 in TF32
            ref_l = official(input_ids=ids).logits.float()
        for name, bf16 in (("fp32", False), ("bf16", True)):
            with _autocast(device, bf16):
                logits = ours.token_logits(ids).float()
            out[name] = {"max_abs_diff_logits": float((logits - ref_l).abs().max()),
                         "logit_scale": float(ref_l.abs().max())}
        stamp("gpn: parity measured")
        for name, bf16 in (("fp32", False), ("bf16", True)):
            t_off = _timeit(lambda bf16=bf16: _run(lambda: official(input_ids=ids), device, bf16), device, reps)
            t_our = _timeit(lambda bf16=bf16: _run(lambda: ours.token_logits(ids), device, bf16), device, reps)
            ntok = batch * length
            out[name].update({"official_tokens_per_s": ntok / t_off, "nucfm_tokens_per_s": ntok / t_our,
                              "speedup": t_off / t_our})
    return out


def _run(fn, device, bf16: bool):
    with _autocast(device, bf16):
        return fn()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true", help="tiny sizes (a CPU smoke run)")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--families", default="rna,gpn", help="comma-separated subset of rna,gpn")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    device = torch.device(a.device)
    res = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__}
    for name, fn, batch, length in (("rna-fm", rnafm, 32, 510), ("gpn-brassicales", gpn, 64, 512)):
        if name.split("-")[0] not in a.families.split(","):
            continue
        if a.small:
            batch, length = 4, 64
        try:
            res[name] = fn(device, a.small, a.reps, batch, length)
        except Exception as e:  # one family failing must not hide the other's figures
            res[name] = {"error": f"{type(e).__name__}: {e}"}
        stamp(f"{name}: done")
        print(name, json.dumps(res[name], indent=1), flush=True)
        Path(a.output).write_text(json.dumps(res, indent=1) + "\n")  # after each family: a run cut short keeps it


if __name__ == "__main__":
    main()
