"""Two distance matrices over the same records, their neighbour-joining trees and how well they
agree (``nucfm compare``): Mantel correlation of the matrices, Robinson-Foulds distance of the
trees, and one figure (a tanglegram of the two trees, both heatmaps in one record order, and the
pairwise distances against each other).

The numbers come from scikit-bio (``skbio.tree.nj``, ``skbio.stats.distance.mantel``,
``TreeNode.compare_rfd``); the figure is drawn with Matplotlib. Both libraries are imported inside
the functions that use them, so importing this module is light.
"""

from __future__ import annotations

import math

import numpy as np

# Internal branches shorter than this fraction of the largest distance are collapsed into
# polytomies before trees are compared: neighbour joining resolves tied (e.g. zero) distances
# arbitrarily, and such splits carry no information.
COLLAPSE_FRACTION = 1e-9


def pairwise_distances(vectors: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """(N, N) distances between the rows of ``vectors`` (N, D): ``cosine`` (1 - cosine
    similarity) or ``euclidean``; symmetric, zero diagonal, never negative.

    >>> pairwise_distances(np.array([[1.0, 0], [0, 2.0], [3.0, 0]])).round(3).tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    from scipy.spatial.distance import pdist, squareform

    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be cosine or euclidean, not {metric!r}")
    d = squareform(pdist(np.asarray(vectors, dtype=np.float64), metric=metric))
    d = np.clip((d + d.T) / 2, 0.0, None)
    np.fill_diagonal(d, 0.0)
    return d


def is_constant(d: np.ndarray) -> bool:
    """All off-diagonal distances equal (then correlations and tree shapes are undefined)."""
    off = d[np.triu_indices(len(d), 1)]
    return bool(len(off) == 0 or np.ptp(off) <= 1e-12 * max(1.0, float(np.abs(off).max())))


def nj_tree(d: np.ndarray, names: list[str]):
    """Neighbour-joining tree (``skbio.tree.nj``, negative branch lengths set to 0) of the
    distance matrix ``d`` with tips ``names``; internal branches shorter than
    ``COLLAPSE_FRACTION`` of the largest distance are collapsed into polytomies (a star when all
    distances are equal). Unrooted: the root is a node of degree >= 3."""
    from skbio import DistanceMatrix, TreeNode
    from skbio.tree import nj

    if is_constant(d):  # NJ would invent a resolution of ties
        return TreeNode(children=[TreeNode(name=n, length=float(d.max()) / 2) for n in names])
    tree = nj(DistanceMatrix(d, names), neg_as_zero=True)
    return collapse_short_branches(tree, COLLAPSE_FRACTION * float(d.max()))


def collapse_short_branches(tree, min_length: float):
    """Merge every internal node whose branch is <= ``min_length`` into its parent (in place;
    returns ``tree``)."""
    for node in list(tree.postorder(include_self=False)):
        if node.is_tip() or (node.length or 0.0) > min_length:
            continue
        parent = node.parent
        for child in list(node.children):
            child.length = (child.length or 0.0) + (node.length or 0.0)
            parent.append(child)
        parent.remove(node)
    return tree


def newick(tree) -> str:
    """The tree as one Newick line."""
    import io

    buf = io.StringIO()
    tree.write(buf, format="newick")
    return buf.getvalue().strip() + "\n"


def mantel_test(x: np.ndarray, y: np.ndarray, method: str = "pearson", permutations: int = 999,
                seed: int = 0, names: tuple[str, str] = ("embedding distances", "sequence distances")) -> dict:
    """Mantel correlation of two (N, N) distance matrices (``skbio.stats.distance.mantel``,
    two-sided permutation p-value, seeded). ``r`` and ``p`` are NaN with a ``note`` when a matrix
    is constant (no correlation is defined); ``p`` is NaN when ``permutations`` is 0."""
    out = {"method": method, "permutations": permutations, "seed": seed, "n": len(x)}
    for what, d in zip(names, (x, y)):
        if is_constant(d):
            return {**out, "r": math.nan, "p": math.nan,
                    "note": f"all {what} are equal: the Mantel correlation is undefined"}
    from skbio import DistanceMatrix
    from skbio.stats.distance import mantel

    ids = [str(i) for i in range(len(x))]
    r, p, n = mantel(DistanceMatrix(x, ids), DistanceMatrix(y, ids), method=method, permutations=permutations,
                     seed=seed)
    return {**out, "r": float(r), "p": float(p) if permutations else math.nan, "note": ""}


def robinson_foulds(a, b, da: np.ndarray | None = None, db: np.ndarray | None = None, permutations: int = 0,
                    seed: int = 0) -> dict:
    """Unrooted Robinson-Foulds distance of two trees over the same tips (``compare_rfd``): raw
    (splits in one tree but not the other) and normalised (raw / all non-trivial splits of both,
    0 = same topology, 1 = no split shared). With ``permutations``, a null: the tip names of
    ``b`` shuffled (seeded) that many times; ``rf_null_mean`` and ``rf_p`` = P(null RF <=
    observed), (1 + count) / (1 + permutations). NaN with a ``note`` when the matrix behind a tree
    (``da``, ``db``) is constant: a star tree has no split to compare."""
    splits_a, splits_b = count_splits(a), count_splits(b)
    out = {"splits_embedding": splits_a, "splits_sequence": splits_b, "rf_null_mean": math.nan, "rf_p": math.nan,
           "null_permutations": permutations}
    for what, d in (("embedding", da), ("sequence", db)):
        if d is not None and is_constant(d):
            return {**out, "rf": math.nan, "rf_normalised": math.nan,
                    "note": f"all {what} distances are equal: its tree is a star, the RF distance is undefined"}
    if splits_a + splits_b == 0:
        return {**out, "rf": 0.0, "rf_normalised": math.nan, "note": "neither tree has a non-trivial split"}
    rf = float(a.compare_rfd(b, rooted=False))
    out.update(rf=rf, rf_normalised=float(a.compare_rfd(b, proportion=True, rooted=False)), note="")
    if permutations:
        rng = np.random.default_rng(seed)
        shuffled = b.copy()
        tips = list(shuffled.tips())
        names = [t.name for t in tips]
        null = np.empty(permutations)
        for i in range(permutations):
            for t, name in zip(tips, rng.permutation(names)):
                t.name = str(name)
            shuffled.clear_caches()
            null[i] = a.compare_rfd(shuffled, rooted=False)
        out.update(rf_null_mean=float(null.mean()), rf_p=float((1 + (null <= rf).sum()) / (1 + permutations)))
    return out


def count_splits(tree) -> int:
    """Non-trivial bipartitions of an unrooted tree (each side >= 2 tips)."""
    n = tree.count(tips=True)
    return sum(1 for node in tree.non_tips() if node is not tree and 2 <= node.count(tips=True) <= n - 2)


# ---- the figure -----------------------------------------------------------------------------------
def _display_tree(tree):
    """A copy rooted at the midpoint (for drawing only; the comparison is unrooted)."""
    t = tree.copy()
    try:
        return t.root_at_midpoint(reset=True)
    except Exception:  # a star or zero-length tree has no midpoint: draw it as it is
        return t


def _layout(tree, order: dict[str, float] | None = None):
    """x (depth from the root) and y (leaf rank) of every node; children ordered by the mean rank
    of their tips in ``order`` (untangles a tanglegram) when given."""
    if order is not None:
        def key(node):
            return float(np.mean([order.get(t.name, 0.0) for t in node.tips(include_self=True)]))

        for node in tree.postorder():
            if node.children:
                node.children.sort(key=key)
    x, y, tips = {}, {}, []
    for node in tree.preorder():
        x[id(node)] = 0.0 if node.parent is None else x[id(node.parent)] + max(node.length or 0.0, 0.0)
    for node in tree.postorder():
        if node.is_tip():
            y[id(node)] = float(len(tips))
            tips.append(node.name)
        else:
            y[id(node)] = float(np.mean([y[id(c)] for c in node.children]))
    return x, y, tips


def _draw_tree(ax, tree, x, y, mirror: bool):
    for node in tree.preorder():
        if node.parent is None:
            continue
        px, cx, cy = x[id(node.parent)], x[id(node)], y[id(node)]
        ax.plot([px, cx], [cy, cy], color="k", lw=0.9)
    for node in tree.non_tips(include_self=True):
        ys = [y[id(c)] for c in node.children]
        ax.plot([x[id(node)]] * 2, [min(ys), max(ys)], color="k", lw=0.9)
    depth = max(x.values()) or 1.0
    ax.set_xlim((depth * 1.05, -depth * 0.02) if mirror else (-depth * 0.02, depth * 1.05))
    ax.set_ylim(-0.6, len([n for n in tree.tips()]) - 0.4)
    ax.invert_yaxis()
    for side in ("top", "left", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=7)


def plot_comparison(d_emb: np.ndarray, d_seq: np.ndarray, tree_emb, tree_seq, names: list[str], stats: dict,
                    png, svg=None, titles: tuple[str, str] = ("embedding distance", "sequence distance")) -> list[str]:
    """Tanglegram (embedding tree left, sequence tree right, same tips joined), the two distance
    heatmaps in the embedding tree's tip order, and a scatter of the pairwise distances. Writes
    ``png`` (and ``svg``) atomically; returns the record order used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nucfm.paths import atomic_path

    n = len(names)
    t_emb, t_seq = _display_tree(tree_emb), _display_tree(tree_seq)
    xe, ye, tips_e = _layout(t_emb)
    rank = {name: i for i, name in enumerate(tips_e)}
    xs, ys, tips_s = _layout(t_seq, order=rank)
    label_size = 7 if n <= 30 else 5 if n <= 60 else 0
    tall = 0.2 * min(n, 60)  # inches of tips / heatmap rows
    labels = 0.075 * max(map(len, names)) if label_size else 0.0  # inches of rotated heatmap labels
    fig = plt.figure(figsize=(13, 1.2 + tall + 1.6 + 0.6 * tall + labels), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.2 + tall, 1.6 + 0.6 * tall + labels])
    ax_l, ax_m, ax_r = top.subplots(1, 3, gridspec_kw={"width_ratios": [1, 0.35, 1]})
    _draw_tree(ax_l, t_emb, xe, ye, mirror=False)
    _draw_tree(ax_r, t_seq, xs, ys, mirror=True)
    for ax, tips, side in ((ax_l, tips_e, "right"), (ax_r, tips_s, "left")):
        ax.set_yticks(range(n), tips if label_size else [""] * n, fontsize=label_size or 1)
        ax.yaxis.set_ticks_position(side)
        ax.tick_params(axis="y", length=0)
    ax_l.set_title(f"NJ tree: {titles[0]}", fontsize=9)
    ax_r.set_title(f"NJ tree: {titles[1]}", fontsize=9)
    ax_l.set_xlabel("branch length", fontsize=7)
    ax_r.set_xlabel("branch length", fontsize=7)
    pos_s = {name: i for i, name in enumerate(tips_s)}
    for name in tips_e:
        moved = rank[name] != pos_s[name]
        ax_m.plot([0, 1], [rank[name], pos_s[name]], color="tab:red" if moved else "0.6", lw=0.8)
    ax_m.set_xlim(0, 1)
    ax_m.set_ylim(-0.6, n - 0.4)
    ax_m.invert_yaxis()
    ax_m.axis("off")
    mantel, rf, unc = stats["mantel"], stats["robinson_foulds"], stats.get("uncalled_mantel")
    confound = "" if unc is None or math.isnan(unc["r"]) else \
        f";  embedding vs |difference in N|: r = {_fmt(unc['r'])} (p = {_fmt(unc['p'])})"
    top.suptitle(f"Mantel r = {_fmt(mantel['r'])} ({mantel['method']}, p = {_fmt(mantel['p'])}, "
                 f"{mantel['permutations']} permutations);  Robinson-Foulds = {_fmt(rf['rf'], 0)} of "
                 f"{rf['splits_embedding'] + rf['splits_sequence']} splits (normalised {_fmt(rf['rf_normalised'])}; "
                 f"shuffled tips: mean {_fmt(rf['rf_null_mean'], 1)}, p = {_fmt(rf['rf_p'])})\n"
                 f"lines join each record's two positions; red: placed differently{confound}", fontsize=9)
    ax_he, ax_hs, ax_sc = bottom.subplots(1, 3)
    idx = [names.index(t) for t in tips_e]
    for ax, d, title in ((ax_he, d_emb, titles[0]), (ax_hs, d_seq, titles[1])):
        im = ax.imshow(d[np.ix_(idx, idx)], cmap="viridis", interpolation="nearest", aspect="auto")
        ax.set_title(f"{title}", fontsize=9)
        labels = tips_e if label_size else [""] * n
        ax.set_xticks(range(n), labels, rotation=90, fontsize=max(label_size - 1, 1))
        ax.set_yticks(range(n), labels, fontsize=max(label_size - 1, 1))
        bottom.colorbar(im, ax=ax).ax.tick_params(labelsize=7)
    iu = np.triu_indices(n, 1)
    ax_sc.scatter(d_seq[iu], d_emb[iu], s=12, alpha=0.7, color="tab:blue", edgecolors="none")
    ax_sc.set_xlabel(titles[1], fontsize=8)
    ax_sc.set_ylabel(titles[0], fontsize=8)
    ax_sc.set_title(f"{len(iu[0])} record pairs", fontsize=9)
    ax_sc.tick_params(labelsize=7)
    for path, fmt in ((png, "png"), (svg, "svg")):
        if path is not None:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=100, format=fmt)
    plt.close(fig)
    return tips_e


def _fmt(v: float, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    return f"{v:.{digits}f}" if digits else f"{v:g}"
