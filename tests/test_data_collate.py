"""The collator: special tokens, padding and the attention mask, with golden ids."""

import pytest

from nucfm.alphabet import DNA, RNA
from nucfm.data.collate import collate


def test_collate_golden_ids_and_offsets():
    b = collate(RNA, [RNA.encode("ACG"), RNA.encode("U")])
    assert b.input_ids.tolist() == [[0, 4, 5, 6, 2], [0, 7, 2, 1, 1]]
    assert b.attention_mask.tolist() == [[True] * 5, [True, True, True, False, False]]
    assert b.residue_mask().tolist() == [[False, True, True, True, False], [False, True, False, False, False]]
    assert b.residues(b.input_ids, 1).tolist() == [7]
    d = collate(DNA, [DNA.encode("ac"), DNA.encode("gtn")])
    assert d.input_ids.tolist() == [[3, 4, 0], [5, 6, 2]] and d.offset == 0


def test_collate_rejects_too_long():
    with pytest.raises(ValueError, match="exceeds"):
        collate(RNA, [RNA.encode("A" * 11)], max_len=10)
