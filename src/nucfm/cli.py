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
    p.add_argument("--int8", action="store_true",
                   help="int8 dynamic quantization of the linear layers (faster on CPU, slightly less exact)")
    p.set_defaults(run=run_embed)


def run_embed(args):
    from nucfm.tasks.embed import embed_fasta

    name, model = load_cli_model(args.model, "rna", args.threads)
    if args.int8:
        from nucfm.models.quantize import quantize_int8

        model = quantize_int8(model)
    summary = embed_fasta(model, args.input, args.output, layer=args.layer,
                          pool=None if args.pool == "none" else args.pool, batch_tokens=args.batch_tokens,
                          overlap=args.overlap, convert=not args.no_convert, model_name=str(name))
    log.info(f"embedded {summary['records']} records ({summary['residues']} nt) with {name} -> {args.output}")


# ---- convert ------------------------------------------------------------------------------------
def add_convert(sub):
    p = sub.add_parser("convert", help="write any loadable model (official .pth, GPN directory, name) as a "
                       "nucfm checkpoint directory")
    p.add_argument("-m", "--model", required=True, help="model name or path")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--fp16", action="store_true", help="store weights in float16 (half the size)")
    p.set_defaults(run=run_convert)


def run_convert(args):
    import torch

    from nucfm.checkpoint import load_model, save_model

    model = load_model(args.model)
    path = save_model(model, args.output, dtype=torch.float16 if args.fp16 else None,
                      metadata={"converted_from": str(args.model)})
    log.info(f"wrote {path}")


COMMANDS = [add_models, add_embed, add_convert]


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
