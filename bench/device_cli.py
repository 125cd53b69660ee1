"""Command-line throughput on one device (issue 25's device check): ``nucfm embed``, ``vep`` and
``fold`` run as a user runs them (a fresh process each, model load and file writing included) on
generated inputs, with the shipped default models and with official-size random-weight RNA-FM
(12 x 640) and GPN (25 x 512) checkpoints written in the official formats.

    python bench/device_cli.py --device cuda -o cli.json
    python bench/device_cli.py --device cpu --scale 0.02 -o cli.json    # a quick CPU run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np


def write_inputs(tmp: Path, scale: float, rng: np.random.Generator) -> dict:
    n_short, n_long, n_fold, n_snv = (max(4, int(n * scale)) for n in (5000, 500, 200, 5000))
    with open(tmp / "short.fa", "w") as f:
        for i in range(n_short):
            f.write(f">s{i}\n{''.join(rng.choice(list('ACGU'), 60))}\n")
    lengths = np.clip(rng.lognormal(4.7, 0.6, n_long).astype(int), 20, 500)
    with open(tmp / "long.fa", "w") as f:
        for i, n in enumerate(lengths):
            f.write(f">l{i}\n{''.join(rng.choice(list('ACGU'), n))}\n")
    with open(tmp / "fold.fa", "w") as f:
        for i, n in enumerate(rng.integers(60, 200, n_fold)):
            f.write(f">f{i}\n{''.join(rng.choice(list('ACGU'), n))}\n")
    genome = "".join(rng.choice(list("ACGT"), 300_000))
    (tmp / "genome.fa").write_text(">chr1\n" + "\n".join(genome[i : i + 80] for i in range(0, len(genome), 80)) + "\n")
    pos = np.sort(rng.choice(np.arange(1000, 299_000), n_snv, replace=False))
    with open(tmp / "snv.tsv", "w") as f:
        f.write("chrom\tpos\tref\talt\n")
        for p in pos:
            ref = genome[p - 1]
            f.write(f"chr1\t{p}\t{ref}\t{rng.choice([b for b in 'ACGT' if b != ref])}\n")
    return {"short_records": n_short, "long_records": n_long, "long_residues": int(lengths.sum()),
            "fold_records": n_fold, "snvs": n_snv}


def official_checkpoints(tmp: Path, small: bool) -> dict:
    """Official-format random-weight RNA-FM (.pth) and GPN (HF directory) files, official sizes."""
    from gpu_throughput import official_rnafm
    from vep_vs_official import official_model

    official_rnafm(*((2, 64, 4, 128) if small else (12, 640, 20, 5120)), seed=0, pth=tmp / "RNA-FM_pretrained.pth")
    official_model(*((4, 32) if small else (25, 512)), seed=0).save_pretrained(tmp / "gpn")
    return {"rna": str(tmp / "RNA-FM_pretrained.pth"), "dna": str(tmp / "gpn")}


def run(cmd: list[str], timeout: float) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "nucfm", *cmd], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                                       os.environ.get("PYTHONPATH")]))})
    wall = time.perf_counter() - t0
    return {"cmd": "nucfm " + " ".join(cmd), "rc": p.returncode, "wall_s": wall,
            "stderr_tail": p.stderr[-400:] if p.returncode else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the default input sizes")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per command")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    res: dict = {"device": a.device}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sizes = write_inputs(tmp, a.scale, np.random.default_rng(0))
        ckpt = official_checkpoints(tmp, small=a.scale < 0.1)
        res["inputs"] = sizes
        dev = ["--device", a.device, "--no-progress"]
        jobs = {
            "embed_default_short": (["embed", "-i", f"{tmp}/short.fa", "-o", f"{tmp}/e1.h5", "--pool", "mean"],
                                    sizes["short_records"], "records"),
            "embed_rnafm_size_short": (["embed", "-m", ckpt["rna"], "-i", f"{tmp}/short.fa", "-o", f"{tmp}/e2.h5",
                                        "--pool", "mean"], sizes["short_records"], "records"),
            "embed_rnafm_size_long": (["embed", "-m", ckpt["rna"], "-i", f"{tmp}/long.fa", "-o", f"{tmp}/e3.h5",
                                       "--pool", "mean"], sizes["long_residues"], "nt"),
            "vep_default": (["vep", "-i", f"{tmp}/snv.tsv", "--genome", f"{tmp}/genome.fa", "-o", f"{tmp}/v1.tsv"],
                            sizes["snvs"], "variants"),
            "vep_gpn_size": (["vep", "-m", ckpt["dna"], "-i", f"{tmp}/snv.tsv", "--genome", f"{tmp}/genome.fa",
                              "-o", f"{tmp}/v2.tsv"], sizes["snvs"], "variants"),
            "fold_default": (["fold", "-i", f"{tmp}/fold.fa", "-o", f"{tmp}/f1.dbn"], sizes["fold_records"], "records"),
        }
        for name, (cmd, n, unit) in jobs.items():
            try:
                r = run(cmd + dev, a.timeout)
                r[f"{unit}_per_s"] = n / r["wall_s"] if r["rc"] == 0 else None
            except subprocess.TimeoutExpired:
                r = {"cmd": "nucfm " + " ".join(cmd + dev), "rc": None, "timeout_s": a.timeout}
            res[name] = r
            print(name, json.dumps(r), flush=True)
            Path(a.output).write_text(json.dumps(res, indent=1) + "\n")  # after each: a stage cut short keeps it


if __name__ == "__main__":
    main()
