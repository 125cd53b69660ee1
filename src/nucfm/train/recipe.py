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
from pathlib import Path

log = logging.getLogger("nucfm")


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
