"""Throughput of embed / vep / fold on one device, nucfm vs the official code, same random weights.

Models (random weights, official sizes by default; ``--size tiny`` for a smoke run on a CPU):
RNA-FM (``fm.BioBertModel``, 12 layers x 640, 20 heads) converted to nucfm through the official
``.pth`` layout; GPN (``gpn.legacy.ConvNetForMaskedLM``, 25 layers x 512) through its HF
directory; the RNA-FM secondary-structure head (``fm.downstream``'s ``pc-resnet_1_sym_first``,
32 residual blocks of 64 channels) converted with :func:`nucfm.checkpoint.structure.convert_rnafm_ss_state`.

Workloads: random RNAs of a bpRNA-like length mix (log-normal, median ~110 nt, 20-500) for
``embed`` and ``fold``; random SNVs on a random genome, window 512, for ``vep``. Both codes run
inside the same :func:`nucfm.inference.inference_context` (``--precision`` autocast for both).
The official code is driven as its README / scripts do: ``embed`` in batches of 16 in file order,
``fold`` one sequence at a time (backbone then head), ``vep`` in batches (``tests/reference.py``'s
restatement of ``gpn.ss.run_vep``). nucfm: ``model.embed`` (length buckets, token budget),
``StructureModel.predict_probs`` (probabilities; decoding is CPU work, the same for both),
``score_variants``. Agreement (largest |nucfm - official|) is measured in the same run on the
outputs timed.

    python bench/gpu_throughput.py --device cuda --precision bf16 -o $OUT/throughput_bf16.json
    python bench/gpu_throughput.py --device cpu --size tiny              # smoke run
    python bench/gpu_throughput.py --tasks embed,vep --embed-seqs 500 --variants 2048   # smaller workloads

As a function: ``measure(device, precision, size, tasks)`` returns the same dict.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the one restatement of the official VEP algorithm
sys.path.insert(0, str(ROOT / "bench"))

SIZES = {
    "official": {"rna": {"layers": 12, "hidden": 640, "heads": 20, "ffn": 5120},
                 "dna": {"layers": 25, "hidden": 512},
                 "embed_seqs": 2000, "fold_seqs": 100, "fold_max_len": 300, "variants": 8192, "genome": 2_000_000},
    "tiny": {"rna": {"layers": 2, "hidden": 32, "heads": 4, "ffn": 64},
             "dna": {"layers": 2, "hidden": 32},
             "embed_seqs": 12, "fold_seqs": 2, "fold_max_len": 40, "variants": 16, "genome": 20_000},
}
TASKS = ("embed", "vep", "fold")


def rna_workload(n: int, seed: int = 0, low: int = 20, high: int = 500) -> list[str]:
    """``n`` random RNAs, log-normal lengths (median ~110 nt) clipped to [low, high]."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(4.7, 0.6, n).astype(int), low, high)
    return ["".join(rng.choice(list("ACGU"), k)) for k in lengths]


def official_rnafm(layers: int, hidden: int, heads: int, ffn: int, seed: int = 0, perturb: float = 0.0,
                   pth: Path | None = None):
    """(official fm.BioBertModel, its alphabet, the nucfm model converted from its .pth). ``perturb``
    moves every weight (LayerNorms and biases too) off its init by that much noise, the <mask>
    embedding zeroed as the parity tests do; ``pth``: keep the official file there."""
    import fm

    from nucfm import load_model
    from nucfm.checkpoint.rnafm import write_rnafm_pth

    torch.manual_seed(seed)
    args = Namespace(arch="roberta_large", layers=layers, embed_dim=hidden, ffn_embed_dim=ffn, attention_heads=heads,
                     max_positions=1024, emb_layer_norm_before=True)
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    official = fm.BioBertModel(args, alphabet).eval()
    if perturb:
        with torch.no_grad():
            for p in official.parameters():
                p.add_(torch.randn_like(p) * perturb)
            official.embed_tokens.weight[alphabet.mask_idx].zero_()
    with tempfile.TemporaryDirectory() as tmp:
        path = pth or Path(tmp) / "RNA-FM_pretrained.pth"
        write_rnafm_pth(official.state_dict(), args, path)
        ours = load_model(path).eval()
    return official, alphabet, ours


def official_ss_head(embed_dim: int, seed: int = 0):
    """(official pc-resnet_1_sym_first head, nucfm PairHead + StructureConfig converted from it)."""
    from test_models_heads import _official_head  # the official head, built as the parity test does

    from nucfm.checkpoint.structure import RNAFM_SS_PREFIX, convert_rnafm_ss_state

    torch.manual_seed(seed)
    official, _ = _official_head(embed_dim)
    official.eval()
    head, config = convert_rnafm_ss_state({RNAFM_SS_PREFIX + k: v for k, v in official.state_dict().items()})
    return official, head, config


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device):
    """(seconds, result) of ``fn()`` with the device's queued work finished."""
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t, out


def _row(seconds: float, records: int, positions: int) -> dict:
    return {"seconds": round(seconds, 4), "records_per_s": round(records / seconds, 2),
            "positions_per_s": round(positions / seconds, 1)}


def bench_embed(size: dict, device: torch.device, official: bool) -> dict:
    seqs = rna_workload(size["embed_seqs"], seed=1)
    nt = sum(map(len, seqs))
    ref, alphabet, ours = official_rnafm(**size["rna"])
    ours.to(device)
    layers = size["rna"]["layers"]
    ours.embed(seqs[:8])  # warm-up (kernels, cuBLAS handles)
    t, emb = _timed(lambda: ours.embed(seqs), device)
    out = {"workload": f"{len(seqs)} random RNAs, {nt} nt, lengths {min(map(len, seqs))}-{max(map(len, seqs))}",
           "nucfm": _row(t, len(seqs), nt)}
    if official:
        ref.to(device)
        conv = alphabet.get_batch_converter()

        def run_official(batch: int = 16):
            reps = []
            for i in range(0, len(seqs), batch):
                _, _, tokens = conv([(str(j), s) for j, s in enumerate(seqs[i : i + batch])])
                r = ref(tokens.to(device), repr_layers=[layers])["representations"][layers]
                reps += [r[k, 1 : len(s) + 1].float().cpu().numpy() for k, s in enumerate(seqs[i : i + batch])]
            return reps

        run_official(batch=2)  # warm-up
        t_ref, reps = _timed(run_official, device)
        out["official_batch16"] = _row(t_ref, len(seqs), nt)
        out["speedup"] = round(t_ref / t, 2)
        out["max_abs_diff"] = float(max(np.abs(a - b).max() for a, b in zip(emb, reps)))
        ref.cpu()
    ours.cpu()
    return out


def bench_fold(size: dict, device: torch.device, official: bool) -> dict:
    from nucfm.models.structure import StructureModel

    seqs = rna_workload(size["fold_seqs"], seed=2, high=size["fold_max_len"])
    nt = sum(map(len, seqs))
    ref_lm, alphabet, lm = official_rnafm(**size["rna"])
    ref_head, head, config = official_ss_head(size["rna"]["hidden"])
    model = StructureModel(head, config, lm=lm).to(device)
    model.predict_probs(seqs[:1])  # warm-up
    t, probs = _timed(lambda: model.predict_probs(seqs), device)
    out = {"workload": f"{len(seqs)} random RNAs, {nt} nt, lengths {min(map(len, seqs))}-{max(map(len, seqs))}",
           "nucfm": _row(t, len(seqs), nt)}
    if official:
        ref_lm.to(device)
        ref_head.to(device)
        conv = alphabet.get_batch_converter()
        layers = size["rna"]["layers"]

        def run_official():
            maps = []
            for s in seqs:
                _, _, tokens = conv([("x", s)])
                tokens = tokens.to(device)
                emb = ref_lm(tokens, repr_layers=[layers])["representations"][layers]
                maps.append(torch.sigmoid(ref_head(tokens, {"embedding": emb}))[0].float().cpu().numpy())
            return maps

        run_official()  # warm-up
        t_ref, maps = _timed(run_official, device)
        out["official_batch1"] = _row(t_ref, len(seqs), nt)
        out["speedup"] = round(t_ref / t, 2)
        out["max_abs_diff"] = float(max(np.abs(np.asarray(a) - b).max() for a, b in zip(probs, maps)))
    return out


def bench_vep(size: dict, device: torch.device, official: bool, batch_size: int | None = None) -> dict:
    from vep_vs_official import make_genome, official_model, sample_snvs

    from nucfm import load_model
    from nucfm.io.genome import Genome
    from nucfm.tasks.variants import score_variants

    from reference import official_vep_scores

    window = 512
    batch_size = batch_size or (128 if device.type == "cuda" else 8)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        genome = Genome(make_genome(tmp / "genome.fa", length=size["genome"]))
        variants = sample_snvs(genome, size["variants"], seed=0)
        ref = official_model(size["dna"]["layers"], size["dna"]["hidden"], seed=0)
        ref.save_pretrained(tmp / "gpn")
        ours = load_model(tmp / "gpn").to(device)
        score_variants(ours, genome, variants[:batch_size], window=window, batch_size=batch_size)  # warm-up
        t, scores = _timed(lambda: score_variants(ours, genome, variants, window=window,
                                                  batch_size=batch_size)["score"], device)
        out = {"workload": f"{len(variants)} random SNVs, window {window}, batch {batch_size}",
               "nucfm": _row(t, len(variants), len(variants) * window)}
        if official:
            ref.to(device)
            official_vep_scores(ref, genome, variants[:batch_size], window, batch_size=batch_size)  # warm-up
            t_ref, want = _timed(lambda: official_vep_scores(ref, genome, variants, window, batch_size=batch_size),
                                 device)
            out["official"] = _row(t_ref, len(variants), len(variants) * window)
            out["speedup"] = round(t_ref / t, 2)
            out["max_abs_diff"] = float(np.abs(scores - want).max())
    return out


BENCHES = {"embed": bench_embed, "vep": bench_vep, "fold": bench_fold}


def measure(device: str = "cuda", precision: str = "fp32", size: str = "official", tasks=TASKS,
            official: bool = True, threads: int | None = None, on_task=None, **counts) -> dict:
    """Throughput rows per task (see the module doc) as a JSON-ready dict: records/s and
    positions/s of nucfm and of the official code, the speedup, the largest output difference.
    ``counts`` override the workload sizes of ``SIZES[size]`` (``embed_seqs``, ``fold_seqs``,
    ``variants``), e.g. to fit a time limit. ``on_task(result)`` is called after each task (to save
    what a run cut short by a time limit has measured)."""
    from nucfm.inference import inference_context

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    spec = {**SIZES[size], **{k: v for k, v in counts.items() if v is not None}}
    result = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "precision": precision, "size": size, "models": spec, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "tasks": {}}
    t0 = time.perf_counter()
    for task in tasks:  # (no peak-memory figure: nucfm's token budget resets the peak statistics per batch)
        with inference_context(dev, precision):
            result["tasks"][task] = BENCHES[task](spec, dev, official)
        print(f"[{time.perf_counter() - t0:7.1f} s] {task} ({precision}) done", file=sys.stderr, flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        if on_task is not None:
            on_task(result)
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--size", choices=sorted(SIZES), default="official")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of embed,vep,fold")
    for key in ("embed_seqs", "fold_seqs", "variants"):
        ap.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int, default=None,
                        help=f"workload size (default: the --size's {key})")
    ap.add_argument("--skip-official", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("-o", "--output", default=None, help="write the JSON here (default: stdout only)")
    args = ap.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        ap.error(f"unknown task(s) {sorted(unknown)}; known: {', '.join(TASKS)}")
    def save(result):
        if args.output:
            Path(args.output).write_text(json.dumps(result, indent=2) + "\n")

    result = measure(args.device, args.precision, args.size, tasks, not args.skip_official, args.threads,
                     on_task=save, embed_seqs=args.embed_seqs, fold_seqs=args.fold_seqs, variants=args.variants)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
