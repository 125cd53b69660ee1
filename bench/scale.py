"""Wall time and peak memory of nucfm commands as the input grows: is memory flat, time linear?

Each run is one ``python -m nucfm ...`` process under ``/usr/bin/time -v`` (peak RSS = its
"Maximum resident set size"), on generated inputs (seeded): random 60-nt RNAs for ``embed``
(``--pool mean``, and per residue in the concat HDF5 layout), ``predict`` and ``fold`` (.dbn), and
random SNVs of a random 2-Mb genome for ``vep``. The slope of log(time) against log(size) is fitted
per command (1 = linear), and the change of peak RSS between the two largest sizes is reported (the
goal: within 10 % from 100k to 1M records). Results are written after every run, so a long run that is stopped
keeps what it measured.

The model is a small random RNA-FM-shaped transformer (``--hidden``, 2 layers) unless ``--model``
names a real one, and for ``fold`` a small random pair head on one-hot pair features (no
ViennaRNA, no language model): the question is how time and memory grow with the input, not the
speed of a big model (``bench/embed_vs_official.py`` is that).

    python bench/scale.py --records 10000,100000,1000000 --variants 100000,1000000,10000000
    python bench/scale.py --tasks embed-pooled --records 10000,100000 --threads 1
    python bench/scale.py --tasks fold --records 10000,100000 --out bench/results/scale_fold.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("embed-pooled", "embed-residue", "predict", "fold", "vep")
GENOME_BP = 2_000_000


def sizes(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x]


def make_fasta(path: Path, n: int, length: int = 60, seed: int = 0) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGU", dtype=np.uint8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for s in range(0, n, 100_000):
            k = min(100_000, n - s)
            seqs = letters[rng.integers(0, 4, (k, length))]
            fh.write(b"".join(b">r%d\n" % (s + i) + seqs[i].tobytes() + b"\n" for i in range(k)))
    tmp.rename(path)
    return path


def make_genome(path: Path, seed: int = 1) -> Path:
    if not path.exists():
        rng = np.random.default_rng(seed)
        seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, GENOME_BP)].tobytes()
        path.write_bytes(b">chr1\n" + b"\n".join(seq[i : i + 80] for i in range(0, len(seq), 80)) + b"\n")
    return path


def make_variants(path: Path, genome: Path, n: int, seed: int = 2) -> Path:
    """``n`` SNVs at random positions of chr1 (REF from the genome), sorted by position."""
    if path.exists():
        return path
    seq = np.frombuffer(b"".join(genome.read_bytes().split(b"\n")[1:]), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write("chrom\tpos\tref\talt\n")
        for s in range(0, n, 1_000_000):
            k = min(1_000_000, n - s)
            start = np.sort(rng.integers(0, len(seq), k))
            lut = np.zeros(256, np.int64)
            lut[np.frombuffer(b"ACGT", np.uint8)] = np.arange(4)
            ref = seq[start]
            alt = np.frombuffer(b"ACGT", np.uint8)[(lut[ref] + rng.integers(1, 4, k)) % 4]
            fh.write("".join(f"chr1\t{p + 1}\t{chr(r)}\t{chr(a)}\n" for p, r, a in zip(start, ref, alt)))
    tmp.rename(path)
    return path


def make_models(work: Path, hidden: int) -> tuple[str, str, str, str]:
    """A small random RNA language model, a regression task model on it (frozen backbone stored),
    a small random DNA ConvNet and a small random structure model (one-hot pair features)."""
    import torch

    from nucfm import save_model
    from nucfm.checkpoint.task import save_task_model
    from nucfm.models import ConvNet, ConvNetConfig, Transformer, TransformerConfig
    from nucfm.models.task import TaskConfig, TaskHead, TaskModel

    lm_dir, task_dir = work / f"lm_h{hidden}", work / f"task_h{hidden}"
    if not lm_dir.exists():
        torch.manual_seed(0)
        lm = Transformer(TransformerConfig(num_layers=2, hidden_size=hidden, num_heads=2, ffn_size=4 * hidden,
                                           max_len=1022)).eval()
        save_model(lm, lm_dir)
        tc = TaskConfig(task="regression", labels=("y",), inputs=("lm", "onehot"), target_mean=(0.0,),
                        target_std=(1.0,), backbone=str(lm_dir), backbone_mode="frozen",
                        backbone_hidden_size=hidden, backbone_stored=True)
        save_task_model(TaskModel(tc, TaskHead(tc), backbone=lm), task_dir)
    dna_dir = work / f"dna_h{hidden}"
    if not dna_dir.exists():
        torch.manual_seed(0)
        save_model(ConvNet(ConvNetConfig(num_layers=4, hidden_size=hidden, kernel_size=5)).eval(), dna_dir)
    ss_dir = work / "ss_onehot"
    if not ss_dir.exists():
        from nucfm.checkpoint.structure import save_structure_model
        from nucfm.models.config import PairHeadConfig, StructureConfig
        from nucfm.models.heads import PairHead

        torch.manual_seed(0)
        hc = PairHeadConfig(embed_dim=0, reduction=4, channels=8, blocks=2, extra_channels=16)
        save_structure_model(PairHead(hc).eval(), StructureConfig(head=hc.to_dict(), features=("onehot",)), ss_dir)
    return str(lm_dir), str(task_dir), str(dna_dir), str(ss_dir)


def timed(cmd: list[str], threads: int) -> dict:
    """Run ``cmd`` under /usr/bin/time -v; wall seconds and peak RSS (MB) of the process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(rss_kb / 1024, 1)}


def run_one(task: str, n: int, work: Path, models: tuple[str, str, str, str], threads: int, layout: str) -> dict:
    lm, task_model, dna, ss = models
    nucfm = [sys.executable, "-m", "nucfm"]
    common = ["--threads", str(threads), "--no-progress"]
    if task == "vep":
        genome = make_genome(work / "genome.fa")
        inp = make_variants(work / f"variants_{n}.tsv", genome, n)
        out = work / f"out_vep_{n}.tsv"
        cmd = [*nucfm, "vep", "--genome", str(genome), "--variants", str(inp), "-o", str(out),
               "--model", dna, *common]
    else:
        inp = make_fasta(work / f"rna_{n}.fa", n)
        if task == "predict":
            out = work / f"out_predict_{n}.tsv"
            cmd = [*nucfm, "predict", "-i", str(inp), "-o", str(out), "-m", task_model, "--threads", str(threads)]
        elif task == "fold":
            out = work / f"out_fold_{n}.dbn"
            cmd = [*nucfm, "fold", "-i", str(inp), "-o", str(out), "-m", ss, *common]
        else:
            pooled = task == "embed-pooled"
            out = work / f"out_{task}_{n}.{'npy' if pooled else 'h5'}"
            cmd = [*nucfm, "embed", "-i", str(inp), "-o", str(out), "-m", lm, *common,
                   *(["--pool", "mean"] if pooled else ["--layout", layout])]
    res = timed(cmd, threads)
    res["output_mb"] = round(out.stat().st_size / 2**20, 1)
    for p in (out, out.with_suffix(".ids.txt")):
        p.unlink(missing_ok=True)
    return {"task": task, "n": n, **res, "per_item_ms": round(1000 * res["wall_s"] / n, 3)}


def slopes(rows: list[dict]) -> dict:
    out = {}
    for task in TASKS:
        r = sorted((x for x in rows if x["task"] == task), key=lambda x: x["n"])
        if len(r) >= 2:
            n = np.log([x["n"] for x in r])
            t = np.log([x["wall_s"] for x in r])
            out[task] = {"time_slope": round(float(np.polyfit(n, t, 1)[0]), 3),
                         "rss_change_last_two": round(r[-1]["peak_rss_mb"] / r[-2]["peak_rss_mb"] - 1, 3),
                         "sizes": [x["n"] for x in r]}
    return out


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for task in TASKS:
        r = sorted((x for x in rows if x["task"] == task), key=lambda x: x["n"])
        if r:
            n = [x["n"] for x in r]
            a.loglog(n, [x["wall_s"] for x in r], "o-", label=task)
            b.loglog(n, [x["peak_rss_mb"] for x in r], "o-", label=task)
    a.set(xlabel="records / variants", ylabel="wall time (s)", title="time")
    b.set(xlabel="records / variants", ylabel="peak RSS (MB)", title="peak memory")
    a.legend()
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=sizes, default=sizes("10000,100000,1000000"))
    ap.add_argument("--variants", type=sizes, default=sizes("100000,1000000,10000000"))
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--hidden", type=int, default=32, help="hidden size of the small random model")
    ap.add_argument("--model", default=None, help="a real RNA model for embed instead of the small one")
    ap.add_argument("--layout", default="concat", help="per-residue HDF5 layout")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "scale")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "scale.png")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    lm, task_model, dna, ss = make_models(args.workdir, args.hidden)
    models = (args.model or lm, task_model, dna, ss)
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = old.get("runs", [])
    commands = old.get("commands", []) + [" ".join(["python", "bench/scale.py", *sys.argv[1:]])]
    plan = [(t, n) for t in args.tasks.split(",") for n in (args.variants if t == "vep" else args.records)]
    for task, n in plan:
        rows = [x for x in rows if (x["task"], x["n"]) != (task, n)]
        row = run_one(task, n, args.workdir, models, args.threads, args.layout)
        row.update(date=time.strftime("%Y-%m-%d"), load_avg_at_end=[round(x, 1) for x in os.getloadavg()])
        print(json.dumps(row), flush=True)
        rows.append(row)
        doc = {"commands": commands, "notes": old.get("notes", []),
               "models": dict(zip(("rna", "task", "dna", "ss"), models)), "hidden": args.hidden,
               "threads": args.threads, "cpu": os.cpu_count(), "load_avg_at_end": os.getloadavg(), "runs": rows,
               "fit": slopes(rows)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        figure(rows, args.figure)
    print(json.dumps(slopes(rows), indent=1))


if __name__ == "__main__":
    main()
