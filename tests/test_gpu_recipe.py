"""The one-GPU training commands of configs/gpu/ (issue 26), run at a tiny size on the CPU: several
genomes with an excluded region, the time budget, data-loader workers, FLOPs accounting and the
export (fp16 model, eval.json, model card)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nucfm import load_model
from nucfm.cli import main
from nucfm.data.corpus import TokenStore, prepare_dna
from nucfm.errors import InputError
from nucfm.models import ARCHITECTURES
from nucfm.train.config import from_dict
from nucfm.train.pretrain import pretrain, train_flops_per_token

ROOT = Path(__file__).resolve().parents[1]
TINY_DNA = ["model.num_layers=2", "model.hidden_size=16", "model.kernel_size=5", "data.window=64", "data.stride=32",
            "train.batch_size=4", "train.eval_size=8", "train.eval_every=4", "train.log_every=2", "train.warmup=2",
            "train.workers=0", "train.ckpt_every=4", "train.threads=1"]


def _genomes(tmp_path: Path, seed=0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    a = "".join(rng.choice(list("ACGT"), 3000))
    b = "".join(rng.choice(list("ACGT"), 2000))
    (tmp_path / "ref.fa").write_text(">ref1\n" + a[:1000] + a[1000:1200].lower() + a[1200:] + "\n")
    (tmp_path / "rel.fa").write_text(">relA\n" + b[:1000] + "\n>relB\n" + b[1000:] + "\n")
    return tmp_path / "ref.fa", tmp_path / "rel.fa"


def test_prepare_dna_several_genomes_and_excluded_regions(tmp_path):
    ref, rel = _genomes(tmp_path)
    s = prepare_dna([ref, rel], tmp_path / "prep", "ref1:2001-3000", window=100, stride=50,
                    exclude_regions=["relB:201-600"])
    assert s["records"] == ["ref1", "relA", "relB"] and s["genome_residues"] == 5000
    starts = np.load(tmp_path / "prep" / "train.starts.npy")
    offsets = TokenStore(tmp_path / "prep" / "genome").offsets  # record r spans [offsets[r], offsets[r+1])
    held = [(offsets[0] + 2000, offsets[0] + 3000), (offsets[2] + 200, offsets[2] + 600)]
    for lo, hi in held:
        assert not np.any((starts < hi) & (starts + 100 > lo)), (lo, hi)
    # every other window of the three records is there: windows are cut per record, none spans two
    expected = 0
    for n, span in ((3000, (2000, 3000)), (1000, None), (1000, (200, 600))):
        w = np.arange(0, n - 100 + 1, 50)
        expected += len(w) if span is None else int(((w + 100 <= span[0]) | (w >= span[1])).sum())
    assert len(starts) == expected
    # the baseline counts see training positions only: 5000 - 1000 - 400 residues
    counts = np.load(tmp_path / "prep" / "counts.npz")
    assert int(counts[counts.files[0]].sum()) == 3600


def test_prepare_dna_errors_name_the_problem(tmp_path):
    ref, rel = _genomes(tmp_path)
    with pytest.raises(InputError, match="occurs twice"):
        prepare_dna([ref, ref], tmp_path / "p1", "ref1:1-100")
    with pytest.raises(InputError, match="not in data.genome: chrZ"):
        prepare_dna([ref], tmp_path / "p2", "ref1:1-100", exclude_regions=["chrZ:1-10"])
    with pytest.raises(InputError, match="runs past relA"):
        prepare_dna([ref, rel], tmp_path / "p3", "ref1:1-100", exclude_regions=["relA:1-5000"])


def test_time_budget_stops_cleanly_and_saves(tmp_path):
    ref, rel = _genomes(tmp_path)
    d = {"model": {"architecture": "convnet", "num_layers": 2, "hidden_size": 16, "kernel_size": 5},
         "data": {"kind": "dna", "genome": [str(ref), str(rel)], "valid_region": "ref1:2001-3000", "window": 64,
                  "stride": 32},
         "train": {"steps": 100000, "max_minutes": 0.02, "batch_size": 4, "warmup": 2, "log_every": 2,
                   "eval_every": 1000, "eval_size": 8, "ckpt_every": 1000, "threads": 1, "schedule": "cosine",
                   "min_lr_ratio": 0.1},
         "output": str(tmp_path / "run")}
    run = pretrain(from_dict(d))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = max(r["step"] for r in rows)
    assert 2 <= steps < 100000
    assert any("val_loss" in r for r in rows)  # evaluated at the stop
    assert (run / "final" / "model.safetensors").exists() and (run / "checkpoints" / "latest").exists()
    assert json.loads((run / "final" / "config.json").read_text())["metadata"]["steps"] == steps
    lrs = [r["lr"] for r in rows if "lr" in r]
    assert lrs[-1] < max(lrs)  # the cosine followed the clock down
    assert all(r["minutes"] < 0.02 + 0.05 for r in rows if "minutes" in r)


def test_workers_give_the_same_losses_as_the_training_process(tmp_path):
    ref, rel = _genomes(tmp_path)

    def losses(workers, out):
        d = {"model": {"architecture": "convnet", "num_layers": 2, "hidden_size": 16, "kernel_size": 5},
             "data": {"kind": "dna", "genome": [str(ref), str(rel)], "valid_region": "ref1:2001-3000",
                      "window": 64, "stride": 32},
             "train": {"steps": 6, "batch_size": 4, "warmup": 2, "log_every": 1, "eval_every": 6, "eval_size": 4,
                       "ckpt_every": 6, "threads": 1, "workers": workers},
             "output": str(tmp_path / out)}
        run = pretrain(from_dict(d))
        return [json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]

    assert losses(0, "w0") == pytest.approx(losses(2, "w2"), abs=1e-6)


@pytest.mark.parametrize("arch", ["convnet", "transformer"])
def test_flops_per_token_counts_the_matrix_work(arch):
    cfg = ({"architecture": "convnet", "num_layers": 3, "hidden_size": 8, "kernel_size": 5} if arch == "convnet" else
           {"architecture": "transformer", "num_layers": 2, "hidden_size": 16, "num_heads": 2, "ffn_size": 32,
            "max_len": 40})
    model = ARCHITECTURES[arch](ARCHITECTURES[arch].config_class.from_dict(cfg))
    V, T = len(model.alphabet), 40
    if arch == "convnet":  # by hand: layer 1's convolution is a lookup of the one-hot input; 2 x 8 x 8 x 5 after
        fwd = 2 * (8 * 8 * 5) * 2 + 3 * 2 * 8 * 8 + 2 * (8 * 8 + 8 * V)
    else:  # q, k, v, out projections, the feed-forward, scores and values, the head's dense and vocabulary
        fwd = 2 * (2 * 4 * 16 * 16 + 2 * 2 * 16 * 32 + 2 * 2 * T * 16) + 2 * (16 * 16 + 16 * V)
    assert train_flops_per_token(model, T) == pytest.approx(3 * fwd)
    # twice the width: more than twice the work (the products are quadratic in it)
    wider = ARCHITECTURES[arch](ARCHITECTURES[arch].config_class.from_dict(cfg | {"hidden_size": 32}))
    assert train_flops_per_token(wider, T) > 2 * train_flops_per_token(model, T)


@pytest.mark.parametrize("kind", ["dna", "rna"])
def test_gpu_config_runs_tiny_on_cpu_and_exports(tmp_path, kind):
    if kind == "dna":
        ref, rel = _genomes(tmp_path)
        over = TINY_DNA + [f"data.genome=[{ref},{rel}]", "data.valid_region=ref1:2001-3000",
                           "data.exclude_regions=[relB:201-600]"]
    else:
        rng = np.random.default_rng(0)
        with open(tmp_path / "rna.fa", "w") as fh:
            for i in range(80):
                fh.write(f">s{i} RF{i % 8 + 1:05d} fam\n{''.join(rng.choice(list('ACGU'), 20 + i % 30))}\n")
        over = [f"data.fasta=[{tmp_path / 'rna.fa'}]", "data.families=null", "data.valid_fraction=0.3",
                "model.num_layers=2", "model.hidden_size=16", "model.num_heads=2", "model.ffn_size=32",
                "model.max_len=60", "train.batch_size=4", "train.eval_size=8", "train.eval_every=4",
                "train.log_every=2", "train.warmup=2", "train.workers=0", "train.ckpt_every=4", "train.threads=1"]
    out = tmp_path / "export"
    rc = main(["pretrain", "--config", str(ROOT / "configs" / "gpu" / f"{kind}.yaml"), "-o", str(tmp_path / "run"),
               "--device", "cpu", "--export", str(out), "--description", "tiny test model", "train.steps=6",
               "train.max_minutes=1", *over])
    assert rc in (0, None)
    res = json.loads((out / "eval.json").read_text())
    assert res["steps"] == 6 and res["kind"] == kind
    assert res["held_out"]["abs_diff_loss"] < 1e-2  # fp16 loses little
    assert res["mfu_median"] is not None and 0 < res["mfu_median"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "tiny test model" in card and "Held-out" in card
    model = load_model(out)
    ids = torch.randint(4, 8, (1, 12)) if kind == "rna" else torch.randint(3, 7, (1, 12))
    assert model.token_logits(ids).shape[:2] == (1, 12)
    assert json.loads((out / "config.json").read_text())["metadata"]["kind"] == kind


def test_export_path_is_checked_before_any_training(tmp_path, capsys):
    ref, rel = _genomes(tmp_path)
    (tmp_path / "in_the_way").write_text("a file")
    rc = main(["pretrain", "--config", str(ROOT / "configs" / "gpu" / "dna.yaml"), "-o", str(tmp_path / "run"),
               "--device", "cpu", "--export", str(tmp_path / "in_the_way"), *TINY_DNA,
               f"data.genome=[{ref},{rel}]", "data.valid_region=ref1:2001-3000", "data.exclude_regions=[]"])
    err = capsys.readouterr().err
    assert rc == 2 and "nucfm: error:" in err and "in_the_way" in err
    assert not (tmp_path / "run").exists()  # nothing prepared, nothing trained
