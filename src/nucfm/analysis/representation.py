"""How well a set of sequence vectors separates known labels: the numbers behind ``nucfm atlas``.

One definition, reused wherever nucfm judges a representation (language-model embeddings against
k-mer composition, a random-init model, another model):

* :func:`knn_accuracy` — k-nearest-neighbour label accuracy and macro-F1, k = 5, cosine distance,
  stratified 5-fold cross-validation (shuffled, seed 0): each record is predicted once, from the
  records outside its fold; accuracy and macro-F1 are computed over those out-of-fold predictions.
* :func:`silhouette` — the mean silhouette width of the labels, cosine distance, on the vectors
  themselves (never on a 2-D map).
* :func:`cluster_ari` — the adjusted Rand index between the labels and an unsupervised clustering:
  k-means with k = number of labels on the L2-normalised vectors (spherical k-means, so it agrees
  with the cosine geometry of the other two), or Leiden on the cosine kNN graph (scanpy).
* :func:`kmer_composition` — the baseline representation: normalised k-mer counts.

Every function takes ``X`` as an (N, D) float array (one row per record) and ``y`` as N labels
(any hashable values). scikit-learn (and scanpy for Leiden) are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nucfm.errors import InputError

# k-mer letters: RNA order; T is read as U, any other letter breaks the k-mers that hold it
_CODE = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate("ACGU"):
    _CODE[ord(_c)] = _CODE[ord(_c.lower())] = _i
_CODE[ord("T")] = _CODE[ord("t")] = 3


def kmer_composition(seqs: Sequence[str], k: int = 3) -> np.ndarray:
    """Normalised k-mer counts: an (N, 4**k) float32 array whose row i sums to 1 over the
    overlapping k-mers of ``seqs[i]`` (columns in lexicographic ACGU order, T counted as U;
    k-mers holding any other letter are skipped). A sequence with no complete k-mer gives a row of
    zeros. ``k = 1`` is the mean of the one-hot encoding (nucleotide composition).

    >>> kmer_composition(["ACGU", "AANA"], k=1)
    array([[0.25, 0.25, 0.25, 0.25],
           [1.  , 0.  , 0.  , 0.  ]], dtype=float32)
    >>> (kmer_composition(["AAAC"], k=2)[0, [0, 1]] * 3).round(4).tolist()  # AA twice, AC once
    [2.0, 1.0]
    """
    if k < 1:
        raise InputError(f"k-mer size must be >= 1, got {k}")
    out = np.zeros((len(seqs), 4**k), dtype=np.float64)
    weights = 4 ** np.arange(k - 1, -1, -1)
    for i, s in enumerate(seqs):
        codes = _CODE[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)]
        if len(codes) < k:
            continue
        win = np.lib.stride_tricks.sliding_window_view(codes, k)  # (L-k+1, k)
        win = win[(win >= 0).all(1)]
        if len(win):
            out[i] = np.bincount(win @ weights, minlength=4**k) / len(win)
    return out.astype(np.float32)


def _labels(y) -> np.ndarray:
    y = np.asarray([str(v) for v in y])
    return y


def check_classes(y, folds: int = 5, k: int = 5) -> None:
    """The labels support the metrics: at least two classes, every class with at least ``folds``
    records (stratified folds), and enough records for k neighbours outside each fold; else a
    one-line :class:`InputError` saying what is missing."""
    y = _labels(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise InputError(f"only one class ({str(classes[0]) if len(classes) else 'none'!r}, {len(y)} records): "
                         "the metrics need at least two labels")
    small = [f"{c} ({n})" for c, n in zip(classes, counts) if n < folds]
    if small:
        raise InputError(f"classes with fewer than {folds} records (the {folds} stratified folds need one each): "
                         f"{', '.join(small[:5])}{' ...' if len(small) > 5 else ''}")
    if len(y) - int(np.ceil(len(y) / folds)) < k:
        raise InputError(f"too few records ({len(y)}) for {k} neighbours outside each of {folds} folds")


def knn_accuracy(X: np.ndarray, y, k: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """k-nearest-neighbour label accuracy under stratified cross-validation.

    ``StratifiedKFold(folds, shuffle=True, random_state=seed)`` splits the records; each fold is
    predicted by a ``KNeighborsClassifier(k, metric="cosine")`` (uniform vote; a tie goes to the
    label first in sorted order) fitted on the other folds. Returns ``accuracy`` and ``macro_f1``
    over all out-of-fold predictions, ``accuracy_sd`` (the standard deviation of the per-fold
    accuracies), ``n`` and ``classes``. Chance level is about the largest class fraction.

    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal([5, 0], 1, (20, 2)), rng.normal([0, 5], 1, (20, 2))]
    >>> knn_accuracy(X, ["a"] * 20 + ["b"] * 20)["accuracy"]
    1.0
    """
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    X, y = np.asarray(X, dtype=np.float64), _labels(y)
    check_classes(y, folds, k)
    pred = np.empty_like(y)
    per_fold = []
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y):
        clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(X[train], y[train])
        pred[test] = clf.predict(X[test])
        per_fold.append(float(np.mean(pred[test] == y[test])))
    return {"accuracy": float(accuracy_score(y, pred)), "macro_f1": float(f1_score(y, pred, average="macro")),
            "accuracy_sd": float(np.std(per_fold)), "n": int(len(y)), "classes": int(len(np.unique(y)))}


def silhouette(X: np.ndarray, y, max_n: int = 10_000, seed: int = 0) -> float:
    """Mean silhouette width of the labels ``y`` under cosine distance, in [-1, 1] (higher:
    records sit closer to their own label than to the nearest other label; near 0: overlapping
    labels). Above ``max_n`` records a seeded random sample of ``max_n`` is used (memory is N²).

    >>> silhouette(np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]]), ["a", "a", "b", "b"]) > 0.9
    True
    """
    from sklearn.metrics import silhouette_score

    y = _labels(y)
    if len(np.unique(y)) < 2:
        raise InputError("the silhouette needs at least two labels")
    sample = max_n if len(y) > max_n else None
    return float(silhouette_score(np.asarray(X, dtype=np.float64), y, metric="cosine", sample_size=sample,
                                  random_state=seed))


def cluster_ari(X: np.ndarray, y, method: str = "kmeans", seed: int = 0, n_neighbors: int = 15,
                resolution: float = 1.0) -> dict:
    """Adjusted Rand index of an unsupervised clustering of ``X`` against the labels ``y``
    (1 = the clusters are the labels, about 0 = no better than chance).

    ``method="kmeans"``: k-means with k = number of labels (``n_init=10``, ``random_state=seed``)
    on the rows scaled to unit length. ``method="leiden"``: scanpy's Leiden (igraph flavour,
    ``resolution``, seed) on the cosine kNN graph of ``n_neighbors`` neighbours (scanpy's
    ``pp.neighbors`` on the raw vectors); the number of clusters is what Leiden finds. Returns
    ``ari`` and ``clusters``.
    """
    from sklearn.metrics import adjusted_rand_score

    X, y = np.asarray(X, dtype=np.float64), _labels(y)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        norm = np.linalg.norm(X, axis=1, keepdims=True)
        Xn = X / np.where(norm > 0, norm, 1.0)
        pred = KMeans(n_clusters=len(np.unique(y)), n_init=10, random_state=seed).fit_predict(Xn)
    elif method == "leiden":
        adata = neighbor_graph(X, n_neighbors=n_neighbors, seed=seed)
        import scanpy as sc

        sc.tl.leiden(adata, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2,
                     directed=False)
        pred = adata.obs["leiden"].to_numpy()
    else:
        raise ValueError(f"method must be 'kmeans' or 'leiden', got {method!r}")
    return {"ari": float(adjusted_rand_score(y, pred)), "clusters": int(len(np.unique(pred)))}


def neighbor_graph(X: np.ndarray, n_neighbors: int = 15, seed: int = 0):
    """An AnnData holding ``X`` and scanpy's cosine kNN graph over it (exact neighbours,
    ``n_neighbors`` capped at N - 1; UMAP-style connectivities): the common start of Leiden
    clustering and diffusion pseudotime."""
    import warnings

    import anndata
    import scanpy as sc

    X = np.asarray(X, dtype=np.float32)
    adata = anndata.AnnData(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scanpy's notices about future defaults
        # exact neighbours (scikit-learn, brute force) at every size: scanpy's default switches to
        # pynndescent from 4,096 records, whose sparse result scanpy 1.11 fails to read with scipy >= 1.15
        sc.pp.neighbors(adata, n_neighbors=min(n_neighbors, len(X) - 1), use_rep="X", metric="cosine",
                        random_state=seed, transformer="sklearn")
    return adata


def representation_metrics(X: np.ndarray, y, k: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """All the numbers of one representation against one labelling: kNN accuracy and macro-F1
    (:func:`knn_accuracy`), silhouette (:func:`silhouette`) and the ARI of k-means and of Leiden
    (:func:`cluster_ari`)."""
    knn = knn_accuracy(X, y, k=k, folds=folds, seed=seed)
    km = cluster_ari(X, y, "kmeans", seed=seed)
    ld = cluster_ari(X, y, "leiden", seed=seed)
    return {"n": knn["n"], "classes": knn["classes"], "knn_accuracy": knn["accuracy"],
            "knn_accuracy_sd": knn["accuracy_sd"], "knn_macro_f1": knn["macro_f1"],
            "silhouette": silhouette(X, y, seed=seed), "ari_kmeans": km["ari"], "ari_leiden": ld["ari"],
            "leiden_clusters": ld["clusters"]}
