"""Write MODEL_CARD.md for a shipped model from its training run and measured evaluations.

    python scripts/model_card.py --weights src/nucfm/weights/NAME --run runs/rna-rfam \
        --eval eval.json --precision precision.json --config configs/rna-rfam.yaml \
        --eval-command "nucfm eval-mlm ..." --notes notes.md
"""

import argparse
import json
import platform
from pathlib import Path

import yaml

from nucfm.checkpoint import read_weights, training_state

p = argparse.ArgumentParser()
p.add_argument("--weights", required=True)
p.add_argument("--run", required=True)
p.add_argument("--eval", required=True, help="JSON written by nucfm eval-mlm -o")
p.add_argument("--precision", required=True, help="JSON printed by scripts/ship_model.py")
p.add_argument("--config", required=True)
p.add_argument("--eval-command", required=True)
p.add_argument("--notes", help="markdown appended as a 'Training history' section")
args = p.parse_args()

w, run = Path(args.weights), Path(args.run)
cfg = json.loads((w / "config.json").read_text())
meta = cfg["metadata"]
prep = json.loads((run / "data" / "prep.json").read_text())
rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
train_rows = [r for r in rows if "loss" in r]
val_rows = [r for r in rows if "val_loss" in r]
# wall time: sum of gaps between consecutive log lines, excluding pauses between a stop and a resume
times = [r["time"] for r in train_rows]
gaps = [b - a for a, b in zip(times, times[1:])]
typical = sorted(gaps)[len(gaps) // 2] if gaps else 0
wall = sum(g for g in gaps if g < 10 * typical) + typical
ckpt_dir = meta["training_checkpoint"]
ckpt_step = int(ckpt_dir.rstrip("/").split("_")[-1]) if "step_" in ckpt_dir else max(r["step"] for r in train_rows)
state = (training_state.load_training_state(ckpt_dir) if (Path(ckpt_dir) / training_state.TRAINER_FILE).exists()
         else None)
n_params = sum(v.numel() for v in read_weights(w).values())
ev = json.loads(Path(args.eval).read_text())["rows"]
prec = json.loads(Path(args.precision).read_text())
run_cfg = yaml.safe_load((run / "config.yaml").read_text())
size_mb = (w / "model.safetensors").stat().st_size / 1e6

lines = [f"# {w.name}", "", meta["description"], ""]
lines += ["## Model", "",
          f"- architecture: `{cfg['model']['architecture']}` "
          + ", ".join(f"{k}={v}" for k, v in cfg["model"].items() if k != "architecture"),
          f"- parameters: {n_params:,} ({n_params / 1e6:.2f}M); weights stored as float16 "
          f"({size_mb:.1f} MB), loaded as float32",
          f"- alphabet: `{cfg['alphabet']['name']}`; `mlm_counts.npz` = unigram and ±3-context counts of the "
          "training data (the `nucfm eval-mlm` baselines)", ""]
lines += ["## Data and split", ""]
if prep["kind"] == "rna":
    lines += [f"- sources: {', '.join('`' + s + '`' for s in prep['sources'])}",
              f"- T→U, exact duplicates removed ({prep['duplicates']:,}), sequences shorter than {prep['min_len']} "
              f"dropped ({prep['too_short']}), random crop to {cfg['model']['max_len']} residues at batch time",
              f"- validation: {prep['n_valid_families']} whole Rfam families (clans held out whole, miRNA "
              f"families kept in training because miRBase holds their homologues; seed {prep['seed']}, "
              f"fraction {prep['valid_fraction']} of family groups): {prep['n_valid']:,} sequences, "
              f"{prep['valid_residues']:,} nt; training sequences identical to a validation sequence removed "
              f"({prep['identical_to_valid']})",
              f"- training: {prep['n_train']:,} sequences, {prep['train_residues']:,} nt",
              f"- held-out family accessions: {', '.join(prep['valid_families'])}"]
else:
    lines += [f"- genome: `{prep['genome']}` ({', '.join(prep['records'])})",
              f"- windows of {prep['window']} bp every {prep['stride']} bp, all-N windows skipped "
              f"({prep['skipped_windows']} skipped); reverse-complement augmentation "
              f"{run_cfg['data']['rc_augment']}; soft-masked (lowercase) positions weighted "
              f"{run_cfg['data']['soft_mask_weight']} in the loss",
              f"- validation: the contiguous region `{prep['valid_region']}` (1-based inclusive); no training "
              f"window overlaps it; {prep['n_train_windows']:,} training windows"]
t = run_cfg["train"]
lines += ["", "## Training", "",
          f"- objective: masked LM, {t['mask_prob']:.0%} of residues selected, 80/10/10 mask/random/keep",
          f"- optimizer: AdamW (betas {t['betas']}, weight decay {t['weight_decay']}), peak lr {t['lr']}, "
          f"{t['schedule']} schedule, warm-up {t['warmup']} steps, gradient clipping {t['clip']}, "
          f"batch {t['batch_size']} sequences/windows, seed {t['seed']}",
          *(["- started from earlier weights through `train.init_from` (fresh optimizer and schedule): the steps, "
             "time and curve below are this continuation's, the earlier training is in the history"]
            if t.get("init_from") else []),
          f"- shipped checkpoint: step {ckpt_step} ({ckpt_step * t['batch_size']:,} sequences/windows seen)",
          f"- wall time: {wall / 60:.1f} min of training (sum of logged intervals) on "
          f"{platform.processor() or platform.machine()} CPU, {t['threads']} thread, the 2-core machine shared "
          "with other jobs; fp32",
          ("- reproduce: the commands of the training history below, then " if t.get("init_from") else
           f"- reproduce: `nucfm pretrain --config {args.config}` (see the history below), then ")
          + f"`python scripts/ship_model.py RUN/checkpoints/step_{ckpt_step:08d} src/nucfm/weights/{w.name} --run RUN "
          f"--kind {meta['kind']} --description ...`"]
if args.notes:
    lines += ["", "## Training history", "", Path(args.notes).read_text().strip()]
lines += ["", "## Validation curve (training-time evaluation, fixed sample, 80/10/10, full vocabulary)", "",
          "| step | val loss | val acc |", "|---:|---:|---:|"]
lines += [f"| {r['step']} | {r['val_loss']:.4f} | {r['val_acc']:.4f} |" for r in val_rows]
lines += ["", "## Held-out masked-token evaluation (`nucfm eval-mlm`)", "",
          f"`{args.eval_command}`", "",
          "15 % of positions masked (seed 0, all selected positions replaced by the mask token); the model's "
          "logits restricted to the four bases; the baselines score the same positions. Perplexity = "
          "exp(mean NLL), 4 = uniform. ±3-mer: the base given its true ±3 neighbours (counted on the training "
          "data), which the model does not see (62 % of positions have a masked neighbour); ±3-mer (masked "
          "ctx): the same counts given the neighbours as the model sees them (masked ones marginalised).", "",
          "| set | positions | model acc | model ppl | unigram acc | unigram ppl | ±3-mer acc | ±3-mer ppl "
          "| ±3-mer (masked ctx) acc | ±3-mer (masked ctx) ppl |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for name, r in ev.items():
    lines.append(f"| {name} | {r['positions']:,} | {r['model_acc']:.4f} | {r['model_ppl']:.4f} | "
                 f"{r['unigram_acc']:.4f} | {r['unigram_ppl']:.4f} | {r['kmer_acc']:.4f} | {r['kmer_ppl']:.4f} | "
                 f"{r['kmer_masked_acc']:.4f} | {r['kmer_masked_ppl']:.4f} |")
vs = ev["all"].get("vs")
if vs:
    n_pieces = next(iter(vs.values()))["pieces"]
    lines += ["", f"Model minus baseline on all positions, with 95 % intervals from a paired bootstrap over the "
              f"{n_pieces:,} evaluated pieces (sequences or 512-bp windows; positions of one piece resampled "
              "together):", "", "| baseline | accuracy gain | 95 % CI | NLL change (nats/position) | 95 % CI |",
              "|---|---:|---|---:|---|"]
    lines += [f"| {b} | {d['acc_diff']:+.4f} | [{d['acc_diff_ci95'][0]:+.4f}, {d['acc_diff_ci95'][1]:+.4f}] | "
              f"{d['nll_diff']:+.4f} | [{d['nll_diff_ci95'][0]:+.4f}, {d['nll_diff_ci95'][1]:+.4f}] |"
              for b, d in vs.items()]
lines += ["", "## float16 check", "",
          f"Validation loss on the run's fixed validation sample, same masks: fp32 checkpoint "
          f"{prec['fp32']['val_loss']:.6f} (acc {prec['fp32']['val_acc']:.4f}), float16 export reloaded "
          f"{prec['exported']['val_loss']:.6f} (acc {prec['exported']['val_acc']:.4f}); "
          f"|difference| = {prec['abs_diff_loss']:.1e} nats.", ""]
(w / "MODEL_CARD.md").write_text("\n".join(lines))
print((w / "MODEL_CARD.md").read_text())
