"""``pretrain``, ``eval-mlm``, ``finetune``, ``predict``: training recipes and task models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nucfm.cli.common import (
    add_common,
    add_recipe_options,
    check_input,
    check_model_name,
    check_output,
    check_text,
    device_name,
    new_run_dir,
    nonnegative_int,
    positive_int,
    resolve_device,
)
from nucfm.errors import InputError

log = logging.getLogger("nucfm")


# ---- pretrain -----------------------------------------------------------------------------------
def add_pretrain(sub):
    p = sub.add_parser("pretrain", help="masked-LM pretraining from a run config (RNA transformer or DNA ConvNet)",
                       description="Train a model with masked-token prediction. The config (YAML) has sections "
                       "model, data, train, output; KEY=VALUE overrides (e.g. train.steps=100) apply on top. "
                       "Run under torchrun for several processes (DDP).")
    add_recipe_options(p, "run config YAML (see configs/)", "train.lr=3e-4",
                       "run directory (sets the config's output)", config_required=True)
    p.add_argument("--device", type=device_name, default=None,
                   help="torch device (sets train.device: auto, cpu, cuda, cuda:N)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (sets train.threads)")
    p.add_argument("--export", metavar="DIR", default=None,
                   help="after training, write the final model here as fp16 safetensors with eval.json (held-out "
                        "loss of fp32 and fp16, minutes, tokens/s, FLOPs utilisation, hardware) and MODEL_CARD.md")
    p.add_argument("--description", default="a nucfm masked language model",
                   help="the model's one-line description in its card (with --export)")
    p.add_argument("--resume", action="store_true",
                   help="insist on continuing from the run's latest checkpoint (rerunning the same config resumes "
                        "anyway)")
    p.set_defaults(run=run_pretrain)


def run_pretrain(args):
    import yaml

    from nucfm.train.config import load_config
    from nucfm.train.pretrain import pretrain

    check_text(args.config, "config")
    overrides = list(args.overrides)
    for key, value in (("output", args.output), ("train.device", args.device), ("train.threads", args.threads)):
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(args.config, overrides)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if cfg.data.prepared is None:  # the sources are read only when the data is not prepared yet
        for path in list(cfg.data.fasta) + cfg.data.genomes() + [cfg.data.families]:
            check_input(path, "data.* source")
    check_output(cfg.output, [args.config], "run directory", directory=True)
    resolve_device(cfg.train.device)
    if args.export:
        check_output(args.export, [args.config], "export directory", directory=True)
    with new_run_dir(cfg.output):
        out = pretrain(cfg, resume=args.resume or None, restart=args.restart)
    log.info("run written to %s", out)
    if args.export:
        from nucfm.train.export import export_run

        res = export_run(out, args.export, args.description, device=str(resolve_device(cfg.train.device)))
        log.info("held-out loss %.4f (fp16 export %.4f); model, eval.json and MODEL_CARD.md written to %s",
                 res["held_out"]["fp32"]["val_loss"], res["held_out"]["exported"]["val_loss"], args.export)


# ---- eval-mlm -----------------------------------------------------------------------------------
def add_eval_mlm(sub):
    p = sub.add_parser("eval-mlm", help="masked-token accuracy and perplexity against unigram and k-mer baselines",
                       description="Mask 15%% of residues (80/10/10, seeded) and score the model and two count "
                       "baselines (unigram; base given its +-3 neighbours, counted on the training data) on the "
                       "same positions. For a genome region with --gff, also per region class.")
    add_common(p, model_kind="rna", output_help="also write the table as JSON here", output_required=False,
               device=True, progress=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-i", "--input", "--fasta", dest="fasta",
                     help="sequences to evaluate (long ones are split into model-sized chunks)")
    src.add_argument("--genome", help="genome FASTA (with --region)")
    p.add_argument("--region", help="CHROM:START-END of --genome, 1-based inclusive (as samtools)")
    p.add_argument("--gff", help="GFF3 annotation: adds rows per class (CDS, UTRs, ncRNA, intron, intergenic)")
    p.add_argument("--chrom-alias", action="append", metavar="NAME=CONTIG|FILE",
                   help="contig name in --region / --gff -> contig in --genome (repeatable), or a two-column TSV")
    p.add_argument("--counts", help="baseline counts (.npz) from the training data; default: mlm_counts.npz "
                   "beside the model")
    p.add_argument("--window", type=positive_int, default=512, help="genome window per forward pass (default 512)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="masking seed (default 0)")
    p.add_argument("--corruption", choices=["mask", "80-10-10"], default="mask",
                   help="selected positions all become <mask> (default), or training's 80/10/10")
    p.add_argument("--batch-size", type=positive_int, default=16, help="sequences per forward pass (default 16)")
    p.set_defaults(run=run_eval_mlm)


def run_eval_mlm(args):
    import json

    from nucfm.checkpoint import load_model, registry, resolve
    from nucfm.data.baselines import ContextCounts
    from nucfm.paths import atomic_write_text
    from nucfm.tasks.eval_mlm import evaluate_mlm, fasta_pieces, find_counts, format_table, genome_pieces

    if args.genome and not args.region:
        raise InputError("--genome needs --region CHROM:START-END")
    if args.region and not args.genome:
        raise InputError("--region needs --genome (with --fasta every record is evaluated)")
    if args.gff and not args.genome:
        raise InputError("--gff needs --genome and --region")
    if args.region:
        from nucfm.io.genome import parse_region

        parse_region(args.region)
    inputs = [args.fasta, args.genome, args.gff, args.counts]
    for path, what in zip(inputs, ("FASTA", "genome", "GFF", "counts"), strict=True):
        check_input(path, what)
    if args.counts and not args.counts.lower().endswith(".npz"):
        raise InputError(f"{args.counts}: baseline counts are a .npz file (a run's data/counts.npz)")
    if args.output is not None and not args.output.lower().endswith(".json"):
        raise InputError(f"{args.output}: the table is written as JSON; name the output .json")
    check_output(args.output, inputs)
    check_model_name(args.model)
    device = resolve_device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    name = args.model or registry.default_model("dna" if args.genome else "rna")
    path = resolve(name)
    if str(name) in registry.MODELS and registry.MODELS[str(name)].kind not in ("rna", "dna"):
        raise InputError(f"{name} is a {registry.MODELS[str(name)].kind.upper()} model; eval-mlm needs a "
                         "language model (see `nucfm models`)")
    model = load_model(path).to(device)
    if getattr(getattr(model, "alphabet", None), "kmer", 1) > 1:
        raise InputError(f"{name} is a codon model (mRNA-FM): eval-mlm scores nucleotide models (see `nucfm models`)")
    counts_path = Path(args.counts) if args.counts else find_counts(path)
    if counts_path is None:
        raise InputError(f"no baseline counts for {name}: pass --counts (a run's data/counts.npz)")
    counts = ContextCounts.load(counts_path)
    if args.fasta:
        pieces = fasta_pieces(args.fasta, model, counts)
    else:
        from nucfm.io.genome import parse_aliases

        pieces = genome_pieces(args.genome, args.region, model, counts, args.window, args.gff,
                               aliases=parse_aliases(args.chrom_alias))
    rows = evaluate_mlm(model, pieces, counts, seed=args.seed, batch_size=args.batch_size,
                        progress=not args.no_progress, mask_frac=1.0 if args.corruption == "mask" else 0.8)
    print(format_table(rows))
    if args.output:
        atomic_write_text(args.output, json.dumps({"model": str(name), "rows": rows}, indent=1) + "\n")
        log.info("wrote %s", args.output)


# ---- finetune / predict -------------------------------------------------------------------------
def add_finetune(sub):
    p = sub.add_parser("finetune", help="train a task model (regression, classification, per-residue) on a table",
                       description="Fine-tune on a labelled table (CSV/TSV/Parquet, or FASTA with the label in the "
                       "header via header_regex): backbone frozen (cached embeddings), full, LoRA, or none (one-hot "
                       "baseline). The config (YAML; keys as in --print-config) takes KEY=VALUE overrides. Rerun "
                       "the same command to resume; --restart starts over. The model is OUTPUT/best.")
    add_recipe_options(p, "task config YAML (see configs/tasks/)", "backbone=none lr=1e-3",
                       "run directory (sets the config's output)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (sets threads)")
    p.set_defaults(run=run_finetune)


def run_finetune(args):
    import yaml

    from nucfm.train.config import load_dict
    from nucfm.train.finetune import FinetuneConfig, finetune

    check_text(args.config, "config")
    d = load_dict(args.config, args.overrides)
    for key, value in (("output", args.output), ("threads", args.threads)):
        if value is not None:
            d[key] = value
    cfg = FinetuneConfig.from_dict(d)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    for spec in (cfg.train, cfg.test):
        for path in ([spec] if isinstance(spec, str) else list(spec or [])):
            check_input(path, "training/test data")
    check_model_name(cfg.backbone)
    check_output(cfg.output, [args.config], "run directory", directory=True)
    with new_run_dir(cfg.output):
        summary = finetune(cfg, restart=args.restart)
    key = "test_mean" if "test_mean" in summary else "test"
    print(json.dumps({key: summary[key], "train_minutes": summary["train_minutes"]}, indent=2, default=float))
    model = "fold_K/best" if key == "test_mean" else "best"
    log.info("run written to %s (summary.json; the model: %s)", cfg.output, Path(cfg.output) / model)


def add_predict(sub):
    p = sub.add_parser("predict", help="predict with a task model (from `nucfm finetune` or `nucfm models`)",
                       description="One output row per input record, in input order, keyed by id. Finished "
                       "chunks wait in OUTPUT.parts/: rerun the same command to resume; --restart starts over.")
    add_common(p, model_kind="any", input_help="sequences: FASTA or table (CSV/TSV/Parquet with a seq column)",
               output_help="predictions: .tsv, .csv or .parquet", device=True)
    p.add_argument("--seq-col", default=None, help="sequence column of a table (default seq/sequence/utr)")
    p.add_argument("--chunk-records", type=positive_int, default=4096, help="records per resumable chunk")
    p.add_argument("--restart", action="store_true", help="discard finished chunks of an earlier, different run")
    p.set_defaults(run=run_predict)


def run_predict(args):
    import torch

    from nucfm.checkpoint import load_model
    from nucfm.tasks.predict import predict_file

    check_input(args.input, "input")
    check_output(args.output, [args.input])
    if Path(args.output).suffix not in (".tsv", ".csv", ".parquet", ".txt"):
        raise InputError(f"{args.output}: write predictions to .tsv, .csv or .parquet")
    check_model_name(args.model)
    from nucfm.io.tables import iter_sequence_table

    for _ in iter_sequence_table(args.input, args.seq_col):  # every input check (columns, protein) before
        pass  # the model loads, streamed: memory holds one chunk of records
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model = load_model(args.model)
    if not hasattr(model, "predict"):
        raise InputError(f"{args.model} is not a task model (use `nucfm embed` for language models)")
    model = model.to(device)
    n = predict_file(model, args.input, args.output, args.seq_col, chunk_records=args.chunk_records,
                     restart=args.restart)
    log.info("wrote %d predictions to %s", n, args.output)
