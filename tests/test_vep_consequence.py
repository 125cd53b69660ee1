"""Consequence annotation on a hand-built genome and GFF: both strands, CDS phase, a codon split
across exons, start and stop codons, splice sites, UTRs, non-coding exons, aliases."""

import logging

import numpy as np
import pytest

from nucfm.alphabet import reverse_complement
from nucfm.io.genome import Genome
from nucfm.io.variants import Variant
from nucfm.tasks.consequence import SEVERITY, Annotation

CDS = "ATG" + "GCT" + "TGG" + "GCT" * 13 + "TAA"  # 51 nt: Met Ala Trp Ala... stop
rng = np.random.default_rng(3)
seq = list("".join(rng.choice(list("ACGT"), 500)))
seq[60:80], seq[100:131] = CDS[:20], CDS[20:]  # plus-strand gene: CDS split 20 / 31 (codon 7 split)
rc = reverse_complement(CDS)  # minus-strand gene: CDS at [210,230) + [250,281), 5' end at 280
seq[210:230], seq[250:281] = rc[:20], rc[20:]
seq[80:82], seq[98:100] = list("GT"), list("AG")
CONTIG = "".join(seq)
D_SEQ = "C" + "GCTGCTTGGGCT" + "A" * 40  # an incomplete CDS (phase 1, no ATG, no stop)

GFF = [
    ("1", "gene", 51, 140, "+", ".", "ID=g1"), ("1", "mRNA", 51, 140, "+", ".", "ID=t1;Parent=g1"),
    ("1", "exon", 51, 80, "+", ".", "Parent=t1"), ("1", "exon", 101, 140, "+", ".", "Parent=t1"),
    ("1", "CDS", 61, 80, "+", "0", "ID=cds1;Parent=t1"), ("1", "CDS", 101, 131, "+", "1", "ID=cds1;Parent=t1"),
    ("1", "gene", 201, 290, "-", ".", "ID=g2"), ("1", "mRNA", 201, 290, "-", ".", "ID=t2;Parent=g2"),
    ("1", "exon", 201, 230, "-", ".", "Parent=t2"), ("1", "exon", 251, 290, "-", ".", "Parent=t2"),
    ("1", "CDS", 211, 230, "-", "1", "Parent=t2"), ("1", "CDS", 251, 281, "-", "0", "Parent=t2"),
    ("1", "gene", 331, 360, "+", ".", "ID=g3"), ("1", "lnc_RNA", 331, 360, "+", ".", "ID=t3;Parent=g3"),
    ("1", "exon", 331, 360, "+", ".", "Parent=t3"),
    ("d", "mRNA", 1, 50, "+", ".", "ID=t4"), ("d", "CDS", 1, 13, "+", "1", "Parent=t4"),
    ("zz", "gene", 1, 10, "+", ".", "ID=gz"), ("zz", "exon", 1, 10, "+", ".", "Parent=gz"),
]


@pytest.fixture(scope="module")
def ann(tmp_path_factory):
    d = tmp_path_factory.mktemp("csq")
    (d / "g.fa").write_text(f">c\n{CONTIG}\n>d\n{D_SEQ}\n")
    (d / "a.gff").write_text("##gff-version 3\n" + "".join(
        f"{c}\ttest\t{t}\t{s}\t{e}\t.\t{st}\t{ph}\t{a}\n" for c, t, s, e, st, ph, a in GFF))
    return Annotation(d / "a.gff", Genome(d / "g.fa", aliases={"1": "c"}), distance=50)


def snv(pos0, alt, chrom="c"):
    base = (CONTIG if chrom == "c" else D_SEQ)[pos0]
    return Variant(chrom, pos0, base, alt)


@pytest.mark.parametrize("variant, term, tx", [
    (snv(60, "C"), "start_lost", "t1"),
    (snv(65, "C"), "synonymous_variant", "t1"),  # GCT -> GCC
    (snv(63, "A"), "missense_variant", "t1"),  # GCT -> ACT
    (snv(67, "A"), "stop_gained", "t1"),  # TGG -> TAG
    (snv(78, "A"), "missense_variant", "t1"),  # codon 7 = G(78) C(79) | T(100): GCT -> ACT
    (snv(100, "A"), "splice_region_variant", "t1"),  # GCT -> GCA across the intron: synonymous < region
    (snv(128, "C"), "stop_lost", "t1"),  # TAA -> CAA
    (snv(130, "G"), "stop_retained_variant", "t1"),  # TAA -> TAG
    (snv(80, "A"), "splice_donor_variant", "t1"), (snv(99, "C"), "splice_acceptor_variant", "t1"),
    (snv(84, "A" if CONTIG[84] != "A" else "C"), "splice_region_variant", "t1"),
    (snv(90, "A" if CONTIG[90] != "A" else "C"), "intron_variant", "t1"),
    (snv(55, "A" if CONTIG[55] != "A" else "C"), "5_prime_UTR_variant", "t1"),
    (snv(135, "A" if CONTIG[135] != "A" else "C"), "3_prime_UTR_variant", "t1"),
    (snv(20, "A" if CONTIG[20] != "A" else "C"), "upstream_gene_variant", "t1"),
    (snv(280, "G"), "start_lost", "t2"),  # minus strand: genome T = transcript A of ATG
    (snv(273, "T"), "stop_gained", "t2"),  # transcript TGG -> TAG
    (snv(210, "G"), "stop_lost", "t2"),  # last base of the stop (genome 3' end) TAA -> TAC
    (snv(248, "A" if CONTIG[248] != "A" else "C"), "splice_donor_variant", "t2"),
    (snv(231, "A" if CONTIG[231] != "A" else "C"), "splice_acceptor_variant", "t2"),
    (snv(340, "A" if CONTIG[340] != "A" else "C"), "non_coding_transcript_exon_variant", "t3"),
    (snv(395, "A" if CONTIG[395] != "A" else "C"), "downstream_gene_variant", "t3"),
    (snv(460, "A" if CONTIG[460] != "A" else "C"), "intergenic_variant", ""),
    (Variant("c", 69, CONTIG[69], CONTIG[69] + "G"), "frameshift_variant", "t1"),
    (Variant("c", 69, CONTIG[69:73], CONTIG[69]), "inframe_deletion", "t1"),
    (Variant("c", 69, CONTIG[69], CONTIG[69] + "GGC"), "inframe_insertion", "t1"),
    (Variant("c", 64, CONTIG[64:66], "AA"), "missense_variant", "t1"),  # MNV in one codon: GCT -> GAA
    (snv(2, "A", "d"), "missense_variant", "t4"),  # incomplete CDS: codon 1 = GCT (phase 1), GAT
    (snv(3, "C", "d"), "synonymous_variant", "t4"),  # GCC
    (snv(0, "A", "d"), "coding_sequence_variant", "t4"),  # the phase base: no codon
])
def test_consequences(ann, variant, term, tx):
    got = ann.consequence(variant)
    assert got[0] == term and got[2] == tx, (variant, got)
    assert got[0] in SEVERITY


def test_unmatched_gff_contig_warns_and_counts(tmp_path, caplog):
    (tmp_path / "g.fa").write_text(f">c\n{CONTIG}\n")
    (tmp_path / "a.gff").write_text("".join(f"{c}\tt\t{t}\t{s}\t{e}\t.\t{st}\t{ph}\t{a}\n"
                                            for c, t, s, e, st, ph, a in GFF))
    with caplog.at_level(logging.WARNING, logger="nucfm"):
        a = Annotation(tmp_path / "a.gff", Genome(tmp_path / "g.fa"))  # no alias: "1" is unknown
    assert a.unmatched == 19 and "not in the genome" in caplog.text and a.transcripts == 0
    assert a.consequence(snv(60, "C")) == ("intergenic_variant", "", "")
