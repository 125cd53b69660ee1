"""Decoding validity properties, train-ss / fold / score-ss smoke tests on tiny inputs."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nucfm.io.structure import pseudoknot_pages, read_structures
from nucfm.models.config import DecodeOptions
from nucfm.tasks.structure import decode_structure


@st.composite
def prob_maps(draw):
    L = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    p = rng.random((L, L)) ** draw(st.sampled_from([1, 4, 12]))
    seq = "".join(rng.choice(list("ACGUN"), L))
    return (p + p.T) / 2, seq


@given(prob_maps(), st.sampled_from(["greedy", "matching"]), st.floats(0.0, 0.9), st.integers(0, 4),
       st.booleans(), st.booleans())
@settings(max_examples=120, deadline=None)
def test_decoded_structures_are_valid(pm, method, threshold, hairpin, canonical, pk):
    probs, seq = pm
    opts = DecodeOptions(method=method, threshold=threshold, min_hairpin=hairpin, canonical_only=canonical,
                         pseudoknots=pk)
    pairs = decode_structure(probs, seq, opts)
    used = [r for p in pairs for r in p]
    assert len(used) == len(set(used))  # one partner per base
    for i, j in pairs:
        assert i < j and j - i - 1 >= hairpin and probs[i, j] > threshold
        if canonical:
            assert {seq[i], seq[j]} in ({"A", "U"}, {"G", "C"}, {"G", "U"})
    if not pk:
        assert all(k == 0 for k in pseudoknot_pages(pairs))


def test_greedy_vs_matching_golden():
    # greedy takes 0.9 (0-9) and blocks both 0.8s; matching takes the two 0.8s (1.6 > 0.9)
    p = np.zeros((10, 10))
    for i, j, v in [(0, 9, 0.9), (0, 5, 0.8), (4, 9, 0.8)]:
        p[i, j] = p[j, i] = v
    seq = "G" * 10
    assert decode_structure(p, seq, DecodeOptions(method="greedy")) == [(0, 9)]
    assert decode_structure(p, seq, DecodeOptions(method="matching")) == [(0, 5), (4, 9)]
    assert decode_structure(p, seq, DecodeOptions(min_hairpin=5)) == [(0, 9)]
    assert decode_structure(p, seq, DecodeOptions(min_hairpin=9)) == []


def test_cli_train_fold_score_smoke(tmp_path):
    """train-ss on 12 tiny records (one-hot features only), then fold and score with the result."""
    from nucfm.cli import main

    rng = np.random.default_rng(0)
    lines = []
    for k in range(12):
        stem = "".join(rng.choice(list("ACGU"), 5))
        comp = stem[::-1].translate(str.maketrans("ACGU", "UGCA"))
        seq = "A" + stem + "GAAA" + comp + "C"
        lines += [f">r{k}", seq, "." + "(" * 5 + "...." + ")" * 5 + "."]
    data = tmp_path / "tiny.dbn"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train-ss", "--train", str(data), "--valid", str(data), "-o", str(run), "--lm", "none",
                 "--features", "onehot", "--blocks", "1", "--channels", "4", "--max-steps", "6",
                 "--eval-every", "3", "--threads", "1", "--max-minutes", "0"]) == 0
    assert (run / "best" / "model.safetensors").exists()
    cfg = json.loads((run / "best" / "config.json").read_text())
    assert cfg["format"] == "nucfm-ss" and cfg["metadata"]["kind"] == "ss"
    # resume: rerunning with more steps continues from the saved step
    assert main(["train-ss", "--train", str(data), "--valid", str(data), "-o", str(run), "--lm", "none",
                 "--features", "onehot", "--blocks", "1", "--channels", "4", "--max-steps", "8",
                 "--eval-every", "3", "--threads", "1", "--max-minutes", "0"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 8

    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nGGGGAAACCCCAUGCAUG\n>b\nACGTNNacgu\n>empty\n\n")
    for fmt in ("dbn", "ct", "bpseq"):
        out = tmp_path / (f"out.{fmt}" if fmt != "bpseq" else "out_bpseq")  # BPSEQ: a directory, one file per record
        extra = ["--probs", str(tmp_path / "p.npz"), "--plot", str(tmp_path / "png")] if fmt == "dbn" else []
        assert main(["fold", "-i", str(fasta), "-o", str(out), "--format", fmt, "--model", str(run / "best"),
                     "--threshold", "0.2"] + extra) == 0
        recs = read_structures(out, fmt)
        assert [r.id for r in sorted(recs, key=lambda r: r.id)] == ["a", "b", "empty"]
    z = np.load(tmp_path / "p.npz")
    assert z["a"].shape == (18, 18) and np.allclose(z["a"], z["a"].T)
    assert (tmp_path / "png" / "a.png").stat().st_size > 1000
    assert main(["score-ss", "--pred", str(tmp_path / "out.dbn"), "--ref", str(tmp_path / "out.ct")]) == 0


def test_lm_head_and_long_sequences(tmp_path):
    """A head on a tiny random LM (max 20 residues): training reads cached embeddings, and fold
    handles a 50-nt sequence (windowed embeddings) with the same probabilities as embed()."""
    from nucfm.checkpoint import save_model
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.cli import main
    from nucfm.models.config import TransformerConfig
    from nucfm.models.transformer import Transformer

    lm = Transformer(TransformerConfig(num_layers=1, hidden_size=16, num_heads=2, ffn_size=32, max_len=20)).eval()
    save_model(lm, tmp_path / "lm")
    data = tmp_path / "d.dbn"
    data.write_text(">x\nGGGGAAAACCCC\n((((....))))\n>y\nGCGCAAAAGCGCUU\n((((....))))..\n")
    run = tmp_path / "run"
    assert main(["train-ss", "--train", str(data), "--valid", str(data), "-o", str(run), "--lm", str(tmp_path / "lm"),
                 "--features", "none", "--blocks", "1", "--channels", "4", "--reduction", "4", "--max-steps", "2",
                 "--eval-every", "2", "--threads", "1", "--max-minutes", "0"]) == 0
    pred = load_structure_model(run / "best")
    assert pred.config.lm_hidden_size == 16 and pred.head.config.extra_channels == 0
    seq = "GGGAAACUUCGGUUUCCC" * 3 + "AC"  # 56 nt > max_len 20
    probs = pred.predict_probs([seq])[0]
    assert probs.shape == (56, 56) and np.allclose(probs, probs.T)
    emb = lm.embed([seq])[0]
    again = pred.predict_probs([seq], embeddings=[emb])[0]
    np.testing.assert_allclose(probs, again, atol=1e-6)


def test_energy_parameter_sets_are_separate_features():
    """bpp under Langdon 2018 differs from RNAfold's default, and switching sets leaves the default
    fold unchanged (ViennaRNA's parameters are global state)."""
    from nucfm.errors import InputError
    from nucfm.data.structure_features import FEATURE_CHANNELS, pair_features, vienna_bpp, vienna_mfe
    from nucfm.models.config import StructureConfig

    seq = "GGGAAAUCCCGCGCAAGCGCUUAGCUAGCAUCGAUAAGGCUAGCU"
    turner = vienna_bpp(seq)
    langdon = vienna_bpp(seq, "Langdon2018")
    assert np.abs(turner - langdon).max() > 0.01 and np.allclose(langdon, langdon.T)
    assert np.array_equal(vienna_bpp(seq), turner)  # the default set is back
    mfe = vienna_mfe(seq)
    vienna_mfe(seq, "Andronescu2007")
    assert vienna_mfe(seq) == mfe
    f = pair_features(seq, ("bpp", "bpp-langdon2018"), {"bpp-langdon2018": langdon})
    assert f.shape == (2, len(seq), len(seq)) and np.array_equal(f[0], turner) and np.array_equal(f[1], langdon)
    assert FEATURE_CHANNELS["bpp-andronescu2007"] == 1
    StructureConfig(head={}, features=("onehot", "bpp-langdon2018"))
    with pytest.raises(InputError, match="unknown pair feature"):
        StructureConfig(head={}, features=("bpp-turner1999",))
    with pytest.raises(InputError, match="energy parameter set"):
        vienna_bpp(seq, "Nope2020")
