"""The RNA atlas (RNA-FM Fig. 2a/2b): 2-D maps of sequence vectors coloured by label, coarser
views of the labels, and diffusion pseudotime (Fig. 2c's evolutionary trend).

* :func:`umap_2d` — the 2-D map (UMAP, cosine, seeded).
* :func:`housekeeping_group`, :func:`length_group`, :func:`read_group_file` — the groupings.
* :func:`diffusion_pseudotime` — scanpy's diffusion pseudotime from a root chosen in a root label.
* :func:`plot_atlas` — one panel per representation and grouping, a legend per row.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from nucfm.errors import InputError

log = logging.getLogger("nucfm")

# Housekeeping (constitutive, infrastructural) vs regulatory ncRNA types, as in RNA-FM Fig. 2b
# (after the usual textbook split, e.g. Zhang et al. 2019, Int J Mol Sci 20:5573). Matched
# case-insensitively against each ';'- or whitespace-separated token of a label, so RNAcentral
# types (`snoRNA`) and Rfam types (`Gene;snRNA;snoRNA;CD-box`, `Cis-reg;riboswitch`) both map.
HOUSEKEEPING_TYPES = ("rRNA", "tRNA", "snRNA", "snoRNA", "scaRNA", "RNase_P_RNA", "RNase_MRP_RNA", "SRP_RNA",
                      "scRNA", "tmRNA", "telomerase_RNA", "Y_RNA", "vault_RNA")
REGULATORY_TYPES = ("miRNA", "pre_miRNA", "siRNA", "piRNA", "lncRNA", "antisense_RNA", "antisense", "sRNA",
                    "Cis-reg", "riboswitch", "IRES", "leader", "thermoregulator", "frameshift_element")
# Left unmapped on purpose (neither class, or a catch-all): ncRNA, misc_RNA, other, precursor_RNA,
# ribozyme, hammerhead_ribozyme, autocatalytically_spliced_intron, guide_RNA, Gene, Gene;CRISPR,
# Gene;antitoxin, Gene;ribozyme, Intron.
UNMAPPED = "unmapped"


def housekeeping_group(label: str) -> str:
    """``housekeeping``, ``regulatory`` or ``unmapped`` for an RNA type label (see
    :data:`HOUSEKEEPING_TYPES` and :data:`REGULATORY_TYPES`; a label holding tokens of both kinds
    is unmapped).

    >>> [housekeeping_group(t) for t in ("tRNA", "Gene;snRNA;snoRNA;CD-box", "Cis-reg;IRES", "lncRNA", "ncRNA")]
    ['housekeeping', 'housekeeping', 'regulatory', 'regulatory', 'unmapped']
    """
    tokens = {t.lower() for t in re.split(r"[;\s]+", label) if t}
    hk = tokens & {t.lower() for t in HOUSEKEEPING_TYPES}
    reg = tokens & {t.lower() for t in REGULATORY_TYPES}
    if hk and not reg:
        return "housekeeping"
    if reg and not hk:
        return "regulatory"
    return UNMAPPED


def length_group(length: int, cutoff: int = 200) -> str:
    """``< 200 nt`` or ``>= 200 nt`` (small vs long ncRNAs, RNA-FM Fig. 2b).

    >>> length_group(199), length_group(200)
    ('< 200 nt', '>= 200 nt')
    """
    return f"< {cutoff} nt" if length < cutoff else f">= {cutoff} nt"


def read_group_file(path: str | Path) -> dict[str, str]:
    """A label -> group mapping from a two-column TSV (``label<TAB>group``; blank lines and lines
    starting with ``#`` skipped; a first line ``label<TAB>group`` is a header)."""
    mapping: dict[str, str] = {}
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise InputError(f"{path}:{n}: expected two tab-separated columns, label and group; got {line[:60]!r}")
        label, group = fields[0].strip(), fields[1].strip()
        if not mapping and (label.lower(), group.lower()) == ("label", "group"):
            continue
        if label in mapping and mapping[label] != group:
            raise InputError(f"{path}:{n}: label {label!r} is mapped twice ({mapping[label]!r}, {group!r})")
        mapping[label] = group
    if not mapping:
        raise InputError(f"{path}: the group file maps no label")
    return mapping


def umap_2d(X: np.ndarray, seed: int = 0, n_neighbors: int = 15, n_epochs: int | None = None) -> np.ndarray:
    """An (N, 2) UMAP of the rows of ``X``: cosine metric on exact nearest neighbours (scikit-learn,
    brute force, passed to UMAP as ``precomputed_knn``: the same graph at every N, and no numba
    compilation of UMAP's own search), ``min_dist`` 0.1, ``random_state=seed`` (single-threaded and
    reproducible); ``n_neighbors`` capped at N - 1."""
    import warnings

    import umap
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float32)
    k = min(n_neighbors, len(X) - 1)
    dist, idx = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(X).kneighbors(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's notices: a seed disables parallelism; no search index kept
        reducer = umap.UMAP(n_neighbors=k, min_dist=0.1, metric="cosine", random_state=seed, n_epochs=n_epochs,
                            init="spectral" if len(X) > 20 else "random",
                            precomputed_knn=(idx, dist.astype(np.float32), None))
        return reducer.fit_transform(X).astype(np.float64)


def medoid(X: np.ndarray) -> int:
    """Index of the row with the smallest summed cosine distance to the other rows."""
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return int(np.argmin((1 - Xn @ Xn.T).sum(1)))


def diffusion_pseudotime(X: np.ndarray, root_mask: np.ndarray, n_neighbors: int = 15, n_dcs: int = 10,
                         seed: int = 0) -> tuple[np.ndarray, int]:
    """Diffusion pseudotime (Haghverdi et al. 2016, scanpy ``tl.diffmap`` + ``tl.dpt``) of the
    rows of ``X`` on their cosine kNN graph, from one root record: the medoid (cosine) of the
    rows where ``root_mask`` is True, so the root is a typical member of the root label rather
    than an outlier. Returns (pseudotime in [0, 1], NaN for records the graph does not connect to
    the root; the root's row index)."""
    import warnings

    import scanpy as sc

    from nucfm.analysis.representation import neighbor_graph

    root_rows = np.flatnonzero(root_mask)
    root = int(root_rows[medoid(np.asarray(X, dtype=np.float64)[root_rows])])
    adata = neighbor_graph(X, n_neighbors=n_neighbors, seed=seed)
    n_comps = max(2, min(15, len(X) - 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.diffmap(adata, n_comps=n_comps)
        adata.uns["iroot"] = root
        sc.tl.dpt(adata, n_dcs=min(n_dcs, n_comps))
    pt = adata.obs["dpt_pseudotime"].to_numpy(dtype=np.float64)
    pt[~np.isfinite(pt)] = np.nan
    return pt, root


def palette(n: int) -> list:
    """``n`` distinguishable colours with no grey (grey marks unmapped records): tab20's strong then
    light shades, Dark2, the darkest shade of each tab20b hue, then the rest of tab20b and Set1
    (53 in all; more labels cycle).

    >>> len(set(palette(53))), palette(54)[53] == palette(54)[0]
    (53, True)
    """
    import matplotlib

    def greyish(c) -> bool:
        return max(c[:3]) - min(c[:3]) < 0.05

    def colors(name):
        return list(matplotlib.colormaps[name].colors)

    tab20, tab20b = colors("tab20"), colors("tab20b")
    rest = [c for i, c in enumerate(tab20b) if i % 4]
    colours = tab20[0::2] + tab20[1::2] + colors("Dark2") + tab20b[0::4] + rest + colors("Set1")
    colours = [c for c in colours if not greyish(c)]
    return [colours[i % len(colours)] for i in range(n)]


def clamp_outliers(xy: np.ndarray, q: float = 0.5, margin: float = 0.15) -> np.ndarray:
    """``xy`` with each axis clipped to its [q, 100 - q] percentile range widened by ``margin`` of
    that range on each side: points beyond it land on the edge of the drawn area.

    >>> clamp_outliers(np.array([[0.0, 0], [1, 1], [2, 2], [1000, 1]]), q=0, margin=0)[:, 0].tolist()
    [0.0, 1.0, 2.0, 1000.0]
    >>> float(clamp_outliers(np.r_[np.zeros((199, 2)), [[1000.0, 0]]] + np.arange(200)[:, None] / 200)[-1, 0]) < 10
    True
    """
    lo, hi = np.nanpercentile(xy, q, axis=0), np.nanpercentile(xy, 100 - q, axis=0)
    pad = (hi - lo) * margin
    return np.clip(xy, lo - pad, hi + pad)


def plot_atlas(rows: list[dict], png: str | Path, svg: str | Path | None = None, title: str = "") -> None:
    """Draw the atlas: one row per grouping, one column per representation.

    Each row is a dict: ``name`` (grouping), ``panels`` (list of dicts ``title``, ``xy`` (N, 2),
    ``values`` (N,) — labels for a categorical row, numbers for a continuous one), ``kind``
    (``categorical`` or ``continuous``), ``order`` (category order for the legend). The legend (or
    colour bar) of each row sits right of its last panel. Points are drawn in a seeded random
    order so that no label hides the others; the few far outside the bulk are drawn on its edge
    (:func:`clamp_outliers`), so that they do not shrink the map to a dot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nucfm.paths import atomic_path

    ncols = max(len(r["panels"]) for r in rows)
    max_cats = max((len(r["order"]) for r in rows if r["kind"] == "categorical"), default=0)
    legend_cols = 1 if max_cats <= 16 else 2
    legend_w = 2.3 * legend_cols
    height = 3.5 * len(rows) + (0.5 if title else 0)
    fig = plt.figure(figsize=(3.4 * ncols + legend_w, height))
    grid = fig.add_gridspec(len(rows), ncols + 1, width_ratios=[3.4] * ncols + [legend_w], wspace=0.08, hspace=0.32,
                            top=1 - (0.9 if title else 0.4) / height, bottom=0.1 / height)
    rng = np.random.default_rng(0)
    for r, row in enumerate(rows):
        n = len(row["panels"][0]["values"])
        order = rng.permutation(n)
        named = [k for k in row.get("order", []) if k != UNMAPPED]
        colour_of = {**dict(zip(named, palette(len(named)))), UNMAPPED: (0.78, 0.78, 0.78)}
        handles = None
        for c, panel in enumerate(row["panels"]):
            ax = fig.add_subplot(grid[r, c])
            xy, values = clamp_outliers(np.asarray(panel["xy"]))[order], np.asarray(panel["values"])[order]
            size = max(2.5, min(12.0, 4000 / max(n, 1)))
            if row["kind"] == "categorical":
                colours = [colour_of.get(v, (0.8, 0.8, 0.8)) for v in values]
                ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=size, linewidths=0, rasterized=True)
            else:
                v = values.astype(float)
                finite = np.isfinite(v)
                ax.scatter(xy[~finite, 0], xy[~finite, 1], c="lightgrey", s=size, linewidths=0, rasterized=True)
                handles = ax.scatter(xy[finite, 0], xy[finite, 1], c=v[finite], cmap="viridis", vmin=0, vmax=1,
                                     s=size, linewidths=0, rasterized=True)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(panel["title"], fontsize=8)
            if c == 0:
                ax.set_ylabel(row["name"], fontsize=9)
        lax = fig.add_subplot(grid[r, ncols])
        lax.axis("off")
        if row["kind"] == "categorical":
            from matplotlib.lines import Line2D

            marks = [Line2D([], [], marker="o", ls="", markersize=5, color=colour_of[k]) for k in row["order"]]
            # unmapped records (grey) are drawn but left out of the grouping's metrics
            counts = row.get("counts", {})
            names = [f"{k} ({counts[k]})" if k in counts else str(k) for k in row["order"]]
            lax.legend(marks, names, loc="center left", fontsize=6.5 if len(names) > 16 else 7.5, frameon=False,
                       ncol=legend_cols if len(names) > 16 else 1, handletextpad=0.2, columnspacing=0.6,
                       borderaxespad=0)
        elif handles is not None:
            cb = fig.colorbar(handles, ax=lax, location="left", fraction=0.5, shrink=0.8)
            cb.set_label(row.get("colorbar", ""), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.15 / height)
    save_png(fig, png)
    if svg is not None:
        with atomic_path(svg) as tmp:
            fig.savefig(tmp, format="svg", bbox_inches="tight")
    plt.close(fig)


def save_png(fig, path: str | Path, dpi: int = 110) -> None:
    """Write ``fig`` as a palette PNG (256 colours, octree quantisation, no dithering): the same
    picture at about a third of the bytes of matplotlib's RGBA PNG, as scatter plots hold few colours."""
    import io

    from PIL import Image

    from nucfm.paths import atomic_path

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png", bbox_inches="tight")
    image = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                                    dither=Image.Dither.NONE)
    with atomic_path(path) as tmp:
        image.save(tmp, format="png", optimize=True)
