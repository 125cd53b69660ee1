"""Variant consequences from a GFF3 annotation and the genome: Sequence Ontology terms as
Ensembl VEP names them, the most severe over all overlapping transcripts.

Transcripts are the parents of ``exon`` and ``CDS`` features (mRNA, lnc_RNA, tRNA, ...; exons
whose parent is a gene or pseudogene make that feature a transcript). A transcript with CDS is
coding; its exons default to its CDS when it has none. Per transcript, a variant (its REF span
after trimming shared bases; a pure insertion touches the two bases around it) gets, in
Ensembl's order of severity (:data:`SEVERITY`):

* ``splice_acceptor_variant`` / ``splice_donor_variant``: the 2 intron bases at the 3' / 5' end
  of an intron (transcript strand); ``splice_region_variant``: 1-3 exon bases or 3-8 intron bases
  from a splice site;
* in the CDS (every changed base inside it): ``frameshift_variant``, ``inframe_insertion``,
  ``inframe_deletion`` for indels; for substitutions the codons are translated (standard code,
  the first CDS segment's phase honoured, codons split across exons joined): ``stop_gained``,
  ``stop_lost``, ``start_lost`` (codon 1 is ATG in REF and is changed; a CDS that does not start
  with ATG or starts with a non-zero phase has no start to lose), ``missense_variant``,
  ``stop_retained_variant``, ``synonymous_variant``; partly in the CDS: ``coding_sequence_variant``;
* ``5_prime_UTR_variant`` / ``3_prime_UTR_variant`` (exon bases before / after the CDS),
  ``non_coding_transcript_exon_variant``, ``intron_variant``;
* ``upstream_gene_variant`` / ``downstream_gene_variant``: within ``distance`` (5,000 bp, VEP's
  default) of the transcript's 5' / 3' end; else ``intergenic_variant``.

Overlapping transcripts: the most severe term wins (Ensembl's ``--most_severe`` / ``--pick``
order); ties go to the transcript listed first in the GFF. The ``gene`` and ``transcript``
columns name the winner. Contig names go through the genome's aliases (``--chrom-alias``); a GFF
whose contigs are not in the genome is counted and warned about, never fatal.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nucfm.alphabet import reverse_complement
from nucfm.data.cds import codon_change
from nucfm.errors import InputError
from nucfm.io.genome import Genome
from nucfm.io.gff import read_gff
from nucfm.io.variants import Variant, VariantTable

log = logging.getLogger("nucfm")

SEVERITY = [  # Ensembl VEP's order (most severe first), the terms nucfm assigns
    "splice_acceptor_variant", "splice_donor_variant", "stop_gained", "frameshift_variant", "stop_lost",
    "start_lost", "inframe_insertion", "inframe_deletion", "missense_variant", "splice_region_variant",
    "stop_retained_variant", "synonymous_variant", "coding_sequence_variant", "5_prime_UTR_variant",
    "3_prime_UTR_variant", "non_coding_transcript_exon_variant", "intron_variant", "upstream_gene_variant",
    "downstream_gene_variant", "intergenic_variant",
]
RANK = {t: k for k, t in enumerate(SEVERITY)}


@dataclass
class Transcript:
    id: str
    gene: str
    contig: str
    strand: str
    order: int
    exons: list[tuple[int, int]] = field(default_factory=list)  # 0-based half-open, sorted
    cds: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, phase)

    @property
    def start(self) -> int:
        return min(s for s, _ in self.exons)

    @property
    def end(self) -> int:
        return max(e for _, e in self.exons)


class Annotation:
    """Transcripts of a GFF3 file, indexed by contig (names after the genome's aliases)."""

    def __init__(self, gff: str | Path, genome: Genome, distance: int = 5000):
        self.genome, self.distance = genome, distance
        feats, seen = list(read_gff(gff, aliases=genome.aliases, seen=(seen := set()))), seen
        missing = sorted(c for c in seen if not genome.has(c))
        self.contigs = seen  # every contig name of the GFF (after aliases), matched or not
        self.unmatched = sum(1 for f in feats if f.contig in missing)
        if missing:
            log.warning("%s: %d feature(s) on %d contig(s) not in the genome (%s); they are ignored "
                        "(use --chrom-alias if the names differ)", gff, self.unmatched, len(missing),
                        ", ".join(missing[:5]))
        by_id = {f.id: f for f in feats if f.id}
        tx: dict[str, Transcript] = {}
        for f in feats:
            if f.type not in ("exon", "CDS") or f.contig in missing:
                continue
            for pid in f.parents():
                par = by_id.get(pid)
                if pid not in tx:
                    gene = (par.parents() or [pid])[0] if par is not None else pid
                    tx[pid] = Transcript(pid, gene, f.contig, f.strand, len(tx))
                t = tx[pid]
                if f.type == "exon":
                    t.exons.append((f.start, f.end))
                else:
                    t.cds.append((f.start, f.end, f.phase or 0))
        self.by_contig: dict[str, list[Transcript]] = {}
        for t in tx.values():
            if not t.exons:
                t.exons = [(s, e) for s, e, _ in t.cds]
            t.exons.sort()
            t.cds.sort()
            self.by_contig.setdefault(t.contig, []).append(t)
        self._starts = {}
        for c, ts in self.by_contig.items():
            ts.sort(key=lambda t: t.start)
            self._starts[c] = [t.start for t in ts]
        self._maxlen = {c: max(t.end - t.start for t in ts) for c, ts in self.by_contig.items()}
        self.transcripts = len(tx)
        self._cds_cache: dict[str, tuple[str, dict[int, int]]] = {}

    def near(self, contig: str, lo: int, hi: int) -> list[Transcript]:
        """Transcripts whose span +- ``distance`` overlaps ``[lo, hi)``, in GFF order."""
        ts = self.by_contig.get(contig, [])
        if not ts:
            return []
        k = bisect.bisect_right(self._starts[contig], hi + self.distance)
        k0 = bisect.bisect_left(self._starts[contig], lo - self.distance - self._maxlen[contig])
        out = [t for t in ts[k0:k] if t.start - self.distance < hi and t.end + self.distance > lo]
        return sorted(out, key=lambda t: t.order)

    def consequence(self, v: Variant) -> tuple[str, str, str]:
        """(term, gene, transcript) of the most severe consequence of ``v`` (REF matching)."""
        contig = self.genome.resolve(v.chrom)
        ref, alt, s = v.ref, v.alt, v.start
        while ref and alt and ref[-1] == alt[-1]:  # trim shared bases (suffix, then prefix)
            ref, alt = ref[:-1], alt[:-1]
        while ref and alt and ref[0] == alt[0]:
            ref, alt, s = ref[1:], alt[1:], s + 1
        lo, hi = (s - 1, s + 1) if not ref else (s, s + len(ref))  # an insertion touches both sides
        best = ("intergenic_variant", "", "")
        for t in self.near(contig, lo, hi):
            term = self._transcript_term(t, s, ref, alt, lo, hi)
            if RANK[term] < RANK[best[0]]:
                best = (term, t.gene, t.id)
        return best

    def _transcript_term(self, t: Transcript, s: int, ref: str, alt: str, lo: int, hi: int) -> str:
        plus = t.strand != "-"
        if hi <= t.start or lo >= t.end:
            before = hi <= t.start
            return "upstream_gene_variant" if before == plus else "downstream_gene_variant"
        terms = []
        for (_, b), (c, _) in zip(t.exons, t.exons[1:]):  # intron [b, c)
            if c <= b:
                continue
            donor, acceptor = ((b, b + 2), (c - 2, c)) if plus else ((c - 2, c), (b, b + 2))
            if _hits(lo, hi, *donor):
                terms.append("splice_donor_variant")
            if _hits(lo, hi, *acceptor):
                terms.append("splice_acceptor_variant")
            region = [(b - 3, b), (b + 2, b + 8), (c - 8, c - 2), (c, c + 3)]
            if any(_hits(lo, hi, x, y) for x, y in region):
                terms.append("splice_region_variant")
        in_exon = [_hits(lo, hi, a, b) for a, b in t.exons]
        if not any(in_exon):
            terms.append("intron_variant")
        elif not t.cds:
            terms.append("non_coding_transcript_exon_variant")
        else:
            terms.append(self._coding_term(t, s, ref, alt, lo, hi))
        return min(terms, key=RANK.__getitem__)

    def _cds(self, t: Transcript) -> tuple[str, dict[int, int]]:
        """(CDS sequence 5'->3', {genome position: CDS offset}) of ``t``, built once."""
        if t.id not in self._cds_cache:
            plus = t.strand != "-"
            offsets, seq, n = {}, [], 0
            for a, b, _ in (t.cds if plus else t.cds[::-1]):
                part = self.genome.fetch(t.contig, a, b).upper()
                seq.append(part if plus else reverse_complement(part))
                for x in (range(a, b) if plus else range(b - 1, a - 1, -1)):
                    offsets[x] = n
                    n += 1
            self._cds_cache[t.id] = ("".join(seq), offsets)
        return self._cds_cache[t.id]

    def _coding_term(self, t: Transcript, s: int, ref: str, alt: str, lo: int, hi: int) -> str:
        plus = t.strand != "-"
        cs = t.cds[0][0]
        if not all(any(a <= x < b for a, b, _ in t.cds) for x in range(lo, hi)):
            if any(_hits(lo, hi, a, b) for a, b, _ in t.cds):
                return "coding_sequence_variant"
            return "5_prime_UTR_variant" if (hi <= cs) == plus else "3_prime_UTR_variant"
        if len(ref) != len(alt):
            return "frameshift_variant" if (len(alt) - len(ref)) % 3 else (
                "inframe_insertion" if len(alt) > len(ref) else "inframe_deletion")
        # substitution: the CDS in transcript orientation (cached per transcript), ALT applied
        cds, offsets = self._cds(t)
        segs = t.cds if plus else t.cds[::-1]
        phase = segs[0][2]
        alt_cds = list(cds)
        for k, x in enumerate(range(s, s + len(ref))):
            base = alt[k] if plus else reverse_complement(alt[k])
            alt_cds[offsets[x]] = base
        alt_cds = "".join(alt_cds)
        idx = sorted(offsets[x] for x in range(s, s + len(ref)))
        codons = sorted({(i - phase) // 3 for i in idx if i >= phase})
        if not codons:
            return "coding_sequence_variant"  # only in the incomplete first codon
        terms = []
        for k in codons:
            r, a = cds[phase + 3 * k : phase + 3 * k + 3], alt_cds[phase + 3 * k : phase + 3 * k + 3]
            if len(r) < 3:
                terms.append("coding_sequence_variant")  # incomplete terminal codon
                continue
            terms.append(codon_change(r, a, first=k == 0 and phase == 0))
        return min(terms, key=RANK.__getitem__)


    # ---- region classes and annotated sites (nucfm genome-clusters, nucfm logo) ------------------
    def region_classes(self, contig: str, start: int, end: int) -> np.ndarray:
        """Class code of every base of ``[start, end)`` (0-based half-open), (end - start,) int8,
        an index into :data:`REGION_CLASSES`. Where features overlap, the lowest code (the first
        class of :data:`REGION_CLASSES`) wins: CDS > 5' UTR > 3' UTR > ncRNA > intron > repeat >
        intergenic. Per transcript: CDS segments are CDS; exon bases 5' / 3' of the CDS (transcript
        strand) are UTRs; exons of a transcript without CDS are ncRNA; bases between its exons are
        intron. ``repeat`` is a soft-masked (lowercase) base of the genome outside every transcript;
        every other base is intergenic.

        >>> ann.region_classes("1", 0, 10)  # doctest: +SKIP
        array([6, 6, 6, 5, 5, 0, 0, 0, 0, 4], dtype=int8)
        """
        contig = self.genome.resolve(contig)
        code = {c: k for k, c in enumerate(REGION_CLASSES)}
        out = np.full(end - start, code["intergenic"], dtype=np.int8)
        seq = self.genome.fetch(contig, start, end)
        lower = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8) >= ord("a")
        out[lower] = code["repeat"]

        def paint(a: int, b: int, k: int) -> None:
            lo, hi = max(a, start) - start, min(b, end) - start
            if hi > lo:
                np.minimum(out[lo:hi], k, out=out[lo:hi])

        for t in self.near(contig, start, end):
            if t.end <= start or t.start >= end:
                continue
            paint(t.start, t.end, code["intron"])  # exons below overwrite it (lower codes)
            if not t.cds:
                for a, b in t.exons:
                    paint(a, b, code["ncRNA"])
                continue
            lo_cds, hi_cds = t.cds[0][0], max(b for _, b, _ in t.cds)
            before, after = ("5_prime_UTR", "3_prime_UTR") if t.strand != "-" else ("3_prime_UTR", "5_prime_UTR")
            for a, b in t.exons:
                paint(a, min(b, lo_cds), code[before])
                paint(max(a, hi_cds), b, code[after])
            for a, b, _ in t.cds:
                paint(a, b, code["CDS"])
        return out

    def sites(self, kind: str, contig: str, start: int, end: int) -> list[tuple[int, str]]:
        """Annotated sites of ``kind`` (a key of :data:`SITE_MOTIFS`) whose motif lies inside
        ``[start, end)``: sorted unique ``(anchor, strand)``, ``anchor`` the 0-based genome position
        of the motif's first base read 5'->3' on the transcript (on ``-`` the motif runs to lower
        positions: offset ``o`` is at ``anchor - o``). Motifs: ``start_codon`` the first 3 CDS bases
        of a transcript whose CDS starts with phase 0; ``stop_codon`` the last 3 CDS bases (RefSeq
        CDS features include the stop); a codon split by an intron is left out; ``splice_donor``
        the first 2 intron bases (GT); ``splice_acceptor`` the last 2 intron bases (AG). Introns of
        coding and non-coding transcripts alike; several transcripts sharing a site give it once.

        >>> ann.sites("splice_donor", "1", 0, 1000)  # doctest: +SKIP
        [(80, '+'), (229, '-')]
        """
        if kind not in SITE_MOTIFS:
            raise InputError(f"unknown site type {kind!r}; known: {', '.join(SITE_MOTIFS)}")
        contig = self.genome.resolve(contig)
        n = SITE_MOTIFS[kind]
        found = set()
        for t in self.near(contig, start, end):
            plus = t.strand != "-"
            anchors = []
            if kind in ("start_codon", "stop_codon") and t.cds:
                first = t.cds[0] if plus else max(t.cds, key=lambda c: c[1])  # 5'-most segment
                lo_cds, hi_cds = t.cds[0][0], max(b for _, b, _ in t.cds)
                if kind == "start_codon" and first[2] == 0:
                    anchors.append(lo_cds if plus else hi_cds - 1)
                elif kind == "stop_codon":
                    anchors.append(hi_cds - 3 if plus else lo_cds + 2)
            elif kind in ("splice_donor", "splice_acceptor"):
                for (_, b), (c, _) in zip(t.exons, t.exons[1:]):  # intron [b, c)
                    if c - b < 4:
                        continue  # no room for both motifs: not an intron
                    donor = kind == "splice_donor"
                    anchors.append((b if donor else c - 2) if plus else (c - 1 if donor else b + 1))
            for a in anchors:
                lo, hi = (a, a + n) if plus else (a - n + 1, a + 1)
                split = kind in ("start_codon", "stop_codon") and not any(x <= lo and hi <= y for x, y, _ in t.cds)
                if start <= lo and hi <= end and not split:  # a codon split by an intron is left out
                    found.add((a, "+" if plus else "-"))
        return sorted(found)


REGION_CLASSES = ("CDS", "5_prime_UTR", "3_prime_UTR", "ncRNA", "intron", "repeat", "intergenic")
SITE_MOTIFS = {"start_codon": 3, "stop_codon": 3, "splice_donor": 2, "splice_acceptor": 2}  # motif length


def _hits(lo: int, hi: int, a: int, b: int) -> bool:
    return lo < b and hi > a


ANNOTATION_COLUMNS = ("consequence", "gene", "transcript")


def annotate_variants(vt: VariantTable, genome: Genome, gff: str | Path | Annotation, distance: int = 5000
                      ) -> dict[str, np.ndarray]:
    """``{"consequence", "gene", "transcript"}`` (N,) str for every row of ``vt``; rows whose
    contig, position or REF is unusable (status other than ok/scorable) get empty strings.
    ``gff``: a GFF3 path, or an :class:`Annotation` already read (pieces of one file)."""
    ann = gff if isinstance(gff, Annotation) else _read_annotation(gff, genome, distance)
    n = len(vt)
    out = {k: np.full(n, "", dtype=object) for k in ANNOTATION_COLUMNS}
    status = vt.status if vt.status is not None else np.full(n, "ok", dtype=object)
    usable = {"ok", "allele_too_long", "ref_not_acgt", "alt_not_acgt"}
    for i, v in enumerate(vt.variants):
        if status[i] in usable and set(v.alt) <= set("ACGTN"):
            out["consequence"][i], out["gene"][i], out["transcript"][i] = ann.consequence(v)
    return out


def _read_annotation(gff: str | Path, genome: Genome, distance: int) -> Annotation:
    ann = Annotation(gff, genome, distance)
    log.info("consequences from %s: %d transcripts%s", gff, ann.transcripts,
             f", {ann.unmatched} feature(s) on contigs not in the genome" if ann.unmatched else "")
    return ann


def annotator(genome: Genome, gff: str | Path, distance: int = 5000):
    """``annotate(vt)`` for :func:`nucfm.tasks.variants.score_variant_file`: the GFF read once,
    every piece of the variant file annotated from it; ``annotate.columns`` names its columns."""
    ann = _read_annotation(gff, genome, distance)

    def annotate(vt: VariantTable) -> dict[str, np.ndarray]:
        return annotate_variants(vt, genome, ann)

    from nucfm.resume import input_identity

    annotate.columns = ANNOTATION_COLUMNS
    annotate.identity = {**input_identity(gff), "distance": distance}
    return annotate
