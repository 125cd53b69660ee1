"""Vocabularies of the two model families and the user-facing letter policy.

* ``RNA`` — the RNA-FM / ESM-1b vocabulary, ids identical to the official ``fm`` package:
  ``<cls>=0 <pad>=1 <eos>=2 <unk>=3 A C G U R Y K M S W B D H V N -`` (4..19),
  ``<null_1..4>`` (20..23), ``<mask>=24``; BOS (``<cls>``) prepended and EOS appended by the
  collator (:mod:`nucfm.data.collate`), never here.
* ``DNA`` — the GPN vocabulary: ``[PAD]=0 [MASK]=1 [UNK]=2 a=3 c=4 g=5 t=6``, lower case,
  no special tokens around a window.
* ``CODON`` — the mRNA-FM vocabulary (``fm`` theme ``rna-3mer``), ids identical to the official
  package: ``<cls>=0 <pad>=1 <eos>=2 <unk>=3``, the 64 codons in the official (frequency) order
  (4..67, ``GAG`` first, ``UAG`` last), ``<null_1..4>`` (68..71), ``<mask>=72``; one token per
  codon (``kmer=3``), any codon with a letter other than A, C, G, U is ``<unk>``.
* ``DNA_MSA`` — GPN-MSA's: ``-=0 A C G T ?=5`` (``-`` gap/unknown/pad, ``?`` mask), upper case.

Policy on top of the raw vocabularies (:meth:`Alphabet.encode`):

* case is folded to the vocabulary's case (soft-masking is kept by the genome reader, not here);
* ``T`` becomes ``U`` for RNA models and ``U`` becomes ``T`` for DNA models (on by default,
  counted);
* IUPAC ambiguity letters map to their own token where the vocabulary has one, else to unknown;
* gaps (``-`` and ``.``) are removed: models see ungapped sequences, as in training (counted);
* any other letter (``P``, ``X``, ``*`` ...) maps to the unknown token (counted).

Every conversion is tallied in an :class:`EncodingReport` so the CLI can say what it changed.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

GAP_LETTERS = "-."
IUPAC_LETTERS = "ACGTURYKMSWBDHVN"

# Letters of the protein alphabet that no nucleotide or IUPAC code uses ("X" is either's unknown).
PROTEIN_ONLY_LETTERS = "EFIJLOPQZ*"
PROTEIN_CHECK_LENGTH = 100_000  # the first residues of a record decide (a protein is shorter)
_ALLOW_NONSTANDARD: ContextVar[bool] = ContextVar("allow_nonstandard", default=False)


def protein_evidence(seq: str) -> str | None:
    """Why ``seq`` looks like a protein rather than RNA/DNA, or None. Protein: at least two
    letters (and 5%) that no nucleotide code has (E, F, I, L, P, Q...), or, from 20 letters on,
    under half A/C/G/T/U/N/X: a composition no nucleic acid has (a peptide of IUPAC-looking
    letters M, V, S, K, R, D, H). Gaps, digits and spaces are ignored.

    >>> protein_evidence("MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF")[:28]
    'letters E, F, L, P that no n'
    >>> protein_evidence("ACGUNNRYacgu") is None
    True
    """
    head = seq[:PROTEIN_CHECK_LENGTH].upper()
    counts = {c: head.count(c) for c in set(head) if c.isalpha() or c == "*"}
    n = sum(counts.values())
    odd = {c: k for c, k in counts.items() if c in PROTEIN_ONLY_LETTERS}
    if sum(odd.values()) >= max(2, 0.05 * n):
        top = sorted(odd, key=lambda c: (-odd[c], c))[:4]
        return f"letters {', '.join(sorted(top))} that no nucleotide code uses, {sum(odd.values())} of {n}"
    nucleic = sum(counts.get(c, 0) for c in "ACGTUNX")
    if n >= 20 and nucleic < 0.5 * n:
        return f"a composition no nucleic acid has: only {nucleic} of {n} letters are A, C, G, T/U or N"
    return None


def check_nucleotide(seq: str, record: str, source: str = "") -> None:
    """Refuse (InputError, one line naming the record) a sequence that looks like protein,
    unless :func:`allow_nonstandard` is in effect (``--allow-nonstandard``)."""
    if _ALLOW_NONSTANDARD.get():
        return
    why = protein_evidence(seq)
    if why is not None:
        from nucfm.errors import InputError

        where = f"{source}: " if source else ""
        raise InputError(f"{where}record {record!r} looks like protein, not RNA/DNA ({why}); give nucleotide "
                         "sequences, or --allow-nonstandard to read such letters as unknown")


@contextmanager
def allow_nonstandard(allow: bool = True):
    """Within, :func:`check_nucleotide` accepts protein-like records (``--allow-nonstandard``)."""
    token = _ALLOW_NONSTANDARD.set(bool(allow))
    try:
        yield
    finally:
        _ALLOW_NONSTANDARD.reset(token)


# Categories tallied per byte by the encoder lookup table.
_KEEP, _FOLD, _CONVERT, _GAP, _UNKNOWN = 0, 1, 2, 3, 4


@dataclass
class EncodingReport:
    """Counts of what the letter policy changed, summed over every encoded sequence."""

    sequences: int = 0
    residues: int = 0
    case_folded: int = 0
    converted: int = 0  # T->U (RNA) or U->T (DNA)
    gaps_removed: int = 0
    unknown: Counter = field(default_factory=Counter)

    def messages(self, conversion: str = "T->U") -> list[str]:
        """Human-readable lines, one per kind of change; empty when nothing changed."""
        out = []
        if self.converted:
            out.append(f"converted {self.converted} {conversion} letters")
        if self.gaps_removed:
            out.append(f"removed {self.gaps_removed} gap characters ('-' or '.')")
        if self.unknown:
            letters = ", ".join(f"{k!r}x{v}" for k, v in self.unknown.most_common(8))
            out.append(f"{sum(self.unknown.values())} letters outside the vocabulary became unknown ({letters})")
        return out


@dataclass(frozen=True)
class Alphabet:
    """A token vocabulary plus the policy that turns user sequences into ids.

    ``tokens[i]`` is the string of id ``i``. Residue tokens are single letters; special tokens
    are bracketed. ``convert`` maps an input letter (after case folding) to another letter,
    e.g. ``{"T": "U"}`` for RNA models.
    """

    name: str
    tokens: tuple[str, ...]
    pad_token: str
    unk_token: str
    mask_token: str
    bos_token: str | None = None
    eos_token: str | None = None
    lowercase: bool = False
    convert: tuple[tuple[str, str], ...] = ()
    kmer: int = 1  # letters per residue token: 3 for codons

    # ---- ids -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def index(self, token: str) -> int:
        return self.tokens.index(token)

    @property
    def pad_id(self) -> int:
        return self.index(self.pad_token)

    @property
    def unk_id(self) -> int:
        return self.index(self.unk_token)

    @property
    def mask_id(self) -> int:
        return self.index(self.mask_token)

    @property
    def bos_id(self) -> int | None:
        return None if self.bos_token is None else self.index(self.bos_token)

    @property
    def eos_id(self) -> int | None:
        return None if self.eos_token is None else self.index(self.eos_token)

    @property
    def residues(self) -> str:
        """The four canonical nucleotides in vocabulary case, e.g. ``"ACGU"`` or ``"acgt"``."""
        base = "ACGU" if dict(self.convert).get("T") == "U" else "ACGT"
        return base.lower() if self.lowercase else base

    def residue_ids(self) -> list[int]:
        return [self.index(c) for c in self.residues]

    def complement_ids(self) -> np.ndarray:
        """(V,) id permutation swapping A<->T/U and C<->G; every other id maps to itself."""
        perm = np.arange(len(self.tokens))
        a, c, g, t = self.residue_ids()
        perm[[a, c, g, t]] = [t, g, c, a]
        return perm

    def reverse_complement_ids(self, ids: np.ndarray) -> np.ndarray:
        """Reverse complement of residue ids along the last axis.

        >>> DNA.decode(DNA.reverse_complement_ids(DNA.encode("aacg")))
        'cgtt'
        """
        return self.complement_ids()[np.asarray(ids)[..., ::-1]]

    def special_ids(self) -> list[int]:
        return [i for i, t in enumerate(self.tokens) if t[0] in "<["]

    # ---- encoding --------------------------------------------------------------------------
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        cache = _TABLES.get(self.name)
        if cache is not None and cache[0] == self:
            return cache[1], cache[2]
        ids = np.full(256, self.unk_id, dtype=np.int64)
        cat = np.full(256, _UNKNOWN, dtype=np.int8)
        conv = dict(self.convert)
        vocab = {t: i for i, t in enumerate(self.tokens) if len(t) == 1 and t not in GAP_LETTERS}
        for code in range(33, 127):
            raw = chr(code)
            folded = raw.lower() if self.lowercase else raw.upper()
            letter = conv.get(folded.upper(), folded.upper())
            letter = letter.lower() if self.lowercase else letter
            if raw in GAP_LETTERS:
                cat[code] = _GAP
            elif letter in vocab:
                ids[code] = vocab[letter]
                if letter.upper() != folded.upper():
                    cat[code] = _CONVERT
                elif raw != folded:
                    cat[code] = _FOLD
                else:
                    cat[code] = _KEEP
        _TABLES[self.name] = (self, ids, cat)
        return ids, cat

    def encode(self, seq: str, report: EncodingReport | None = None) -> np.ndarray:
        """Residue ids of ``seq`` (no BOS/EOS: the collator adds those), int64 array (L,).

        Gaps are removed, so ``L`` is the number of non-gap characters. Conversions are
        tallied into ``report`` when given.

        >>> RNA.encode("acgT").tolist()
        [4, 5, 6, 7]
        >>> CODON.encode("AUGgcT").tolist()
        [13, 16]
        """
        if self.kmer > 1:
            return self._encode_kmers(seq, report)
        raw = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
        ids, cat = self._tables()
        c = cat[raw]
        out = ids[raw]
        gaps = c == _GAP
        if gaps.any():
            out = out[~gaps]
        if report is not None:
            counts = np.bincount(c, minlength=5)
            report.sequences += 1
            report.residues += int(len(out))
            report.case_folded += int(counts[_FOLD])
            report.converted += int(counts[_CONVERT])
            report.gaps_removed += int(counts[_GAP])
            if counts[_UNKNOWN]:
                bad = raw[c == _UNKNOWN]
                report.unknown.update(Counter(bytes(bad).decode("ascii", errors="replace")))
        return out

    def _encode_kmers(self, seq: str, report: EncodingReport | None) -> np.ndarray:
        """``encode`` for k-mer tokens: the letter policy per letter, then one id per k letters;
        a k-mer with any letter outside the vocabulary is unknown (counted per k-mer)."""
        conv = {a: b for a, b in self.convert}
        kept = [c for c in seq if c not in GAP_LETTERS]
        folded = "".join(kept).upper()
        letters = "".join(conv.get(c, c) for c in folded)
        if len(letters) % self.kmer:
            from nucfm.errors import InputError

            raise InputError(f"{len(letters)} letters are not a whole number of {self.kmer}-letter tokens")
        index = {t: i for i, t in enumerate(self.tokens) if t[0] not in "<["}
        kmers = [letters[i : i + self.kmer] for i in range(0, len(letters), self.kmer)]
        out = np.fromiter((index.get(k, self.unk_id) for k in kmers), dtype=np.int64, count=len(kmers))
        if report is not None:
            report.sequences += 1
            report.residues += len(out)
            report.case_folded += sum(a != b for a, b in zip(kept, folded))
            report.converted += sum(a != b for a, b in zip(folded, letters))
            report.gaps_removed += len(seq) - len(kept)
            report.unknown.update(k for k in kmers if k not in index)
        return out

    def decode(self, ids) -> str:
        return "".join(self.tokens[int(i)] for i in ids)

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "tokens": list(self.tokens),
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "mask_token": self.mask_token,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "lowercase": self.lowercase,
            "convert": [list(p) for p in self.convert],
        } | ({"kmer": self.kmer} if self.kmer != 1 else {})  # absent for letters: older checkpoints

    @classmethod
    def from_dict(cls, d: dict) -> Alphabet:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown alphabet keys: {sorted(unknown)}")
        d = dict(d)
        d["tokens"] = tuple(d["tokens"])
        d["convert"] = tuple(tuple(p) for p in d.get("convert", ()))
        return cls(**d)


_TABLES: dict[str, tuple[Alphabet, np.ndarray, np.ndarray]] = {}

_COMPLEMENT = str.maketrans("ACGTURYKMSWBDHVNacgturykmswbdhvn", "TGCAAYRMKSWVHDBNtgcaayrmkswvhdbn")


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA string keeping case; IUPAC letters complemented, anything
    else kept.

    >>> reverse_complement("ACgtN")
    'NacGT'
    """
    return seq.translate(_COMPLEMENT)[::-1]

STRUCTURE_LETTERS = "ACGU"
_GAP_TABLE = str.maketrans("", "", GAP_LETTERS)


def structure_letters(seq: str, drop_gaps: bool = False) -> str:
    """The letter policy of structure prediction (folding, pair features, training, scoring):
    upper case, ``T`` read as ``U``, every letter other than A, C, G, U read as ``N`` (unknown;
    it may still pair unless decoding is canonical-only). Length is kept (gaps become ``N``)
    unless ``drop_gaps``, which removes ``-`` and ``.`` first (FASTA input to ``fold``).

    >>> structure_letters("acgT-xu."), structure_letters("acgT-xu.", drop_gaps=True)
    ('ACGUNNUN', 'ACGUNU')
    """
    s = (seq.translate(_GAP_TABLE) if drop_gaps else seq).upper().replace("T", "U")
    return "".join(c if c in STRUCTURE_LETTERS else "N" for c in s)

RNA = Alphabet(
    name="rna-fm",
    tokens=("<cls>", "<pad>", "<eos>", "<unk>", *"ACGURYKMSWBDHVN-",
            "<null_1>", "<null_2>", "<null_3>", "<null_4>", "<mask>"),
    pad_token="<pad>",
    unk_token="<unk>",
    mask_token="<mask>",
    bos_token="<cls>",
    eos_token="<eos>",
    lowercase=False,
    convert=(("T", "U"),),
)

DNA = Alphabet(
    name="gpn",
    tokens=("[PAD]", "[MASK]", "[UNK]", "a", "c", "g", "t"),
    pad_token="[PAD]",
    unk_token="[UNK]",
    mask_token="[MASK]",
    lowercase=True,
    convert=(("U", "T"),),
)

# The 64 codons in the order of the official ``fm.constants.rnaseq_3mer_toks`` (ids 4..67).
CODONS = (
    "GAG AAG GAA CUG CAG GAU AAA GUG GAC AUG GCC AAC GCU AAU AUC UUC "
    "GGA AUU GGC UUU CCA AGC GCA UCU CUC ACC CAA CCU UCC ACA UUG GUU "
    "CUU UAC ACU CCC UCA GUC GGU CAC AGU UAU AGA CAU GGG UGG UGC AGG "
    "UGU AUA CGC UUA GCG CGG CCG GUA CUA ACG UCG CGA CGU UGA UAA UAG"
).split()

CODON = Alphabet(
    name="mrna-fm",
    tokens=("<cls>", "<pad>", "<eos>", "<unk>", *CODONS, "<null_1>", "<null_2>", "<null_3>", "<null_4>", "<mask>"),
    pad_token="<pad>",
    unk_token="<unk>",
    mask_token="<mask>",
    bos_token="<cls>",
    eos_token="<eos>",
    lowercase=False,
    convert=(("T", "U"),),
    kmer=3,
)

# GPN-MSA's vocabulary (``gpn.data.Tokenizer``): ``-`` is gap, unknown and padding at once, ``?`` the
# mask; upper case. The same letters, less the mask, are the aligned species' auxiliary features.
DNA_MSA = Alphabet(
    name="gpn-msa",
    tokens=("-", "A", "C", "G", "T", "?"),
    pad_token="-",
    unk_token="-",
    mask_token="?",
    lowercase=False,
    convert=(("U", "T"),),
)

ALPHABETS = {a.name: a for a in (RNA, DNA, CODON, DNA_MSA)}


def get_alphabet(name: str) -> Alphabet:
    try:
        return ALPHABETS[name]
    except KeyError:
        raise ValueError(f"unknown alphabet {name!r}; known: {sorted(ALPHABETS)}") from None
