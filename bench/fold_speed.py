"""Fold speed on 1 vs 2 threads (ViennaRNA features in worker processes), interleaved, and where
one thread's time goes (features, head, decoding).

    python bench/fold_speed.py ../shared/data/ss/bprna/TS0.dbn --limit 200 --repeats 3 \
        -o bench/results/fold_speed.json

Runs alternate 1-thread and 2-thread folds (order flipped each repeat) so that load from other
users of a shared machine falls on both alike; the speedup is the ratio of medians. Outputs of
the two settings are compared: decoded pairs must be identical (probabilities are reported as
the largest difference: the head's float sums may be ordered differently on two threads).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import torch

from nucfm.alphabet import structure_letters
from nucfm.checkpoint.structure import load_structure_model
from nucfm.data.structure_features import bpp_maps
from nucfm.io.structure import read_structures
from nucfm.paths import atomic_write_text
from nucfm.tasks.structure import decode_structure, fold_sequences


def fold(model, seqs, threads):
    torch.set_num_threads(threads)
    t = time.perf_counter()
    out = fold_sequences(model, seqs, workers=threads)
    return time.perf_counter() - t, out


def split(model, seqs):
    """Seconds on one thread: ViennaRNA features, the head (features given), decoding."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    bpps = bpp_maps(seqs, model.config.features)
    t1 = time.perf_counter()
    probs = model.predict_probs(seqs, bpps=bpps)
    t2 = time.perf_counter()
    for s, p in zip(seqs, probs):
        decode_structure(p, s, model.decode_options)
    t3 = time.perf_counter()
    return {"features": t1 - t0, "head": t2 - t1, "decode": t3 - t2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("structures")
    ap.add_argument("--model", default="nucfm-ss-res8x24-vienna3-bprna")
    ap.add_argument("--limit", type=int, default=200, help="every k-th record so that this many remain (0 = all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-o", "--output", default="bench/results/fold_speed.json")
    args = ap.parse_args()
    recs = read_structures(args.structures)
    if args.limit and len(recs) > args.limit:
        recs = recs[:: len(recs) // args.limit][: args.limit]
    seqs = [structure_letters(r.seq) for r in recs]
    model = load_structure_model(args.model)
    times = {1: [], 2: []}
    outputs = {}
    for rep in range(args.repeats):
        for threads in ((1, 2) if rep % 2 == 0 else (2, 1)):
            sec, out = fold(model, seqs, threads)
            times[threads].append(sec)
            outputs[threads] = out
            print(f"repeat {rep} threads {threads}: {sec:.1f} s", flush=True)
    same_pairs = all(a[0] == b[0] for a, b in zip(outputs[1], outputs[2]))
    max_diff = max(float(np.abs(a[1] - b[1]).max()) if a[1].size else 0.0 for a, b in zip(outputs[1], outputs[2]))
    parts = split(model, seqs)
    med = {k: statistics.median(v) for k, v in times.items()}
    doc = {"records": len(seqs), "nucleotides": sum(map(len, seqs)), "model": args.model,
           "seconds": times, "median_seconds": med, "speedup_2_vs_1": med[1] / med[2],
           "identical_pairs": same_pairs, "max_probability_difference": max_diff,
           "one_thread_split_seconds": parts}
    print(json.dumps(doc, indent=2))
    atomic_write_text(args.output, json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
