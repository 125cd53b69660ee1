"""Unsupervised clusters of genome windows (the GPN paper's UMAP + Leiden figure) and how well
they, and a linear probe, recover annotated region classes.

One procedure for every representation (the model's embeddings and the k-mer baselines), so
they are compared fairly: standardise each feature (zero mean, unit variance), PCA to at most
``n_pcs`` components, UMAP (umap-learn; its weighted ``n_neighbors``-nearest-neighbour graph) for the
picture and Leiden (leidenalg) on that same graph for the clusters. Agreement with
the classes: adjusted Rand index and normalised mutual information (scikit-learn). Linear probe:
standardised features -> multinomial logistic regression (balanced class weights), stratified
``folds``-fold cross-validation, balanced accuracy and macro-F1 (mean and standard deviation
over folds); classes with fewer windows than folds are left out of the probe (counted).

umap-learn, leidenalg, igraph and scikit-learn are imported inside the functions that use them,
so ``import nucfm`` stays light.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nucfm.errors import InputError

log = logging.getLogger("nucfm")

FOLDS = 5
# UMAP and Leiden need a neighbourhood graph (15 neighbours by default) and the probe needs
# several windows per fold: below this the numbers mean nothing.
MIN_WINDOWS = 30
CLASS_COLOURS = {"CDS": "#d62728", "5_prime_UTR": "#ff7f0e", "3_prime_UTR": "#bcbd22", "ncRNA": "#9467bd",
                 "intron": "#1f77b4", "repeat": "#7f7f7f", "intergenic": "#2ca02c"}


def kmer_profiles(seqs: Sequence[str], k: int, canonical: bool = True) -> np.ndarray:
    """(N, K) float32 k-mer frequencies of each sequence (each row sums to 1, or is all zero
    when no k-mer is made only of A/C/G/T; case ignored). ``canonical``: a k-mer and its
    reverse complement count as one (strand-symmetric, like the model's two-strand average);
    K = 4**k, or the number of canonical k-mers.

    >>> p = kmer_profiles(["AACC", "GGTT"], 2)  # GGTT is the reverse complement of AACC
    >>> p.shape, bool((p[0] == p[1]).all()), [round(float(v), 2) for v in sorted(p[0])][-4:]
    ((2, 10), True, [0.0, 0.33, 0.33, 0.33])
    >>> kmer_profiles(["AACC"], 2, canonical=False).shape
    (1, 16)
    """
    if k < 1:
        raise InputError(f"k-mer size must be >= 1, got {k}")
    code = np.full(256, -1, dtype=np.int64)
    for i, b in enumerate("ACGT"):
        code[ord(b)] = code[ord(b.lower())] = i
    index = np.arange(4 ** k)
    digits = (index[:, None] // 4 ** np.arange(k - 1, -1, -1)) % 4  # (4^k, k) most significant first
    rc = ((3 - digits[:, ::-1]) * 4 ** np.arange(k - 1, -1, -1)).sum(1)
    if canonical:
        keep = np.minimum(index, rc)
        columns, column_of = np.unique(keep, return_inverse=True)
    else:
        columns, column_of = index, index
    out = np.zeros((len(seqs), len(columns)), dtype=np.float32)
    weights = 4 ** np.arange(k - 1, -1, -1)
    for row, s in enumerate(seqs):
        c = code[np.frombuffer(s.encode("ascii", errors="replace"), dtype=np.uint8)]
        if len(c) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(c, k)  # (L-k+1, k)
        valid = (windows >= 0).all(1)
        if not valid.any():
            continue
        counts = np.bincount(column_of[windows[valid] @ weights], minlength=len(columns))
        out[row] = counts / counts.sum()
    return out


def cluster_map(features: np.ndarray, n_neighbors: int = 15, resolution: float = 1.0, n_pcs: int = 50,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(umap (N, 2) float32, cluster (N,) int64) of ``features`` (N, D): standardise, PCA to
    ``min(n_pcs, D, N - 1)`` components when D is larger, UMAP (umap-learn, ``n_neighbors``) and
    Leiden (leidenalg, RB-configuration / modularity objective at ``resolution``) on UMAP's own
    weighted kNN graph, so map and clusters share one graph. Cluster 0 is the largest."""
    import igraph
    import leidenalg
    import umap
    from scipy import sparse
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
    n = len(x)
    if n < MIN_WINDOWS:
        raise InputError(f"{n} windows: UMAP, Leiden and {FOLDS}-fold cross-validation need at least {MIN_WINDOWS}")
    pcs = min(n_pcs, x.shape[1], n - 1)
    if x.shape[1] > pcs:
        x = PCA(n_components=pcs, random_state=seed).fit_transform(x)
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, n - 1), random_state=seed)
    with warnings.catch_warnings():  # "n_jobs overridden to 1 by setting random_state": wanted (reproducible)
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        xy = reducer.fit_transform(x.astype(np.float32))
    graph = sparse.triu(sparse.coo_matrix(reducer.graph_), k=1).tocoo()  # symmetric fuzzy kNN graph, once per edge
    g = igraph.Graph(n=n, edges=np.column_stack([graph.row, graph.col]).tolist(), directed=False)
    part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition, weights=graph.data.tolist(),
                                    resolution_parameter=resolution, n_iterations=2, seed=seed)
    labels = np.asarray(part.membership, dtype=np.int64)
    # renumber by size (largest first), ties by first appearance, so numbers read the same in every run
    sizes = np.bincount(labels)
    order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], int(np.argmax(labels == c))))
    renumber = np.empty(len(sizes), dtype=np.int64)
    renumber[order] = np.arange(len(sizes))
    return np.asarray(xy, dtype=np.float32), renumber[labels]


def agreement(clusters: np.ndarray, classes: np.ndarray) -> dict:
    """Adjusted Rand index and normalised mutual information (arithmetic mean) of two labellings.

    >>> agreement(np.array([0, 0, 1, 1]), np.array([5, 5, 7, 7]))
    {'ari': 1.0, 'nmi': 1.0}
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"ari": float(adjusted_rand_score(classes, clusters)),
            "nmi": float(normalized_mutual_info_score(classes, clusters))}


def linear_probe(features: np.ndarray, classes: np.ndarray, folds: int = FOLDS, seed: int = 0,
                 groups: np.ndarray | None = None) -> dict:
    """Cross-validated logistic regression of ``classes`` (N,) from ``features`` (N, D):
    standardised inside each fold, balanced class weights, stratified ``folds``-fold split
    (shuffled with ``seed``). Returns balanced accuracy and macro-F1 (mean, sd over folds),
    the chance level of balanced accuracy (1 / classes) and what was left out.

    With ``groups`` (N,) (e.g. genome blocks), the same numbers again with ``probe_blocked_``
    names from folds that keep each group whole (stratified group k-fold): neighbouring windows,
    whose contexts overlap, are then never split between training and test. NaN when there are
    fewer groups than folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = np.asarray(classes)
    values, counts = np.unique(classes, return_counts=True)
    rare = set(values[counts < folds].tolist())
    keep = ~np.isin(classes, list(rare))
    if rare:
        log.info("linear probe: %d window(s) of %d class(es) with fewer than %d windows left out",
                 int((~keep).sum()), len(rare), folds)
    if len(values) - len(rare) < 2:
        raise InputError(f"the linear probe needs at least 2 classes with >= {folds} windows each "
                         f"(found {dict(zip(values.tolist(), counts.tolist()))})")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    x, y = np.asarray(features, dtype=np.float64)[keep], classes[keep]
    out = {}
    splits = [("probe_", StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed), None)]
    if groups is not None:
        g = np.asarray(groups)[keep]
        if len(np.unique(g)) >= folds:
            splits.append(("probe_blocked_", StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed), g))
        else:
            log.info("linear probe: %d block(s), fewer than %d folds: no blocked cross-validation",
                     len(np.unique(g)), folds)
            out.update({f"probe_blocked_{k}": float("nan") for k in ("balanced_accuracy", "balanced_accuracy_sd",
                                                                     "macro_f1", "macro_f1_sd")})
    for prefix, cv, g in splits:
        with warnings.catch_warnings():  # a blocked test fold may lack a rare class: scored on those present
            warnings.filterwarnings("ignore", category=UserWarning)
            scores = cross_validate(model, x, y, cv=cv, groups=g, scoring=("balanced_accuracy", "f1_macro"))
        bacc, f1 = scores["test_balanced_accuracy"], scores["test_f1_macro"]
        out.update({f"{prefix}balanced_accuracy": float(bacc.mean()),
                    f"{prefix}balanced_accuracy_sd": float(bacc.std()),
                    f"{prefix}macro_f1": float(f1.mean()), f"{prefix}macro_f1_sd": float(f1.std())})
    return {**out, "probe_chance_balanced_accuracy": 1.0 / (len(values) - len(rare)),
            "probe_windows": int(keep.sum()), "probe_left_out_windows": int((~keep).sum()),
            "probe_left_out_classes": sorted(map(str, rare))}


def composition(clusters: np.ndarray, classes: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """Long table: cluster, class, n, fraction (of the cluster), one row per cluster and class
    (zeros included), clusters in order.

    >>> composition(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b"])["fraction"].tolist()
    [0.5, 0.5, 0.0, 1.0]
    """
    rows = []
    for c in np.unique(clusters):
        members = classes[clusters == c]
        for k, name in enumerate(class_names):
            n = int((members == k).sum())
            rows.append({"cluster": int(c), "class": name, "n": n, "fraction": n / len(members)})
    return pd.DataFrame(rows)


def plot_clusters(maps: dict[str, tuple[np.ndarray, np.ndarray]], classes: np.ndarray,
                  class_names: Sequence[str], stem: str | Path, title: str = "") -> list[Path]:
    """One row per representation: UMAP coloured by Leiden cluster (numbers at the cluster
    medians), UMAP coloured by region class, stacked bars of each cluster's class composition.
    Writes ``stem.png`` and ``stem.svg``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from nucfm.paths import atomic_path

    colours = [CLASS_COLOURS.get(n, f"C{k}") for k, n in enumerate(class_names)]
    rows = len(maps)
    fig, axes = plt.subplots(rows, 3, figsize=(15, 4.3 * rows + 0.8), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1.25]})
    size = max(1.0, min(8.0, 15000 / max(len(classes), 1)))
    order = np.random.default_rng(0).permutation(len(classes))  # no class painted last over all others
    cmap = plt.get_cmap("tab20")
    for r, (name, (xy, cl)) in enumerate(maps.items()):
        ax_c, ax_k, ax_b = axes[r]
        ax_c.scatter(xy[order, 0], xy[order, 1], c=[cmap(c % 20) for c in cl[order]], s=size, linewidths=0,
                     rasterized=True)
        for c in np.unique(cl):
            mx, my = np.median(xy[cl == c], axis=0)
            ax_c.text(mx, my, str(c), fontsize=7, ha="center", va="center", weight="bold",
                      bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
        ax_c.set_title(f"{name}: Leiden clusters ({len(np.unique(cl))})", fontsize=10)
        ax_k.scatter(xy[order, 0], xy[order, 1], c=[colours[k] for k in classes[order]], s=size, linewidths=0,
                     rasterized=True)
        ax_k.set_title(f"{name}: region class", fontsize=10)
        for ax in (ax_c, ax_k):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("UMAP 1", fontsize=8)
            ax.set_ylabel("UMAP 2", fontsize=8)
        comp = composition(cl, classes, class_names).pivot(index="cluster", columns="class", values="fraction")
        comp = comp[list(class_names)]
        sizes = np.bincount(cl)
        bottom = np.zeros(len(comp))
        for k, n in enumerate(class_names):
            ax_b.bar(np.arange(len(comp)), comp[n].to_numpy(), bottom=bottom, color=colours[k], width=0.85)
            bottom += comp[n].to_numpy()
        ax_b.set_xticks(np.arange(len(comp)), [f"{c}" for c in comp.index], fontsize=6 if len(comp) > 25 else 8)
        ax_b.set_xlim(-0.6, len(comp) - 0.4)
        ax_b.set_ylim(0, 1)
        ax_b.set_ylabel("fraction of windows", fontsize=8)
        ax_b.set_xlabel(f"cluster (largest first: n = {sizes.max():,} ... {sizes.min():,})", fontsize=8)
        ax_b.set_title(f"{name}: class composition per cluster", fontsize=10)
    counts = np.bincount(classes, minlength=len(class_names))
    handles = [Patch(color=colours[k], label=f"{n} ({counts[k]:,})") for k, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=len(class_names), fontsize=9, frameon=False,
               title="region class of the window centre (windows)", title_fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.7 / (4.3 * rows + 0.8), 1, 0.97 if title else 1))
    stem = Path(stem)
    paths = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100 if ext == "png" else None, format=ext)
        paths.append(path)
    plt.close(fig)
    return paths
