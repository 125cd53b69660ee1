"""Variant I/O, scoring (parity with GPN's algorithm on the official model class), the resumable
file runner and the ``nucfm vep`` CLI, on tiny genomes and tiny random models."""

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nucfm import load_model, save_model
from nucfm.cli import main
from nucfm.errors import InputError
from nucfm.io.genome import Genome
from nucfm.io.variants import Variant, check_variants, read_variants, write_scored
from nucfm.tasks import variants as tv
from nucfm.tasks.variants import score_variant_file, score_variants

from reference import official_vep_scores
from tiny import interrupt_on_call, vep_dna_model

SRC = str(Path(__file__).resolve().parents[1] / "src")
rng = np.random.default_rng(0)
CHR1 = "".join(rng.choice(list("ACGT"), 300))
CHR1 = CHR1[:40] + CHR1[40:60].lower() + CHR1[60:100] + "NNNNN" + CHR1[105:]  # soft-masked and N
CHR2 = "".join(rng.choice(list("ACGT"), 90))
COMP = str.maketrans("ACGT", "TGCA")


def alt_of(b):
    return {"A": "G", "C": "T", "G": "A", "T": "C"}[b.upper()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vep")
    (d / "g.fa").write_text(f">chr1 test\n{CHR1}\n>chr2\n{CHR2}\n")
    model = vep_dna_model()
    save_model(model, d / "model")
    vcf = [
        "##fileformat=VCFv4.2",
        "##INFO=<ID=DP,Number=1,Type=Integer,Description=\"depth\">",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        f"chr1\t1\tfirst\t{CHR1[0]}\t{alt_of(CHR1[0])}\t.\tPASS\tDP=3",  # first base of a contig
        f"chr1\t300\tlast\t{CHR1[299]}\t{alt_of(CHR1[299])}\t.\tPASS\t.",  # last base
        f"chr1\t50\tsoft\t{CHR1[49].upper()}\tA,C,T\t.\tPASS\tDP=1",  # lowercase genome, multi-allelic
        f"chr1\t10\tmismatch\t{alt_of(CHR1[9])}\t{CHR1[9]}\t.\tPASS\t.",  # REF mismatch
        f"chr1\t20\tindel\t{CHR1[19]}\t{CHR1[19]}AC\t.\tPASS\t.",  # insertion
        "chrUn\t5\tunknown\tA\tG\t.\tPASS\t.",  # unknown contig
        f"chr2\t45\tmid\t{CHR2[44]}\t{alt_of(CHR2[44])}\t.\tPASS\t.",
        "chr1\t102\tinN\tN\tA\t.\tPASS\t.",  # N in the genome
        f"chr2\t90\tend2\t{CHR2[89]}\t{alt_of(CHR2[89])}\t.\tPASS\t.",
    ]
    (d / "v.vcf").write_text("\n".join(vcf) + "\n")
    return d, model


def test_read_vcf_split_and_status(files):
    d, _ = files
    vt = read_variants(d / "v.vcf")
    assert len(vt.records) == 9 and len(vt) == 11  # multi-allelic record split into 3 rows
    assert vt.variants[0] == Variant("chr1", 0, CHR1[0], alt_of(CHR1[0]))
    assert list(vt.table["ID"][2:5]) == ["soft"] * 3 and list(vt.table["ALT"][2:5]) == ["A", "C", "T"]
    status = check_variants(vt, Genome(d / "g.fa"))
    expected = ["ok", "ok", "ok", "ok", "ok"]  # first, last, and the 3 ALTs of the soft-masked record
    expected += [f"ref_mismatch:genome={CHR1[9]}", "ok", "unknown_contig", "ok", "ref_not_acgt", "ok"]
    assert list(status) == expected
    with pytest.raises(InputError, match="differs from the genome"):
        check_variants(vt, Genome(d / "g.fa"), strict_ref=True)


def test_all_unknown_contigs_is_an_error(files, tmp_path):
    d, _ = files
    (tmp_path / "v.tsv").write_text("chrom\tpos\tref\talt\n1\t5\tA\tG\n")
    vt = read_variants(tmp_path / "v.tsv")
    with pytest.raises(InputError, match="contig '1' is not in g.fa.*did you mean 'chr1'.*--chrom-alias"):
        check_variants(vt, Genome(d / "g.fa"))
    assert list(check_variants(vt, Genome(d / "g.fa", aliases={"1": "chr1"}))) == [
        "ok" if CHR1[4] == "A" else f"ref_mismatch:genome={CHR1[4]}"]


@pytest.mark.parity
@pytest.mark.parametrize("window", [64, 33])
def test_scores_match_official_algorithm(files, tmp_path, window):
    import gpn.legacy as legacy  # the official package (test extra): imported, never skipped

    d, _ = files
    torch.manual_seed(2)
    official = legacy.ConvNetForMaskedLM(legacy.ConvNetConfig(hidden_size=32, n_layers=4, kernel_size=9,
                                                               dilation_max=8, dilation_cycle=4)).eval()
    with torch.no_grad():
        for p in official.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    official.save_pretrained(tmp_path / "gpn")
    ours = load_model(tmp_path / "gpn")
    vt = read_variants(d / "v.vcf")
    status = check_variants(vt, Genome(d / "g.fa"))
    vs = [v for v, s in zip(vt.variants, status, strict=True) if s == "ok" and v.kind == "snv"]
    assert {(v.chrom, v.start) for v in vs} >= {("chr1", 0), ("chr1", 299), ("chr2", 89)}  # contig edges
    got = score_variants(ours, Genome(d / "g.fa"), vs, window=window, batch_size=3, per_strand=True)
    ref = official_vep_scores(official, Genome(d / "g.fa"), vs, window, batch_size=4)
    np.testing.assert_allclose(got["score"], ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose((got["score_fwd"] + got["score_rev"]) / 2, got["score"])
    assert np.abs(ref).max() > 1e-2  # not a vacuous comparison


def test_reverse_complement_symmetry(files, tmp_path):
    """A variant scored on the reverse-complemented genome swaps the strand scores."""
    d, model = files
    window = 40
    (tmp_path / "rc.fa").write_text(f">chr1\n{CHR1.translate(str.maketrans('ACGTacgt', 'TGCAtgca'))[::-1]}\n")
    g, grc = Genome(d / "g.fa"), Genome(tmp_path / "rc.fa")
    L = len(CHR1)
    vs = [Variant("chr1", s, CHR1[s].upper(), alt_of(CHR1[s])) for s in (0, 30, 150, 299)]
    # mirror image: 0-based s -> L-1-s; odd window so the centre maps onto the centre
    vrc = [Variant("chr1", L - 1 - v.start, v.ref.translate(COMP), v.alt.translate(COMP)) for v in vs]
    a = score_variants(model, g, vs, window=window + 1, per_strand=True)
    b = score_variants(model, grc, vrc, window=window + 1, per_strand=True)
    np.testing.assert_allclose(a["score_fwd"], b["score_rev"], atol=1e-5)
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)


def test_batching_does_not_change_scores(files):
    d, model = files
    g = Genome(d / "g.fa")
    vs = [Variant("chr1", s, CHR1[s].upper(), alt_of(CHR1[s])) for s in range(0, 300, 37)]
    one = score_variants(model, g, vs, window=50, batch_size=1)["score"]
    many = score_variants(model, g, vs, window=50, batch_size=16)["score"]
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_vcf_output_and_table_output(files, tmp_path):
    d, model = files
    g = Genome(d / "g.fa")
    counts = score_variant_file(model, g, d / "v.vcf", tmp_path / "out.vcf.gz", window=32, per_strand=True,
                                progress=False)
    assert counts == {"ok": 8, "ref_mismatch": 1, "unknown_contig": 1, "ref_not_acgt": 1}
    text = gzip.open(tmp_path / "out.vcf.gz", "rt").read().splitlines()
    assert any(line.startswith("##INFO=<ID=NUCFM_SCORE,Number=A,Type=Float") for line in text)
    assert any(line.startswith("##INFO=<ID=NUCFM_SCORE_STATUS,Number=A,Type=String") for line in text)
    recs = [line.split("\t") for line in text if not line.startswith("#")]
    assert len(recs) == 9 and recs[0][7].startswith("DP=3;NUCFM_SCORE=")
    multi = dict(f.split("=", 1) for f in recs[2][7].split(";"))
    assert len(multi["NUCFM_SCORE"].split(",")) == 3 and multi["NUCFM_SCORE_STATUS"] == "ok,ok,ok"
    bad = dict(f.split("=", 1) for f in recs[3][7].split(";"))
    assert bad["NUCFM_SCORE"] == "." and bad["NUCFM_SCORE_STATUS"].startswith("ref_mismatch")
    assert not (tmp_path / "out.vcf.gz.parts").exists()

    score_variant_file(model, g, d / "v.vcf", tmp_path / "out.parquet", window=32, progress=False)
    df = pd.read_parquet(tmp_path / "out.parquet")
    assert list(df.columns) == ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "score", "status"]
    assert len(df) == 11 and df["score"].notna().sum() == 8
    assert df.loc[df.ID == "indel", "status"].item() == "ok" and np.isfinite(df.loc[df.ID == "indel", "score"].item())
    vals = [float(x) for r in recs for x in dict(f.split("=", 1) for f in r[7].split(";"))["NUCFM_SCORE"].split(",")
            if x != "."]
    np.testing.assert_allclose(np.sort(vals), np.sort(df["score"].dropna()), atol=1e-5)


@pytest.mark.parametrize("out_name", ["o.vcf", "o.vcf.gz", "o.tsv", "o.csv.gz", "o.parquet"])
def test_pieces_of_any_size_write_the_same_file(files, tmp_path, out_name):
    """Streaming: the file is read, scored and written in pieces of chunk_size rows (a VCF's
    whole records); every piece size gives the bytes of the whole-file writer (write_scored)."""
    from nucfm.io.variants import iter_variant_chunks

    d, model = files
    g = Genome(d / "g.fa")
    pieces = list(iter_variant_chunks(d / "v.vcf", 2))
    assert [len(p.records) for p in pieces] == [2, 1, 2, 2, 2]  # the 3-ALT record stays whole
    assert [len(p) for p in pieces] == [2, 3, 2, 2, 2] and pieces[1].input_rows == 1
    vt = read_variants(d / "v.vcf")
    check_variants(vt, g)
    whole = score_variant_file(model, g, vt, tmp_path / "whole" / out_name, window=32, chunk_size=10**6,
                               progress=False)
    for chunk in (1, 2, 4):
        out = tmp_path / f"c{chunk}" / out_name
        assert score_variant_file(model, g, d / "v.vcf", out, window=32, chunk_size=chunk, progress=False) == whole
        # (batches of other sizes move scores in the 7th digit: the same up to that)
        if out_name.endswith(".parquet"):
            pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "whole" / out_name),
                                          rtol=1e-5)
        else:
            same_but_last_digits(_text(out), _text(tmp_path / "whole" / out_name))
    if out_name == "o.tsv":  # and the one-piece writer of an already scored table, byte for byte
        scores = pd.read_csv(tmp_path / "whole" / out_name, sep="\t")["score"].to_numpy()
        write_scored(vt, {"score": scores}, tmp_path / "again.tsv")
        assert (tmp_path / "again.tsv").read_text() == (tmp_path / "whole" / out_name).read_text()


def _text(path: Path) -> str:
    return (gzip.open(path, "rt") if path.name.endswith(".gz") else open(path)).read()


def same_but_last_digits(a: str, b: str) -> None:
    """Texts equal token by token, numbers up to a relative 1e-5."""
    ta, tb = re.split(r"([\t,;=\n])", a), re.split(r"([\t,;=\n])", b)
    assert len(ta) == len(tb)
    for x, y in zip(ta, tb):
        try:
            assert x == y or abs(float(x) - float(y)) <= 1e-5 * max(1.0, abs(float(y))), (x, y)
        except ValueError:
            assert x == y


def test_unknown_contigs_fail_in_the_first_piece_only(files, tmp_path):
    """Contig names spelled differently fail at once (the first piece is all unknown); a later
    piece all on unknown contigs (chrUn at the end of a file) is just marked."""
    d, model = files
    g = Genome(d / "g.fa")
    (tmp_path / "late.tsv").write_text(f"chrom\tpos\tref\talt\nchr1\t45\t{CHR1[44].upper()}\t{alt_of(CHR1[44])}\n"
                                       "chrUn\t5\tA\tG\nchrUn\t6\tA\tG\n")
    counts = score_variant_file(model, g, tmp_path / "late.tsv", tmp_path / "o.tsv", window=32, chunk_size=1,
                                progress=False)
    assert counts == {"ok": 1, "unknown_contig": 2}
    (tmp_path / "early.tsv").write_text("chrom\tpos\tref\talt\n1\t5\tA\tG\nchr1\t45\tA\tG\n")
    with pytest.raises(InputError, match="contig '1' is not in g.fa"):
        score_variant_file(model, g, tmp_path / "early.tsv", tmp_path / "e.tsv", window=32, chunk_size=1,
                           progress=False)
    assert not (tmp_path / "e.tsv").exists() and not (tmp_path / "e.tsv.parts").exists()


def test_interrupted_run_resumes_to_the_same_output(files, tmp_path, monkeypatch):
    d, model = files
    g = Genome(d / "g.fa")
    rows = [(c, s + 1) for c, seq in (("chr1", CHR1), ("chr2", CHR2)) for s in range(0, len(seq), 7)]
    seqs = {"chr1": CHR1, "chr2": CHR2}
    tsv = tmp_path / "v.tsv"
    pd.DataFrame({"chrom": [c for c, _ in rows], "pos": [p for _, p in rows],
                  "ref": [seqs[c][p - 1].upper() for c, p in rows],
                  "alt": [alt_of(seqs[c][p - 1]) if seqs[c][p - 1] != "N" else "A" for c, p in rows],
                  "note": [f"r{i}" for i in range(len(rows))]}).to_csv(tsv, sep="\t", index=False)
    score_variant_file(model, g, tsv, tmp_path / "full.tsv", window=32, chunk_size=5, progress=False)

    real = tv.score_variants
    interrupt_on_call(monkeypatch, tv, "score_variants", 3)
    with pytest.raises(KeyboardInterrupt):
        score_variant_file(model, g, tsv, tmp_path / "part.tsv", window=32, chunk_size=5, progress=False)
    assert len(list((tmp_path / "part.tsv.parts").glob("chunk_*.part"))) == 2
    monkeypatch.setattr(tv, "score_variants", real)
    with pytest.raises(InputError, match="different settings.*window"):
        score_variant_file(model, g, tsv, tmp_path / "part.tsv", window=64, chunk_size=5, progress=False)
    resumed = []
    monkeypatch.setattr(tv, "score_variants", lambda *a, **k: resumed.append(1) or real(*a, **k))
    score_variant_file(model, g, tsv, tmp_path / "part.tsv", window=32, chunk_size=5, progress=False)
    n_ok = len(rows) - sum(seqs[c][p - 1] == "N" for c, p in rows)
    assert len(resumed) == -(-n_ok // 5) - 2  # only the missing chunks were scored
    assert (tmp_path / "part.tsv").read_text() == (tmp_path / "full.tsv").read_text()
    out = pd.read_csv(tmp_path / "full.tsv", sep="\t")
    assert list(out.columns) == ["chrom", "pos", "ref", "alt", "note", "score", "status"] and len(out) == len(rows)


def test_cli_vep_smoke(files, tmp_path, capsys):
    d, _ = files
    rc = main(["vep", "--genome", str(d / "g.fa"), "--variants", str(d / "v.vcf"), "--model", str(d / "model"),
               "--window", "16", "-o", str(tmp_path / "o.tsv"), "--no-progress", "--per-strand"])
    assert rc == 0
    df = pd.read_csv(tmp_path / "o.tsv", sep="\t")
    assert {"score", "score_fwd", "score_rev", "status"} <= set(df.columns) and len(df) == 11
    rc = main(["vep", "--genome", str(d / "g.fa"), "--variants", str(d / "v.vcf"), "--model", str(d / "model"),
               "-o", str(tmp_path / "o.vcf"), "--strict-ref", "--no-progress"])
    assert rc == 2 and "differs from the genome" in capsys.readouterr().err


@pytest.mark.distributed
def test_torchrun_two_processes_equals_single(files, tmp_path):
    d, _ = files
    base = [sys.executable, "-m", "nucfm.cli", "vep", "--genome", str(d / "g.fa"), "--variants", str(d / "v.vcf"),
            "--model", str(d / "model"), "--window", "24", "--chunk-size", "2", "--no-progress", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    subprocess.run(base + ["-o", str(tmp_path / "single.tsv")], check=True, env=env, capture_output=True)
    tr = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]  # free port
    r = subprocess.run(tr + base[2:] + ["-o", str(tmp_path / "multi.tsv")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "multi.tsv").read_text() == (tmp_path / "single.tsv").read_text()
    assert not (tmp_path / "multi.tsv.parts").exists()


def test_position_probs_match_variant_scores(files):
    from nucfm.tasks.variants import position_probs

    d, model = files
    g = Genome(d / "g.fa")
    res = position_probs(model, g, "chr1", 0, 12, window=30, strands="fwd")
    assert res["probs"].shape == (12, 4) and list(res["pos"]) == list(range(1, 13))
    np.testing.assert_allclose(res["probs"].sum(1), 1, atol=1e-9)
    assert "".join(res["ref"]) == CHR1[:12]
    vs = [Variant("chr1", i, CHR1[i].upper(), b) for i in range(12) for b in "ACGT" if b != CHR1[i].upper()]
    s = score_variants(model, g, vs, window=30, per_strand=True)["score_fwd"]
    k = {b: i for i, b in enumerate("ACGT")}
    expect = [np.log(res["probs"][v.start, k[v.alt]] / res["probs"][v.start, k[v.ref]]) for v in vs]
    np.testing.assert_allclose(s, expect, atol=1e-6)
    both = position_probs(model, g, "chr1", 0, 12, window=30)["probs"]
    assert not np.allclose(both, res["probs"]) and np.allclose(both.sum(1), 1)
    with pytest.raises(InputError, match="not inside"):
        position_probs(model, g, "chr1", 290, 301)


@pytest.mark.parametrize("suffix", ["tsv", "parquet", "npz"])
def test_cli_probs_smoke(files, tmp_path, suffix):
    d, _ = files
    out = tmp_path / f"p.{suffix}"
    rc = main(["probs", "--genome", str(d / "g.fa"), "--region", "chr2:1-10", "--model", str(d / "model"),
               "--window", "20", "-o", str(out), "--no-progress"])
    assert rc == 0
    if suffix == "npz":
        z = np.load(out)
        assert z["probs"].shape == (10, 4) and list(z["pos"]) == list(range(1, 11))
    else:
        df = pd.read_csv(out, sep="\t") if suffix == "tsv" else pd.read_parquet(out)
        assert list(df.columns) == ["chrom", "pos", "A", "C", "G", "T", "ref"] and len(df) == 10
        assert "".join(df["ref"]) == CHR2[:10]


def test_parse_region():
    from nucfm.io.genome import parse_region

    assert parse_region("chr1:1,001-1,010") == ("chr1", 1000, 1010)
    assert parse_region("HLA-A:5-5") == ("HLA-A", 4, 5)
    for bad in ("chr1", "chr1:0-5", "chr1:9-5", "chr1:a-b"):
        with pytest.raises(InputError):
            parse_region(bad)


def test_table_inputs_keep_columns_and_split_alleles(files, tmp_path):
    d, model = files
    g = Genome(d / "g.fa")
    # the first record's ALT list holds its own REF: an ALT == REF row, scored (status ok) as exactly 0
    same, other = CHR1[4], alt_of(CHR1[4])
    df = pd.DataFrame({"#CHROM": ["chr1", "chr2"], "pos": [5, 7], "ref": [CHR1[4], CHR2[6]],
                       "alt": [f"{same},{other}", alt_of(CHR2[6])], "gene": ["g1", "g2"], "af": [0.1, 0.2]})
    df.to_parquet(tmp_path / "v.parquet")
    df.to_csv(tmp_path / "v.csv", index=False)
    for name in ("v.parquet", "v.csv"):
        vt = read_variants(tmp_path / name)
        assert len(vt) == 3 and list(vt.table["alt"]) == [same, other, alt_of(CHR2[6])]
        assert list(vt.table["gene"]) == ["g1", "g1", "g2"] and vt.variants[2] == Variant("chr2", 6, CHR2[6],
                                                                                       alt_of(CHR2[6]))
    score_variant_file(model, g, tmp_path / "v.parquet", tmp_path / "o.csv.gz", window=20, progress=False)
    out = pd.read_csv(tmp_path / "o.csv.gz")
    assert list(out.columns) == ["#CHROM", "pos", "ref", "alt", "gene", "af", "score", "status"]
    assert out["status"].tolist() == ["ok", "ok", "ok"]
    assert out.loc[out.alt == out.ref, "score"].tolist() == [0.0]  # the ALT == REF row, exactly 0
    assert (out.loc[out.alt != out.ref, "score"].abs() > 1e-3).all()  # the real SNVs are not
    with pytest.raises(InputError, match="VCF output needs a VCF input"):
        score_variant_file(model, g, tmp_path / "v.csv", tmp_path / "o.vcf", window=20, progress=False)
    (tmp_path / "bad.tsv").write_text("chrom\tposition\tref\talt\nchr1\t5\tA\tG\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['pos'\]"):
        read_variants(tmp_path / "bad.tsv")
    (tmp_path / "bad2.tsv").write_text("chrom\tpos\tref\talt\nchr1\tfive\tA\tG\n")
    vt = read_variants(tmp_path / "bad2.tsv")  # a bad position is that row's status, not a file error
    assert vt.variants[0].start == -1 and list(check_variants(vt, g)) == ["invalid_pos"]


def test_cli_without_model_or_default_says_what_to_do(files, tmp_path, capsys, monkeypatch):
    from nucfm.checkpoint import registry

    monkeypatch.delitem(registry.DEFAULTS, "dna", raising=False)  # as on an install without one
    d, _ = files
    rc = main(["vep", "--genome", str(d / "g.fa"), "--variants", str(d / "v.vcf"), "-o", str(tmp_path / "o.tsv")])
    assert rc == 2 and "--model" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".tsv", ".csv.gz", ".parquet", ".npz"])
def test_probs_in_blocks_write_the_one_block_file(files, tmp_path, suffix):
    """``nucfm probs`` computes and writes a region block by block (memory: one block): any block
    size gives the file of the whole region in one block."""
    from nucfm.tasks.variants import iter_position_probs, write_position_probs

    d, model = files
    g = Genome(d / "g.fa")
    whole = write_position_probs(next(iter_position_probs(model, g, "chr1", 3, 40, window=20, block=10**6)),
                                 "chr1", tmp_path / f"whole{suffix}")
    blocks = iter_position_probs(model, g, "chr1", 3, 40, window=20, block=7)
    pieces = write_position_probs(blocks, "chr1", tmp_path / f"blocks{suffix}")
    if suffix == ".parquet":
        a, b = pd.read_parquet(whole), pd.read_parquet(pieces)
        pd.testing.assert_frame_equal(a, b, rtol=1e-5)
        assert len(a) == 37 and list(a.pos[:2]) == [4, 5]
    elif suffix == ".npz":
        a, b = np.load(whole), np.load(pieces)
        np.testing.assert_allclose(a["probs"], b["probs"], rtol=1e-5)
        assert (a["pos"] == b["pos"]).all() and (a["ref"] == b["ref"]).all()
    else:
        same_but_last_digits(_text(whole), _text(pieces))


def test_a_bad_vcf_line_late_in_the_file_fails_before_any_scoring(files, tmp_path):
    """The streamed run's first pass (the bar's count) checks every VCF record's shape, so a
    broken line near the end is a one-line error before any chunk is scored or kept."""
    d, model = files
    lines = (d / "v.vcf").read_text().splitlines()
    (tmp_path / "bad.vcf").write_text("\n".join(lines + ["chr1\t5\tx"]) + "\n")
    with pytest.raises(InputError, match=r"bad.vcf:13: a VCF record needs at least 5 tab-separated columns"):
        score_variant_file(model, Genome(d / "g.fa"), tmp_path / "bad.vcf", tmp_path / "o.tsv", window=32,
                           chunk_size=2, progress=False)
    assert not (tmp_path / "o.tsv.parts").exists() and not (tmp_path / "o.tsv").exists()
