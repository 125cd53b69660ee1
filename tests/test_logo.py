"""``nucfm logo``: information content computed independently, annotated sites on both strands
of a hand-made genome (minus-strand sites reverse-complemented, in the observed bases and in
the model's distributions), region logos from a ``probs`` table and from the genome, and bad
inputs (one-line errors, exit 2)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_genome_clusters import cli_error, write_synthetic

from nucfm.analysis.logos import information_content, logo_heights
from nucfm.cli import main
from nucfm.io.genome import Genome
from nucfm.tasks.consequence import Annotation
from nucfm.tasks.logo import model_site_probs, observed_counts, site_matrix, site_offsets
from nucfm.tasks.variants import position_probs

from tiny import dna_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("logo")
    write_synthetic(d)
    from nucfm import save_model

    save_model(dna_model(), d / "dna")
    Genome(d / "g.fa").fetch("chr1", 0, 1)
    return d


@pytest.fixture(scope="module")
def genome(files):
    return Genome(files / "g.fa")


@pytest.fixture(scope="module")
def ann(files, genome):
    return Annotation(files / "a.gff", genome)


def test_information_content_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([0.3] * 4, size=50)
    p[0] = [1, 0, 0, 0]
    expected = [2 + sum(x * math.log2(x) for x in row if x > 0) for row in p]
    np.testing.assert_allclose(information_content(p), expected, atol=1e-12)
    np.testing.assert_allclose(logo_heights(p).sum(1), expected, atol=1e-12)  # stack height = IC
    assert information_content(np.array([[2.0, 2, 2, 2]]))[0] == pytest.approx(0)  # normalised first


@pytest.mark.parametrize("kind, expected", [
    ("start_codon", [(300, "+"), (1699, "-")]), ("stop_codon", [(697, "+"), (1302, "-")]),
    ("splice_donor", [(400, "+"), (1499, "-")]), ("splice_acceptor", [(498, "+"), (1401, "-")]),
])
def test_sites_from_the_gff_on_both_strands(ann, kind, expected):
    assert ann.sites(kind, "chr1", 0, 3000) == expected
    assert ann.sites(kind, "chr1", 0, 1000) == expected[:1]  # the motif must lie inside the region


@pytest.mark.parametrize("kind, motif", [("start_codon", "ATG"), ("stop_codon", "TAA"), ("splice_donor", "GT"),
                                         ("splice_acceptor", "AG")])
def test_minus_strand_sites_read_reverse_complemented(ann, genome, kind, motif):
    sites = ann.sites(kind, "chr1", 0, 3000)
    offsets = site_offsets(kind, 0)
    for site in sites:  # each strand alone reads the motif 5'->3'
        pos, minus = site_matrix(genome, "chr1", [site], offsets)
        counts = observed_counts(genome, "chr1", pos, minus)
        assert "".join("ACGT"[k] for k in counts.argmax(1)) == motif and counts.sum() == len(motif)


def test_model_distributions_of_minus_sites_are_complemented(genome):
    model = dna_model(seed=1)
    sites = [(1699, "-"), (300, "+")]
    offsets = np.arange(-2, 5)
    pos, minus = site_matrix(genome, "chr1", sites, offsets)
    got = model_site_probs(model, genome, "chr1", pos, minus, window=32)
    plus = position_probs(model, genome, "chr1", 298, 305, window=32)["probs"]  # forward-strand letters
    rev = position_probs(model, genome, "chr1", 1695, 1702, window=32)["probs"]
    for o, off in enumerate(offsets):
        np.testing.assert_allclose(got[1, o], plus[300 + off - 298], atol=1e-9)
        np.testing.assert_allclose(got[0, o], rev[1699 - off - 1695][::-1], atol=1e-9)  # A<->T, C<->G


def test_cli_meta_logos(files, capsys):
    out = files / "meta"
    code = main(["logo", "--genome", str(files / "g.fa"), "--gff", str(files / "a.gff"), "--region", "chr1:1-3000",
                 "--sites", "splice_donor", "start_codon", "--flank", "3", "-m", str(files / "dna"), "--window", "32",
                 "--threads", "1", "--no-progress", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    core = pd.read_csv(out / "core_ic.tsv", sep="\t").set_index("site")
    # every site carries the planted motif: observed core information is 2 bits a base
    assert core.loc["splice_donor", "observed_core"] == "GT" and core.loc["start_codon", "observed_core"] == "ATG"
    assert core.loc["splice_donor", "core_ic_observed_bits"] == pytest.approx(4.0)
    assert core.loc["start_codon", "core_ic_observed_bits"] == pytest.approx(6.0)
    assert core.loc["start_codon", "sites_minus_strand"] == 1 and core.loc["start_codon", "sites_used"] == 2
    table = pd.read_csv(out / "start_codon.tsv", sep="\t")
    model = table[table["source"] == "model"]
    assert model["offset"].tolist() == list(range(-3, 6))
    np.testing.assert_allclose(model["ic_bits"], information_content(model[list("ACGT")].to_numpy()), atol=1e-4)
    assert core.loc["start_codon", "core_ic_model_bits"] == pytest.approx(model[model["core"]]["ic_bits"].sum(),
                                                                         abs=1e-3)
    for name in ("splice_donor.png", "splice_donor.svg", "start_codon.json", "core_ic.json", "meta_logos.png",
                 "meta_logos.svg", "meta_logos.tsv"):
        assert (out / name).stat().st_size > 0
    assert "splice_donor" in capsys.readouterr().out


def test_cli_region_logo_from_a_probs_table_and_from_the_genome(files, capsys):
    common = ["-m", str(files / "dna"), "--window", "32", "--threads", "1", "--no-progress"]
    assert main(["probs", "--genome", str(files / "g.fa"), "--region", "chr1:101-160", "-o", str(files / "p.tsv"),
                 *common]) == 0
    assert main(["logo", "--probs", str(files / "p.tsv"), "--row-length", "25", "-o", str(files / "lt")]) == 0
    assert main(["logo", "--genome", str(files / "g.fa"), "--region", "chr1:101-160", "-o", str(files / "lg"),
                 *common]) == 0
    probs = pd.read_csv(files / "p.tsv", sep="\t")
    expected = [2 + sum(x * math.log2(x) for x in row if x > 0) for row in probs[list("ACGT")].to_numpy()]
    for d in ("lt", "lg"):
        logo = pd.read_csv(files / d / "logo.tsv", sep="\t")
        assert logo["pos"].tolist() == list(range(101, 161)) and "".join(logo["ref"]) == \
            Genome(files / "g.fa").fetch("chr1", 100, 160)
        np.testing.assert_allclose(logo["ic_bits"], expected, atol=1e-4)
        assert json.loads((files / d / "logo.json").read_text())["positions"] == 60
        assert (files / d / "logo.png").stat().st_size > 0 and (files / d / "logo.svg").stat().st_size > 0
    capsys.readouterr()


def test_bad_inputs_are_one_line_errors(files, tmp_path, capsys):
    o = ["-o", str(tmp_path / "o")]
    (tmp_path / "bad.tsv").write_text("chrom\tpos\tA\tC\nchr1\t1\t0.5\t0.5\n")
    err = cli_error(["logo", "--probs", str(tmp_path / "bad.tsv"), *o], capsys)
    assert "missing column(s) ['G', 'T', 'ref']" in err
    (tmp_path / "two.tsv").write_text("chrom\tpos\tA\tC\tG\tT\tref\nchr1\t1\t1\t0\t0\t0\tA\nchr2\t1\t1\t0\t0\t0\tA\n")
    assert "2 contigs" in cli_error(["logo", "--probs", str(tmp_path / "two.tsv"), *o], capsys)
    genome = ["--genome", str(files / "g.fa"), "-m", str(files / "dna"), "--window", "32", "--no-progress"]
    err = cli_error(["logo", *genome, "--region", "chr1:1-2000", *o], capsys)
    assert "2,000 positions: too long for a logo" in err and "--max-length 1,000" in err
    err = cli_error(["logo", *genome, "--region", "chr1:2001-2300", "--sites", "splice_donor", "--gff",
                  str(files / "a.gff"), *o], capsys)
    assert "no splice_donor site in chr1:2001-2300" in err
    assert "not inside chr1" in cli_error(["logo", *genome, "--region", "chr1:2901-3100", *o], capsys)
    assert "either --probs" in cli_error(["logo", "--probs", str(files / "a.gff"), *genome, "--region", "chr1:1-9", *o],
                                      capsys)
    assert "--sites needs --gff" in cli_error(["logo", *genome, "--region", "chr1:1-90", "--sites", "stop_codon", *o],
                                           capsys)
    other = tmp_path / "other"
    other.mkdir()
    _, gff_other = write_synthetic(other, gff_contig="NC_999")
    err = cli_error(["logo", *genome, "--region", "chr1:1-3000", "--sites", "stop_codon", "--gff", str(gff_other), *o],
                 capsys)
    assert "no feature on chr1" in err and "NC_999" in err
    assert not (tmp_path / "o").exists()
