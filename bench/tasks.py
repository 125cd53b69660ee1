"""RNA function tasks: one table per task, the same head on four inputs, wall time per row.

Rows: the one-hot baseline (no backbone), the shipped RNA LM (``nucfm-rna-t4-2M-rfam``) frozen,
the same LM fine-tuned (LoRA by default, ``--finetune full``), and a randomly initialised LM of
the same shape, frozen (what pretraining adds). ``--backbone rna-fm`` adds the official RNA-FM,
frozen, when its weights are on this machine. Published anchors are printed beside the rows.

Tasks (data under ../shared/data):

* ``mrl``: 5' UTR mean ribosome load, 80/10/10 split by seed; ``--cv`` adds 5-fold CV rows
  (the headline; R² = squared Pearson, as Optimus 5-Prime and Smart5UTR report it).
* ``nrc``: 13 ncRNA classes, 6,320 train / 2,600 test; accuracy and macro-F1 on all 2,600 and
  on the 2,253 test sequences that do not occur in the training file.
* ``rbp``: GraphProt RBP-24. Train on ``.train``, test on ``.ls`` where a training set exists;
  5-fold CV on ``.ls`` otherwise (reported separately). Every row twice: the sequences as given
  (site at a fixed position: a logistic regression on the 4 bases at each site edge already
  reaches a high AUROC, printed as ``edge-leak``) and with case removed and the site edges
  randomised (``site-random``, the number that measures binding).

``--structure`` adds two rows to every task: one-hot, and the frozen LM, each plus ViennaRNA
unpaired probabilities.

Each row is a ``nucfm finetune`` run under ``--runs`` (rerunning reuses finished rows).

    PYTHONPATH=src python bench/tasks.py --tasks mrl nrc --threads 1 -o bench/results/tasks.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DATA = Path("../shared/data")
LM = "nucfm-rna-t4-2M-rfam"
ANCHORS = {
    "mrl": "Optimus 5-Prime R² 0.79, Smart5UTR 0.81 (this 20k library); RNA-FM paper 0.875 (83k library)",
    "nrc": "accuracy: NCYPred 87.9 %, one-hot ResNet 88.3 %, fine-tuned RNA-FM 96.8 % (all 2,600)",
    "rbp": "GraphProt RBP-24 mean AUROC ~0.89 (GraphProt), ~0.93 (deep CNNs); PrismNet/RNA-FM use other data",
}
RBP_WITH_TRAIN = ["ALKBH5_Baltz2012", "C17ORF85_Baltz2012", "C22ORF28_Baltz2012", "CAPRIN1_Baltz2012",
                  "CLIPSEQ_ELAVL1", "PARCLIP_ELAVL1A", "PARCLIP_IGF2BP123", "PARCLIP_PUM2", "PARCLIP_QKI",
                  "PARCLIP_TAF15"]
RBP_LS_ONLY = ["CLIPSEQ_AGO2", "CLIPSEQ_SFRS1", "ICLIP_HNRNPC", "ICLIP_TDP43", "ICLIP_TIA1", "ICLIP_TIAL1",
               "PARCLIP_AGO1234", "PARCLIP_ELAVL1", "PARCLIP_EWSR1", "PARCLIP_FUS", "PARCLIP_HUR",
               "PARCLIP_MOV10_Sievers", "PTBv1", "ZC3H7B_Baltz2012"]


def task_configs(task: str, args) -> dict[str, dict]:
    """Base finetune config per task (the configs/tasks/*.yaml of each task)."""
    from nucfm.train.config import load_dict

    base = load_dict(Path(__file__).resolve().parents[1] / "configs" / "tasks" / f"{task}.yaml")
    base.update(threads=args.threads)
    if args.max_minutes:
        base.update(max_minutes=args.max_minutes)
    return base


def rows(args, random_lm: str) -> dict[str, dict]:
    """Row name -> config overrides (what differs between the rows of every task)."""
    out = {"one-hot": {"backbone": None},
           f"{LM} frozen": {"backbone": LM, "backbone_mode": "frozen"},
           f"{LM} {args.finetune}": {"backbone": LM, "backbone_mode": args.finetune, "max_epochs": args.ft_epochs,
                                          "max_minutes": args.ft_minutes},
           "random-init LM frozen": {"backbone": random_lm, "backbone_mode": "frozen"}}
    if args.structure:
        out["one-hot + unpaired"] = {"backbone": None, "extra_inputs": ["unpaired"]}
        out[f"{LM} frozen + unpaired"] = {"backbone": LM, "backbone_mode": "frozen", "extra_inputs": ["unpaired"]}
    from nucfm.checkpoint import registry

    if args.backbone == "rna-fm" and not registry.is_cached("rna-fm"):
        print("rna-fm: RNA-FM_pretrained.pth is not on this machine; its row is left out", flush=True)
    elif args.backbone == "rna-fm":
        out["rna-fm frozen"] = {"backbone": "rna-fm", "backbone_mode": "frozen", "head": {"lm_proj": 64}}
    return {k: v for k, v in out.items() if not args.rows or any(r in k for r in args.rows)}


def row_config(*parts: dict) -> dict:
    """A row's finetune config: the task's, then the row's overrides. LM rows read the LM instead
    of one-hot (other channels kept), so rows compare inputs; ``extra_inputs`` adds channels."""
    cfg = {k: v for part in parts for k, v in part.items()}
    cfg["inputs"] = list(cfg.get("inputs", [])) + list(cfg.pop("extra_inputs", []))
    if cfg.get("backbone"):
        cfg["inputs"] = ["lm"] + [f for f in cfg["inputs"] if f not in ("onehot", "lm")]
    return cfg


def run_row(cfg: dict, out: Path, force: bool, collect: bool = False) -> dict | None:
    """Run one finetune config (or reuse its finished summary); adds wall seconds. ``collect``:
    only read finished rows (None for a row that has not finished)."""
    from nucfm.train.finetune import FinetuneConfig, finetune

    done = out / "summary.json"
    if done.exists() and not force and (collect or (out / "wall.json").exists()):
        wall = json.loads((out / "wall.json").read_text()) if (out / "wall.json").exists() else {"wall_s": None}
        return json.loads(done.read_text()) | wall
    if collect:
        return None
    t0 = time.time()
    # an unfinished row resumes (e.g. rerun with a --max-minutes); --force starts it over
    summary = finetune(FinetuneConfig.from_dict({**cfg, "output": str(out)}), restart=force)
    wall = {"wall_s": round(time.time() - t0, 1)}
    (out / "wall.json").write_text(json.dumps(wall))
    return summary | wall


def random_backbone(runs: Path) -> str:
    """A randomly initialised LM of the shipped LM's shape (seed 0), saved once."""
    import torch

    from nucfm.checkpoint import build_model, read_config, resolve, save_model

    path = runs / "random-init-lm"
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        save_model(build_model(read_config(resolve(LM))["model"]), path)
    return str(path)


def bench_simple(task: str, args, random_lm: str) -> list[dict]:
    results = []
    for name, over in rows(args, random_lm).items():
        variants = [] if args.cv_only else [("split", {})]
        if task == "mrl" and (args.cv or args.cv_only) and ("frozen" in name or name.startswith("one-hot")):
            variants.append(("5-fold CV", {"split": "kfold", "max_epochs": args.cv_epochs,
                                           "patience": args.cv_patience}))
        for vname, vover in variants:
            cfg = row_config(task_configs("utr-mrl" if task == "mrl" else task, args), over, vover)
            slug = f"{name}-{vname}".replace(" ", "_").replace("/", "_")
            s = run_row(cfg, args.runs / task / slug, args.force, args.collect)
            if s is None:
                results.append({"row": name, "eval": vname, "missing": "not finished in the CPU budget"})
                continue
            test = s.get("test_mean") or s["test"]
            row = {"row": name, "eval": vname, "wall_s": s["wall_s"], "train_minutes": s["train_minutes"],
                   "epochs": s.get("epochs") or s.get("fold_epochs"),
                   "test": test}
            if s.get("test_unseen"):
                row["test_unseen"] = s["test_unseen"]
            if s.get("test_std"):
                row["test_std"] = s["test_std"]
            results.append(row)
            print(json.dumps(row, default=float), flush=True)
    return results


def edge_leak_auroc(pos, neg) -> float:
    """5-fold CV AUROC of a logistic regression on the 4 bases at each edge of the upper-case site."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from nucfm.data.task_inputs import onehot, site_span

    def feats(s):
        a, b = site_span(s) or (0, len(s))
        u = s.upper().replace("T", "U")
        return np.concatenate([onehot(u[max(a - 4, 0): a + 4].ljust(8, "N")).ravel(),
                               onehot(u[max(b - 4, 0): b + 4].ljust(8, "N")).ravel()])

    X = np.stack([feats(s) for s in pos + neg])
    y = np.array([1] * len(pos) + [0] * len(neg))
    return float(cross_val_score(LogisticRegression(max_iter=2000), X, y, cv=5, scoring="roc_auc").mean())


def site_length_auroc(pos, neg) -> float:
    """AUROC of the upper-case site's length alone: ~0.5 means the site-random windows (site +
    random flanks) carry no length signal either."""
    from sklearn.metrics import roc_auc_score

    from nucfm.data.task_inputs import site_span

    def n(s):
        a, b = site_span(s) or (0, len(s))
        return b - a

    return float(roc_auc_score([1] * len(pos) + [0] * len(neg), [n(s) for s in pos + neg]))


def bench_rbp(args, random_lm: str) -> list[dict]:
    from nucfm.io.fasta import read_fasta

    d = DATA / "rbp" / "graphprot_rbp24"
    results = []
    for exp in args.rbp:
        ls = {str(d / f"{exp}.ls.positives.fa.gz"): 1, str(d / f"{exp}.ls.negatives.fa.gz"): 0}
        has_train = exp in RBP_WITH_TRAIN
        split = ({"train": {str(d / f"{exp}.train.positives.fa.gz"): 1, str(d / f"{exp}.train.negatives.fa.gz"): 0},
                  "test": ls} if has_train else {"train": ls, "test": None, "split": "kfold",
                                                        "max_epochs": args.cv_epochs})
        pos = [r.seq for r in read_fasta(d / f"{exp}.ls.positives.fa.gz")]
        neg = [r.seq for r in read_fasta(d / f"{exp}.ls.negatives.fa.gz")]
        leak, length = edge_leak_auroc(pos, neg), site_length_auroc(pos, neg)
        variants = [(n, o, t) for n, o in rows(args, random_lm).items() for t in args.rbp_inputs]
        for name, over, transform in variants:
            cfg = row_config(task_configs("rbp", args), split, over, {"transform": transform})
            slug = f"{exp}-{name}-{transform}".replace(" ", "_")
            s = run_row(cfg, args.runs / "rbp" / slug, args.force, args.collect)
            if s is None:
                continue
            test = s.get("test_mean") or s["test"]
            row = {"experiment": exp, "protocol": "train->ls" if has_train else "5-fold CV on ls", "row": name,
                   "input": transform, "wall_s": s["wall_s"], "train_minutes": s["train_minutes"],
                   "auroc": test["auroc"], "auprc": test["auprc"],
                   "edge_leak_auroc": leak, "site_length_auroc": length}
            results.append(row)
            print(json.dumps(row, default=float), flush=True)
    return results


def print_table(task: str, results: list[dict]) -> None:
    print(f"\n== {task} ==   anchors: {ANCHORS[task]}")
    for r in results:
        if "missing" in r:
            print(f"{r['row']:34s} {r.get('eval', ''):10s} -- {r['missing']}")
            continue
        t = r.get("test", r)
        if task == "mrl":
            print(f"{r['row']:34s} {r['eval']:10s} R2(pearson²) {t['r2_pearson']:.3f}  R2(CoD) {t['r2']:.3f}  "
                  f"spearman {t['spearman']:.3f}  MSE {t['mse']:.3f}  train {r['train_minutes']:5.1f} min")
        elif task == "nrc":
            u = r.get("test_unseen") or {}
            nan = float("nan")
            print(f"{r['row']:34s} acc {t['accuracy']:.3f} F1 {t['macro_f1']:.3f} | 2,253 unseen: acc "
                  f"{u.get('accuracy', nan):.3f} F1 {u.get('macro_f1', nan):.3f}  train {r['train_minutes']:5.1f} min")
        else:
            print(f"{r['experiment']:22s} {r['protocol']:16s} {r['row']:30s} {r['input']:11s} AUROC {r['auroc']:.3f} "
                  f"AUPRC {r['auprc']:.3f} (edge leak {r['edge_leak_auroc']:.3f}) {r['train_minutes']:5.1f} min")


def rbp_means(results: list[dict]) -> list[dict]:
    """Mean AUROC / AUPRC per (protocol, row, input) over the experiments that finished."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["protocol"], r["row"], r["input"]), []).append(r)
    return [{"protocol": k[0], "row": k[1], "input": k[2], "experiments": len(v),
             "mean_auroc": float(np.mean([r["auroc"] for r in v])),
             "mean_auprc": float(np.mean([r["auprc"] for r in v])),
             "mean_edge_leak_auroc": float(np.mean([r["edge_leak_auroc"] for r in v])),
             "mean_site_length_auroc": float(np.mean([r.get("site_length_auroc", np.nan) for r in v]))}
            for k, v in groups.items()]


def row_key(r: dict) -> tuple:
    return tuple(r.get(k) for k in ("experiment", "protocol", "row", "eval", "input"))


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """The rows of an earlier run of this table, updated by this run's rows (same key: this run's
    wins; a row this run did not reach keeps its earlier figure), in the earlier order."""
    fresh = {row_key(r): r for r in new}
    merged = []
    for r in old:
        n = fresh.pop(row_key(r), None)
        merged.append(r if n is None or ("missing" in n and "missing" not in r) else n)
    return merged + list(fresh.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["mrl", "nrc", "rbp"], choices=["mrl", "nrc", "rbp"])
    ap.add_argument("--rows", nargs="*", default=None, help="only rows whose name contains one of these")
    ap.add_argument("--rbp", nargs="*", default=RBP_WITH_TRAIN + RBP_LS_ONLY,
                    help="RBP-24 experiments (default: all 24)")
    ap.add_argument("--finetune", default="lora", choices=["lora", "full"])
    ap.add_argument("--ft-epochs", type=int, default=4, help="epochs of the fine-tuned-LM row (CPU budget)")
    ap.add_argument("--ft-minutes", type=float, default=25, help="time limit of the fine-tuned-LM row")
    ap.add_argument("--cv", action="store_true", help="MRL: add 5-fold CV rows (one-hot and frozen LM)")
    ap.add_argument("--cv-only", action="store_true", help="MRL: only the 5-fold CV rows")
    ap.add_argument("--cv-epochs", type=int, default=30)
    ap.add_argument("--cv-patience", type=int, default=4)
    ap.add_argument("--rbp-inputs", nargs="+", default=["none", "site-random"], choices=["none", "site-random"],
                    help="RBP: the sequences as given (none) and/or the leak control (site-random)")
    ap.add_argument("--structure", action="store_true",
                    help="add rows: one-hot and the frozen LM, each + ViennaRNA unpaired probabilities")
    ap.add_argument("--backbone", default=None, help="rna-fm: add the official model (frozen) when present")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=0, help="training time limit of every row (CPU budget)")
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-tasks"))
    ap.add_argument("--force", action="store_true", help="rerun finished rows")
    ap.add_argument("--collect", action="store_true", help="only gather finished rows into the tables")
    ap.add_argument("-o", "--output", type=Path, default=Path("bench/results/tasks.json"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    args.runs.mkdir(parents=True, exist_ok=True)
    random_lm = random_backbone(args.runs)
    out = json.loads(args.output.read_text()) if args.output.exists() else {}
    for task in args.tasks:
        res = bench_rbp(args, random_lm) if task == "rbp" else bench_simple(task, args, random_lm)
        res = merge_rows(out.get(task, {}).get("rows", []), res)
        out[task] = {"anchors": ANCHORS[task], "rows": res, "device": f"CPU, {args.threads} thread(s)"}
        if task == "rbp":
            out[task]["means"] = rbp_means(res)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=2, default=float) + "\n")
        print_table(task, res)
        for m in out[task].get("means", []):
            print(f"MEAN {m['protocol']:16s} {m['row']:30s} {m['input']:11s} AUROC {m['mean_auroc']:.3f} AUPRC "
                  f"{m['mean_auprc']:.3f} over {m['experiments']} experiments "
                  f"(edge leak {m['mean_edge_leak_auroc']:.3f})")


if __name__ == "__main__":
    main()
