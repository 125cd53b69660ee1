"""SARS-CoV-2 UTR structures: nucfm's whole-genome (local mode) fold beside RNAfold on the same
windows. Writes a figure of arc diagrams and prints pair counts and agreement.

    nucfm fold -i ../shared/data/virus/sars_cov_2_NC_045512.2.fasta -o sars.dbn --threads 1
    python scripts/sars_cov_2_utr.py ../shared/data/virus/sars_cov_2_NC_045512.2.fasta sars.dbn \
        -o docs/sars_cov_2_utr.png

Windows are 1-based inclusive genome positions: the 5' UTR region 1-300 and the 3' region
29,604-29,903 (the last 300 nt: the 3' UTR, 29,675-29,903, and the end of ORF10 before it).
nucfm pairs are those of the genome fold with both ends in the window; RNAfold (MFE, Turner
2004, 37 °C) folds the window alone.
"""

import argparse
import json

from nucfm.alphabet import structure_letters
from nucfm.analysis.structure_plots import plot_arc_panels
from nucfm.data.structure_features import vienna_mfe
from nucfm.io.fasta import read_fasta
from nucfm.io.structure import read_structures
from nucfm.metrics import score_pairs

p = argparse.ArgumentParser()
p.add_argument("genome")
p.add_argument("fold", help="nucfm fold output (.dbn) of the genome")
p.add_argument("-o", "--output", default="docs/sars_cov_2_utr.png")
args = p.parse_args()

genome = structure_letters(next(iter(read_fasta(args.genome))).seq)
folded = read_structures(args.fold)[0]
assert structure_letters(folded.seq) == genome
windows = {"5' UTR region": (1, 300), "3' end (3' UTR 29,675-29,903)": (len(genome) - 299, len(genome))}
panels, report = [], {}
for name, (a, b) in windows.items():
    s0 = a - 1
    ours = [(i - s0, j - s0) for i, j in folded.pairs if s0 <= i and j < b]
    rnafold = vienna_mfe(genome[s0:b])
    sc = score_pairs(ours, rnafold, b - s0)
    report[name] = {"window": [a, b], "nucfm_pairs": len(ours), "rnafold_pairs": len(rnafold),
                    "shared": sc.tp, "f1_vs_rnafold": round(sc.f1, 3)}
    panels.append({"label": f"{name} {a:,}-{b:,}: nucfm genome fold (above; red = also in RNAfold), "
                            f"RNAfold on the window (below, grey); shared {sc.tp} of {len(ours)} / {len(rnafold)}",
                   "length": b - s0, "start": a, "pairs": ours, "compare": rnafold})
plot_arc_panels(panels, args.output, title="SARS-CoV-2 NC_045512.2: nucfm (local mode, span 200) vs RNAfold")
print(json.dumps(report, indent=2))
