"""Codon models (mRNA-FM): the genetic code, the CDS checks, per-codon embeddings through the CLI,
windows over long CDS, and codon-variant scores labelled from the genetic code."""

import logging
from collections import Counter
from itertools import product

import h5py
import numpy as np
import pandas as pd
import pytest

from nucfm import save_model
from nucfm.alphabet import CODON, EncodingReport
from nucfm.cli import main
from nucfm.data.cds import GENETIC_CODE, CdsReport, codon_change, longest_orf, prepare_cds, translate
from nucfm.errors import InputError
from nucfm.tasks.codon_vep import score_codon_file

from tiny import codon_model

CDS1 = "AUGGCUAAAGAAUUCUAA"  # M A K E F *


def test_standard_genetic_code():
    assert len(GENETIC_CODE) == 64 and set(GENETIC_CODE) == set(CODON.tokens[4:68])
    assert sorted(c for c, aa in GENETIC_CODE.items() if aa == "*") == ["UAA", "UAG", "UGA"]
    per_aa = Counter(GENETIC_CODE.values())
    assert (per_aa["L"], per_aa["S"], per_aa["R"], per_aa["M"], per_aa["W"], per_aa["I"]) == (6, 6, 6, 1, 1, 3)
    assert len(per_aa) == 21  # 20 amino acids and stop
    assert translate("atg") == "M" and translate("TGG") == "W" and translate("NNN") == "X"


def test_consequences_follow_the_genetic_code():
    seen = Counter()
    for ref, alt in product(GENETIC_CODE, repeat=2):
        if sum(a != b for a, b in zip(ref, alt)) != 1:
            continue
        term = codon_change(ref, alt)
        a, b = GENETIC_CODE[ref], GENETIC_CODE[alt]
        want = {(True, True): "stop_retained_variant", (False, True): "synonymous_variant"}.get((a == "*", a == b))
        if want is None:
            want = "stop_gained" if b == "*" else "stop_lost" if a == "*" else "missense_variant"
        assert term == want, (ref, alt)
        seen[term] += 1
    assert seen["synonymous_variant"] == 134  # the standard code's single-base synonymous changes (incl. stops)
    assert codon_change("AUG", "AUA", first=True) == "start_lost" and codon_change("AUG", "AUA") == "missense_variant"
    assert codon_change("ATG", "ATA", first=True) == "start_lost"  # DNA letters too (vep's consequences)


def test_prepare_cds_checks_and_counts():
    report = CdsReport()
    assert prepare_cds("a", "atggctaaa-gaatag", report=report).seq == "AUGGCUAAAGAAUAG"  # gap removed, T->U
    with pytest.raises(InputError, match="'b' has 16 nucleotides, not a multiple of 3"):
        prepare_cds("b", "AUGGCUAAAGAAUAGC", report=report)
    with pytest.raises(InputError, match="record 'p' looks like protein"):
        prepare_cds("p", "MKVLAAGIVQEDF", report=report)
    c = prepare_cds("f", "CAUGGCUUAAG", frame=2, report=report)
    assert (c.seq, c.start) == ("AUGGCUUAA", 1) and report.trimmed == ["f"]
    prepare_cds("nostart", "GCUUAA", report=report)
    prepare_cds("stop", "AUGUAAGCUUAA", report=report)
    assert report.no_start == ["nostart"] and report.internal_stop == ["stop"]
    orf = prepare_cds("o", "CCAUGAAAUAGGAUGCCCGGGUAAUU", orf=True, report=report)
    assert (orf.seq, orf.start) == ("AUGCCCGGGUAA", 12)
    assert prepare_cds("none", "CCCGGG", orf=True, report=report).seq == "" and report.no_orf == ["none"]
    assert any("1 of" in m and "do not start" in m for m in report.messages())
    assert longest_orf("AUGAUGUAA") == (0, 9)  # the first of overlapping ORFs in one frame is the longest


def test_unknown_codons_are_counted():
    report = EncodingReport()
    ids = CODON.encode("AUGNNNGCURYK", report)
    assert ids.tolist()[1] == ids.tolist()[3] == CODON.unk_id and report.unknown == Counter({"NNN": 1, "RYK": 1})
    with pytest.raises(InputError, match="not a whole number of 3-letter tokens"):
        CODON.encode("AUGG")


@pytest.fixture(scope="module")
def codon_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("codon")
    save_model(codon_model(max_len=10), d / "m")
    return d


def test_embed_per_codon_and_pooled(codon_dir, tmp_path, caplog):
    fa = tmp_path / "cds.fa"
    long_cds = "AUG" + "GCU" * 38 + "UAA"  # 40 codons: 4 windows of the 10-codon model
    fa.write_text(f">c1\n{CDS1}\n>nostart\nGCUAAAUAA\n>long\n{long_cds}\n")
    with caplog.at_level(logging.WARNING, logger="nucfm"):
        assert main(["embed", "-i", str(fa), "-o", str(tmp_path / "e.h5"), "-m", str(codon_dir / "m"),
                     "--no-progress"]) == 0
    assert any("1 of 3 records do not start with the start codon AUG: nostart" in r.message for r in caplog.records)
    assert main(["embed", "-i", str(fa), "-o", str(tmp_path / "p.h5"), "-m", str(codon_dir / "m"), "--pool", "mean",
                 "--no-progress"]) == 0
    from nucfm import load_model

    model = load_model(codon_dir / "m")
    with h5py.File(tmp_path / "e.h5") as per, h5py.File(tmp_path / "p.h5") as pooled:
        arrays = {k: per["embeddings"][k][:] for k in per["embeddings"]}
        assert {k: v.shape for k, v in arrays.items()} == {"c1": (6, 16), "nostart": (3, 16), "long": (40, 16)}
        direct = model.embed([CDS1, long_cds[:30]])
        assert np.abs(arrays["c1"] - direct[0]).max() < 1e-5
        assert np.abs(arrays["long"][0] - direct[1][0]).max() < 1e-5  # codon 1 is read from the first window
        assert pooled["embeddings"].shape == (3, 16)
        assert np.abs(pooled["embeddings"][0] - arrays["c1"].mean(0)).max() < 1e-5


def test_codon_vep_saturation_is_labelled_from_the_genetic_code(codon_dir, tmp_path):
    fa = tmp_path / "cds.fa"
    fa.write_text(f">c1\n{CDS1}\n")
    from nucfm import load_model

    model = load_model(codon_dir / "m")
    counts = score_codon_file(model, fa, None, tmp_path / "all.tsv")
    out = pd.read_csv(tmp_path / "all.tsv", sep="\t")
    assert counts == {"ok": 3 * len(CDS1)} and len(out) == 3 * len(CDS1)
    for r in out.itertuples():
        assert r.aa_ref == GENETIC_CODE[r.codon_ref] and r.aa_alt == GENETIC_CODE[r.codon_alt]
        assert r.consequence == codon_change(r.codon_ref, r.codon_alt, first=r.codon == 1)
        assert r.codon_ref == CDS1[3 * (r.codon - 1) : 3 * r.codon]
    # batched scoring equals one masked codon at a time
    score_codon_file(model, fa, None, tmp_path / "one.tsv", batch_size=1)
    assert np.abs(pd.read_csv(tmp_path / "one.tsv", sep="\t").score - out.score).max() < 1e-5


def test_codon_vep_statuses(codon_dir, tmp_path):
    fa = tmp_path / "cds.fa"
    fa.write_text(f">c1\nCC{CDS1}G\n")
    # record CC + CDS1 + G: the longest ORF is CDS1 at record positions 3-20 (1-based)
    pd.DataFrame({"chrom": ["c1", "c1", "c1", "c1", "c1", "c9", "c1"], "pos": [8, 1, 7, 5, 8, 1, 99],
                  "ref": ["U", "C", "A", "G", "UA", "A", "A"], "alt": ["C", "A", "C", "A", "C", "G", "G"]}
                 ).to_csv(tmp_path / "v.tsv", sep="\t", index=False)
    from nucfm import load_model

    score_codon_file(load_model(codon_dir / "m"), fa, tmp_path / "v.tsv", tmp_path / "o.tsv", orf=True)
    out = pd.read_csv(tmp_path / "o.tsv", sep="\t")
    assert list(out.status) == ["ok", "outside_cds", "ref_mismatch:cds=C", "ok", "not_codon_substitution",
                                "unknown_contig", "pos_out_of_range"]
    assert list(out.consequence[[0, 3]]) == ["synonymous_variant", "start_lost"]  # GCU>GCC, AUG>AUA
    assert list(out.codon[[0, 3]]) == [2, 1] and np.isnan(out.score[1])


def test_the_docs_example_runs_and_gives_the_table_it_shows(tmp_path):
    """docs/models/mrna-fm.md: its commands on the shipped examples, and the table it prints."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "models" / "mrna-fm.md").read_text()
    model = str(root / "examples" / "models" / "mrna-fm-tiny-random")
    cds, variants = str(root / "examples" / "cds.fa"), str(root / "examples" / "cds_variants.tsv")
    assert main(["embed", "-m", model, "-i", cds, "-o", str(tmp_path / "cds.h5"), "--no-progress"]) == 0
    assert main(["codon-vep", "-m", model, "--cds", cds, "-i", variants, "-o", str(tmp_path / "scored.tsv")]) == 0
    assert main(["codon-vep", "-m", model, "--cds", cds, "--all-snvs", "-o", str(tmp_path / "all.tsv.gz")]) == 0
    shown = re.search(r"`scored.tsv` \(scores from the stand-in\):\n\n```\n(.*?)```", doc, re.S).group(1)
    rows = [line.split() for line in shown.strip().splitlines()[1:]]
    got = pd.read_csv(tmp_path / "scored.tsv", sep="\t")
    assert [r[0] for r in rows] == list(got.chrom)
    for r, g in zip(rows, got.itertuples(), strict=True):
        score, term = next((float(x), r[k + 1]) for k, x in enumerate(r) if re.fullmatch(r"-?\d+\.\d+", x))
        assert abs(score - g.score) < 1e-5 and term == g.consequence
    assert len(pd.read_csv(tmp_path / "all.tsv.gz", sep="\t")) == 3 * (363 + 228 + 381)


def test_codon_vep_resumes_finished_chunks(codon_dir, tmp_path, monkeypatch):
    from nucfm import load_model
    from nucfm.tasks import codon_vep

    fa = tmp_path / "cds.fa"
    fa.write_text(f">c1\n{CDS1}\n>c2\n{CDS1[::-1]}\n")  # 12 codons
    model = load_model(codon_dir / "m")
    whole = tmp_path / "whole.tsv"
    score_codon_file(model, fa, None, whole, chunk_size=5)
    calls = []
    real = codon_vep.site_scores

    def stop_after_two(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    out = tmp_path / "out.tsv"
    monkeypatch.setattr(codon_vep, "site_scores", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        score_codon_file(model, fa, None, out, chunk_size=5)
    assert not out.exists() and len(list((tmp_path / "out.tsv.parts").glob("chunk_*.npy"))) == 2
    calls.clear()
    monkeypatch.setattr(codon_vep, "site_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    score_codon_file(model, fa, None, out, chunk_size=5)
    assert len(calls) == 1  # only the third chunk was scored again
    assert out.read_text() == whole.read_text() and not (tmp_path / "out.tsv.parts").exists()
    # other settings on the same output: refused while chunks are kept
    score_codon_file(model, fa, None, tmp_path / "x.tsv", chunk_size=5)
    monkeypatch.setattr(codon_vep, "site_scores", stop_after_two)
    calls[:] = [1]
    with pytest.raises(KeyboardInterrupt):
        score_codon_file(model, fa, None, out, chunk_size=5, restart=True)
    with pytest.raises(InputError, match="different settings"):
        score_codon_file(model, fa, None, out, chunk_size=4)
