"""Inference on any device, tested on the CPU: --precision, token-budget batches in bounded memory,
out-of-memory halving (with a fake out-of-memory error), prefetching, and the fused attention
kernel against the explicit softmax maths. The same checks on a GPU are in tests/test_cuda.py."""

import threading

import numpy as np
import pytest
import torch

from nucfm.cli import main
from nucfm.cli.common import PRECISION_CHOICES
from nucfm.inference import (
    PRECISIONS,
    TokenBudget,
    budget_batches,
    check_precision,
    inference_context,
    is_out_of_memory,
    prefetch,
    run_halving,
)

from tiny import dna_model, rna_model

RNG = np.random.default_rng(0)
SEQS = ["".join(RNG.choice(list("ACGU"), n)) for n in (5, 40, 17, 1, 33, 80, 12, 0, 45, 29)]


def fake_oom(limit):
    """An out-of-memory error as CUDA raises it, for any call given more than ``limit`` items."""

    def check(n):
        if n > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {n} GiB (fake)")

    return check


# ---- precision ------------------------------------------------------------------------------------
def test_cli_choices_are_the_precisions():
    assert PRECISION_CHOICES == tuple(PRECISIONS)


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        check_precision("cpu", "fp16")
    check_precision("cpu", "bf16")


def test_fp16_on_cpu_is_a_one_line_cli_error(tmp_path, capsys):
    fa = tmp_path / "in.fa"
    fa.write_text(">a\nACGU\n")
    code = main(["embed", "-i", str(fa), "-o", str(tmp_path / "o.npz"), "--device", "cpu", "--precision", "fp16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "fp16 needs a GPU" in err
    assert not (tmp_path / "o.npz").exists()


def test_inference_context_autocasts_and_turns_off_autograd():
    w = torch.randn(4, 4, requires_grad=True)
    with inference_context("cpu", "bf16"):
        y = torch.ones(2, 4) @ w
    assert y.dtype == torch.bfloat16 and not y.requires_grad
    with inference_context("cpu", "fp32"):
        assert (torch.ones(2, 4) @ w).dtype == torch.float32


def test_fp32_on_a_gpu_turns_tf32_off_and_back():
    """(Settings only: this runs without a GPU.) cuDNN convolutions default to TF32; fp32 must not."""
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    with inference_context(torch.device("cuda"), "fp32"):
        assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    assert (conv.fp32_precision, matmul.fp32_precision) == before


@pytest.mark.parametrize("make", [rna_model, dna_model])
def test_bf16_embeddings_close_to_fp32(make):
    """bf16 autocast keeps ~3 significant digits: per-residue vectors within 5 % (relative L2) and
    cosine > 0.998 of fp32, outputs float32."""
    model = make()
    want = model.embed(SEQS)
    with inference_context("cpu", "bf16"):
        got = model.embed(SEQS)
    for a, b in zip(got, want):
        assert a.dtype == np.float32 and a.shape == b.shape
        if len(a):
            assert np.linalg.norm(a - b) <= 0.05 * np.linalg.norm(b)
            cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            assert cos.min() > 0.998


# ---- token-budget batches ---------------------------------------------------------------------------
def test_budget_batches_cover_every_item_once_within_budget():
    items = list(enumerate(SEQS))
    seen = []
    for batch in budget_batches(iter(items), budget=64, buffer_tokens=100):
        lengths = [len(s) for _, s in batch]
        assert len(batch) == 1 or len(batch) * max(lengths) <= 64
        seen += [i for i, _ in batch]
    assert sorted(seen) == list(range(len(SEQS)))


def test_budget_batches_read_a_bounded_buffer():
    """From an endless stream, the first batch comes after reading about buffer_tokens tokens."""
    read = 0

    def endless():
        nonlocal read
        for i in range(10**9):
            read += 10
            yield i, "A" * 10

    first = next(budget_batches(endless(), budget=40, buffer_tokens=1000))
    assert len(first) == 4 and read == 1000


def test_budget_is_read_for_every_batch():
    budget = TokenBudget(80)
    sizes = []
    for batch in budget_batches(((i, "A" * 10) for i in range(40)), budget):
        sizes.append(len(batch))
        if len(sizes) == 2:
            budget.shrink()  # as after an out-of-memory error: later batches are half the size
    assert sizes[:3] == [8, 8, 4] and sum(sizes) == 40
    assert budget() == 40 and budget.ceiling == 40


# ---- out-of-memory halving -------------------------------------------------------------------------
def test_run_halving_splits_until_it_fits_in_order():
    check = fake_oom(3)
    budget = TokenBudget(1000)
    items = [(i, "A" * 5) for i in range(10)]
    parts = list(run_halving(lambda part: check(len(part)) or [i for i, _ in part], items, budget))
    assert [i for part, _ in parts for i, _ in part] == list(range(10))  # nothing lost, input order
    assert all(len(part) <= 3 and [i for i, _ in part] == r for part, r in parts)
    assert budget() < 1000


def test_run_halving_one_item_that_does_not_fit():
    with pytest.raises(MemoryError, match="one item alone"):
        list(run_halving(lambda part: fake_oom(0)(len(part)), [1, 2]))


def test_run_halving_passes_other_errors_through():
    def boom(part):
        raise ValueError("not memory")

    with pytest.raises(ValueError, match="not memory"):
        list(run_halving(boom, [1, 2, 3]))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory")) and not is_out_of_memory(ValueError("x"))


@pytest.mark.parametrize("make", [rna_model, dna_model])
def test_embed_survives_out_of_memory_with_every_record(make, monkeypatch):
    """A model that runs out of memory on batches of more than 2 rows still embeds every record,
    to the same numbers as a run that never ran out."""
    model = make()
    want = model.embed(SEQS, batch_tokens=256)
    check, hidden, calls = fake_oom(2), model.hidden, []

    def hidden_with_limit(input_ids, attention_mask, layer):
        calls.append(len(input_ids))
        check(len(input_ids))
        return hidden(input_ids, attention_mask, layer)

    monkeypatch.setattr(model, "hidden", hidden_with_limit)
    got = model.embed(SEQS, batch_tokens=256)
    assert max(calls) > 2 and len(got) == len(SEQS)  # it did run out, and recovered
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    from nucfm.io.genome import Genome
    from nucfm.io.variants import Variant

    seq = "".join(np.random.default_rng(1).choice(list("ACGT"), 600))
    path = tmp_path_factory.mktemp("g") / "g.fa"
    path.write_text(f">chr1\n{seq}\n")
    variants = [Variant("chr1", s, seq[s], "ACGT"[("ACGT".index(seq[s]) + 1) % 4]) for s in range(0, 600, 29)]
    return Genome(path), variants


def test_vep_survives_out_of_memory_with_every_variant(genome, monkeypatch):
    from nucfm.tasks.variants import score_variants

    from tiny import vep_dna_model

    g, variants = genome
    model = vep_dna_model()
    want = score_variants(model, g, variants, window=64, batch_size=8)["score"]
    check, logits_at, calls = fake_oom(4), model.logits_at, []

    def logits_at_with_limit(ids, positions):
        calls.append(len(ids))
        check(len(ids))  # both strands: 2 rows per site, so batches of more than 2 sites fail
        return logits_at(ids, positions)

    monkeypatch.setattr(model, "logits_at", logits_at_with_limit)
    got = score_variants(model, g, variants, window=64, batch_size=8)["score"]
    assert max(calls) == 16 and len(got) == len(variants)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_vep_and_fold_in_bf16_on_cpu(genome):
    """bf16 autocast on the CPU runs end to end (outputs float64 / float32) close to fp32."""
    from nucfm.models.config import PairHeadConfig, StructureConfig
    from nucfm.models.heads import PairHead
    from nucfm.models.structure import StructureModel
    from nucfm.tasks.variants import score_variants

    from tiny import vep_dna_model

    g, variants = genome
    model = vep_dna_model()
    want = score_variants(model, g, variants, window=64)["score"]
    with inference_context("cpu", "bf16"):
        got = score_variants(model, g, variants, window=64)["score"]
    assert got.dtype == np.float64 and np.corrcoef(got, want)[0, 1] > 0.99
    cfg = PairHeadConfig(embed_dim=16, reduction=8, channels=8, blocks=2, extra_channels=16)
    config = StructureConfig(head=cfg.to_dict(), features=("onehot",), lm="tiny", lm_hidden_size=16)
    fold = StructureModel(PairHead(cfg).eval(), config, lm=rna_model())
    seqs = [s for s in SEQS if 1 < len(s) <= 50]
    want = fold.predict_probs(seqs)
    with inference_context("cpu", "bf16"):
        got = fold.predict_probs(seqs)
    for a, b in zip(got, want):
        assert a.dtype == np.float32 and np.abs(a - b).max() < 0.05


def test_shipped_task_model_predicts_in_bf16_on_cpu():
    """`nucfm predict` under bf16 autocast: float outputs, close to fp32."""
    from nucfm import load_model

    model = load_model("nucfm-nrc-cnn2x64-rnat4-vienna-nrc13")
    seqs = [s for s in SEQS if len(s) > 10]
    want = model.predict(seqs)
    with inference_context("cpu", "bf16"):
        got = model.predict(seqs)
    for a, b in zip(got, want):
        assert a.dtype in (np.float32, np.float64) and np.abs(a - b).max() < 0.05  # class probabilities


# ---- prefetch ---------------------------------------------------------------------------------------
def test_prefetch_order_errors_and_early_stop():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(broken()))
    before = threading.active_count()
    it = prefetch(iter(range(10**6)), depth=2)
    assert next(it) == 0
    it.close()  # the consumer leaves early: the producer thread stops
    assert threading.active_count() == before


# ---- fused attention -----------------------------------------------------------------------------------
def test_fused_attention_equals_explicit_softmax():
    """scaled_dot_product_attention (the default path) and the explicit softmax path (taken when
    attention maps are asked for, e.g. contacts) agree within fp32 tolerance, padding included."""
    from nucfm.data.collate import collate

    model = rna_model(num_layers=3, hidden_size=32, num_heads=4, ffn_size=64, max_len=100)
    batch = collate(model.alphabet, [model.alphabet.encode(s) for s in SEQS if s])
    with torch.no_grad():
        fused = model(batch.input_ids, batch.attention_mask, repr_layers=(1, 2, 3))
        explicit = model(batch.input_ids, batch.attention_mask, repr_layers=(1, 2, 3), need_attentions=True)
    mask = batch.attention_mask[..., None]
    for k in (1, 2, 3):
        torch.testing.assert_close(fused.hidden_states[k] * mask, explicit.hidden_states[k] * mask,
                                   atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused.logits * mask, explicit.logits * mask, atol=1e-5, rtol=1e-5)


def test_every_model_command_takes_precision():
    """--precision wherever --device is, except the server (autocast does not reach its threads) and
    training (pretrain chooses its own mixed precision)."""
    from nucfm.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    with_device = {name: {o for a in p._actions for o in a.option_strings} for name, p in sub.choices.items()
                   if "--device" in {o for a in p._actions for o in a.option_strings}}
    assert {"embed", "vep", "probs", "fold", "contacts", "predict", "genome-clusters", "logo"} <= set(with_device)
    assert [n for n, opts in with_device.items() if "--precision" not in opts] == ["pretrain", "serve"]


def test_cli_embed_in_bf16_on_cpu(tmp_path, capsys):
    from nucfm import save_model

    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(SEQS)))
    model = str(save_model(rna_model(max_len=100), tmp_path / "m"))
    outs = {}
    for precision in ("fp32", "bf16"):
        outs[precision] = tmp_path / f"{precision}.npz"
        code = main(["embed", "-i", str(fa), "-o", str(outs[precision]), "-m", model, "--device", "cpu",
                     "--precision", precision, "--pool", "mean", "--no-progress"])
        assert code == 0, capsys.readouterr().err
    with np.load(outs["fp32"]) as a, np.load(outs["bf16"]) as b:
        x, y = a["embeddings"], b["embeddings"]
    assert x.shape == y.shape == (len(SEQS), 16) and y.dtype == np.float32
    ok = np.isfinite(x).all(1)  # the empty record is NaN in both
    assert ok.sum() == len(SEQS) - 1 and np.isnan(y[~ok]).all()
    assert np.abs(x[ok] - y[ok]).max() < 0.05 * np.abs(x[ok]).max()
