import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nucfm.alphabet import DNA, RNA, Alphabet, EncodingReport, get_alphabet


def test_rna_golden_ids():
    # ids of the official RNA-FM vocabulary
    assert RNA.encode("ACGU").tolist() == [4, 5, 6, 7]
    assert RNA.encode("RYKMSWBDHVN").tolist() == list(range(8, 19))
    assert (RNA.pad_id, RNA.bos_id, RNA.eos_id, RNA.unk_id, RNA.mask_id) == (1, 0, 2, 3, 24)
    assert len(RNA) == 25


def test_dna_golden_ids():
    assert DNA.encode("ACGTacgt").tolist() == [3, 4, 5, 6, 3, 4, 5, 6]
    assert DNA.encode("NnRU").tolist() == [2, 2, 2, 6]
    assert (DNA.pad_id, DNA.mask_id, DNA.unk_id, DNA.bos_id, DNA.eos_id) == (0, 1, 2, None, None)


def test_policy_counts():
    r = EncodingReport()
    ids = RNA.encode("acgT-uP.x", r)
    assert ids.tolist() == [4, 5, 6, 7, 7, 3, 3]
    assert r.converted == 1 and r.gaps_removed == 2 and r.case_folded == 4
    assert r.unknown == {"P": 1, "x": 1}
    assert r.residues == 7 and r.sequences == 1
    msgs = r.messages()
    assert any("T->U" in m for m in msgs) and any("'P'x1" in m for m in msgs)


def test_non_ascii_becomes_unknown():
    r = EncodingReport()
    assert RNA.encode("Aé", r).tolist() == [4, 3]
    assert sum(r.unknown.values()) == 1


def test_serialisation_roundtrip_and_strict():
    for a in (RNA, DNA):
        assert Alphabet.from_dict(a.to_dict()) == a
        assert get_alphabet(a.name) is a
    with pytest.raises(ValueError, match="unknown"):
        Alphabet.from_dict({**RNA.to_dict(), "typo": 1})


@given(st.text(alphabet="ACGUTacgut", max_size=50))
def test_rna_canonical_letters_always_known(seq):
    ids = RNA.encode(seq)
    assert len(ids) == len(seq)
    assert set(ids.tolist()) <= {4, 5, 6, 7}
    assert RNA.decode(ids) == seq.upper().replace("T", "U")


@given(st.text(max_size=40))
def test_encode_total(seq):
    r = EncodingReport()
    ids = RNA.encode(seq, r)
    assert ids.dtype == np.int64 and (ids >= 0).all() and (ids < len(RNA)).all()
    # every character but a gap becomes exactly one id, and the report counts them
    assert len(ids) == r.residues == len(seq) - r.gaps_removed
