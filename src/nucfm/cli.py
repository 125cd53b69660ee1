"""The ``nucfm`` command. Parsing only: every subcommand calls one library function.

Each subcommand is a pair ``add_NAME(subparsers)`` / ``run_NAME(args)`` registered in
``COMMANDS``. User errors (:class:`nucfm.errors.NucfmError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
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
            where = "cached" if registry.is_cached(e.name) else "download on first use"
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
    p.add_argument("--batch-tokens", type=int, default=1024, help="tokens per batch (padding included)")
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
    from nucfm import distributed

    if distributed.setup().is_main:
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


# ---- vep / probs (GPN-style DNA models) ---------------------------------------------------------
def _add_genome_args(p):
    p.add_argument("--genome", required=True, help="reference FASTA (plain, .gz or bgzip)")
    p.add_argument("--chrom-alias", action="append", metavar="NAME=CONTIG|FILE",
                   help="map a chromosome name of the input to a genome contig (repeatable), or a two-column "
                        "TSV of such pairs, e.g. --chrom-alias 1=NC_003070.9")
    add_model_option(p, "dna")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--batch-size", type=int, default=None, help="variants or positions per forward pass")


def _load_dna(args):
    import os

    import torch

    from nucfm.io.genome import Genome, parse_aliases

    name, model = load_cli_model(args.model, "dna", args.threads)
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
    if result is not None:  # rank 0 (or the only process) writes
        write_position_probs(result, chrom, args.output)
        log.info("wrote %s: %d positions", args.output, end - start)


# ---- pretrain -----------------------------------------------------------------------------------
def add_pretrain(sub):
    p = sub.add_parser("pretrain", help="masked-LM pretraining from a run config (RNA transformer or DNA ConvNet)",
                       description="Train a model with masked-token prediction. The config (YAML) has sections "
                       "model, data, train, output; KEY=VALUE overrides (e.g. train.steps=100) apply on top. "
                       "Run under torchrun for several processes (DDP).")
    p.add_argument("--config", required=True, help="run config YAML (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.lr=3e-4")
    p.add_argument("--resume", action="store_true",
                   help="insist on continuing from the run's latest checkpoint (rerunning the same config resumes "
                        "anyway)")
    p.add_argument("--restart", action="store_true", help="discard an earlier run in the output and start over")
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
    out = pretrain(cfg, resume=args.resume or None, restart=args.restart)
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
    p.add_argument("--region", help="CHROM:START-END of --genome, 1-based inclusive (as samtools)")
    p.add_argument("--gff", help="GFF3 annotation: adds rows per class (CDS, UTRs, ncRNA, intron, intergenic)")
    p.add_argument("--chrom-alias", action="append", metavar="NAME=CONTIG|FILE",
                   help="contig name in --region / --gff -> contig in --genome (repeatable), or a two-column TSV")
    p.add_argument("--counts", help="baseline counts (.npz) from the training data; default: mlm_counts.npz "
                   "beside the model")
    p.add_argument("--window", type=int, default=512, help="genome window per forward pass (default 512)")
    p.add_argument("--seed", type=int, default=0, help="masking seed (default 0)")
    p.add_argument("--corruption", choices=["mask", "80-10-10"], default="mask",
                   help="selected positions all become <mask> (default), or training's 80/10/10")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("-o", "--output", help="write the table as JSON here")
    p.set_defaults(run=run_eval_mlm)


def run_eval_mlm(args):
    import json
    from pathlib import Path

    from nucfm.checkpoint import load_model, registry, resolve
    from nucfm.data.baselines import ContextCounts
    from nucfm.errors import InputError
    from nucfm.tasks.eval_mlm import evaluate_mlm, fasta_pieces, find_counts, format_table, genome_pieces

    if args.genome and not args.region:
        raise InputError("--genome needs --region CHROM:START-END")
    name = args.model or registry.default_model("dna" if args.genome else "rna")
    path = resolve(name)
    model = load_model(path)
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
    rows = evaluate_mlm(model, pieces, counts, seed=args.seed, batch_size=args.batch_size, progress=True,
                        mask_frac=1.0 if args.corruption == "mask" else 0.8)
    print(format_table(rows))
    if args.output:
        Path(args.output).write_text(json.dumps({"model": str(name), "rows": rows}, indent=1) + "\n")


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
    p.add_argument("--max-span", type=int, default=None, metavar="N",
                   help="local mode for records longer than N+1 nt: pairs span at most N nt (ViennaRNA local "
                        "folding, the head on overlapping blocks; memory O(L*N)). Default: records over 1500 nt "
                        "fold locally with N = 200")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads, and processes for the ViennaRNA features (default: all threads, 1 process)")
    p.set_defaults(run=run_fold)


def run_fold(args):
    import dataclasses
    from pathlib import Path

    import torch

    from nucfm.checkpoint import registry
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.errors import InputError
    from nucfm.tasks.structure import fold_fasta

    if args.max_span is not None and args.max_span < 1:
        raise InputError(f"--max-span must be >= 1, not {args.max_span}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be >= 1, not {args.threads}")
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
    p.add_argument("--config", default=None, help="run config YAML (keys of TrainStructureConfig)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. lr=1e-3 crop=200")
    p.add_argument("-o", "--output", default=None, help="run directory (default runs/ss); best model in OUTPUT/best")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--restart", action="store_true", help="discard an earlier run in OUTPUT and start over")
    helps = {"task": "structure (base pairs, default) or contact (3D closeness; train/valid are contact .jsonl.gz)",
             "init_from": "start the head from this trained structure model (directory or name); same architecture",
             "train": "training structures (default ../shared/data/ss/bprna/TR0.dbn)",
             "valid": "validation structures (default ../shared/data/ss/bprna/VL0.dbn)",
             "lm": "language model (name or path) for embeddings; 'none' = pair features only",
             "lm_layer": "LM layer to read (default -1, the final output)",
             "features": "comma-separated extra pair channels from: onehot, bpp (ViennaRNA, Turner 2004), "
                         "bpp-langdon2018, bpp-andronescu2007; 'none' for none (default onehot,bpp)"}
    for key, kind in TRAIN_SS_SHORTCUTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None, dest=key,
                       help=helps.get(key, f"sets {key} (see --print-config)"))
    p.set_defaults(run=run_train_ss)


def run_train_ss(args):
    import yaml

    from nucfm.train.config import load_dict
    from nucfm.train.structure import TrainStructureConfig, train_structure

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
    summary = train_structure(cfg, restart=args.restart)
    keys = ("steps", "train_minutes", "threshold", "valid_score", "valid")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))


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
    p.add_argument("-i", "--input", required=True, help="FASTA (plain or gzip); T is read as U, other letters as N")
    p.add_argument("-o", "--output", required=True,
                   help="maps, one (L, L) float16 array per record key (.npz or .h5); top pairs go to "
                        "OUTPUT_STEM.top.tsv")
    p.add_argument("-m", "--model", default=None, help="contact model name or directory (default: the shipped one)")
    p.add_argument("--plot", default=None, metavar="DIR", help="also draw a PNG per record into DIR")
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="pairs listed per record (default L), |i - j| >= 6, best first")
    p.add_argument("--ref", default=None, help="known contacts (JSON lines: id, seq, contacts) to plot and score")
    p.add_argument("--max-span", type=int, default=None, metavar="N", help="local mode as in `fold --max-span`")
    p.add_argument("--threads", type=int, default=None, help="CPU threads and ViennaRNA feature processes")
    p.set_defaults(run=run_contacts)


def run_contacts(args):
    from pathlib import Path

    import torch

    from nucfm.checkpoint import registry
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.errors import InputError
    from nucfm.tasks.contacts import contacts_fasta
    from nucfm.tasks.structure import PROBS_FORMATS

    for opt in ("top_k", "max_span", "threads"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            raise InputError(f"--{opt.replace('_', '-')} must be >= 1, not {getattr(args, opt)}")
    if Path(args.output).suffix.lower() not in PROBS_FORMATS:
        raise InputError(f"{args.output}: contact maps are written as {', '.join(PROBS_FORMATS)}")
    for path in (args.input, args.ref):
        if path is not None and not Path(path).exists():
            raise InputError(f"{path}: no such file")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.model or registry.default_model("contact")
    summary = contacts_fasta(load_structure_model(name), args.input, args.output, plot_dir=args.plot,
                             top_k=args.top_k, ref=args.ref, workers=args.threads or 1, max_span=args.max_span)
    log.info(f"{summary['records']} contact maps with {name} -> {args.output}; top pairs -> {summary['top_pairs']}")
    if "scores" in summary:
        _print_contact_scores(summary["scores"], summary["scored"])


def _print_contact_scores(metrics: dict, scored: int) -> None:
    print("range	top	precision	pooled	chains	skipped")
    for key, v in metrics.items():
        rng, top = key.split("_")
        print(f"{rng}	{top}	{v['precision']:.4f}	{v['pooled']:.4f}	{v['chains']}	{v['skipped']}")


def add_score_contacts(sub):
    p = sub.add_parser("score-contacts", help="top-L/k precision of predicted contact maps against known contacts",
                       description="Long-range (|i-j| >= 24) and medium-range (12-23) precision of the top L/10, "
                       "L/5, L/2 and L predicted pairs, per chain then averaged (chains with no contact in the "
                       "range skipped and counted), and pooled over chains.")
    p.add_argument("--pred", required=True, help="predicted maps (`nucfm contacts` .npz)")
    p.add_argument("--ref", required=True, help="known contacts (JSON lines: id, seq, contacts; .gz allowed)")
    p.add_argument("--json", default=None, help="also write the scores as JSON")
    p.set_defaults(run=run_score_contacts)


def run_score_contacts(args):
    from nucfm.paths import atomic_write_text
    from nucfm.tasks.contacts import score_contact_files

    avg, _ = score_contact_files(args.pred, args.ref)
    _print_contact_scores(avg["metrics"], avg["scored"])
    if avg["missing"]:
        log.warning(f"{avg['missing']} reference record(s) had no predicted map and were not scored")
    if args.json:
        atomic_write_text(args.json, json.dumps(avg, indent=2) + "\n")


COMMANDS = [add_models, add_embed, add_convert, add_vep, add_probs, add_fold, add_score_ss, add_train_ss,
            add_contacts, add_score_contacts, add_pretrain, add_eval_mlm]


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
        code = int(args.run(args) or 0)
        from nucfm import distributed

        distributed.finish()  # under torchrun: every process leaves the group together
        return code
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
