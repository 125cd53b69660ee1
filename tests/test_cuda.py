"""On a CUDA GPU: embed / vep / fold / predict outputs equal the CPU's (fp32 within 1e-4), bf16 and
fp16 within stated tolerances, a real out-of-memory error recovered without losing a record, the
token budget growing to the free memory, and the CLI end to end. Every test carries the ``cuda``
marker and skips, with its reason, on a machine without a GPU (tests/test_inference.py runs the
device-independent parts everywhere)."""

import numpy as np
import pytest
import torch

from nucfm import save_model
from nucfm.cli import main
from nucfm.inference import TokenBudget, inference_context
from nucfm.io.genome import Genome
from nucfm.io.variants import Variant
from nucfm.models.embedding import embed_ids
from nucfm.tasks.variants import score_variants

from tiny import dna_model, rna_model, vep_dna_model

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")]

CUDA = torch.device("cuda", 0)  # with an index: torch's memory-fraction calls refuse a bare "cuda"
RNG = np.random.default_rng(0)
# lengths mix: padding in every batch, an empty record, and records longer than max_len (windows)
SEQS = ["".join(RNG.choice(list("ACGU"), n)) for n in (1, 7, 30, 45, 0, 120, 64, 300, 13, 99)]
FP32_TOL = 1e-4
# bf16 keeps 8 bits of mantissa, fp16 11: relative L2 error of a whole output and worst cosine
HALF_TOL = {"bf16": (0.05, 0.998), "fp16": (0.01, 0.9999)}


def close_relative(got, want, rel: float, cos: float) -> None:
    a, b = np.concatenate([np.atleast_2d(x) for x in got]), np.concatenate([np.atleast_2d(x) for x in want])
    assert a.shape == b.shape and np.isfinite(a).all()
    assert np.linalg.norm(a - b) <= rel * np.linalg.norm(b), np.linalg.norm(a - b) / np.linalg.norm(b)
    c = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)
    assert c.min() > cos, c.min()


def models():
    return [rna_model(num_layers=3, hidden_size=64, num_heads=4, ffn_size=128, max_len=100),
            dna_model(num_layers=3, hidden_size=64)]


@pytest.mark.parametrize("k", [0, 1], ids=["transformer", "convnet"])
def test_embed_cuda_equals_cpu(k):
    model = models()[k]
    want = model.embed(SEQS)
    with inference_context(CUDA, "fp32"):  # as the CLI runs it: no TF32 in cuDNN convolutions
        got = model.to(CUDA).embed(SEQS)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=FP32_TOL, rtol=FP32_TOL)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("k", [0, 1], ids=["transformer", "convnet"])
def test_embed_half_precision_close_to_fp32(k, precision):
    model = models()[k]
    want = model.embed(SEQS)
    model.to(CUDA)
    with inference_context(CUDA, precision):
        got = model.embed(SEQS)
    close_relative([g for g in got if len(g)], [w for w in want if len(w)], *HALF_TOL[precision])


def test_fused_attention_on_cuda_equals_explicit_softmax():
    """The CUDA SDPA kernels (memory-efficient with padding, flash without) against the explicit
    softmax path, fp32."""
    from nucfm.data.collate import collate

    model = models()[0].to(CUDA)
    for seqs in (SEQS[1:4], ["ACGU" * 10] * 3):  # padded, and not padded
        batch = collate(model.alphabet, [model.alphabet.encode(s) for s in seqs])
        ids, mask = batch.input_ids.to(CUDA), batch.attention_mask.to(CUDA)
        with inference_context(CUDA, "fp32"):
            fused = model(ids, mask, repr_layers=(3,)).hidden_states[3]
            explicit = model(ids, mask, repr_layers=(3,), need_attentions=True).hidden_states[3]
        m = mask[..., None]
        torch.testing.assert_close(fused * m, explicit * m, atol=FP32_TOL, rtol=FP32_TOL)


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    seq = "".join(np.random.default_rng(1).choice(list("ACGT"), 3000))
    path = tmp_path_factory.mktemp("g") / "g.fa"
    path.write_text(f">chr1\n{seq}\n")
    variants = [Variant("chr1", s, seq[s], "ACGT"[("ACGT".index(seq[s]) + 1) % 4]) for s in range(0, 3000, 37)]
    return Genome(path), variants


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_vep_cuda_equals_cpu(genome, precision):
    g, variants = genome
    model = vep_dna_model()
    want = score_variants(model, g, variants, window=128)["score"]
    model.to(CUDA)
    with inference_context(CUDA, precision):
        got = score_variants(model, g, variants, window=128, batch_size=16)["score"]
    if precision == "fp32":
        np.testing.assert_allclose(got, want, atol=FP32_TOL, rtol=FP32_TOL)
    else:  # scores are differences of logits: compare as a whole, and their ranking
        assert np.linalg.norm(got - want) <= 0.1 * np.linalg.norm(want)
        assert np.corrcoef(got, want)[0, 1] > 0.99


def _fold_model():
    from nucfm.models.config import PairHeadConfig, StructureConfig
    from nucfm.models.heads import PairHead
    from nucfm.models.structure import StructureModel

    lm = models()[0]
    torch.manual_seed(0)
    cfg = PairHeadConfig(embed_dim=64, reduction=8, channels=8, blocks=2, extra_channels=16)
    config = StructureConfig(head=cfg.to_dict(), features=("onehot",), lm="tiny", lm_hidden_size=64)
    return StructureModel(PairHead(cfg).eval(), config, lm=lm)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fold_cuda_equals_cpu(precision):
    seqs = [s for s in SEQS if len(s) > 1]
    model = _fold_model()
    want = model.predict_probs(seqs)
    model.to(CUDA)
    with inference_context(CUDA, precision):
        got = model.predict_probs(seqs)
    if precision == "fp32":
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=FP32_TOL)
    else:
        for a, b in zip(got, want):
            assert np.abs(a - b).max() < 0.05  # probabilities, in [0, 1]


def test_real_out_of_memory_is_recovered_without_losing_a_record():
    """The process may use only ~48 MiB more than the model needs; a budget of 10^6 tokens must
    run out, be halved, and still give every record the CPU's numbers."""
    model = rna_model(num_layers=2, hidden_size=64, num_heads=4, ffn_size=256, max_len=1000)
    seqs = ["".join(RNG.choice(list("ACGU"), 900)) for _ in range(64)]
    ids = [model.alphabet.encode(s) for s in seqs]
    want = embed_ids(model, ids[:4])
    model.to(CUDA)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(CUDA).total_memory
    budget = TokenBudget(10**6, CUDA)
    try:
        torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_allocated(CUDA) + 48 * 2**20) / total, CUDA)
        with inference_context(CUDA, "fp32"):
            got = embed_ids(model, ids, budget=budget)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, CUDA)
    assert budget.ceiling < 10**6  # it did run out of memory
    assert len(got) == len(seqs) and all(g.shape == (900, 64) and np.isfinite(g).all() for g in got)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=FP32_TOL, rtol=FP32_TOL)


def test_budget_grows_to_free_memory():
    model = models()[0].to(CUDA)
    ids = [model.alphabet.encode(s) for s in ["ACGU" * 20] * 400]
    budget = TokenBudget(256, CUDA)
    embed_ids(model, ids, budget=budget)
    assert budget.per_unit is not None and budget() > 256 * 4


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cli_embed_and_vep_on_cuda(tmp_path, genome, precision, capsys):
    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(SEQS)))
    rna = str(save_model(models()[0], tmp_path / "rna"))
    out = tmp_path / "e.npz"
    code = main(["embed", "-i", str(fa), "-o", str(out), "-m", rna, "--device", "cuda", "--precision", precision,
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    with np.load(out) as z:
        assert len(z.files) >= len(SEQS)
    g, variants = genome
    (tmp_path / "v.tsv").write_text("chrom\tpos\tref\talt\n" + "".join(
        f"{v.chrom}\t{v.start + 1}\t{v.ref}\t{v.alt}\n" for v in variants[:20]))
    dna = str(save_model(vep_dna_model(), tmp_path / "dna"))
    code = main(["vep", "--genome", str(g.path), "--variants", str(tmp_path / "v.tsv"), "-o", str(tmp_path / "s.tsv"),
                 "-m", dna, "--window", "128", "--device", "cuda", "--precision", precision, "--no-progress"])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", ["nucfm-mrl-cnn3x120-onehot-vienna-sample2019",
                                  "nucfm-nrc-cnn2x64-rnat4-vienna-nrc13"])
def test_shipped_task_model_predicts_on_cuda(name):
    """`nucfm predict`'s path: a shipped task model (its backbone, if any, too) on the GPU."""
    pytest.importorskip("RNA", reason="the shipped task models read ViennaRNA features (pip install viennarna)")
    from nucfm import load_model

    seqs = [s for s in SEQS if s] + [""]
    model = load_model(name)
    want = model.predict(seqs)
    model.to(CUDA)
    with inference_context(CUDA, "fp32"):
        got = model.predict(seqs)
    for a, b in zip(got[:-1], want[:-1]):
        np.testing.assert_allclose(a, b, atol=FP32_TOL, rtol=FP32_TOL)
    assert np.isnan(got[-1]).all()
