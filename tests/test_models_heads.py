"""PairHead: parity with the official RNA-FM SS head, symmetry, padding invariance, save/load."""

import sys
import types
from argparse import Namespace

import numpy as np
import pytest
import torch

from nucfm.models.config import PairHeadConfig
from nucfm.models.heads import PairHead


def _official_head(embed_dim):
    """fm.downstream's PairwiseConcatWithResNet ("pc-resnet_1_sym_first") with random weights."""
    import fm  # the official package (test extra): imported, never skipped

    # fm.downstream imports ptflops (FLOP counting, unused here); stub it when it is absent.
    if "ptflops" not in sys.modules:
        try:
            import ptflops  # noqa: F401
        except ImportError:
            sys.modules["ptflops"] = types.SimpleNamespace(get_model_complexity_info=None)
    from fm.downstream.pairwise_predictor.pairwise_concat import PairwiseConcatWithResNet

    args = Namespace(embed_dim=embed_dim, attention_heads=4)
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    module = PairwiseConcatWithResNet.create_module_with_name("pc-resnet_1_sym_first", args, alphabet)
    return module, fm


def _parity_case():
    from nucfm.checkpoint.structure import RNAFM_SS_PREFIX, convert_rnafm_ss_state

    torch.manual_seed(1)
    official, fm = _official_head(embed_dim=40)
    for m in official.modules():  # non-trivial BN statistics, so eval-mode BN is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    official.eval()
    state = {RNAFM_SS_PREFIX + k: v for k, v in official.state_dict().items()}
    state["backbone.embed_tokens.weight"] = torch.zeros(25, 40)  # the LM part is ignored
    head, config = convert_rnafm_ss_state(state)
    assert head.config == PairHeadConfig(embed_dim=40, reduction=128, channels=64, blocks=32)
    assert config.lm == "rna-fm"

    L = 11
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    tokens = torch.tensor([[alphabet.cls_idx] + [4 + k % 4 for k in range(L)] + [alphabet.eos_idx]])
    emb = torch.randn(1, L + 2, 40)
    with torch.no_grad():
        want = official(tokens, {"embedding": emb})  # (1, L, L)
        got = head(emb[:, 1:-1])
    assert got.shape == (1, L, L)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    return official, state, emb, want


@pytest.mark.parity
def test_parity_with_official_ss_head():
    _parity_case()


@pytest.mark.parity
def test_official_pth_file_loads_with_its_lm(tmp_path):
    """An official-layout .pth (plain state dict) loads as a predictor; probabilities match fm."""
    from nucfm.checkpoint.structure import load_structure_model

    from tiny import rna_model

    official, state, _, _ = _parity_case()
    torch.save(state, tmp_path / "RNA-FM-ResNet_test.pth")
    lm = rna_model(seed=None, num_layers=1, hidden_size=40, num_heads=4, max_len=30)
    pred = load_structure_model(tmp_path / "RNA-FM-ResNet_test.pth", lm=lm)
    seq = "GGGAAACUUCGGUUUCCCAU"
    emb = lm.embed([seq])[0]
    with torch.no_grad():
        e = torch.as_tensor(emb)[None]
        tokens = torch.tensor([[0] + [4] * len(seq) + [2]])
        padded = torch.cat([torch.zeros(1, 1, 40), e, torch.zeros(1, 1, 40)], 1)
        want = torch.sigmoid(official(tokens, {"embedding": padded}))[0].numpy()
    np.testing.assert_allclose(pred.predict_probs([seq])[0], want, atol=1e-5)
    assert pred.decode_options.threshold == 0.4773


def test_symmetric_and_padding_invariant():
    cfg = PairHeadConfig(embed_dim=8, reduction=4, channels=6, blocks=3, extra_channels=2)
    head = PairHead(cfg).eval()
    e1, f1 = torch.randn(1, 7, 8), torch.randn(1, 2, 7, 7)
    e2, f2 = torch.randn(1, 10, 8), torch.randn(1, 2, 10, 10)
    with torch.no_grad():
        a = head(e1, f1)
        b = head(e2, f2)
        E = torch.zeros(2, 10, 8)
        F = torch.zeros(2, 2, 10, 10)
        E[0, :7], F[0, :, :7, :7] = e1[0], f1[0]
        E[1], F[1] = e2[0], f2[0]
        mask = torch.tensor([[True] * 7 + [False] * 3, [True] * 10])
        both = head(E, F, mask)
    torch.testing.assert_close(a, a.transpose(1, 2))
    torch.testing.assert_close(both[0, :7, :7], a[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[1], b[0], atol=1e-5, rtol=1e-5)
    assert both[0, 7:].abs().sum() == 0


def test_features_only_head_and_config_strict():
    head = PairHead(PairHeadConfig(embed_dim=0, extra_channels=17, channels=4, blocks=1))
    assert head(None, torch.randn(1, 17, 5, 5)).shape == (1, 5, 5)
    with pytest.raises(ValueError):
        PairHeadConfig.from_dict({"blocks": 2, "bogus": 1})
    with pytest.raises(ValueError):
        PairHeadConfig(embed_dim=0, extra_channels=0)


def test_structure_checkpoint_round_trip(tmp_path):
    from nucfm.checkpoint.structure import load_structure_model, save_structure_model
    from nucfm.models.config import StructureConfig

    cfg = PairHeadConfig(embed_dim=0, extra_channels=16, channels=4, blocks=2)
    head = PairHead(cfg).eval()
    sc = StructureConfig(head=cfg.to_dict(), features=("onehot",))
    save_structure_model(head, sc, tmp_path / "m", metadata={"kind": "ss"})
    pred = load_structure_model(tmp_path / "m")
    assert pred.config == sc
    seq = "GGGAAACUUCGGUUUCCC"
    p = pred.predict_probs([seq])[0]
    with torch.no_grad():
        from nucfm.data.structure_features import onehot_outer

        want = torch.sigmoid(head(None, torch.as_tensor(onehot_outer(seq))[None]))[0].numpy()
    np.testing.assert_allclose(p, want, atol=1e-6)
    np.testing.assert_allclose(p, p.T)
