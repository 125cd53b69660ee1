"""Calibrated variant scores: each score's percentile among random SNVs of the same genome,
scored by the same model, window and method.

A raw log-likelihood ratio means little across models ("is -3.1 bad?"); its rank among random
SNVs does: ``score_percentile = 0.5`` reads "lower than 99.5 % of random SNVs". The background
(``size`` SNVs at uniformly drawn A/C/G/T positions of the whole genome, a uniformly drawn other
base each, ``seed``) is scored once and cached under ``$NUCFM_HOME/vep-background/`` keyed by
the model fingerprint, the genome file (path, size, mtime), window, method, size and seed; the
cache file records all of these. Only single-base substitutions get a percentile (the background
is SNVs; MNV/indel scores are on another scale).
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from nucfm.checkpoint import fingerprint
from nucfm.io.genome import Genome
from nucfm.io.variants import Variant
from nucfm.paths import atomic_path, cache_dir

log = logging.getLogger("nucfm")


def background_variants(genome: Genome, size: int, seed: int) -> list[Variant]:
    """``size`` random SNVs: positions uniform over all contigs (A/C/G/T bases only)."""
    rng = np.random.default_rng(seed)
    names = list(genome.lengths)
    lengths = np.array([genome.length(c) for c in names], dtype=np.float64)
    out: list[Variant] = []
    tries = 0
    while len(out) < size:
        tries += 1
        if tries > 100 * size + 1000:
            raise ValueError(f"{genome.path}: too few A/C/G/T bases to draw {size} background SNVs")
        c = names[rng.choice(len(names), p=lengths / lengths.sum())]
        p = int(rng.integers(genome.length(c)))
        b = genome.fetch(c, p, p + 1).upper()
        if b in "ACGT":
            out.append(Variant(c, p, b, "ACGT".replace(b, "")[int(rng.integers(3))]))
    return out


def background_scores(model, genome: Genome, window: int, method: str, size: int = 10_000, seed: int = 0,
                      batch_size: int | None = None, progress: bool = False) -> tuple[np.ndarray, dict]:
    """Sorted background scores (size,) and their metadata; computed once, then cached."""
    from nucfm.tasks.variants import score_variants

    st = genome.path.stat()
    meta = {"model_fingerprint": fingerprint(model), "genome": str(genome.path.resolve()),
            "genome_bytes": st.st_size, "genome_mtime_ns": st.st_mtime_ns, "window": window, "method": method,
            "size": size, "seed": seed, "kind": "random A/C/G/T SNVs, uniform over the genome"}
    key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir("vep-background") / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["scores"], json.loads(str(z["meta"]))
    log.info("calibration: scoring %d random SNVs of %s once (cached in %s)", size, genome.path.name, path)
    vs = background_variants(genome, size, seed)
    from nucfm.progress import bar as progress_bar

    with progress_bar(total=len(vs), unit="site", enabled=progress, desc="background") as bar:
        scores = np.sort(score_variants(model, genome, vs, window=window, method=method, batch_size=batch_size,
                                        progress=bar)["score"])
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, scores=scores, meta=np.array(json.dumps(meta)))
    return scores, meta


def percentiles(scores: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Percent (0-100) of ``background`` (sorted) at or below each score; NaN stays NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    out = 100.0 * np.searchsorted(background, scores, side="right") / len(background)
    return np.where(np.isnan(scores), np.nan, out)


def calibrator(model, genome: Genome, window: int, method: str, size: int = 10_000, seed: int = 0,
               batch_size: int | None = None, progress: bool = False):
    """A ``calibrate(scores, snv_mask) -> percentiles`` callback for
    :func:`nucfm.tasks.variants.score_variant_file` (background scored on first call)."""

    background: list[np.ndarray] = []  # scored on the first call, kept for the file's other pieces

    def calibrate(scores: np.ndarray, snv: np.ndarray) -> np.ndarray:
        if not background:
            background.append(background_scores(model, genome, window, method, size=size, seed=seed,
                                                batch_size=batch_size, progress=progress)[0])
        return np.where(snv, percentiles(scores, background[0]), np.nan)

    calibrate.identity = {"background_size": size, "background_seed": seed}

    return calibrate
