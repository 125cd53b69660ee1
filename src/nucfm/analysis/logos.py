"""Sequence logos (logomaker) of nucleotide distributions, heights in bits.

Information content of a distribution ``p`` over A, C, G, T: ``IC = 2 - H(p)`` bits with
``H(p) = -sum p log2 p`` (0 log 0 = 0): 2 bits for a certain base, 0 for a uniform one. A logo
stacks each base ``p_b * IC`` high (Schneider & Stephens 1990), without small-sample
correction. logomaker and matplotlib are imported inside the drawing functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

BASES = "ACGT"


def information_content(probs: np.ndarray) -> np.ndarray:
    """(N,) bits of each row of ``probs`` (N, 4), each row first normalised to sum 1.

    >>> information_content(np.array([[1, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0]])).tolist()
    [2.0, 0.0, 1.0]
    """
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    return np.clip(2.0 - h, 0.0, 2.0)


def logo_heights(probs: np.ndarray) -> np.ndarray:
    """(N, 4) letter heights in bits: ``p_b * IC``.

    >>> logo_heights(np.array([[0.5, 0.5, 0, 0]])).tolist()
    [[0.5, 0.5, 0.0, 0.0]]
    """
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    return p * information_content(p)[:, None]


def _save(fig, stem: str | Path) -> list[Path]:
    from nucfm.paths import atomic_path

    paths = []
    for ext in ("png", "svg"):
        path = Path(stem).with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110 if ext == "png" else None, format=ext)
        paths.append(path)
    return paths


def _draw(ax, x: Sequence[int], probs: np.ndarray):
    import logomaker
    import pandas as pd

    df = pd.DataFrame(logo_heights(probs), columns=list(BASES), index=list(x))
    logomaker.Logo(df, ax=ax, color_scheme="classic", show_spines=False)
    ax.set_ylim(0, 2)
    ax.set_yticks([0, 1, 2])
    ax.set_ylabel("bits", fontsize=8)


def plot_region_logo(positions: np.ndarray, probs: np.ndarray, ref: Sequence[str], stem: str | Path,
                     row_length: int = 100, title: str = "") -> list[Path]:
    """A logo of ``probs`` (N, 4) at ``positions`` (N,) in rows of ``row_length`` positions, each
    with the reference letters written under it and every tenth position numbered above.
    Writes ``stem.png`` and ``stem.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.asarray(positions)
    rows = max(1, -(-len(positions) // row_length))
    width = max(6.0, min(row_length, len(positions)) * 0.16 + 1.2)
    fig, axes = plt.subplots(rows, 1, figsize=(width, 1.9 * rows + 0.5), squeeze=False)
    for r in range(rows):
        ax = axes[r, 0]
        sl = slice(r * row_length, (r + 1) * row_length)
        x = positions[sl]
        _draw(ax, x, probs[sl])
        ax.set_xlim(x[0] - 0.5, x[0] + row_length - 0.5)
        ax.set_xticks(x, [str(c) for c in ref[sl]], fontsize=7, family="monospace")
        ax.tick_params(axis="x", length=0, pad=2)
        top = ax.secondary_xaxis("top")
        ticks = [p for p in x if p % 10 == 0]
        top.set_xticks(ticks, [f"{p:,}" for p in ticks], fontsize=7)
    axes[-1, 0].set_xlabel("reference base (position numbers above, 1-based)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    paths = _save(fig, stem)
    plt.close(fig)
    return paths


def plot_meta_logo(offsets: np.ndarray, model_probs: np.ndarray, observed: np.ndarray, core: Sequence[int],
                   stem: str | Path, title: str = "", labels: tuple[str, str] = ("model", "observed")) -> list[Path]:
    """Two logos stacked on one offset axis: the model's mean predicted distribution and the
    observed base frequencies (each (N, 4) over ``offsets``), the ``core`` offsets shaded.
    Writes ``stem.png`` and ``stem.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offsets = np.asarray(offsets)
    fig, axes = plt.subplots(2, 1, figsize=(max(6.0, len(offsets) * 0.28 + 1.5), 4.6), sharex=True)
    for ax, probs, label in zip(axes, (model_probs, observed), labels):
        for o in core:
            ax.axvspan(o - 0.5, o + 0.5, color="#ffe9a8", zorder=0)
        _draw(ax, offsets, probs)
        ic = information_content(probs)
        core_ic = sum(ic[list(offsets).index(o)] for o in core)
        ax.set_title(f"{label}: core {core_ic:.2f} bits", fontsize=9, loc="left")
    step = 1 if len(offsets) <= 30 else 5
    axes[-1].set_xticks([o for o in offsets if o % step == 0])
    axes[-1].tick_params(axis="x", labelsize=7)
    axes[-1].set_xlabel("offset from the motif's first base (5'->3' on the transcript; core shaded)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    paths = _save(fig, stem)
    plt.close(fig)
    return paths
