"""What ``--help`` says beyond the options: the task family of each subcommand, an example on the
shipped example data, and the documentation page that explains it.

Every example here is also a command on its documentation page, where ``tests/test_docs.py`` runs
it as written; ``tests/test_cli_help.py`` checks that each one is there.
"""

from __future__ import annotations

import argparse

# (family, commands), in the order of the documentation's navigation
FAMILIES = [
    ("models", ["models", "convert"]),
    ("embeddings", ["embed"]),
    ("RNA structure", ["fold", "score-ss", "train-ss", "contacts", "score-contacts"]),
    ("DNA and variant effects", ["vep", "vep-report", "probs", "genome-clusters", "logo", "codon-vep"]),
    ("RNA analyses", ["compare", "atlas"]),
    ("training and prediction", ["pretrain", "eval-mlm", "finetune", "predict"]),
    ("web server", ["serve"]),
]

# command -> (an example from its page, the page under docs/)
EXAMPLES = {
    "codon-vep": ("nucfm codon-vep -m examples/models/mrna-fm-tiny-random --cds examples/cds.fa -i "
                  "examples/cds_variants.tsv -o scored.tsv", "models/mrna-fm.md"),
    "models": ("nucfm models", "concepts/models.md"),
    "convert": ("nucfm convert -m nucfm-rna-t4-2M-rfam -o out/rna-copy --fp16", "concepts/models.md"),
    "embed": ("nucfm embed -i examples/rna.fa -o out/emb.h5 --threads 1", "embeddings.md"),
    "fold": ("nucfm fold -i examples/ss_test.fa -o out/ss_test.dbn --threads 1", "secondary-structure.md"),
    "score-ss": ("nucfm score-ss --pred out/ss_test.dbn --ref examples/ss_test.dbn", "secondary-structure.md"),
    "train-ss": ("nucfm train-ss --config configs/examples/ss.yaml", "secondary-structure.md"),
    "contacts": ("nucfm contacts -i examples/contacts_ts1.fa -o out/contacts.npz --threads 1", "contacts.md"),
    "score-contacts": ("nucfm score-contacts --pred out/contacts.npz --ref examples/contacts_ts1.jsonl",
                       "contacts.md"),
    "vep": ("nucfm vep --genome examples/genome.fa.gz --variants examples/variants.vcf -o out/scored.vcf.gz "
            "--threads 1", "variant-effects.md"),
    "vep-report": ("nucfm vep-report out/scan.parquet -o out/report/", "variant-effects.md"),
    "probs": ("nucfm probs --genome examples/genome.fa.gz --region chr1_28M:1001-1500 -o out/probs.tsv --threads 1",
              "variant-effects.md"),
    "genome-clusters": ("nucfm genome-clusters --genome examples/genome.fa.gz --gff examples/genome.gff.gz "
                        "--region chr1_28M:1-20000 --threads 1 -o out/clusters/", "genome-analyses.md"),
    "logo": ("nucfm logo --genome examples/genome.fa.gz --region chr1_28M:6025-6124 -o out/logo_one_step/ "
             "--threads 1", "genome-analyses.md"),
    "compare": ("nucfm compare -i examples/sars_cov_2.fa.gz -o out/cmp/ --threads 1", "rna-analyses.md"),
    "atlas": ("nucfm atlas -i examples/ncrna_typed.fa -o out/atlas/ --threads 1", "rna-analyses.md"),
    "pretrain": ("nucfm pretrain --config configs/examples/rna-tiny.yaml", "pretraining.md"),
    "eval-mlm": ("nucfm eval-mlm --fasta examples/ncrna_typed.fa --threads 1", "pretraining.md"),
    "finetune": ("nucfm finetune -c configs/examples/utr-mrl.yaml", "finetuning.md"),
    "predict": ("nucfm predict -m nucfm-mrl-cnn3x120-onehot-vienna-sample2019 -i examples/utrs.fa "
                "-o out/mrl_shipped.tsv", "finetuning.md"),
    "serve": ("nucfm serve", "serve.md"),
}


class Formatter(argparse.HelpFormatter):
    """argparse's wrapping, paragraph by paragraph; lines indented by two spaces (examples) kept."""

    def _fill_text(self, text, width, indent):
        return "\n".join(line if line.startswith("  ") or not line.strip() else super(Formatter, self)._fill_text(
            line, width, indent) for line in text.splitlines())


def page_hint(page: str) -> str:
    url = page.removesuffix(".md").removesuffix("index")
    return f"documentation:\n  docs/{page}  (under `mkdocs serve`: http://127.0.0.1:8000/{url}/)"


def describe(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:
    """Give each subcommand its one-line description, example and page, and list the subcommands
    in ``nucfm --help`` by family instead of argparse's flat list."""
    one_line = {a.dest: a.help for a in sub._choices_actions}
    for name, p in sub.choices.items():
        example, page = EXAMPLES[name]
        if p.description is None:
            p.description = one_line[name]
        else:
            p.description = f"{one_line[name]}.\n\n{p.description}"
        p.epilog = f"example (from the repository root, on the shipped example data):\n  {example}\n\n{page_hint(page)}"
        p.formatter_class = Formatter
    width = max(map(len, sub.choices)) + 2
    lines = ["commands, by task family (`nucfm COMMAND --help` for each):"]
    for family, names in FAMILIES:
        lines.append(f"\n{family}:")
        lines += [f"  {n:{width}s}{one_line[n]}" for n in names]
    lines.append("\nstart here: docs/quickstart.md (`mkdocs serve` shows the documentation site)")
    parser.epilog = "\n".join(lines)
    parser.formatter_class = Formatter
    sub.help = "one of the commands listed below"
    sub._choices_actions.clear()  # the families above replace argparse's flat list
