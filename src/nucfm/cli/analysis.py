"""``compare`` and ``atlas``: analyses of pooled RNA embeddings."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from nucfm.cli.common import (
    add_common,
    check_input,
    check_model_name,
    check_output,
    int_list,
    load_cli_model,
    nonnegative_int,
    positive_int,
    require_analysis,
    resolve_device,
)
from nucfm.errors import InputError

log = logging.getLogger("nucfm")


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

    require_analysis("compare", ("skbio", "Bio"))
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


# ---- atlas --------------------------------------------------------------------------------------


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
    p.add_argument("--kmer", type=int_list, default=[1, 3], metavar="K[,K]",
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

    require_analysis("atlas", ("umap", "scanpy", "leidenalg", "igraph", "sklearn"))
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
            layers = int_list(args.layer)
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
