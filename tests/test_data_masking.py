import numpy as np
import torch

from nucfm.alphabet import DNA, RNA
from nucfm.data.collate import collate
from nucfm.data.masking import IGNORE, mask_tokens


def _batch(alphabet, n=64, length=500, seed=0):
    rng = np.random.default_rng(seed)
    letters = np.array(list(alphabet.residues))
    seqs = ["".join(rng.choice(letters, rng.integers(length // 2, length))) for _ in range(n)]
    return collate(alphabet, [alphabet.encode(s) for s in seqs])


def test_masking_statistics_80_10_10():
    batch = _batch(RNA)
    m = mask_tokens(batch.input_ids, RNA, torch.Generator().manual_seed(1))
    residues = batch.residue_mask()
    n_res = int(residues.sum())
    sel = m.selected
    assert abs(int(sel.sum()) / n_res - 0.15) < 0.005
    n_sel = int(sel.sum())
    masked = (m.input_ids == RNA.mask_id) & sel
    changed = sel & (m.input_ids != batch.input_ids) & ~masked
    kept = sel & (m.input_ids == batch.input_ids)
    # a random replacement draws the original base 1/4 of the time, so "kept" = 0.1 + 0.1/4
    assert abs(int(masked.sum()) / n_sel - 0.8) < 0.01
    assert abs(int(changed.sum()) / n_sel - 0.075) < 0.01
    assert abs(int(kept.sum()) / n_sel - 0.125) < 0.01
    # random replacements are canonical nucleotides only
    assert set(m.input_ids[changed].unique().tolist()) <= set(RNA.residue_ids())
    # labels: original ids where selected, ignore elsewhere
    assert torch.equal(m.labels[sel], batch.input_ids[sel])
    assert bool((m.labels[~sel] == IGNORE).all())


def test_specials_never_masked():
    for alphabet in (RNA, DNA):
        batch = _batch(alphabet, n=32, length=60)
        m = mask_tokens(batch.input_ids, alphabet, torch.Generator().manual_seed(2), mask_prob=0.9)
        special = ~batch.residue_mask()
        assert not bool(m.selected[special].any())
        assert torch.equal(m.input_ids[special], batch.input_ids[special])


def test_masking_is_reproducible_from_the_generator():
    batch = _batch(DNA, n=4, length=100)
    a = mask_tokens(batch.input_ids, DNA, torch.Generator().manual_seed(5))
    b = mask_tokens(batch.input_ids, DNA, torch.Generator().manual_seed(5))
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
