"""``nucfm genome-clusters`` on a hand-made genome and GFF3: region classes per base and per
window (priorities, both strands, soft-masked repeats), the two-strand centre embedding against a
manual forward + reverse-complement average, k-mer profiles counted independently, one CLI run
whose ARI is recomputed from its own table, and bad inputs (one-line errors, exit 2)."""

import json
from collections import Counter
from math import comb

import numpy as np
import pandas as pd
import pytest
import torch

from nucfm.alphabet import reverse_complement
from nucfm.analysis.genome_clusters import kmer_profiles
from nucfm.cli import main
from nucfm.io.genome import Genome
from nucfm.tasks.consequence import REGION_CLASSES, Annotation
from nucfm.tasks.genome_clusters import window_classes, window_embeddings

from tiny import dna_model

L = 3000
# 1-based GFF rows: a plus-strand coding gene (5' UTR, CDS, intron, CDS, 3' UTR), a minus-strand
# coding gene (its UTRs on the other sides), a non-coding exon overlapping gene 1's intron, a lncRNA
GFF = [
    ("chr1", "gene", 201, 800, "+", ".", "ID=g1"), ("chr1", "mRNA", 201, 800, "+", ".", "ID=t1;Parent=g1"),
    ("chr1", "exon", 201, 400, "+", ".", "Parent=t1"), ("chr1", "exon", 501, 800, "+", ".", "Parent=t1"),
    ("chr1", "CDS", 301, 400, "+", "0", "Parent=t1"), ("chr1", "CDS", 501, 700, "+", "2", "Parent=t1"),
    ("chr1", "transcript", 451, 520, "+", ".", "ID=t1b;Parent=g1"),
    ("chr1", "exon", 451, 520, "+", ".", "Parent=t1b"),
    ("chr1", "gene", 1201, 1800, "-", ".", "ID=g2"), ("chr1", "mRNA", 1201, 1800, "-", ".", "ID=t2;Parent=g2"),
    ("chr1", "exon", 1201, 1400, "-", ".", "Parent=t2"), ("chr1", "exon", 1501, 1800, "-", ".", "Parent=t2"),
    ("chr1", "CDS", 1301, 1400, "-", "2", "Parent=t2"), ("chr1", "CDS", 1501, 1700, "-", "0", "Parent=t2"),
    ("chr1", "gene", 2001, 2200, "+", ".", "ID=g3"), ("chr1", "lnc_RNA", 2001, 2200, "+", ".", "ID=t3;Parent=g3"),
    ("chr1", "exon", 2001, 2200, "+", ".", "Parent=t3"),
]


def synthetic_sequence() -> str:
    """Random bases with the motifs of the GFF planted (0-based): ATG at 300, TAA at 697, GT at
    400, AG at 498 (gene 1, +); on gene 2 (-) the reverse complements: CAT at 1697..1699 (ATG read
    from 1699 down), TTA at 1300 (stop TAA), AC at 1498 (GT), CT at 1400 (AG). Lowercase repeats
    at [420, 440) (inside the intron) and [2400, 2600) (intergenic)."""
    s = list("".join(np.random.default_rng(7).choice(list("ACGT"), L)))
    for pos, motif in ((300, "ATG"), (697, "TAA"), (400, "GT"), (498, "AG"),
                       (1697, "CAT"), (1300, "TTA"), (1498, "AC"), (1400, "CT")):
        s[pos : pos + len(motif)] = motif
    for a, b in ((420, 440), (2400, 2600)):
        s[a:b] = [c.lower() for c in s[a:b]]
    return "".join(s)


def write_synthetic(d, contig: str = "chr1", gff_contig: str = "chr1"):
    """(genome path, GFF path) of the synthetic genome in directory ``d``."""
    (d / "g.fa").write_text(f">{contig}\n{synthetic_sequence()}\n")
    rows = [(gff_contig, *r[1:]) for r in GFF]
    (d / "a.gff").write_text("##gff-version 3\n" + "".join(
        f"{c}\ttest\t{t}\t{s}\t{e}\t.\t{st}\t{ph}\t{a}\n" for c, t, s, e, st, ph, a in rows))
    return d / "g.fa", d / "a.gff"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gclust")
    genome, gff = write_synthetic(d)
    from nucfm import save_model

    save_model(dna_model(), d / "dna")
    Genome(genome).fetch("chr1", 0, 1)  # index once
    return d


@pytest.fixture(scope="module")
def ann(files):
    return Annotation(files / "a.gff", Genome(files / "g.fa"))


@pytest.mark.parametrize("pos, expected", [
    (100, "intergenic"), (250, "5_prime_UTR"), (350, "CDS"), (410, "intron"), (430, "intron"),
    (460, "ncRNA"), (510, "CDS"), (750, "3_prime_UTR"), (1250, "3_prime_UTR"), (1350, "CDS"), (1450, "intron"),
    (1750, "5_prime_UTR"), (2100, "ncRNA"), (2500, "repeat"), (2700, "intergenic"),
])
def test_region_class_of_a_base(ann, pos, expected):
    # 430: soft-masked inside an intron stays intron; 460: a non-coding exon over the intron wins;
    # 510: CDS beats the overlapping non-coding exon; gene 2 (minus strand): UTR sides swapped
    assert REGION_CLASSES[ann.region_classes("chr1", pos, pos + 1)[0]] == expected


def test_region_classes_of_a_range_match_single_bases(ann):
    whole = ann.region_classes("chr1", 0, L)
    assert [ann.region_classes("chr1", p, p + 1)[0] for p in range(180, 820, 7)] == list(whole[180:820:7])
    assert (whole[300:400] == REGION_CLASSES.index("CDS")).all()


def test_window_class_is_the_majority_ties_to_the_higher_priority(ann):
    # [260, 360): 40 bases 5' UTR, 60 CDS -> CDS (0.6); [250, 350): 50/50 -> CDS (earlier class)
    # [380, 480): 20 CDS, 50 intron, 30 ncRNA -> intron (0.5)
    codes, frac = window_classes(ann, "chr1", np.array([260, 250, 380, 2450]), 100)
    assert [REGION_CLASSES[c] for c in codes] == ["CDS", "CDS", "intron", "repeat"]
    assert frac.tolist() == [0.6, 0.5, 0.5, 1.0]


def test_two_strand_centre_embedding_equals_manual_average():
    model = dna_model(seed=3)
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(5)]
    seqs[1] = seqs[1][:10] + "NN" + seqs[1][12:]  # an unknown base in the context
    got = window_embeddings(model, seqs, center=10, chunk=2)
    a = (40 - 10) // 2

    def hidden(s):
        ids = torch.from_numpy(model.alphabet.encode(s))[None]
        return model.hidden(ids, torch.ones_like(ids, dtype=torch.bool), -1)[0].detach().numpy()

    for s, row in zip(seqs, got):
        fwd = hidden(s)[a : a + 10].mean(0)
        rev = hidden(reverse_complement(s))[40 - a - 10 : 40 - a].mean(0)
        np.testing.assert_allclose(row, (fwd + rev) / 2, rtol=1e-5, atol=1e-6)
    # the reverse-complement window embeds to the same vector (same bases, both strands)
    rc = window_embeddings(model, [reverse_complement(s) for s in seqs], center=10)
    np.testing.assert_allclose(rc, got, rtol=1e-5, atol=1e-6)


def test_kmer_profiles_match_an_independent_count():
    s = "ACGTTGCAAAnCCGTAGGAT"
    got = kmer_profiles([s], 3)[0]
    counts = Counter()
    for i in range(len(s) - 2):
        k = s[i : i + 3].upper()
        if set(k) <= set("ACGT"):
            counts[min(k, reverse_complement(k))] += 1
    assert len(got) == 32  # canonical 3-mers
    assert sorted(np.round(got[got > 0] * sum(counts.values())).astype(int).tolist()) == sorted(counts.values())


def _ari(a, b):
    """Adjusted Rand index by pair counting (Hubert & Arabie), for the CLI test."""
    table = pd.crosstab(pd.Series(a), pd.Series(b)).to_numpy()
    n = table.sum()
    index = sum(comb(int(x), 2) for x in table.ravel())
    rows, cols = sum(comb(int(x), 2) for x in table.sum(1)), sum(comb(int(x), 2) for x in table.sum(0))
    expected = rows * cols / comb(int(n), 2)
    return (index - expected) / ((rows + cols) / 2 - expected)


def test_cli_writes_tables_figures_and_consistent_metrics(files, capsys):
    out = files / "out"
    code = main(["genome-clusters", "--genome", str(files / "g.fa"), "--gff", str(files / "a.gff"),
                 "--region", "chr1:1-3000", "-m", str(files / "dna"), "--window", "64", "--center", "50",
                 "--neighbors", "8", "--block", "500", "--threads", "1", "--no-progress", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    for name in ("clusters.png", "clusters.svg", "windows.tsv", "composition.tsv", "metrics.tsv", "metrics.json"):
        assert (out / name).stat().st_size > 0
    with np.load(out / "embeddings.npz") as z:
        assert z["embedding"].shape == (60, 16) and z["start"].tolist() == list(range(0, 3000, 50))
    w = pd.read_csv(out / "windows.tsv", sep="\t")
    assert len(w) == 60 and w["start"].tolist() == list(range(0, 3000, 50))
    assert w.loc[w["start"] == 300, "class"].item() == "CDS" and w.loc[w["start"] == 2450, "class"].item() == "repeat"
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["representation"] for m in metrics["metrics"]] == ["model", "kmer4_center", "kmer4_window"]
    for m in metrics["metrics"]:
        assert m["ari"] == pytest.approx(_ari(w["class"], w[f"cluster_{m['representation']}"]), abs=1e-9)
        assert 0 <= m["probe_balanced_accuracy"] <= 1 and m["clusters"] == w[f"cluster_{m['representation']}"].nunique()
        assert 0 <= m["probe_blocked_balanced_accuracy"] <= 1  # 6 blocks of 500 bp, 5 folds
    comp = pd.read_csv(out / "composition.tsv", sep="\t")
    sums = comp.groupby(["representation", "cluster"])["fraction"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-3)
    assert sum(metrics["class_counts"].values()) == 60
    assert "model" in capsys.readouterr().out


def cli_error(argv, capsys):
    """Run the CLI; it must fail with exit 2 and one `nucfm: error:` line (returned)."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("nucfm: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_are_one_line_errors(files, tmp_path, capsys):
    def run(region, center="50", gff=files / "a.gff"):
        return cli_error(["genome-clusters", "--genome", str(files / "g.fa"), "-m", str(files / "dna"),
                          "--window", "64", "--center", center, "--threads", "1", "--no-progress",
                          "-o", str(tmp_path / "o"), "--gff", str(gff), "--region", region], capsys)

    other = tmp_path / "other"
    other.mkdir()
    _, gff_other = write_synthetic(other, gff_contig="NC_999")
    err = run("chr1:1-3000", gff=gff_other)
    assert "no feature on chr1" in err and "NC_999" in err and "--chrom-alias" in err
    assert "not inside chr1 (1-3000)" in run("chr1:2001-3500")
    assert "chrZ" in run("chrZ:1-100")
    err = run("chr1:1-1000")
    assert "20 window(s)" in err and "at least 30" in err
    assert "all 40 windows are repeat" in run("chr1:2401-2600", center="5")
    err = run("chr1:2381-2600", center="5")  # 4 intergenic windows, 40 repeat: too few for 5 folds
    assert "at least 2 region classes with >= 5 windows each (found repeat 40, intergenic 4)" in err
    assert "--center 100 is longer than --window 64" in run("chr1:1-3000", center="100")
    assert not (tmp_path / "o").exists()
