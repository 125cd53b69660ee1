"""The shape every nucfm training recipe shares (torchtune's): named steps around one loop.

A recipe subclasses :class:`Recipe` and fills in

* ``setup()``      — threads, device, processes, run directory, data;
* ``build()``      — model, optimizer, schedule (fresh weights or ``init_from``);
* ``maybe_resume()`` — load the latest training checkpoint when resuming;
* ``train_step(step)`` — one optimizer step; returns what to log (``loss``...);
* ``evaluate()``   — validation metrics;
* ``save()``       — a resumable checkpoint (:mod:`nucfm.checkpoint.training_state`);
* ``finish()``     — the final model and summary; its return value is :meth:`run`'s.

and the cadence: ``done()``, ``eval_due()``, ``save_due()``. :meth:`run` is the one loop, so
pretraining, structure training and task fine-tuning differ only in those steps.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from nucfm.checkpoint import training_state
from nucfm.errors import InputError

log = logging.getLogger("nucfm")


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts.

    >>> config_differences({"train": {"lr": 1, "steps": 2}}, {"train": {"lr": 1, "steps": 3}})
    ['train.steps']
    """
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


class Recipe:
    step: int = 0  # optimizer steps taken
    output: Path
    is_main: bool = True  # rank 0 logs and writes

    def setup(self) -> None:
        raise NotImplementedError

    def build(self) -> None:
        raise NotImplementedError

    def maybe_resume(self) -> None:
        raise NotImplementedError

    def train_step(self, step: int) -> dict:
        raise NotImplementedError

    def evaluate(self) -> dict:
        raise NotImplementedError

    def save(self) -> None:
        raise NotImplementedError

    def finish(self):
        raise NotImplementedError

    # ---- cadence ------------------------------------------------------------------------------
    def done(self) -> bool:
        raise NotImplementedError

    def eval_due(self) -> bool:
        raise NotImplementedError

    def save_due(self) -> bool:
        raise NotImplementedError

    def on_step_end(self, metrics: dict) -> None:
        """Logging after each step (progress bar, ``metrics.jsonl``); default nothing."""

    def stop_early(self) -> bool:
        """True to leave the loop now, as a crash would (tests of exact resume)."""
        return False

    # ---- clock and running loss (recipes that log every ``cfg.log_every`` steps) ---------------
    def start_clock(self, elapsed: float = 0.0) -> None:
        """Start the wall clock (a resumed run goes on from its ``elapsed`` seconds) and the running loss."""
        self.start_wall = time.time() - elapsed
        self.running: list[float] = []

    def minutes(self) -> float:
        return (time.time() - self.start_wall) / 60

    def log_running_loss(self, loss: float, **extra) -> None:
        """Add one step's loss; every ``cfg.log_every`` steps write the mean since the last write
        (with ``extra`` values) to ``metrics.jsonl`` and the log."""
        self.running.append(loss)
        if self.step % self.cfg.log_every:
            return
        mean = sum(self.running) / len(self.running)
        self.log_metrics({"step": self.step, "epoch": self.epoch, "loss": mean, **extra, "minutes": self.minutes()})
        log.info("step %d epoch %d loss %.5f (%.1f min)", self.step, self.epoch, mean, self.minutes())
        self.running = []

    # ---- the resume convention -------------------------------------------------------------------
    def decide_resume(self, config: dict, saved: Path, resumable: set[str], run_files: tuple[str, ...],
                      restart: bool = False, insist: bool = False) -> bool:
        """Whether this run resumes: the same config into the same output resumes from its
        latest checkpoint; a different one is refused naming the keys (``resumable`` keys may
        differ: how long and how often, not what is learned); ``restart`` deletes ``run_files``
        under the output and starts over; ``insist`` (``--resume``) requires a checkpoint; a
        finished run without checkpoints is never silently overwritten."""
        import yaml

        ckpts = self.output / "checkpoints"
        if restart:
            if self.is_main:
                for name in run_files:
                    p = self.output / name
                    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
            return False
        if training_state.latest(ckpts) is None:
            if insist:
                raise InputError(f"--resume: no checkpoint under {ckpts}")
            leftovers = [n for n in run_files if n != "checkpoints" and (self.output / n).exists()
                         and n != saved.name]
            if leftovers:
                raise InputError(f"{self.output} holds an earlier run ({', '.join(leftovers)}); pass --restart to "
                                 "replace it, or choose another output")
            return False
        old = yaml.safe_load(saved.read_text()) if saved.exists() else {}
        diff = [k for k in config_differences(old or {}, config) if k not in resumable]
        if diff:
            raise InputError(f"{self.output} holds a run with a different config ({', '.join(diff)}); rerun the same "
                             "config to resume, or pass --restart to start over")
        return True

    # ---- the loop -----------------------------------------------------------------------------
    def run(self):
        self.setup()
        self.build()
        self.maybe_resume()
        while not self.done():
            metrics = self.train_step(self.step)
            self.step += 1
            self.on_step_end(metrics)
            if self.eval_due() or self.done():
                self.evaluate()
            if self.save_due() or self.done():
                self.save()
            if self.stop_early():
                return None
        return self.finish()

    def log_metrics(self, record: dict) -> None:
        """Append one JSON line to ``OUTPUT/metrics.jsonl`` (rank 0 only)."""
        if self.is_main:
            with open(self.output / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
