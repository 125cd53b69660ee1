"""Does diffusion pseudotime over RNA embeddings follow evolutionary distance? (RNA-FM Fig. 2c)

Selects miRBase stem-loops of deeply conserved miRNA families across species from human to
plants, labels each by species group, runs ``nucfm atlas --trajectory human`` on them and reports
the Spearman rank correlation between each record's diffusion pseudotime and the divergence time
of its species from human, for every representation of the atlas (the LM, the random-init LM,
k-mer composition). Also the correlation over the species medians (8 points).

Families (animal): let-7, lin-4 (the mir-125 family's worm member), mir-1, mir-9, mir-34, mir-100,
mir-124, mir-125 — conserved from worms/flies to human. Plants share none of them (plant and animal
miRNAs arose independently), so the plant group holds the families conserved across land plants
instead: MIR156, MIR159, MIR166, MIR167, MIR319, MIR390. The plant points therefore differ in family
as well as in lineage; the correlation without plants is reported too.

Species groups (miRBase prefixes): human (hsa), mouse (mmu), chicken (gga), frog (xtr, xla),
zebrafish (dre), fly (12 Drosophila species), worm (cel, cbr, cbn, crm: Caenorhabditis), plant
(ath, osa). Flies and worms pool several species of one genus so that each group has enough
records for the 5-fold kNN of the atlas.

    PYTHONPATH=src python bench/atlas_trajectory.py --mirbase ../shared/data/ncrna/mirbase_hairpin.fa.gz \\
        -o /work/runs/atlas/mirbase --threads 1 --results bench/results/atlas_trajectory.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# Divergence from human, million years (TimeTree pairwise median estimates: Kumar S, Stecher G,
# Suleski M, Hedges SB 2017, "TimeTree: a resource for timelines, timetrees, and divergence times",
# Mol Biol Evol 34:1812-1819; timetree.org). Human-chicken was read from an archived TimeTree page
# (319.6 Mya, median of 22 studies); the others are the rounded TimeTree medians quoted in the
# project issue. Fly and worm share the protostome-deuterostome split. Only the order matters for
# a rank correlation: mouse < chicken < frog < zebrafish < fly = worm < plant.
DIVERGENCE_MYA = {"human": 0, "mouse": 90, "chicken": 319, "frog": 352, "zebrafish": 433, "fly": 797, "worm": 797,
                  "plant": 1500}
SPECIES = {"hsa": "human", "mmu": "mouse", "gga": "chicken", "xtr": "frog", "xla": "frog", "dre": "zebrafish",
           "cel": "worm", "cbr": "worm", "cbn": "worm", "crm": "worm", "ath": "plant", "osa": "plant",
           **{p: "fly" for p in ("dme", "dan", "der", "dgr", "dmo", "dpe", "dps", "dse", "dsi", "dvi", "dwi", "dya")}}
ANIMAL_FAMILIES = ("let-7", "lin-4", "mir-1", "mir-9", "mir-34", "mir-100", "mir-124", "mir-125")
PLANT_FAMILIES = ("MIR156", "MIR159", "MIR166", "MIR167", "MIR319", "MIR390")
# family name, then at most one letter (paralogue) and a copy number: mir-1a-2 is mir-1, mir-100 is not
FAMILY = re.compile(r"^(" + "|".join(map(re.escape, ANIMAL_FAMILIES + PLANT_FAMILIES)) + r")(?![0-9])[a-z]?(-\w+)?$",
                    re.IGNORECASE)


def select(mirbase: Path, fasta_out: Path) -> dict:
    """Write the selected stem-loops as ``>ID SPECIES_GROUP FAMILY``; return counts per group."""
    from nucfm.io.fasta import Record, read_fasta, write_fasta

    counts: dict[str, dict[str, int]] = {}
    chosen = []
    for rec in read_fasta(mirbase):
        prefix, _, name = rec.id.partition("-")
        group = SPECIES.get(prefix)
        m = FAMILY.match(name) if group else None
        if m is None:
            continue
        family = m.group(1)
        plant = family.upper().startswith("MIR") and family.upper() in PLANT_FAMILIES
        if plant != (group == "plant"):  # a plant family name in an animal, or the reverse
            continue
        chosen.append(Record(rec.id, rec.seq, f"{group} {family.lower()}"))
        counts.setdefault(group, {}).setdefault(family.lower(), 0)
        counts[group][family.lower()] += 1
    write_fasta(chosen, fasta_out)
    return counts


def correlations(pseudotime_tsv: Path) -> dict:
    """Spearman of pseudotime vs divergence per representation: over records, over the species
    medians, and over records without plants."""
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    pt = pd.read_csv(pseudotime_tsv, sep="\t")
    pt["mya"] = pt["label"].map(DIVERGENCE_MYA)
    out = {}
    for rep, df in pt.groupby("representation", sort=False):
        df = df.dropna(subset=["pseudotime"])
        rho, p = spearmanr(df["pseudotime"], df["mya"])
        animals = df[df["label"] != "plant"]
        rho_a, p_a = spearmanr(animals["pseudotime"], animals["mya"])
        med = df.groupby("label")["pseudotime"].median()
        rho_m, p_m = spearmanr(med.to_numpy(), med.index.map(DIVERGENCE_MYA).to_numpy())
        out[rep] = {"records": int(len(df)), "spearman": float(rho), "p": float(p),
                    "spearman_without_plants": float(rho_a), "p_without_plants": float(p_a),
                    "spearman_of_medians": float(rho_m), "p_of_medians": float(p_m),
                    "median_pseudotime": {k: round(float(v), 4) for k, v in
                                          sorted(med.items(), key=lambda kv: DIVERGENCE_MYA[kv[0]])},
                    "unreached": int(np.isnan(pt[pt.representation == rep]["pseudotime"]).sum())}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirbase", default="../shared/data/ncrna/mirbase_hairpin.fa.gz", help="miRBase hairpin FASTA")
    ap.add_argument("-o", "--output", required=True, help="run directory (the FASTA and the atlas go here)")
    ap.add_argument("-m", "--model", action="append", default=None, help="language model(s) (default: shipped RNA)")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--results", default=None, help="also write the correlations to this JSON")
    args = ap.parse_args()

    from nucfm.cli import main as nucfm

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    fasta = out / "mirbase_families.fa"
    counts = select(Path(args.mirbase), fasta)
    print(json.dumps({g: sum(c.values()) for g, c in counts.items()}))
    cmd = ["atlas", "-i", str(fasta), "-o", str(out / "atlas"), "--trajectory", "human", "--threads", args.threads,
           "--no-progress"]
    for m in args.model or []:
        cmd += ["-m", m]
    print("nucfm " + " ".join(cmd))
    code = nucfm(cmd)
    if code:
        return code
    result = {"command": "nucfm " + " ".join(cmd), "records_per_group": counts, "divergence_mya": DIVERGENCE_MYA,
              "correlations": correlations(out / "atlas" / "pseudotime.tsv")}
    print(f"{'representation':45s} {'rho':>7s} {'p':>9s} {'rho(no plant)':>14s} {'p':>9s} {'rho(medians)':>13s} "
          f"{'p':>7s}")
    for rep, c in result["correlations"].items():
        print(f"{rep:45s} {c['spearman']:7.3f} {c['p']:9.2g} {c['spearman_without_plants']:14.3f} "
              f"{c['p_without_plants']:9.2g} {c['spearman_of_medians']:13.3f} {c['p_of_medians']:7.2g}")
    text = json.dumps(result, indent=1) + "\n"
    from nucfm.paths import atomic_write_text

    atomic_write_text(out / "trajectory_spearman.json", text)
    if args.results:
        atomic_write_text(args.results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
