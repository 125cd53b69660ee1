"""Ship a fine-tuned task model (``nucfm finetune`` run) as fp16 under ``src/nucfm/weights/NAME``
with a model card, and report the largest fp32 -> fp16 prediction change on the run's test set.

    python scripts/ship_task_model.py runs/bench-tasks/mrl/RUN src/nucfm/weights/NAME \
        --description "..." --command "nucfm finetune -c configs/tasks/utr-mrl.yaml ..."
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from nucfm.checkpoint import load_model
from nucfm.checkpoint.task import save_task_model
from nucfm.train.config import load_dict
from nucfm.train.finetune import FinetuneConfig
from nucfm.train.finetune_data import prepare

p = argparse.ArgumentParser()
p.add_argument("run")
p.add_argument("dest")
p.add_argument("--description", required=True)
p.add_argument("--command", required=True, help="the command that trained it (for the card)")
p.add_argument("--limit", type=int, default=500, help="test records for the fp16 check")
p.add_argument("--note", action="append", default=[], help="a further line for the card (e.g. the CV figure)")
args = p.parse_args()
torch.set_num_threads(1)
run, dest = Path(args.run), Path(args.dest)
summary = json.loads((run / "summary.json").read_text())
model = load_model(run / "best")
meta = {"kind": "task", "default": False, "description": args.description, "training": summary,
        "command": args.command}
save_task_model(model, dest, metadata=meta, dtype=torch.float16)
shipped = load_model(dest)
cfg = FinetuneConfig.from_dict(load_dict(run / "config.yaml"))
seqs = prepare(cfg).test.data.seqs[: args.limit]
a, b = np.stack(model.predict(seqs)), np.stack(shipped.predict(seqs))
diff = float(np.abs(a - b).max())
t = summary["test"]
lines = [f"# {dest.name}", "", args.description, "",
         f"* task: {model.config.task}; labels: {', '.join(model.config.labels)}",
         f"* backbone: {model.config.backbone or 'none (one-hot)'} ({model.config.backbone_mode}); "
         f"inputs: {', '.join(model.config.inputs)}; head: {json.dumps(model.config.head)}",
         f"* data: {json.dumps(cfg.train)}; test: {json.dumps(cfg.test)}; split: {cfg.split} "
         f"(valid {cfg.valid_fraction}, test {cfg.test_fraction if not cfg.test else 'file'}, seed {cfg.seed})",
         f"* records: {summary['train_records']} train, {summary['valid_records']} valid, "
         f"{summary['test_records']} test; {summary['epochs']} epochs, {summary['train_minutes']} min on 1 CPU thread",
         "* test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in t.items() if isinstance(v, float))]
if summary.get("test_unseen"):
    lines.append("* test records whose sequence is not in the training data: " + ", ".join(
        f"{k} {v:.4f}" for k, v in summary["test_unseen"].items() if isinstance(v, float)) +
        f" (n = {summary['test_unseen']['n']})")
lines += [f"* {n}" for n in args.note]
lines += [f"* weights fp16; largest prediction change fp32 -> fp16 on {len(seqs)} test records: {diff:.2e}",
          "", "Trained with:", "", "```", args.command, "```", "",
          f"Use: `nucfm predict -m {dest.name} -i in.fa -o out.tsv` or "
          f"`nucfm.load_model('{dest.name}').predict(seqs)`.", ""]
(dest / "MODEL_CARD.md").write_text("\n".join(lines))
print(json.dumps({"dest": str(dest), "fp16_max_abs_diff": diff, "test": t}, indent=1, default=float))
