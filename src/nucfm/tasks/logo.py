"""``nucfm logo``: sequence logos of a DNA model's masked predictions.

* **Region logo** (:func:`region_logo`): the A/C/G/T distribution at every position of a region,
  each position masked in turn (the ``nucfm probs`` computation, :func:`nucfm.tasks.variants.
  position_probs`), or read from a ``nucfm probs`` table; letter heights in bits, the reference
  written under each position, rows of ``row_length`` positions, at most ``max_length``.
* **Meta-logos** (:func:`site_logos`): annotated sites of a GFF3 (start and stop codons, splice
  donors and acceptors, :meth:`nucfm.tasks.consequence.Annotation.sites`) aligned on the motif's
  first base, read 5'->3' on the transcript (minus-strand sites reverse-complemented), ``flank``
  bases either side. Per offset: the model's mean predicted distribution over the sites (each
  position masked, both strands averaged, as in ``probs``) next to the observed base
  frequencies, and the information content of both at the core (the motif's own bases).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd

from nucfm.analysis import logos
from nucfm.errors import InputError
from nucfm.io.genome import Genome
from nucfm.paths import atomic_write_text
from nucfm.tasks.consequence import SITE_MOTIFS, Annotation
from nucfm.tasks.variants import position_probs, site_logits, strand_probs

log = logging.getLogger("nucfm")
BASES = "ACGT"
PROBS_COLUMNS = ("chrom", "pos", "A", "C", "G", "T", "ref")
MOTIF_NAMES = {"start_codon": "ATG", "stop_codon": "TAA/TAG/TGA", "splice_donor": "GT", "splice_acceptor": "AG"}


# ---- region logo ----------------------------------------------------------------------------------
def check_logo_length(n: int, max_length: int, what: str) -> None:
    if n > max_length:
        raise InputError(f"{what} has {n:,} positions: too long for a logo (at most --max-length {max_length:,}, "
                         "drawn in rows of --row-length); give a shorter region")


def read_probs_table(path: str | Path) -> pd.DataFrame:
    """A ``nucfm probs`` output (.tsv[.gz], .csv[.gz], .parquet or .npz) as a DataFrame with
    columns chrom, pos (1-based), A, C, G, T, ref, sorted by position. Rows without four
    non-negative numbers are left out (counted in the log); each row is normalised to sum 1."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("chrom", "pos", "probs", "ref") if k not in z.files]
            if missing:
                raise InputError(f"{path}: missing array(s) {missing} (found {z.files}); expected `nucfm probs` output")
            probs = np.asarray(z["probs"], dtype=np.float64).reshape(-1, 4)
            df = pd.DataFrame({"chrom": str(z["chrom"]), "pos": z["pos"], **{b: probs[:, k] for k, b in
                               enumerate(BASES)}, "ref": z["ref"]})
    else:
        from nucfm.io.tables import read_table

        df = read_table(path)
        missing = [c for c in PROBS_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing} (found {list(df.columns)[:12]}); expected "
                             "`nucfm probs` output: chrom, pos, A, C, G, T, ref")
        df = df[list(PROBS_COLUMNS)].copy()
    for c in ("pos", *BASES):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    ok = df[list(BASES)].notna().all(axis=1) & (df[list(BASES)] >= 0).all(axis=1) & df["pos"].notna()
    ok &= df[list(BASES)].sum(axis=1) > 0
    if (~ok).any():
        log.warning("%s: %d row(s) without a position or four non-negative probabilities are left out",
                    path, int((~ok).sum()))
    df = df[ok]
    if df.empty:
        raise InputError(f"{path}: no row with a position and four probabilities")
    chroms = df["chrom"].astype(str).unique()
    if len(chroms) > 1:
        raise InputError(f"{path}: positions on {len(chroms)} contigs ({', '.join(chroms[:4])}); one logo is one "
                         "region: make one table per region with `nucfm probs --region`")
    df["pos"] = df["pos"].astype(np.int64)
    df[list(BASES)] = df[list(BASES)].div(df[list(BASES)].sum(axis=1), axis=0)
    return df.sort_values("pos", kind="stable").reset_index(drop=True)


def region_probs(model, genome: Genome, chrom: str, start: int, end: int, window: int = 512,
                 batch_size: int | None = None, progress=None) -> pd.DataFrame:
    """The ``probs`` table of ``chrom:[start, end)`` (0-based), both strands averaged."""
    r = position_probs(model, genome, chrom, start, end, window=window, batch_size=batch_size, progress=progress)
    return pd.DataFrame({"chrom": genome.resolve(chrom), "pos": r["pos"],
                         **{b: r["probs"][:, k] for k, b in enumerate(BASES)}, "ref": r["ref"]})


def region_logo(df: pd.DataFrame, outdir: str | Path, row_length: int = 100, max_length: int = 1000,
                source: str = "") -> dict:
    """Write ``outdir/logo.png``, ``.svg``, ``logo.tsv`` (the table plus ``ic_bits``) and
    ``logo.json`` from a probs table (:func:`read_probs_table`); returns the summary."""
    check_logo_length(len(df), max_length, source or "the table")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    probs = df[list(BASES)].to_numpy(dtype=np.float64)
    ic = logos.information_content(probs)
    table = df.assign(ic_bits=ic)
    atomic_write_text(outdir / "logo.tsv", table.to_csv(sep="\t", index=False, float_format="%.5g"))
    chrom = str(df["chrom"].iloc[0])
    first, last = int(df["pos"].iloc[0]), int(df["pos"].iloc[-1])
    summary = {"source": source, "chrom": chrom, "first_pos": first, "last_pos": last, "positions": len(df),
               "mean_ic_bits": float(ic.mean()), "max_ic_bits": float(ic.max()), "row_length": row_length}
    atomic_write_text(outdir / "logo.json", json.dumps(summary, indent=1) + "\n")
    logos.plot_region_logo(df["pos"].to_numpy(), probs, [str(r) for r in df["ref"]], outdir / "logo",
                           row_length=row_length,
                           title=f"{source}: {chrom}:{first:,}-{last:,}, masked prediction, letter height = p x IC")
    return summary


# ---- meta-logos on annotated sites --------------------------------------------------------------
def site_offsets(kind: str, flank: int) -> np.ndarray:
    """Offsets from the motif's first base: ``-flank .. motif length - 1 + flank``.

    >>> site_offsets("splice_donor", 2).tolist()
    [-2, -1, 0, 1, 2, 3]
    """
    return np.arange(-flank, SITE_MOTIFS[kind] + flank)


def site_matrix(genome: Genome, chrom: str, sites: list[tuple[int, str]], offsets: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(genome positions (S, O), complement flags (S,)) of each site at each offset, in
    transcript orientation: ``anchor + o`` on ``+``, ``anchor - o`` on ``-``."""
    anchors = np.array([a for a, _ in sites], dtype=np.int64)
    minus = np.array([s == "-" for _, s in sites], dtype=bool)
    pos = anchors[:, None] + np.where(minus, -1, 1)[:, None] * offsets[None, :]
    return pos, minus


def observed_counts(genome: Genome, chrom: str, pos: np.ndarray, minus: np.ndarray) -> np.ndarray:
    """(O, 4) counts of A, C, G, T at each offset over the sites, minus-strand bases complemented
    (positions outside the contig and non-ACGT letters are not counted)."""
    n = genome.length(chrom)
    lo, hi = max(0, int(pos.min())), min(n, int(pos.max()) + 1)
    seq = genome.fetch(chrom, lo, hi).upper()
    code = {b: k for k, b in enumerate(BASES)}
    counts = np.zeros((pos.shape[1], 4), dtype=np.int64)
    for i in range(pos.shape[0]):
        for j in range(pos.shape[1]):
            p = int(pos[i, j])
            k = code.get(seq[p - lo]) if lo <= p < hi else None
            if k is not None:
                counts[j, 3 - k if minus[i] else k] += 1
    return counts


def model_site_probs(model, genome: Genome, chrom: str, pos: np.ndarray, minus: np.ndarray, window: int = 512,
                     batch_size: int | None = None, progress=None) -> np.ndarray:
    """(S, O, 4) masked-prediction distributions at each site and offset in transcript letters:
    each genome position masked once (both strands averaged), minus-strand rows complemented
    (A<->T, C<->G: the column order reversed)."""
    unique, inverse = np.unique(pos.ravel(), return_inverse=True)
    fwd, rev = site_logits(model, genome, [(chrom, int(p)) for p in unique], window=window, batch_size=batch_size,
                           progress=progress)
    probs = strand_probs(fwd, rev)[inverse].reshape(*pos.shape, 4)
    probs[minus] = probs[minus][..., ::-1]
    return probs


def sample_sites(sites: list[tuple[int, str]], max_sites: int | None, seed: int) -> list[tuple[int, str]]:
    """At most ``max_sites`` of ``sites``: a seeded random sample, in genome order.

    >>> sample_sites([(i, "+") for i in range(10)], 3, seed=0)
    [(0, '+'), (6, '+'), (9, '+')]
    """
    if max_sites is None or len(sites) <= max_sites:
        return list(sites)
    return sorted(random.Random(seed).sample(list(sites), max_sites))


def site_logos(model, genome: Genome, gff: str | Path, chrom: str, start: int, end: int, kinds: list[str],
               outdir: str | Path, flank: int = 12, max_sites: int | None = 200, seed: int = 0, window: int = 512,
               batch_size: int | None = None, progress: bool = True, model_name: str = "",
               ann: Annotation | None = None) -> list[dict]:
    """Meta-logos of each site type in ``kinds`` inside ``chrom:[start, end)`` (0-based): writes
    ``outdir/KIND.png``, ``.svg``, ``.tsv``, ``.json`` per type, all types side by side in
    ``meta_logos.png`` / ``.svg`` / ``.tsv``, and ``core_ic.tsv`` / ``.json``;
    returns one summary per type. Every type is checked to have sites before any model work."""
    from nucfm.progress import bar as progress_bar
    from nucfm.tasks.genome_clusters import load_annotation

    ann = ann or load_annotation(gff, genome, chrom)
    contig = genome.resolve(chrom)
    found = {}
    for kind in kinds:
        sites = ann.sites(kind, chrom, start, end)
        if not sites:
            raise InputError(f"no {kind} site in {chrom}:{start + 1}-{end} of {Path(gff).name}; choose a region "
                             "with annotated transcripts (or another --sites)")
        found[kind] = sites
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summaries, tables, panels = [], [], []
    for kind in kinds:
        sites = sample_sites(found[kind], max_sites, seed)
        log.info("%s: %d site(s) in the region, %d used (%d on the minus strand)", kind, len(found[kind]),
                 len(sites), sum(s == "-" for _, s in sites))
        offsets = site_offsets(kind, flank)
        pos, minus = site_matrix(genome, contig, sites, offsets)
        counts = observed_counts(genome, contig, pos, minus)
        observed = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        with progress_bar(total=len(np.unique(pos)), unit="position", enabled=progress, desc=kind) as bar:
            probs = model_site_probs(model, genome, contig, pos, minus, window=window, batch_size=batch_size,
                                     progress=bar)
        mean = probs.mean(axis=0)  # (O, 4)
        summary, table = _write_site_logo(outdir, kind, offsets, mean, observed, counts, len(found[kind]), sites,
                                          model_name, f"{contig}:{start + 1}-{end}", flank, seed)
        summaries.append(summary)
        tables.append(table.assign(site=kind))
        panels.append({"name": f"{kind.replace('_', ' ')} ({MOTIF_NAMES[kind]}): {len(sites)} sites",
                       "offsets": offsets, "model": mean, "observed": observed, "core": list(range(SITE_MOTIFS[kind]))})
    both = pd.concat(tables)[["site", *tables[0].columns]]
    atomic_write_text(outdir / "meta_logos.tsv", both.to_csv(sep="\t", index=False, float_format="%.5g"))
    logos.plot_meta_logo_grid(panels, outdir / "meta_logos", labels=("model: mean masked prediction", "observed"),
                              title=f"{model_name or 'model'} on {contig}:{start + 1:,}-{end:,}, {flank} bp flanks")
    core = pd.DataFrame([{k: v for k, v in s.items() if not isinstance(v, (list, dict))} for s in summaries])
    atomic_write_text(outdir / "core_ic.tsv", core.to_csv(sep="\t", index=False, float_format="%.4f"))
    atomic_write_text(outdir / "core_ic.json", json.dumps(summaries, indent=1) + "\n")
    return summaries


def _write_site_logo(outdir, kind, offsets, mean, observed, counts, n_found, sites, model_name, region, flank,
                     seed) -> dict:
    ic_model, ic_obs = logos.information_content(mean), logos.information_content(np.maximum(observed, 1e-300))
    empty = counts.sum(axis=1) == 0
    ic_obs[empty] = np.nan  # no observed base at this offset (every site past a contig end)
    core = list(range(SITE_MOTIFS[kind]))
    rows = []
    for source, p, ic in (("model", mean, ic_model), ("observed", observed, ic_obs)):
        for j, o in enumerate(offsets):
            rows.append({"offset": int(o), "source": source, **{b: p[j, k] for k, b in enumerate(BASES)},
                         "ic_bits": ic[j], "core": int(o) in core, "n": int(counts[j].sum())})
    table = pd.DataFrame(rows)
    atomic_write_text(outdir / f"{kind}.tsv", table.to_csv(sep="\t", index=False, float_format="%.5g"))
    at = [list(offsets).index(o) for o in core]
    consensus = "".join(BASES[int(np.argmax(observed[j]))] for j in at)
    summary = {"site": kind, "region": region, "model": model_name, "sites_in_region": n_found,
               "sites_used": len(sites), "sites_minus_strand": sum(s == "-" for _, s in sites), "flank": flank,
               "seed": seed, "observed_core": consensus,
               "core_ic_model_bits": float(ic_model[at].sum()), "core_ic_observed_bits": float(ic_obs[at].sum()),
               "model_p_observed_core": float(np.mean([mean[j, BASES.index(c)] for j, c in zip(at, consensus)])),
               "core_ic_model_per_base": [round(float(x), 4) for x in ic_model[at]],
               "core_ic_observed_per_base": [round(float(x), 4) for x in ic_obs[at]],
               "flank_mean_ic_model_bits": float(np.delete(ic_model, at).mean()),
               "flank_mean_ic_observed_bits": float(np.nanmean(np.delete(ic_obs, at)))}
    atomic_write_text(outdir / f"{kind}.json", json.dumps(summary, indent=1) + "\n")
    title = (f"{kind.replace('_', ' ')} ({MOTIF_NAMES[kind]}): {len(sites)} of {n_found} sites in {region}, "
             f"model {model_name or ''}")
    logos.plot_meta_logo(offsets, mean, observed, core, outdir / kind, title=title,
                         labels=("model: mean masked prediction", "observed base frequency"))
    return summary, table
