"""Coding sequences for codon models (mRNA-FM): the genetic code, the reading frame, and the checks
a CDS gets before it is cut into codons.

:func:`prepare_cds` turns one record into the codon string a codon model reads, 5'->3':

* letters: gaps removed, upper case, ``T`` read as ``U`` (counted by the encoder, not here);
* protein input is refused with a one-line error naming the record
  (:func:`nucfm.alphabet.check_nucleotide`, the rule of every command; ``--allow-nonstandard``);
* the frame: by default the record *is* the CDS, and a length that is not a multiple of 3 is a
  one-line error; ``frame=1|2|3`` starts reading at that base and drops a trailing partial codon
  (counted); ``longest_orf=True`` keeps the longest ``AUG ... stop`` open reading frame of the
  three forward frames (stop included; none: an empty CDS, counted);
* counted warnings (the record is still used): no ``AUG`` start codon, a stop codon before the
  last codon. Codons with letters other than A, C, G, U become ``<unk>`` in the encoder
  (:data:`nucfm.alphabet.CODON`), which counts them.

Positions: ``Cds.start`` is the 0-based offset of the first codon in the record's ungapped letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nucfm.alphabet import check_nucleotide
from nucfm.errors import InputError

# The standard genetic code (NCBI table 1) over RNA codons; "*" is a stop.
GENETIC_CODE = dict(zip(
    [a + b + c for a in "UCAG" for b in "UCAG" for c in "UCAG"],
    "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"))
START = "AUG"
STOPS = frozenset(c for c, aa in GENETIC_CODE.items() if aa == "*")
_ORF = re.compile(r"(?=(AUG(?:(?!UAA|UAG|UGA)...)*(?:UAA|UAG|UGA)))")


def translate(codon: str) -> str:
    """The amino acid of an RNA or DNA codon (``*`` = stop, ``X`` = a codon with other letters).

    >>> translate("AUG"), translate("tga"), translate("ANG")
    ('M', '*', 'X')
    """
    return GENETIC_CODE.get(codon.upper().replace("T", "U"), "X")


def codon_change(ref: str, alt: str, first: bool = False) -> str:
    """The Sequence Ontology term of one codon substitution (standard code; RNA or DNA letters):
    ``start_lost`` when ``first`` (the CDS's first codon) was AUG and is no longer, then
    ``stop_gained``, ``stop_lost``, ``missense_variant``, ``stop_retained_variant`` or
    ``synonymous_variant``. The one classification of ``codon-vep`` and of ``vep``'s consequences.

    >>> codon_change("GAA", "GAG"), codon_change("GAA", "UAA"), codon_change("ATG", "ATA", first=True)
    ('synonymous_variant', 'stop_gained', 'start_lost')
    """
    r, a = translate(ref), translate(alt)
    if first and ref.upper().replace("T", "U") == START and r != a:
        return "start_lost"
    if r != "*" and a == "*":
        return "stop_gained"
    if r == "*" and a != "*":
        return "stop_lost"
    if r != a:
        return "missense_variant"
    return "stop_retained_variant" if r == "*" else "synonymous_variant"


def cds_letters(seq: str) -> str:
    """A record's letters as a CDS reads them: gaps removed, upper case, ``T`` as ``U``."""
    return "".join(c for c in seq if c not in "-.").upper().replace("T", "U")


@dataclass
class CdsReport:
    """Counted CDS warnings, summed over records (one line each in :meth:`messages`)."""

    records: int = 0
    no_start: list[str] = field(default_factory=list)
    internal_stop: list[str] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)  # a trailing partial codon dropped (--frame)
    no_orf: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        def line(ids: list[str], what: str) -> str:
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            return f"{len(ids)} of {self.records} records {what}: {shown}"

        out = []
        if self.no_start:
            out.append(line(self.no_start, "do not start with the start codon AUG"))
        if self.internal_stop:
            out.append(line(self.internal_stop, "have a stop codon before their last codon"))
        if self.trimmed:
            out.append(line(self.trimmed, "ended in a partial codon, dropped"))
        if self.no_orf:
            out.append(line(self.no_orf, "have no open reading frame (AUG ... stop); written as empty"))
        return out


@dataclass(frozen=True)
class Cds:
    """The codons read from a record: ``seq`` (a multiple of 3 letters, upper case, U for T) starting
    at 0-based ``start`` of the record's ungapped letters."""

    seq: str
    start: int

    @property
    def codons(self) -> list[str]:
        return [self.seq[i : i + 3] for i in range(0, len(self.seq), 3)]


def longest_orf(seq: str) -> tuple[int, int] | None:
    """(start, end) 0-based half-open of the longest ``AUG...stop`` ORF of the three forward frames
    of an upper-case RNA string (stop codon included), the first one on a tie; None when none.

    >>> longest_orf("CCAUGAAAUAGAUGUAA")
    (2, 11)
    """
    best = None
    for m in _ORF.finditer(seq):
        s, e = m.start(1), m.end(1)
        if best is None or e - s > best[1] - best[0]:
            best = (s, e)
    return best


def prepare_cds(record_id: str, seq: str, frame: int | None = None, orf: bool = False,
                report: CdsReport | None = None) -> Cds:
    """The CDS of one record (see the module docstring); one-line :class:`InputError` on protein
    input or, without ``frame``/``orf``, on a length that is not a multiple of 3."""
    report = report if report is not None else CdsReport()
    report.records += 1
    letters = cds_letters(seq)
    check_nucleotide(letters, record_id)
    if orf:
        span = longest_orf(letters)
        if span is None:
            report.no_orf.append(record_id)
            return Cds("", 0)
        cds = Cds(letters[span[0] : span[1]], span[0])
    elif frame is not None:
        if frame not in (1, 2, 3):
            raise InputError(f"frame {frame} must be 1, 2 or 3")
        body = letters[frame - 1 :]
        keep = len(body) - len(body) % 3
        if keep < len(body):
            report.trimmed.append(record_id)
        cds = Cds(body[:keep], frame - 1)
    else:
        if len(letters) % 3:
            raise InputError(f"record {record_id!r} has {len(letters):,} nucleotides, not a multiple of 3: not a "
                             "whole coding sequence; give --frame 1|2|3 to read it in a frame (dropping a partial "
                             "last codon) or --longest-orf")
        cds = Cds(letters, 0)
    codons = cds.codons
    if codons and codons[0] != START:
        report.no_start.append(record_id)
    if any(c in STOPS for c in codons[:-1]):
        report.internal_stop.append(record_id)
    return cds
