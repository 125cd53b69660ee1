"""Score distributions per consequence class (the GPN paper's figure) and a table of them.

``nucfm vep-report scored.tsv -o DIR`` writes ``DIR/score_by_consequence.png`` (one box per
class, classes ordered by median score, most negative first, n per class in the label),
``DIR/score_by_consequence.tsv`` and ``.json``: per class n, mean, median, 1st and 10th
percentiles, and the AUROC of telling the class from ``intergenic_variant`` by a low score
(0.5 = no better than chance; > 0.5: the class scores lower), plus missense vs synonymous.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from nucfm.errors import InputError

log = logging.getLogger("nucfm")
BACKGROUND = "intergenic_variant"


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random ``pos`` score < a random ``neg`` score), ties counting one half (the
    Mann-Whitney form of the ROC area with "low score = positive")."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    ranks = pd.Series(allv).rank(method="average").to_numpy()
    r_pos = ranks[: len(pos)].sum()
    u = r_pos - len(pos) * (len(pos) + 1) / 2  # pairs where pos > neg (+ ties/2)
    return float(1 - u / (len(pos) * len(neg)))


def read_scored(path: str | Path, score: str = "score") -> pd.DataFrame:
    """A scored table (TSV/CSV[.gz]/Parquet) with ``consequence`` and ``score`` columns; rows
    without a score or a consequence are dropped (counted in the log)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    from nucfm.io.tables import read_table, table_format

    if table_format(path) is None:
        raise InputError(f"{path}: expected a scored .tsv[.gz], .csv[.gz] or .parquet from `nucfm vep`")
    df = read_table(path, dtype=None)
    cols = {c.lower(): c for c in map(str, df.columns)}
    want = [score, "consequence"]
    missing = [c for c in want if c not in cols and f"nucfm_{c}" not in cols]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing} (found {list(df.columns)[:12]}); "
                         "score with `nucfm vep --gff ANNOTATION.gff3` to get consequences")
    pick = {c: cols.get(c, cols.get(f"nucfm_{c}")) for c in want}
    out = pd.DataFrame({"score": pd.to_numeric(df[pick[score]], errors="coerce"),
                        "consequence": df[pick["consequence"]].astype(str)})
    keep = out["score"].notna() & ~out["consequence"].isin(["", "nan", "NA", "None"])
    if (~keep).any():
        log.info("%s: %d row(s) without a score or a consequence are left out", path, int((~keep).sum()))
    return out[keep]


def consequence_stats(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per-class table (ordered by median) and summary AUROCs from ``score``/``consequence``."""
    if df.empty:
        raise InputError("no scored rows with a consequence")
    groups = {k: g["score"].to_numpy() for k, g in df.groupby("consequence")}
    bg = groups.get(BACKGROUND, np.zeros(0))
    rows = []
    for k, v in groups.items():
        rows.append({"consequence": k, "n": len(v), "mean": v.mean(), "median": np.median(v),
                     "p1": np.percentile(v, 1), "p10": np.percentile(v, 10),
                     "auroc_vs_intergenic": auroc(v, bg) if k != BACKGROUND else float("nan")})
    table = pd.DataFrame(rows).sort_values("median", kind="stable").reset_index(drop=True)
    mis, syn = groups.get("missense_variant"), groups.get("synonymous_variant")
    summary = {"n": int(len(df)), "classes": len(groups),
               "auroc_missense_vs_synonymous": auroc(mis, syn) if mis is not None and syn is not None else None}
    if not len(bg):
        log.warning("no %s rows: AUROC against intergenic variants is not defined", BACKGROUND)
    if summary["auroc_missense_vs_synonymous"] is None:
        log.warning("missense or synonymous class is empty: no missense vs synonymous AUROC")
    return table, summary


def plot_by_consequence(df: pd.DataFrame, table: pd.DataFrame, png: str | Path, title: str = "") -> None:
    """Box plots of scores per class (order of ``table``), n in each label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(table["consequence"])
    data = [df.loc[df["consequence"] == k, "score"].to_numpy() for k in order]
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(order) + 1.4))
    # horizontal boxes: `orientation` from Matplotlib 3.10 (where `vert` is deprecated), `vert` before
    horizontal = {"orientation": "horizontal"} if _mpl_version() >= (3, 10) else {"vert": False}
    ax.boxplot(data, showfliers=False, widths=0.6, **horizontal)
    ax.set_yticks(range(1, len(order) + 1), [f"{k} (n={len(d):,})" for k, d in zip(order, data)], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("variant score (log-likelihood ratio; lower = ALT less likely)")
    ax.set_title(title or "score by consequence (ordered by median)", fontsize=9)
    fig.tight_layout()
    from nucfm.paths import atomic_path

    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_report(scored: str | Path, outdir: str | Path, score: str = "score") -> dict:
    """Read a scored file, write the PNG, TSV and JSON into ``outdir``; return the summary."""
    from nucfm.paths import atomic_write_text

    df = read_scored(scored, score)
    table, summary = consequence_stats(df)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(outdir / "score_by_consequence.tsv", table.to_csv(sep="\t", index=False, float_format="%.4g"))
    clean = json.loads(table.to_json(orient="records"))
    atomic_write_text(outdir / "score_by_consequence.json",
                      json.dumps({"input": str(scored), **summary, "classes_table": clean}, indent=1) + "\n")
    plot_by_consequence(df, table, outdir / "score_by_consequence.png", title=f"{Path(scored).name}: score by "
                        "consequence (ordered by median)")
    return {**summary, "table": table}


def _mpl_version() -> tuple[int, int]:
    import matplotlib

    major, minor = matplotlib.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
