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


# ---- two launchers as two nodes of one job (what several machines do), rendezvous on loopback ----
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(args: list[str], tmp_path: Path) -> None:
    """``torchrun --nnodes 2`` started twice (node ranks 0 and 1), one process each, as on two
    machines that reach each other at 127.0.0.1."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    port = free_port()
    launchers = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={k}",
                                   "--nproc-per-node=1", "--master-addr=127.0.0.1", f"--master-port={port}",
                                   "-m", "nucfm", *args], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for k in (0, 1)]
    outs = [p.communicate(timeout=300)[0] for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], "\n".join(o[-2000:] for o in outs)


def test_embed_two_nodes_equals_one_process(tmp_path):
    from nucfm import open_embeddings, save_model

    from tiny import rna_model

    model = str(save_model(rna_model(max_len=20), tmp_path / "tiny"))  # 45-nt records: windows too
    fa = _rna(tmp_path)
    args = ["embed", "-i", str(fa), "-m", model, "--threads", "1", "--no-progress", "--layout", "concat",
            "--chunk-residues", "50"]
    assert main([*args, "-o", str(tmp_path / "one.h5")]) == 0
    two_nodes([*args, "-o", str(tmp_path / "two.h5")], tmp_path)
    with open_embeddings(tmp_path / "one.h5") as a, open_embeddings(tmp_path / "two.h5") as b:
        assert a.ids == b.ids and len(a) == 7
        for k in range(len(a)):
            np.testing.assert_allclose(a[k], b[k], atol=1e-5)


def test_vep_two_nodes_equals_one_process(tmp_path):
    from nucfm import save_model

    from tiny import vep_dna_model

    model = str(save_model(vep_dna_model(), tmp_path / "dna"))
    rng = np.random.default_rng(2)
    chrom = "".join(rng.choice(list("ACGT"), 400))
    (tmp_path / "g.fa").write_text(f">chr1\n{chrom}\n")
    pos = sorted(rng.choice(np.arange(1, 401), 23, replace=False))
    alt = {"A": "G", "C": "T", "G": "A", "T": "C"}
    pd.DataFrame({"chrom": "chr1", "pos": pos, "ref": [chrom[p - 1] for p in pos],
                  "alt": [alt[chrom[p - 1]] for p in pos]}).to_csv(tmp_path / "v.tsv", sep="\t", index=False)
    args = ["vep", "--genome", str(tmp_path / "g.fa"), "--variants", str(tmp_path / "v.tsv"), "-m", model,
            "--window", "32", "--chunk-size", "4", "--threads", "1", "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "one.tsv")]) == 0
    two_nodes([*args, "-o", str(tmp_path / "two.tsv")], tmp_path)
    one, two = pd.read_csv(tmp_path / "one.tsv", sep="\t"), pd.read_csv(tmp_path / "two.tsv", sep="\t")
    assert len(one) == 23 and one["score"].notna().all()
    pd.testing.assert_frame_equal(one, two, atol=1e-6)
