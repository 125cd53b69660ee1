"""Contact (3D closeness) benchmark on SPOT-RNA-2D TS1 (63 PDB chains), one run, same metric.

Rows (top-L/k precision, long range |i-j| >= 24 the headline, medium 12-23 beside it; per chain
then averaged over the chains with a long-range contact, plus pooled; ``nucfm.metrics``):

* random ranking — the expected precision of a uniformly random order (contact density of the
  range; exact expectation, no sampling);
* ViennaRNA bpp — pairs ranked by RNAfold -p base-pair probability (Turner 2004);
* head, scratch — the pair head (8 blocks x 24 channels) on one-hot + bpp (three energy sets),
  random init, trained on TR, checkpoint chosen on VL (``nucfm train-ss --task contact``);
* head + LM — the same plus embeddings of the shipped LM ``nucfm-rna-t4-2M-rfam`` (scratch);
* head, transfer — the same as "scratch" initialised from the shipped secondary-structure head
  ``nucfm-ss-res8x24-vienna3-bprna`` (RNA-FM's transfer from SS to contacts);
* oracle — the known contacts ranked first: the ceiling of each cut-off (< 1 where a chain
  has fewer contacts in range than predictions).

Trained rows get the same budget (``--minutes``, or ``--steps`` optimizer steps: fairer on a
shared machine), one thread each; an existing finished run directory may stand for a row
(``--reuse transfer=RUN``). Wall time per row: training plus TS1
prediction, or the baseline's own computation.

    python bench/contacts.py --minutes 15 --train-only scratch &   # trained rows: parallel processes
    python bench/contacts.py --minutes 15 --train-only lm &
    python bench/contacts.py --reuse scratch=runs/bench-contacts/scratch --reuse lm=runs/bench-contacts/lm \
        --reuse transfer=RUN_OF_THE_SHIPPED_MODEL --shipped nucfm-contact-res8x24-vienna3-spot2d \
        -o bench/results/contacts_ts1.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nucfm.metrics import CONTACT_RANGES, average_contact_scores, range_candidates, score_contacts

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "contact"
FEATURES = "onehot,bpp,bpp-langdon2018,bpp-andronescu2007"
TRAIN_ROWS = {
    "head, scratch (one-hot + bpp)": ("scratch", {}),
    "head + LM nucfm-rna-t4-2M-rfam (scratch)": ("lm", {"lm": "nucfm-rna-t4-2M-rfam"}),
    "head, transfer from nucfm-ss-res8x24-vienna3-bprna": ("transfer", {"init_from": "nucfm-ss-res8x24-vienna3-bprna"}),
}


def expected_random(recs) -> dict:
    """Per chain and key, (expected hits, n) of a random order: n * density of the range."""
    out = []
    for r in recs:
        L, row = len(r.seq), {}
        ref = set(r.contacts)
        for name in ("long", "medium"):
            i, j = range_candidates(L, CONTACT_RANGES[name])
            pos = sum((int(a), int(b)) in ref for a, b in zip(i, j))
            for k in (10, 5, 2, 1):
                n = min(max(1, L // k), len(i))
                row[f"{name}_L/{k}"] = (n * pos / len(i), n) if pos else None
        out.append(row)
    return out


def scored(recs, maps) -> dict:
    return average_contact_scores([score_contacts(m, r.contacts, len(r.seq)) for r, m in zip(recs, maps)])


def train_row(key: str, extra: dict, args) -> Path:
    from nucfm.train.structure import TrainStructureConfig, train_structure

    cfg = TrainStructureConfig.from_dict({
        "task": "contact", "train": str(args.data / "TR.jsonl.gz"), "valid": str(args.data / "VL.jsonl.gz"),
        "output": str(args.runs / key), "lm": None, "features": FEATURES, "blocks": 8, "channels": 24,
        "crop": 160, "lr": 1e-3, "threads": 1, "eval_every": 40,
        "max_minutes": 0 if args.steps else args.minutes, "max_steps": args.steps or 100_000,
        "description": f"bench/contacts.py row {key}"} | extra)
    train_structure(cfg)
    return args.runs / key


def model_row(run: Path, recs) -> tuple[dict, float, float]:
    from nucfm.checkpoint.structure import load_structure_model

    summary = json.loads((run / "summary.json").read_text())
    model = load_structure_model(run / "best")
    t = time.time()
    maps = model.predict_probs([r.seq for r in recs])
    return scored(recs, maps), summary["train_minutes"] * 60, time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-contacts"))
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget of each trained row")
    ap.add_argument("--steps", type=int, default=0,
                    help="train each row for this many steps instead (no time limit; fair on a shared machine)")
    ap.add_argument("--reuse", action="append", default=[], metavar="ROW=RUN",
                    help="use a finished run directory for a trained row (scratch, lm, transfer)")
    ap.add_argument("--train-only", default=None, metavar="ROW",
                    help="only train this row's run (scratch, lm, transfer) and exit (rows in parallel processes)")
    ap.add_argument("--shipped", default=None, help="also score this contact model (name or directory)")
    ap.add_argument("-o", "--output", type=Path, default=Path("bench/results/contacts_ts1.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from nucfm.data.structure_features import vienna_bpp
    from nucfm.io.contacts import read_contacts

    if args.train_only:
        train_row(args.train_only, next(extra for key, extra in TRAIN_ROWS.values() if key == args.train_only), args)
        return
    recs = read_contacts(args.data / "TS1.jsonl.gz")
    reuse = dict(x.split("=", 1) for x in args.reuse)
    rows = []

    def add(name, metrics, seconds, **more):
        rows.append({"method": name, "wall_seconds": round(seconds, 1), **more, "metrics": metrics})
        m = metrics["long_L/5"]
        print(f"{name:55s} long L/5 {m['precision']:.3f} (pooled {m['pooled']:.3f})  {seconds:7.1f} s", flush=True)

    t = time.time()
    add("random ranking (expected)", average_contact_scores(expected_random(recs)), time.time() - t)
    t = time.time()
    add("ViennaRNA bpp ranking (RNAfold -p, Turner 2004)", scored(recs, [vienna_bpp(r.seq.upper().replace("T", "U"))
                                                                     for r in recs]), time.time() - t)
    for name, (key, extra) in TRAIN_ROWS.items():
        run = Path(reuse[key]) if key in reuse else train_row(key, extra, args)
        metrics, train_s, predict_s = model_row(run, recs)
        summary = json.loads((run / "summary.json").read_text())
        add(name, metrics, train_s + predict_s, train_seconds=round(train_s, 1), predict_seconds=round(predict_s, 1),
            run=str(run), steps=summary["steps"], best_step=summary["best_step"], valid_score=summary["valid_score"])
    if args.shipped:
        from nucfm.checkpoint.structure import load_structure_model

        t = time.time()
        add(f"shipped {args.shipped}", scored(recs, load_structure_model(args.shipped).predict_probs(
            [r.seq for r in recs])), time.time() - t)
    oracle = []
    for r in recs:
        m = np.zeros((len(r.seq), len(r.seq)))
        for i, j in r.contacts:
            m[i, j] = 1
        oracle.append(m)
    t = time.time()
    add("oracle (known contacts ranked first)", scored(recs, oracle), time.time() - t)
    doc = {"test_set": str(args.data / "TS1.jsonl.gz"), "chains": len(recs),
           "budget_per_trained_row": f"{args.steps} steps" if args.steps else f"{args.minutes} minutes",
           "threads": 1, "rows": rows}
    from nucfm.paths import atomic_write_text

    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
