"""Cached per-sequence inputs for training on frozen features: ViennaRNA bpp maps and language-
model embeddings.

Each cache is one ``.npz`` per (sequences, feature, model) keyed by a hash of the sequences and,
for embeddings, the model's weights fingerprint and layer, under ``$NUCFM_HOME/ss-cache``, so
reruns and resumed runs skip the expensive part. bpp maps are stored sparse (entries > 1e-3,
float16).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nucfm import interrupts, progress
from nucfm.checkpoint import fingerprint
from nucfm.data.structure_features import bpp_to_sparse, feature_pool, sparse_to_bpp, vienna_bpp
from nucfm.paths import atomic_path
from nucfm.paths import cache_dir as _cache_dir

log = logging.getLogger("nucfm")


def cache_dir() -> Path:
    return _cache_dir("ss-cache")


def _key(seqs: Sequence[str], tag: str) -> str:
    h = hashlib.sha1(tag.encode())
    for s in seqs:
        h.update(s.encode() + b"\n")
    return h.hexdigest()[:16]


def _sparse_bpp(job: tuple[str, str]):
    seq, params = job
    return bpp_to_sparse(vienna_bpp(seq, params))


def bpp_maps(seqs: Sequence[str], workers: int = 1, params: str = "Turner2004") -> list[np.ndarray]:
    """(L, L) float32 ViennaRNA bpp maps of ``seqs`` under energy parameters ``params``,
    computed once and cached."""
    tag = "bpp-v1" if params == "Turner2004" else f"bpp-v1-{params}"
    path = cache_dir() / f"bpp-{_key(seqs, tag)}.npz"
    if not path.exists():
        log.info("computing ViennaRNA bpp (%s) for %d sequences (cache %s)", params, len(seqs), path)
        jobs = [(s, params) for s in seqs]
        sparse = _mapped(_sparse_bpp, jobs, workers, f"bpp {params}", chunksize=16 if workers > 1 else 1)
        counts = np.array([len(v) for _, v in sparse], dtype=np.int64)
        idx = np.concatenate([i for i, _ in sparse]) if len(sparse) else np.zeros((0, 2), np.int16)
        val = np.concatenate([v for _, v in sparse]) if len(sparse) else np.zeros(0, np.float16)
        with atomic_path(path) as tmp:
            np.savez(tmp, counts=counts, idx=idx, val=val)
    z = np.load(path)
    offsets = np.concatenate([[0], np.cumsum(z["counts"])])
    idx, val = z["idx"].astype(np.int64), z["val"]
    return [sparse_to_bpp(idx[a:b], val[a:b], len(s)) for s, a, b in zip(seqs, offsets[:-1], offsets[1:])]


def lm_embeddings(model, seqs: Sequence[str], layer: int = -1) -> list[np.ndarray]:
    """(L, D) float16 frozen embeddings of ``seqs`` from ``model`` (layer ``layer``), cached
    under the fingerprint of the model's weights."""
    tag = fingerprint(model)
    path = cache_dir() / f"emb-{_key(seqs, f'{tag}|{layer}')}.npz"
    if not path.exists():
        log.info("embedding %d sequences with model %s (cache %s)", len(seqs), tag, path)
        with progress.bar(total=sum(map(len, seqs)), unit="nt", unit_scale=True, desc="embed") as bar:
            embs = model.embed(list(seqs), layer=layer, progress=bar)
        counts = np.array([len(e) for e in embs], dtype=np.int64)
        with atomic_path(path) as tmp:
            np.savez(tmp, counts=counts, emb=np.concatenate(embs).astype(np.float16))
    z = np.load(path)
    offsets = np.concatenate([[0], np.cumsum(z["counts"])])
    emb = z["emb"]
    return [emb[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def _unpaired(seq: str) -> np.ndarray:
    from nucfm.data.task_inputs import unpaired

    return unpaired(seq)[:, 0]


def unpaired_probs(seqs: Sequence[str]) -> list[np.ndarray]:
    """(L,) float16 ViennaRNA (Turner 2004) unpaired probabilities of ``seqs``, cached."""
    path = cache_dir() / f"unpaired-{_key(seqs, 'unpaired-v1')}.npz"
    if not path.exists():
        log.info("computing ViennaRNA unpaired probabilities for %d sequences (cache %s)", len(seqs), path)
        vals = _mapped(_unpaired, seqs, 1, "unpaired", chunksize=16)
        counts = np.array([len(v) for v in vals], dtype=np.int64)
        with atomic_path(path) as tmp:
            np.savez(tmp, counts=counts, p=np.concatenate(vals).astype(np.float16) if vals else np.zeros(0))
    z = np.load(path)
    offsets = np.concatenate([[0], np.cumsum(z["counts"])])
    p = z["p"]  # once: every z["p"] reads and decompresses the whole array again
    return [p[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def _mapped(fn, items: list, workers: int, desc: str, chunksize: int = 1) -> list:
    """``[fn(x) for x in items]`` with a progress bar (unit: sequences), in ``workers`` worker
    processes when more than one is asked for or when an interrupt must stop ViennaRNA within a
    second (:func:`nucfm.interrupts.armed`: C code holding the interpreter cannot be interrupted
    in this process), else here."""
    out = []
    with progress.bar(total=len(items), unit="seq", desc=desc) as bar:
        if workers > 1 or interrupts.armed():
            with feature_pool(workers) as pool:
                for r in pool.imap(fn, items, chunksize=chunksize):
                    out.append(r)
                    bar.update(1)
        else:
            for x in items:
                out.append(fn(x))
                bar.update(1)
    return out
