"""Figures for RNA secondary structure: pair-probability map and 2D structure diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

BASE_COLOURS = {"A": "#e6550d", "C": "#3182bd", "G": "#31a354", "U": "#756bb1"}


def layout_coordinates(pairs: list[tuple[int, int]], length: int) -> np.ndarray:
    """(L, 2) residue coordinates of the nested part of the structure (ViennaRNA's naview
    layout; a circle when ViennaRNA is missing). Pseudoknotted pairs are drawn over it."""
    from nucfm.io.structure import remove_pseudoknots, to_dot_bracket

    nested = remove_pseudoknots(pairs)
    try:
        import RNA

        coords = RNA.naview_xy_coordinates(to_dot_bracket(nested, length))
        xy = np.array([[c.X, c.Y] for c in coords[:length]], dtype=float)
        if np.isfinite(xy).all() and len(xy) == length:
            return xy
    except Exception:  # layout is cosmetic: fall back to a circle on any ViennaRNA failure
        pass
    t = np.linspace(0, 2 * np.pi, length, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1) * length / (2 * np.pi)


def plot_structure(seq: str, pairs: list[tuple[int, int]], probs: np.ndarray | None, path: str | Path,
                   title: str = "") -> Path:
    """Write a PNG: left, pair probabilities (upper triangle) over the decoded pairs (lower
    triangle); right, the 2D diagram (backbone, pairs, pseudoknot pairs dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nucfm.io.structure import pseudoknot_pages

    L = len(seq)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    ax = axes[0]
    if probs is not None and L:
        shown = np.triu(probs, 1)
        for i, j in pairs:
            shown[j, i] = 1.0
        im = ax.imshow(shown, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, label="pair probability")
    ax.set_title("pair probability (upper) / predicted pairs (lower)")
    ax.set_xlabel("residue j")
    ax.set_ylabel("residue i")

    ax = axes[1]
    if L:
        xy = layout_coordinates(pairs, L)
        ax.plot(xy[:, 0], xy[:, 1], "-", color="#999999", lw=1, zorder=1)
        for (i, j), page in zip(pairs, pseudoknot_pages(pairs)):
            ax.plot([xy[i, 0], xy[j, 0]], [xy[i, 1], xy[j, 1]], "--" if page else "-",
                    color="#d62728" if page else "#333333", lw=1.2, zorder=2)
        colours = [BASE_COLOURS.get(c, "#bbbbbb") for c in seq.upper().replace("T", "U")]
        size = max(8, min(60, 4000 / max(L, 1)))
        ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=size, zorder=3, edgecolors="none")
        if L <= 120:
            for k, c in enumerate(seq):
                ax.annotate(c, xy[k], fontsize=6, ha="center", va="center", color="white", zorder=4)
        ax.annotate("5'", xy[0], xytext=(-10, -10), textcoords="offset points", fontsize=9)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{len(pairs)} pairs ({sum(1 for p in pseudoknot_pages(pairs) if p)} pseudoknotted)")
    fig.suptitle(f"{title} ({L} nt)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
