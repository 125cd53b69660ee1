"""``codon-vep``: zero-shot scores of codon substitutions in coding sequences (codon models: mRNA-FM)."""

from __future__ import annotations

import logging

from nucfm.cli.common import (
    add_common,
    add_frame_options,
    check_input,
    check_model_name,
    check_output,
    load_cli_model,
    positive_int,
    resolve_device,
)
from nucfm.errors import InputError

log = logging.getLogger("nucfm")


def add_codon_vep(sub):
    p = sub.add_parser("codon-vep", help="zero-shot scores of codon substitutions in coding sequences (mRNA-FM: "
                       "masked-codon log-likelihood ratio, synonymous/missense labels)",
                       description="Score substitutions inside codons of coding sequences with a codon model: "
                       "logit[alt codon] - logit[ref codon] at the masked codon. Variants as for `nucfm vep` "
                       "(VCF/TSV/CSV/Parquet with chrom,pos,ref,alt), chrom naming a record of --cds and pos "
                       "1-based in it; or --all-snvs for every substitution of every codon.")
    add_common(p, model_kind="any", input_help="variants: VCF[.gz], TSV, CSV or Parquet with chrom (a --cds record "
               "id), pos (1-based in the record), ref, alt; or none with --all-snvs", input_names=("--variants",),
               input_required=False, output_help="output .tsv[.gz], .csv[.gz], .parquet, or .vcf[.gz] (VCF input only)",
               device=True, progress=True)
    p.add_argument("--cds", required=True, help="FASTA of coding sequences (plain or gzip); T is read as U")
    p.add_argument("--all-snvs", action="store_true",
                   help="score all three substitutions at every base of every CDS (instead of -i)")
    add_frame_options(p)
    p.add_argument("--batch-size", type=positive_int, default=8, help="masked codons per forward pass (default 8)")
    p.add_argument("--chunk-size", type=positive_int, default=2048,
                   help="codons per resumable chunk (default 2048); rerunning the same command resumes")
    p.add_argument("--restart", action="store_true", help="discard partial results of an earlier run")
    p.set_defaults(run=run_codon_vep)


def run_codon_vep(args):
    from nucfm.io.variants import check_scored_output, detect_format
    from nucfm.tasks.codon_vep import score_codon_file

    if bool(args.input) == bool(args.all_snvs):
        raise InputError("give either -i/--variants FILE or --all-snvs")
    check_input(args.cds, "CDS FASTA")
    if args.input:
        check_input(args.input, "variants")
        detect_format(args.input)
    check_scored_output(args.output, args.input or "scan.tsv")
    check_output(args.output, [args.input, args.cds])
    check_model_name(args.model)
    device = resolve_device(args.device)
    name, model = load_cli_model(args.model, "codon", args.threads, device=device)
    counts = score_codon_file(model, args.cds, args.input, args.output, frame=args.frame, orf=args.longest_orf,
                              batch_size=args.batch_size, chunk_size=args.chunk_size, restart=args.restart,
                              progress=not args.no_progress)
    log.info(f"scored {counts.get('ok', 0)} of {sum(counts.values())} variants with {name} -> {args.output}")
