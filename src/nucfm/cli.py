"""The ``nucfm`` command. Parsing only: every subcommand calls one library function.

Each subcommand is a pair ``add_NAME(subparsers)`` / ``run_NAME(args)`` registered in
``COMMANDS``. User errors (:class:`nucfm.errors.NucfmError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from nucfm.errors import NucfmError

log = logging.getLogger("nucfm")


# ---- models -------------------------------------------------------------------------------------
def add_models(sub):
    p = sub.add_parser("models", help="list the model names nucfm knows (shipped, cached, downloadable)")
    p.set_defaults(run=run_models)


def run_models(args):
    from nucfm.checkpoint import registry

    for e in registry.MODELS.values():
        if e.shipped:
            where = "shipped"
        else:
            where = "cached" if (registry.home() / e.name).exists() else "download on first use"
        default = " (default)" if registry.DEFAULTS.get(e.kind) == e.name else ""
        print(f"{e.name:32s} {e.kind:4s} {where:22s} {e.description}{default}")


# ---- pretrain -----------------------------------------------------------------------------------
def add_pretrain(sub):
    p = sub.add_parser("pretrain", help="masked-LM pretraining from a run config (RNA transformer or DNA ConvNet)",
                       description="Train a model with masked-token prediction. The config (YAML) has sections "
                       "model, data, train, output; KEY=VALUE overrides (e.g. train.steps=100) apply on top. "
                       "Run under torchrun for several processes (DDP).")
    p.add_argument("--config", required=True, help="run config YAML (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.lr=3e-4")
    p.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(run=run_pretrain)


def run_pretrain(args):
    import yaml

    from nucfm.train.config import load_config
    from nucfm.train.pretrain import pretrain

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    out = pretrain(cfg, resume=args.resume)
    log.info("run written to %s", out)


# ---- eval-mlm -----------------------------------------------------------------------------------
def add_eval_mlm(sub):
    p = sub.add_parser("eval-mlm", help="masked-token accuracy and perplexity against unigram and k-mer baselines",
                       description="Mask 15%% of residues (80/10/10, seeded) and score the model and two count "
                       "baselines (unigram; base given its +-3 neighbours, counted on the training data) on the "
                       "same positions. For a genome region with --gff, also per region class.")
    p.add_argument("--model", help="model name or directory (default: the shipped model of the input's kind)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fasta", help="sequences to evaluate (long ones are split into model-sized chunks)")
    src.add_argument("--genome", help="genome FASTA (with --region)")
    p.add_argument("--region", help="CHROM:START-END of --genome, 0-based half-open")
    p.add_argument("--gff", help="GFF3 annotation: adds rows per class (CDS, UTRs, ncRNA, intron, intergenic)")
    p.add_argument("--counts", help="baseline counts (.npz) from the training data; default: mlm_counts.npz "
                   "beside the model")
    p.add_argument("--window", type=int, default=512, help="genome window per forward pass (default 512)")
    p.add_argument("--seed", type=int, default=0, help="masking seed (default 0)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("-o", "--output", help="write the table as JSON here")
    p.set_defaults(run=run_eval_mlm)


def run_eval_mlm(args):
    import json
    from pathlib import Path

    from nucfm.checkpoint import load_model, registry
    from nucfm.data.baselines import ContextCounts
    from nucfm.errors import InputError
    from nucfm.tasks.eval_mlm import evaluate_mlm, fasta_pieces, find_counts, format_table, genome_pieces

    if args.genome and not args.region:
        raise InputError("--genome needs --region CHROM:START-END")
    name = args.model or registry.default_model("dna" if args.genome else "rna")
    path = registry.resolve(name) if name in registry.MODELS and not Path(name).exists() else Path(name)
    model = load_model(name)
    counts_path = Path(args.counts) if args.counts else find_counts(path)
    if counts_path is None:
        raise InputError(f"no baseline counts for {name}: pass --counts (a run's data/counts.npz)")
    counts = ContextCounts.load(counts_path)
    if args.fasta:
        pieces = fasta_pieces(args.fasta, model, counts)
    else:
        pieces = genome_pieces(args.genome, args.region, model, counts, args.window, args.gff)
    rows = evaluate_mlm(model, pieces, counts, seed=args.seed, batch_size=args.batch_size, progress=True)
    print(format_table(rows))
    if args.output:
        Path(args.output).write_text(json.dumps({"model": str(name), "rows": rows}, indent=1) + "\n")


COMMANDS = [add_models, add_pretrain, add_eval_mlm]


def build_parser() -> argparse.ArgumentParser:
    from nucfm import __version__

    parser = argparse.ArgumentParser(prog="nucfm", description="Nucleotide foundation models for RNA and DNA.")
    parser.add_argument("--version", action="version", version=f"nucfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="nucfm: %(message)s")
    try:
        return int(args.run(args) or 0)
    except NucfmError as e:
        if args.verbose:
            raise
        print(f"nucfm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nucfm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
