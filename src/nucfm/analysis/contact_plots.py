"""Figures for contact (3D closeness) maps: predicted probabilities beside the known contacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_contacts(probs: np.ndarray, path: str | Path, known=None, top: list | None = None,
                  title: str = "") -> Path:
    """Write a PNG of a (L, L) contact map: predicted probabilities in the upper triangle, the
    known contacts (0-based ``(i, j)``, when given) in the lower; ``top`` pairs (i, j, p) ringed
    (long-range ones, |i - j| >= 24, in red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = probs.shape[0]
    img = np.triu(np.asarray(probs, dtype=np.float32), 1)
    for i, j in known or ():
        img[j, i] = 1.0
    fig, ax = plt.subplots(figsize=(6, 6))
    im = ax.imshow(img, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    if top:
        t = np.array([(i, j) for i, j, _ in top]).reshape(-1, 2)
        far = (t[:, 1] - t[:, 0]) >= 24
        ax.scatter(t[~far, 1], t[~far, 0], s=12, facecolors="none", edgecolors="tab:blue", linewidths=0.6,
                   label=f"top {len(t)} pairs: |i - j| < 24")
        ax.scatter(t[far, 1], t[far, 0], s=12, facecolors="none", edgecolors="tab:red", linewidths=0.6,
                   label=f"top {len(t)} pairs: long range, |i - j| >= 24")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=7, frameon=False)
    halves = "upper: predicted   lower: known contacts" if known is not None else "upper: predicted"
    ax.set_title((title + "\n" if title else "") + halves, fontsize=9)
    ax.set_xlabel("residue j (0-based)")
    ax.set_ylabel("residue i (0-based)")
    ax.set_xlim(-0.5, L - 0.5)
    ax.set_ylim(L - 0.5, -0.5)
    fig.colorbar(im, ax=ax, fraction=0.046, label="contact probability (known: 1)" if known is not None
                 else "contact probability")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def write_contact_plots(plot_dir: str, items, max_length: int = 3000) -> int:
    """A PNG per ``(seq, probs, key, title, known)`` into ``plot_dir`` (written as a whole,
    atomically); records over ``max_length`` nt are skipped. Returns the number skipped."""
    from nucfm.paths import atomic_path, check_output_dir

    check_output_dir(plot_dir, (".png",), "plot")
    skipped = 0
    with atomic_path(plot_dir, directory=True) as tmp:
        for seq, p, key, title, known in items:
            if len(seq) > max_length or len(seq) < 2:
                skipped += 1
                continue
            dense = p.toarray() + p.toarray().T if hasattr(p, "tocoo") else p
            iu, ju = np.triu_indices(len(seq), 6)
            order = np.argsort(-dense[iu, ju], kind="stable")[: len(seq)]
            top = [(int(iu[t]), int(ju[t]), float(dense[iu[t], ju[t]])) for t in order]
            plot_contacts(dense, Path(tmp) / f"{key}.png", known, top, title)
    return skipped
