"""``vep``, ``vep-report``, ``probs``, ``genome-clusters``, ``logo``: GPN-style DNA models on a genome."""

from __future__ import annotations

import logging
from pathlib import Path

from nucfm.cli.common import (
    add_common,
    check_input,
    check_model_name,
    check_output,
    load_cli_model,
    nonnegative_int,
    positive_float,
    positive_int,
    require_analysis,
    resolve_device,
)
from nucfm.errors import InputError

log = logging.getLogger("nucfm")


# ---- vep / probs (GPN-style DNA models) ---------------------------------------------------------
def _add_genome_args(p, genome_is_input: bool = False, msa: bool = False):
    names = ("-i", "--input", "--genome") if genome_is_input else ("--genome",)
    p.add_argument(*names, dest="genome", required=not msa, default=None,
                   help="reference FASTA (plain, .gz or bgzip)" + (" (or --msa)" if msa else ""))
    if msa:
        p.add_argument("--msa", default=None, metavar="ALIGNMENT",
                       help="GPN-MSA models: the multiple alignment, target first, in place of --genome: GPN-MSA's "
                            "Zarr directory (e.g. 89.zarr), a MAF[.gz], or an aligned FASTA of one region whose first "
                            "header is '>SPECIES CHROM:START-END'")
        p.add_argument("--msa-species", default=None, metavar="LIST|FILE",
                       help="MAF/FASTA: the model's species order, target first (comma-separated or one a line); "
                            "listed species absent from the alignment read as gaps")
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

    if getattr(args, "msa", None):
        if args.genome:
            raise InputError("give --genome or --msa, not both: the alignment's target rows are the reference")
        check_input(args.msa, "alignment")
    else:
        if args.genome is None:
            raise InputError("give the reference with --genome (or, for a GPN-MSA model, the alignment with --msa)")
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
    from nucfm.tasks.variants import needs_alignment

    if getattr(args, "msa", None):
        from nucfm.io.alignment import read_alignment, read_species_list

        genome = read_alignment(args.msa, read_species_list(args.msa_species), aliases=parse_aliases(args.chrom_alias))
    else:
        genome = Genome(args.genome, aliases=parse_aliases(args.chrom_alias))
    if region is not None:
        chrom, start, end = region
        n = genome.length(chrom)
        if end > n:
            raise InputError(f"region {args.region} is not inside {chrom} (1-{n})")
    name, model = load_cli_model(args.model, "dna", args.threads, device=device)
    n = needs_alignment(model)
    if n and not getattr(args, "msa", None):
        raise InputError(f"{name} is a GPN-MSA model: it reads {n} aligned species at every position; give the "
                         "alignment with --msa" + ("" if hasattr(args, "msa") else " (vep and probs take it)"))
    if getattr(args, "msa", None):
        if not n:
            raise InputError(f"{name} reads one genome, not an alignment: give --genome, not --msa")
        genome.check_model(n, str(name))
    if model.max_len is not None and args.window > model.max_len:
        raise InputError(f"--window {args.window} is longer than {name} accepts ({model.max_len})")
    return name, model, genome


def add_vep(sub):
    p = sub.add_parser("vep", help="zero-shot variant effect scores (GPN's masked log-likelihood ratio; "
                       "MNVs and indels by haplotype pseudo-log-likelihood)")
    add_common(p, input_help="variants: VCF[.gz], TSV, CSV or Parquet with chrom,pos,ref,alt (1-based); "
               "or none with --region R --all-snvs", input_names=("--variants",), input_required=False,
               output_help="output .tsv[.gz], .csv[.gz], .parquet, or .vcf[.gz] (VCF input only)", threads=False)
    _add_genome_args(p, msa=True)
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
                   help="input rows read, scored and saved together (default 2048; a VCF record's ALTs stay "
                        "together): memory holds one chunk, a rerun skips finished ones")
    p.add_argument("--restart", action="store_true", help="discard partial results of an earlier run")
    p.add_argument("--info-key", default="NUCFM_SCORE", help="INFO field name for VCF output")
    p.set_defaults(run=run_vep)


def run_vep(args):
    import re

    from nucfm.io.genome import parse_region
    from nucfm.io.variants import check_scored_output, detect_format
    from nucfm.tasks.variants import VariantSource, score_variant_file

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
    check_output(args.output, [args.input, args.genome or args.msa, args.gff])
    if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_.]*", args.info_key):
        raise InputError(f"--info-key {args.info_key!r}: a VCF INFO key is letters, digits, _ and . "
                         "(not starting with a digit)")
    if args.window < 4 and (args.all_snvs or args.flank):
        raise InputError("--window must be >= 4 to score MNVs, indels or scans")
    device = _check_genome_args(args)
    name, model, genome = _load_dna(args, device, region=region)
    variants, chunk = args.input, args.chunk_size
    if region is not None:  # whole sites per chunk: one forward pass per position and strand
        variants = VariantSource.scan(genome, *region, rows=-(-chunk // 3) * 3)
    annotate = calibrate = None
    if args.gff:
        from nucfm.tasks.consequence import annotator

        annotate = annotator(genome, args.gff, distance=args.upstream_distance)
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
    log.info("wrote %s (score_by_consequence.png, .tsv, .json)", args.output)


def add_probs(sub):
    p = sub.add_parser("probs", help="masked-prediction A/C/G/T distribution at every position of a region")
    _add_genome_args(p, genome_is_input=True, msa=True)
    p.add_argument("--region", required=True, help="CHROM:START-END, 1-based inclusive (e.g. chr1:1001-1100)")
    p.add_argument("-o", "--output", required=True, help="output .tsv[.gz], .csv[.gz], .parquet or .npz")
    p.add_argument("--strands", choices=("both", "fwd"), default="both",
                   help="average the forward and reverse-complement predictions (default) or forward only")
    p.set_defaults(run=run_probs)


def run_probs(args):
    from nucfm import distributed
    from nucfm.io.genome import parse_region
    from nucfm.progress import bar as progress_bar
    from nucfm.tasks.variants import check_probs_output, iter_position_probs, write_position_probs

    chrom, start, end = parse_region(args.region)
    check_probs_output(args.output)
    check_output(args.output, [args.genome or args.msa])
    device = _check_genome_args(args)
    _, model, genome = _load_dna(args, device, region=(chrom, start, end))
    ctx = distributed.setup()
    with progress_bar(total=end - start, unit="position", enabled=not args.no_progress, desc="probs") as bar:
        blocks = iter_position_probs(model, genome, chrom, start, end, window=args.window, strands=args.strands,
                                     batch_size=args.batch_size, progress=bar)
        if ctx.is_main:  # rank 0 (or the only process) writes each block as it comes
            write_position_probs(blocks, chrom, args.output)
            log.info("wrote %s: %d positions", args.output, end - start)
        else:
            for _ in blocks:  # the others compute their shares
                pass


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
    p.add_argument("--resolution", type=positive_float, default=1.0, help="Leiden resolution (default 1.0)")
    p.add_argument("--neighbors", type=positive_int, default=15, help="neighbours of the kNN graph (default 15)")
    p.add_argument("--kmer", type=positive_int, default=4, help="k of the k-mer baseline (default 4)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of UMAP, Leiden and the CV folds")
    p.add_argument("--block", type=positive_int, default=50_000,
                   help="genome block (bp) kept whole by the blocked cross-validation of the probe (default 50000)")
    p.add_argument("--restart", action="store_true",
                   help="discard window embeddings of an earlier, different run (OUTPUT.parts/); a rerun resumes")
    p.set_defaults(run=run_genome_clusters)


def run_genome_clusters(args):
    from nucfm.io.genome import parse_region
    from nucfm.tasks.genome_clusters import check_window_sizes, genome_clusters

    require_analysis("genome-clusters", ("umap", "leidenalg", "igraph", "sklearn"))
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
                              progress=not args.no_progress, model_name=str(name), restart=args.restart)
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

    require_analysis("logo", ("logomaker",))
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
        log.info("wrote %s", args.output)
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
        log.info("wrote %s", args.output)
        return
    from nucfm.progress import bar as progress_bar
    from nucfm.tasks.logo import region_logo, region_probs

    with progress_bar(total=end - start, unit="position", enabled=not args.no_progress, desc="probs") as bar:
        df = region_probs(model, genome, chrom, start, end, window=args.window, batch_size=args.batch_size,
                          progress=bar)
    summary = region_logo(df, args.output, args.row_length, args.max_length, source=str(name))
    print(f"{summary['positions']} positions, mean information content {summary['mean_ic_bits']:.3f} bits")
    log.info("wrote %s", args.output)
