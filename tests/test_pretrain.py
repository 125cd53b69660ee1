"""Engine tests on tiny models: resume equality, DDP (2 gloo processes) vs accumulation, DNA run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nucfm.train.config import from_dict, load_config
from nucfm.train.pretrain import pretrain, schedule_factor

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _rna_fasta(path: Path, n=60, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for i in range(n):
            # a learnable signal: each sequence is a repeated random 6-mer
            unit = "".join(rng.choice(list("ACGT"), 6))
            fh.write(f">s{i} RF{i % 6 + 1:05d} fam\n{(unit * 8)[: 20 + i % 25]}\n")
    return path


def _rna_config(tmp_path, **train):
    fa = _rna_fasta(tmp_path / "rna.fa")
    t = {"steps": 12, "batch_size": 4, "lr": 3e-3, "warmup": 3, "log_every": 1, "eval_every": 6, "eval_size": 8,
         "ckpt_every": 4, "threads": 1}
    t.update(train)
    return {"model": {"architecture": "transformer", "num_layers": 2, "hidden_size": 32, "num_heads": 2,
                      "ffn_size": 64, "max_len": 30, "dropout": 0.1},
            "data": {"kind": "rna", "fasta": [str(fa)], "valid_fraction": 0.34, "min_len": 5},
            "train": t, "output": str(tmp_path / "run")}


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path):
    d = _rna_config(tmp_path)
    full = pretrain(from_dict(d))
    ref = _losses(full)
    assert len(ref) == 12 and ref[12] < ref[1]
    d["output"] = str(tmp_path / "run2")
    run2 = pretrain(from_dict(d), interrupt_at=10)  # "crash" after step 10; last checkpoint is step 8
    assert max(_losses(run2)) == 10
    assert (run2 / "checkpoints" / "latest").read_text().strip() == "step_00000008"
    resumed = _losses(pretrain(from_dict(d), resume=True))
    assert sorted(resumed) == list(range(1, 13))
    for s in range(1, 13):
        assert abs(resumed[s] - ref[s]) < 1e-5, (s, resumed[s], ref[s])
    # dropout is on (0.1): equality needs the restored RNG state, not just the weights
    assert (full / "final" / "model.safetensors").exists() and (full / "final" / "mlm_counts.npz").exists()
    assert (full / "loss.png").exists() and (full / "config.yaml").exists()
    saved = yaml.safe_load((full / "config.yaml").read_text())
    assert saved["train"]["steps"] == 12 and saved["model"]["hidden_size"] == 32


@pytest.mark.distributed
def test_two_process_torchrun_equals_gradient_accumulation(tmp_path):
    """2 gloo processes x 2 sequences == 1 process x 2 micro-batches of 2 (same global batch)."""
    d = _rna_config(tmp_path, steps=4, ckpt_every=4, eval_every=4)
    d["model"]["dropout"] = 0.0
    d["output"] = str(tmp_path / "ddp")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(d))
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "nucfm.cli", "pretrain", "--config", str(cfg)], env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    ddp = _losses(tmp_path / "ddp")
    d["output"] = str(tmp_path / "accum")
    d["train"]["accum"] = 2
    acc = _losses(pretrain(from_dict(d)))
    assert sorted(ddp) == sorted(acc) == [1, 2, 3, 4]
    for s in ddp:
        assert abs(ddp[s] - acc[s]) < 1e-4, (s, ddp[s], acc[s])


def test_dna_convnet_run(tmp_path):
    rng = np.random.default_rng(0)
    unit = "".join(rng.choice(list("ACGT"), 7))
    seq = (unit * 200)[:1200]
    seq = seq[:300] + seq[300:400].lower() + "N" * 100 + seq[500:]
    (tmp_path / "g.fa").write_text(">chr\n" + seq + "\n")
    d = {"model": {"architecture": "convnet", "num_layers": 2, "hidden_size": 16, "kernel_size": 5},
         "data": {"kind": "dna", "genome": str(tmp_path / "g.fa"), "valid_region": "chr:1001-1200", "window": 50,
                  "stride": 25},
         "train": {"steps": 6, "batch_size": 4, "warmup": 2, "log_every": 1, "eval_every": 3, "eval_size": 4,
                   "ckpt_every": 3, "threads": 1, "lr": 1e-2},
         "output": str(tmp_path / "run")}
    run = pretrain(from_dict(d))
    prep = json.loads((run / "data" / "prep.json").read_text())
    assert prep["skipped_windows"] >= 1  # the all-N windows
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [3, 6]


def test_config_overrides_and_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(_rna_config(tmp_path)))
    cfg = load_config(p, ["train.lr=5e-4", "model.num_layers=3", "data.min_len=7"])
    assert cfg.train.lr == 5e-4 and cfg.model["num_layers"] == 3 and cfg.data.min_len == 7
    from nucfm.errors import InputError

    with pytest.raises(InputError, match="unknown train keys: lrr"):
        load_config(p, ["train.lrr=1"])
    with pytest.raises(InputError, match="KEY=VALUE"):
        load_config(p, ["train.lr"])


def test_schedules():
    from nucfm.train.config import TrainConfig

    t = TrainConfig(warmup=10, steps=110, schedule="inverse_sqrt")
    assert schedule_factor(5, t) == 0.5 and schedule_factor(10, t) == 1.0 and abs(schedule_factor(40, t) - 0.5) < 1e-12
    t = TrainConfig(warmup=10, steps=110, schedule="cosine", min_lr_ratio=0.1)
    assert schedule_factor(10, t) == 1.0 and abs(schedule_factor(60, t) - 0.55) < 1e-12
    assert abs(schedule_factor(110, t) - 0.1) < 1e-12


def test_init_from_starts_at_the_given_weights(tmp_path):
    """train.init_from copies a saved model's weights (fresh optimizer); a different architecture
    is refused with the differing keys named."""
    import torch
    from safetensors.torch import load_file

    from nucfm.checkpoint import load_model
    from nucfm.errors import InputError

    d = _rna_config(tmp_path, steps=4, ckpt_every=4, eval_every=4)
    src = pretrain(from_dict(d)) / "final"
    d2 = _rna_config(tmp_path, steps=1, lr=0.0, warmup=1, clip=0.0, ckpt_every=1, eval_every=1, init_from=str(src))
    d2["output"] = str(tmp_path / "warm")
    warm = pretrain(from_dict(d2))
    got, want = load_file(str(warm / "final" / "model.safetensors")), load_model(src).state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)  # lr 0: the weights are exactly the source's
    d3 = _rna_config(tmp_path, init_from=str(src))
    d3["model"]["hidden_size"] = 16
    d3["output"] = str(tmp_path / "bad")
    with pytest.raises(InputError, match="hidden_size"):
        pretrain(from_dict(d3))


# Golden first-step losses: the reference behaviour any refactor of the engine must keep (data
# prep, batching order, masking RNG, init, optimizer, schedule). Recorded from nucfm 0.1.0 at
# commit 2b3ba75 on CPU, threads=1 (identical with 2 threads and across reruns); to 1e-4.
GOLDEN_RNA_LOSSES = [3.2289906, 3.2510293, 3.0551250, 2.9170969, 2.8488102]
GOLDEN_RNA_VAL_LOSS = 2.7380404
GOLDEN_DNA_LOSSES = [1.9697803, 1.9817560, 1.8672516, 1.7841927, 1.8055459]
GOLDEN_DNA_VAL_LOSS = 1.7710544


def _golden_train(**extra):
    t = {"steps": 5, "batch_size": 4, "lr": 3e-3, "warmup": 2, "log_every": 1, "eval_every": 5, "ckpt_every": 5,
         "threads": 1, "seed": 0}
    return {**t, **extra}


def _metrics(run: Path) -> tuple[list[float], float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in sorted((r for r in rows if "loss" in r), key=lambda r: r["step"])]
    (val,) = [r["val_loss"] for r in rows if "val_loss" in r]
    return losses, val


def test_golden_losses_tiny_rna_transformer(tmp_path):
    rng = np.random.default_rng(0)
    with open(tmp_path / "rna.fa", "w") as fh:
        for i in range(24):
            unit = "".join(rng.choice(list("ACGU"), 5))
            fh.write(f">s{i} RF{i % 4 + 1:05d} fam\n{(unit * 10)[: 18 + i % 13]}\n")
    d = {"model": {"architecture": "transformer", "num_layers": 2, "hidden_size": 32, "num_heads": 2,
                   "ffn_size": 64, "max_len": 32},
         "data": {"kind": "rna", "fasta": [str(tmp_path / "rna.fa")], "valid_fraction": 0.25, "min_len": 5},
         "train": _golden_train(eval_size=4), "output": str(tmp_path / "run")}
    losses, val = _metrics(pretrain(from_dict(d)))
    np.testing.assert_allclose(losses, GOLDEN_RNA_LOSSES, atol=1e-4, rtol=0)
    assert abs(val - GOLDEN_RNA_VAL_LOSS) < 1e-4


def test_golden_losses_tiny_dna_convnet(tmp_path):
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 600))
    seq = seq[:200] + seq[200:260].lower() + seq[260:]  # a soft-masked stretch (loss weight 0.1)
    (tmp_path / "g.fa").write_text(">chr1\n" + seq + "\n")
    d = {"model": {"architecture": "convnet", "num_layers": 3, "hidden_size": 32, "kernel_size": 5},
         "data": {"kind": "dna", "genome": str(tmp_path / "g.fa"), "valid_region": "chr1:501-600", "window": 40,
                  "stride": 20},
         "train": _golden_train(eval_size=2), "output": str(tmp_path / "run")}
    losses, val = _metrics(pretrain(from_dict(d)))
    np.testing.assert_allclose(losses, GOLDEN_DNA_LOSSES, atol=1e-4, rtol=0)
    assert abs(val - GOLDEN_DNA_VAL_LOSS) < 1e-4


def test_rerun_resumes_a_different_config_is_refused_restart_starts_over(tmp_path):
    """The resume convention: the identical config continues (here: a finished run is a no-op that
    keeps its checkpoints), a changed learning setting is refused naming the key, a longer run
    resumes, --restart starts at step 0."""
    from nucfm.errors import InputError

    d = _rna_config(tmp_path, steps=4, ckpt_every=2, eval_every=4)
    run = pretrain(from_dict(d))
    first = _losses(run)
    assert pretrain(from_dict(d)) == run and _losses(run) == first  # identical rerun: nothing recomputed
    d["train"]["lr"] = 1e-2
    with pytest.raises(InputError, match=r"different config \(train.lr\).*--restart"):
        pretrain(from_dict(d))
    assert _losses(run) == first and (run / "checkpoints" / "latest").read_text().strip() == "step_00000004"
    d["train"]["lr"], d["train"]["steps"] = 3e-3, 6  # more steps: resumes at 4
    assert sorted(_losses(pretrain(from_dict(d)))) == list(range(1, 7))
    assert {s: v for s, v in _losses(run).items() if s <= 4} == first
    d["train"]["lr"] = 1e-2
    restarted = _losses(pretrain(from_dict(d), restart=True))
    assert sorted(restarted) == list(range(1, 7)) and restarted[3] != first[3]  # step 1 trains at lr 0 (warmup)
