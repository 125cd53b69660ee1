import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from nucfm.alphabet import RNA
from nucfm.data.batching import length_batches, plan_windows
from nucfm.data.collate import collate
from nucfm.errors import InputError

from tiny import rna_model


@pytest.fixture(scope="module")
def tiny():
    return rna_model(seed=1, hidden_size=32, num_heads=4, ffn_size=64, max_len=40)


def rand_seq(rng, n):
    return "".join(rng.choice(list("ACGU"), n))


@given(st.integers(1, 500), st.integers(2, 64), st.data())
def test_windows_cover_each_residue_once(length, max_len, data):
    overlap = data.draw(st.integers(0, max_len - 1))
    ws = plan_windows(length, max_len, overlap)
    owned = np.zeros(length, int)
    for w in ws:
        assert 0 <= w.start <= w.own_start < w.own_end <= w.end <= length
        assert w.end - w.start == min(length, max_len)
        owned[w.own_start : w.own_end] += 1
    assert (owned == 1).all()
    # each owned residue (but the sequence ends) is >= overlap//2 from its window's edges
    for w in ws:
        if w.own_start > 0:
            assert w.own_start - w.start >= overlap // 2
        if w.own_end < length:
            assert w.end - w.own_end >= overlap // 2


def test_batches_respect_budget():
    lengths = [5, 100, 7, 50, 6, 99]
    batches = length_batches(lengths, budget=210, cost=lambda n: n + 2)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) * (max(lengths[i] for i in b) + 2) <= 210 or len(b) == 1


def test_embed_matches_direct_forward_and_order(tiny):
    rng = np.random.default_rng(0)
    seqs = [rand_seq(rng, n) for n in (12, 3, 30, 1, 25)]
    embs = tiny.embed(seqs, batch_tokens=64)
    for s, e in zip(seqs, embs, strict=True):
        b = collate(RNA, [RNA.encode(s)])
        with torch.no_grad():
            ref = b.residues(tiny.hidden(b.input_ids, b.attention_mask, -1), 0).numpy()
        assert e.shape == (len(s), 32) and e.dtype == np.float32
        np.testing.assert_allclose(e, ref, atol=1e-5)


def test_batch_size_does_not_change_results(tiny):
    rng = np.random.default_rng(1)
    seqs = [rand_seq(rng, n) for n in rng.integers(1, 40, 17)]
    a = tiny.embed(seqs, batch_tokens=1)
    b = tiny.embed(seqs, batch_tokens=10_000)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_long_sequence_windows(tiny):
    rng = np.random.default_rng(2)
    s = rand_seq(rng, 150)  # > max_len 40
    e = tiny.embed([s], overlap=10)[0]
    assert e.shape == (150, 32) and np.isfinite(e).all()
    # the first window's owned residues equal an embedding of the first 40 residues
    head = tiny.embed([s[:40]])[0]
    w0 = plan_windows(150, 40, 10)[0]
    np.testing.assert_allclose(e[: w0.own_end], head[: w0.own_end], atol=1e-5)
    # pooled: each window's own residues summed where the model runs, windows and batches mixed
    seqs = [s, "ACGU" * 5, s[:70]]
    pooled = tiny.embed(seqs, overlap=10, pool="mean")
    for p, r in zip(pooled, tiny.embed(seqs, overlap=10)):
        np.testing.assert_allclose(p, r.mean(0), atol=1e-6)


def test_pool_and_layers(tiny):
    e = tiny.embed(["ACGUAC", ""], pool="mean")
    assert e[0].shape == (32,) and np.isnan(e[1]).all()
    full = tiny.embed(["ACGUAC"])[0]
    np.testing.assert_allclose(e[0], full.mean(0), atol=1e-6)
    by_layer = {layer: tiny.embed(["ACG"], layer=layer)[0] for layer in (0, 1, 2, -1, -3)}
    assert all(e.shape == (3, 32) for e in by_layer.values())
    # negative layers count from the top (-1 = last = 2, -3 = embeddings = 0); layers differ
    np.testing.assert_allclose(by_layer[2], by_layer[-1])
    np.testing.assert_allclose(by_layer[0], by_layer[-3])
    assert np.abs(by_layer[0] - by_layer[1]).max() > 1e-3 and np.abs(by_layer[1] - by_layer[2]).max() > 1e-3
    with pytest.raises(InputError, match="layer 3"):
        tiny.embed(["ACG"], layer=3)
    with pytest.raises(TypeError):
        tiny.embed("ACG")
