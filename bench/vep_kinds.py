"""Variant-scoring speed by kind, nucfm beside the official GPN algorithm, same weights, one run:

* SNVs at random sites (official: ``tests/reference.py``, the restated ``gpn.ss.run_vep``);
* a saturation scan (all 3 substitutions at each position of a region): nucfm runs one masked
  pass per position and strand; the official algorithm has no scan and is run on the 3 variants
  of each position, as a user would; reported per position;
* indels (1-6 bp insertions and deletions at random sites): nucfm's ``pll`` and ``unmasked``
  methods (the official code scores no indels). Their agreement on the same indels (Spearman)
  and their mean score by indel size (length bias) are reported too.

Model: by default a randomly initialised official ``ConvNetForMaskedLM`` loaded by both; with
``--model NAME`` a nucfm model (e.g. the shipped ``nucfm-dna-cnn12-1M-tair10-v2``) scores on the
nucfm side (real indel-method numbers) and the official path runs random weights of the same
depth and width (GPN's kernel 9 and dilations; timings comparable, scores not).

Run (about 3 min on 2 cores with the shipped model):
    python bench/vep_kinds.py --threads 1 --model nucfm-dna-cnn12-1M-tair10-v2 --json bench/results/vep_kinds.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from vep_vs_official import DEFAULT_GENOME, official_model, sample_snvs  # noqa: E402

from nucfm import load_model  # noqa: E402
from nucfm.io.genome import Genome  # noqa: E402
from nucfm.io.variants import Variant  # noqa: E402
from nucfm.tasks.variants import saturation_table, score_variants  # noqa: E402

from reference import official_vep_scores  # noqa: E402


def sample_indels(genome: Genome, n: int, seed: int, start: int, end: int) -> list[Variant]:
    rng = np.random.default_rng(seed)
    chrom = max(genome.lengths, key=genome.lengths.get)
    out = []
    while len(out) < n:
        s = int(rng.integers(start, end))
        size = int(rng.integers(1, 7))
        ref = genome.fetch(chrom, s, s + size + 1).upper()
        if set(ref) - set("ACGT"):
            continue
        if rng.random() < 0.5:
            out.append(Variant(chrom, s, ref, ref[0]))  # deletion of `size` bases
        else:
            out.append(Variant(chrom, s, ref[0], ref[0] + "".join(rng.choice(list("ACGT"), size))))
    return out


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genome", type=Path, default=DEFAULT_GENOME)
    ap.add_argument("--model", default=None, help="nucfm model name/path (default: random official weights)")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--snvs", type=int, default=200)
    ap.add_argument("--scan", type=int, default=100, help="positions of the saturation scan")
    ap.add_argument("--indels", type=int, default=100)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    genome = Genome(args.genome)
    chrom = max(genome.lengths, key=genome.lengths.get)
    if args.model:  # nucfm has no GPN-format export: the official path gets random weights of the same shape
        ours = load_model(args.model).eval()
        official = official_model(ours.config.num_layers, ours.config.hidden_size, args.seed)
    else:
        official = official_model(args.layers, args.hidden, args.seed)
        official.save_pretrained(tmp / "gpn")
        ours = load_model(tmp / "gpn")
    W, bs = args.window, args.batch_size
    res = {"genome": str(args.genome), "model": args.model or f"random official ConvNet {args.layers}x{args.hidden}",
           "window": W, "batch_size": bs, "threads": args.threads}

    snvs = sample_snvs(genome, args.snvs, args.seed)
    score_variants(ours, genome, snvs[:2], window=W, batch_size=bs)  # warm-up
    official_vep_scores(official, genome, snvs[:2], W, bs)
    _, t_off = timed(lambda: official_vep_scores(official, genome, snvs, W, bs))
    _, t_our = timed(lambda: score_variants(ours, genome, snvs, window=W, batch_size=bs))
    res["snv"] = {"n": len(snvs), "official_per_s": round(len(snvs) / t_off, 2),
                  "nucfm_per_s": round(len(snvs) / t_our, 2)}

    lo = genome.lengths[chrom] - 2_400_000  # the shipped model's held-out end of chr1
    scan = saturation_table(genome, chrom, lo, lo + args.scan).variants
    _, t_off = timed(lambda: official_vep_scores(official, genome, scan, W, bs))
    _, t_our = timed(lambda: score_variants(ours, genome, scan, window=W, batch_size=bs))
    npos = len({v.start for v in scan})
    res["saturation"] = {"positions": npos, "variants": len(scan), "official_positions_per_s": round(npos / t_off, 2),
                         "nucfm_positions_per_s": round(npos / t_our, 2),
                         "nucfm_variants_per_s": round(len(scan) / t_our, 2)}

    indels = sample_indels(genome, args.indels, args.seed, lo, genome.lengths[chrom] - 1000)
    out = {}
    for m in ("pll", "pll_centred", "unmasked"):
        s, t = timed(lambda m=m: score_variants(ours, genome, indels, window=W, batch_size=bs, indel_method=m)["score"])
        out[m] = s
        res[f"indel_{m}_per_s"] = round(len(indels) / t, 2)
    size = np.array([len(v.alt) - len(v.ref) for v in indels])
    res["indel_methods"] = {
        "n": len(indels), "spearman_pll_vs_unmasked": round(spearman(out["pll"], out["unmasked"]), 3),
        "spearman_pll_vs_pll_centred": round(spearman(out["pll"], out["pll_centred"]), 3),
        "spearman_size_vs": {m: round(spearman(size, out[m]), 3) for m in out},
        "mean_score_by_size": {int(k): {m: round(float(out[m][size == k].mean()), 3) for m in out}
                               for k in sorted(set(size))},
    }
    print(json.dumps(res, indent=1))
    if args.json:
        from nucfm.paths import atomic_write_text

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
