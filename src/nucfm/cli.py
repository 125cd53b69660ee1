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


# ---- vep / probs (GPN-style DNA models) ---------------------------------------------------------
def _add_genome_args(p):
    p.add_argument("--genome", required=True, help="reference FASTA (plain, .gz or bgzip)")
    p.add_argument("--chrom-alias", action="append", metavar="NAME=CONTIG|FILE",
                   help="map a chromosome name of the input to a genome contig (repeatable), or a two-column "
                        "TSV of such pairs, e.g. --chrom-alias 1=NC_003070.9")
    p.add_argument("--model", help="model name or path (default: the shipped default DNA model)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--batch-size", type=int, default=None, help="variants or positions per forward pass")


def _load_dna(args):
    import os

    import torch

    from nucfm import load_model
    from nucfm.checkpoint import registry
    from nucfm.io.genome import Genome, parse_aliases

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.model or registry.default_model("dna")
    model = load_model(name)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per process
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    model = model.to(device)
    genome = Genome(args.genome, aliases=parse_aliases(args.chrom_alias))
    return name, model, genome


def add_vep(sub):
    p = sub.add_parser("vep", help="zero-shot variant effect scores (GPN's masked log-likelihood ratio)")
    _add_genome_args(p)
    p.add_argument("--variants", required=True, help="VCF[.gz], TSV, CSV or Parquet with chrom,pos,ref,alt (1-based)")
    p.add_argument("-o", "--output", required=True,
                   help="output .tsv[.gz], .csv[.gz], .parquet, or .vcf[.gz] (VCF input only)")
    p.add_argument("--window", type=int, default=512, help="bases of context centred on the variant (default 512)")
    p.add_argument("--method", default="llr", help="scoring strategy: llr (GPN, default) or alt_logprob")
    p.add_argument("--per-strand", action="store_true", help="also write score_fwd and score_rev")
    p.add_argument("--strict-ref", action="store_true", help="fail on a REF mismatch instead of marking the row")
    p.add_argument("--chunk-size", type=int, default=2048, help="variants per resumable chunk (default 2048)")
    p.add_argument("--restart", action="store_true", help="discard partial results of an earlier run")
    p.add_argument("--info-key", default="NUCFM_SCORE", help="INFO field name for VCF output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_vep)


def run_vep(args):
    from nucfm.tasks.variants import score_variant_file

    name, model, genome = _load_dna(args)
    counts = score_variant_file(model, genome, args.variants, args.output, window=args.window, method=args.method,
                                per_strand=args.per_strand, batch_size=args.batch_size, chunk_size=args.chunk_size,
                                strict_ref=args.strict_ref, restart=args.restart, progress=not args.no_progress,
                                info_key=args.info_key, model_name=str(name))
    if counts is not None:
        log.info("wrote %s: %s", args.output, ", ".join(f"{k} {v}" for k, v in counts.items()))


def add_probs(sub):
    p = sub.add_parser("probs", help="masked-prediction A/C/G/T distribution at every position of a region")
    _add_genome_args(p)
    p.add_argument("--region", required=True, help="CHROM:START-END, 1-based inclusive (e.g. chr1:1001-1100)")
    p.add_argument("-o", "--output", required=True, help="output .tsv[.gz], .csv, .parquet or .npz")
    p.add_argument("--window", type=int, default=512, help="bases of context centred on each position (default 512)")
    p.add_argument("--strands", choices=("both", "fwd"), default="both",
                   help="average the forward and reverse-complement predictions (default) or forward only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_probs)


def run_probs(args):
    from tqdm.auto import tqdm

    from nucfm.io.genome import parse_region
    from nucfm.tasks.variants import position_probs, write_position_probs

    chrom, start, end = parse_region(args.region)
    _, model, genome = _load_dna(args)
    with tqdm(total=end - start, unit="position", disable=args.no_progress, desc="probs") as bar:
        result = position_probs(model, genome, chrom, start, end, window=args.window, strands=args.strands,
                                batch_size=args.batch_size, progress=bar)
    write_position_probs(result, chrom, args.output)
    log.info("wrote %s: %d positions", args.output, end - start)


COMMANDS = [add_models, add_vep, add_probs]


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
