"""embed, fold and probs under torchrun with 2 gloo processes write the same output as one process."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from nucfm.cli import main

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[1]


def torchrun(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "nucfm", *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]


def _rna(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    fa = tmp_path / "rna.fa"
    # 7 records (odd, so the shares differ), a repeated id, an empty record
    seqs = ["".join(rng.choice(list("ACGU"), n)) for n in (30, 12, 45, 8, 22, 0, 17)]
    ids = ["a", "b", "a", "c", "d", "empty", "e"]
    fa.write_text("".join(f">{i}\n{s}\n" for i, s in zip(ids, seqs)))
    return fa


def test_embed_two_processes_equals_one(tmp_path):
    fa = _rna(tmp_path)
    assert main(["embed", "-i", str(fa), "-o", str(tmp_path / "one.h5"), "--threads", "1"]) == 0
    torchrun(["embed", "-i", str(fa), "-o", str(tmp_path / "two.h5"), "--threads", "1"], tmp_path)
    with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "two.h5") as b:
        assert list(a["keys"].asstr()) == list(b["keys"].asstr())
        assert len(a["keys"]) == 7
        for k in a["keys"].asstr():
            np.testing.assert_allclose(a["embeddings"][k][()], b["embeddings"][k][()], atol=1e-5)


def test_fold_two_processes_equals_one(tmp_path):
    fa = _rna(tmp_path)
    assert main(["fold", "-i", str(fa), "-o", str(tmp_path / "one.dbn"), "--threads", "1"]) == 0
    torchrun(["fold", "-i", str(fa), "-o", str(tmp_path / "two.dbn"), "--threads", "1"], tmp_path)
    assert (tmp_path / "one.dbn").read_text() == (tmp_path / "two.dbn").read_text()
    assert (tmp_path / "one.dbn").read_text().count(">") == 7


def test_probs_two_processes_equals_one(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "g.fa").write_text(">chr1\n" + "".join(rng.choice(list("ACGT"), 300)) + "\n")
    args = ["probs", "--genome", str(tmp_path / "g.fa"), "--region", "chr1:101-123", "--threads", "1",
            "--no-progress"]
    assert main(args + ["-o", str(tmp_path / "one.tsv")]) == 0
    torchrun(args + ["-o", str(tmp_path / "two.tsv")], tmp_path)
    one, two = pd.read_csv(tmp_path / "one.tsv", sep="\t"), pd.read_csv(tmp_path / "two.tsv", sep="\t")
    assert len(one) == 23
    pd.testing.assert_frame_equal(one, two, atol=1e-6)
