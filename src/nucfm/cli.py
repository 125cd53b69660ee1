"""The ``nucfm`` command. Parsing only: every subcommand calls one library function.

Each subcommand is a pair ``add_NAME(subparsers)`` / ``run_NAME(args)`` registered in
``COMMANDS``. User errors (:class:`nucfm.errors.NucfmError`) print one line and exit 2.

One convention for every subcommand (:func:`add_common`): ``-i/--input``, ``-o/--output``,
``-m/--model``, ``--threads``, ``--device`` where a model runs, ``--no-progress`` where work is
long. Every ``run_NAME`` checks ALL its arguments (numbers, input files, output names and
directories, output != input) before it loads a model or reads a big input, so a mistake costs
nothing and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from nucfm.errors import InputError, NucfmError

log = logging.getLogger("nucfm")


# ---- argument types: bad values are one-line usage errors ---------------------------------------
def _number(text: str, kind, what: str):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    v = _number(text, int, "an integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    v = _number(text, int, "an integer")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


def probability(text: str) -> float:
    """A number in [0, 1]."""
    v = _number(text, float, "a number")
    if not 0.0 <= v <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1]")
    return v


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked against the machine later)."""
    kind, _, index = text.partition(":")
    if kind not in ("auto", "cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return text


# ---- the common options ---------------------------------------------------------------------------
def add_common(p, model_kind: str | None = None, input_help: str | None = None, input_names: tuple = (),
               input_required: bool = True, output_help: str | None = None, output_names: tuple = (),
               output_required: bool = True, device: bool = False, progress: bool = False, threads: bool = True):
    """The options every subcommand spells the same way: ``-i/--input`` (plus the older names in
    ``input_names``), ``-o/--output``, ``-m/--model`` (``model_kind``: rna, dna, ss or any),
    ``--threads``, ``--device`` and ``--no-progress``."""
    if input_help is not None:
        p.add_argument("-i", "--input", *input_names, dest="input", required=input_required, help=input_help)
    if output_help is not None:
        p.add_argument("-o", "--output", *output_names, dest="output", required=output_required, help=output_help)
    if model_kind is not None:
        default = "required" if model_kind == "any" else f"default: the shipped {model_kind.upper()} model"
        p.add_argument("-m", "--model", default=None, required=model_kind == "any",
                       help=f"model name or path ({default}; see `nucfm models`)")
    if threads:
        p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: all)")
    if device:
        p.add_argument("--device", type=device_name, default="auto",
                       help="torch device: auto (CUDA if available, default), cpu, cuda, cuda:N, mps")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_recipe_options(p, config_help: str, overrides_example: str, output_help: str,
                       config_required: bool = False) -> None:
    """The options of every training recipe (``pretrain``, ``train-ss``, ``finetune``): a YAML
    config, ``KEY=VALUE`` overrides, the run directory, ``--print-config`` and ``--restart`` (the
    resume convention: rerunning the same config resumes)."""
    p.add_argument("-c", "--config", "-i", "--input", dest="config", required=config_required, default=None,
                   help=config_help)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"config overrides, e.g. {overrides_example}")
    p.add_argument("-o", "--output", default=None, help=output_help)
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--restart", action="store_true", help="discard an earlier run in the output and start over")


def _require_analysis(command: str, modules: tuple[str, ...]) -> None:
    """The analysis extra's libraries ``command`` imports are installed (checked, not imported)."""
    from importlib.util import find_spec

    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise InputError(f"nucfm {command} needs {', '.join(missing)}: pip install 'nucfm[analysis]'")


def check_input(path: str | None, what: str = "input", directory: bool = False) -> Path | None:
    """``path`` exists and is a readable file (or a directory when ``directory``)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file (the {what})")
    if p.is_dir() and not directory:
        raise InputError(f"{path}: the {what} is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{path}: the {what} is not readable")
    return p


def check_output(path: str | None, inputs=(), what: str = "output", directory: bool = False) -> Path | None:
    """``path`` can be written: its directory exists and is writable, it is not one of
    ``inputs`` (resolved paths), and it is not a directory where a file goes (or a file where a
    directory goes, with ``directory``)."""
    if path is None:
        return None
    p = Path(path)
    if str(path).strip() == "":
        raise InputError(f"the {what} name is empty")
    parent = p.parent
    if not parent.is_dir():
        raise InputError(f"{path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: the directory {parent} is not writable")
    if p.is_dir() and not directory:
        raise InputError(f"{path}: the {what} is an existing directory; give a file name")
    if p.exists() and directory and not p.is_dir():
        raise InputError(f"{path}: the {what} is a directory, but a file has this name")
    target = p.resolve()
    for src in inputs:
        if src is not None and Path(src).exists() and Path(src).resolve() == target:
            raise InputError(f"{path}: the {what} would overwrite an input; choose another name")
    return p


def check_text(path: str | None, what: str = "config") -> None:
    """``path`` (when given) is a readable UTF-8 text file."""
    if path is None:
        return
    check_input(path, what)
    try:
        Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {e.start}); is it the right file?") from None


def resolve_device(name: str | None):
    """The torch device for ``--device`` (under torchrun ``cuda`` means this process's GPU)."""
    import torch

    from nucfm.distributed import Context

    ctx = Context(world=int(os.environ.get("WORLD_SIZE", "1")), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    device = ctx.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


def check_model_name(name: str | None) -> None:
    """A --model that is neither a registered name nor an existing path fails before any work."""
    if name is None:
        return
    from nucfm.checkpoint import registry

    if str(name) not in registry.MODELS and not Path(name).exists():
        raise InputError(f"unknown model {name!r}: not a file or directory, nor a name of `nucfm models` "
                         f"({', '.join(sorted(registry.MODELS))})")


# ---- models -------------------------------------------------------------------------------------
def add_models(sub):
    p = sub.add_parser("models", help="list the model names nucfm knows (shipped, cached, downloadable)")
    p.set_defaults(run=run_models)


def run_models(args):
    from nucfm.checkpoint import registry

    width = max(len(n) for n in registry.MODELS)
    for e in registry.MODELS.values():
        if e.shipped:
            where = "shipped"
        else:
            where = "cached" if registry.is_cached(e.name) else "download on first use"
        default = " (default)" if registry.DEFAULTS.get(e.kind) == e.name else ""
        print(f"{e.name:{width}s} {e.kind:7s} {where:22s} {e.description}{default}")


# ---- embed --------------------------------------------------------------------------------------
def add_model_option(p, kind: str):
    p.add_argument("-m", "--model", default=None,
                   help=f"model name or path (default: the shipped {kind.upper()} model; see `nucfm models`)")


def load_cli_model(name: str | None, kind: str, threads: int | None = None, device=None):
    """Resolve --model (default: the shipped model of ``kind``), set the thread count, check the
    model is a language model of the right alphabet, and move it to ``device``."""
    import torch

    from nucfm.checkpoint import load_model, registry

    if threads:
        torch.set_num_threads(threads)
    name = name or registry.default_model(kind)
    if str(name) in registry.MODELS and registry.MODELS[str(name)].kind not in (kind, "rna", "dna"):
        raise InputError(f"{name} is a {registry.MODELS[str(name)].kind.upper()} model; this command needs a "
                         f"{kind.upper()} language model (see `nucfm models`)")
    model = load_model(name)
    from nucfm.models import NucleotideLM

    if not isinstance(model, NucleotideLM):  # a task model given by its path
        raise InputError(f"{name} is a task model (use `nucfm predict`); this command needs a {kind.upper()} "
                         "language model (see `nucfm models`)")
    if kind == "dna" and model.alphabet.name == "rna-fm":
        raise InputError(f"{name} is an RNA model; this command needs a DNA model (see `nucfm models`)")
    if device is not None:
        model = model.to(device)
    return name, model


def add_embed(sub):
    p = sub.add_parser("embed", help="per-residue or pooled embeddings of a FASTA file",
                       description="Embed every record of a FASTA/FASTQ file (plain or gzip). Output format "
                       "by extension: .h5/.npz (per residue or pooled), .npy/.parquet (pooled). Records are "
                       "keyed by id; repeated or colliding ids get #2, #3... (every record is kept).")
    add_common(p, model_kind="rna", input_help="FASTA or FASTQ, optionally gzip/bgzip compressed",
               input_names=("--fasta",), output_help="output .h5, .npz (per residue or pooled), .npy or .parquet "
               "(pooled)", device=True, progress=True)
    p.add_argument("--layer", type=int, default=-1,
                   help="layer to read: 0 = embeddings, k = after block k, -1 = final (default)")
    p.add_argument("--pool", choices=["mean", "none"], default="none", help="mean over residues, or none")
    p.add_argument("--batch-tokens", type=positive_int, default=1024, help="tokens per batch (padding included)")
    p.add_argument("--overlap", type=nonnegative_int, default=None,
                   help="overlap of windows over long sequences (default: a quarter of the model maximum)")
    p.add_argument("--no-convert", action="store_true",
                   help="keep T in RNA (U in DNA) as unknown letters instead of converting them")
    p.add_argument("--int8", action="store_true",
                   help="int8 dynamic quantization of the linear layers (faster on CPU, slightly less exact)")
    p.set_defaults(run=run_embed)


def run_embed(args):
    from nucfm.io.embeddings import check_embedding_output
    from nucfm.tasks.embed import embed_fasta

    check_input(args.input, "FASTA")
    check_embedding_output(args.output, pooled=args.pool == "mean")
    check_output(args.output, [args.input])
    if args.output.lower().endswith(".npy"):
        check_output(str(Path(args.output).with_suffix(".ids.txt")), [args.input], "ids file")
    check_model_name(args.model)
    device = resolve_device(args.device)
    name, model = load_cli_model(args.model, "rna", args.threads, device=None if args.int8 else device)
    if not -model.num_layers - 1 <= args.layer <= model.num_layers:
        raise InputError(f"--layer {args.layer} does not exist: {name} has layers 0..{model.num_layers} "
                         f"(or -1..-{model.num_layers + 1} from the end)")
    if args.overlap is not None and model.max_len is not None and args.overlap * 2 >= model.max_len:
        raise InputError(f"--overlap {args.overlap} must be less than half the model maximum ({model.max_len})")
    if args.int8:
        from nucfm.models.quantize import quantize_int8

        if device.type != "cpu":
            raise InputError("--int8 runs on the CPU only; drop --device or --int8")
        model = quantize_int8(model)
    summary = embed_fasta(model, args.input, args.output, layer=args.layer,
                          pool=None if args.pool == "none" else args.pool, batch_tokens=args.batch_tokens,
                          overlap=args.overlap, convert=not args.no_convert, model_name=str(name),
                          show_progress=not args.no_progress)
    from nucfm import distributed

    if distributed.setup().is_main:
        log.info(f"embedded {summary['records']} records ({summary['residues']} nt) with {name} -> {args.output}")


# ---- compare ------------------------------------------------------------------------------------
def add_compare(sub):
    p = sub.add_parser("compare", help="embedding tree vs sequence tree of whole genomes or long RNAs (NJ, Mantel, "
                       "Robinson-Foulds)",
                       description="One vector per record (the per-residue mean over the whole record, windows as "
                       "in `embed --pool mean`), distances between the vectors and between the sequences, a "
                       "neighbour-joining tree of each, their Mantel correlation and Robinson-Foulds distance, and a "
                       "figure. Writes OUTPUT/: distances_*.tsv, tree_*.nwk, pairs.tsv, records.tsv, "
                       "embeddings.tsv, compare.json/.tsv/.png/.svg.")
    p.add_argument("-i", "--input", "--fasta", dest="input", action="extend", nargs="+", required=True,
                   metavar="FASTA", help="FASTA files (plain or gzip; repeatable, several after one -i): records "
                   "are taken in order; at least 3 in all, ids unique")
    p.add_argument("-o", "--output", required=True, help="output directory (new, or an earlier compare output)")
    add_common(p, model_kind="rna", device=True, progress=True)
    p.add_argument("--layer", type=int, default=-1,
                   help="layer to read: 0 = embeddings, k = after block k, -1 = final (default)")
    p.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine",
                   help="distance between record vectors (default cosine)")
    p.add_argument("--seq-distance", choices=["aligned", "mash"], default="aligned",
                   help="aligned: p-distance of a pairwise alignment, N and ragged ends not counted (default; "
                   "near-identical genomes or short RNAs); mash: k-mer Mash distance (divergent long genomes)")
    p.add_argument("--kmer", type=positive_int, default=21, help="k of --seq-distance mash (1-31, default 21)")
    p.add_argument("--mask-n", action="store_true",
                   help="average the embedding over A/C/G/U residues only (N and other letters still embedded "
                   "as context)")
    p.add_argument("--mantel", choices=["pearson", "spearman"], default="pearson",
                   help="Mantel correlation (default pearson)")
    p.add_argument("--permutations", type=nonnegative_int, default=999,
                   help="permutations of the Mantel test and of the shuffled-tip RF null (default 999; 0: none)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the permutations (default 0)")
    p.add_argument("--batch-tokens", type=positive_int, default=1024, help="tokens per batch (padding included)")
    p.add_argument("--overlap", type=nonnegative_int, default=None,
                   help="overlap of windows over long sequences (default: a quarter of the model maximum)")
    p.set_defaults(run=run_compare)


def run_compare(args):
    from nucfm.paths import check_output_dir
    from nucfm.tasks.compare import OUTPUT_SUFFIXES, compare_records

    _require_analysis("compare", ("skbio", "Bio"))
    for path in args.input:
        check_input(path, "FASTA")
    if args.kmer > 31:
        raise InputError(f"--kmer {args.kmer}: k-mers are packed in 64 bits, so k is at most 31")
    check_output(args.output, args.input, "output directory", directory=True)
    check_output_dir(args.output, OUTPUT_SUFFIXES, "compare output")
    for path in args.input:
        if Path(args.output).resolve() in Path(path).resolve().parents:
            raise InputError(f"{args.output}: the output directory holds the input {path}; choose another")
    check_model_name(args.model)
    device = resolve_device(args.device)

    def load():  # after the records are read and checked: bad input costs no model load
        name, model = load_cli_model(args.model, "rna", args.threads, device=device)
        if not -model.num_layers - 1 <= args.layer <= model.num_layers:
            raise InputError(f"--layer {args.layer} does not exist: {name} has layers 0..{model.num_layers} "
                             f"(or -1..-{model.num_layers + 1} from the end)")
        if args.overlap is not None and model.max_len is not None and args.overlap * 2 >= model.max_len:
            raise InputError(f"--overlap {args.overlap} must be less than half the model maximum ({model.max_len})")
        return model

    from nucfm.checkpoint import registry

    compare_records(load, args.input, args.output, layer=args.layer, metric=args.metric,
                    seq_distance=args.seq_distance, kmer=args.kmer, mask_uncalled=args.mask_n,
                    mantel_method=args.mantel, permutations=args.permutations, seed=args.seed,
                    batch_tokens=args.batch_tokens, overlap=args.overlap,
                    model_name=str(args.model or registry.default_model("rna")), show_progress=not args.no_progress)


# ---- convert ------------------------------------------------------------------------------------
def add_convert(sub):
    p = sub.add_parser("convert", help="write any loadable model (official .pth, GPN directory, name) as a "
                       "nucfm checkpoint directory")
    p.add_argument("-m", "--model", "-i", "--input", dest="model", required=True,
                   help="model name or path (official RNA-FM .pth, GPN directory, nucfm checkpoint)")
    p.add_argument("-o", "--output", required=True,
                   help="output checkpoint directory (new, or an earlier nucfm checkpoint to replace)")
    p.add_argument("--fp16", action="store_true", help="store weights in float16 (half the size)")
    p.set_defaults(run=run_convert)


def run_convert(args):
    import torch

    from nucfm.checkpoint import load_model, save_model

    check_model_name(args.model)
    check_output(args.output, [args.model], directory=True)
    if Path(args.model).exists():
        src, out = Path(args.model).resolve(), Path(args.output).resolve()
        if out in src.parents or src in out.parents:
            raise InputError(f"{args.output}: the output and the input model {args.model} contain one another; "
                             "choose another output")
    model = load_model(args.model)
    path = save_model(model, args.output, dtype=torch.float16 if args.fp16 else None,
                      metadata={"converted_from": str(args.model)})
    log.info(f"wrote {path}")


# ---- vep / probs (GPN-style DNA models) ---------------------------------------------------------
def _add_genome_args(p, genome_is_input: bool = False):
    names = ("-i", "--input", "--genome") if genome_is_input else ("--genome",)
    p.add_argument(*names, dest="genome", required=True, help="reference FASTA (plain, .gz or bgzip)")
    p.add_argument("--chrom-alias", action="append", metavar="NAME=CONTIG|FILE",
                   help="map a chromosome name of the input to a genome contig (repeatable), or a two-column "
                        "TSV of such pairs, e.g. --chrom-alias 1=NC_003070.9")
    add_common(p, model_kind="dna", device=True, progress=True)
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="windows per forward pass: one per variant site, position or genome window "
                        "(default 8 on CPU, 128 on CUDA)")
    p.add_argument("--window", type=positive_int, default=512,
                   help="bases of context centred on each site (default 512)")


def _check_genome_args(args):
    from nucfm.io.genome import parse_aliases

    check_input(args.genome, "genome")
    for spec in args.chrom_alias or []:
        if "=" not in spec:
            check_input(spec, "--chrom-alias")
    parse_aliases(args.chrom_alias)
    check_model_name(args.model)
    return resolve_device(args.device)


def _load_dna(args, device, region=None):
    """(name, model, genome); ``region`` (chrom, start, end) is checked against the genome
    before the model is loaded."""
    from nucfm.io.genome import Genome, parse_aliases

    genome = Genome(args.genome, aliases=parse_aliases(args.chrom_alias))
    if region is not None:
        chrom, start, end = region
        n = genome.length(chrom)
        if end > n:
            raise InputError(f"region {args.region} is not inside {chrom} (1-{n})")
    name, model = load_cli_model(args.model, "dna", args.threads, device=device)
    if model.max_len is not None and args.window > model.max_len:
        raise InputError(f"--window {args.window} is longer than {name} accepts ({model.max_len})")
    return name, model, genome


def add_vep(sub):
    p = sub.add_parser("vep", help="zero-shot variant effect scores (GPN's masked log-likelihood ratio; "
                       "MNVs and indels by haplotype pseudo-log-likelihood)")
    add_common(p, input_help="variants: VCF[.gz], TSV, CSV or Parquet with chrom,pos,ref,alt (1-based); "
               "or none with --region R --all-snvs", input_names=("--variants",), input_required=False,
               output_help="output .tsv[.gz], .csv[.gz], .parquet, or .vcf[.gz] (VCF input only)", threads=False)
    _add_genome_args(p)
    p.add_argument("--region", default=None, help="with --all-snvs: CHROM:START-END (1-based, inclusive) to scan")
    p.add_argument("--all-snvs", action="store_true",
                   help="saturation scan: score all three substitutions at every position of --region")
    p.add_argument("--method", default="llr", choices=["llr", "alt_logprob"],
                   help="SNV scoring strategy: llr (GPN, default) or alt_logprob")
    p.add_argument("--indel-method", choices=("pll", "pll_centred", "unmasked"), default="pll_centred",
                   help="MNVs and indels: pll (masked pseudo-log-likelihood difference of the haplotypes), "
                        "pll_centred (the same, each base relative to its expected log-likelihood: no length "
                        "bias; default) or unmasked (one pass per haplotype, faster, approximate)")
    p.add_argument("--flank", type=nonnegative_int, default=4,
                   help="bases each side of an MNV/indel scored with it (default 4)")
    p.add_argument("--gff", default=None, help="GFF3 annotation: add consequence, gene and transcript columns")
    p.add_argument("--upstream-distance", type=nonnegative_int, default=5000,
                   help="with --gff: bases from a transcript end still called upstream/downstream (Ensembl: 5000)")
    p.add_argument("--calibrate", action="store_true",
                   help="add score_percentile: percentile of each SNV score among random SNVs of the genome")
    p.add_argument("--background-size", type=positive_int, default=10_000,
                   help="random SNVs for --calibrate (default 10000)")
    p.add_argument("--background-seed", type=nonnegative_int, default=0, help="seed of the --calibrate background")
    p.add_argument("--per-strand", action="store_true", help="also write score_fwd and score_rev")
    p.add_argument("--strict-ref", action="store_true", help="fail on a REF mismatch instead of marking the row")
    p.add_argument("--chunk-size", type=positive_int, default=2048,
                   help="variants per resumable chunk (default 2048)")
    p.add_argument("--restart", action="store_true", help="discard partial results of an earlier run")
    p.add_argument("--info-key", default="NUCFM_SCORE", help="INFO field name for VCF output")
    p.set_defaults(run=run_vep)


def run_vep(args):
    import re

    from nucfm.io.genome import parse_region
    from nucfm.io.variants import check_scored_output, detect_format
    from nucfm.tasks.variants import saturation_table, score_variant_file

    if args.all_snvs != bool(args.region):
        raise InputError("--all-snvs and --region go together (a saturation scan of the region)")
    if bool(args.input) == bool(args.all_snvs):
        raise InputError("give either -i/--variants FILE or --region R --all-snvs")
    region = parse_region(args.region) if args.region else None
    if args.input:
        check_input(args.input, "variants")
        detect_format(args.input)
    check_input(args.gff, "--gff annotation")
    check_scored_output(args.output, args.input or "scan.parquet")
    check_output(args.output, [args.input, args.genome, args.gff])
    if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_.]*", args.info_key):
        raise InputError(f"--info-key {args.info_key!r}: a VCF INFO key is letters, digits, _ and . "
                         "(not starting with a digit)")
    if args.window < 4 and (args.all_snvs or args.flank):
        raise InputError("--window must be >= 4 to score MNVs, indels or scans")
    device = _check_genome_args(args)
    name, model, genome = _load_dna(args, device, region=region)
    variants, chunk = args.input, args.chunk_size
    if region is not None:
        variants = saturation_table(genome, *region)
        chunk = -(-chunk // 3) * 3  # whole sites per chunk: one forward pass per position and strand
    annotate = calibrate = None
    if args.gff:
        from nucfm.tasks.consequence import annotate_variants

        def annotate(vt):
            return annotate_variants(vt, genome, args.gff, distance=args.upstream_distance)
    if args.calibrate:
        from nucfm.tasks.calibration import calibrator

        calibrate = calibrator(model, genome, args.window, args.method, size=args.background_size,
                               seed=args.background_seed, batch_size=args.batch_size, progress=not args.no_progress)
    counts = score_variant_file(model, genome, variants, args.output, window=args.window, method=args.method,
                                per_strand=args.per_strand, batch_size=args.batch_size, chunk_size=chunk,
                                strict_ref=args.strict_ref, restart=args.restart, progress=not args.no_progress,
                                info_key=args.info_key, model_name=str(name), indel_method=args.indel_method,
                                flank=args.flank, annotate=annotate, calibrate=calibrate)
    if counts is not None:
        log.info("wrote %s: %s", args.output, ", ".join(f"{k} {v}" for k, v in counts.items()))


def add_vep_report(sub):
    p = sub.add_parser("vep-report", help="score distribution per consequence class (plot + table) of a vep output")
    p.add_argument("scored", nargs="?", default=None,
                   help="a `nucfm vep --gff ...` output: .tsv[.gz], .csv[.gz] or .parquet (or -i)")
    p.add_argument("-i", "--input", default=None, help="the scored file (the same as the positional argument)")
    p.add_argument("-o", "--output", required=True, help="output directory (PNG, TSV, JSON)")
    p.add_argument("--score", default="score", help="score column to summarise (default score)")
    p.set_defaults(run=run_vep_report)


def run_vep_report(args):
    from nucfm.analysis.vep_report import write_report

    scored = args.input or args.scored
    if scored is None or (args.input and args.scored and args.input != args.scored):
        raise InputError("give the scored file once: `nucfm vep-report SCORED -o DIR` or -i SCORED")
    check_input(scored, "scored table")
    check_output(args.output, [scored], "report directory", directory=True)
    summary = write_report(scored, args.output, score=args.score)
    print(summary["table"].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"missense vs synonymous AUROC: {summary['auroc_missense_vs_synonymous']}")


def add_probs(sub):
    p = sub.add_parser("probs", help="masked-prediction A/C/G/T distribution at every position of a region")
    _add_genome_args(p, genome_is_input=True)
    p.add_argument("--region", required=True, help="CHROM:START-END, 1-based inclusive (e.g. chr1:1001-1100)")
    p.add_argument("-o", "--output", required=True, help="output .tsv[.gz], .csv[.gz], .parquet or .npz")
    p.add_argument("--strands", choices=("both", "fwd"), default="both",
                   help="average the forward and reverse-complement predictions (default) or forward only")
    p.set_defaults(run=run_probs)


def run_probs(args):
    from tqdm.auto import tqdm

    from nucfm.io.genome import parse_region
    from nucfm.tasks.variants import check_probs_output, position_probs, write_position_probs

    chrom, start, end = parse_region(args.region)
    check_probs_output(args.output)
    check_output(args.output, [args.genome])
    device = _check_genome_args(args)
    _, model, genome = _load_dna(args, device, region=(chrom, start, end))
    with tqdm(total=end - start, unit="position", disable=args.no_progress, desc="probs") as bar:
        result = position_probs(model, genome, chrom, start, end, window=args.window, strands=args.strands,
                                batch_size=args.batch_size, progress=bar)
    if result is not None:  # rank 0 (or the only process) writes
        write_position_probs(result, chrom, args.output)
        log.info("wrote %s: %d positions", args.output, end - start)


@contextmanager
def _new_run_dir(path):
    """A run directory this command creates is removed again when the run fails with a user
    error before saving any checkpoint (a bad data file found after setup), so the corrected
    rerun is not refused as a different run. An existing directory is never touched."""
    path = Path(path)
    existed = path.exists()
    try:
        yield
    except NucfmError:
        if not existed and path.is_dir() and not any((path / "checkpoints").glob("*")):
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        raise


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
        for path in list(cfg.data.fasta) + [cfg.data.genome, cfg.data.families]:
            check_input(path, "data.* source")
    check_output(cfg.output, [args.config], "run directory", directory=True)
    resolve_device(cfg.train.device)
    with _new_run_dir(cfg.output):
        out = pretrain(cfg, resume=args.resume or None, restart=args.restart)
    log.info("run written to %s", out)


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


# ---- secondary structure ------------------------------------------------------------------------
def add_fold(sub):
    p = sub.add_parser("fold", help="predict RNA secondary structures from a FASTA file",
                       description="Predict the secondary structure of every FASTA record with a structure "
                       "model (default: the shipped one). Long sequences are embedded in overlapping windows.")
    add_common(p, model_kind="ss", input_help="FASTA (plain or gzip); T is read as U, other letters as N",
               input_names=("--fasta",), output_help="structures: one .dbn/.ct file (or .bpseq for one record); "
               "--format bpseq with any other name: a directory of NAME.bpseq", device=True, progress=True)
    p.add_argument("--format", choices=["dbn", "bpseq", "ct"], default=None,
                   help="output format (default: from the output extension, else dbn)")
    p.add_argument("--probs", default=None, help="also write pair probabilities, one (L, L) array per id (.npz/.h5)")
    p.add_argument("--plot", default=None, metavar="DIR", help="also draw a PNG per record into DIR")
    p.add_argument("--threshold", type=probability, default=None,
                   help="pair probability threshold in [0, 1] (default: the model's)")
    p.add_argument("--decode", choices=["greedy", "matching"], default=None, help="decoding (default: the model's)")
    p.add_argument("--canonical-only", action="store_true", help="keep only AU, GC and GU pairs")
    p.add_argument("--no-pseudoknots", action="store_true", help="remove crossing pairs")
    p.add_argument("--max-span", type=positive_int, default=None, metavar="N",
                   help="local mode for records longer than N+1 nt: pairs span at most N nt (ViennaRNA local "
                        "folding, the head on overlapping blocks; memory O(L*N)). Default: records over 1500 nt "
                        "fold locally with N = 200")
    p.set_defaults(run=run_fold)


def run_fold(args):
    import dataclasses

    import torch

    from nucfm.checkpoint import registry
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.io.structure import FORMATS, bpseq_is_single_file
    from nucfm.paths import check_output_dir
    from nucfm.tasks.structure import PROBS_FORMATS, fold_fasta

    check_input(args.input, "FASTA")
    suffix = Path(args.output).suffix.lower()
    by_suffix = {".dbn": "dbn", ".db": "dbn", ".ct": "ct", ".bpseq": "bpseq"}
    if args.format is None and suffix not in by_suffix and not (Path(args.output).is_dir() or suffix == ""):
        raise InputError(f"{args.output}: unknown structure extension {suffix!r}; use .dbn, .ct or .bpseq (or a "
                         "directory with --format bpseq), or name the format with --format")
    fmt = args.format or by_suffix.get(suffix, "dbn")
    if args.format and suffix in (".dbn", ".ct", ".bpseq") and suffix[1:] != args.format:
        raise InputError(f"{args.output}: the extension says {suffix[1:]}, --format says {args.format}")
    if fmt not in FORMATS:
        raise InputError(f"unknown structure format {fmt!r}")
    per_record_dir = fmt == "bpseq" and not bpseq_is_single_file(args.output)
    check_output(args.output, [args.input], directory=per_record_dir)
    if per_record_dir:
        check_output_dir(args.output, (".bpseq",))
    outputs = [Path(args.output).resolve()]
    if args.probs:
        if Path(args.probs).suffix.lower() not in PROBS_FORMATS:
            raise InputError(f"{args.probs}: pair probabilities are written as {', '.join(PROBS_FORMATS)}")
        check_output(args.probs, [args.input], "--probs output")
        outputs.append(Path(args.probs).resolve())
    if args.plot:
        check_output(args.plot, [args.input], "--plot directory", directory=True)
        check_output_dir(args.plot, (".png",), "plot")
        outputs.append(Path(args.plot).resolve())
    if len(set(outputs)) < len(outputs):
        raise InputError("-o, --probs and --plot must be different paths")
    check_model_name(args.model)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.model or registry.default_model("ss")
    if str(name) in registry.MODELS and registry.MODELS[str(name)].kind != "ss":
        raise InputError(f"{name} is a {registry.MODELS[str(name)].kind.upper()} model; fold needs a structure "
                         "(SS) model (see `nucfm models`)")
    predictor = load_structure_model(name).to(device)
    opts = predictor.decode_options
    changes = {k: v for k, v in {"threshold": args.threshold, "method": args.decode}.items() if v is not None}
    if args.canonical_only:
        changes["canonical_only"] = True
    if args.no_pseudoknots:
        changes["pseudoknots"] = False
    opts = dataclasses.replace(opts, **changes)
    summary = fold_fasta(predictor, args.input, args.output, fmt=fmt, probs_path=args.probs,
                         plot_dir=args.plot, opts=opts, workers=args.threads or 1, max_span=args.max_span)
    if "pairs" in summary:  # rank 0 (or the only process) wrote the outputs
        log.info(f"folded {summary['records']} records ({summary['pairs']} pairs) with {name} -> {args.output}")


# Options of train-ss that are shortcuts for KEY=VALUE overrides of its config.
TRAIN_SS_SHORTCUTS = {"task": str, "init_from": str,
                      "train": str, "valid": str, "lm": str, "lm_layer": int, "features": str, "blocks": int,
                      "channels": int, "reduction": int, "crop": int, "batch_pairs": int, "max_steps": int,
                      "eval_every": int, "threads": int, "seed": int, "limit_train": int, "lr": float,
                      "max_minutes": float, "dropout": float, "pos_weight": float, "description": str}


def add_train_ss(sub):
    p = sub.add_parser("train-ss", help="train a secondary-structure pair head (bpRNA TR0 / VL0 by default)",
                       description="Train a pair head on frozen LM embeddings and/or pair features; the "
                       "checkpoint and threshold are chosen on the validation file. The config (YAML, keys as "
                       "in OUTPUT/config.yaml) takes KEY=VALUE overrides, and the options below are shortcuts "
                       "for the common ones. Rerun the same command to resume; --restart starts over.")
    add_recipe_options(p, "run config YAML (keys of TrainStructureConfig)", "lr=1e-3 crop=200",
                       "run directory (default runs/ss); best model in OUTPUT/best")
    helps = {"task": "structure (base pairs, default) or contact (3D closeness; train/valid are contact .jsonl.gz)",
             "init_from": "start the head from this trained structure model (directory or name); same architecture",
             "train": "training structures (default ../shared/data/ss/bprna/TR0.dbn)",
             "valid": "validation structures (default ../shared/data/ss/bprna/VL0.dbn)",
             "lm": "language model (name or path) for embeddings; 'none' = pair features only",
             "lm_layer": "LM layer to read (default -1, the final output)",
             "features": "comma-separated extra pair channels from: onehot, bpp (ViennaRNA, Turner 2004), "
                         "bpp-langdon2018, bpp-andronescu2007; 'none' for none (default onehot,bpp)"}
    types = {int: nonnegative_int, float: float, str: str}
    types_by_key = {"blocks": positive_int, "channels": positive_int, "reduction": positive_int, "crop": positive_int,
                    "batch_pairs": positive_int, "max_steps": positive_int, "eval_every": positive_int,
                    "threads": positive_int, "dropout": probability, "lm_layer": int}
    for key, kind in TRAIN_SS_SHORTCUTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=types_by_key.get(key, types[kind]), default=None, dest=key,
                       help=helps.get(key, f"sets {key} (see --print-config)"))
    p.set_defaults(run=run_train_ss)


def run_train_ss(args):
    import yaml

    from nucfm.train.config import load_dict
    from nucfm.train.structure import TrainStructureConfig, train_structure

    check_text(args.config, "config")
    d = load_dict(args.config, args.overrides)
    for key in TRAIN_SS_SHORTCUTS:
        if getattr(args, key) is not None:
            d[key] = getattr(args, key)
    if args.output is not None:
        d["output"] = args.output
    cfg = TrainStructureConfig.from_dict(d)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    check_input(cfg.train, "training structures", directory=True)
    check_input(cfg.valid, "validation structures", directory=True)
    check_output(cfg.output, [args.config, cfg.train, cfg.valid], "run directory", directory=True)
    with _new_run_dir(cfg.output):
        summary = train_structure(cfg, restart=args.restart)
    keys = ("steps", "train_minutes", "threshold", "valid_score", "valid")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))


def add_score_ss(sub):
    p = sub.add_parser("score-ss", help="precision, recall, F1 and MCC of predicted structures against references",
                       description="Macro-averaged base-pair scores (exact and +-1 shift). Files or directories "
                       "of .dbn, .bpseq or .ct; records matched by id.")
    p.add_argument("-i", "--input", "--pred", dest="pred", required=True,
                   help="predicted structures (file or directory of .dbn/.bpseq/.ct)")
    p.add_argument("--ref", required=True, help="reference structures (file or directory of .dbn/.bpseq/.ct)")
    p.add_argument("-o", "--output", "--per-seq", dest="per_seq", default=None,
                   help="also write per-sequence scores here (TSV)")
    p.set_defaults(run=run_score_ss)


def run_score_ss(args):
    from nucfm.tasks.structure import score_files

    check_input(args.pred, "predictions", directory=True)
    check_input(args.ref, "references", directory=True)
    check_output(args.per_seq, [args.pred, args.ref], "--per-seq output")
    for d in (args.pred, args.ref):
        if args.per_seq and Path(d).is_dir() and Path(d).resolve() in Path(args.per_seq).resolve().parents:
            raise InputError(f"{args.per_seq}: write the per-sequence table outside the input directory {d}")
    exact, per = score_files(args.pred, args.ref)
    shifted, _ = score_files(args.pred, args.ref, shift=1)
    print("metric\tprecision\trecall\tf1\tmcc\tn")
    for label, a in (("exact", exact), ("shift1", shifted)):
        print(f"{label}\t{a['precision']:.4f}\t{a['recall']:.4f}\t{a['f1']:.4f}\t{a['mcc']:.4f}\t{a['n']}")
    if exact["missing"]:
        log.warning(f"{exact['missing']} reference record(s) had no prediction and were scored as empty")
    if exact["unmatched"]:
        log.warning(f"{exact['unmatched']} prediction(s) matched no reference id and were not scored")
    if exact["duplicate_ids"]:
        log.warning(f"{exact['duplicate_ids']} reference id(s) occur more than once; each record was scored, "
                    "matched to predictions of that id in order")
    if args.per_seq:
        from nucfm.paths import atomic_path

        with atomic_path(args.per_seq) as tmp, open(tmp, "w") as fh:
            fh.write("id\tprecision\trecall\tf1\tmcc\ttp\tfp\tfn\n")
            for rid, s in per:
                fh.write(f"{rid}\t{s.precision:.4f}\t{s.recall:.4f}\t{s.f1:.4f}\t{s.mcc:.4f}\t{s.tp}\t{s.fp}\t{s.fn}\n")


# ---- contacts -----------------------------------------------------------------------------------
def add_contacts(sub):
    p = sub.add_parser("contacts", help="predict 3D closeness (contact) maps from a FASTA file",
                       description="Contact probability map of every FASTA record with a contact model (default: "
                       "the shipped one), the top pairs as TSV beside the output, optional plots and scores "
                       "against known contacts. Long records use the local mode of `fold`.")
    add_common(p, model_kind="contact", input_help="FASTA (plain or gzip); T is read as U, other letters as N",
               input_names=("--fasta",), output_help="maps, one (L, L) float16 array per record key (.npz or "
               ".h5); the top pairs go to OUTPUT_STEM.top.tsv", device=False)
    p.add_argument("--plot", default=None, metavar="DIR", help="also draw a PNG per record into DIR")
    p.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                   help="pairs listed per record (default L), |i - j| >= 6, best first")
    p.add_argument("--ref", default=None, help="known contacts (JSON lines: id, seq, contacts) to plot and score")
    p.add_argument("--max-span", type=positive_int, default=None, metavar="N",
                   help="local mode as in `fold --max-span`")
    p.set_defaults(run=run_contacts)


def run_contacts(args):
    import torch

    from nucfm.checkpoint import registry
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.paths import check_output_dir
    from nucfm.tasks.contacts import contacts_fasta
    from nucfm.tasks.structure import PROBS_FORMATS

    check_input(args.input, "FASTA")
    check_input(args.ref, "--ref contacts")
    if Path(args.output).suffix.lower() not in PROBS_FORMATS:
        raise InputError(f"{args.output}: contact maps are written as {', '.join(PROBS_FORMATS)}")
    out = check_output(args.output, [args.input, args.ref])
    check_output(str(out.with_suffix(".top.tsv")), [args.input, args.ref], "top-pairs table")
    if args.plot:
        check_output(args.plot, [args.input, args.ref], "--plot directory", directory=True)
        check_output_dir(args.plot, (".png",), "plot")
    check_model_name(args.model)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.model or registry.default_model("contact")
    if str(name) in registry.MODELS and registry.MODELS[str(name)].kind != "contact":
        raise InputError(f"{name} is a {registry.MODELS[str(name)].kind.upper()} model; contacts needs a contact "
                         "model (see `nucfm models`)")
    summary = contacts_fasta(load_structure_model(name), args.input, args.output, plot_dir=args.plot,
                             top_k=args.top_k, ref=args.ref, workers=args.threads or 1, max_span=args.max_span)
    log.info(f"{summary['records']} contact maps with {name} -> {args.output}; top pairs -> {summary['top_pairs']}")
    if "scores" in summary:
        _print_contact_scores(summary["scores"], summary["scored"])


def _print_contact_scores(metrics: dict, scored: int) -> None:
    print("range\ttop\tprecision\tpooled\tchains\tskipped")
    for key, v in metrics.items():
        rng, top = key.split("_")
        print(f"{rng}\t{top}\t{v['precision']:.4f}\t{v['pooled']:.4f}\t{v['chains']}\t{v['skipped']}")


def add_score_contacts(sub):
    p = sub.add_parser("score-contacts", help="top-L/k precision of predicted contact maps against known contacts",
                       description="Long-range (|i-j| >= 24) and medium-range (12-23) precision of the top L/10, "
                       "L/5, L/2 and L predicted pairs, per chain then averaged (chains with no contact in the "
                       "range skipped and counted), and pooled over chains.")
    add_common(p, input_help="predicted maps (`nucfm contacts` .npz or .h5)", input_names=("--pred",),
               output_help="also write the scores as JSON here", output_names=("--json",), output_required=False,
               threads=False)
    p.add_argument("--ref", required=True, help="known contacts (JSON lines: id, seq, contacts; .gz allowed)")
    p.set_defaults(run=run_score_contacts)


def run_score_contacts(args):
    from nucfm.paths import atomic_write_text
    from nucfm.tasks.contacts import score_contact_files

    check_input(args.input, "predicted maps")
    check_input(args.ref, "--ref contacts")
    check_output(args.output, [args.input, args.ref], "scores JSON")
    avg, _ = score_contact_files(args.input, args.ref)
    _print_contact_scores(avg["metrics"], avg["scored"])
    if avg["missing"]:
        log.warning(f"{avg['missing']} reference record(s) had no predicted map and were not scored")
    if args.output:
        atomic_write_text(args.output, json.dumps(avg, indent=2) + "\n")


# ---- serve --------------------------------------------------------------------------------------
SERVE_LIMITS = {"max_body_mb": (float, "request body in MiB (default 16)"),
                "max_records": (int, "FASTA records per request (default 100)"),
                "max_fold_len": (int, "letters per folded sequence; memory grows as L^2 (default 2000)"),
                "max_fold_residues": (int, "letters per fold request (default 20000)"),
                "max_embed_len": (int, "letters per embedded sequence (default 20000)"),
                "max_embed_residues": (int, "letters per embed request (default 200000)"),
                "max_variants": (int, "variant rows per request (default 5000)"),
                "max_region": (int, "positions per probs request (default 2000)"),
                "queue": (int, "jobs queued or running; more get 429 + Retry-After (default 16)"),
                "workers": (int, "compute threads (default 2)"),
                "job_timeout": (float, "seconds a job may run (default 300)"),
                "keep_results": (int, "finished jobs kept for download (default 64)"),
                "result_ttl": (float, "seconds a finished job stays downloadable (default 3600)")}


def add_serve(sub):
    p = sub.add_parser("serve", help="a local web server and page: fold, embed, variant effects, probabilities",
                       description="Load each model (and genome) once and serve a JSON API (docs at /docs) and a "
                       "page at http://HOST:PORT/. Limits: the options below or NUCFM_SERVE_<OPTION> environment "
                       "variables (e.g. NUCFM_SERVE_MAX_FOLD_LEN=500). Needs `pip install 'nucfm[serve]'`.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("-m", "--model", action="append", default=None, metavar="NAME",
                   help="model to serve, name or path (repeatable; default: the shipped SS, contact, RNA and DNA "
                        "models)")
    p.add_argument("--genome", action="append", default=[], metavar="NAME=PATH",
                   help="reference FASTA clients may score variants against, under NAME (repeatable)")
    add_common(p, device=True)
    for key, (kind, text) in SERVE_LIMITS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=positive_int if kind is int else _positive_float,
                       default=None, dest=key, help=text)
    p.set_defaults(run=run_serve)


def _positive_float(text: str) -> float:
    v = _number(text, float, "a number")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def run_serve(args):
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: form uploads)
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise InputError(f"nucfm serve needs FastAPI, uvicorn and python-multipart ({e.name} is missing): "
                         "pip install 'nucfm[serve]'") from None
    from nucfm.serve.resources import parse_genome_spec
    from nucfm.serve.settings import limits_from

    limits = limits_from({k: getattr(args, k) for k in SERVE_LIMITS})
    for spec in args.genome:
        check_input(parse_genome_spec(spec)[1], "genome")
    for name in args.model or []:
        check_model_name(name)
    device = resolve_device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from nucfm.serve.app import serve

    serve(args.model or [], args.genome, host=args.host, port=args.port, limits=limits, device=device,
          log_level="debug" if args.verbose else "info")


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
    with _new_run_dir(cfg.output):
        summary = finetune(cfg, restart=args.restart)
    key = "test_mean" if "test_mean" in summary else "test"
    print(json.dumps({key: summary[key], "train_minutes": summary["train_minutes"]}, indent=2, default=float))


def add_predict(sub):
    p = sub.add_parser("predict", help="predict with a task model (from `nucfm finetune` or `nucfm models`)",
                       description="One output row per input record, in input order, keyed by id.")
    add_common(p, model_kind="any", input_help="sequences: FASTA or table (CSV/TSV/Parquet with a seq column)",
               output_help="predictions: .tsv, .csv or .parquet")
    p.add_argument("--seq-col", default=None, help="sequence column of a table (default seq/sequence/utr)")
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
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if not hasattr(model, "predict"):
        raise InputError(f"{args.model} is not a task model (use `nucfm embed` for language models)")
    n = predict_file(model, args.input, args.output, args.seq_col)
    log.info("wrote %d predictions to %s", n, args.output)


# ---- atlas --------------------------------------------------------------------------------------
def _int_list(text: str) -> list[int]:
    """Comma-separated integers (``1,3``); ``none`` or ``""`` is the empty list."""
    if text.strip().lower() in ("", "none"):
        return []
    return [_number(t, int, "an integer") for t in text.split(",")]


def add_atlas(sub):
    p = sub.add_parser("atlas", help="RNA atlas: UMAP of pooled embeddings vs random-init and k-mer baselines, "
                       "kNN / silhouette / ARI per label and grouping, optional diffusion pseudotime",
                       description="Label every FASTA record from its header, embed it (mean over residues, as "
                       "`embed --pool mean`) with each --model, a randomly initialised model of the first model's "
                       "shape and k-mer composition, and write DIR/atlas.png/.svg, atlas_metrics.tsv/.json, "
                       "umap.tsv, unlabelled.tsv, embeddings_<rep>.parquet (and pseudotime.tsv with --trajectory).")
    add_common(p, input_help="typed FASTA (plain or gzip); the label comes from each header", input_names=("--fasta",),
               output_help="output directory (created; files in it are replaced)", device=True, progress=True)
    p.add_argument("-m", "--model", dest="models", action="append", default=None, metavar="NAME",
                   help="language model, name or path (repeatable; default: the shipped RNA model)")
    p.add_argument("--label-regex", default=None, metavar="R",
                   help="regex on the header (`id description`) with one group or a named group `label` (default: "
                   "the type after TP= in Rfam headers, else the second word)")
    p.add_argument("--layer", default="-1", metavar="K",
                   help="layer(s) to pool: 0 = embeddings, k = after block k, -1 = final (default); comma list or "
                   "`all` for one representation per layer")
    p.add_argument("--group", action="append", default=[], metavar="G",
                   help="coarser view of the labels: length (< 200 vs >= 200 nt), housekeeping (housekeeping vs "
                   "regulatory types) or a label<TAB>group TSV file (repeatable)")
    p.add_argument("--trajectory", default=None, metavar="ROOT_LABEL",
                   help="diffusion pseudotime from a root record of this label (writes pseudotime.tsv)")
    p.add_argument("--kmer", type=_int_list, default=[1, 3], metavar="K[,K]",
                   help="k-mer composition baselines (default 1,3; 1 = mean one-hot; none = no k-mer baseline)")
    p.add_argument("--no-random", action="store_true", help="no randomly initialised model baseline")
    p.add_argument("--max-per-label", type=positive_int, default=None, metavar="N",
                   help="keep at most N records per label (seeded random subset)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the subsample, the random-init model, the CV folds, k-means and UMAP (default 0)")
    p.add_argument("--umap-epochs", type=positive_int, default=None, metavar="N",
                   help="UMAP optimisation epochs (default: umap's, 500 for small sets)")
    p.add_argument("--batch-tokens", type=positive_int, default=1024, help="tokens per batch (padding included)")
    p.set_defaults(run=run_atlas)


def run_atlas(args):
    from nucfm.tasks.atlas import BUILTIN_GROUPS, DEFAULT_LABEL_REGEX, compile_label_regex
    from nucfm.tasks.atlas import run_atlas as atlas

    _require_analysis("atlas", ("umap", "scanpy", "leidenalg", "igraph", "sklearn"))
    check_input(args.input, "FASTA")
    check_output(args.output, [args.input], "atlas directory", directory=True)
    regex = args.label_regex or DEFAULT_LABEL_REGEX
    compile_label_regex(regex)
    for spec in args.group:
        if spec not in BUILTIN_GROUPS:
            check_input(spec, f"--group file (or one of {', '.join(BUILTIN_GROUPS)})")
    if any(k < 1 or k > 8 for k in args.kmer):
        raise InputError(f"--kmer {args.kmer}: k must be 1..8")
    models = args.models or [None]
    for name in models:
        check_model_name(name)
    from nucfm.checkpoint import registry

    models = [str(name or registry.default_model("rna")) for name in models]
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise InputError(f"--model {twice[0]} is given twice; give each model once")
    for name in models:
        if name in registry.MODELS and registry.MODELS[name].kind not in ("rna", "dna"):
            raise InputError(f"{name} is a {registry.MODELS[name].kind.upper()} model; atlas needs language models")
    if args.layer.strip().lower() == "all":
        from nucfm.checkpoint import load_model

        layers = list(range(load_model(models[0]).num_layers + 1))
    else:
        try:
            layers = _int_list(args.layer)
        except argparse.ArgumentTypeError as e:
            raise InputError(f"--layer: {e}") from None
        if not layers:
            raise InputError("--layer: give a layer number, a comma list or `all`")
    device = resolve_device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    summary = atlas(args.input, args.output, models, label_regex=regex, layers=tuple(layers), groups=tuple(args.group),
                    trajectory=args.trajectory, kmers=tuple(args.kmer), random_init=not args.no_random,
                    max_per_label=args.max_per_label, seed=args.seed, umap_epochs=args.umap_epochs,
                    batch_tokens=args.batch_tokens, device=device, show_progress=not args.no_progress)
    cols = ("knn_accuracy", "knn_macro_f1", "silhouette", "ari_kmeans", "ari_leiden")
    print("representation\tgrouping\tn\t" + "\t".join(cols))
    for r in summary["rows"]:
        print(f"{r['representation']}\t{r['grouping']}\t{r['n']}\t" + "\t".join(f"{r[c]:.3f}" for c in cols))
    left = sum(summary["left_out"].values())
    log.info(f"atlas of {summary['records_used']} records -> {args.output}"
             + (f"; {left} left out (unlabelled.tsv)" if left else ""))


# ---- genome-clusters / logo (GPN's unsupervised clusters and motif logos) -----------------------
def add_genome_clusters(sub):
    p = sub.add_parser("genome-clusters", help="UMAP + Leiden clusters of genome-window embeddings vs GFF region "
                       "classes, with a k-mer baseline (GPN's figure)",
                       description="Embed windows of a genome region (last hidden layer, centre bases, both "
                       "strands), cluster them (standardise, PCA, kNN, UMAP, Leiden) and compare the clusters and a "
                       "cross-validated linear probe with region classes from a GFF3; canonical k-mer frequencies "
                       "of the same windows go through the same procedure.")
    _add_genome_args(p, genome_is_input=True)
    p.add_argument("--region", required=True, help="CHROM:START-END, 1-based inclusive: where window centres lie")
    p.add_argument("--gff", required=True, help="GFF3 annotation (plain or gzip) for the region classes")
    p.add_argument("-o", "--output", required=True, help="output directory (clusters.png/.svg, windows.tsv, "
                   "composition.tsv, metrics.tsv/.json)")
    p.add_argument("--center", type=positive_int, default=100,
                   help="bases at the window centre averaged into its embedding and classified (default 100)")
    p.add_argument("--step", type=positive_int, default=None,
                   help="distance between window centres (default: --center, non-overlapping centres)")
    p.add_argument("--resolution", type=_positive_float, default=1.0, help="Leiden resolution (default 1.0)")
    p.add_argument("--neighbors", type=positive_int, default=15, help="neighbours of the kNN graph (default 15)")
    p.add_argument("--kmer", type=positive_int, default=4, help="k of the k-mer baseline (default 4)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of UMAP, Leiden and the CV folds")
    p.add_argument("--block", type=positive_int, default=50_000,
                   help="genome block (bp) kept whole by the blocked cross-validation of the probe (default 50000)")
    p.set_defaults(run=run_genome_clusters)


def run_genome_clusters(args):
    from nucfm.io.genome import parse_region
    from nucfm.tasks.genome_clusters import check_window_sizes, genome_clusters

    _require_analysis("genome-clusters", ("umap", "leidenalg", "igraph", "sklearn"))
    chrom, start, end = parse_region(args.region)
    check_window_sizes(args.window, args.center, args.step or args.center)
    if args.kmer > 8:
        raise InputError(f"--kmer {args.kmer}: at most 8 (4^k features)")
    check_input(args.gff, "--gff annotation")
    check_output(args.output, [args.genome, args.gff], "output directory", directory=True)
    device = _check_genome_args(args)
    name, model, genome = _load_dna(args, device, region=(chrom, start, end))
    summary = genome_clusters(model, genome, args.gff, chrom, start, end, args.output, window=args.window,
                              center=args.center, step=args.step, resolution=args.resolution,
                              n_neighbors=args.neighbors, kmer=args.kmer, seed=args.seed, block=args.block,
                              batch_size=args.batch_size,
                              progress=not args.no_progress, model_name=str(name))
    print(f"{summary['windows']} windows; classes: "
          + ", ".join(f"{k} {v}" for k, v in summary["class_counts"].items()))
    for m in summary["metrics"]:
        print(f"{m['representation']:14s} clusters {m['clusters']:3d}  ARI {m['ari']:.3f}  NMI {m['nmi']:.3f}  "
              f"probe balanced accuracy {m['probe_balanced_accuracy']:.3f} +- {m['probe_balanced_accuracy_sd']:.3f}"
              f"  macro-F1 {m['probe_macro_f1']:.3f} +- {m['probe_macro_f1_sd']:.3f}  blocked: balanced accuracy "
              f"{m['probe_blocked_balanced_accuracy']:.3f}  macro-F1 {m['probe_blocked_macro_f1']:.3f}")
    log.info("wrote %s", args.output)


def add_logo(sub):
    p = sub.add_parser("logo", help="sequence logos of a DNA model's masked predictions: a region, or meta-logos "
                       "of annotated sites (start/stop codons, splice donors/acceptors) next to observed frequencies",
                       description="Region logo: from a `nucfm probs` table (--probs) or computed for --genome "
                       "--region (each position masked, both strands). Meta-logos: --sites with --gff aligns every "
                       "annotated site of the region 5'->3' on its transcript (minus strand reverse-complemented).")
    p.add_argument("--probs", default=None, help="a `nucfm probs` output (.tsv[.gz], .csv[.gz], .parquet, .npz)")
    p.add_argument("--genome", default=None, help="reference FASTA (plain, .gz or bgzip), with --region")
    p.add_argument("--region", default=None, help="CHROM:START-END, 1-based inclusive")
    p.add_argument("--sites", nargs="+", default=None, metavar="TYPE",
                   choices=["start_codon", "stop_codon", "splice_donor", "splice_acceptor"],
                   help="meta-logos of these site types (one or more of start_codon stop_codon splice_donor "
                        "splice_acceptor), from --gff, in --region")
    p.add_argument("--gff", default=None, help="GFF3 annotation (plain or gzip) for --sites")
    p.add_argument("-o", "--output", required=True, help="output directory: logo.png/.svg/.tsv/.json, or per "
                   "site type TYPE.png/.svg/.tsv/.json and core_ic.tsv/.json")
    p.add_argument("--flank", type=nonnegative_int, default=12, help="--sites: bases either side of the motif "
                   "(default 12)")
    p.add_argument("--max-sites", type=positive_int, default=200,
                   help="--sites: at most this many sites per type, a seeded random sample (default 200)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the --max-sites sample")
    p.add_argument("--row-length", type=positive_int, default=100, help="region logo: positions per row (default 100)")
    p.add_argument("--max-length", type=positive_int, default=1000,
                   help="region logo: most positions drawn (default 1000)")
    p.add_argument("--chrom-alias", action="append", metavar="NAME=CONTIG|FILE",
                   help="map a chromosome name of the region or GFF to a genome contig (repeatable), or a two-column "
                        "TSV of such pairs")
    add_common(p, model_kind="dna", device=True, progress=True)
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="positions per forward pass (default 8 on CPU, 128 on CUDA)")
    p.add_argument("--window", type=positive_int, default=512, help="bases of context centred on each masked "
                   "position (default 512)")
    p.set_defaults(run=run_logo)


def run_logo(args):
    from nucfm.io.genome import parse_region

    _require_analysis("logo", ("logomaker",))
    if args.probs and (args.genome or args.region or args.sites):
        raise InputError("give either --probs TABLE, or --genome G --region R [--sites ... --gff A]")
    if not args.probs and not (args.genome and args.region):
        raise InputError("give --probs TABLE, or --genome G and --region R")
    if args.sites and not args.gff:
        raise InputError("--sites needs --gff ANNOTATION")
    if args.gff and not args.sites:
        raise InputError("--gff is used with --sites TYPE ...")
    check_output(args.output, [args.probs, args.genome, args.gff], "output directory", directory=True)
    if args.probs:
        from nucfm.tasks.logo import read_probs_table, region_logo

        check_input(args.probs, "probs table")
        df = read_probs_table(args.probs)
        summary = region_logo(df, args.output, args.row_length, args.max_length, source=Path(args.probs).name)
        print(f"{summary['positions']} positions, mean information content {summary['mean_ic_bits']:.3f} bits")
        return
    chrom, start, end = parse_region(args.region)
    check_input(args.gff, "--gff annotation")
    if not args.sites:
        from nucfm.tasks.logo import check_logo_length

        check_logo_length(end - start, args.max_length, f"region {args.region}")
    device = _check_genome_args(args)
    name, model, genome = _load_dna(args, device, region=(chrom, start, end))
    if args.sites:
        from nucfm.tasks.logo import site_logos

        summaries = site_logos(model, genome, args.gff, chrom, start, end, list(dict.fromkeys(args.sites)),
                               args.output, flank=args.flank, max_sites=args.max_sites, seed=args.seed,
                               window=args.window, batch_size=args.batch_size, progress=not args.no_progress,
                               model_name=str(name))
        for s in summaries:
            print(f"{s['site']:16s} sites {s['sites_used']:4d} of {s['sites_in_region']:5d}  core {s['observed_core']}"
                  f"  information content: model {s['core_ic_model_bits']:.3f} bits, observed "
                  f"{s['core_ic_observed_bits']:.3f} bits  (model p(observed core base) "
                  f"{s['model_p_observed_core']:.3f})")
        return
    from tqdm.auto import tqdm

    from nucfm.tasks.logo import region_logo, region_probs

    with tqdm(total=end - start, unit="position", disable=args.no_progress, desc="probs") as bar:
        df = region_probs(model, genome, chrom, start, end, window=args.window, batch_size=args.batch_size,
                          progress=bar)
    summary = region_logo(df, args.output, args.row_length, args.max_length, source=str(name))
    print(f"{summary['positions']} positions, mean information content {summary['mean_ic_bits']:.3f} bits")


class _Parser(argparse.ArgumentParser):
    """argparse with nucfm's error format: one ``nucfm: error:`` line, exit 2."""

    def error(self, message):
        self.exit(2, f"nucfm: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


COMMANDS = [add_models, add_embed, add_compare, add_convert, add_vep, add_vep_report, add_probs, add_fold, add_score_ss,
            add_train_ss, add_contacts, add_score_contacts, add_pretrain, add_eval_mlm, add_finetune, add_predict,
            add_serve, add_atlas, add_genome_clusters, add_logo]


def build_parser() -> argparse.ArgumentParser:
    from nucfm import __version__

    parser = _Parser(prog="nucfm", description="Nucleotide foundation models for RNA and DNA.")
    parser.add_argument("--version", action="version", version=f"nucfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # KEY=VALUE overrides may come after options (`pretrain --config c.yaml -o run train.steps=5`)
        if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides) + extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # usage errors (exit 2), --help and --version (exit 0)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="nucfm: %(message)s")
    try:
        code = int(args.run(args) or 0)
        from nucfm import distributed

        distributed.finish()  # under torchrun: every process leaves the group together
        return code
    except NucfmError as e:
        if args.verbose:
            raise
        print(f"nucfm: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nucfm: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as e:  # disk full, permissions, a vanished file: the system's words
        if args.verbose:
            raise
        print(f"nucfm: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `nucfm ... | head`
        return 141


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text


if __name__ == "__main__":
    sys.exit(main())
