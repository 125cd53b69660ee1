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


def _draw(ax, x: Sequence[int], probs: np.ndarray, top: float = 2.0):
    import logomaker
    import pandas as pd

    df = pd.DataFrame(logo_heights(probs), columns=list(BASES), index=list(x))
    logomaker.Logo(df, ax=ax, color_scheme="classic", show_spines=False)
    ax.set_ylim(0, top)
    ax.set_yticks([0, top / 2, top] if top < 2 else [0, 1, 2])
    ax.set_ylabel("bits", fontsize=8)


def zoom_top(probs: np.ndarray) -> float:
    """The y-axis top for a logo: 2 bits, or a zoom (a multiple of 0.05, at least 0.1) when its
    tallest stack is under 0.5 bits, so a weak signal stays visible (the title says the scale).

    >>> zoom_top(np.array([[0.3, 0.3, 0.2, 0.2]])), zoom_top(np.array([[1.0, 0, 0, 0]]))
    (0.1, 2.0)
    """
    peak = float(information_content(probs).max())
    if peak >= 0.5:
        return 2.0
    return max(0.1, float(np.ceil(peak * 1.15 / 0.05) * 0.05))


def plot_region_logo(positions: np.ndarray, probs: np.ndarray, ref: Sequence[str], stem: str | Path,
                     row_length: int = 100, title: str = "") -> list[Path]:
    """A logo of ``probs`` (N, 4) at ``positions`` (N,) in rows of ``row_length`` positions, each
    with the reference letters written under it and every tenth position numbered above; all
    rows share one y scale, zoomed when the tallest stack is under 0.5 bits (:func:`zoom_top`).
    Writes ``stem.png`` and ``stem.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.asarray(positions)
    top = zoom_top(probs)  # one scale for every row
    rows = max(1, -(-len(positions) // row_length))
    width = max(6.0, min(row_length, len(positions)) * 0.16 + 1.2)
    fig, axes = plt.subplots(rows, 1, figsize=(width, 1.9 * rows + 0.5), squeeze=False)
    for r in range(rows):
        ax = axes[r, 0]
        sl = slice(r * row_length, (r + 1) * row_length)
        x = positions[sl]
        _draw(ax, x, probs[sl], top)
        ax.set_xlim(x[0] - 0.5, x[0] + row_length - 0.5)
        ax.set_xticks(x, [str(c) for c in ref[sl]], fontsize=7, family="monospace")
        ax.tick_params(axis="x", length=0, pad=2)
        numbers = ax.secondary_xaxis("top")
        ticks = [p for p in x if p % 10 == 0]
        numbers.set_xticks(ticks, [f"{p:,}" for p in ticks], fontsize=7)
    axes[-1, 0].set_xlabel("reference base (position numbers above, 1-based)", fontsize=8)
    if title or top < 2:
        fig.suptitle(title + ("" if top == 2 else f" (y axis zoomed to 0-{top:.2f} bits)"), fontsize=9)
    fig.tight_layout()
    paths = _save(fig, stem)
    plt.close(fig)
    return paths


def _meta_pair(axes, offsets: np.ndarray, model_probs: np.ndarray, observed: np.ndarray, core: Sequence[int],
               labels: tuple[str, str]) -> None:
    """Model logo (zoomed when weak) over the observed logo, core offsets shaded."""
    for ax, probs, label in zip(axes, (model_probs, observed), labels):
        for o in core:
            ax.axvspan(o - 0.5, o + 0.5, color="#ffe9a8", zorder=0)
        top = zoom_top(probs)
        _draw(ax, offsets, probs, top)
        ic = information_content(probs)
        core_ic = sum(ic[list(offsets).index(o)] for o in core)
        scale = "" if top == 2 else f"; y axis zoomed to 0-{top:.2f} bits"
        ax.set_title(f"{label}: core {core_ic:.2f} bits{scale}", fontsize=8, loc="left")
    step = 1 if len(offsets) <= 30 else 5
    axes[-1].set_xticks([o for o in offsets if o % step == 0])
    axes[-1].tick_params(axis="x", labelsize=7)
    axes[-1].set_xlabel("offset from the motif's first base (5'->3' on the transcript; core shaded)", fontsize=8)


def plot_meta_logo(offsets: np.ndarray, model_probs: np.ndarray, observed: np.ndarray, core: Sequence[int],
                   stem: str | Path, title: str = "", labels: tuple[str, str] = ("model", "observed")) -> list[Path]:
    """Two logos stacked on one offset axis: the model's mean predicted distribution and the
    observed base frequencies (each (N, 4) over ``offsets``), the ``core`` offsets shaded; a
    logo whose tallest stack is under 0.5 bits is drawn zoomed (:func:`zoom_top`, said in its
    title). Writes ``stem.png`` and ``stem.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offsets = np.asarray(offsets)
    fig, axes = plt.subplots(2, 1, figsize=(max(6.0, len(offsets) * 0.28 + 1.5), 4.6), sharex=True)
    _meta_pair(axes, offsets, model_probs, observed, core, labels)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    paths = _save(fig, stem)
    plt.close(fig)
    return paths


def plot_meta_logo_grid(panels: list[dict], stem: str | Path, title: str = "",
                        labels: tuple[str, str] = ("model", "observed")) -> list[Path]:
    """Several meta-logos side by side, two columns per row: each panel a dict with ``name``,
    ``offsets``, ``model``, ``observed``, ``core`` (as :func:`plot_meta_logo`). Writes
    ``stem.png`` and ``stem.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    width = max(len(p["offsets"]) for p in panels) * 0.24 + 1.5
    fig = plt.figure(figsize=(width * cols, 4.4 * rows))
    grid = fig.add_gridspec(rows, cols)
    for k, panel in enumerate(panels):
        sub = grid[k // cols, k % cols].subgridspec(3, 1, height_ratios=[0.12, 1, 1], hspace=0.45)
        head = fig.add_subplot(sub[0])
        head.axis("off")
        head.text(0.5, 0.0, panel["name"], ha="center", va="bottom", fontsize=10, weight="bold")
        top = fig.add_subplot(sub[1])
        bottom = fig.add_subplot(sub[2], sharex=top)
        _meta_pair([top, bottom], np.asarray(panel["offsets"]), panel["model"], panel["observed"], panel["core"],
                   labels)
        top.tick_params(axis="x", labelbottom=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    paths = _save(fig, stem)
    plt.close(fig)
    return paths
