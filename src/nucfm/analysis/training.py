"""Training curves from a run's ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def plot_loss_curve(metrics_jsonl: str | Path, png: str | Path) -> None:
    """Training loss (per logged step) and validation loss/accuracy (per evaluation) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics_jsonl).read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"], r["val_acc"]) for r in rows if "val_loss" in r]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    if train:
        ax.plot(*zip(*train), label="train (masked CE)", lw=1)
    if val:
        ax.plot([v[0] for v in val], [v[1] for v in val], "o-", label="validation", ms=3)
        ax2.plot([v[0] for v in val], [v[2] for v in val], "o-", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    ax.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation masked-token accuracy")
    fig.tight_layout()
    from nucfm.paths import atomic_path

    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
