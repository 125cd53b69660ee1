"""Per-residue HDF5 layouts at scale: write speed, size and random-access read speed of
``records`` (one dataset per record) and ``concat`` (one compressed array + offsets).

Records of ``--length`` residues with ``--dim`` features are written through
:class:`nucfm.io.embeddings.EmbeddingWriter` in chunks of ``--chunk`` records (as ``nucfm embed``
merges them), then ``--reads`` records are read back in random order with
:func:`nucfm.open_embeddings` (a fresh process-level open, cold HDF5 chunk cache). The values are
smooth random walks along the residues (real embeddings change slowly along a sequence), so the
compressed size is indicative, not exact.

    python bench/embedding_layouts.py --records 1000000 --dim 16
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def chunk_arrays(rng, n: int, length: int, dim: int) -> list[np.ndarray]:
    base = rng.normal(size=(n, 1, dim)).astype(np.float32)
    walk = np.cumsum(rng.normal(scale=0.05, size=(n, length, dim)), axis=1).astype(np.float32)
    return list(base + walk)  # (length, dim) each


def measure(layout: str, args, path: Path) -> dict:
    from nucfm import open_embeddings
    from nucfm.io.embeddings import EmbeddingWriter

    pool = chunk_arrays(np.random.default_rng(0), args.chunk, args.length, args.dim)  # made once: time the writes
    t = time.perf_counter()
    with EmbeddingWriter(path, pooled=False, dim=args.dim, layout=layout) as w:
        for s in range(0, args.records, args.chunk):
            k = min(args.chunk, args.records - s)
            w.add([f"r{s + i}" for i in range(k)], pool[:k])
    write_s = time.perf_counter() - t
    order = np.random.default_rng(1).integers(0, args.records, args.reads)
    t = time.perf_counter()
    with open_embeddings(path) as f:
        open_s = time.perf_counter() - t
        t = time.perf_counter()
        total = sum(f[int(i)].shape[0] for i in order)
        read_s = time.perf_counter() - t
    assert total == args.reads * args.length
    size = path.stat().st_size
    path.unlink()
    raw = args.records * args.length * args.dim * 4
    return {"layout": layout, "records": args.records, "write_s": round(write_s, 1),
            "write_records_per_s": round(args.records / write_s), "file_mb": round(size / 2**20, 1),
            "size_vs_raw_float32": round(size / raw, 3), "open_s": round(open_s, 2),
            "random_reads": args.reads, "read_ms_per_record": round(1000 * read_s / args.reads, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--length", type=int, default=60)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--layouts", default="concat,records")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embedding_layouts.json")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    for layout in args.layouts.split(","):
        row = {**measure(layout, args, args.workdir / f"layout_{layout}.h5"), "length": args.length, "dim": args.dim}
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if (r["layout"], r["records"], r["dim"]) != (layout, args.records, args.dim)] + [row]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
