"""Saturation scans (one pass per position and strand, resumable), --gff consequences in the
output, --calibrate percentiles, and `nucfm vep-report`."""

import json

import numpy as np
import pandas as pd
import pytest
from test_vep_consequence import CONTIG, D_SEQ, GFF

from nucfm import save_model
from nucfm.analysis.vep_report import auroc, consequence_stats
from nucfm.cli import main
from nucfm.errors import InputError
from nucfm.io.genome import Genome
from nucfm.tasks import variants as tv
from nucfm.tasks.calibration import background_scores, percentiles
from nucfm.tasks.variants import saturation_table, score_variant_file

from tiny import interrupt_on_call, vep_dna_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("scan")
    (d / "g.fa").write_text(f">c\n{CONTIG[:150]}NN{CONTIG[152:]}\n>d\n{D_SEQ}\n")
    (d / "a.gff").write_text("".join(f"{c}\tt\t{t}\t{s}\t{e}\t.\t{st}\t{ph}\t{a}\n" for c, t, s, e, st, ph, a in GFF))
    model = vep_dna_model()
    save_model(model, d / "model")
    return d, model


def test_scan_costs_one_pass_per_position_and_strand(files, monkeypatch):
    d, model = files
    g = Genome(d / "g.fa")
    rows = []
    real = type(model).logits_at

    def counting(self, ids, positions):
        rows.append(len(ids))
        return real(self, ids, positions)

    monkeypatch.setattr(type(model), "logits_at", counting)
    vt = saturation_table(g, "c", 140, 160)  # two N positions inside: left out
    assert len(vt) == 3 * 18 and list(vt.table.columns) == ["chrom", "pos", "ref", "alt"]
    score_variant_file(model, g, vt, d / "scan.tsv", window=32, chunk_size=9, progress=False)
    assert sum(rows) == 2 * 18  # forward + reverse window per position, not per variant
    out = pd.read_csv(d / "scan.tsv", sep="\t")
    assert (out["status"] == "ok").all() and out["score"].notna().all()
    assert out.groupby("pos")["alt"].nunique().eq(3).all()


def test_scan_cli_resumes_to_the_same_file_and_annotates(files, tmp_path, monkeypatch):
    d, _ = files
    args = ["vep", "--genome", str(d / "g.fa"), "--model", str(d / "model"), "--region", "1:50-139", "--all-snvs",
            "--chrom-alias", "1=c", "--window", "32", "--chunk-size", "30", "--no-progress", "--gff", str(d / "a.gff")]
    assert main(args + ["-o", str(tmp_path / "full.parquet")]) == 0
    real = tv.score_variants
    interrupt_on_call(monkeypatch, tv, "score_variants", 4)
    assert main(args + ["-o", str(tmp_path / "part.parquet")]) == 130
    assert len(list((tmp_path / "part.parquet.parts").glob("chunk_*.part"))) == 3
    monkeypatch.setattr(tv, "score_variants", real)
    assert main(args + ["-o", str(tmp_path / "part.parquet")]) == 0
    a, b = pd.read_parquet(tmp_path / "full.parquet"), pd.read_parquet(tmp_path / "part.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 270 and {"consequence", "gene", "transcript"} <= set(a.columns)
    assert {"start_lost", "missense_variant", "splice_donor_variant", "intron_variant"} <= set(a["consequence"])
    assert a.loc[a.pos == 61, "transcript"].eq("t1").all()

    rc = main(["vep-report", str(tmp_path / "full.parquet"), "-o", str(tmp_path / "rep")])
    assert rc == 0 and (tmp_path / "rep" / "score_by_consequence.png").stat().st_size > 5000
    table = pd.read_csv(tmp_path / "rep" / "score_by_consequence.tsv", sep="\t")
    assert list(table.columns) == ["consequence", "n", "mean", "median", "p1", "p10", "auroc_vs_intergenic"]
    assert table["median"].is_monotonic_increasing and table["n"].sum() == 270
    summary = json.loads((tmp_path / "rep" / "score_by_consequence.json").read_text())
    assert 0 <= summary["auroc_missense_vs_synonymous"] <= 1


def test_cli_checks_arguments_before_loading_a_model(files, tmp_path, capsys):
    d, _ = files
    base = ["vep", "--genome", str(d / "g.fa"), "--model", str(tmp_path / "no-such-model"),
            "-o", str(tmp_path / "o.tsv")]
    for extra, msg in [([], "either -i/--variants"), (["--all-snvs"], "go together"),
                       (["--region", "c:5-1", "--all-snvs"], "START must be"),
                       (["--variants", str(tmp_path / "nope.vcf")], "no such file"),
                       (["--region", "c:1-9", "--all-snvs", "--gff", "x.gff"], "no such file")]:
        assert main(base + extra) == 2
        assert msg in capsys.readouterr().err
    (tmp_path / "s.tsv").write_text("chrom\tpos\tscore\nc\t1\t0.5\n")
    assert main(["vep-report", str(tmp_path / "s.tsv"), "-o", str(tmp_path / "r")]) == 2
    assert "consequence" in capsys.readouterr().err


def test_calibration_percentiles_and_cache(files, tmp_path):
    d, model = files
    g = Genome(d / "g.fa")
    bg, meta = background_scores(model, g, window=32, method="llr", size=200, seed=1)
    assert len(bg) == 200 and np.all(np.diff(bg) >= 0) and meta["size"] == 200 and meta["seed"] == 1
    again, _ = background_scores(model, g, window=32, method="llr", size=200, seed=1)  # from the cache
    np.testing.assert_array_equal(bg, again)
    p = percentiles(np.array([bg[0] - 1, bg[-1] + 1, np.nan, np.median(bg)]), bg)
    assert p[0] == 0 and p[1] == 100 and np.isnan(p[2]) and 45 <= p[3] <= 55
    rc = main(["vep", "--genome", str(d / "g.fa"), "--model", str(d / "model"), "--region", "c:60-70",
               "--all-snvs", "--window", "32", "--no-progress", "--calibrate", "--background-size", "200",
               "--background-seed", "1", "-o", str(tmp_path / "cal.tsv")])
    out = pd.read_csv(tmp_path / "cal.tsv", sep="\t")
    assert rc == 0 and out["score_percentile"].between(0, 100).all()
    # (the TSV rounds scores to 7 digits: a score equal to a background one may move by one rank)
    np.testing.assert_allclose(out["score_percentile"], percentiles(out["score"].to_numpy(), bg), atol=0.5)


def test_report_stats_and_auroc():
    assert auroc([1, 2], [3, 4]) == 1 and auroc([3, 4], [1, 2]) == 0 and auroc([1, 2], [1, 2]) == 0.5
    df = pd.DataFrame({"score": [-5, -4, -1, 0, 1, 0.5, -3], "consequence": ["missense_variant"] * 2 + [
        "intergenic_variant"] * 3 + ["synonymous_variant", "missense_variant"]})
    table, summary = consequence_stats(df)
    assert list(table["consequence"]) == ["missense_variant", "intergenic_variant", "synonymous_variant"]
    assert table.loc[0, "auroc_vs_intergenic"] == 1 and summary["auroc_missense_vs_synonymous"] == 1
    with pytest.raises(InputError):
        consequence_stats(df.iloc[:0])


def test_vcf_output_carries_consequences(files, tmp_path):
    d, model = files
    g = Genome(d / "g.fa", aliases={"1": "c"})
    (tmp_path / "v.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                    f"1\t61\ts\t{CONTIG[60]}\tC,{CONTIG[60]}GG\t.\tPASS\t.\n")
    from nucfm.tasks.consequence import annotate_variants

    score_variant_file(model, g, tmp_path / "v.vcf", tmp_path / "o.vcf", window=32, progress=False,
                       annotate=lambda vt: annotate_variants(vt, g, d / "a.gff"))
    text = (tmp_path / "o.vcf").read_text()
    assert "##INFO=<ID=NUCFM_SCORE_CONSEQUENCE,Number=A,Type=String" in text
    assert "NUCFM_SCORE_CONSEQUENCE=start_lost,frameshift_variant;" in text and "NUCFM_SCORE_TRANSCRIPT=t1,t1" in text


@pytest.mark.distributed
def test_scan_under_torchrun_equals_single(files, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    d, _ = files
    src = str(Path(__file__).resolve().parents[1] / "src")
    base = [sys.executable, "-m", "nucfm.cli", "vep", "--genome", str(d / "g.fa"), "--model", str(d / "model"),
            "--region", "c:40-80", "--all-snvs", "--window", "24", "--chunk-size", "12", "--no-progress",
            "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    subprocess.run(base + ["-o", str(tmp_path / "single.tsv")], check=True, env=env, capture_output=True)
    tr = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    r = subprocess.run(tr + base[2:] + ["-o", str(tmp_path / "multi.tsv")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "multi.tsv").read_text() == (tmp_path / "single.tsv").read_text()
