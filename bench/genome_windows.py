"""Genome-window embedding (``genome-clusters``) against the same model's variant scoring
(``vep``), in one run: windows/s and genome positions/s.

A GPN-shaped random ConvNet (GPN-brassicales: 25 layers, 512 wide, kernel 9, dilations 1..32;
``--layers``/``--hidden`` shrink it) on a random genome. Three timings, same windows:

* ``windows_full``: the whole 512-bp window through the model (:func:`nucfm.models.embedding.embed_ids`),
  both strands, centre averaged (genome-clusters before the receptive-cone path);
* ``windows_cone``: :func:`nucfm.tasks.genome_clusters.centre_embeddings`, only the receptive
  cone of the centre bases computed (``ConvNet.hidden_range``, as ``vep`` does for one site);
* ``vep_sites``: :func:`nucfm.tasks.variants.site_logits` at one site per window centre (GPN's
  rule: the masked site, both strands, its receptive cone only).

A window covers ``--center`` new positions (genome-clusters' default step), a vep site one.

    python bench/genome_windows.py --windows 64 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--center", type=int, default=100)
    ap.add_argument("--layers", type=int, default=25)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "genome_windows.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import tempfile

    from nucfm.io.genome import Genome
    from nucfm.models import ConvNet, ConvNetConfig
    from nucfm.models.embedding import embed_ids
    from nucfm.tasks.genome_clusters import centre_embeddings
    from nucfm.tasks.variants import encode_windows, site_logits

    torch.manual_seed(0)
    model = ConvNet(ConvNetConfig(num_layers=args.layers, hidden_size=args.hidden)).eval()
    rng = np.random.default_rng(0)
    n_bp = args.windows * args.center + 2 * args.window
    tmp = Path(tempfile.mkdtemp())
    (tmp / "g.fa").write_text(">chr1\n" + "".join(rng.choice(list("ACGT"), n_bp)) + "\n")
    genome = Genome(tmp / "g.fa")
    W, c, a = args.window, args.center, (args.window - args.center) // 2
    starts = [args.window + k * c - a for k in range(args.windows)]
    fwd = encode_windows(model, [genome.fetch("chr1", s, s + W) for s in starts])
    rev = model.alphabet.complement_ids()[fwd[:, ::-1]]

    def full():
        hidden = embed_ids(model, list(fwd) + list(rev), batch_tokens=args.batch_size * W)
        B = len(fwd)
        return np.stack([(hidden[i][a : a + c].mean(0) + hidden[B + i][W - a - c : W - a].mean(0)) / 2
                         for i in range(B)])

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    ref, t_full = timed(full)
    cone, t_cone = timed(lambda: centre_embeddings(model, fwd, rev, a, c, -1, args.batch_size))
    sites = [("chr1", s + a) for s in starts]
    _, t_vep = timed(lambda: site_logits(model, genome, sites, window=W, batch_size=args.batch_size))
    res = {"model": {"layers": args.layers, "hidden": args.hidden}, "threads": args.threads, "window": W,
           "center": c, "windows": args.windows, "max_abs_diff_cone_vs_full": float(np.abs(cone - ref).max()),
           "windows_full": {"s": round(t_full, 2), "windows_per_s": round(args.windows / t_full, 2),
                            "positions_per_s": round(args.windows * c / t_full, 1)},
           "windows_cone": {"s": round(t_cone, 2), "windows_per_s": round(args.windows / t_cone, 2),
                            "positions_per_s": round(args.windows * c / t_cone, 1)},
           "vep_sites": {"s": round(t_vep, 2), "sites_per_s": round(args.windows / t_vep, 2),
                         "positions_per_s": round(args.windows / t_vep, 2)}}
    print(json.dumps(res, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
