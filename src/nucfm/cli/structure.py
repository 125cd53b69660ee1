"""``fold``, ``score-ss``, ``train-ss``, ``contacts``, ``score-contacts``: structure and contacts."""

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
    new_run_dir,
    nonnegative_int,
    positive_int,
    probability,
    resolve_device,
)
from nucfm.errors import InputError

log = logging.getLogger("nucfm")


def _head_model_name(name, kind: str, need: str):
    """``name`` (or the default ``kind`` model); a registered model of another kind is refused."""
    from nucfm.checkpoint import registry

    name = name or registry.default_model(kind)
    if str(name) in registry.MODELS and registry.MODELS[str(name)].kind != kind:
        raise InputError(f"{name} is a {registry.MODELS[str(name)].kind.upper()} model; {need} (see `nucfm models`)")
    return name


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
    p.add_argument("--chunk-records", type=positive_int, default=256, help="records per resumable chunk")
    p.add_argument("--restart", action="store_true", help="discard finished chunks of an earlier, different run")
    _add_max_length(p)
    p.set_defaults(run=run_fold)


def _add_max_length(p):
    p.add_argument("--max-length", type=positive_int, default=None, metavar="N",
                   help="refuse records longer than N nt before any work (default 100000: local mode takes "
                        "about 50 ms and 1.5 kB per nt); raise it to fold longer records anyway")


def run_fold(args):
    import dataclasses

    import torch

    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.io.structure import FORMATS, bpseq_is_single_file
    from nucfm.paths import check_output_dir
    from nucfm.tasks.structure import MAX_LENGTH, PROBS_FORMATS, fold_fasta, precheck_fasta

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
    precheck_fasta(args.input, args.max_length or MAX_LENGTH, "fold")
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = _head_model_name(args.model, "ss", "fold needs a structure (SS) model")
    predictor = load_structure_model(name).to(device)
    opts = predictor.decode_options
    changes = {k: v for k, v in {"threshold": args.threshold, "method": args.decode}.items() if v is not None}
    if args.canonical_only:
        changes["canonical_only"] = True
    if args.no_pseudoknots:
        changes["pseudoknots"] = False
    opts = dataclasses.replace(opts, **changes)
    summary = fold_fasta(predictor, args.input, args.output, fmt=fmt, probs_path=args.probs,
                         plot_dir=args.plot, opts=opts, workers=args.threads or 1, max_span=args.max_span,
                         chunk_records=args.chunk_records, restart=args.restart,
                         max_length=args.max_length or MAX_LENGTH, show_progress=not args.no_progress)
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
    with new_run_dir(cfg.output):
        summary = train_structure(cfg, restart=args.restart)
    keys = ("steps", "train_minutes", "threshold", "valid_score", "valid")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))
    log.info("run written to %s (the model: %s)", cfg.output, Path(cfg.output) / "best")


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
               ".h5); the top pairs go to OUTPUT_STEM.top.tsv", device=True, progress=True)
    p.add_argument("--plot", default=None, metavar="DIR", help="also draw a PNG per record into DIR")
    p.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                   help="pairs listed per record (default L), |i - j| >= 6, best first")
    p.add_argument("--ref", default=None, help="known contacts (JSON lines: id, seq, contacts) to plot and score")
    p.add_argument("--max-span", type=positive_int, default=None, metavar="N",
                   help="local mode as in `fold --max-span`")
    p.add_argument("--chunk-records", type=positive_int, default=256, help="records per resumable chunk")
    p.add_argument("--restart", action="store_true", help="discard finished chunks of an earlier, different run")
    _add_max_length(p)
    p.set_defaults(run=run_contacts)


def run_contacts(args):
    import torch

    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.paths import check_output_dir
    from nucfm.tasks.contacts import contacts_fasta
    from nucfm.tasks.structure import MAX_LENGTH, PROBS_FORMATS, precheck_fasta

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
    precheck_fasta(args.input, args.max_length or MAX_LENGTH, "contacts")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = _head_model_name(args.model, "contact", "contacts needs a contact model")
    model = load_structure_model(name).to(resolve_device(args.device))
    summary = contacts_fasta(model, args.input, args.output, plot_dir=args.plot, top_k=args.top_k, ref=args.ref,
                             workers=args.threads or 1, max_span=args.max_span, chunk_records=args.chunk_records,
                             restart=args.restart, max_length=args.max_length or MAX_LENGTH,
                             show_progress=not args.no_progress)
    if "scores" in summary:
        _print_contact_scores(summary["scores"], summary["scored"])
    log.info(f"{summary['records']} contact maps with {name} -> {args.output}; top pairs -> {summary['top_pairs']}"
             + (f"; plots -> {args.plot}" if args.plot else ""))


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
