"""Export a pretraining checkpoint as a shipped nucfm model (fp16) and report fp32 vs fp16.

    python scripts/ship_model.py runs/rna-rfam/final src/nucfm/weights/NAME --run runs/rna-rfam \
        --kind rna --description "..."
"""

import argparse
import json
from pathlib import Path

import torch

from nucfm.train.export import compare_precision, export_model

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("dest")
p.add_argument("--run", required=True, help="the training run directory (for data/ and config)")
p.add_argument("--kind", required=True, choices=["rna", "dna"])
p.add_argument("--description", required=True)
p.add_argument("--not-default", action="store_true")
p.add_argument("--threads", type=int, default=1)
args = p.parse_args()
torch.set_num_threads(args.threads)
run = Path(args.run)
prep = json.loads((run / "data" / "prep.json").read_text())
meta = {"kind": args.kind, "default": not args.not_default, "description": args.description,
        "training_checkpoint": str(args.checkpoint)}
export_model(args.checkpoint, args.dest, run / "data" / "counts.npz", meta)
res = compare_precision(args.checkpoint, args.dest, run / "data", args.kind, window=prep.get("window", 512))
print(json.dumps(res, indent=1))
