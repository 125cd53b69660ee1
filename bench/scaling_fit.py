"""Scaling fit on CPU that picks the GPU pretraining recipe (DNA ConvNet, RNA transformer).

Four steps, each rerunnable on its own:

``run``
    Trains the sizes of one family on the CPU (:data:`SIZES`, wall-clock limited; the two families
    were run side by side, one thread each).
``collect``
    Reads the CPU runs (``nucfm pretrain`` run directories, one per model size, all with the same
    data and recipe, ``train.schedule=inverse_sqrt`` so that every evaluation is the loss a run
    stopped there would have) and writes ``bench/results/scaling_{dna,rna}.json``: per run the
    model config, parameters, training FLOPs per token, and every evaluation as (step, tokens
    seen, compute, held-out loss). Tokens are counted exactly by replaying the run's batches
    (``Batches`` are a pure function of seed and step). Compute: for the ConvNet the matmul and
    convolution FLOPs per position (:meth:`ConvNet.matmul_flops`, x3 for forward + backward); for
    the transformer ``6 * parameters`` per token (the attention score/value products, ``12 L T D``
    per token, are left out as in Kaplan et al.; ``attention_share`` in the JSON says how much
    they would add at the runs' mean length).
``signal``
    Adds the task signal of each run's last checkpoint: DNA, the AUROCs of ``bench/dna_signal.py``;
    RNA, the 5-fold kNN type accuracy of mean-pooled last-layer embeddings on the nRC test set.
``fit``
    Fits, from the JSON alone, (a) ``L(N, D) = E + A / N^alpha + B / D^beta`` to every evaluation
    past the warm-up (Hoffmann et al. 2022, approach 3; Huber loss on log L, several starts),
    (b) the compute envelope ``L(C) = a * C^-b + c`` over the sizes' lower envelope (approach 1),
    and chooses, for a GPU budget ``minutes * peak * utilisation``, the parameters ``N`` and tokens
    ``D`` minimising the fitted loss, with repeated data discounted as Muennighoff et al. (2023):
    ``D_eff = U * (1 + R* (1 - exp(-(D/U - 1) / R*)))`` for ``D > U`` unique tokens, ``R* = 15.4``.
    Writes the figures and ``bench/results/scaling_fit.json``.

    PYTHONPATH=src python bench/scaling_fit.py run dna & PYTHONPATH=src python bench/scaling_fit.py run rna
    PYTHONPATH=src python bench/scaling_fit.py collect --runs /work/runs/scalefit
    PYTHONPATH=src python bench/scaling_fit.py signal --runs /work/runs/scalefit --threads 1
    PYTHONPATH=src python bench/scaling_fit.py fit
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIGURES = ROOT / "docs" / "figures"
SHARED = Path("/work/shared/data")
R_STAR = 15.4  # Muennighoff et al. 2023: repeated tokens lose value with this e-folding (epochs)


# ---- run ---------------------------------------------------------------------------------------
# The CPU runs of the fit: (name, overrides, wall-clock minutes). Every run of a family shares the
# data, recipe and schedule (inverse_sqrt: each evaluation is a valid stopping point); a run is
# stopped by its time limit, the checkpoint of its last evaluation kept.
SHARED_OVERRIDES = {
    "dna": ["train.steps=100000", "train.schedule=inverse_sqrt", "train.eval_size=256", "train.log_every=25",
            "train.keep_ckpts=1", f"data.genome={SHARED}/genome/arabidopsis/TAIR10_chr1.fna.gz"],
    "rna": ["train.steps=100000", "train.batch_size=16", "train.warmup=100", "train.eval_size=256",
            "train.log_every=25", "train.keep_ckpts=1",
            f"data.fasta=[{SHARED}/ncrna/rfam14.2_seed_typed.fasta.gz,{SHARED}/ncrna/mirbase_hairpin.fa.gz]",
            f"data.families={SHARED}/ncrna/rfam14.2_families.tsv"],
}
SIZES = {
    "dna": [("L12D32", (12, 32, None), 6, 100), ("L12D64", (12, 64, None), 9, 100),
            ("L12D128", (12, 128, None), 13, 50), ("L12D96", (12, 96, None), 11, 75)],
    "rna": [("L2D64", (2, 64, 2), 6, 100), ("L3D96", (3, 96, 3), 9, 100), ("L4D128", (4, 128, 4), 11, 75),
            ("L4D192", (4, 192, 6), 13, 50)],
}


def run_sizes(runs: Path, family: str, threads: int) -> None:
    """Train every size of ``family`` in turn (``nucfm pretrain``, one process at a time)."""
    config = ROOT / "configs" / ("dna-tair10.yaml" if family == "dna" else "rna-rfam.yaml")
    for name, (layers, hidden, heads), minutes, every in SIZES[family]:
        model = [f"model.num_layers={layers}", f"model.hidden_size={hidden}"]
        if heads:
            model += [f"model.num_heads={heads}", f"model.ffn_size={4 * hidden}"]
        cmd = [sys.executable, "-m", "nucfm", "pretrain", "-c", str(config), "-o", str(runs / f"{family}-{name}"),
               "--threads", str(threads), "--restart", *model, *SHARED_OVERRIDES[family],
               f"train.eval_every={every}", f"train.ckpt_every={every}", f"data.prepared={runs / f'{family}-data'}"]
        print(" ".join(cmd), flush=True)
        try:
            subprocess.run(cmd, timeout=minutes * 60, check=False)
        except subprocess.TimeoutExpired:
            pass  # the time limit is the run's end


# ---- collect -----------------------------------------------------------------------------------
def flops_per_token(model, window: int | None) -> float:
    """Training FLOPs per token: forward + backward (3x the forward's multiply-adds x2)."""
    if model.config.architecture == "convnet":
        return 3.0 * model.matmul_flops(window) / window
    return 6.0 * sum(p.numel() for p in model.parameters())


def replay_tokens(run: Path, cfg, steps: int) -> np.ndarray:
    """Cumulative tokens (``attention_mask`` sums, as the trainer counts them) after each step
    1..steps, from the run's own batches."""
    from nucfm.alphabet import get_alphabet
    from nucfm.data.collate import collate
    from nucfm.data.corpus import RnaBatches, TokenStore

    t = cfg.train
    if cfg.data.kind == "dna":
        return np.arange(1, steps + 1, dtype=np.float64) * t.batch_size * cfg.data.window
    prep = Path(cfg.data.prepared) if cfg.data.prepared else run / "data"
    batches = RnaBatches(TokenStore(prep / "train"), cfg.model["max_len"], t.batch_size, t.seed)
    alphabet = get_alphabet(cfg.model["alphabet"])
    n = [int(collate(alphabet, [e.ids for e in batches.micro_batch(s, 0, 1, 0, 1)]).attention_mask.sum())
         for s in range(steps)]
    return np.cumsum(n, dtype=np.float64)


def collect_run(run: Path) -> dict:
    import yaml

    from nucfm.checkpoint import build_model
    from nucfm.train.config import from_dict

    cfg = from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    model = build_model(cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    evals = [r for r in rows if "val_loss" in r]
    train = [r for r in rows if "tokens_per_s" in r]
    last = max((r["step"] for r in rows), default=0)
    cum = replay_tokens(run, cfg, last)
    fpt = flops_per_token(model, cfg.data.window if cfg.data.kind == "dna" else None)
    points = [{"step": r["step"], "tokens": float(cum[r["step"] - 1]), "flops": float(cum[r["step"] - 1] * fpt),
               "val_loss": r["val_loss"], "val_acc": r["val_acc"]} for r in evals if r["step"] >= 1]
    out = {"run": str(run), "name": run.name, "model": cfg.model, "params": n_params, "flops_per_token": fpt,
           "train": {k: getattr(cfg.train, k) for k in ("batch_size", "lr", "warmup", "schedule", "weight_decay",
                                                        "mask_prob", "seed", "threads")},
           "steps_done": last, "tokens_per_s_median": float(np.median([r["tokens_per_s"] for r in train[1:]]))
           if len(train) > 1 else None,
           "wall_s": (train[-1]["time"] - train[0]["time"]) if len(train) > 1 else None, "points": points}
    if cfg.data.kind == "rna":
        L, D = cfg.model["num_layers"], cfg.model["hidden_size"]
        mean_len = cum[-1] / (last * cfg.train.batch_size)
        out["attention_share"] = 12 * L * D * mean_len / fpt
        out["mean_tokens_per_sequence"] = mean_len
    return out


def collect(runs: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for family in ("dna", "rna"):
        dirs = sorted(d for d in runs.glob(f"{family}-L*") if (d / "metrics.jsonl").exists())
        if not dirs:
            continue
        path = out / f"scaling_{family}.json"
        old = json.loads(path.read_text()) if path.exists() else {"runs": []}
        signals = {r["name"]: r.get("signal") for r in old["runs"] if r.get("signal")}
        rs = [collect_run(d) for d in dirs]
        for r in rs:
            if r["name"] in signals:
                r["signal"] = signals[r["name"]]
        summary = data_summary(dirs[0])
        path.write_text(json.dumps({"family": family, "data": summary, "runs": rs}, indent=1) + "\n")
        print(f"{path}: {len(rs)} runs, {sum(len(r['points']) for r in rs)} evaluations")


def data_summary(run: Path) -> dict:
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    prep = Path(cfg["data"].get("prepared") or run / "data")
    s = json.loads((prep / "prep.json").read_text())
    s.pop("source", None)
    keep = {k: v for k, v in s.items() if not isinstance(v, (list, dict))}
    if s.get("kind") == "dna":
        keep["train_tokens_unique"] = int(s["n_train_windows"] * cfg["data"]["stride"])
    else:
        keep["train_tokens_unique"] = int(s["train_residues"] + 2 * s["n_train"])
    return keep


# ---- signal ------------------------------------------------------------------------------------
def last_checkpoint(run: Path) -> Path | None:
    if (run / "final").exists():
        return run / "final"
    steps = sorted((run / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    return steps[-1] if steps else None


def rna_signal(model_dir: Path, threads: int) -> dict:
    import torch

    from nucfm.analysis.representation import knn_accuracy
    from nucfm.tasks.atlas import embed_representations, label_records

    torch.set_num_threads(threads)
    data = label_records(SHARED / "ncrna" / "nrc" / "test_2600.fasta")
    rep = embed_representations(data, [str(model_dir)], [-1], False, 0, 8192, show_progress=False)[0]
    knn = knn_accuracy(rep.X, data.labels)
    return {"checkpoint": str(model_dir), "nrc_test_knn_accuracy_last_layer": knn["accuracy"],
            "nrc_test_knn_macro_f1_last_layer": knn["macro_f1"], "n": knn["n"]}


def dna_signal(model_dir: Path, threads: int, table: Path) -> dict:
    g = SHARED / "genome" / "arabidopsis"
    run = model_dir.parent.parent if model_dir.parent.name == "checkpoints" else model_dir.parent
    out = table.parent / f"signal_{run.name}.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "dna_signal.py"), "--genome", str(g / "TAIR10_chr1.fna.gz"),
                    "--gff", str(g / "TAIR10_chr1.gff.gz"), "--models", str(model_dir), "--threads", str(threads),
                    "--table", str(table), "-o", str(out)], check=True)
    res = json.loads(out.read_text())
    m = res["models"][str(model_dir)]
    return {"checkpoint": str(model_dir), "auroc_lof_vs_intergenic": m["auroc_lof_vs_intergenic"],
            "auroc_missense_vs_synonymous": m["auroc_missense_vs_synonymous"], "n": m["n"]}


def signal(runs: Path, out: Path, threads: int, families: list[str]) -> None:
    for family in families:
        path = out / f"scaling_{family}.json"
        d = json.loads(path.read_text())
        for r in d["runs"]:
            ck = last_checkpoint(Path(r["run"]))
            if ck is None or (r.get("signal") or {}).get("checkpoint") == str(ck):
                continue
            r["signal"] = (rna_signal(ck, threads) if family == "rna"
                           else dna_signal(ck, threads, runs / "dna_signal_snvs.tsv"))
            r["signal"]["step"] = int(ck.name.split("_")[1]) if ck.name.startswith("step_") else r["steps_done"]
            print(family, r["name"], r["signal"], flush=True)
            path.write_text(json.dumps(d, indent=1) + "\n")


# ---- fit ---------------------------------------------------------------------------------------
def fit_points(d: dict, min_step_factor: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, L) of every evaluation at least ``min_step_factor`` warm-ups into its run."""
    N, D, L = [], [], []
    for r in d["runs"]:
        for p in r["points"]:
            if p["step"] >= min_step_factor * r["train"]["warmup"]:
                N.append(r["params"])
                D.append(p["tokens"])
                L.append(p["val_loss"])
    return np.array(N, float), np.array(D, float), np.array(L, float)


def chinchilla_loss(theta, N, D):
    E, logA, logB, alpha, beta = theta
    return E + np.exp(logA - alpha * np.log(N)) + np.exp(logB - beta * np.log(D))


def fit_chinchilla(N, D, L, tied: bool = False) -> dict:
    """Huber fit of log L (delta 1e-3) over a grid of starts; the best by objective. ``tied``:
    one exponent for N and D (alpha = beta), as Hoffmann et al. found (0.34 / 0.28), for data
    that cannot separate them."""
    from scipy.optimize import least_squares

    def unpack(x):
        return np.r_[x, x[3]] if tied else x

    best = None
    lo, hi = [0.0, -10, -10, 0.0, 0.0], [float(L.min()), 40, 40, 2.0, 2.0]
    if tied:
        lo, hi = lo[:4], hi[:4]
    for E0 in (0.5 * L.min(), 0.9 * L.min(), 0.98 * L.min()):
        for a0 in (0.1, 0.3, 0.6):
            for b0 in ((a0,) if tied else (0.1, 0.3, 0.6)):
                x0 = [E0, math.log(max(L.max() - E0, 1e-3)) + a0 * math.log(N.min()),
                      math.log(max(L.max() - E0, 1e-3)) + b0 * math.log(D.min()), a0, b0][: len(lo)]
                x0 = np.clip(x0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
                try:
                    res = least_squares(lambda x: np.log(chinchilla_loss(unpack(x), N, D)) - np.log(L), x0,
                                        bounds=(lo, hi), loss="huber", f_scale=1e-3, max_nfev=20000)
                except ValueError:
                    continue
                if best is None or res.cost < best.cost:
                    best = res
    th = unpack(best.x)
    pred = chinchilla_loss(th, N, D)
    at_bound = bool(np.any(np.isclose(best.x, lo, atol=1e-4) | np.isclose(best.x, hi, atol=1e-4)))
    return {"E": th[0], "A": math.exp(th[1]), "B": math.exp(th[2]), "alpha": th[3], "beta": th[4],
            "tied_exponents": tied, "parameter_at_bound": at_bound,
            "rmse": float(np.sqrt(np.mean((pred - L) ** 2))), "n_points": int(len(L)),
            "form": "L = E + A / N^alpha + B / D^beta (N parameters, D tokens)", "theta": list(map(float, th))}


def usable(f: dict) -> bool:
    """A fit that can split compute: both exponents away from 0 and no parameter on a bound."""
    return not f["parameter_at_bound"] and min(f["alpha"], f["beta"]) >= 0.05


def envelope(d: dict, n_grid: int = 40) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Lower envelope of held-out loss over compute: at each grid compute, the best run's loss
    (linear interpolation of each run's curve in log compute; runs only inside their range)."""
    runs = [r for r in d["runs"] if len(r["points"]) >= 2]
    pts = [(np.log([p["flops"] for p in r["points"] if p["step"] >= 2 * r["train"]["warmup"]]),
            np.array([p["val_loss"] for p in r["points"] if p["step"] >= 2 * r["train"]["warmup"]]), r["name"])
           for r in runs]
    pts = [p for p in pts if len(p[0]) >= 2]
    lo, hi = min(p[0][0] for p in pts), max(p[0][-1] for p in pts)
    grid = np.linspace(lo, hi, n_grid)
    best, who = [], []
    for g in grid:
        cand = [(float(np.interp(g, x, y)), name) for x, y, name in pts if x[0] <= g <= x[-1]]
        if not cand:  # a gap between the runs' compute ranges
            best.append(np.nan)
            who.append("")
            continue
        v, name = min(cand)
        best.append(v)
        who.append(name)
    keep = ~np.isnan(best)
    return np.exp(grid)[keep], np.array(best)[keep], [w for w, k in zip(who, keep) if k]


def fit_envelope(C, L) -> dict:
    from scipy.optimize import curve_fit

    f = lambda logc, loga, b, c: c + np.exp(loga - b * logc)  # noqa: E731
    c0 = 0.95 * L.min()
    p, _ = curve_fit(f, np.log(C), L, p0=[math.log(L.max() - c0) + 0.1 * np.log(C.min()), 0.1, c0],
                     bounds=([-50, 0, 0], [50, 3, L.min()]), maxfev=20000)
    return {"a": math.exp(p[0]), "b": p[1], "c": p[2], "form": "L = a * C^-b + c (C training FLOPs)",
            "rmse": float(np.sqrt(np.mean((f(np.log(C), *p) - L) ** 2)))}


def effective_tokens(D, unique):
    """Muennighoff et al. 2023: tokens past the first epoch count less and less."""
    D = np.asarray(D, float)
    rep = np.maximum(D / unique - 1.0, 0.0)
    return np.where(D <= unique, D, unique * (1 + R_STAR * (1 - np.exp(-rep / R_STAR))))


def choose(fit: dict, budget_flops: float, flops_per_param_token: float, unique: float) -> dict:
    """N, D minimising the fitted loss at ``N * D * flops_per_param_token = budget`` (D repeated
    data discounted), on a log grid of N; also the unconstrained (unique-data) optimum."""
    th = fit["theta"]
    Ns = np.exp(np.linspace(np.log(1e4), np.log(1e10), 4000))
    Ds = budget_flops / (flops_per_param_token * Ns)
    loss_rep = chinchilla_loss(th, Ns, effective_tokens(Ds, unique))
    loss_inf = chinchilla_loss(th, Ns, Ds)
    i, j = int(np.argmin(loss_rep)), int(np.argmin(loss_inf))
    return {"params": float(Ns[i]), "tokens": float(Ds[i]), "epochs": float(Ds[i] / unique),
            "expected_val_loss": float(loss_rep[i]), "tokens_per_param": float(Ds[i] / Ns[i]),
            "unlimited_data_optimum": {"params": float(Ns[j]), "tokens": float(Ds[j]),
                                       "expected_val_loss": float(loss_inf[j])},
            "loss_curve_over_N": {"params": Ns[::100].tolist(), "loss": loss_rep[::100].tolist()}}


def predict(fit: dict, params: float, tokens: float, unique: float) -> float:
    return float(chinchilla_loss(fit["theta"], np.array([params]), effective_tokens([tokens], unique))[0])


def plot(family: str, d: dict, fit: dict, env: dict, C_env, L_env, decision: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(d["runs"])))
    for r, col in zip(sorted(d["runs"], key=lambda r: r["params"]), colors):
        C = [p["flops"] for p in r["points"]]
        L = [p["val_loss"] for p in r["points"]]
        ax.plot(C, L, "o-", ms=3, color=col, label=f"{r['name']} ({r['params'] / 1e6:.2f}M)")
        N = np.full(200, r["params"])
        Dg = np.geomspace(min(p["tokens"] for p in r["points"]), max(p["tokens"] for p in r["points"]), 200)
        ax.plot(Dg * r["flops_per_token"], chinchilla_loss(fit["theta"], N, Dg), "--", color=col, lw=1)
    ax.plot(C_env, L_env, "k-", lw=2, alpha=0.4, label="lower envelope")
    Cg = np.geomspace(C_env.min(), C_env.max() * 3, 100)
    ax.plot(Cg, env["c"] + env["a"] * Cg ** -env["b"], "k:", label=f"envelope fit: {env['c']:.3f} + "
            f"{env['a']:.3g} C^-{env['b']:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("training compute (FLOPs)")
    ax.set_ylabel("held-out masked-LM loss (nats)")
    ax.set_title(f"{family.upper()}: held-out loss vs compute (CPU runs; dashed: L(N, D) fit)")
    ax.legend(fontsize=7)
    ax = axes[1]
    if decision:
        for r in d["runs"]:
            ax.axvline(r["params"], color="0.85", lw=1)
        curve = decision["choice"]["loss_curve_over_N"]
        ax.plot(curve["params"], curve["loss"], "b-", label=f"fitted loss at the GPU budget "
                f"({decision['budget_flops']:.2g} FLOPs)")
        ax.plot([decision["choice"]["params"]], [decision["choice"]["expected_val_loss"]], "r*", ms=12,
                label=f"fit optimum: {decision['choice']['params'] / 1e6:.1f}M params, "
                f"{decision['choice']['tokens'] / 1e6:.0f}M tokens")
        ax.plot([decision["model_params"]], [decision["expected_val_loss"]], "ks", ms=7,
                label=f"chosen: {decision['model_params'] / 1e6:.1f}M params, {decision['tokens'] / 1e6:.0f}M tokens")
        ax.set_xscale("log")
        ax.set_xlabel("parameters N (tokens D = budget / (FLOPs per param-token x N))")
        ax.set_ylabel("fitted held-out loss, repeated data discounted")
        lo = min(curve["loss"])
        ax.set_ylim(lo - 0.01, lo + 0.05)
        ax.set_title(f"{family.upper()}: iso-FLOP slice of the fit at the GPU budget (grey: CPU sizes)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fit(out: Path, figures: Path, budgets: dict) -> dict:
    result = {}
    for family in ("dna", "rna"):
        path = out / f"scaling_{family}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        N, D, L = fit_points(d)
        free, tied = fit_chinchilla(N, D, L), fit_chinchilla(N, D, L, tied=True)
        cf = free if usable(free) else tied
        C_env, L_env, who = envelope(d)
        ef = fit_envelope(C_env, L_env)
        b = budgets[family]
        budget = b["minutes"] * 60 * b["peak_flops"] * b["utilisation"]
        fppt = float(np.median([r["flops_per_token"] / r["params"] for r in d["runs"]]))
        unique = float(b.get("unique_tokens") or d["data"]["train_tokens_unique"])
        ch = choose(cf, budget, fppt, unique)
        prior = choose({"theta": [HOFFMANN["E"], math.log(HOFFMANN["A"]), math.log(HOFFMANN["B"]), HOFFMANN["alpha"],
                                  HOFFMANN["beta"]]}, budget, fppt, unique)
        span = np.geomspace(1e6, 1e8, 50)
        flat = chinchilla_loss(cf["theta"], span, effective_tokens(budget / (fppt * span), unique))
        result[family] = {"chinchilla_fit": cf, "free_fit": free, "tied_fit": tied,
                          "fit_used": "free" if cf is free else "tied", "envelope_fit": ef,
                          "envelope_best_run": sorted(set(who), key=who.index),
                          "budget": b, "budget_flops": budget, "flops_per_param_token": fppt,
                          "unique_train_tokens": unique, "choice": ch, "prior_choice": prior,
                          "cpu_fit_loss_range_1M_to_100M_params": [float(flat.min()), float(flat.max())],
                          "envelope_loss_at_budget": ef["c"] + ef["a"] * budget ** -ef["b"]}
    return result


# The GPU recipes chosen (model section, training recipe); numbers derived from them are computed
# by ``decide``. Why these: docs/scaling.md and the ``reasoning`` written into the decision.
CHOICES = {
    "dna": {"model": {"architecture": "convnet", "alphabet": "gpn", "num_layers": 12, "hidden_size": 448,
                      "kernel_size": 9},
            "window": 512, "batch_size": 256, "lr": 1.0e-3, "warmup": 250, "schedule": "cosine", "min_lr_ratio": 0.1,
            "shape_note": "the depth of the CPU family (12 layers: a receptive field of 1,008 nt, wider than the "
                          "512-nt window), widened",
            "utilisation_why": "an estimate, not a measurement: the convolutions are implicit GEMMs with K = 9 x 448 "
                               "(efficient on tensor cores), but each block's two LayerNorms, two GELUs and two "
                               "residual adds are memory-bound (a rough roofline at 4.8 TB/s against 790 TFLOP/s "
                               "makes them a sizeable share of the matmul time at this width even fused by "
                               "torch.compile), and cuDNN's dilated convolutions are slower than plain GEMMs"},
    "rna": {"model": {"architecture": "transformer", "alphabet": "rna-fm", "num_layers": 12, "hidden_size": 512,
                      "num_heads": 8, "ffn_size": 2048, "max_len": 510, "emb_layer_norm_before": True},
            "max_len": 510, "batch_size": 256, "lr": 5.0e-4, "warmup": 300, "schedule": "cosine", "min_lr_ratio": 0.1,
            "shape_note": "RNA-FM's depth (12 layers) with a width of 512 (the CPU family grew depth with width)",
            "utilisation_why": "an estimate, not a measurement: a 512-wide transformer on ~115-token sequences in "
                               "length-bucketed batches; its projection and feed-forward matmuls run well on tensor "
                               "cores and attention at this length is small, but LayerNorm, GELU, softmax and the "
                               "optimizer step are memory-bound"},
}


def decide(fitres: dict, out: Path) -> dict:
    """scaling_decision.json from :data:`CHOICES` and the fit: parameters, FLOPs per token, the
    token count the budget buys, epochs, the CPU fit's expected loss and the prior optimum."""
    from nucfm.checkpoint import build_model

    dec = {}
    for fam, c in CHOICES.items():
        r = fitres[fam]
        model = build_model(c["model"])
        n = sum(p.numel() for p in model.parameters())
        if fam == "dna":
            fpt = flops_per_token(model, c["window"])
            mean_len = c["window"]
        else:
            d = json.loads((out.parent / "scaling_rna.json").read_text())
            mean_len = float(np.mean([x["mean_tokens_per_sequence"] for x in d["runs"]]))
            fpt = 6.0 * n + 12.0 * c["model"]["num_layers"] * c["model"]["hidden_size"] * mean_len
        tokens = r["budget_flops"] / fpt
        unique = r["unique_train_tokens"]
        tokens_per_step = c["batch_size"] * mean_len
        pc, cf = r["prior_choice"], r["chinchilla_fit"]
        runs = json.loads((out.parent / f"scaling_{fam}.json").read_text())["runs"]
        finals = [x["points"][-1]["val_loss"] for x in runs if x["points"]]
        exp_loss = predict(cf, n, tokens, unique)
        b = r["budget"]
        reasoning = (
            f"The CPU runs' held-out losses flatten out (last evaluations of the {len(finals)} sizes: "
            f"{min(finals):.4f}-{max(finals):.4f} nats): the "
            f"{r['fit_used']} L(N, D) fit puts its floor at E = {cf['E']:.3f} nats and, at the GPU budget of "
            f"{r['budget_flops']:.3g} FLOPs ({b['minutes']} min x {b['peak_flops'] / 1e12:.0f} TFLOP/s x "
            f"{b['utilisation']:.0%} MFU), predicts {r['cpu_fit_loss_range_1M_to_100M_params'][0]:.4f}-"
            f"{r['cpu_fit_loss_range_1M_to_100M_params'][1]:.4f} nats for any model from 1 M to 100 M parameters, "
            f"so it "
            f"cannot choose the size (its own optimum, {r['choice']['params'] / 1e6:.1f} M parameters on "
            f"{r['choice']['tokens'] / 1e6:.0f} M tokens, is one point of a flat curve). The split therefore follows "
            f"Hoffmann et al.'s exponents with repeated data discounted as Muennighoff et al. ({unique / 1e6:.1f} M "
            f"unique training tokens): optimum {pc['params'] / 1e6:.1f} M parameters on {pc['tokens'] / 1e6:.0f} M "
            f"tokens ({pc['epochs']:.1f} epochs). Chosen: {c['model']['num_layers']} layers x "
            f"{c['model']['hidden_size']} = {n / 1e6:.1f} M parameters ({c['shape_note']}; a width that keeps "
            f"the H200's tensor cores busy), {tokens / 1e6:.0f} M tokens ({tokens / unique:.1f} epochs, about "
            f"{tokens / tokens_per_step:,.0f} steps of {c['batch_size']}). Expected held-out loss from the CPU fit: "
            f"{exp_loss:.3f} (= the plateau; the CPU data cannot show how far below it the GPU run goes). lr, warm-up "
            f"and batch were not swept on the CPU.")
        dec[fam] = {"model": c["model"], "shape": c["shape_note"], "params": n, "flops_per_token": fpt,
                    "batch_size": c["batch_size"],
                    **({"window": c["window"]} if fam == "dna" else {"max_len": c["max_len"],
                                                                        "mean_tokens_per_sequence": mean_len}),
                    "lr": c["lr"], "warmup": c["warmup"], "schedule": c["schedule"], "min_lr_ratio": c["min_lr_ratio"],
                    "tokens": tokens, "tokens_per_step": tokens_per_step, "steps": int(tokens / tokens_per_step),
                    "epochs": tokens / unique, "unique_train_tokens": unique, "budget": b,
                    "budget_flops": r["budget_flops"], "assumed_utilisation": b["utilisation"],
                    "utilisation_why": c["utilisation_why"],
                    "expected_val_loss": exp_loss, "cpu_fit": {k: cf[k] for k in ("E", "A", "B", "alpha", "beta",
                                                                                   "rmse", "tied_exponents")},
                    "prior_optimum": {k: pc[k] for k in ("params", "tokens", "epochs")}, "reasoning": reasoning}
    out.write_text(json.dumps(dec, indent=1) + "\n")
    return dec


def tables(results: Path) -> str:
    """Markdown tables of the runs, the fits and the decision (for docs/scaling.md)."""
    out = ["| run | parameters | FLOPs/token | steps | tokens | compute | last held-out loss | best | task signal |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for fam in ("dna", "rna"):
        d = json.loads((results / f"scaling_{fam}.json").read_text())
        for r in sorted(d["runs"], key=lambda r: r["params"]):
            p = r["points"]
            sig = r.get("signal") or {}
            if fam == "dna" and sig:
                s = (f"LoF/intergenic {sig['auroc_lof_vs_intergenic']:.3f}, missense/synonymous "
                     f"{sig['auroc_missense_vs_synonymous']:.3f} (step {sig['step']})")
            elif sig:
                s = f"nRC kNN {sig['nrc_test_knn_accuracy_last_layer']:.3f} (step {sig['step']})"
            else:
                s = "-"
            out.append(f"| {r['name']} | {r['params'] / 1e6:.3f} M | {r['flops_per_token'] / 1e6:.2f} M | "
                       f"{p[-1]['step'] if p else 0} | {p[-1]['tokens'] / 1e6:.2f} M | {p[-1]['flops']:.2e} | "
                       f"{p[-1]['val_loss']:.4f} | {min(x['val_loss'] for x in p):.4f} | {s} |")
    f = json.loads((results / "scaling_fit.json").read_text())
    out += ["", "| family | fit used | E | A | alpha | B | beta | rmse (nats) | points | envelope c, b | "
            "loss at budget, 1-100 M params |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for fam, r in f.items():
        c, e, fl = r["chinchilla_fit"], r["envelope_fit"], r["cpu_fit_loss_range_1M_to_100M_params"]
        out.append(f"| {fam} | {r['fit_used']} | {c['E']:.4f} | {c['A']:.3g} | {c['alpha']:.3f} | {c['B']:.3g} | "
                   f"{c['beta']:.3f} | {c['rmse']:.4f} | {c['n_points']} | {e['c']:.4f}, {e['b']:.3f} | "
                   f"{fl[0]:.4f}-{fl[1]:.4f} |")
    dec = json.loads((results / "scaling_decision.json").read_text())
    out += ["", "| | DNA | RNA |", "|---|---|---|"]
    rows = [("model", lambda x: ", ".join(f"{k} {v}" for k, v in x["model"].items() if k not in ("architecture",
                                                                                               "alphabet"))),
            ("parameters", lambda x: f"{x['params'] / 1e6:.1f} M"),
            ("FLOPs per token", lambda x: f"{x['flops_per_token']:.3g}"),
            ("budget", lambda x: f"{x['budget']['minutes']} min x {x['budget']['utilisation']:.0%} MFU = "
                                 f"{x['budget_flops']:.3g} FLOPs"),
            ("tokens", lambda x: f"{x['tokens'] / 1e6:.0f} M ({x['epochs']:.1f} epochs of "
                                 f"{x['unique_train_tokens'] / 1e6:.1f} M)"),
            ("batch", lambda x: f"{x['batch_size']} ({x['tokens_per_step']:,.0f} tokens), ~{x['steps']:,} steps"),
            ("lr, schedule", lambda x: f"{x['lr']}, {x['schedule']} to {x['min_lr_ratio']}, warm-up {x['warmup']}"),
            ("prior optimum", lambda x: f"{x['prior_optimum']['params'] / 1e6:.1f} M params, "
                                        f"{x['prior_optimum']['tokens'] / 1e6:.0f} M tokens"),
            ("expected held-out loss (CPU fit)", lambda x: f"{x['expected_val_loss']:.3f}")]
    for name, fn in rows:
        out.append(f"| {name} | {fn(dec['dna'])} | {fn(dec['rna'])} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the CPU sizes of a family (wall-clock limited)")
    r.add_argument("family", choices=["dna", "rna"])
    r.add_argument("--runs", type=Path, default=Path("/work/runs/scalefit"))
    r.add_argument("--threads", type=int, default=1)
    c = sub.add_parser("collect")
    c.add_argument("--runs", type=Path, default=Path("/work/runs/scalefit"))
    s = sub.add_parser("signal")
    s.add_argument("--runs", type=Path, default=Path("/work/runs/scalefit"))
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--families", nargs="+", default=["rna", "dna"])
    t = sub.add_parser("tables", help="print the markdown tables of docs/scaling.md")
    f = sub.add_parser("fit")
    f.add_argument("--decision", type=Path, default=RESULTS / "scaling_decision.json",
                   help="the decision JSON: its budgets are read and its model choices drawn")
    for p in (c, s, f, t):
        p.add_argument("--results", type=Path, default=RESULTS)
    f.add_argument("--figures", type=Path, default=FIGURES)
    f.add_argument("--write-decision", action="store_true", help="(re)write the decision from CHOICES and this fit")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        run_sizes(a.runs, a.family, a.threads)
    elif a.cmd == "collect":
        collect(a.runs, a.results)
    elif a.cmd == "tables":
        print(tables(a.results))
    elif a.cmd == "signal":
        signal(a.runs, a.results, a.threads, a.families)
    else:
        dec = json.loads(a.decision.read_text()) if a.decision.exists() else {}
        budgets = {fam: dec.get(fam, {}).get("budget", DEFAULT_BUDGETS[fam]) for fam in ("dna", "rna")}
        res = fit(a.results, a.figures, budgets)
        if a.write_decision:
            dec = decide(res, a.decision)
        for fam, r in res.items():
            d = json.loads((a.results / f"scaling_{fam}.json").read_text())
            chosen = dec.get(fam)
            pick = None
            if chosen:
                pick = {"budget_flops": r["budget_flops"], "choice": r["choice"], "model_params": chosen["params"],
                        "tokens": chosen["tokens"],
                        "expected_val_loss": predict(r["chinchilla_fit"], chosen["params"], chosen["tokens"],
                                                     r["unique_train_tokens"])}
                r["chosen_expected_val_loss"] = pick["expected_val_loss"]
            C_env, L_env, _ = envelope(d)
            plot(fam, d, r["chinchilla_fit"], r["envelope_fit"], C_env, L_env, pick or
                 {"budget_flops": r["budget_flops"], "choice": r["choice"], "model_params": r["choice"]["params"],
                  "tokens": r["choice"]["tokens"], "expected_val_loss": r["choice"]["expected_val_loss"]},
                 a.figures / f"scaling_{fam}.png")
            cf, ch = r["chinchilla_fit"], r["choice"]
            print(f"{fam}: E={cf['E']:.3f} A={cf['A']:.3g} alpha={cf['alpha']:.3f} B={cf['B']:.3g} "
                  f"beta={cf['beta']:.3f} rmse={cf['rmse']:.4f} (n={cf['n_points']}); budget "
                  f"{r['budget_flops']:.3g} FLOPs -> N={ch['params'] / 1e6:.2f}M D={ch['tokens'] / 1e6:.0f}M "
                  f"({ch['epochs']:.1f} epochs) L={ch['expected_val_loss']:.4f}; envelope {r['envelope_fit']}")
        (a.results / "scaling_fit.json").write_text(json.dumps(res, indent=1) + "\n")
    return 0


# Hoffmann et al. 2022 (Chinchilla), approach 3 fit: used for the split of compute between N and D
# where the CPU points cannot make it (they sit on the k-mer plateau); E does not affect the split
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

# H200 dense bf16 peak as the issue states it (~790 TFLOP/s); utilisation assumed, see docs/scaling.md
# DNA unique tokens of the GPU corpus: TAIR10 chr1 training windows (108,747 x 256 nt) plus A. lyrata
# chr1-2 (51,384,017 nt) less its region syntenic to the held-out block (3,176,834 nt)
DEFAULT_BUDGETS = {"dna": {"minutes": 4.0, "peak_flops": 7.9e14, "utilisation": 0.25,
                           "unique_tokens": 108_747 * 256 + 51_384_017 - 3_176_834},
                   "rna": {"minutes": 2.5, "peak_flops": 7.9e14, "utilisation": 0.30}}

if __name__ == "__main__":
    raise SystemExit(main())
