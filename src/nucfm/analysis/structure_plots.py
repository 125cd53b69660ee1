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
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the equal-aspect diagram defeats tight_layout alone
    plt.close(fig)
    return path


def plot_arc_panels(panels: list[dict], path: str | Path, title: str = "") -> Path:
    """Arc diagrams of several structures, one row each: a panel is ``{"label", "length",
    "start" (1-based number of the first residue, for the axis), "pairs" (0-based in the
    panel), "compare" (optional pairs drawn below the axis, grey)}``. Arcs above the axis are
    ``pairs``; pairs shared with ``compare`` are drawn in colour, the others in black."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Arc

    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.3 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        L, start = panel["length"], panel.get("start", 1)
        other = {tuple(p) for p in panel.get("compare") or ()}
        for i, j in panel["pairs"]:
            colour = "tab:red" if (i, j) in other else "black"
            ax.add_patch(Arc(((i + j) / 2 + start, 0), j - i, j - i, theta1=0, theta2=180, lw=0.7, color=colour))
        for i, j in other:
            ax.add_patch(Arc(((i + j) / 2 + start, 0), j - i, j - i, theta1=180, theta2=360, lw=0.7, color="0.5"))
        span = max([j - i for i, j in list(panel["pairs"]) + list(other)] or [10])
        ax.set_xlim(start - 1, start + L)
        ax.set_ylim(-span / 2 - 2 if other else -2, span / 2 + 2)
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set_yticks([])
        ax.set_title(panel["label"], fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("genome position (nt, 1-based)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return Path(path)
