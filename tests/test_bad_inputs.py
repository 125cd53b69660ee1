"""Bad and unusual inputs for every subcommand, run as a user would (``nucfm.cli.main``).

Each case ends either in ONE ``nucfm: error:`` line (exit 2, no traceback) or in a correct
output. For every case, no input file and no previous output in the workspace changes, and a
failed run leaves no file behind (the workspace is hashed before and after).
"""

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nucfm import save_model
from nucfm.checkpoint import registry
from nucfm.cli import main

from tiny import codon_model, dna_model, gpn_model, rna_model

RNG = np.random.default_rng(0)
CHR1 = "".join(RNG.choice(list("ACGT"), 300))
PREVIOUS = b"previous good output\n"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The workspace: inputs, models and 'previous good outputs' (prev.*)."""
    w = tmp_path_factory.mktemp("ws")
    (w / "good.fa").write_text(">a\nACGUACGUACGU\n>b\nGGGAAACUUCCC\n")
    (w / "empty.fa").write_bytes(b"")
    (w / "binary.fa").write_bytes(bytes(range(256)) * 4)
    (w / "notfasta.fa").write_text("hello world\n")
    (w / "binary.tsv").write_bytes(bytes(range(256)) * 4)
    (w / "trunc.fa.gz").write_bytes(gzip.compress(b">a\n" + b"ACGU" * 500 + b"\n")[:40])
    (w / "adir").mkdir()
    (w / "g.fa").write_text(f">chr1\n{CHR1}\n")
    (w / "v.tsv").write_text(f"chrom\tpos\tref\talt\nchr1\t50\t{CHR1[49]}\t{'A' if CHR1[49] != 'A' else 'C'}\n"
                             "chr1\t100.7\tA\tC\nchrZ\t5\tA\tG\n")
    (w / "v.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                             f"chr1\t60\tx\t{CHR1[59]}\t{'A' if CHR1[59] != 'A' else 'C'}\t.\t.\t.\n")
    (w / "ref.dbn").write_text(">a\nGGGAAACCC\n(((...)))\n>b\nGGGGAAACCCC\n((((...))))\n")
    (w / "pred.dbn").write_text(">a\nGGGAAACCC\n((.....))\n")
    (w / "bad.yaml").write_text("train: [unclosed\n")
    (w / "types.yaml").write_text("train:\n  steps: abc\n")
    (w / "ss_types.yaml").write_text("crop: abc\n")
    (w / "ss_unknown.yaml").write_text("no_such_key: 1\n")
    (w / "list.yaml").write_text("- a\n- b\n")
    (w / "conv_out").mkdir()
    (w / "conv_out" / "config.json").write_text('{"unrelated": true}\n')
    (w / "plots_other").mkdir()
    (w / "plots_other" / "notes.txt").write_text("mine\n")
    for name in ("prev.h5", "prev.npz", "prev.npy", "prev.tsv", "prev.tsv.gz", "prev.dbn", "prev.json", "prev.ct"):
        (w / name).write_bytes(PREVIOUS)
    save_model(rna_model(max_len=40), w / "rna")
    save_model(dna_model(), w / "dna")
    save_model(codon_model(max_len=20), w / "codon")
    (w / "cds.fa").write_text(">c1\nAUGGCUAAAGAAUUCUAA\n>c2\nATGTGGTAG\n")
    (w / "cds_odd.fa").write_text(">c1\nAUGGCUAAAGAAUUCUAA\n>odd\nCCAUGGCUAAAUAAGG\n")
    (w / "cds_messy.fa").write_text(">nostart\nGCUAAAGAAUAA\n>stop\nAUGUAAGCUUAA\n>n\nAUGNNNGCUUAA\n")
    (w / "junk.npz").write_bytes(b"not counts")
    (w / "protein.fa").write_text(">p\nMKVLAAGIVQEDFLPKRS\n")
    (w / "cds_v.tsv").write_text("chrom\tpos\tref\talt\nc1\t6\tU\tC\nc1\t7\tA\tU\nc2\t2\tT\tC\nc9\t1\tA\tG\n")
    (w / "cds_v_unknown.tsv").write_text("chrom\tpos\tref\talt\nc9\t1\tA\tG\n")
    save_model(gpn_model(encoder="bytenet"), w / "gpn_bytenet")  # the current GPN format's classes
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "dna-msa", w / "msa")  # GPN-MSA example
    (w / "msa" / "far.tsv").write_text("chrom\tpos\tref\talt\nchr1\t500\tA\tC\n")
    base = (w / "msa" / "target.fa").read_text().split()[-1][49].upper()
    (w / "msa" / "indel.tsv").write_text(f"chrom\tpos\tref\talt\nchr1\t50\t{base}\t{base}A\n")
    from nucfm.checkpoint.task import save_task_model
    from nucfm.models.task import TaskConfig, TaskHead, TaskModel

    tc = TaskConfig(task="regression", labels=("y",), inputs=("onehot",), target_mean=(0.0,), target_std=(1.0,))
    save_task_model(TaskModel(tc, TaskHead(tc)), w / "task")
    (w / "lab.csv").write_text("seq,y\nACGU,1\nGGCC,2\nAAAA,\nCCCA,3\n")
    (w / "lab.fa").write_text(">a cls=x\nACGU\n>b something\nGGCC\n")
    (w / "cls.csv").write_text("seq,y\nACGU,a\nGGCC,b\nAAAA,a\nCCCA,b\nUUUA,a\nGAGA,b\n")
    (w / "cls_new.csv").write_text("seq,y\nACGU,a\nGGCC,c\n")
    (w / "run" / "best").mkdir(parents=True)  # a finetune run directory: predict loads RUN/best
    for f in (w / "task").iterdir():
        (w / "run" / "best" / f.name).write_bytes(f.read_bytes())
    _damaged_models(w)
    (w / "prot.fa").write_text(f">hbb human hemoglobin\n{HEMOGLOBIN}\n>ok\nACGUACGU\n")
    (w / "prot.csv").write_text(f"id,seq,y\nok,ACGU,1\nhbb,{HEMOGLOBIN},2\n")
    (w / "iupac_peptide.fa").write_text(">pep\nMKVRSDHMKVRSDHMKVRSDHAGT\n")
    (w / "long.fa").write_text(">chrL\n" + "ACGU" * 300 + "\n>short\nGGGAAACCC\n")
    (w / "prot_genome.fa").write_text(f">hbb\n{HEMOGLOBIN}\n")
    import pyfaidx

    pyfaidx.Fasta(str(w / "prot_genome.fa"))  # its index, built now
    from nucfm.io.genome import Genome

    Genome(w / "g.fa").fetch("chr1", 0, 1)  # build any index now, so runs leave the workspace as it is
    return w


HEMOGLOBIN = ("MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENF"
              "RLLGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH")


def _damaged_models(w: Path) -> None:
    """Model directories damaged the ways downloads and disks damage them: a truncated
    config.json, a truncated model.safetensors, weights of another shape, missing and extra
    tensors (a config that says 3 layers / 1 layer over 2-layer weights)."""
    import json
    import shutil

    def copy(src, name, edit=None, weights=None):
        shutil.copytree(src, w / name)
        if edit is not None:
            doc = json.loads((w / name / "config.json").read_text())
            edit(doc)
            (w / name / "config.json").write_text(json.dumps(doc))
        if weights is not None:
            (w / name / "model.safetensors").write_bytes(weights)

    rna = w / "rna"
    text = (rna / "config.json").read_text()
    copy(rna, "rna_trunc_config")
    (w / "rna_trunc_config" / "config.json").write_text(text[: len(text) // 2])
    copy(rna, "rna_trunc_weights", weights=(rna / "model.safetensors").read_bytes()[:300])
    copy(rna, "rna_shapes", edit=lambda d: d["model"].update(ffn_size=64))
    copy(rna, "rna_missing", edit=lambda d: d["model"].update(num_layers=3))
    copy(rna, "rna_extra", edit=lambda d: d["model"].update(num_layers=1))
    copy(rna, "rna_no_model", edit=lambda d: d.pop("model"))
    copy(rna, "rna_no_weights")
    (w / "rna_no_weights" / "model.safetensors").unlink()
    ss = registry.resolve(SS)
    copy(ss, "ss_trunc_config")
    (w / "ss_trunc_config" / "config.json").write_text((ss / "config.json").read_text()[:50])
    copy(ss, "ss_shapes", edit=lambda d: d["structure"]["head"].update(channels=8))
    copy(w / "task", "task_trunc_weights", weights=(w / "task" / "model.safetensors").read_bytes()[:100])


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


SS = registry.DEFAULTS["ss"]
RNA = registry.DEFAULTS["rna"]
DNA = registry.DEFAULTS["dna"]
E = "error"

# (id, argv with {w} = workspace and {o} = a fresh output directory, expectation)
CASES = [
    # ---- models / top level
    ("models-ok", ["models"], "ok"),
    ("models-extra-arg", ["models", "--bogus"], E),
    ("unknown-command", ["frobnicate"], E),
    # ---- embed
    ("embed-missing-file", ["embed", "-i", "{w}/nope.fa", "-o", "{o}/e.h5"], E),
    ("embed-task-model-path", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/task"], E),
    ("embed-dir-input", ["embed", "-i", "{w}/adir", "-o", "{o}/e.h5"], E),
    ("embed-empty", ["embed", "-i", "{w}/empty.fa", "-o", "{w}/prev.h5", "-m", "{w}/rna"], E),
    ("embed-binary", ["embed", "-i", "{w}/binary.fa", "-o", "{w}/prev.h5", "-m", "{w}/rna"], E),
    ("embed-not-fasta", ["embed", "-i", "{w}/notfasta.fa", "-o", "{w}/prev.h5", "-m", "{w}/rna"], E),
    ("embed-truncated-gz", ["embed", "-i", "{w}/trunc.fa.gz", "-o", "{w}/prev.h5", "-m", "{w}/rna"], E),
    ("embed-file-in-outdir", ["embed", "-i", "{w}/good.fa", "-o", "{w}/good.fa/e.h5", "-m", "{w}/rna"], E),
    ("embed-out-is-in", ["embed", "-i", "{w}/good.fa", "-o", "{w}/good.fa", "-m", "{w}/rna"], E),
    ("embed-out-is-dir", ["embed", "-i", "{w}/good.fa", "-o", "{w}/adir", "-m", "{w}/rna"], E),
    ("embed-unknown-ext", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.xlsx", "-m", "{w}/rna"], E),
    ("embed-npy-per-residue", ["embed", "-i", "{w}/good.fa", "-o", "{w}/prev.npy", "-m", "{w}/rna"], E),
    ("embed-batch-tokens-0", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--batch-tokens", "0"], E),
    ("embed-batch-tokens-neg", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--batch-tokens", "-5"], E),
    ("embed-batch-tokens-abc", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--batch-tokens", "abc"], E),
    ("embed-overlap-neg", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--overlap", "-1"], E),
    ("embed-overlap-huge", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--overlap", "500", "-m", "{w}/rna"], E),
    ("embed-layer-99", ["embed", "-i", "{w}/good.fa", "-o", "{w}/prev.h5", "-m", "{w}/rna", "--layer", "99"], E),
    ("embed-layer-float", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--layer", "1.5"], E),
    ("embed-threads-0", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--threads", "0"], E),
    ("embed-device-bogus", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--device", "tpu"], E),
    ("embed-device-cuda99", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--device", "cuda:99"], E),
    ("embed-unknown-model", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "no-such-model"], E),
    ("embed-ss-model", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", SS], E),
    ("embed-model-is-dir-of-junk", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/adir"], E),
    ("embed-pool-bogus", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "--pool", "max"], E),
    ("embed-ok-npy", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.npy", "--pool", "mean", "-m", "{w}/rna",
                      "--no-progress", "--device", "cpu"], "ok"),
    ("embed-ok-parquet", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.parquet", "--pool", "mean", "-m", "{w}/rna",
                          "--no-progress"], "ok"),
    # ---- embed with a codon model (mRNA-FM): frame errors and options
    ("embed-codon-not-multiple-of-3", ["embed", "-i", "{w}/cds_odd.fa", "-o", "{o}/e.h5", "-m", "{w}/codon"], E),
    ("embed-codon-protein", ["embed", "-i", "{w}/protein.fa", "-o", "{o}/e.h5", "-m", "{w}/codon"], E),
    ("embed-codon-frame-4", ["embed", "-i", "{w}/cds.fa", "-o", "{o}/e.h5", "-m", "{w}/codon", "--frame", "4"], E),
    ("embed-codon-frame-and-orf", ["embed", "-i", "{w}/cds.fa", "-o", "{o}/e.h5", "-m", "{w}/codon", "--frame", "1",
                                   "--longest-orf"], E),
    ("embed-frame-nucleotide-model", ["embed", "-i", "{w}/cds.fa", "-o", "{o}/e.h5", "-m", "{w}/rna", "--frame", "1"],
     E),
    ("embed-codon-ok-frame", ["embed", "-i", "{w}/cds_odd.fa", "-o", "{o}/e.h5", "-m", "{w}/codon", "--frame", "1",
                              "--no-progress"], "ok"),
    ("embed-codon-ok-orf", ["embed", "-i", "{w}/cds_odd.fa", "-o", "{o}/e.h5", "-m", "{w}/codon", "--longest-orf",
                            "--pool", "mean", "--no-progress"], "ok"),
    ("embed-codon-ok-warnings", ["embed", "-i", "{w}/cds_messy.fa", "-o", "{o}/e.h5", "-m", "{w}/codon",
                                 "--no-progress"], "ok"),
    # ---- codon-vep
    ("codon-vep-no-model", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.tsv"], E),
    ("codon-vep-rna-model", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.tsv",
                             "-m", "{w}/rna"], E),
    ("codon-vep-dna-model", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.tsv",
                             "-m", "{w}/dna"], E),
    ("codon-vep-ss-model", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.tsv", "-m", SS], E),
    ("codon-vep-missing-cds", ["codon-vep", "--cds", "{w}/nope.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.tsv",
                               "-m", "{w}/codon"], E),
    ("codon-vep-no-variants", ["codon-vep", "--cds", "{w}/cds.fa", "-o", "{o}/s.tsv", "-m", "{w}/codon"], E),
    ("codon-vep-variants-and-all", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "--all-snvs",
                                    "-o", "{o}/s.tsv", "-m", "{w}/codon"], E),
    ("codon-vep-tsv-to-vcf", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.vcf",
                              "-m", "{w}/codon"], E),
    ("codon-vep-not-multiple-of-3", ["codon-vep", "--cds", "{w}/cds_odd.fa", "-i", "{w}/cds_v.tsv", "-o",
                                     "{o}/s.tsv", "-m", "{w}/codon"], E),
    ("codon-vep-protein", ["codon-vep", "--cds", "{w}/protein.fa", "--all-snvs", "-o", "{o}/s.tsv", "-m", "{w}/codon"],
     E),
    ("codon-vep-no-known-record", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v_unknown.tsv", "-o",
                                   "{o}/s.tsv", "-m", "{w}/codon"], E),
    ("codon-vep-ok", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.tsv", "-m",
                      "{w}/codon"], "ok"),
    ("codon-vep-ok-all-snvs-orf", ["codon-vep", "--cds", "{w}/cds_odd.fa", "--all-snvs", "--longest-orf", "-o",
                                   "{o}/s.parquet", "-m", "{w}/codon"], "ok"),
    # ---- a codon model where a nucleotide model is needed
    ("vep-codon-model", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv", "-m", "{w}/codon"], E),
    ("probs-codon-model", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1-40", "-o", "{o}/p.tsv", "-m",
                           "{w}/codon"], E),
    ("eval-mlm-codon-model", ["eval-mlm", "-i", "{w}/cds.fa", "-m", "{w}/codon", "--counts", "{w}/junk.npz"], E),
    # registered names of the wrong kind are refused before any download
    ("vep-registered-codon-model", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv", "-m",
                                    "mrna-fm"], E),
    ("codon-vep-registered-rna-model", ["codon-vep", "--cds", "{w}/cds.fa", "-i", "{w}/cds_v.tsv", "-o", "{o}/s.tsv",
                                        "-m", "rna-fm"], E),
    # ---- convert
    ("convert-missing-model", ["convert", "-m", "{w}/nope", "-o", "{o}/c"], E),
    ("convert-file-in-outdir", ["convert", "-m", "{w}/rna", "-o", "{w}/good.fa/c"], E),
    ("convert-out-is-file", ["convert", "-m", "{w}/rna", "-o", "{w}/prev.json"], E),
    ("convert-out-unrelated", ["convert", "-m", "{w}/rna", "-o", "{w}/conv_out"], E),
    ("convert-out-is-in", ["convert", "-m", "{w}/rna", "-o", "{w}/rna"], E),
    ("convert-out-inside-in", ["convert", "-m", "{w}/rna", "-o", "{w}/rna/sub"], E),
    ("convert-ok", ["convert", "-m", "{w}/rna", "-o", "{o}/c", "--fp16"], "ok"),
    # ---- vep
    ("vep-missing-variants", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/nope.tsv", "-o", "{o}/s.tsv"], E),
    ("vep-missing-genome", ["vep", "--genome", "{w}/nope.fa", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv"], E),
    ("vep-genome-dir", ["vep", "--genome", "{w}/adir", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv"], E),
    ("vep-xlsx", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/s.xlsx"], E),
    ("vep-tsv-to-vcf", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/s.vcf"], E),
    ("vep-parquet-gz", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/s.parquet.gz"], E),
    ("vep-unknown-input-ext", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/ref.dbn", "-o", "{w}/s.tsv"], E),
    ("vep-out-is-in", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/v.tsv"], E),
    ("vep-out-is-genome", ["vep", "--genome", "{w}/g.fa", "--variants", "{w}/v.vcf", "-o", "{w}/g.fa"], E),
    ("vep-batch-0", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "--batch-size", "0"], E),
    ("vep-batch-neg", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "--batch-size", "-1"],
     E),
    ("vep-window-0", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "--window", "0"], E),
    ("vep-window-float", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "--window", "1.5"],
     E),
    ("vep-binary-variants", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/binary.tsv", "-o", "{w}/prev.tsv"], E),
    ("vep-chunk-0", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "--chunk-size", "0"], E),
    ("vep-method-bogus", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "--method", "x"],
     E),
    ("vep-info-key-bad", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.vcf", "-o", "{o}/s.vcf", "--info-key", "A B"],
     E),
    ("vep-rna-model", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "-m", RNA], E),
    ("vep-rna-model-path", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv", "-m", "{w}/rna"],
     E),
    ("vep-empty-variants", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/empty.fa", "-o", "{w}/prev.tsv"], E),
    ("vep-scan-no-region", ["vep", "--genome", "{w}/g.fa", "--all-snvs", "-o", "{o}/s.parquet"], E),
    ("vep-scan-and-variants", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "--region", "chr1:1-10",
                               "--all-snvs", "-o", "{o}/s.parquet"], E),
    ("vep-scan-bad-region", ["vep", "--genome", "{w}/g.fa", "--region", "chr1:10-1", "--all-snvs",
                             "-o", "{o}/s.parquet"], E),
    ("vep-scan-past-contig", ["vep", "--genome", "{w}/g.fa", "--region", "chr1:1-999999", "--all-snvs",
                              "-o", "{o}/s.parquet"], E),
    ("vep-scan-to-vcf", ["vep", "--genome", "{w}/g.fa", "--region", "chr1:1-10", "--all-snvs",
                         "-o", "{o}/s.vcf"], E),
    ("vep-gff-missing", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "--gff", "{w}/nope.gff",
                         "-o", "{o}/s.tsv"], E),
    ("vep-flank-neg", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "--flank", "-1", "-o", "{o}/s.tsv"], E),
    ("vep-background-0", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "--calibrate", "--background-size", "0",
                          "-o", "{o}/s.tsv"], E),
    # ---- contacts / score-contacts
    ("contacts-missing-input", ["contacts", "-i", "{w}/nope.fa", "-o", "{o}/c.npz"], E),
    ("contacts-binary", ["contacts", "-i", "{w}/binary.fa", "-o", "{o}/c.npz"], E),
    ("contacts-bad-ext", ["contacts", "-i", "{w}/good.fa", "-o", "{o}/c.xlsx"], E),
    ("contacts-out-is-in", ["contacts", "-i", "{w}/good.fa", "-o", "{w}/good.fa"], E),
    ("contacts-file-in-dir", ["contacts", "-i", "{w}/good.fa", "-o", "{w}/good.fa/c.npz"], E),
    ("contacts-top-0", ["contacts", "-i", "{w}/good.fa", "-o", "{o}/c.npz", "--top-k", "0"], E),
    ("contacts-span-neg", ["contacts", "-i", "{w}/good.fa", "-o", "{o}/c.npz", "--max-span", "-3"], E),
    ("contacts-ss-model", ["contacts", "-i", "{w}/good.fa", "-o", "{o}/c.npz", "-m", "nucfm-ss-res8x24-vienna3-bprna"],
     E),
    ("contacts-ref-missing", ["contacts", "-i", "{w}/good.fa", "-o", "{o}/c.npz", "--ref", "{w}/nope.jsonl"], E),
    ("score-contacts-missing", ["score-contacts", "--pred", "{w}/nope.npz", "--ref", "{w}/nope.jsonl"], E),
    ("score-contacts-not-npz", ["score-contacts", "--pred", "{w}/good.fa", "--ref", "{w}/good.fa"], E),
    # ---- vep-report
    ("vep-report-missing", ["vep-report", "{w}/nope.tsv", "-o", "{o}/rep"], E),
    ("vep-report-no-consequence", ["vep-report", "{w}/v.tsv", "-o", "{o}/rep"], E),
    ("vep-report-binary", ["vep-report", "{w}/binary.tsv", "-o", "{o}/rep"], E),
    ("vep-report-out-is-file", ["vep-report", "{w}/v.tsv", "-o", "{w}/prev.tsv"], E),
    ("vep-binary-genome", ["vep", "--genome", "{w}/binary.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv",
                           "-m", "{w}/dna"], E),
    ("vep-alias-missing-file", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{w}/prev.tsv",
                                "--chrom-alias", "{w}/nope.txt"], E),
    ("vep-ok-rows-kept", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv.gz", "-m", "{w}/dna",
                          "--window", "16", "--no-progress"], "ok"),
    # ---- vep / probs with GPN-MSA (--msa) and the current GPN format
    ("vep-msa-model-without-msa", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv",
                                   "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-with-single-genome-model", ["vep", "--msa", "{w}/msa/region.maf", "-i", "{w}/msa/variants.tsv",
                                          "-o", "{o}/s.tsv", "-m", "{w}/dna"], E),
    ("vep-msa-and-genome", ["vep", "--msa", "{w}/msa/region.maf", "--genome", "{w}/g.fa", "-i",
                            "{w}/msa/variants.tsv", "-o", "{o}/s.tsv", "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-missing", ["vep", "--msa", "{w}/msa/nope.maf", "-i", "{w}/msa/variants.tsv", "-o", "{o}/s.tsv",
                         "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-species-count", ["vep", "--msa", "{w}/msa/region.maf", "--msa-species", "hg38,panTro", "-i",
                               "{w}/msa/variants.tsv", "-o", "{o}/s.tsv", "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-species-order", ["vep", "--msa", "{w}/msa/region.maf", "--msa-species", "panTro,hg38,mm10", "-i",
                               "{w}/msa/variants.tsv", "-o", "{o}/s.tsv", "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-not-covered", ["vep", "--msa", "{w}/msa/region.maf", "-i", "{w}/msa/far.tsv", "-o", "{o}/s.tsv",
                             "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-unknown-contig", ["vep", "--msa", "{w}/msa/region.fa", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv",
                                "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-indel-marked", ["vep", "--msa", "{w}/msa/region.maf", "-i", "{w}/msa/indel.tsv", "-o", "{o}/s.tsv",
                              "-m", "{w}/msa/copy-model", "--window", "32", "--no-progress"], "ok"),
    ("vep-msa-fasta-no-region", ["vep", "--msa", "{w}/g.fa", "-i", "{w}/msa/variants.tsv", "-o", "{o}/s.tsv",
                                 "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-not-an-alignment", ["vep", "--msa", "{w}/v.tsv", "-i", "{w}/msa/variants.tsv", "-o", "{o}/s.tsv",
                                  "-m", "{w}/msa/copy-model"], E),
    ("vep-msa-window-too-long", ["vep", "--msa", "{w}/msa/region.maf", "-i", "{w}/msa/variants.tsv", "-o",
                                 "{o}/s.tsv", "-m", "{w}/msa/copy-model", "--window", "512"], E),
    ("vep-msa-ok", ["vep", "--msa", "{w}/msa/region.maf", "-i", "{w}/msa/variants.tsv", "-o", "{o}/s.tsv",
                    "-m", "{w}/msa/copy-model", "--window", "32", "--no-progress"], "ok"),
    ("probs-msa-model-without-msa", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1-5", "-o", "{o}/p.tsv",
                                     "-m", "{w}/msa/copy-model"], E),
    ("probs-msa-not-covered", ["probs", "--msa", "{w}/msa/region.fa", "--region", "chr1:100-130", "-o",
                               "{o}/p.tsv", "-m", "{w}/msa/copy-model"], E),
    ("probs-msa-ok", ["probs", "--msa", "{w}/msa/region.fa", "--region", "chr1:1-120", "-o", "{o}/p.tsv",
                      "-m", "{w}/msa/copy-model", "--window", "32", "--no-progress"], "ok"),
    ("fold-gpn-model", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "-m", "{w}/gpn_bytenet"], E),
    ("fold-gpn-msa-model", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "-m", "{w}/msa/copy-model"], E),
    ("vep-gpn-bytenet-ok", ["vep", "--genome", "{w}/g.fa", "-i", "{w}/v.tsv", "-o", "{o}/s.tsv",
                            "-m", "{w}/gpn_bytenet", "--window", "16", "--no-progress"], "ok"),
    ("embed-gpn-bytenet-ok", ["embed", "-i", "{w}/g.fa", "-o", "{o}/e.npy", "--pool", "mean",
                              "-m", "{w}/gpn_bytenet", "--no-progress"], "ok"),
    # ---- probs
    ("probs-region-no-range", ["probs", "--genome", "{w}/g.fa", "--region", "chr1", "-o", "{o}/p.tsv"], E),
    ("probs-region-zero", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:0-5", "-o", "{o}/p.tsv"], E),
    ("probs-region-reversed", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:10-5", "-o", "{o}/p.tsv"], E),
    ("probs-region-letters", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:a-b", "-o", "{o}/p.tsv"], E),
    ("probs-region-float", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1.5-9", "-o", "{o}/p.tsv"], E),
    ("probs-unknown-contig", ["probs", "--genome", "{w}/g.fa", "--region", "chrZ:1-10", "-o", "{w}/prev.tsv",
                              "-m", "{w}/dna"], E),
    ("probs-past-end", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1-100000", "-o", "{w}/prev.tsv",
                        "-m", "{w}/dna"], E),
    ("probs-ext-foo", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1-10", "-o", "{w}/p.foo"], E),
    ("probs-npz-gz", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1-10", "-o", "{w}/p.npz.gz"], E),
    ("probs-window-0", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1-10", "-o", "{o}/p.tsv", "--window", "0"],
     E),
    ("probs-batch-abc", ["probs", "--genome", "{w}/g.fa", "--region", "chr1:1-10", "-o", "{o}/p.tsv",
                         "--batch-size", "abc"], E),
    ("probs-out-is-genome", ["probs", "-i", "{w}/g.fa", "--region", "chr1:1-10", "-o", "{w}/g.fa"], E),
    ("probs-ok-bgzf", ["probs", "-i", "{w}/g.fa", "--region", "chr1:1-10", "-o", "{o}/p.tsv.gz", "-m", "{w}/dna",
                       "--window", "16", "--no-progress"], "ok"),
    # ---- fold
    ("fold-missing", ["fold", "-i", "{w}/nope.fa", "-o", "{o}/f.dbn"], E),
    ("fold-empty", ["fold", "-i", "{w}/empty.fa", "-o", "{w}/prev.dbn"], E),
    ("fold-binary", ["fold", "-i", "{w}/binary.fa", "-o", "{w}/prev.dbn"], E),
    ("fold-not-fasta", ["fold", "-i", "{w}/notfasta.fa", "-o", "{w}/prev.dbn"], E),
    ("fold-truncated-gz", ["fold", "-i", "{w}/trunc.fa.gz", "-o", "{w}/prev.dbn"], E),
    ("fold-out-is-in", ["fold", "-i", "{w}/good.fa", "-o", "{w}/good.fa"], E),
    ("fold-file-in-outdir", ["fold", "-i", "{w}/good.fa", "-o", "{w}/good.fa/f.dbn"], E),
    ("fold-threshold-high", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "--threshold", "1.5"], E),
    ("fold-threshold-neg", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "--threshold", "-0.1"], E),
    ("fold-threshold-nan", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "--threshold", "nan"], E),
    ("fold-probs-txt", ["fold", "-i", "{w}/good.fa", "-o", "{w}/prev.dbn", "--probs", "{w}/p.txt"], E),
    ("fold-probs-is-output", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.npz", "--probs", "{o}/f.npz"], E),
    ("fold-probs-is-input", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "--probs", "{w}/good.fa"], E),
    ("fold-ok-h5-probs", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.ct", "--probs", "{o}/p.h5", "--device", "cpu"],
     "ok"),
    ("fold-dna-model", ["fold", "-i", "{w}/good.fa", "-o", "{w}/prev.dbn", "-m", DNA], E),
    ("fold-rna-lm", ["fold", "-i", "{w}/good.fa", "-o", "{w}/prev.dbn", "-m", RNA], E),
    ("fold-rna-lm-path", ["fold", "-i", "{w}/good.fa", "-o", "{w}/prev.dbn", "-m", "{w}/rna"], E),
    ("fold-unknown-model", ["fold", "-i", "{w}/good.fa", "-o", "{w}/prev.dbn", "-m", "no-such"], E),
    ("fold-format-conflict", ["fold", "-i", "{w}/good.fa", "-o", "{w}/prev.dbn", "--format", "ct"], E),
    ("fold-plot-is-file", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "--plot", "{w}/prev.json"], E),
    ("fold-plot-foreign-dir", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "--plot", "{w}/plots_other"], E),
    ("fold-bpseq-into-file", ["fold", "-i", "{w}/good.fa", "-o", "{w}/prev.json", "--format", "bpseq"], E),
    ("fold-decode-bogus", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "--decode", "mfe"], E),
    # ---- score-ss
    ("score-missing-pred", ["score-ss", "--pred", "{w}/nope.dbn", "--ref", "{w}/ref.dbn"], E),
    ("score-missing-ref", ["score-ss", "--pred", "{w}/pred.dbn", "--ref", "{w}/nope.dbn"], E),
    ("score-empty-ref", ["score-ss", "--pred", "{w}/pred.dbn", "--ref", "{w}/empty.fa"], E),
    ("score-binary-pred", ["score-ss", "--pred", "{w}/binary.fa", "--ref", "{w}/ref.dbn"], E),
    ("score-per-seq-is-ref", ["score-ss", "--pred", "{w}/pred.dbn", "--ref", "{w}/ref.dbn", "--per-seq",
                              "{w}/ref.dbn"], E),
    ("score-per-seq-is-pred", ["score-ss", "-i", "{w}/pred.dbn", "--ref", "{w}/ref.dbn", "-o", "{w}/pred.dbn"], E),
    ("score-per-seq-file-in-dir", ["score-ss", "--pred", "{w}/pred.dbn", "--ref", "{w}/ref.dbn", "--per-seq",
                             "{w}/good.fa/x.tsv"], E),
    ("score-ok-missing-counted", ["score-ss", "--pred", "{w}/pred.dbn", "--ref", "{w}/ref.dbn", "--per-seq",
                                  "{o}/per.tsv"], "ok"),
    # ---- train-ss
    ("train-ss-missing-config", ["train-ss", "--config", "{w}/nope.yaml", "--print-config"], E),
    ("train-ss-bad-yaml", ["train-ss", "--config", "{w}/bad.yaml", "--print-config"], E),
    ("train-ss-wrong-type", ["train-ss", "--config", "{w}/ss_types.yaml", "--print-config"], E),
    ("train-ss-unknown-key", ["train-ss", "--config", "{w}/ss_unknown.yaml", "--print-config"], E),
    ("train-ss-list-config", ["train-ss", "--config", "{w}/list.yaml", "--print-config"], E),
    ("train-ss-crop-0", ["train-ss", "--crop", "0", "--print-config"], E),
    ("train-ss-dropout-2", ["train-ss", "--dropout", "2", "--print-config"], E),
    ("train-ss-lr-abc", ["train-ss", "--lr", "abc", "--print-config"], E),
    ("train-ss-override-abc", ["train-ss", "crop=abc", "--print-config"], E),
    ("train-ss-override-no-eq", ["train-ss", "crop", "--print-config"], E),
    ("train-ss-config-dir", ["train-ss", "--config", "{w}/adir", "--print-config"], E),
    ("train-ss-missing-train", ["train-ss", "--train", "{w}/nope.dbn", "--valid", "{w}/ref.dbn", "-o", "{o}/ss"], E),
    ("train-ss-binary-train", ["train-ss", "--train", "{w}/binary.fa", "--valid", "{w}/ref.dbn", "-o", "{o}/ss",
                               "--features", "onehot", "--max-steps", "1"], E),
    ("train-ss-out-is-file", ["train-ss", "--train", "{w}/ref.dbn", "--valid", "{w}/ref.dbn", "-o", "{w}/prev.json"],
     E),
    ("train-ss-print-ok", ["train-ss", "--print-config", "--crop", "50"], "ok"),
    # ---- pretrain
    ("pretrain-missing-config", ["pretrain", "--config", "{w}/nope.yaml"], E),
    ("pretrain-bad-yaml", ["pretrain", "--config", "{w}/bad.yaml"], E),
    ("pretrain-wrong-type", ["pretrain", "--config", "{w}/types.yaml", "--print-config"], E),
    ("pretrain-override-type", ["pretrain", "--config", "{w}/ss_unknown.yaml", "--print-config"], E),
    ("pretrain-list-config", ["pretrain", "--config", "{w}/list.yaml", "--print-config"], E),
    ("pretrain-binary-config", ["pretrain", "--config", "{w}/binary.fa", "--print-config"], E),
    ("pretrain-threads-0", ["pretrain", "--config", "{w}/types.yaml", "--threads", "0"], E),
    ("pretrain-device-bogus", ["pretrain", "--config", "{w}/types.yaml", "--device", "gpu"], E),
    ("pretrain-missing-source", ["pretrain", "--config", "{w}/types.yaml", "-o", "{o}/run", "train.steps=1",
                                 "data.fasta=[{w}/nope.fa]"], E),
    ("pretrain-overrides-after-options", ["pretrain", "--config", "{w}/ss_unknown.yaml", "-o", "{o}/run",
                                          "data.fasta=[{w}/nope.fa]"], E),
    ("pretrain-unknown-option", ["pretrain", "--config", "{w}/types.yaml", "--frobnicate"], E),
    # ---- eval-mlm
    ("eval-missing-fasta", ["eval-mlm", "--fasta", "{w}/nope.fa"], E),
    ("eval-out-is-in", ["eval-mlm", "--fasta", "{w}/good.fa", "-o", "{w}/good.fa"], E),
    ("eval-out-not-json", ["eval-mlm", "--fasta", "{w}/good.fa", "-o", "{w}/prev.tsv"], E),
    ("eval-batch-neg", ["eval-mlm", "--fasta", "{w}/good.fa", "--batch-size", "-2"], E),
    ("eval-window-0", ["eval-mlm", "--genome", "{w}/g.fa", "--region", "chr1:1-50", "--window", "0"], E),
    ("eval-genome-no-region", ["eval-mlm", "--genome", "{w}/g.fa"], E),
    ("eval-region-no-genome", ["eval-mlm", "--fasta", "{w}/good.fa", "--region", "chr1:1-10"], E),
    ("eval-bad-region", ["eval-mlm", "--genome", "{w}/g.fa", "--region", "chr1:9-1"], E),
    ("eval-unknown-contig", ["eval-mlm", "--genome", "{w}/g.fa", "--region", "chrZ:1-10", "-o", "{w}/prev.json"], E),
    ("eval-both-inputs", ["eval-mlm", "--fasta", "{w}/good.fa", "--genome", "{w}/g.fa"], E),
    ("eval-missing-counts", ["eval-mlm", "--fasta", "{w}/good.fa", "--counts", "{w}/nope.npz"], E),
    ("eval-counts-not-npz", ["eval-mlm", "--fasta", "{w}/good.fa", "--counts", "{w}/good.fa"], E),
    ("eval-no-counts", ["eval-mlm", "--fasta", "{w}/good.fa", "-m", "{w}/rna", "-o", "{w}/prev.json"], E),
    ("eval-empty-fasta", ["eval-mlm", "--fasta", "{w}/empty.fa", "-o", "{w}/prev.json"], E),
    ("eval-ss-model", ["eval-mlm", "--fasta", "{w}/good.fa", "-m", SS], E),
    # ---- finetune
    ("finetune-missing-config", ["finetune", "--config", "{w}/nope.yaml", "--print-config"], E),
    ("finetune-no-train", ["finetune", "--print-config"], E),
    ("finetune-unknown-key", ["finetune", "--config", "{w}/ss_unknown.yaml", "--print-config"], E),
    ("finetune-lr-abc", ["finetune", "train={w}/lab.csv", "lr=abc", "--print-config"], E),
    ("finetune-missing-data", ["finetune", "train={w}/nope.csv", "-o", "{o}/ft"], E),
    ("finetune-missing-label-col", ["finetune", "train={w}/lab.csv", "label_col=z", "-o", "{o}/ft"], E),
    ("finetune-header-regex-mismatch", ["finetune", "train={w}/lab.fa", "task=binary", "header_regex=cls=(\\w)",
                                        "-o", "{o}/ft"], E),
    ("finetune-single-class", ["finetune", "train={w}/lab.csv", "task=binary", "label_col=seq", "-o", "{o}/ft",
                               "classes=[ACGU]"], E),
    ("finetune-unknown-backbone", ["finetune", "train={w}/lab.csv", "backbone=nope", "-o", "{o}/ft"], E),
    ("finetune-kfold-with-test", ["finetune", "train={w}/lab.csv", "test={w}/lab.csv", "split=kfold",
                                  "--print-config"], E),
    ("finetune-bad-mode", ["finetune", "train={w}/lab.csv", "backbone_mode=half", "--print-config"], E),
    ("finetune-print-ok", ["finetune", "train={w}/lab.csv", "label_col=y", "--print-config"], "ok"),
    # ---- predict
    ("predict-missing-model", ["predict", "-m", "{w}/nope", "-i", "{w}/good.fa", "-o", "{o}/p.tsv"], E),
    ("predict-lm-not-task", ["predict", "-m", "{w}/rna", "-i", "{w}/good.fa", "-o", "{o}/p.tsv"], E),
    ("predict-binary-input", ["predict", "-m", "{w}/task", "-i", "{w}/binary.fa", "-o", "{o}/p.tsv"], E),
    ("predict-empty-input", ["predict", "-m", "{w}/task", "-i", "{w}/empty.fa", "-o", "{o}/p.tsv"], E),
    ("predict-bad-ext", ["predict", "-m", "{w}/task", "-i", "{w}/good.fa", "-o", "{o}/p.h5"], E),
    ("predict-out-is-in", ["predict", "-m", "{w}/task", "-i", "{w}/good.fa", "-o", "{w}/good.fa"], E),
    ("predict-no-seq-col", ["predict", "-m", "{w}/task", "-i", "{w}/lab.csv", "--seq-col", "s", "-o", "{o}/p.tsv"],
     E),
    ("predict-ok-table", ["predict", "-m", "{w}/task", "-i", "{w}/lab.csv", "-o", "{o}/p.parquet"], "ok"),
    ("predict-ok", ["predict", "-m", "{w}/task", "-i", "{w}/good.fa", "-o", "{o}/p.tsv"], "ok"),
    ("predict-run-dir-ok", ["predict", "-m", "{w}/run", "-i", "{w}/good.fa", "-o", "{o}/p.tsv"], "ok"),
    ("predict-run-dir-without-model", ["predict", "-m", "{w}/adir", "-i", "{w}/good.fa", "-o", "{o}/p.tsv"], E),
    ("finetune-unknown-test-label", ["finetune", "train={w}/cls.csv", "test={w}/cls_new.csv", "task=binary",
                                     "label_col=y", "-o", "{o}/ft"], E),
    ("eval-ok-json", ["eval-mlm", "--fasta", "{w}/good.fa", "-o", "{o}/t.json", "--no-progress", "--device", "cpu"],
     "ok"),
    # ---- protein given as nucleotides: refused by every reader, naming the record
    ("embed-protein", ["embed", "-i", "{w}/prot.fa", "-o", "{o}/e.h5", "-m", "{w}/rna"], E),
    ("embed-protein-allowed", ["embed", "-i", "{w}/prot.fa", "-o", "{o}/e.h5", "-m", "{w}/rna",
                               "--allow-nonstandard", "--no-progress"], "ok"),
    ("fold-protein", ["fold", "-i", "{w}/prot.fa", "-o", "{o}/f.dbn"], E),
    ("fold-iupac-peptide", ["fold", "-i", "{w}/iupac_peptide.fa", "-o", "{o}/f.dbn"], E),
    ("contacts-protein", ["contacts", "-i", "{w}/prot.fa", "-o", "{o}/c.npz"], E),
    ("predict-protein", ["predict", "-m", "{w}/task", "-i", "{w}/prot.fa", "-o", "{o}/p.tsv"], E),
    ("predict-protein-table", ["predict", "-m", "{w}/task", "-i", "{w}/prot.csv", "-o", "{o}/p.tsv"], E),
    ("compare-protein", ["compare", "-i", "{w}/prot.fa", "{w}/good.fa", "-o", "{o}/cmp", "-m", "{w}/rna"], E),
    ("eval-protein", ["eval-mlm", "--fasta", "{w}/prot.fa"], E),
    ("finetune-protein", ["finetune", "train={w}/prot.csv", "label_col=y", "-o", "{o}/ft"], E),
    ("probs-protein-genome", ["probs", "-i", "{w}/prot_genome.fa", "--region", "hbb:1-10", "-o", "{o}/p.tsv",
                              "-m", "{w}/dna"], E),
    ("vep-protein-genome", ["vep", "--genome", "{w}/prot_genome.fa", "-i", "{w}/v.tsv", "-o", "{o}/v.tsv",
                            "-m", "{w}/dna"], E),
    # ---- a record too long to fold: refused before any work, unless --max-length allows it
    ("fold-over-max-length", ["fold", "-i", "{w}/long.fa", "-o", "{o}/f.dbn", "--max-length", "1000"], E),
    ("contacts-over-max-length", ["contacts", "-i", "{w}/long.fa", "-o", "{o}/c.npz", "--max-length", "1000"], E),
    # ---- damaged model directories: one line naming the file and the damage
    ("embed-truncated-config", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/rna_trunc_config"], E),
    ("embed-truncated-weights", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/rna_trunc_weights"], E),
    ("embed-weights-other-shape", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/rna_shapes"], E),
    ("embed-weights-missing-tensors", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/rna_missing"], E),
    ("embed-weights-extra-tensors", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/rna_extra"], E),
    ("embed-config-no-model", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/rna_no_model"], E),
    ("embed-no-weights", ["embed", "-i", "{w}/good.fa", "-o", "{o}/e.h5", "-m", "{w}/rna_no_weights"], E),
    ("convert-truncated-config", ["convert", "-m", "{w}/rna_trunc_config", "-o", "{o}/c"], E),
    ("fold-truncated-config", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "-m", "{w}/ss_trunc_config"], E),
    ("fold-weights-other-shape", ["fold", "-i", "{w}/good.fa", "-o", "{o}/f.dbn", "-m", "{w}/ss_shapes"], E),
    ("predict-truncated-weights", ["predict", "-m", "{w}/task_trunc_weights", "-i", "{w}/good.fa",
                                   "-o", "{o}/p.tsv"], E),
    # ---- serve (every mistake stops before a model loads or a port opens)
    ("serve-genome-no-name", ["serve", "--genome", "{w}/good.fa"], E),
    ("serve-genome-missing", ["serve", "--genome", "toy={w}/nope.fa"], E),
    ("serve-genome-bad-name", ["serve", "--genome", "../x={w}/good.fa"], E),
    ("serve-unknown-model", ["serve", "-m", "{w}/no-such-model"], E),
    ("serve-queue-0", ["serve", "--queue", "0"], E),
    ("serve-port-text", ["serve", "--port", "http"], E),
    ("serve-body-negative", ["serve", "--max-body-mb", "-1"], E),
    ("serve-device-bogus", ["serve", "--device", "gpu"], E),
    # ---- atlas
    ("atlas-missing-file", ["atlas", "-i", "{w}/nope.fa", "-o", "{o}/atlas"], E),
    ("atlas-empty", ["atlas", "-i", "{w}/empty.fa", "-o", "{o}/atlas", "-m", "{w}/rna"], E),
    ("atlas-no-label-matches", ["atlas", "-i", "{w}/good.fa", "-o", "{o}/atlas", "-m", "{w}/rna"], E),
    ("atlas-too-few", ["atlas", "-i", "{w}/lab.fa", "-o", "{o}/atlas", "-m", "{w}/rna"], E),
    ("atlas-output-is-a-file", ["atlas", "-i", "{w}/good.fa", "-o", "{w}/prev.json"], E),
    # ---- genome-clusters
    ("genome-clusters-missing-gff", ["genome-clusters", "--genome", "{w}/g.fa", "--gff", "{w}/nope.gff",
                                     "--region", "chr1:1-300", "-o", "{o}/gc"], E),
    ("genome-clusters-center-over-window", ["genome-clusters", "--genome", "{w}/g.fa", "--gff", "{w}/v.vcf",
                                            "--region", "chr1:1-300", "--window", "64", "--center", "100",
                                            "-o", "{o}/gc"], E),
    ("genome-clusters-bad-region", ["genome-clusters", "--genome", "{w}/g.fa", "--gff", "{w}/v.vcf",
                                    "--region", "chr1:300-1", "-o", "{o}/gc"], E),
    ("genome-clusters-output-is-a-file", ["genome-clusters", "--genome", "{w}/g.fa", "--gff", "{w}/v.vcf",
                                          "--region", "chr1:1-300", "-o", "{w}/prev.json"], E),
    ("genome-clusters-gff-not-gff", ["genome-clusters", "--genome", "{w}/g.fa", "--gff", "{w}/v.tsv",
                                     "--region", "chr1:1-300", "-m", "{w}/dna", "-o", "{o}/gc"], E),
    # ---- logo
    ("logo-probs-missing-columns", ["logo", "--probs", "{w}/v.tsv", "-o", "{o}/logo"], E),
    ("logo-probs-and-genome", ["logo", "--probs", "{w}/v.tsv", "--genome", "{w}/g.fa", "-o", "{o}/logo"], E),
    ("logo-region-too-long", ["logo", "--genome", "{w}/g.fa", "--region", "chr1:1-300", "--max-length", "100",
                              "-m", "{w}/dna", "-o", "{o}/logo"], E),
    ("logo-region-past-contig", ["logo", "--genome", "{w}/g.fa", "--region", "chr1:250-400", "-m", "{w}/dna",
                                 "-o", "{o}/logo"], E),
    ("logo-sites-without-gff", ["logo", "--genome", "{w}/g.fa", "--region", "chr1:1-100", "--sites",
                                "splice_donor", "-o", "{o}/logo"], E),
    ("logo-unknown-site-type", ["logo", "--genome", "{w}/g.fa", "--region", "chr1:1-100", "--sites", "exon",
                                "--gff", "{w}/v.vcf", "-o", "{o}/logo"], E),
    ("logo-region-ok", ["logo", "--genome", "{w}/g.fa", "--region", "chr1:1-40", "-m", "{w}/dna", "--window",
                        "32", "--no-progress", "-o", "{o}/logo"], "ok"),
    # ---- compare
    ("compare-missing-file", ["compare", "-i", "{w}/nope.fa", "-o", "{o}/cmp"], E),
    ("compare-binary", ["compare", "-i", "{w}/binary.fa", "-o", "{o}/cmp", "-m", "{w}/rna"], E),
    ("compare-two-records", ["compare", "-i", "{w}/good.fa", "-o", "{o}/cmp", "-m", "{w}/rna"], E),
    ("compare-duplicate-ids", ["compare", "-i", "{w}/good.fa", "{w}/good.fa", "-o", "{o}/cmp", "-m", "{w}/rna"], E),
    ("compare-output-is-a-file", ["compare", "-i", "{w}/good.fa", "-o", "{w}/prev.json", "-m", "{w}/rna"], E),
    ("compare-kmer-40", ["compare", "-i", "{w}/good.fa", "-o", "{o}/cmp", "--seq-distance", "mash", "--kmer", "40"], E),
]


# What the one error line must say (beyond being one line): the record or file, and the damage.
PROTEIN = ("looks like protein", "'hbb'", "--allow-nonstandard")
SAYS = {
    **{name: PROTEIN for name in ("embed-protein", "fold-protein", "contacts-protein", "predict-protein",
                                  "predict-protein-table", "compare-protein", "eval-protein", "finetune-protein",
                                  "probs-protein-genome", "vep-protein-genome")},
    "fold-iupac-peptide": ("looks like protein", "'pep'", "composition"),
    "fold-over-max-length": ("'chrL'", "1,200 nt", "--max-length 1200"),
    "contacts-over-max-length": ("'chrL'", "1,200 nt", "--max-length 1200"),
    "embed-truncated-config": ("rna_trunc_config/config.json: damaged: not valid JSON",),
    "embed-truncated-weights": ("rna_trunc_weights/model.safetensors: damaged",),
    "embed-weights-other-shape": ("rna_shapes/model.safetensors: damaged", "of another shape"),
    "embed-weights-missing-tensors": ("rna_missing/model.safetensors: damaged", "missing"),
    "embed-weights-extra-tensors": ("rna_extra/model.safetensors: damaged", "not in the model"),
    "embed-config-no-model": ("rna_no_model/config.json: damaged: no 'model' section",),
    "embed-no-weights": ("rna_no_weights/model.safetensors: missing",),
    "convert-truncated-config": ("config.json: damaged",),
    "fold-truncated-config": ("ss_trunc_config/config.json: damaged",),
    "fold-weights-other-shape": ("ss_shapes/model.safetensors: damaged", "of another shape"),
    "predict-truncated-weights": ("task_trunc_weights/model.safetensors: damaged",),
}


def _argv(argv, w, o):
    return [a.replace("{w}", str(w)).replace("{o}", str(o)) for a in argv]


@pytest.mark.parametrize("argv,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(ws, tmp_path, capsys, request, argv, expect):
    before = snapshot(ws)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = main(_argv(argv, ws, out_dir))
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    said = SAYS.get(request.node.callspec.id)
    if said is not None:
        assert all(s in cap.err for s in said), cap.err
    if expect == E:
        assert code == 2, cap.err
        lines = [ln for ln in cap.err.splitlines() if ln.startswith("nucfm: error:")]
        assert len(lines) == 1, cap.err
        assert list(out_dir.iterdir()) == [], "a failed run left files behind"
    else:
        assert code == 0, cap.err
    assert snapshot(ws) == before, "an input or a previous output changed, or a file was left behind"


def test_every_subcommand_has_cases():
    from nucfm.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    names = {c[1][0] for c in CASES}
    assert set(sub.choices) <= names
    assert len(CASES) >= 80


# ---- outputs of the unusual-but-valid cases -------------------------------------------------------
TRICKY_IDS = ["a", "a", "a/1", "a_1", ".", "file", "__ids__", "allow_pickle", "ids", "keys", "embeddings", "A"]


@pytest.fixture
def tricky_fasta(tmp_path):
    fa = tmp_path / "tricky.fa"
    fa.write_text("".join(f">{i}\n{'ACGU' * (k + 1)}\n" for k, i in enumerate(TRICKY_IDS)))
    return fa


@pytest.mark.parametrize("ext,pool", [(".h5", "none"), (".npz", "none"), (".h5", "mean"), (".npz", "mean"),
                                      (".npy", "mean"), (".parquet", "mean")])
def test_embed_keeps_every_record(ws, tricky_fasta, tmp_path, ext, pool):
    out = tmp_path / f"e{ext}"
    assert main(["embed", "-i", str(tricky_fasta), "-o", str(out), "-m", str(ws / "rna"), "--pool", pool,
                 "--no-progress"]) == 0
    n = len(TRICKY_IDS)
    if ext == ".h5":
        with h5py.File(out) as f:
            assert [x.decode() for x in f["ids"][:]] == TRICKY_IDS
            if pool == "none":
                keys = [x.decode() for x in f["keys"][:]]
                assert len(set(k.lower() for k in keys)) == n
                assert [f["embeddings"][k].shape[0] for k in keys] == [4 * (k + 1) for k in range(n)]
            else:
                assert f["embeddings"].shape == (n, 16)
    elif ext == ".npz":
        z = np.load(out)
        if pool == "none":
            assert list(z["__ids__"]) == TRICKY_IDS
            keys = list(z["__keys__"])
            assert [z[k].shape[0] for k in keys] == [4 * (k + 1) for k in range(n)]
        else:
            assert list(z["ids"]) == TRICKY_IDS and z["embeddings"].shape == (n, 16)
    elif ext == ".npy":
        assert np.load(out).shape == (n, 16)
        assert out.with_suffix(".ids.txt").read_text().splitlines() == TRICKY_IDS
    else:
        import pandas as pd

        assert list(pd.read_parquet(out).id) == TRICKY_IDS
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_fold_keeps_every_record(tricky_fasta, tmp_path):
    from nucfm.io.structure import read_structures

    out, probs = tmp_path / "bp", tmp_path / "p.npz"
    assert main(["fold", "-i", str(tricky_fasta), "-o", str(out), "--format", "bpseq", "--probs", str(probs),
                 "--no-progress"]) == 0
    assert len(list(out.glob("*.bpseq"))) == len(TRICKY_IDS)
    z = np.load(probs)
    assert len(set(z["__keys__"])) == len(TRICKY_IDS)
    assert main(["fold", "-i", str(tricky_fasta), "-o", str(tmp_path / "f.dbn")]) == 0
    assert [r.id for r in read_structures(tmp_path / "f.dbn")] == TRICKY_IDS


def test_vep_and_probs_outputs(ws, tmp_path):
    import pandas as pd
    import pysam

    out = tmp_path / "s.tsv.gz"
    assert main(["vep", "--genome", str(ws / "g.fa"), "-i", str(ws / "v.tsv"), "-o", str(out), "-m", str(ws / "dna"),
                 "--window", "16", "--no-progress"]) == 0
    df = pd.read_csv(out, sep="\t")
    assert len(df) == 3 and list(df.status) == ["ok", "invalid_pos", "unknown_contig"]
    p = tmp_path / "p.tsv.gz"
    assert main(["probs", "-i", str(ws / "g.fa"), "--region", "chr1:1-10", "-o", str(p), "-m", str(ws / "dna"),
                 "--window", "16", "--no-progress"]) == 0
    with pysam.BGZFile(str(p), "rb") as fh:  # BGZF, as every nucfm .gz output
        assert fh.read().decode().count("\n") == 11


# ---- interruptions ----------------------------------------------------------------------------
def _interrupt(*a, **k):
    raise KeyboardInterrupt


@pytest.mark.parametrize("command,target,out", [
    ("embed", "nucfm.tasks.embed.embed_ids", "prev.h5"),
    ("embed-npy", "nucfm.tasks.embed.embed_ids", "prev.npy"),
    ("fold", "nucfm.tasks.structure.fold_sequences", "prev.dbn"),
    ("probs", "nucfm.tasks.variants.site_logits", "prev.tsv"),
    ("eval-mlm", "nucfm.tasks.eval_mlm.evaluate_mlm", "prev.json"),
    ("vep", "nucfm.tasks.variants.score_variants", "prev.tsv.gz"),
])
def test_ctrl_c_keeps_previous_output(ws, tmp_path, monkeypatch, capsys, command, target, out):
    import shutil

    d = tmp_path / "w"
    shutil.copytree(ws, d)
    monkeypatch.setattr(target, _interrupt)
    argv = {
        "embed": ["embed", "-i", "good.fa", "-o", out, "-m", "rna"],
        "embed-npy": ["embed", "-i", "good.fa", "-o", out, "-m", "rna", "--pool", "mean"],
        "fold": ["fold", "-i", "good.fa", "-o", out],
        "probs": ["probs", "-i", "g.fa", "--region", "chr1:1-10", "-o", out, "-m", "dna", "--window", "16"],
        "eval-mlm": ["eval-mlm", "--fasta", "good.fa", "-o", out],
        "vep": ["vep", "--genome", "g.fa", "-i", "v.tsv", "-o", out, "-m", "dna", "--window", "16"],
    }[command]
    before = snapshot(d)
    monkeypatch.chdir(d)
    assert main(argv + ["--no-progress"]) == 130
    assert (d / out).read_bytes() == PREVIOUS
    after = snapshot(d)
    if command in ("vep", "embed", "embed-npy", "fold"):  # resumable: an interrupted run's chunks are kept
        after = {k: v for k, v in after.items() if not k.startswith(f"{out}.parts")}
    assert after == before


def test_no_traceback_from_python_m(ws, tmp_path):
    """One failure path of every subcommand as a user runs it (``python -m nucfm``)."""
    cmds = [["models", "--bogus"], ["embed", "-i", f"{ws}/binary.fa", "-o", f"{tmp_path}/e.h5"],
            ["convert", "-m", f"{ws}/nope", "-o", f"{tmp_path}/c"],
            ["vep", "--genome", f"{ws}/g.fa", "-i", f"{ws}/v.tsv", "-o", f"{tmp_path}/s.xlsx"],
            ["probs", "-i", f"{ws}/g.fa", "--region", "chr1", "-o", f"{tmp_path}/p.tsv"],
            ["fold", "-i", f"{ws}/notfasta.fa", "-o", f"{tmp_path}/f.dbn"],
            ["score-ss", "--pred", f"{ws}/pred.dbn", "--ref", f"{ws}/empty.fa"],
            ["train-ss", "--config", f"{ws}/bad.yaml"], ["pretrain", "--config", f"{ws}/types.yaml"],
            ["eval-mlm", "--fasta", f"{ws}/good.fa", "--batch-size", "-2"]]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    procs = [subprocess.Popen([sys.executable, "-m", "nucfm", *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for c in cmds]
    for c, p in zip(cmds, procs, strict=True):
        _, err = p.communicate(timeout=120)
        assert p.returncode == 2, (c, err)
        assert "Traceback" not in err and err.count("nucfm: error:") == 1, (c, err)


def test_closed_pipe_is_quiet():
    """`nucfm models | head -1`: the reader leaves early; exit 141, nothing on stderr."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    p = subprocess.Popen([sys.executable, "-m", "nucfm", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    p.stdout.close()  # before the command has written anything
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) in (0, 141) and err == ""


def test_every_option_has_help_and_the_common_names():
    from nucfm.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        opts = {s for a in p._actions for s in a.option_strings}
        for a in p._actions:
            assert a.help, f"{name} {a.option_strings or a.dest} has no help"
        if name in ("embed", "vep", "probs", "fold", "eval-mlm"):
            assert {"-i", "-o", "-m", "--threads", "--device", "--no-progress"} <= opts, name
