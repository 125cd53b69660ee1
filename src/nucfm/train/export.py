"""Turn a training checkpoint into a shipped model directory (fp16 weights + baseline counts)
and check that the lower precision loses nothing measurable."""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path

import torch

from nucfm.checkpoint import COUNTS_FILE, load_model, save_model
from nucfm.data.corpus import validation_examples
from nucfm.train.pretrain import MLMObjective, evaluate


def export_model(checkpoint: str | Path, dest: str | Path, counts: str | Path, metadata: dict,
                 dtype: torch.dtype = torch.float16) -> Path:
    """Copy ``checkpoint`` (a run's ``checkpoints/step_N`` or ``final``) to ``dest`` with weights in
    ``dtype``, ``metadata`` in its config.json and the training-data baseline counts beside it."""
    model = load_model(checkpoint)
    dest = Path(dest)
    save_model(model, dest, dtype=dtype, metadata=metadata)
    shutil.copy(counts, dest / COUNTS_FILE)
    return dest


def compare_precision(fp32_dir: str | Path, exported_dir: str | Path, prep_dir: str | Path, kind: str,
                      eval_size: int = 512, seed: int = 0, window: int = 512) -> dict:
    """Validation loss / accuracy of the fp32 checkpoint and the reloaded export on the same
    examples and masks (the training run's fixed validation sample)."""
    out = {}
    for name, path in (("fp32", fp32_dir), ("exported", exported_dir)):
        model = load_model(path)
        examples = validation_examples(prep_dir, kind, model.max_len, window, eval_size, seed)
        out[name] = evaluate(MLMObjective(model), model.alphabet, examples, 16, 0.15, seed, torch.device("cpu"),
                             nullcontext)
    out["abs_diff_loss"] = abs(out["fp32"]["val_loss"] - out["exported"]["val_loss"])
    return out
