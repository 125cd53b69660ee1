"""Resumable commands killed with a real SIGKILL at random points finish to the same bytes as an
uninterrupted run; other settings are refused naming the keys; the embedding layouts read back."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nucfm import open_embeddings, save_model
from nucfm.cli import main
from nucfm.io.embeddings import EmbeddingWriter

from tiny import interrupt_on_call, rna_model

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_model(rna_model(max_len=50), tmp_path_factory.mktemp("m") / "tiny"))


def slow_model():
    """Wider than the tiny model, so that a chunk takes long enough to be killed inside."""
    return rna_model(max_len=50, hidden_size=128, ffn_size=512, num_layers=4, num_heads=4)


@pytest.fixture(scope="module")
def slow_model_dir(tmp_path_factory):
    return str(save_model(slow_model(), tmp_path_factory.mktemp("m") / "slow"))


@pytest.fixture(scope="module")
def task_model_dir(tmp_path_factory):
    """A classification task model on the slow backbone (frozen, stored)."""
    from nucfm.checkpoint.task import save_task_model
    from nucfm.models.task import TaskConfig, TaskHead, TaskModel

    tc = TaskConfig(task="binary", labels=("no", "yes"), inputs=("lm", "onehot"), backbone_mode="frozen",
                    backbone_hidden_size=128, backbone_stored=True)
    return str(save_task_model(TaskModel(tc, TaskHead(tc), backbone=slow_model()),
                               tmp_path_factory.mktemp("m") / "task"))


def write_fasta(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 90, n)  # empty records and records longer than max_len (windows) too
    path.write_text("".join(f">r{i % (n // 2)} rec {i}\n{''.join(rng.choice(list('ACGU'), k))}\n"
                            for i, k in enumerate(lengths)))
    return path


def nucfm(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nucfm", *args, "--threads", "1"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_at_random_points(args: list[str], output: Path, kills: int, seed: int) -> None:
    """Start the command ``kills`` times and SIGKILL it once a random number of new chunks have
    appeared in OUTPUT.parts (or at a random moment of the merge), then let it finish."""
    rng = random.Random(seed)
    parts = output.with_name(output.name + ".parts")
    for _ in range(kills):
        before = len(list(parts.glob("chunk_*"))) if parts.is_dir() else 0
        target = before + rng.randint(1, 3)
        proc = nucfm(args)
        while proc.poll() is None and (len(list(parts.glob("chunk_*"))) if parts.is_dir() else 0) < target:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))  # anywhere inside the next chunk
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        assert not output.exists()
    proc = nucfm(args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert not parts.exists()


@pytest.mark.parametrize("extra", [["--layout", "concat"], ["--pool", "mean"]], ids=["concat", "pooled-npy"])
def test_embed_killed_twice_resumes_to_identical_file(tmp_path, slow_model_dir, extra):
    fa = write_fasta(tmp_path / "in.fa", 240)
    ext = ".npy" if "--pool" in extra else ".h5"
    base = ["embed", "-i", str(fa), "-m", slow_model_dir, "--chunk-residues", "300", "--no-progress", *extra]
    assert main([*base, "-o", str(tmp_path / f"straight{ext}"), "--threads", "1"]) == 0
    out = tmp_path / f"killed{ext}"
    kill_at_random_points([*base, "-o", str(out)], out, kills=2, seed=len(extra[-1]))
    assert out.read_bytes() == (tmp_path / f"straight{ext}").read_bytes()
    if ext == ".npy":
        assert out.with_suffix(".ids.txt").read_text() == (tmp_path / "straight.ids.txt").read_text()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left
    with open_embeddings(out) as f:
        assert len(f) == 240 and f.ids[:2] == ["r0", "r1"]


@pytest.mark.parametrize("ext", [".parquet"])
def test_predict_killed_twice_resumes_to_identical_file(tmp_path, task_model_dir, ext):
    fa = write_fasta(tmp_path / "in.fa", 200)
    base = ["predict", "-i", str(fa), "-m", task_model_dir, "--chunk-records", "8"]
    assert main([*base, "-o", str(tmp_path / f"straight{ext}"), "--threads", "1"]) == 0
    out = tmp_path / f"killed{ext}"
    kill_at_random_points([*base, "-o", str(out)], out, kills=2, seed=len(ext))
    assert out.read_bytes() == (tmp_path / f"straight{ext}").read_bytes()
    import pandas as pd

    table = pd.read_parquet(out) if ext == ".parquet" else pd.read_csv(out, sep="\t", keep_default_na=False)
    assert table["id"].tolist() == [f"r{i % 100}" for i in range(200)]  # input order, ids kept


def test_embed_other_settings_refused_then_restart(tmp_path, model_dir, capsys, monkeypatch):
    import nucfm.tasks.embed as te
    from nucfm.resume import Parts

    fa = write_fasta(tmp_path / "in.fa", 40)
    out = tmp_path / "e.h5"
    real = te.embed_ids
    # an interrupted run at layer -1 with one finished chunk
    interrupt_on_call(monkeypatch, te, "embed_ids", 2)
    with pytest.raises(KeyboardInterrupt):
        te.embed_fasta(rna_model(max_len=50), str(fa), str(out), chunk_residues=200, show_progress=False)
    monkeypatch.setattr(te, "embed_ids", real)
    assert Parts(out, {}, suffix=".npz").finished() == {0} and not out.exists()
    args = ["embed", "-i", str(fa), "-o", str(out), "-m", model_dir, "--chunk-residues", "200", "--no-progress"]
    assert main([*args, "--layer", "1"]) == 2
    err = capsys.readouterr().err
    assert "different settings" in err and "layer" in err and "model_fingerprint" not in err
    assert main([*args, "--layer", "1", "--restart"]) == 0
    assert not (tmp_path / "e.h5.parts").exists()
    with open_embeddings(out) as f:
        assert f.attrs["layer"] == 1 and len(f) == 40


def test_layouts_read_back_the_same_records(tmp_path):
    rng = np.random.default_rng(0)
    ids = ["a", "b", "a", "empty", "c/1"]
    arrays = [rng.normal(size=(n, 8)).astype(np.float32) for n in (3, 5, 1, 0, 700)]
    for layout in ("records", "concat"):
        with EmbeddingWriter(tmp_path / f"{layout}.h5", pooled=False, dim=8, layout=layout) as w:
            w.add(ids[:2], arrays[:2])
            w.add(ids[2:], arrays[2:])
        with open_embeddings(tmp_path / f"{layout}.h5") as f:
            assert f.ids == ids and len(f) == 5 and f.layout == layout
            for k, a in enumerate(arrays):
                np.testing.assert_array_equal(f[k], a)
            np.testing.assert_array_equal(f.get("a"), arrays[0])
            np.testing.assert_array_equal(f[-1], arrays[-1])
    vectors = [a.mean(0) if len(a) else np.full(8, np.nan, np.float32) for a in arrays]
    for ext in (".h5", ".npy", ".npz", ".parquet"):
        with EmbeddingWriter(tmp_path / f"pooled{ext}", pooled=True, dim=8) as w:
            w.add(ids[:3], vectors[:3])
            w.add(ids[3:], vectors[3:])
        with open_embeddings(tmp_path / f"pooled{ext}") as f:
            assert f.ids == ids and f.pooled
            np.testing.assert_array_equal(np.stack([f[k] for k in range(5)]), np.stack(vectors))


@pytest.mark.parametrize("command", ["fold", "contacts"])
def test_fold_and_contacts_interrupted_resume_to_identical_files(tmp_path, model_dir, monkeypatch, command):
    import dataclasses

    import torch

    import nucfm.tasks.structure as ts
    from nucfm.checkpoint.structure import save_structure_model
    from nucfm.models.config import PairHeadConfig, StructureConfig
    from nucfm.models.heads import PairHead

    torch.manual_seed(0)
    hc = PairHeadConfig(embed_dim=16, reduction=4, channels=4, blocks=1)
    cfg = StructureConfig(head=dataclasses.asdict(hc), lm=model_dir, lm_hidden_size=16,
                          task="structure" if command == "fold" else "contact")
    ss = str(save_structure_model(PairHead(hc), cfg, tmp_path / "ss"))
    fa = write_fasta(tmp_path / "in.fa", 30)
    out = "x.dbn" if command == "fold" else "x.npz"
    extra = ["--probs", str(tmp_path / "{}.npz")] if command == "fold" else []

    def args(name):
        return [command, "-i", str(fa), "-o", str(tmp_path / out.replace("x", name)), "-m", ss, "--chunk-records", "4",
                "--threads", "1", *[a.format(name + "_p") for a in extra]]

    assert main(args("straight")) == 0
    real = ts.distributed.gather
    interrupt_on_call(monkeypatch, ts.distributed, "gather", 4)  # the 4th chunk never finishes
    assert main(args("resumed")) != 0  # "nucfm: interrupted"
    monkeypatch.setattr(ts.distributed, "gather", real)
    assert len(list((tmp_path / (out.replace("x", "resumed") + ".parts")).glob("chunk_*"))) == 3
    assert main(args("resumed")) == 0
    name = out.replace("x", "{}") if command == "fold" else "{}.top.tsv"
    assert (tmp_path / name.format("resumed")).read_bytes() == (tmp_path / name.format("straight")).read_bytes()
    maps = "{}_p.npz" if command == "fold" else "{}.npz"  # zip members carry the time: compare the arrays
    with np.load(tmp_path / maps.format("resumed")) as a, np.load(tmp_path / maps.format("straight")) as b:
        assert a.files == b.files and len(a.files) == 31
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_genome_window_embeddings_resume(tmp_path, monkeypatch):
    import nucfm.tasks.genome_clusters as tg
    from nucfm.resume import Parts

    from tiny import dna_model

    model = dna_model()
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(50)]
    straight = tg.window_embeddings(model, seqs, center=10, chunk=8)
    parts = Parts(tmp_path / "out", {"a": 1})
    parts.prepare()
    real = tg.centre_embeddings
    calls = interrupt_on_call(monkeypatch, tg, "centre_embeddings", 4)
    with pytest.raises(KeyboardInterrupt):
        tg.window_embeddings(model, seqs, center=10, chunk=8, parts=parts)
    assert parts.finished() == {0, 1, 2}
    monkeypatch.setattr(tg, "centre_embeddings", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = tg.window_embeddings(model, seqs, center=10, chunk=8, parts=parts)
    assert len(calls) == 4 + 4  # chunks 3..6 only
    np.testing.assert_array_equal(resumed, straight)


def test_a_killed_writers_temporary_is_swept_by_the_next_write(tmp_path):
    """atomic_path's temporaries carry the writer's pid: the next write in that directory (a new
    process) deletes those whose writer is gone, and keeps a live writer's and other files."""
    from nucfm import paths

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".out.tsv.{gone.pid}-abcdef.tmp.tsv"
    live = tmp_path / f".out.tsv.{os.getppid()}-abcdef.tmp.tsv"
    for p in (dead, live, tmp_path / ".hidden.txt"):
        p.write_text("x")
    paths._swept.discard(tmp_path.resolve())  # as in a new process
    with paths.atomic_path(tmp_path / "out.tsv") as tmp:
        tmp.write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, ".hidden.txt", "out.tsv"])
