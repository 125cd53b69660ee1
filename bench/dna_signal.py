"""Does a DNA model carry gene structure? Zero-shot variant scores by consequence class on a held-out region.

Builds an annotation-labelled SNV set in a region the models never trained on, then scores it with each
model (GPN's rule, ``nucfm vep``'s code) and with the ±3-mer context baseline counted on the training data
(``mlm_counts.npz`` beside the first model that has one: log p(alt | true neighbours) - log p(ref | ...)).

The set: candidate positions are every base of each transcript's start codon, stop codon and the two
intron bases at both ends of every intron (where the rare loss-of-function classes live), plus
``--random-positions`` positions drawn uniformly from the region; every candidate gets all three
alternative alleles, each SNV is annotated with nucfm's consequence code (Ensembl's most-severe term,
with distance 0: VEP's 5-kb up/downstream classes count as intergenic, A. thaliana being gene-dense),
and at most ``--per-class`` SNVs per class are kept (seeded). The annotation only labels the
evaluation: no model sees it.

Reported per model (``vep-report``'s statistics): AUROC of each class against ``intergenic_variant``
(a low score = the positive), **loss-of-function-like** (splice donor/acceptor, start lost, stop
gained, stop lost, pooled) against intergenic, and missense against synonymous.

    python bench/dna_signal.py --genome ../shared/data/genome/arabidopsis/TAIR10_chr1.fna.gz \\
        --gff ../shared/data/genome/arabidopsis/TAIR10_chr1.gff.gz \\
        --region NC_003070.9:28000001-30427671 --models nucfm-dna-cnn12-1M-tair10-v2 RUN/checkpoints/step_N \\
        --table /work/runs/dna_signal_snvs.tsv -o bench/results/dna_signal.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import pandas as pd
import torch

from nucfm.analysis.vep_report import auroc, consequence_stats
from nucfm.checkpoint import COUNTS_FILE, load_model, resolve
from nucfm.io.genome import Genome, parse_region
from nucfm.io.variants import Variant
from nucfm.paths import atomic_write_text
from nucfm.tasks.consequence import Annotation
from nucfm.tasks.variants import score_variants

LOF = ["splice_donor_variant", "splice_acceptor_variant", "start_lost", "stop_gained", "stop_lost"]


def candidate_positions(ann: Annotation, contig: str, start: int, end: int, n_random: int,
                        rng: np.random.Generator) -> np.ndarray:
    """0-based positions: start/stop codons and intron-end dinucleotides of the transcripts in
    ``[start, end)``, plus ``n_random`` uniform draws."""
    special = set()
    for t in ann.near(contig, start, end):
        if t.cds:
            for lo, hi in (t.cds[0][:2], t.cds[-1][:2]):
                special.update(range(lo, lo + 3))
                special.update(range(hi - 3, hi))
        for (_, e1), (s2, _) in zip(t.exons, t.exons[1:]):
            special.update([e1, e1 + 1, s2 - 2, s2 - 1])
    special = {p for p in special if start <= p < end}
    return np.unique(np.concatenate([np.fromiter(special, int, len(special)),
                                     rng.integers(start, end, n_random)]))


def build_set(genome: Genome, gff: str, region: str, per_class: int, n_random: int, seed: int) -> pd.DataFrame:
    contig, start, end = parse_region(region)
    contig = genome.resolve(contig)
    rng = np.random.default_rng(seed)
    ann = Annotation(gff, genome, distance=0)  # outside every transcript = intergenic (no up/downstream)
    seq = genome.fetch(contig, start, end)
    rows = []
    for p in candidate_positions(ann, contig, start, end, n_random, rng):
        ref = seq[p - start].upper()
        if ref not in "ACGT":
            continue
        for alt in "ACGT":
            if alt != ref:
                term, gene, _ = ann.consequence(Variant(contig, int(p), ref, alt))
                rows.append((contig, int(p) + 1, ref, alt, term, gene, seq[p - start].islower()))
    df = pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt", "consequence", "gene", "soft_masked"])
    keep = [g.sample(min(len(g), per_class), random_state=seed) for _, g in df.groupby("consequence")]
    return pd.concat(keep).sort_values(["chrom", "pos", "alt"]).reset_index(drop=True)


def kmer_scores(counts_path: Path, genome: Genome, df: pd.DataFrame) -> np.ndarray:
    """±k context baseline: log p(alt | neighbours) - log p(ref | neighbours), true neighbours."""
    from nucfm.alphabet import get_alphabet
    from nucfm.data.baselines import ContextCounts

    cc = ContextCounts.load(counts_path)
    alpha = get_alphabet("gpn")  # residue columns in vocabulary order: a, c, g, t
    out = np.zeros(len(df))
    for i, r in enumerate(df.itertuples()):
        s = r.pos - 1
        ctx = genome.fetch(r.chrom, s - cc.k, s + cc.k + 1).upper()
        _, lp = cc.log_probs(np.asarray(alpha.encode(ctx), dtype=np.int64))
        out[i] = lp[cc.k, "ACGT".index(r.alt)] - lp[cc.k, "ACGT".index(r.ref)]
    return out


def summarise(df: pd.DataFrame, scores: np.ndarray) -> dict:
    d = pd.DataFrame({"score": scores, "consequence": df["consequence"].to_numpy()})
    table, summary = consequence_stats(d)
    inter = d.loc[d.consequence == "intergenic_variant", "score"].to_numpy()
    lof = d.loc[d.consequence.isin(LOF), "score"].to_numpy()
    summary["auroc_lof_vs_intergenic"] = auroc(lof, inter)
    summary["n_lof"], summary["n_intergenic"] = int(len(lof)), int(len(inter))
    summary["per_class"] = {r.consequence: {"n": int(r.n), "median": float(r.median),
                                            "auroc_vs_intergenic": float(r.auroc_vs_intergenic)}
                            for r in table.itertuples()}
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--genome", required=True)
    ap.add_argument("--gff", required=True)
    ap.add_argument("--region", default="NC_003070.9:28000001-30427671")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--random-positions", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device of the models (cpu, cuda)")
    ap.add_argument("--table", help="labelled SNV table (TSV): read if it exists, else built and written")
    ap.add_argument("-o", "--output", required=True, help="JSON of the results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    genome = Genome(args.genome)
    if args.table and Path(args.table).exists():
        df = pd.read_csv(args.table, sep="\t")
    else:
        t0 = time.time()
        df = build_set(genome, args.gff, args.region, args.per_class, args.random_positions, args.seed)
        print(f"labelled set: {len(df)} SNVs in {time.time() - t0:.0f} s", file=sys.stderr)
        if args.table:
            atomic_write_text(args.table, df.to_csv(sep="\t", index=False))
    print(df.consequence.value_counts().to_string(), file=sys.stderr)
    variants = [Variant(r.chrom, r.pos - 1, r.ref, r.alt) for r in df.itertuples()]
    results = {"region": args.region, "n": len(df), "per_class_cap": args.per_class, "seed": args.seed,
               "models": {}}
    counts = None
    for name in args.models:
        model = load_model(name).eval().to(args.device)
        t0 = time.time()
        scores = score_variants(model, genome, variants)["score"]
        res = summarise(df, scores)
        res["seconds"] = round(time.time() - t0, 1)
        results["models"][name] = res
        print(f"{name}: LoF vs intergenic {res['auroc_lof_vs_intergenic']:.3f}, missense vs synonymous "
              f"{res['auroc_missense_vs_synonymous']:.3f} ({res['seconds']} s)", file=sys.stderr)
        if counts is None and (resolve(name) / COUNTS_FILE).exists():
            counts = resolve(name) / COUNTS_FILE
    if counts is not None:
        res = summarise(df, kmer_scores(counts, genome, df))
        results["models"]["±3-mer context"] = res
        print(f"±3-mer: LoF vs intergenic {res['auroc_lof_vs_intergenic']:.3f}, missense vs synonymous "
              f"{res['auroc_missense_vs_synonymous']:.3f}", file=sys.stderr)
    atomic_write_text(args.output, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
