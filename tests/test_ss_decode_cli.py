"""Decoding validity properties, train-ss / fold / score-ss smoke tests on tiny inputs."""

import json
import math

import numpy as np
import pytest
import yaml
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


def test_cli_train_fold_score_smoke(tmp_path, capsys):
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
    capsys.readouterr()
    assert main(["score-ss", "--pred", str(tmp_path / "out.dbn"), "--ref", str(tmp_path / "out.ct")]) == 0
    # the same predictions written as dot-bracket and as CT agree perfectly with each other
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["exact\t1.0000\t1.0000\t1.0000\t1.0000\t3", "shift1\t1.0000\t1.0000\t1.0000\t1.0000\t3"]


def test_lm_head_and_long_sequences(tmp_path):
    """A head on a tiny random LM (max 20 residues): training reads cached embeddings, and fold
    handles a 50-nt sequence (windowed embeddings) with the same probabilities as embed()."""
    from nucfm.checkpoint import save_model
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.cli import main

    from tiny import rna_model

    lm = rna_model(num_layers=1, max_len=20)
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
    from nucfm.data.structure_features import FEATURE_CHANNELS, pair_features, vienna_bpp, vienna_mfe
    from nucfm.errors import InputError
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


def test_cli_score_ss_numbers_by_hand(tmp_path, capsys):
    """score-ss prints macro precision / recall / F1 / MCC, exact and +-1 shift, equal to values
    worked out by hand on four records: partly right (with a one-off pair that only the shift
    tolerance accepts), all right, an empty prediction, and a reference with no prediction."""
    from nucfm.cli import main

    (tmp_path / "ref.dbn").write_text(">r1\nGGGGAACCCC\n((((..))))\n>r2\nGGAAAACC\n((....))\n"
                                      ">r3\nGAAAAC\n(....)\n>r4\nGAAAC\n(...)\n")
    (tmp_path / "pred.dbn").write_text(">r3\nGAAAAC\n......\n>r2\nGGAAAACC\n((....))\n"
                                       ">r1\nGGGGAACCCC\n((.(...)))\n")
    per_seq = tmp_path / "per.tsv"
    assert main(["score-ss", "--pred", str(tmp_path / "pred.dbn"), "--ref", str(tmp_path / "ref.dbn"),
                 "--per-seq", str(per_seq)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t") == ["metric", "precision", "recall", "f1", "mcc", "n"]
    got = {row[0]: [float(x) for x in row[1:]] for row in (line.split("\t") for line in lines[1:])}
    # r1: ref (0,9) (1,8) (2,7) (3,6); pred (0,9) (1,8) (3,7). Exact: TP 2, FP 1, FN 2 of 45 candidates.
    # With shift 1, (3,7) is one off (2,7): TP 3, FP 0, FN 1.
    mcc1 = (2 * 40 - 1 * 2) / math.sqrt(3 * 4 * 41 * 42)
    mcc1_shift = (3 * 41 - 0 * 1) / math.sqrt(3 * 4 * 41 * 42)
    # r2 exact (all 1), r3 empty prediction and r4 missing (all 0)
    want = {"exact": [(2 / 3 + 1) / 4, (1 / 2 + 1) / 4, (4 / 7 + 1) / 4, (mcc1 + 1) / 4, 4],
            "shift1": [(1 + 1) / 4, (3 / 4 + 1) / 4, (6 / 7 + 1) / 4, (mcc1_shift + 1) / 4, 4]}
    assert set(got) == set(want)
    for label in want:
        np.testing.assert_allclose(got[label], want[label], atol=5e-5, rtol=0, err_msg=label)
    rows = [line.split("\t") for line in per_seq.read_text().splitlines()]
    assert rows[0] == ["id", "precision", "recall", "f1", "mcc", "tp", "fp", "fn"]
    assert {r[0]: r[5:] for r in rows[1:]} == {"r1": ["2", "1", "2"], "r2": ["2", "0", "0"], "r3": ["0", "0", "1"],
                                               "r4": ["0", "0", "1"]}


def _tiny_structures(tmp_path, n=12, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for k in range(n):
        stem = "".join(rng.choice(list("ACGU"), 5 + k % 4))
        comp = stem[::-1].translate(str.maketrans("ACGU", "UGCA"))
        loop = "GAAA" + "A" * (k % 3)
        dbn = "." + "(" * len(stem) + "." * len(loop) + ")" * len(stem) + "."
        lines += [f">r{k}", "A" + stem + loop + comp + "C", dbn]
    path = tmp_path / "tiny.dbn"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_structure_recipe_resumes_exactly(tmp_path):
    """An interrupted structure run, rerun with the same config, logs the same losses as an
    uninterrupted one (head dropout, random crops and batch shuffling all restored by name)."""
    from nucfm.train.structure import TrainStructureConfig, train_structure

    data = _tiny_structures(tmp_path)

    def cfg(out):
        return TrainStructureConfig.from_dict({
            "train": str(data), "valid": str(data), "output": str(tmp_path / out), "lm": "none",
            "features": "onehot", "blocks": 1, "channels": 4, "reduction": 4, "crop": 12, "batch_pairs": 3 * 144,
            "max_steps": 8, "max_minutes": 0, "eval_every": 4, "save_every": 3, "log_every": 1, "threads": 1,
            "warmup": 2})

    def losses(out):
        rows = [json.loads(line) for line in (tmp_path / out / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in rows if "loss" in r}

    train_structure(cfg("full"))
    assert train_structure(cfg("cut"), interrupt_at=5) is None  # "crash" after step 5; checkpoint at 3
    train_structure(cfg("cut"))
    full, cut = losses("full"), losses("cut")
    assert sorted(full) == sorted(cut) == list(range(1, 9))
    for s in full:
        assert abs(full[s] - cut[s]) < 1e-6, (s, full[s], cut[s])


def test_train_ss_config_file_overrides_and_print(tmp_path, capsys):
    from nucfm.cli import main

    data = _tiny_structures(tmp_path)
    conf = tmp_path / "ss.yaml"
    conf.write_text(f"train: {data}\nvalid: {data}\nlm: none\nfeatures: [onehot]\nblocks: 1\nlr: 1e-3\n")
    assert main(["train-ss", "--config", str(conf), "channels=4", "--crop", "20", "-o", str(tmp_path / "o"),
                 "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["lr"] == 1e-3 and isinstance(printed["lr"], float)  # YAML 1.1 reads 1e-3 as text
    assert printed["channels"] == 4 and printed["crop"] == 20 and printed["features"] == ["onehot"]
    assert not (tmp_path / "o").exists()  # --print-config writes nothing
    assert main(["train-ss", "--config", str(conf), "blocks=abc"]) == 2
    assert "blocks" in capsys.readouterr().err
