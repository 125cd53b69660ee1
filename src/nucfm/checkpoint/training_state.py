"""Resumable training state: THE one save/load of a training checkpoint, for every recipe.

A training checkpoint is a directory written atomically (complete or absent):

* the model, in its own checkpoint format (``config.json`` + ``model.safetensors``), so any
  training checkpoint loads with :func:`nucfm.load_model` / ``load_structure_model``;
* ``trainer.pt``: step, optimizer and scheduler states, the named random streams
  (:func:`capture_rng` / :func:`restore_rng`) and whatever else the recipe records.

Runs keep their checkpoints under ``RUN/checkpoints/step_N`` with a ``latest`` pointer file
replaced last (:func:`save_step`, :func:`latest`).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nucfm.paths import atomic_path, atomic_write_text

TRAINER_FILE = "trainer.pt"
LATEST = "latest"


def capture_rng(streams: dict[str, random.Random | np.random.Generator] | None = None) -> dict:
    """The global random states (torch, CUDA, numpy, python) plus the recipe's named streams."""
    out = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
           "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    for name, rng in (streams or {}).items():
        out[f"stream:{name}"] = rng.getstate() if isinstance(rng, random.Random) else rng.bit_generator.state
    return out


def restore_rng(state: dict, streams: dict[str, random.Random | np.random.Generator] | None = None) -> None:
    """Inverse of :func:`capture_rng`; a stream the state does not name is an error (a resumed
    run must replay exactly what an uninterrupted one would)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, rng in (streams or {}).items():
        s = state[f"stream:{name}"]
        if isinstance(rng, random.Random):
            rng.setstate(s)
        else:
            rng.bit_generator.state = s


def save_training_state(directory: str | Path, write_model: Callable[[Path], object], trainer: dict) -> Path:
    """Atomically write ``directory``: ``write_model(tmp_dir)`` writes the model, ``trainer``
    (a dict of tensors, numbers and states) goes to ``trainer.pt``."""
    directory = Path(directory)
    with atomic_path(directory, directory=True) as tmp:
        write_model(tmp)
        torch.save(trainer, tmp / TRAINER_FILE)
    return directory


def load_training_state(directory: str | Path) -> dict:
    """The ``trainer.pt`` dict of a training checkpoint (our own file: full unpickling)."""
    return torch.load(Path(directory) / TRAINER_FILE, map_location="cpu", weights_only=False)


def save_step(root: str | Path, step: int, write_model: Callable[[Path], object], trainer: dict,
              keep: int) -> Path:
    """``root/step_N`` via :func:`save_training_state`, then ``root/latest`` names it; only the
    ``keep`` newest step directories are kept (the one just written always is)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = save_training_state(root / name, write_model, trainer)
    atomic_write_text(root / LATEST, name + "\n")
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in steps[:-keep] if keep > 0 else []:
        if p != final:
            shutil.rmtree(p, ignore_errors=True)
    return final


def latest(root: str | Path) -> Path | None:
    """The checkpoint ``root/latest`` names, or None when there is none (or it is missing)."""
    pointer = Path(root) / LATEST
    if not pointer.exists():
        return None
    path = Path(root) / pointer.read_text().strip()
    return path if (path / TRAINER_FILE).exists() else None
