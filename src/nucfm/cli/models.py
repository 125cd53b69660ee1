"""``models``, ``embed``, ``convert``: listing, running and converting language models."""

from __future__ import annotations

import logging
from pathlib import Path

from nucfm.cli.common import (
    add_common,
    add_frame_options,
    check_input,
    check_model_name,
    check_output,
    load_cli_model,
    nonnegative_int,
    positive_int,
    resolve_device,
)
from nucfm.errors import InputError

log = logging.getLogger("nucfm")


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


def add_embed(sub):
    p = sub.add_parser("embed", help="per-residue or pooled embeddings of a FASTA file",
                       description="Embed every record of a FASTA/FASTQ file (plain or gzip). Output format "
                       "by extension: .h5/.npz (per residue or pooled), .npy/.parquet (pooled). Records are "
                       "keyed by id; repeated or colliding ids get #2, #3... (every record is kept). Finished "
                       "chunks wait in OUTPUT.parts/: rerun the same command to resume; --restart starts over.")
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
    add_frame_options(p)
    p.add_argument("--layout", choices=["records", "concat"], default="records",
                   help="per-residue .h5: one dataset per record (records, default) or one concatenated "
                   "array + offsets (concat: for millions of records; read with nucfm.open_embeddings)")
    p.add_argument("--chunk-residues", type=positive_int, default=None,
                   help="residues per resumable chunk (default: 256 MiB of embeddings)")
    p.add_argument("--restart", action="store_true", help="discard finished chunks of an earlier, different run")
    p.set_defaults(run=run_embed)


def run_embed(args):
    from nucfm.io.embeddings import check_embedding_output
    from nucfm.tasks.embed import embed_fasta

    check_input(args.input, "FASTA")
    check_embedding_output(args.output, pooled=args.pool == "mean", layout=args.layout)
    check_output(args.output, [args.input])
    if args.output.lower().endswith(".npy"):
        check_output(str(Path(args.output).with_suffix(".ids.txt")), [args.input], "ids file")
    check_model_name(args.model)
    device = resolve_device(args.device)
    from nucfm.io.fasta import scan_fasta
    from nucfm.progress import estimate_line

    log.info(estimate_line("embed", scan_fasta(args.input)))  # a bad record fails here, before the model loads
    name, model = load_cli_model(args.model, "rna", args.threads, device=None if args.int8 else device, codons=True)
    if (args.frame or args.longest_orf) and model.alphabet.kmer == 1:
        raise InputError(f"--frame and --longest-orf are for codon models (mrna-fm); {name} reads nucleotides")
    if getattr(model.config, "n_aux_features", 0):
        log.warning("%s is a GPN-MSA model: embedding FASTA input without the aligned species (their features "
                    "are zero, as GPN-MSA's --disable_aux_features)", name)
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
                          show_progress=not args.no_progress, frame=args.frame, longest_orf=args.longest_orf,
                          layout=args.layout, chunk_residues=args.chunk_residues, restart=args.restart)
    from nucfm import distributed

    if distributed.setup().is_main:
        unit = "codons" if model.alphabet.kmer > 1 else "nt"
        log.info(f"embedded {summary['records']} records ({summary['residues']} {unit}) with {name} -> {args.output}")


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
