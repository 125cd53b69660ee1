"""3D closeness (contact) maps: JSON lines with ``id``, ``seq`` and ``contacts``.

One record a line: ``{"id": "1abc_A", "seq": "GGC...", "contacts": [[0, 5], ...]}`` (plain or
gzip). Contacts are 0-based residue pairs ``[i, j]`` with ``i < j``; every pair not listed is a
negative. An optional ``base_pairs`` list (same convention) is kept. This is the layout of the
SPOT-RNA-2D sets under ``../shared/data/contact/`` (``TR``, ``VL``, ``TS1``).

>>> rec = parse_contact_line('{"id": "x", "seq": "ACGU", "contacts": [[0, 3]]}')
>>> rec.contacts
[(0, 3)]
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from nucfm.errors import InputError


@dataclass
class ContactRecord:
    id: str
    seq: str
    contacts: list[tuple[int, int]]
    base_pairs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The labelled pairs (the name the pair-task training code reads)."""
        return self.contacts


def _pairs(value, length: int, rid: str, key: str) -> list[tuple[int, int]]:
    out = set()
    for p in value or []:
        if len(p) != 2:
            raise InputError(f"record {rid!r}: {key} entries must be [i, j], got {p!r}")
        i, j = sorted((int(p[0]), int(p[1])))
        if i < 0 or j >= length or i == j:
            raise InputError(f"record {rid!r}: {key} pair {list(p)} is outside 0 <= i < j < {length}")
        out.add((i, j))
    return sorted(out)


def parse_contact_line(line: str, where: str = "line") -> ContactRecord:
    try:
        d = json.loads(line)
    except ValueError as e:
        raise InputError(f"{where}: not JSON ({e})") from None
    if not isinstance(d, dict) or "seq" not in d or "contacts" not in d:
        raise InputError(f"{where}: a contact record needs 'seq' and 'contacts'")
    rid = str(d.get("id", where))
    seq = str(d["seq"])
    return ContactRecord(rid, seq, _pairs(d["contacts"], len(seq), rid, "contacts"),
                         _pairs(d.get("base_pairs"), len(seq), rid, "base_pairs"))


def read_contacts(path: str | Path) -> list[ContactRecord]:
    """Every record of a contact JSON-lines file (``.jsonl`` or ``.jsonl.gz``), in file order."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such contact file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [parse_contact_line(line, f"{path}:{k + 1}") for k, line in enumerate(fh) if line.strip()]


