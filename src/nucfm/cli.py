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


# ---- embed --------------------------------------------------------------------------------------
def add_model_option(p, kind: str):
    p.add_argument("-m", "--model", default=None,
                   help=f"model name or path (default: the shipped {kind.upper()} model; see `nucfm models`)")


def load_cli_model(name: str | None, kind: str, threads: int | None = None):
    """Resolve --model (default: the shipped model of ``kind``) and set the thread count."""
    import torch

    from nucfm.checkpoint import load_model, registry

    if threads:
        torch.set_num_threads(threads)
    name = name or registry.default_model(kind)
    return name, load_model(name)


def add_embed(sub):
    p = sub.add_parser("embed", help="per-residue or pooled embeddings of a FASTA file",
                       description="Embed every record of a FASTA/FASTQ file (plain or gzip). Output format "
                       "by extension: .h5/.npz (per residue or pooled), .npy/.parquet (pooled).")
    p.add_argument("-i", "--input", required=True, help="FASTA or FASTQ, optionally gzip/bgzip compressed")
    p.add_argument("-o", "--output", required=True, help="output .h5, .npz, .npy or .parquet")
    add_model_option(p, "rna")
    p.add_argument("--layer", type=int, default=-1,
                   help="layer to read: 0 = embeddings, k = after block k, -1 = final (default)")
    p.add_argument("--pool", choices=["mean", "none"], default="none", help="mean over residues, or none")
    p.add_argument("--batch-tokens", type=int, default=4096, help="tokens per batch (padding included)")
    p.add_argument("--overlap", type=int, default=None,
                   help="overlap of windows over long sequences (default: a quarter of the model maximum)")
    p.add_argument("--no-convert", action="store_true",
                   help="keep T in RNA (U in DNA) as unknown letters instead of converting them")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.set_defaults(run=run_embed)


def run_embed(args):
    from nucfm.tasks.embed import embed_fasta

    name, model = load_cli_model(args.model, "rna", args.threads)
    summary = embed_fasta(model, args.input, args.output, layer=args.layer,
                          pool=None if args.pool == "none" else args.pool, batch_tokens=args.batch_tokens,
                          overlap=args.overlap, convert=not args.no_convert, model_name=str(name))
    log.info(f"embedded {summary['records']} records ({summary['residues']} nt) with {name} -> {args.output}")


# ---- secondary structure ------------------------------------------------------------------------
def add_fold(sub):
    p = sub.add_parser("fold", help="predict RNA secondary structures from a FASTA file",
                       description="Predict the secondary structure of every FASTA record with a structure "
                       "model (default: the shipped one). Long sequences are embedded in overlapping windows.")
    p.add_argument("-i", "--input", required=True, help="FASTA (plain or gzip); T is read as U, other letters as N")
    p.add_argument("-o", "--output", required=True,
                   help="structures: one .dbn/.ct file; --format bpseq with several records: a directory")
    p.add_argument("--format", choices=["dbn", "bpseq", "ct"], default=None,
                   help="output format (default: from the output extension, else dbn)")
    p.add_argument("--model", default=None, help="structure model name or directory (default: the shipped one)")
    p.add_argument("--probs", default=None, help="also write pair probabilities, one (L, L) array per id (.npz)")
    p.add_argument("--plot", default=None, metavar="DIR", help="also draw a PNG per record into DIR")
    p.add_argument("--threshold", type=float, default=None, help="pair probability threshold (default: the model's)")
    p.add_argument("--decode", choices=["greedy", "matching"], default=None, help="decoding (default: the model's)")
    p.add_argument("--canonical-only", action="store_true", help="keep only AU, GC and GU pairs")
    p.add_argument("--no-pseudoknots", action="store_true", help="remove crossing pairs")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.set_defaults(run=run_fold)


def run_fold(args):
    import dataclasses
    from pathlib import Path

    import torch

    from nucfm.checkpoint import registry
    from nucfm.checkpoint.ss_head import load_structure_model
    from nucfm.tasks.structure import fold_fasta

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.model or registry.default_model("ss")
    predictor = load_structure_model(name)
    opts = predictor.decode_options
    changes = {k: v for k, v in {"threshold": args.threshold, "method": args.decode}.items() if v is not None}
    if args.canonical_only:
        changes["canonical_only"] = True
    if args.no_pseudoknots:
        changes["pseudoknots"] = False
    opts = dataclasses.replace(opts, **changes)
    fmt = args.format or {".ct": "ct", ".bpseq": "bpseq"}.get(Path(args.output).suffix.lower(), "dbn")
    summary = fold_fasta(predictor, args.input, args.output, fmt=fmt, probs_path=args.probs,
                         plot_dir=args.plot, opts=opts)
    log.info(f"folded {summary['records']} records ({summary['pairs']} pairs) with {name} -> {args.output}")


def add_train_ss(sub):
    from nucfm.train.ss import TrainSSConfig

    d = TrainSSConfig()
    p = sub.add_parser("train-ss", help="train a secondary-structure pair head (bpRNA TR0 / VL0 by default)",
                       description="Train a pair head on frozen LM embeddings and/or pair features; the "
                       "checkpoint and threshold are chosen on the validation file. Rerun the same command "
                       "to resume. Options override --config (JSON, keys as in OUTPUT/train_config.json).")
    p.add_argument("--config", default=None, help="JSON file of training options")
    p.add_argument("--train", default=None, help=f"training structures (default {d.train})")
    p.add_argument("--valid", default=None, help=f"validation structures (default {d.valid})")
    p.add_argument("-o", "--output", default=None, help=f"run directory (default {d.output}); best model in OUTPUT/best")
    p.add_argument("--lm", default=None, help="language model (name or path) for embeddings; 'none' = features only")
    p.add_argument("--lm-layer", type=int, default=None, help="LM layer to read (default -1, the final output)")
    p.add_argument("--features", default=None,
                   help="comma-separated extra pair channels from: onehot, bpp; 'none' for none "
                   f"(default {','.join(d.features)})")
    for name in ("blocks", "channels", "reduction", "crop", "batch-pairs", "max-steps", "eval-every", "threads",
                 "seed", "limit-train"):
        p.add_argument(f"--{name}", type=int, default=None)
    for name in ("lr", "max-minutes", "dropout", "pos-weight"):
        p.add_argument(f"--{name}", type=float, default=None)
    p.add_argument("--description", default=None, help="model description stored in the checkpoint")
    p.set_defaults(run=run_train_ss)


def run_train_ss(args):
    import json

    from nucfm.train.ss import TrainSSConfig, train_ss

    opts = json.loads(open(args.config).read()) if args.config else {}
    for key in ("train", "valid", "output", "lm", "lm_layer", "blocks", "channels", "reduction", "crop",
                "batch_pairs", "max_steps", "eval_every", "threads", "seed", "limit_train", "lr", "max_minutes",
                "dropout", "pos_weight", "description"):
        value = getattr(args, key)
        if value is not None:
            opts[key] = value
    if opts.get("lm") in ("none", ""):
        opts["lm"] = None
    if args.features is not None:
        opts["features"] = [] if args.features in ("none", "") else args.features.split(",")
    summary = train_ss(TrainSSConfig.from_dict(opts))
    print(json.dumps({k: summary[k] for k in ("steps", "train_minutes", "threshold", "valid")}, indent=2))


def add_score_ss(sub):
    p = sub.add_parser("score-ss", help="precision, recall, F1 and MCC of predicted structures against references",
                       description="Macro-averaged base-pair scores (exact and +-1 shift). Files or directories "
                       "of .dbn, .bpseq or .ct; records matched by id.")
    p.add_argument("--pred", required=True, help="predicted structures")
    p.add_argument("--ref", required=True, help="reference structures")
    p.add_argument("--per-seq", default=None, help="also write per-sequence scores (TSV)")
    p.set_defaults(run=run_score_ss)


def run_score_ss(args):
    from nucfm.tasks.structure import score_files

    exact, per = score_files(args.pred, args.ref)
    shifted, _ = score_files(args.pred, args.ref, shift=1)
    print("metric\tprecision\trecall\tf1\tmcc\tn")
    for label, a in (("exact", exact), ("shift1", shifted)):
        print(f"{label}\t{a['precision']:.4f}\t{a['recall']:.4f}\t{a['f1']:.4f}\t{a['mcc']:.4f}\t{a['n']}")
    if exact["missing"]:
        log.warning(f"{exact['missing']} reference record(s) had no prediction and were scored as empty")
    if args.per_seq:
        with open(args.per_seq, "w") as fh:
            fh.write("id\tprecision\trecall\tf1\tmcc\ttp\tfp\tfn\n")
            for rid, s in per.items():
                fh.write(f"{rid}\t{s.precision:.4f}\t{s.recall:.4f}\t{s.f1:.4f}\t{s.mcc:.4f}\t{s.tp}\t{s.fp}\t{s.fn}\n")


COMMANDS = [add_models, add_embed]
COMMANDS += [add_fold, add_train_ss, add_score_ss]


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
