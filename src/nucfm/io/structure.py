"""RNA secondary structures: dot-bracket, BPSEQ and CT readers and writers; pairs <-> matrix.

A structure is a sorted ``list[tuple[int, int]]`` of base pairs ``(i, j)``, 0-based residue
indices with ``i < j``, each residue in at most one pair. Files are 1-based (BPSEQ, CT, the
PDB label lists); conversion happens here only.

Dot-bracket pages: ``()`` first, then ``[]``, ``{}``, ``<>``, then ``Aa``, ``Bb``, ... (upper case
opens, lower case closes), as in ViennaRNA / bpRNA. Writing assigns each pair the first page on
which it crosses no pair already placed (pairs taken in order of ``i``), so a nested structure is
written with ``()`` only and pseudoknots get ``[]`` and up.

>>> parse_dot_bracket("((..[[..))..]]")
[(0, 9), (1, 8), (4, 13), (5, 12)]
>>> to_dot_bracket([(0, 9), (1, 8), (4, 13), (5, 12)], 14)
'((..[[..))..]]'
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import tee
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.io.fasta import open_text

log = logging.getLogger("nucfm")

Pairs = list[tuple[int, int]]

BRACKETS: tuple[tuple[str, str], ...] = (("(", ")"), ("[", "]"), ("{", "}"), ("<", ">")) + tuple(
    (up, low) for up, low in zip(string.ascii_uppercase, string.ascii_lowercase)
)
_OPEN = {o: k for k, (o, _) in enumerate(BRACKETS)}
_CLOSE = {c: k for k, (_, c) in enumerate(BRACKETS)}
UNPAIRED = ".-_,:~"
FORMATS = ("dbn", "bpseq", "ct")


@dataclass
class StructureRecord:
    """One sequence with its structure. ``pairs`` are 0-based ``(i, j)``, ``i < j``."""

    id: str
    seq: str
    pairs: Pairs = field(default_factory=list)


def normalize_pairs(pairs: Iterable[Sequence[int]], length: int | None = None, what: str = "structure") -> Pairs:
    """Sorted ``(i, j)`` with ``i < j``; raises InputError on self pairs, out-of-range indices or a
    residue in two pairs (a duplicate of the same pair is accepted once)."""
    out = sorted({(min(int(a), int(b)), max(int(a), int(b))) for a, b in pairs})
    seen: set[int] = set()
    for i, j in out:
        if i == j:
            raise InputError(f"{what}: residue {i + 1} paired with itself")
        if i < 0 or (length is not None and j >= length):
            raise InputError(f"{what}: pair ({i + 1}, {j + 1}) outside a sequence of {length} residues")
        if i in seen or j in seen:
            raise InputError(f"{what}: residue {(i if i in seen else j) + 1} is in more than one pair")
        seen.update((i, j))
    return out


def parse_dot_bracket(db: str, what: str = "dot-bracket") -> Pairs:
    """Pairs of a dot-bracket string (any of ``()[]{}<>`` and ``Aa``..``Zz``; ``.-_,:~`` unpaired)."""
    stacks: list[list[int]] = [[] for _ in BRACKETS]
    pairs: Pairs = []
    for pos, ch in enumerate(db):
        if ch in _OPEN:
            stacks[_OPEN[ch]].append(pos)
        elif ch in _CLOSE:
            stack = stacks[_CLOSE[ch]]
            if not stack:
                raise InputError(f"{what}: unmatched {ch!r} at position {pos + 1}")
            pairs.append((stack.pop(), pos))
        elif ch not in UNPAIRED:
            raise InputError(f"{what}: unexpected character {ch!r} at position {pos + 1}")
    for k, stack in enumerate(stacks):
        if stack:
            raise InputError(f"{what}: unmatched {BRACKETS[k][0]!r} at position {stack[-1] + 1}")
    return sorted(pairs)


def _crosses(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[0] < a[1] < b[1] or b[0] < a[0] < b[1] < a[1]


def pseudoknot_pages(pairs: Pairs) -> list[int]:
    """Page (0 = ``()``, 1 = ``[]``, ...) of each pair: the first page on which it crosses no pair
    already placed, pairs taken in order. Page > 0 marks the pair as pseudoknotted."""
    pages: list[list[tuple[int, int]]] = []
    out = []
    for p in pairs:
        for k, placed in enumerate(pages):
            if not any(_crosses(p, q) for q in placed):
                placed.append(p)
                out.append(k)
                break
        else:
            pages.append([p])
            out.append(len(pages) - 1)
    return out


def to_dot_bracket(pairs: Iterable[Sequence[int]], length: int) -> str:
    """Dot-bracket string of ``length`` characters (pseudoknots as ``[]{}<>``, then ``Aa``..)."""
    pairs = normalize_pairs(pairs, length)
    chars = ["."] * length
    for (i, j), k in zip(pairs, pseudoknot_pages(pairs)):
        if k >= len(BRACKETS):
            raise InputError(f"structure needs more than {len(BRACKETS)} bracket pages")
        chars[i], chars[j] = BRACKETS[k]
    return "".join(chars)


def dot_bracket_pairs(pairs: Pairs) -> tuple[Pairs, int]:
    """The pairs a dot-bracket string can hold (those on the first ``len(BRACKETS)`` pages) and
    how many it cannot (a structure crossing itself more than that, e.g. from an untrained model)."""
    pages = pseudoknot_pages(pairs)
    kept = [p for p, k in zip(pairs, pages) if k < len(BRACKETS)]
    return kept, len(pairs) - len(kept)


def remove_pseudoknots(pairs: Pairs) -> Pairs:
    """Keep the pairs of page 0 only (a nested structure)."""
    return [p for p, k in zip(pairs, pseudoknot_pages(pairs)) if k == 0]


def pairs_to_matrix(pairs: Iterable[Sequence[int]], length: int) -> np.ndarray:
    """Symmetric (L, L) uint8 contact matrix with 1 at ``[i, j]`` and ``[j, i]``."""
    m = np.zeros((length, length), dtype=np.uint8)
    for i, j in pairs:
        m[i, j] = m[j, i] = 1
    return m


def matrix_to_pairs(m: np.ndarray) -> Pairs:
    """Pairs ``(i, j)``, ``i < j``, where the upper triangle of a (L, L) matrix is non-zero."""
    i, j = np.nonzero(np.triu(np.asarray(m), 1))
    return [(int(a), int(b)) for a, b in zip(i, j)]


def partner_array(pairs: Pairs, length: int) -> np.ndarray:
    """(L,) int: 0-based partner of each residue, -1 when unpaired."""
    p = np.full(length, -1, dtype=np.int64)
    for i, j in pairs:
        p[i], p[j] = j, i
    return p


# ---- readers ------------------------------------------------------------------------------------
def _lines(path) -> list[str]:
    with open_text(path) as fh:
        return [line.rstrip("\n") for line in fh]


def read_dbn(path: str | Path) -> Iterator[StructureRecord]:
    """Records of a dot-bracket file: ``>id``, sequence line(s), structure line(s).

    A record's sequence and structure may each be wrapped over several lines; they are told
    apart by their characters. A ViennaRNA energy suffix (`` (-12.30)``) is ignored.
    """
    lines = [ln.strip() for ln in _lines(path)]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise InputError(f"{path}: empty file")
    if not lines[0].startswith(">"):
        raise InputError(f"{path}: not a dot-bracket file: the first line should start with '>'")
    brackets = set("".join(o + c for o, c in BRACKETS[:4]))
    k = 0
    while k < len(lines):
        rid = lines[k][1:].split(None, 1)[0] if len(lines[k]) > 1 else ""
        k += 1
        seq, db = [], []
        while k < len(lines) and not lines[k].startswith(">"):
            token = lines[k].split()[0]
            # a structure line holds a bracket (page 0 is always "()") or only unpaired marks
            is_structure = bool(set(token) & brackets) or set(token) <= set(UNPAIRED)
            if not seq or (not db and not is_structure):
                seq.append(token)
            else:
                db.append(token)
            k += 1
        seq_s, db_s = "".join(seq), "".join(db)
        if len(db_s) != len(seq_s):
            raise InputError(f"{path}: record {rid!r}: structure has {len(db_s)} characters, sequence {len(seq_s)}")
        yield StructureRecord(rid, seq_s, parse_dot_bracket(db_s, what=f"{path}: record {rid!r}"))


def _read_numbered(path, rows: list[list[str]], kind: str, seq_col: int, partner_col: int, rid: str) -> StructureRecord:
    seq, pairs = [], []
    for n, row in enumerate(rows, start=1):
        try:
            idx, partner = int(row[0]), int(row[partner_col])
            base = row[seq_col]
        except (IndexError, ValueError):
            raise InputError(f"{path}: malformed {kind} line {' '.join(row)!r}") from None
        if idx != n:
            raise InputError(f"{path}: {kind} index {idx} where {n} was expected")
        seq.append(base)
        if partner > 0 and partner != idx:
            pairs.append((idx - 1, partner - 1))
    return StructureRecord(rid, "".join(seq), normalize_pairs(pairs, len(seq), what=f"{path}"))


def read_bpseq(path: str | Path) -> StructureRecord:
    """A BPSEQ file: ``index base partner`` per residue, 1-based, partner 0 when unpaired.
    Other lines are skipped; the id comes from a ``# ID`` or ``#Name: ID`` header, else the file stem."""
    lines = _lines(path)
    rid = Path(path).stem
    for ln in lines:
        if ln.startswith("#") and ln[1:].replace("Name:", "").split():
            rid = ln[1:].replace("Name:", "").split()[0]
            break
    rows = [ln.split() for ln in lines]
    rows = [r for r in rows if r and r[0].isdigit()]
    if not rows:
        if any(ln.startswith("#") for ln in lines):  # a header only: an empty sequence
            return StructureRecord(rid, "", [])
        raise InputError(f"{path}: no BPSEQ lines (index base partner)")
    return _read_numbered(path, rows, "BPSEQ", 1, 2, rid)


def read_ct(path: str | Path) -> Iterator[StructureRecord]:
    """Records of a CT file: a header ``N  title`` then N lines
    ``index base prev next partner natural_index`` (1-based, partner 0 when unpaired)."""
    lines = [ln.split() for ln in _lines(path)]
    lines = [r for r in lines if r]
    k = 0
    if not lines:
        raise InputError(f"{path}: empty file")
    while k < len(lines):
        head = lines[k]
        try:
            n = int(head[0])
        except ValueError:
            raise InputError(f"{path}: a CT header should start with the sequence length, "
                             f"got {' '.join(head)!r}") from None
        title = head[1:]
        # "N  ENERGY = -12.3  name" / "N  dG = -12.3  name" (mfold, RNAstructure) or "N  name"
        rid = (title[-1] if "=" in title else title[0]) if title else Path(path).stem
        rows = lines[k + 1 : k + 1 + n]
        if len(rows) < n:
            raise InputError(f"{path}: CT record {rid!r} announces {n} residues but has {len(rows)} lines")
        yield _read_numbered(path, rows, "CT", 1, 4, rid)
        k += 1 + n


def read_pair_list(path: str | Path, seq: str | None = None, rid: str | None = None,
                   strict: bool = True) -> StructureRecord:
    """The SPOT-RNA PDB label format: a ``#`` header, an ``i j`` header line, then 1-based
    ``i j`` pair lines. The sequence comes from elsewhere (``seq``). PDB-derived labels hold base
    multiplets (a residue in two pairs); ``strict=False`` keeps them (sorted unique ``i < j``),
    which the metrics accept, instead of raising."""
    pairs = []
    for ln in _lines(path):
        parts = ln.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            pairs.append((int(parts[0]) - 1, int(parts[1]) - 1))
    seq = seq or ""
    if not strict:
        pairs = sorted({(min(i, j), max(i, j)) for i, j in pairs if i != j})
        return StructureRecord(rid or Path(path).name, seq, pairs)
    return StructureRecord(rid or Path(path).name, seq,
                           normalize_pairs(pairs, len(seq) if seq else None, what=str(path)))


def detect_format(path: str | Path) -> str:
    """``dbn``, ``bpseq`` or ``ct`` from the file name, else from the first line."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in ("dbn", "db", "dot", "fold"):
        return "dbn"
    if suffix in FORMATS:
        return suffix
    lines = [ln.split() for ln in _lines(path) if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InputError(f"{path}: empty file")
    if lines[0][0].startswith(">"):
        return "dbn"
    if len(lines[0]) == 3:
        return "bpseq"
    return "ct"


def read_structures(path: str | Path, fmt: str | None = None) -> list[StructureRecord]:
    """All records of a structure file (``fmt`` = dbn, bpseq or ct; detected when None), or of
    every such file in a directory (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        out = []
        for f in sorted(path.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                out.extend(read_structures(f, fmt))
        return out
    fmt = fmt or detect_format(path)
    if fmt == "dbn":
        return list(read_dbn(path))
    if fmt == "bpseq":
        return [read_bpseq(path)]
    if fmt == "ct":
        return list(read_ct(path))
    raise InputError(f"unknown structure format {fmt!r}; known: {', '.join(FORMATS)}")


# ---- writers ------------------------------------------------------------------------------------
def format_dbn(rec: StructureRecord) -> str:
    return f">{rec.id}\n{rec.seq}\n{to_dot_bracket(rec.pairs, len(rec.seq))}\n"


def format_bpseq(rec: StructureRecord) -> str:
    partner = partner_array(normalize_pairs(rec.pairs, len(rec.seq)), len(rec.seq))
    lines = [f"# {rec.id}"] + [f"{n + 1} {b} {partner[n] + 1}" for n, b in enumerate(rec.seq)]
    return "\n".join(lines) + "\n"


def format_ct(rec: StructureRecord) -> str:
    L = len(rec.seq)
    partner = partner_array(normalize_pairs(rec.pairs, L), L)
    lines = [f"{L}\t{rec.id}"]
    for n, b in enumerate(rec.seq):
        lines.append(f"{n + 1}\t{b}\t{n}\t{n + 2 if n + 1 < L else 0}\t{partner[n] + 1}\t{n + 1}")
    return "\n".join(lines) + "\n"


FORMATTERS = {"dbn": format_dbn, "bpseq": format_bpseq, "ct": format_ct}


def write_structures(records: Iterable[StructureRecord], path: str | Path, fmt: str = "dbn",
                     names: Iterable[str] | None = None) -> int:
    """Write records to ``path``, one at a time as they come (a stream of any length is written in
    the memory of one record); returns the number written.

    dbn and ct hold many records in one file. BPSEQ holds one record per file: a ``path``
    ending in ``.bpseq`` is one file (exactly one record), any other ``path`` is a directory that
    receives one ``NAME.bpseq`` per record, whatever the number of records, named by
    :func:`nucfm.paths.unique_names` of the ids (repeated or colliding ids get ``#2``, ``#3``...),
    or by ``names`` when the caller has them already. Files and directories are written
    atomically (see :func:`nucfm.paths.atomic_path`).
    """
    from nucfm.paths import atomic_path, check_output_dir, iter_unique_names

    if fmt not in FORMATTERS:
        raise InputError(f"unknown structure format {fmt!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    n = 0
    if fmt == "bpseq" and not bpseq_is_single_file(path):
        check_output_dir(path, (".bpseq",))
        if names is None:
            records, ids = tee(records)
            names = iter_unique_names(r.id for r in ids)
        with atomic_path(path, directory=True) as tmp:
            for rec, name in zip(records, names):
                (tmp / f"{name}.bpseq").write_text(format_bpseq(rec))
                n += 1
        return n
    dropped = 0
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for rec in records:
            n += 1
            if fmt == "bpseq" and n > 1:
                continue  # counted for the message below
            if fmt == "dbn":
                kept, left_out = dot_bracket_pairs(normalize_pairs(rec.pairs, len(rec.seq)))
                if left_out:
                    rec = StructureRecord(rec.id, rec.seq, kept)
                    dropped += left_out
            fh.write(FORMATTERS[fmt](rec))
        if fmt == "bpseq" and n != 1:
            raise InputError(f"{path}: a .bpseq file holds one structure, not {n}; give a directory "
                             "for one file per record")
    if dropped:
        log.warning("%s: %d pair(s) cross the others more than %d bracket types can write and were left out of "
                    "the dot-bracket (BPSEQ and CT hold every pair)", path, dropped, len(BRACKETS))
    return n


def bpseq_is_single_file(path: str | Path) -> bool:
    """Whether a BPSEQ output ``path`` is one file (it ends in ``.bpseq``) or a directory."""
    return Path(path).suffix.lower() == ".bpseq"
