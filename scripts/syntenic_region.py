"""Find the region of a relative's genome that is syntenic to a held-out block of the reference,
so that pretraining on the relative does not leak the held-out block (issue 26's DNA data).

Method: every 24-mer (2-bit packed) of the relative's records is sorted once; 24-mers sampled every
``--step`` bases along the held-out block, upper-cased, on both strands, are looked up; a 24-mer that
occurs exactly once in the relative is an anchor. The anchors' positions concentrate on one record;
the syntenic region is the span between the ``--quantile`` and ``1 - --quantile`` anchor positions
on that record, widened by ``--margin`` bases on each side. Prints JSON (record, 1-based region,
anchor counts) to stdout.

    python scripts/syntenic_region.py --reference ../shared/data/genome/arabidopsis/TAIR10_chr1.fna.gz \\
        --block NC_003070.9:28000001-30427671 --relative ../shared/data/genome/arabidopsis/Alyrata_chr1_chr2.fna.gz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nucfm.io.fasta import read_fasta
from nucfm.io.genome import parse_region

K = 24
CODE = np.full(256, 255, np.uint8)
for i, c in enumerate(b"ACGT"):
    CODE[c] = i
    CODE[c + 32] = i  # lower case


def kmers(seq: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Packed forward 24-mers of ``seq`` and a mask of those without a non-ACGT letter."""
    codes = CODE[np.frombuffer(seq, np.uint8)]
    bad = codes == 255
    c = np.where(bad, 0, codes).astype(np.int64)
    n = len(c) - K + 1
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    out = np.zeros(n, np.int64)
    for j in range(K):
        out = (out << 2) | c[j : j + n]
    badc = np.concatenate([[0], np.cumsum(bad)])
    ok = (badc[K:] - badc[:-K]) == 0
    return out, ok


def revcomp_kmer(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    y = x.copy()
    for _ in range(K):
        out = (out << 2) | (3 - (y & 3))
        y >>= 2
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", required=True)
    p.add_argument("--block", required=True, help="CHROM:START-END, 1-based inclusive")
    p.add_argument("--relative", required=True)
    p.add_argument("--step", type=int, default=7)
    p.add_argument("--quantile", type=float, default=0.01)
    p.add_argument("--margin", type=int, default=200_000)
    a = p.parse_args()
    chrom, start, end = parse_region(a.block)  # 0-based half-open
    block = next(r.seq for r in read_fasta(a.reference) if r.id == chrom)[start:end].encode()
    q, ok = kmers(block)
    q = q[ok][:: a.step]
    names, lengths, keys, recs, pos = [], [], [], [], []
    for i, r in enumerate(read_fasta(a.relative)):
        km, good = kmers(r.seq.encode())
        idx = np.nonzero(good)[0]
        names.append(r.id)
        lengths.append(len(r.seq))
        keys.append(km[idx])
        recs.append(np.full(len(idx), i, np.int8))
        pos.append(idx.astype(np.int64))
    keys, recs, pos = np.concatenate(keys), np.concatenate(recs), np.concatenate(pos)
    order = np.argsort(keys, kind="stable")
    keys, recs, pos = keys[order], recs[order], pos[order]
    hits_rec, hits_pos = [], []
    for query in (q, revcomp_kmer(q)):
        lo = np.searchsorted(keys, query, "left")
        hi = np.searchsorted(keys, query, "right")
        unique = (hi - lo) == 1
        hits_rec.append(recs[lo[unique]])
        hits_pos.append(pos[lo[unique]])
    hr, hp = np.concatenate(hits_rec), np.concatenate(hits_pos)
    per_rec = np.bincount(hr, minlength=len(names))
    best = int(per_rec.argmax())
    on = np.sort(hp[hr == best])
    lo_q, hi_q = np.quantile(on, [a.quantile, 1 - a.quantile]).astype(int)
    s, e = max(0, lo_q - a.margin), min(lengths[best], hi_q + K + a.margin)
    print(json.dumps({"block": a.block, "relative": a.relative, "queries": int(len(q)),
                      "unique_anchors_per_record": dict(zip(names, per_rec.tolist())),
                      "record": names[best], "anchor_span_0based": [int(lo_q), int(hi_q)],
                      "region": f"{names[best]}:{s + 1}-{e}", "margin": a.margin}, indent=1))


if __name__ == "__main__":
    main()
