"""Ctrl-C and SIGTERM, sent for real to ``python -m nucfm`` in a subprocess, per command family:
a ViennaRNA fold (C code that holds the interpreter), a language-model forward (embed), a DNA
model over a genome (vep) and training (pretrain). Each run must stop within STOP_SECONDS of the
signal, exit 130 (SIGINT) or 143 (SIGTERM), say so in one line and leave no partial output."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nucfm import save_model

from tiny import dna_model, rna_model

STOP_SECONDS = 2.0
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = tmp_path_factory.mktemp("sig")
    rng = np.random.default_rng(0)
    # a whole-map ViennaRNA partition function of 1,400 nt takes many seconds on one core
    (w / "fold.fa").write_text(">long\n" + "".join(rng.choice(list("ACGU"), 1400)) + "\n")
    (w / "embed.fa").write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGU'), 2000))}\n" for i in range(400)))
    chrom = "".join(rng.choice(list("ACGT"), 20_000))
    (w / "g.fa").write_text(f">chr1\n{chrom}\n")
    save_model(rna_model(max_len=1024, hidden_size=64, ffn_size=256, num_layers=3, num_heads=4), w / "rna")
    save_model(dna_model(), w / "dna")
    (w / "prev.dbn").write_text("previous\n")
    from nucfm.io.genome import Genome

    Genome(w / "g.fa").fetch("chr1", 0, 1)  # the index, built now
    return w


def _start(argv, cwd, ignore_sigint=False):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")

    def pre():  # a shell that starts jobs with SIGINT ignored (`cmd &` in a script, nohup)
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen([sys.executable, "-m", "nucfm", *argv], cwd=cwd, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, preexec_fn=pre)


def _interrupt_when(proc, marker: str, sig: int, timeout: float = 120) -> tuple[int, float, str]:
    """Read stderr until ``marker`` shows (the work has begun), then send ``sig``; return the
    exit code, the seconds from signal to exit and all of stderr."""
    seen = []
    t0 = time.monotonic()
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            break
        assert time.monotonic() - t0 < timeout, "".join(seen)
    else:
        pytest.fail("the command ended before the marker:\n" + "".join(seen))
    time.sleep(0.5)  # well inside the work
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        _, rest = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"still running 30 s after {signal.Signals(sig).name}")
    return proc.returncode, time.monotonic() - sent, "".join(seen) + rest


CASES = {
    "fold": (["fold", "-i", "fold.fa", "-o", "prev.dbn", "--threads", "1"], "fold: 0%", ["prev.dbn"]),
    "embed": (["embed", "-i", "embed.fa", "-o", "e.h5", "-m", "rna", "--threads", "1", "--batch-tokens", "4096"],
              "embed:", ["e.h5"]),
    "vep": (["vep", "--genome", "g.fa", "--region", "chr1:1-20000", "--all-snvs", "-o", "v.tsv", "-m", "dna",
             "--window", "128", "--threads", "1", "--chunk-size", "100000"], "vep: 0%", ["v.tsv"]),
}


@pytest.mark.parametrize("family,sig,ignored", [
    ("fold", signal.SIGINT, True),  # inside ViennaRNA, started with SIGINT ignored (nohup, `cmd &`)
    ("fold", signal.SIGTERM, False),
    ("embed", signal.SIGINT, False),  # inside a model forward
    ("vep", signal.SIGTERM, False),  # a resumable command: finished chunks stay
], ids=["fold-SIGINT-ignored-by-shell", "fold-SIGTERM", "embed-SIGINT", "vep-SIGTERM"])
def test_signal_stops_within_two_seconds(ws, tmp_path, family, sig, ignored):
    import shutil

    d = tmp_path / "w"
    shutil.copytree(ws, d)
    argv, marker, outputs = CASES[family]
    before = {p.name for p in d.iterdir()}
    proc = _start(argv, d, ignore_sigint=ignored)
    code, took, err = _interrupt_when(proc, marker, sig)
    assert code == 128 + sig, err
    assert took < STOP_SECONDS, f"{family} took {took:.1f} s to stop\n{err}"
    assert "Traceback" not in err and "nucfm: interrupted" in err, err
    assert (d / "prev.dbn").read_text() == "previous\n"  # the previous output is untouched
    left = {p.name for p in d.iterdir()} - before
    assert not [n for n in left if not n.startswith("v.tsv.parts")], left  # no partial output (vep keeps chunks)
    for out in outputs:
        if out not in before:
            assert not (d / out).exists()



def test_sigterm_stops_pretraining_and_keeps_whole_checkpoints(tmp_path):
    """Training: SIGTERM mid-run exits 143 within the limit; the checkpoints written so far are
    whole (no temporary files anywhere in the run directory; resuming from them is test_pretrain's)."""
    import yaml
    from test_pretrain import _rna_config

    d = _rna_config(tmp_path, steps=100_000, ckpt_every=5, eval_every=50_000, log_every=5)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(d))
    proc = _start(["pretrain", "--config", "c.yaml"], tmp_path)
    code, took, err = _interrupt_when(proc, "pretrain: 0%", signal.SIGTERM)
    assert code == 143 and took < STOP_SECONDS, f"{took:.1f} s\n{err}"
    run = Path(d["output"])
    assert not [p for p in run.rglob("*") if p.name.startswith(".")], "a temporary file was left"
    if (run / "checkpoints" / "latest").exists():  # interrupted after the first checkpoint
        latest = (run / "checkpoints" / "latest").read_text().strip()
        assert (run / "checkpoints" / latest).is_dir()
