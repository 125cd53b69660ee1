"""Turn a training checkpoint into a shipped model directory (fp16 weights + baseline counts)
and check that the lower precision loses nothing measurable."""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path

import torch

from nucfm.checkpoint import COUNTS_FILE, load_model, save_model
from nucfm.data.corpus import validation_examples
from nucfm.paths import atomic_write_text
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
                      eval_size: int = 512, seed: int = 0, window: int = 512, device: str = "cpu") -> dict:
    """Validation loss / accuracy of the fp32 checkpoint and the reloaded export on the same
    examples and masks (the training run's fixed validation sample), computed in fp32 on ``device``."""
    out = {}
    device = torch.device(device)
    for name, path in (("fp32", fp32_dir), ("exported", exported_dir)):
        model = load_model(path).float().to(device)
        examples = validation_examples(prep_dir, kind, model.max_len, window, eval_size, seed)
        out[name] = evaluate(MLMObjective(model), model.alphabet, examples, 16, 0.15, seed, device, nullcontext)
    out["abs_diff_loss"] = abs(out["fp32"]["val_loss"] - out["exported"]["val_loss"])
    return out


def export_run(run: str | Path, dest: str | Path, description: str, device: str = "cpu",
               eval_size: int | None = None) -> dict:
    """The end of a training run as something to ship: ``run/final`` written to ``dest`` as fp16
    safetensors with its baseline counts, the held-out loss of fp32 and fp16 on ``eval_size``
    validation examples (default: the run's ``train.eval_size``, its fixed validation sample),
    ``dest/eval.json`` (held-out figures, steps, tokens, wall minutes, throughput, model FLOPs
    utilisation, hardware) and ``dest/MODEL_CARD.md``. Returns the JSON."""
    import json
    import platform

    import numpy as np
    import yaml

    run, dest = Path(run), Path(dest)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    prep = Path(cfg["data"].get("prepared") or run / "data")
    kind = cfg["data"]["kind"]
    summary = json.loads((prep / "prep.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    export_model(run / "final", dest, prep / "counts.npz", {"kind": kind, "default": False, "description": description,
                                                            "training_checkpoint": str(run / "final")})
    precision = compare_precision(run / "final", dest, prep, kind, eval_size or cfg["train"]["eval_size"],
                                  cfg["train"]["seed"],
                                  summary.get("window", 512), device)
    dev = torch.device(device)
    hardware = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} thread"
                + ("s" if torch.get_num_threads() != 1 else ""))
    steady = train_rows[len(train_rows) // 5 :] or train_rows  # past compilation and autotuning
    steps = max((r["step"] for r in train_rows), default=0)
    result = {
        "model": dest.name, "kind": kind, "description": description, "hardware": hardware,
        "torch": torch.__version__, "steps": steps,
        "sequences": steps * cfg["train"]["batch_size"],
        "training_minutes": max((r.get("minutes") or 0 for r in train_rows), default=None),
        "tokens_per_s_median": float(np.median([r["tokens_per_s"] for r in steady])) if steady else None,
        "mfu_median": (float(np.median([r["mfu"] for r in steady if r.get("mfu") is not None]))
                       if any(r.get("mfu") is not None for r in steady) else None),
        "parameters": sum(p.numel() for p in load_model(dest).parameters()),
        "held_out": precision, "data": {k: v for k, v in summary.items() if k != "valid_families"},
        "config": cfg,
    }
    atomic_write_text(dest / "eval.json", json.dumps(result, indent=1, default=str) + "\n")
    atomic_write_text(dest / "MODEL_CARD.md", model_card(result))
    return result


def model_card(r: dict) -> str:
    """A model card from :func:`export_run`'s JSON."""
    import yaml

    h = r["held_out"]
    mfu = f"{r['mfu_median']:.1%}" if r.get("mfu_median") is not None else "not measured"
    return f"""# {r['model']}

{r['description']}

- Kind: {r['kind']}; {r['parameters'] / 1e6:.2f}M parameters; weights fp16 (safetensors).
- Trained on: {r['hardware']} (torch {r['torch']}), {r['training_minutes'] or 0:.1f} minutes, {r['steps']} steps,
  {r['sequences']:,} sequences/windows; median {r['tokens_per_s_median'] or 0:,.0f} tokens/s, model FLOPs
  utilisation {mfu} of the measured matrix-product peak.
- Held-out masked-token figures ({h['fp32']['val_tokens']:,} masked positions of the validation split):
  fp32 loss {h['fp32']['val_loss']:.4f}, accuracy {h['fp32']['val_acc']:.4f}, perplexity {h['fp32']['val_ppl']:.3f};
  fp16 export loss {h['exported']['val_loss']:.4f} (|difference| {h['abs_diff_loss']:.2e}).
- Validation split: {r['data'].get('valid_region') or 'held-out Rfam families, whole clans'}.

## Training config

```yaml
{yaml.safe_dump(r['config'], sort_keys=False).rstrip()}
```
"""
