"""Compare decoding choices on validation probabilities (VL0): greedy vs maximum-weight matching,
thresholds, canonical-only, pseudoknots kept or removed. Macro F1 per choice.

    python bench/ss_decoding.py --probs RUN/valid_probs.npz --valid ../shared/data/ss/bprna/VL0.dbn

``valid_probs.npz`` is written by ``nucfm train-ss`` (arrays in the order of the validation
file). ``--bpp`` scores ViennaRNA bpp maps instead (the thermodynamic prior decoded the same way).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np


def main(argv=None):
    from nucfm.io.structure import read_structures
    from nucfm.metrics import macro_average
    from nucfm.models.config import DecodeOptions
    from nucfm.tasks.structure import decode_structure, score_structures

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probs", default=None)
    ap.add_argument("--bpp", action="store_true")
    ap.add_argument("--valid", default="../shared/data/ss/bprna/VL0.dbn")
    ap.add_argument("--thresholds", default="0.3,0.4,0.5,0.6")
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args(argv)
    recs = [r for r in read_structures(args.valid) if r.seq]
    if args.bpp:
        from nucfm.train.feature_cache import bpp_maps

        probs = bpp_maps([r.seq for r in recs])
    else:
        z = np.load(args.probs)
        probs = [z[f"arr_{k}"].astype(np.float32) for k in range(len(z.files))]
    assert len(probs) == len(recs), "probabilities and validation records differ in number"
    rows = []
    grid = itertools.product(["greedy", "matching"], [float(t) for t in args.thresholds.split(",")],
                             [False, True], [True, False])
    for method, t, canonical, pk in grid:
        o = DecodeOptions(method=method, threshold=t, canonical_only=canonical, pseudoknots=pk)
        t0 = time.perf_counter()
        s = macro_average(score_structures([decode_structure(p, r.seq, o) for p, r in zip(probs, recs)], recs))
        rows.append(o.to_dict() | {"f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
                                   "ms_per_seq": 1000 * (time.perf_counter() - t0) / len(recs)})
        print(f"{method:8s} t={t:.2f} canonical={canonical!s:5s} pseudoknots={pk!s:5s} "
              f"F1 {s['f1']:.4f} P {s['precision']:.4f} R {s['recall']:.4f} {rows[-1]['ms_per_seq']:.1f} ms/seq",
              flush=True)
    best = max(rows, key=lambda r: r["f1"])
    print("best:", json.dumps(best))
    if args.output:
        with open(args.output, "w") as fh:
            json.dump({"rows": rows, "best": best}, fh, indent=2)


if __name__ == "__main__":
    main()
