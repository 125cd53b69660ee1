"""Control sets for ``nucfm compare`` with real divergence (the SARS-CoV-2 isolates differ by a
handful of mutations): orthologous miRNA hairpins of four families in four vertebrates, and the
first seed sequences of four Rfam families. A good embedding tree groups records by family, as
the sequence tree does.

    python scripts/compare_controls.py --mirbase ../shared/data/ncrna/mirbase_hairpin.fa.gz \\
        --rfam ../shared/data/ncrna/rfam14.2_seed_typed.fasta.gz -o /work/runs/compare/controls

writes ``OUT/mirna_4x4.fa`` (16 hairpins) and ``OUT/rfam_4x5.fa`` (20 seeds), ids prefixed by
their family so the trees can be read at a glance. After ``nucfm compare`` on them,

    python scripts/compare_controls.py --clades /work/runs/compare/mirna_4x4 /work/runs/compare/rfam_4x5

prints which families are a clade (one side of a split of the unrooted tree) in each tree.
Both sets are drawn from the data the shipped RNA model was trained on (Rfam seeds +
miRBase): they test whether its embeddings carry family structure, not whether it generalises.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nucfm.io.fasta import Record, read_fasta, write_fasta

# family -> hairpin id per species (human, mouse, chicken, zebrafish), as miRBase names them
MIRNA = {
    "let-7a": ["hsa-let-7a-1", "mmu-let-7a-1", "gga-let-7a-1", "dre-let-7a-1"],
    "mir-1": ["hsa-mir-1-1", "mmu-mir-1a-1", "gga-mir-1a-1", "dre-mir-1-1"],
    "mir-30a": ["hsa-mir-30a", "mmu-mir-30a", "gga-mir-30a", "dre-mir-30a"],
    "mir-126": ["hsa-mir-126", "mmu-mir-126a", "gga-mir-126", "dre-mir-126a"],
}
RFAM = {"RF00005": "tRNA", "RF00001": "5S_rRNA", "RF00162": "SAM", "RF00059": "TPP"}
PER_FAMILY = 5


def mirna_set(path: str) -> list[Record]:
    wanted = {rid: fam for fam, ids in MIRNA.items() for rid in ids}
    found = {r.id: r for r in read_fasta(path) if r.id in wanted}
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise SystemExit(f"{path}: hairpins not found: {', '.join(missing)}")
    return [found[rid] for ids in MIRNA.values() for rid in ids]


def rfam_set(path: str) -> list[Record]:
    picked: dict[str, list[Record]] = {acc: [] for acc in RFAM}
    for r in read_fasta(path):
        acc = r.description.split()[0] if r.description else ""
        if acc in picked and len(picked[acc]) < PER_FAMILY:
            picked[acc].append(Record(f"{RFAM[acc]}_{r.id}", r.seq))
        if all(len(v) == PER_FAMILY for v in picked.values()):
            break
    return [r for acc in RFAM for r in picked[acc]]


def family(tip: str) -> str | None:
    for fam, ids in MIRNA.items():
        if tip in ids:
            return fam
    return next((fam for fam in RFAM.values() if tip.startswith(f"{fam}_")), None)


def clades(outdir: Path) -> None:
    """Print, for each tree of a ``nucfm compare`` output, the families that form a clade."""
    from skbio import TreeNode

    for which in ("embedding", "sequence"):
        tree = TreeNode.read(str(outdir / f"tree_{which}.nwk"))
        tips = frozenset(t.name for t in tree.tips())
        sides = set()
        for node in tree.non_tips():
            side = frozenset(t.name for t in node.tips())
            sides |= {side, tips - side}
        fams = sorted({family(t) for t in tips} - {None})
        good = [f for f in fams if frozenset(t for t in tips if family(t) == f) in sides]
        print(f"{outdir.name}\t{which}\t{len(good)} of {len(fams)} families are clades\t{', '.join(good)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirbase", help="miRBase hairpin FASTA (mirbase_hairpin.fa.gz)")
    ap.add_argument("--rfam", help="typed Rfam seed FASTA (rfam14.2_seed_typed.fasta.gz)")
    ap.add_argument("-o", "--output", help="output directory")
    ap.add_argument("--clades", nargs="+", metavar="DIR", help="instead: count family clades in compare outputs")
    args = ap.parse_args()
    if args.clades:
        for d in args.clades:
            clades(Path(d))
        return
    if not (args.mirbase and args.rfam and args.output):
        ap.error("give --mirbase, --rfam and -o (or --clades DIR...)")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, records in (("mirna_4x4.fa", mirna_set(args.mirbase)), ("rfam_4x5.fa", rfam_set(args.rfam))):
        write_fasta(records, out / name)
        print(f"{out / name}: {len(records)} records")


if __name__ == "__main__":
    main()
