"""Cut the example data in examples/ from the shared data sets (run once; the output is committed).

    python scripts/make_examples.py --data ../shared/data -o examples

Every file is a small, real slice (sources and licences: examples/README.md); the only made-up
file is the variant list, whose positions and REF bases come from the genome slice.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
from pathlib import Path

from nucfm.io.fasta import Record, read_fasta, write_fasta

GENOME_CHROM = "NC_003070.9"
GENOME_START, GENOME_END = 28_000_001, 28_200_000  # 1-based inclusive, in the shipped DNA model's held-out part
SLICE = "chr1_28M"  # the slice's own contig name; position p here is GENOME_START - 1 + p on NC_003070.9
RNACENTRAL_TYPES = ["rRNA", "tRNA", "snRNA", "snoRNA", "miRNA", "lncRNA", "SRP_RNA", "ribozyme", "Y_RNA", "piRNA"]


def typed_ncrnas(data: Path, out: Path, per_type: int = 6) -> None:
    """A few RNAcentral records of each of ten types (the RNA-FM atlas tutorial's set)."""
    kept: dict[str, list] = {t: [] for t in RNACENTRAL_TYPES}
    for r in read_fasta(data / "ncrna/rnacentral_28types_x50.fasta"):
        kind = r.description.split()[0] if r.description else ""
        if kind in kept and len(kept[kind]) < per_type and len(r.seq) <= 400:
            kept[kind].append(r)
    write_fasta([r for t in RNACENTRAL_TYPES for r in kept[t]], out / "ncrna_typed.fa")


def rfam_seeds(data: Path, out: Path, families: int = 24, per_family: int = 8) -> None:
    """Rfam 14.2 seed sequences of a few families (the header's second word is the family
    accession, which RNA pretraining uses to hold out whole families for validation)."""
    kept: dict[str, list] = {}
    for r in read_fasta(data / "ncrna/rfam14.2_seed_typed.fasta.gz"):
        fam = r.description.split()[0]
        if len(r.seq) > 200 or (fam not in kept and len(kept) >= families * 4):
            continue
        kept.setdefault(fam, [])
        if len(kept[fam]) < per_family:
            kept[fam].append(r)
    full = [f for f, rs in kept.items() if len(rs) == per_family][:families]
    write_fasta([r for f in full for r in kept[f]], out / "rfam_seeds.fa")


def structures(data: Path, out: Path) -> None:
    """Short bpRNA records with dot-bracket structures: train / valid / test slices of TR0, VL0, TS0."""
    for src, dst, n in (("TR0", "ss_train.dbn", 60), ("VL0", "ss_valid.dbn", 15), ("TS0", "ss_test.dbn", 10)):
        lines = (data / f"ss/bprna/{src}.dbn").read_text().splitlines()
        records = [lines[i:i + 3] for i in range(0, len(lines) - 2, 3)]
        short = [r for r in records if 40 <= len(r[1]) <= 120][:n]
        (out / dst).write_text("".join(f"{a}\n{b}\n{c}\n" for a, b, c in short))
        if src == "TS0":  # the same test records without their structures: the input of `nucfm fold`
            (out / "ss_test.fa").write_text("".join(f"{a}\n{b}\n" for a, b, _ in short))


def contacts(data: Path, out: Path) -> None:
    """The shortest SPOT-RNA-2D chains with contact lists (train / valid / test)."""
    for src, n in (("TR", 12), ("VL", 4), ("TS1", 4)):
        with gzip.open(data / f"contact/{src}.jsonl.gz", "rt") as f:
            rows = [json.loads(line) for line in f]
        rows = sorted((r for r in rows if len(r["seq"]) >= 30), key=lambda r: len(r["seq"]))[:n]
        with open(out / f"contacts_{src.lower()}.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps({k: r[k] for k in ("id", "seq", "contacts")}) + "\n")
    rows = [json.loads(line) for line in open(out / "contacts_ts1.jsonl")]
    write_fasta([Record(r["id"], r["seq"]) for r in rows], out / "contacts_ts1.fa")


def utrs(data: Path, out: Path, n: int = 1200) -> None:
    """The first rows of the Sample et al. 2019 5' UTR library (sequence, mean ribosome load)."""
    lines = (data / "utr/mrl_sample2019_m1psi_rep2_20k.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [header.index("utr"), header.index("rl")]
    rows = [",".join(line.split(",")[i] for i in keep) for line in lines[1:n + 1]]
    (out / "utr_mrl.csv").write_text("utr,rl\n" + "\n".join(rows) + "\n")
    write_fasta([Record(f"utr{i}", row.split(",")[0]) for i, row in enumerate(rows[:20])], out / "utrs.fa")


def ncrna_classes(data: Path, out: Path, per_class: int = 30, test_per_class: int = 8) -> None:
    """A class-balanced slice of the nRC benchmark (13 classes; the class is the header's last word)."""
    for src, dst, n in (("train_6320", "nrc_train.fa", per_class), ("test_2600", "nrc_test.fa", test_per_class)):
        seen: dict[str, int] = {}
        kept = []
        for r in read_fasta(data / f"ncrna/nrc/{src}.fasta"):
            label = r.description.split()[-1]
            if seen.get(label, 0) < n and len(r.seq) <= 300:
                seen[label] = seen.get(label, 0) + 1
                kept.append(r)
        write_fasta(kept, out / dst)


def genome(data: Path, out: Path) -> str:
    """200 kb of TAIR10 chromosome 1 as its own contig, and the genes wholly inside it (GFF3)."""
    seq = "".join(r.seq for r in read_fasta(data / "genome/arabidopsis/TAIR10_chr1.fna.gz"))
    piece = seq[GENOME_START - 1:GENOME_END]
    with gzip.open(out / "genome.fa.gz", "wt") as f:
        f.write(f">{SLICE} {GENOME_CHROM}:{GENOME_START}-{GENOME_END} (TAIR10 chr1, 1-based; soft-masked)\n")
        f.writelines(piece[i:i + 80] + "\n" for i in range(0, len(piece), 80))
    shift = GENOME_START - 1
    kept_ids: set[str] = set()
    rows = [f"##gff-version 3\n##sequence-region {SLICE} 1 {len(piece)}\n"]
    with gzip.open(data / "genome/arabidopsis/TAIR10_chr1.gff.gz", "rt") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            col = line.rstrip("\n").split("\t")
            if col[0] != GENOME_CHROM or col[2] == "region":
                continue
            start, end = int(col[3]), int(col[4])
            ids = dict(kv.split("=", 1) for kv in col[8].split(";") if "=" in kv)
            parents = ids.get("Parent", "").split(",") if "Parent" in ids else []
            inside = GENOME_START <= start and end <= GENOME_END
            if (not parents and inside) or (parents and all(p in kept_ids for p in parents) and inside):
                if "ID" in ids:
                    kept_ids.add(ids["ID"])
                col[0], col[3], col[4] = SLICE, str(start - shift), str(end - shift)
                rows.append("\t".join(col) + "\n")
    with gzip.open(out / "genome.gff.gz", "wt") as f:
        f.writelines(rows)
    return piece


def variants(piece: str, out: Path, seed: int = 0) -> None:
    """Variants at real positions of the slice, REF from the genome: SNVs, a multi-allelic site,
    indels, an MNV, and one bad row (a REF that does not match the genome)."""
    rng = random.Random(seed)
    rows = []
    acgt = [i for i in range(1000, len(piece) - 1000) if piece[i] in "ACGTacgt"]
    for pos0 in sorted(rng.sample(acgt, 24)):
        ref = piece[pos0].upper()
        rows.append((pos0 + 1, ref, rng.choice([b for b in "ACGT" if b != ref])))
    pos0 = rng.choice(acgt)
    ref = piece[pos0].upper()
    rows.append((pos0 + 1, ref, ",".join(b for b in "ACGT" if b != ref)))  # multi-allelic
    for k in (1, 3):  # deletions and insertions of k bases, VCF-style anchored on the base before
        p = rng.choice(acgt)
        rows.append((p + 1, piece[p:p + k + 1].upper(), piece[p].upper()))
        p = rng.choice(acgt)
        rows.append((p + 1, piece[p].upper(), piece[p].upper() + "".join(rng.choice("ACGT") for _ in range(k))))
    p = rng.choice(acgt)
    rows.append((p + 1, piece[p:p + 2].upper(), "".join(rng.choice("ACGT") for _ in range(2))))  # MNV
    p = rng.choice(acgt)
    wrong = next(b for b in "ACGT" if b != piece[p].upper())
    rows.append((p + 1, wrong, piece[p].upper()))  # bad row: REF does not match the genome
    rows.sort()
    with open(out / "variants.vcf", "w") as f:
        f.write("##fileformat=VCFv4.2\n")
        f.write(f"##contig=<ID={SLICE},length={len(piece)}>\n")
        f.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for i, (pos, ref, alt) in enumerate(rows):
            f.write(f"{SLICE}\t{pos}\tv{i + 1}\t{ref}\t{alt}\t.\t.\t.\n")
    with open(out / "variants.tsv", "w") as f:
        f.write("chrom\tpos\tref\talt\tname\n")
        for i, (pos, ref, alt) in enumerate(rows):
            f.write(f"{SLICE}\t{pos}\t{ref}\t{alt}\tv{i + 1}\n")


def sars_cov_2(data: Path, out: Path, isolates: int = 4) -> None:
    """NC_045512.2 and the first few early-2020 isolates."""
    records = list(read_fasta(data / "virus/sars_cov_2_NC_045512.2.fasta"))
    records += list(read_fasta(data / "virus/sars_cov_2_2020_isolates_10.fasta.gz"))[:isolates]
    with gzip.open(out / "sars_cov_2.fa.gz", "wt") as f:
        for r in records:
            f.write(f">{r.id} {r.description}".rstrip() + "\n")
            f.writelines(r.seq[i:i + 80] + "\n" for i in range(0, len(r.seq), 80))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", type=Path)
    ap.add_argument("-o", "--output", default="examples", type=Path)
    args = ap.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    typed_ncrnas(args.data, args.output)
    rfam_seeds(args.data, args.output)
    structures(args.data, args.output)
    contacts(args.data, args.output)
    utrs(args.data, args.output)
    ncrna_classes(args.data, args.output)
    variants(genome(args.data, args.output), args.output)
    sars_cov_2(args.data, args.output)
    for p in sorted(args.output.iterdir()):
        print(f"{p.stat().st_size:>9,d}  {p}")
    assert re.fullmatch(r"\w+", SLICE)


if __name__ == "__main__":
    main()
