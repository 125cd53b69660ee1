"""GPN-MSA on alignments: the three readers agree (Zarr, MAF, aligned FASTA), gaps / insertions /
missing species follow GPN-MSA's rules, and ``nucfm vep --msa`` on the hand-made example
(``examples/dna-msa``) gives the answer its hand-set model must give."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nucfm import load_model
from nucfm.cli import main
from nucfm.errors import InputError
from nucfm.io.alignment import msa_tokens, read_alignment, reverse_complement_tokens

EX = Path(__file__).resolve().parents[1] / "examples" / "dna-msa"
SPECIES = ["hg38", "panTro", "mm10"]
# the stand-in's |score|: the masked position holds 3 one-hot channels among 16, so after the
# blocks' LayerNorms its "on" and "off" channels differ by 1 / sqrt(p (1 - p)), p = 3/16; the
# final LayerNorm (eps 1e-5, of a vector of variance 1) divides that by sqrt(1 + 1e-5)
D = 1 / np.sqrt(3 / 16 * 13 / 16) / np.sqrt(1 + 1e-5)


def _target():
    return (EX / "target.fa").read_text().split("\n", 1)[1].replace("\n", "")


def test_maf_and_aligned_fasta_agree():
    maf = read_alignment(EX / "region.maf", SPECIES)
    fa = read_alignment(EX / "region.fa")
    assert maf.species == fa.species == SPECIES
    assert maf.covered("chr1") == fa.covered("chr1") == (0, 120)
    np.testing.assert_array_equal(np.char.upper(maf.aligned("chr1", 0, 120).view("S1")),
                                  np.char.upper(fa.aligned("chr1", 0, 120).view("S1")))
    assert maf.fetch("chr1", 0, 120) == fa.fetch("chr1", 0, 120) == _target().upper()


def test_gaps_insertions_and_missing_species():
    aln = read_alignment(EX / "region.maf", SPECIES)
    a = aln.aligned("chr1", -3, 123).view("S1")  # (126, 3), 3 positions past each contig end
    assert (a[:3] == b"-").all() and (a[-3:] == b"-").all()  # past the contig: gaps, as GPN-MSA's padding
    assert (a[3 + 70 : 3 + 120, 2] == b"-").all()  # mm10 absent from the second block
    assert a[3 + 20, 1] == b"-" and a[3 + 100, 1] == b"-"  # chimp deletions
    maf_text = (EX / "region.maf").read_text()
    assert "TT" in maf_text.split("mm10.chr7")[1].split()[4][45:47]  # the mouse insertion exists in the file ...
    assert len(aln.aligned("chr1", 0, 120)) == 120  # ... and is dropped: one row per target base
    tok = msa_tokens(aln.aligned("chr1", 0, 5))
    assert tok.max() <= 4 and (reverse_complement_tokens(reverse_complement_tokens(tok, 0), 0) == tok).all()


def test_zarr_reads_like_maf(tmp_path):
    zarr = pytest.importorskip("zarr")  # the msa extra
    maf = read_alignment(EX / "region.maf", SPECIES)
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="w")
    root.create_array("chr1", data=maf.aligned("chr1", 0, 120), chunks=(50, 3))
    z = read_alignment(tmp_path / "a.zarr")
    np.testing.assert_array_equal(z.aligned("chr1", -5, 125), maf.aligned("chr1", -5, 125))
    z.arrays["chr1"].BLOCK = 7  # windows spanning several cached blocks, and evictions
    z.arrays["chr1"]._blocks.clear()
    for lo, hi in [(0, 120), (3, 50), (6, 8), (100, 130), (13, 14)]:
        np.testing.assert_array_equal(z.aligned("chr1", lo, hi), maf.aligned("chr1", lo, hi))
    assert z.n_species == 3 and z.length("chr1") == 120


def test_species_list_fills_and_drops(caplog):
    aln = read_alignment(EX / "region.maf", ["hg38", "mm10", "galGal"])  # panTro dropped, galGal missing
    a = aln.aligned("chr1", 0, 120)
    assert aln.n_species == 3 and (a[:, 2] == ord("-")).all()
    assert "not in the alignment" in caplog.text and "left out" in caplog.text
    with pytest.raises(InputError, match="target species"):
        read_alignment(EX / "region.maf", ["panTro", "hg38"])


@pytest.mark.parametrize("alignment,extra", [("region.maf", ["--msa-species", str(EX / "species.txt")]),
                                             ("region.fa", [])])
def test_vep_msa_known_answer(tmp_path, alignment, extra):
    """The stand-in predicts the chimp base: +D where chimp has ALT, -D where it has REF, 0 at a gap."""
    out = tmp_path / "s.tsv"
    rc = main(["vep", "--msa", str(EX / alignment), *extra, "-m", str(EX / "copy-model"), "-i",
               str(EX / "variants.tsv"), "-o", str(out), "--window", "32", "--no-progress", "--per-strand"])
    assert rc == 0
    df = pd.read_csv(out, sep="\t")
    want = df["expected"].map({"plus": D, "minus": -D, "zero": 0.0}).to_numpy()
    np.testing.assert_allclose(df["score"], want, atol=1e-5)
    np.testing.assert_allclose(df["score_fwd"], df["score_rev"], atol=1e-5)  # both strands see the same chimp base
    assert (df["status"] == "ok").all()


def test_probs_msa_follows_the_aligned_species(tmp_path):
    out = tmp_path / "p.tsv"
    assert main(["probs", "--msa", str(EX / "region.maf"), "-m", str(EX / "copy-model"), "--region", "chr1:1-120",
                 "-o", str(out), "--window", "32", "--no-progress"]) == 0
    df = pd.read_csv(out, sep="\t")
    chimp = read_alignment(EX / "region.maf").aligned("chr1", 0, 120)[:, 1].tobytes().decode().upper()
    base = np.array(list("ACGT"))[df[["A", "C", "G", "T"]].to_numpy().argmax(1)]
    has = np.array([c in "ACGT" for c in chimp])
    assert (base[has] == np.array(list(chimp))[has]).all()
    np.testing.assert_allclose(df.loc[~has, ["A", "C", "G", "T"]], 0.25, atol=1e-6)  # a gap: no preference


def test_api_refuses_genome_for_msa_model(tmp_path):
    import shutil

    from nucfm.io.genome import Genome
    from nucfm.io.variants import Variant
    from nucfm.tasks.variants import score_variants

    model = load_model(EX / "copy-model")
    shutil.copy(EX / "target.fa", tmp_path / "t.fa")  # its index is written beside it, not in examples/
    with pytest.raises(InputError, match="--msa"):
        score_variants(model, Genome(tmp_path / "t.fa"), [Variant("chr1", 10, "C", "G")], window=32)
