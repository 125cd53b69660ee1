"""Inputs as they come (byte-order marks, non-ASCII text, binary files, damaged gzip, bad rows in
variant tables, colliding column names, GFF contig names) and standard outputs (BGZF .vcf.gz)."""

import gzip
import json
import logging
import random

import numpy as np
import pandas as pd
import pytest
import torch

from nucfm import save_model
from nucfm.alphabet import DNA
from nucfm.cli import main
from nucfm.data.baselines import ContextCounts
from nucfm.errors import InputError
from nucfm.io.fasta import open_text, read_fasta
from nucfm.io.genome import Genome
from nucfm.io.gff import Feature, read_gff
from nucfm.io.structure import read_structures
from nucfm.io.variants import check_variants, output_names, read_variants, write_scored
from nucfm.models import ConvNet, ConvNetConfig
from nucfm.tasks.eval_mlm import CLASSES, region_classes
from nucfm.tasks.variants import score_variant_file

BOM = b"\xef\xbb\xbf"
rng = random.Random(0)
SEQ = "".join(rng.choice("ACGT") for _ in range(400))
VCF_HEAD = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def snv(pos):  # a valid SNV line at 1-based pos of SEQ on "c"
    ref = SEQ[pos - 1]
    return f"c\t{pos}\t.\t{ref}\t{'A' if ref != 'A' else 'C'}\t.\t.\t."


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    d = tmp_path_factory.mktemp("g")
    (d / "g.fa").write_text(">c\n" + SEQ + "\n")
    return Genome(d / "g.fa")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    torch.manual_seed(0)
    save_model(ConvNet(ConvNetConfig(num_layers=2, hidden_size=16, kernel_size=5)), d / "m")
    return d / "m"


# ---- encodings ----------------------------------------------------------------------------------
def test_bom_and_non_ascii_fasta(tmp_path):
    p = tmp_path / "a.fa"
    p.write_bytes(BOM + ">x café ü\nACéGT\n>α\nGG\n".encode())
    recs = list(read_fasta(p))
    assert [(r.id, r.description, r.seq) for r in recs] == [("x", "café ü", "ACéGT"), ("α", "", "GG")]
    ids = DNA.encode(recs[0].seq)  # the non-ASCII letter is one unknown token, lengths kept
    assert len(ids) == 5 and ids[2] == DNA.encode("?")[0] and list(ids[[0, 1, 3, 4]]) == list(DNA.encode("ACGT"))
    p.write_bytes(BOM + b">x\nACGT\n")
    (tmp_path / "a.fa.gz").write_bytes(gzip.compress(p.read_bytes()))
    assert [r.id for r in read_fasta(tmp_path / "a.fa.gz")] == ["x"]
    p.write_bytes(b">x caf\xe9\nACGT\n")  # a Latin-1 header is not binary
    assert [r.seq for r in read_fasta(p)] == ["ACGT"]


@pytest.mark.parametrize("data", [b"\x00\x01\x02>", b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F", bytes(range(128, 256)),
                                  b"(\xb5/\xfd\x04\x00\x81\x00\x00>x\n"])
def test_binary_files_refused_in_one_line(tmp_path, data):
    p = tmp_path / "b.fa"
    p.write_bytes(data + b"\nACGT\n")
    with pytest.raises(InputError, match="binary content") as e:
        list(read_fasta(p))
    assert "\n" not in str(e.value)
    p = tmp_path / "b.vcf"
    p.write_bytes(data + b"\n")
    with pytest.raises(InputError, match="binary content, not VCF"):
        read_variants(p)


def test_bom_in_vcf_tsv_structure_and_gff(tmp_path, genome):
    (tmp_path / "v.vcf").write_bytes(BOM + (VCF_HEAD + snv(5) + "\n").encode())
    (tmp_path / "v.tsv").write_bytes(BOM + f"chrom\tpos\tref\talt\tnote\nc\t5\t{SEQ[4]}\tA\tnaïve\n".encode())
    for name in ("v.vcf", "v.tsv"):
        vt = read_variants(tmp_path / name)
        assert vt.variants[0].start == 4 and check_variants(vt, genome)[0] == "ok"
    assert read_variants(tmp_path / "v.tsv").table["note"][0] == "naïve"
    (tmp_path / "s.dbn").write_bytes(BOM + b">s1 \xce\xb1\nGGGAAACCC\n(((...)))\n")
    (rec,) = read_structures(tmp_path / "s.dbn")
    assert rec.seq == "GGGAAACCC" and len(rec.pairs) == 3
    (tmp_path / "a.gff").write_bytes(BOM + b"c\tx\tgene\t1\t10\t.\t+\t.\tID=g\n")
    assert [f.start for f in read_gff(tmp_path / "a.gff")] == [0]
    (tmp_path / "bom.fa").write_bytes(BOM + b">c\nACGTN\n")  # pyfaidx cannot: read into memory
    assert Genome(tmp_path / "bom.fa").fetch("c", 0, 5) == "ACGTN"


# ---- damaged gzip -------------------------------------------------------------------------------
def damaged(tmp_path, name, text: str):
    """(truncated, corrupt) copies of ``text`` gzip-compressed."""
    data = gzip.compress(text.encode(), mtime=0)
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(data[: len(data) // 2])
    bad = bytearray(data)
    for k in range(len(bad) // 2, len(bad) // 2 + 16):
        bad[k] ^= 0x5A
    flip = tmp_path / f"flip_{name}"
    flip.write_bytes(bytes(bad))
    return cut, flip


def assert_gzip_error(fn, path):
    with pytest.raises(InputError, match=rf"{path.name}: corrupt or truncated gzip data near byte [\d,]+ of "
                                         rf"{path.stat().st_size:,} \(\w+") as e:
        fn(path)
    assert "\n" not in str(e.value)


def test_truncated_or_corrupt_gzip_is_one_line_error_everywhere(tmp_path):
    fasta = "".join(f">s{i}\n{SEQ}\n" for i in range(60))
    vcf = VCF_HEAD + "".join(snv(1 + i % 399) + "\n" for i in range(3000))
    tsv = "chrom\tpos\tref\talt\n" + "".join(f"c\t{1 + i % 399}\tA\tG\n" for i in range(3000))
    dbn = "".join(f">r{i}\nGGGAAACCC\n(((...)))\n" for i in range(3000))
    gff = "".join(f"c\tx\texon\t{i + 1}\t{i + 5}\t.\t+\t.\tParent=m{i}\n" for i in range(3000))
    cases = [
        ("a.fa.gz", fasta, lambda p: list(read_fasta(p))),
        ("g.fa.gz", fasta, Genome),
        ("v.vcf.gz", vcf, read_variants),
        ("v.tsv.gz", tsv, read_variants),
        ("s.dbn.gz", dbn, lambda p: read_structures(p, fmt="dbn")),
        ("a.gff.gz", gff, lambda p: list(read_gff(p))),
        ("t.txt.gz", fasta, lambda p: open_text(p).read()),
    ]
    for name, text, fn in cases:
        for path in damaged(tmp_path, name, text):
            assert_gzip_error(fn, path)


# ---- bad rows -----------------------------------------------------------------------------------
def test_bad_positions_get_a_status_and_the_rest_is_scored(tmp_path, genome, model_dir):
    from nucfm import load_model

    good = [(5, SEQ[4]), (50, SEQ[49])]
    lines = ["chrom\tpos\tref\talt", f"c\t{good[0][0]}\t{good[0][1]}\tA", "c\t100.7\tA\tG", "c\tabc\tA\tG",
             "c\t-5\tA\tG", "c\t\tA\tG", "c\t0\tA\tG", f"c\t{good[1][0]}\t{good[1][1]}\tC"]
    (tmp_path / "v.tsv").write_text("\n".join(lines) + "\n")
    vt = read_variants(tmp_path / "v.tsv")
    status = check_variants(vt, genome)
    assert list(status[1:6]) == ["invalid_pos"] * 5 and [v.start for v in vt.variants[1:6]] == [-1] * 5
    out = tmp_path / "o.tsv"
    score_variant_file(load_model(model_dir), genome, tmp_path / "v.tsv", out, window=16, progress=False)
    df = pd.read_csv(out, sep="\t", dtype={"pos": str}, keep_default_na=False)
    assert len(df) == 7 and list(df["pos"]) == ["5", "100.7", "abc", "-5", "", "0", "50"]  # nothing truncated
    assert list(df["status"][1:6]) == ["invalid_pos"] * 5
    scored = df["score"] != "NA"
    assert list(scored) == [s == "ok" for s in df["status"]] and scored.sum() == sum(
        s == "ok" for s in status)
    # Parquet: a float column of whole numbers is fine, 100.7 and NaN are not
    pd.DataFrame({"chrom": ["c"] * 3, "pos": [5.0, 100.7, np.nan], "ref": [SEQ[4], "A", "A"],
                  "alt": ["A", "G", "G"]}).to_parquet(tmp_path / "v.parquet")
    vt = read_variants(tmp_path / "v.parquet")
    assert vt.variants[0].start == 4 and list(check_variants(vt, genome)[1:]) == ["invalid_pos"] * 2


def test_vcf_bad_pos_and_allele_statuses(tmp_path, genome):
    recs = [snv(5), "c\t7.5\t.\tA\tG\t.\t.\t.", f"c\t8\t.\t{SEQ[7]}\t<DEL>\t.\t.\t.", f"c\t9\t.\t{SEQ[8]}\t*\t.\t.\t.",
            f"c\t10\t.\t{SEQ[9]}\t{SEQ[9]}[c:20[\t.\t.\t.", f"c\t11\t.\t{SEQ[10]}\t.\t.\t.\t.",
            f"c\t12\t.\t{SEQ[11]}\tN\t.\t.\t.", f"c\t13\t.\t{SEQ[12]}\tR\t.\t.\t.", f"c\t14\t.\t{SEQ[13]}\t.A\t.\t.\t."]
    (tmp_path / "v.vcf").write_text(VCF_HEAD + "\n".join(recs) + "\n")
    status = check_variants(read_variants(tmp_path / "v.vcf"), genome)
    assert list(status) == ["ok", "invalid_pos", "symbolic_allele", "spanning_deletion", "breakend",
                            "missing_allele", "alt_not_acgt", "invalid_allele", "breakend"]


# ---- output columns and formats -----------------------------------------------------------------
def test_user_columns_are_never_overwritten(tmp_path, genome):
    (tmp_path / "v.tsv").write_text(f"chrom\tpos\tref\talt\tScore\tstatus\nc\t5\t{SEQ[4]}\tA\tuser1\tmine\n")
    vt = read_variants(tmp_path / "v.tsv")
    check_variants(vt, genome)
    write_scored(vt, {"score": np.array([0.5]), "score_fwd": np.array([0.25])}, tmp_path / "o.tsv")
    df = pd.read_csv(tmp_path / "o.tsv", sep="\t")
    assert list(df.columns) == ["chrom", "pos", "ref", "alt", "Score", "status", "nucfm_score", "nucfm_score_fwd",
                                "nucfm_status"]
    assert (df["Score"][0], df["status"][0], df["nucfm_score"][0], df["nucfm_status"][0]) == ("user1", "mine", 0.5,
                                                                                            "ok")
    assert output_names(pd.DataFrame(columns=["pos"]), ["score", "status"]) == {"score": "score", "status": "status"}
    assert output_names(pd.DataFrame(columns=["SCORE_REV", "nucfm_status"]), ["score", "score_rev", "status"]) == {
        "score": "nucfm_nucfm_score", "score_rev": "nucfm_nucfm_score_rev", "status": "nucfm_nucfm_status"}


@pytest.mark.parametrize("suffix", [".vcf.gz", ".vcf.bgz"])
def test_vcf_gz_output_is_bgzf_and_tabix_indexable(tmp_path, genome, suffix):
    pysam = pytest.importorskip("pysam")
    positions = [3, 40, 41, 120, 200, 333]  # sorted, as tabix needs; nucfm keeps the input order
    (tmp_path / "v.vcf").write_text("##fileformat=VCFv4.2\n##contig=<ID=c,length=400>\n"
                                    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                    + "".join(snv(p) + "\n" for p in positions))
    vt = read_variants(tmp_path / "v.vcf")
    check_variants(vt, genome)
    out = write_scored(vt, {"score": np.arange(len(vt), dtype=float)}, tmp_path / f"o{suffix}")
    assert out.read_bytes()[12:16] == b"BC\x02\x00"  # the BGZF extra field
    lines = gzip.decompress(out.read_bytes()).decode().splitlines()
    assert [int(x.split("\t")[1]) for x in lines if not x.startswith("#")] == positions
    pysam.tabix_index(str(out), preset="vcf", force=True)
    with pysam.TabixFile(str(out)) as tbx:
        got = list(tbx.fetch("c", 39, 120))  # 0-based half-open: 1-based 40..120
    assert [int(r.split("\t")[1]) for r in got] == [40, 41, 120]
    assert "NUCFM_SCORE=1;NUCFM_SCORE_STATUS=ok" in got[0]


def test_table_gz_output_is_bgzf_and_parquet_gz_refused(tmp_path, genome):
    (tmp_path / "v.tsv").write_text(f"chrom\tpos\tref\talt\nc\t5\t{SEQ[4]}\tA\n")
    vt = read_variants(tmp_path / "v.tsv")
    check_variants(vt, genome)
    out = write_scored(vt, {"score": np.array([1.5])}, tmp_path / "o.tsv.gz")
    assert out.read_bytes()[12:16] == b"BC\x02\x00" and pd.read_csv(out, sep="\t")["score"][0] == 1.5
    with pytest.raises(InputError, match="drop the .gz"):
        write_scored(vt, {"score": np.array([1.5])}, tmp_path / "o.parquet.gz")


# ---- GFF ----------------------------------------------------------------------------------------
def test_read_gff_coordinates_attributes_and_errors(tmp_path):
    p = tmp_path / "a.gff"
    p.write_text("##gff-version 3\nc\tsrc\tmRNA\t11\t60\t.\t-\t.\tID=m1;Note=a%3Bb%2Cc\t\n"
                 "c\tsrc\texon\t11\t25\t.\t-\t.\tParent=m1,m2\nd\tsrc\tgene\t1\t5\t.\t+\t.\tID=g\n"
                 "##FASTA\n>c\nACGT\n")
    feats = list(read_gff(p))
    assert feats[0] == Feature("c", "mRNA", 10, 60, "-", source="src") and feats[0].attributes["Note"] == "a;b,c"
    assert feats[1].parents() == ["m1", "m2"] and len(feats) == 3
    assert [f.type for f in read_gff(p, contig="c", start=30, end=31)] == ["mRNA"]
    seen = set()
    assert [f.contig for f in read_gff(p, contig="C", aliases={"d": "C"}, seen=seen)] == ["C"]
    assert seen == {"c", "C"}
    for bad, msg in [("c\tx\tgene\t1\t5\n", r"a.gff:2: .*9 tab-separated columns, got 5"),
                     ("c\tx\tgene\t5.5\t9\t.\t+\t.\t.\n", "a.gff:2: start and end must be whole numbers"),
                     ("c\tx\tgene\t9\t5\t.\t+\t.\t.\n", "a.gff:2: .*1 <= start <= end")]:
        p.write_text("##gff-version 3\n" + bad)
        with pytest.raises(InputError, match=msg):
            list(read_gff(p))


GFF_ROWS = [("mRNA", 11, 60, "ID=m1"), ("exon", 11, 25, "Parent=m1"), ("exon", 41, 60, "Parent=m1"),
            ("CDS", 16, 25, "Parent=m1"), ("CDS", 41, 50, "Parent=m1")]


def write_gff(path, contig):
    path.write_text("".join(f"{contig}\tx\t{t}\t{s}\t{e}\t.\t+\t.\t{a}\n" for t, s, e, a in GFF_ROWS))
    return path


def test_region_classes_aliases_and_warnings(tmp_path, caplog):
    gff = write_gff(tmp_path / "a.gff", "1")
    caplog.set_level(logging.WARNING, logger="nucfm")
    expected = region_classes(write_gff(tmp_path / "b.gff", "NC_1"), "NC_1", 0, 90)
    assert not caplog.records and CLASSES[expected[20]] == "CDS"
    unmatched = region_classes(gff, "NC_1", 0, 90)
    assert set(unmatched) == {CLASSES.index("intergenic")}
    assert "none of its contigs (1) is the genome's NC_1" in caplog.text and "--chrom-alias 1=NC_1" in caplog.text
    caplog.clear()
    assert list(region_classes(gff, "NC_1", 0, 90, aliases={"1": "NC_1"})) == list(expected)
    assert not caplog.records
    region_classes(gff, "NC_1", 100, 200, aliases={"1": "NC_1"})
    assert "no features on NC_1:101-200" in caplog.text


def test_cli_eval_mlm_chrom_alias(tmp_path, model_dir):
    (tmp_path / "g.fa").write_text(">NC_1\n" + SEQ + "\n")
    counts = ContextCounts.empty(DNA)
    counts.add(DNA.encode(SEQ))
    counts.save(tmp_path / "counts.npz")
    gff = write_gff(tmp_path / "a.gff", "1")
    common = ["eval-mlm", "--model", str(model_dir), "--genome", str(tmp_path / "g.fa"), "--gff", str(gff),
              "--counts", str(tmp_path / "counts.npz"), "--window", "64"]
    rows = {}
    for name, extra in [("plain", ["--region", "NC_1:1-300"]),
                        ("alias", ["--region", "NC_1:1-300", "--chrom-alias", "1=NC_1"]),
                        ("alias_region", ["--region", "1:1-300", "--chrom-alias", "1=NC_1"])]:
        assert main([*common, *extra, "-o", str(tmp_path / f"{name}.json")]) == 0
        rows[name] = json.loads((tmp_path / f"{name}.json").read_text())["rows"]
    assert "CDS" not in rows["plain"] and "intergenic" in rows["plain"]
    assert {"CDS", "5'UTR", "3'UTR", "intron"} <= set(rows["alias"]) and rows["alias"] == rows["alias_region"]
