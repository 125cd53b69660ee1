"""`nucfm embed` as a user runs it: formats, long records, messy input, one-line errors."""

import gzip
import logging

import h5py
import numpy as np
import pandas as pd
import pytest

from nucfm import load_model, save_model
from nucfm.cli import main

from tiny import rna_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_model(rna_model(max_len=100), tmp_path_factory.mktemp("m") / "tiny"))


def run(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


MESSY = (">r1 lowercase and T\r\nacgtacgu\r\nACGU\r\n>r2 PDB letters\nGGPAUCCT\n>r1 duplicate id\nNRY-AC.GU\n"
         ">empty\n\n>long\n" + "ACGU" * 750 + "\n")


def test_embed_messy_fasta_h5(tmp_path, model_dir, capsys, caplog):
    caplog.set_level(logging.INFO, logger="nucfm")
    fa = tmp_path / "in.fa"
    fa.write_text(MESSY)
    out = tmp_path / "out.h5"
    code, _, err = run(["embed", "-i", str(fa), "-o", str(out), "--model", model_dir], capsys)
    assert code == 0, err
    text = caplog.text
    assert "T->U" in text and "'P'x1" in text and "empty records" in text and "gap" in text
    assert "longer than 100" in text
    with h5py.File(out) as f:
        ids = [x.decode() for x in f["ids"][:]]
        keys = [x.decode() for x in f["keys"][:]]
        assert ids == ["r1", "r2", "r1", "empty", "long"]
        assert keys == ["r1", "r2", "r1#2", "empty", "long"]
        assert f["embeddings/r1"].shape == (12, 16)
        assert f["embeddings/r2"].shape == (8, 16)
        assert f["embeddings/r1#2"].shape == (7, 16)  # gaps removed
        assert f["embeddings/empty"].shape == (0, 16)
        assert f["embeddings/long"].shape == (3000, 16)
        assert np.isfinite(f["embeddings/long"][:]).all()
    # the same numbers as the Python API
    m = load_model(model_dir)
    api = m.embed(["acgtacguACGU"])[0]
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["embeddings/r1"][:], api, atol=1e-5)


@pytest.mark.parametrize("ext", [".parquet", ".npy", ".npz", ".h5"])
def test_embed_pooled_formats_gz_input(tmp_path, model_dir, capsys, ext):
    fa = tmp_path / "in.fa.gz"
    with gzip.open(fa, "wt") as f:
        f.write(">a\nACGU\n>b\nGGGAAACCC\n")
    out = tmp_path / f"out{ext}"
    code, _, err = run(["embed", "-i", str(fa), "-o", str(out), "-m", model_dir, "--pool", "mean"], capsys)
    assert code == 0, err
    if ext == ".parquet":
        df = pd.read_parquet(out)
        assert df.id.tolist() == ["a", "b"] and np.stack(df.embedding).shape == (2, 16)
    elif ext == ".npy":
        assert np.load(out).shape == (2, 16)
        assert out.with_suffix(".ids.txt").read_text().split() == ["a", "b"]
    elif ext == ".npz":
        z = np.load(out)
        assert z["embeddings"].shape == (2, 16) and z["ids"].tolist() == ["a", "b"]
    else:
        with h5py.File(out) as f:
            assert f["embeddings"].shape == (2, 16)


@pytest.mark.parametrize("content,message", [
    ("", "empty file"),
    ("\n\n", "empty file"),
    ("ACGU\n", "not FASTA"),
    ("\x89PNG\r\n\x1a\n\x00\x00", "not FASTA|binary"),
])
def test_bad_input_one_line_error(tmp_path, model_dir, capsys, content, message):
    fa = tmp_path / "bad.fa"
    fa.write_bytes(content.encode("latin-1"))
    code, out, err = run(["embed", "-i", str(fa), "-o", str(tmp_path / "o.h5"), "-m", model_dir], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert any(m in err for m in message.split("|")), err


def test_missing_file_and_model_errors(tmp_path, model_dir, capsys):
    code, _, err = run(["embed", "-i", str(tmp_path / "nope.fa"), "-o", "x.h5", "-m", model_dir], capsys)
    assert code == 2 and "no such file" in err
    fa = tmp_path / "a.fa"
    fa.write_text(">a\nACGU\n")
    code, _, err = run(["embed", "-i", str(fa), "-o", str(tmp_path / "x.h5"), "-m", "no-such-model"], capsys)
    assert code == 2 and "no-such-model" in err
    code, _, err = run(["embed", "-i", str(fa), "-o", str(tmp_path / "x.parquet"), "-m", model_dir], capsys)
    assert code == 2 and "pooled" not in err and ".h5" in err
    code, _, err = run(["embed", "-i", str(fa), "-o", str(tmp_path / "x.h5"), "-m", model_dir, "--layer", "9"], capsys)
    assert code == 2 and "layer 9" in err


def test_registered_model_offline_message(tmp_path, monkeypatch):
    from nucfm.errors import ModelNotFoundError

    monkeypatch.setenv("NUCFM_HOME", str(tmp_path))
    monkeypatch.setenv("NUCFM_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="RNA-FM_pretrained.pth"):
        load_model("rna-fm")


def test_models_lists_registry(capsys):
    code, out, _ = run(["models"], capsys)
    assert code == 0 and "rna-fm" in out and "gpn-brassicales" in out
    row = next(line for line in out.splitlines() if line.startswith("mrna-fm "))
    assert row.split()[1] == "codon" and "mRNA-FM" in row
