"""``nucfm genome-clusters``: GPN's unsupervised map of genome windows, with region classes
from a GFF3 and a k-mer baseline run through the same procedure.

Windows (all sizes options): centres of ``center`` bases (default 100) tiled along the region
every ``step`` bases (default = ``center``: non-overlapping centres), each inside a context
window of ``window`` bases (default 512; ``(window - center) // 2`` bases before the centre,
``N``-padded past contig ends). A window's embedding is the model's last hidden layer over its
context, averaged over the centre bases and over both strands (the forward window and its
reverse complement, positions aligned so the same genome bases are averaged), through the one
embedding loop of :func:`nucfm.models.embedding.embed_ids`.

A window's class is the majority class of its centre bases (:meth:`nucfm.tasks.consequence.
Annotation.region_classes`: CDS > 5' UTR > 3' UTR > ncRNA > intron > repeat > intergenic where
features overlap; equal counts go to the earlier class). Windows whose centre is more than half
``N`` are left out (counted in the log and in ``metrics.json``).

Baselines (same windows, same clustering and probe, :mod:`nucfm.analysis.genome_clusters`):
canonical k-mer frequencies of the centre bases (``kmer_center``) and of the whole context window
(``kmer_window``, the bases the model sees).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nucfm.analysis import genome_clusters as gc
from nucfm.errors import InputError
from nucfm.io.genome import Genome
from nucfm.models.embedding import embed_ids
from nucfm.paths import atomic_path, atomic_write_text
from nucfm.tasks.consequence import REGION_CLASSES, Annotation
from nucfm.tasks.variants import encode_windows

log = logging.getLogger("nucfm")
OUTPUTS = ("clusters.png", "clusters.svg", "windows.tsv", "composition.tsv", "metrics.tsv", "metrics.json",
           "embeddings.npz")


def check_window_sizes(window: int, center: int, step: int) -> None:
    """The centre fits in the window and every size is positive."""
    if min(window, center, step) < 1:
        raise InputError(f"--window {window}, --center {center} and --step {step} must all be >= 1")
    if center > window:
        raise InputError(f"--center {center} is longer than --window {window}")


def tile_centres(start: int, end: int, center: int, step: int) -> np.ndarray:
    """0-based starts of the window centres ``[s, s + center)`` inside ``[start, end)``, every ``step``.

    >>> tile_centres(0, 350, 100, 100).tolist()
    [0, 100, 200]
    """
    return np.arange(start, end - center + 1, step, dtype=np.int64)


def window_sequences(genome: Genome, chrom: str, centres: np.ndarray, window: int, center: int) -> list[str]:
    """The context window of each centre: ``[s - (window - center) // 2, ... + window)``, case kept."""
    before = (window - center) // 2
    return [genome.fetch(chrom, int(s) - before, int(s) - before + window) for s in centres]


@torch.inference_mode()
def centre_embeddings(model, fwd: np.ndarray, rev: np.ndarray, a: int, center: int, layer: int,
                      batch_size: int) -> np.ndarray:
    """(B, D): the mean hidden state over the centre ``[a, a + center)`` of each forward window
    (B, W) and over ``[W - a - center, W - a)`` of its reverse complement ``rev``, averaged. A
    model with ``hidden_range`` (the ConvNet) computes only the receptive cone of the centre (as
    ``vep`` does for one site); others go through :func:`~nucfm.models.embedding.embed_ids`."""
    B, W = fwd.shape
    if hasattr(model, "hidden_range"):
        out = []
        for b0 in range(0, B, batch_size):
            f = torch.from_numpy(np.ascontiguousarray(fwd[b0 : b0 + batch_size])).to(model.device)
            r = torch.from_numpy(np.ascontiguousarray(rev[b0 : b0 + batch_size])).to(model.device)
            hf = model.hidden_range(f, layer, a, a + center).mean(1)  # (b, D)
            hr = model.hidden_range(r, layer, W - a - center, W - a).mean(1)
            out.append(((hf + hr) / 2).float().cpu().numpy())
        return np.concatenate(out)
    hidden = embed_ids(model, list(fwd) + list(rev), layer=layer, batch_tokens=batch_size * W)
    f = np.stack([h[a : a + center].mean(0) for h in hidden[:B]])
    r = np.stack([h[W - a - center : W - a].mean(0) for h in hidden[B:]])
    return (f + r) / 2


def window_embeddings(model, seqs: list[str], center: int, layer: int = -1, batch_size: int | None = None,
                      chunk: int = 128, progress=None, parts=None) -> np.ndarray:
    """(N, D) float32: per context window (equal lengths W), the hidden states of ``layer`` at
    the centre bases ``[(W - center) // 2, ... + center)`` averaged, then averaged over the
    forward and reverse-complement input (in the reverse complement the same bases sit at
    ``[W - a - center, W - a)``), ``chunk`` windows at a time (:func:`centre_embeddings`;
    memory: 2 x chunk x W x D floats at most). With ``parts``
    (a prepared :class:`nucfm.resume.Parts`) each chunk is saved when done and a finished chunk
    of an earlier run is read back instead of computed."""
    if not seqs:
        return np.zeros((0, model.hidden_size), dtype=np.float32)
    W = len(seqs[0])
    a = (W - center) // 2
    comp = model.alphabet.complement_ids()
    if batch_size is None:
        batch_size = 128 if model.device.type == "cuda" else 8  # the --batch-size defaults of vep and probs
    out = np.empty((len(seqs), model.hidden_size), dtype=np.float32)
    was_training = model.training
    model.eval()
    finished = parts.finished() if parts is not None else set()
    try:
        for c0 in range(0, len(seqs), chunk):
            if c0 // chunk in finished:
                done = np.load(parts.path(c0 // chunk))
                out[c0 : c0 + len(done)] = done
                if progress is not None:
                    progress.update(len(done))
                continue
            fwd = encode_windows(model, seqs[c0 : c0 + chunk])  # (B, W)
            B = len(fwd)
            out[c0 : c0 + B] = centre_embeddings(model, fwd, comp[fwd[:, ::-1]], a, center, layer, batch_size)
            if parts is not None:
                with parts.writing(c0 // chunk) as tmp:
                    np.save(tmp, out[c0 : c0 + B])
            if progress is not None:
                progress.update(B)
    finally:
        model.train(was_training)
    return out


def window_classes(ann: Annotation, chrom: str, centres: np.ndarray, center: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(class code (N,) int64, majority fraction (N,)) of each window centre: the most common
    class among its bases, ties to the earlier class of :data:`REGION_CLASSES`."""
    lo, hi = int(centres.min()), int(centres.max()) + center
    per_base = ann.region_classes(chrom, lo, hi)
    codes = np.empty(len(centres), dtype=np.int64)
    frac = np.empty(len(centres))
    for i, s in enumerate(centres):
        counts = np.bincount(per_base[s - lo : s - lo + center], minlength=len(REGION_CLASSES))
        codes[i] = int(np.argmax(counts))  # argmax takes the first of equal counts
        frac[i] = counts[codes[i]] / center
    return codes, frac


def load_annotation(gff: str | Path, genome: Genome, chrom: str) -> Annotation:
    """The GFF's transcripts; a one-line error when none of its contigs is ``chrom``."""
    ann = Annotation(gff, genome)
    contig = genome.resolve(chrom)
    if contig not in ann.contigs:
        names = sorted(ann.contigs)
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise InputError(f"{gff}: no feature on {contig} (the GFF's contigs: {shown or 'none'}; the genome's: "
                         f"{', '.join(list(genome.lengths)[:8])}); map names with --chrom-alias GFF_NAME={contig}")
    return ann


def genome_clusters(model, genome: Genome, gff: str | Path, chrom: str, start: int, end: int, outdir: str | Path,
                    window: int = 512, center: int = 100, step: int | None = None, resolution: float = 1.0,
                    n_neighbors: int = 15, kmer: int = 4, seed: int = 0, block: int = 50_000,
                    batch_size: int | None = None, progress: bool = True, model_name: str = "",
                    restart: bool = False) -> dict:
    """Embed, classify, cluster and score the windows of ``chrom:[start, end)`` (0-based) and write
    ``outdir/`` (:data:`OUTPUTS`). Returns the metrics (one dict per representation) and counts.
    The probe is cross-validated twice: stratified folds of windows, and folds of whole genome
    blocks of ``block`` bases (``probe_blocked_*``), which keeps overlapping neighbours apart.
    The window embeddings are resumable: finished chunks wait in ``OUTDIR.parts/``
    (:mod:`nucfm.resume`) and a rerun of the same command skips them (``restart``: start over)."""
    from nucfm.progress import bar as progress_bar

    step = step or center
    check_window_sizes(window, center, step)
    n = genome.length(chrom)
    if not 0 <= start < end <= n:
        raise InputError(f"region {chrom}:{start + 1}-{end} is not inside {chrom} (1-{n})")
    ann = load_annotation(gff, genome, chrom)
    centres = tile_centres(start, end, center, step)
    if len(centres) < gc.MIN_WINDOWS:
        raise InputError(f"region {chrom}:{start + 1}-{end} holds {len(centres)} window(s) of {center} bp every "
                         f"{step} bp; UMAP, Leiden and {gc.FOLDS}-fold cross-validation need at least "
                         f"{gc.MIN_WINDOWS}: widen the region or lower --step")
    seqs = window_sequences(genome, chrom, centres, window, center)
    a = (window - center) // 2
    n_bad = np.array([sum(ch not in "ACGTacgt" for ch in s[a : a + center]) for s in seqs])
    keep = n_bad * 2 <= center
    if not keep.all():
        log.info("%d window(s) whose centre is more than half N are left out", int((~keep).sum()))
    left_out = int((~keep).sum())
    centres, seqs = centres[keep], [s for s, k in zip(seqs, keep) if k]
    if len(centres) < gc.MIN_WINDOWS:
        raise InputError(f"{len(centres)} window(s) left after leaving out {left_out} mostly-N one(s); "
                         f"at least {gc.MIN_WINDOWS} are needed")
    classes, frac = window_classes(ann, chrom, centres, center)
    present = np.unique(classes)
    if len(present) < 2:
        raise InputError(f"all {len(centres)} windows are {REGION_CLASSES[present[0]]}: ARI, NMI and the probe "
                         "need at least 2 region classes; choose a region with genes and intergenic DNA")
    counts = np.bincount(classes, minlength=len(REGION_CLASSES))
    if (counts >= gc.FOLDS).sum() < 2:
        found = ", ".join(f"{REGION_CLASSES[k]} {c}" for k, c in enumerate(counts) if c)
        raise InputError(f"the {gc.FOLDS}-fold linear probe needs at least 2 region classes with >= {gc.FOLDS} "
                         f"windows each (found {found}); widen the region or lower --step")
    from nucfm.checkpoint import fingerprint
    from nucfm.resume import Parts, input_identity

    manifest = {**input_identity(genome.path), "region": [genome.resolve(chrom), start, end], "window": window,
                "center": center, "step": step, "model_fingerprint": fingerprint(model), "windows": len(seqs),
                "batch_size": batch_size}
    parts = Parts(outdir, manifest, suffix=".npy", restart=restart)
    parts.prepare()
    with progress_bar(total=len(seqs), unit="window", enabled=progress, desc="embed") as bar:
        emb = window_embeddings(model, seqs, center, batch_size=batch_size, progress=bar, parts=parts)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with atomic_path(outdir / "embeddings.npz") as tmp:  # written first: the costly part, kept for re-analysis
        np.savez_compressed(tmp, chrom=np.array(genome.resolve(chrom)), start=centres, end=centres + center,
                            embedding=emb, model=np.array(model_name))
    parts.remove()
    reps = {"model": emb,
            f"kmer{kmer}_center": gc.kmer_profiles([s[a : a + center] for s in seqs], kmer),
            f"kmer{kmer}_window": gc.kmer_profiles(seqs, kmer)}
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    maps, metrics = {}, []
    with threadpool_limits(limits=torch.get_num_threads()):  # BLAS (PCA, the probe) on --threads, as torch
        for name, x in reps.items():
            log.info("%s: %d windows x %d features: UMAP, Leiden, linear probe", name, *x.shape)
            xy, cl = gc.cluster_map(x, n_neighbors=n_neighbors, resolution=resolution, seed=seed)
            maps[name] = (xy, cl)
            metrics.append({"representation": name, "features": int(x.shape[1]), "clusters": int(cl.max() + 1),
                            **gc.agreement(cl, classes),
                            **gc.linear_probe(x, classes, seed=seed, groups=centres // block)})
    return _write(outdir, chrom, centres, center, classes, frac, maps, metrics, genome.resolve(chrom),
                  {"model": model_name, "region": f"{chrom}:{start + 1}-{end}", "window": window, "center": center,
                   "step": step, "resolution": resolution, "n_neighbors": n_neighbors, "kmer": kmer, "seed": seed,
                   "block": block,
                   "gff": str(gff), "windows": len(centres), "windows_left_out_mostly_n": left_out,
                   "class_counts": {REGION_CLASSES[k]: int((classes == k).sum()) for k in range(len(REGION_CLASSES))}})


def _write(outdir, chrom, centres, center, classes, frac, maps, metrics, contig, settings) -> dict:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    names = list(REGION_CLASSES)
    table = {"chrom": contig, "start": centres, "end": centres + center,
             "class": [names[k] for k in classes], "class_fraction": np.round(frac, 4)}
    for name, (xy, cl) in maps.items():
        table[f"cluster_{name}"] = cl
        table[f"umap1_{name}"], table[f"umap2_{name}"] = np.round(xy[:, 0], 4), np.round(xy[:, 1], 4)
    atomic_write_text(outdir / "windows.tsv", pd.DataFrame(table).to_csv(sep="\t", index=False))
    comp = pd.concat([gc.composition(cl, classes, names).assign(representation=name)
                      for name, (_, cl) in maps.items()])
    comp = comp[["representation", "cluster", "class", "n", "fraction"]]
    atomic_write_text(outdir / "composition.tsv", comp.to_csv(sep="\t", index=False, float_format="%.4f"))
    flat = pd.DataFrame([{k: v for k, v in m.items() if not isinstance(v, list)} for m in metrics])
    atomic_write_text(outdir / "metrics.tsv", flat.to_csv(sep="\t", index=False, float_format="%.4f"))
    summary = {**settings, "metrics": metrics}
    atomic_write_text(outdir / "metrics.json", json.dumps(summary, indent=1) + "\n")
    title = (f"{settings['model'] or 'model'} on {settings['region']}: {len(centres):,} windows "
             f"(centre {center} bp of {settings['window']} bp, both strands); "
             f"Leiden resolution {settings['resolution']}")
    gc.plot_clusters(maps, classes, names, outdir / "clusters", title=title)
    return summary
