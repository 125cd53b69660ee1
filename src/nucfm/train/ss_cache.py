"""Cached per-sequence inputs for structure training: ViennaRNA bpp maps and frozen LM embeddings.

Each cache is one ``.npz`` per (file, feature, model) keyed by a hash of the sequences, under
``$NUCFM_HOME/ss-cache`` (default ``~/.cache/nucfm/ss-cache``), so reruns and resumed runs skip
the expensive part. bpp maps are stored sparse (entries > 1e-3, float16).
"""

from __future__ import annotations

import hashlib
import logging
import os
from multiprocessing import Pool
from pathlib import Path
from typing import Sequence

import numpy as np

from nucfm.checkpoint.registry import home
from nucfm.tasks.structure import bpp_to_sparse, sparse_to_bpp, vienna_bpp

log = logging.getLogger("nucfm")


def cache_dir() -> Path:
    d = home() / "ss-cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


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
        if workers > 1:
            with Pool(workers) as pool:
                sparse = pool.map(_sparse_bpp, jobs, chunksize=16)
        else:
            from tqdm.auto import tqdm

            sparse = [_sparse_bpp(j) for j in tqdm(jobs, desc=f"bpp {params}", unit="seq", mininterval=5)]
        counts = np.array([len(v) for _, v in sparse], dtype=np.int64)
        idx = np.concatenate([i for i, _ in sparse]) if len(sparse) else np.zeros((0, 2), np.int16)
        val = np.concatenate([v for _, v in sparse]) if len(sparse) else np.zeros(0, np.float16)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, counts=counts, idx=idx, val=val)
        os.replace(tmp, path)
    z = np.load(path)
    offsets = np.concatenate([[0], np.cumsum(z["counts"])])
    idx, val = z["idx"].astype(np.int64), z["val"]
    return [sparse_to_bpp(idx[a:b], val[a:b], len(s)) for s, a, b in zip(seqs, offsets[:-1], offsets[1:])]


def lm_embeddings(model, model_tag: str, seqs: Sequence[str], layer: int = -1) -> list[np.ndarray]:
    """(L, D) float16 frozen embeddings of ``seqs`` from ``model`` (layer ``layer``), cached
    under the model's tag (its registered name or path)."""
    from nucfm.tasks.structure import residue_embeddings

    path = cache_dir() / f"emb-{_key(seqs, f'{model_tag}|{layer}')}.npz"
    if not path.exists():
        log.info("embedding %d sequences with %s (cache %s)", len(seqs), model_tag, path)
        embs = residue_embeddings(model, list(seqs), layer=layer)
        counts = np.array([len(e) for e in embs], dtype=np.int64)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, counts=counts, emb=np.concatenate(embs).astype(np.float16))
        os.replace(tmp, path)
    z = np.load(path)
    offsets = np.concatenate([[0], np.cumsum(z["counts"])])
    emb = z["emb"]
    return [emb[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
