"""Parity with the official ``gpn`` ConvNetForMaskedLM: random weights, ``save_pretrained``."""

import gpn.legacy as legacy  # the official package (test extra): imported, never skipped
import numpy as np
import pytest
import torch

from nucfm import load_model, save_model
from nucfm.alphabet import DNA
from nucfm.checkpoint import build_model
from nucfm.data.collate import collate
from nucfm.models import ConvNet, ConvNetConfig

from tiny import dna_model

pytestmark = pytest.mark.parity


def official_model(layers=4, dim=32, kernel=9, dilation_max=4, cycle=3):
    cfg = legacy.ConvNetConfig(vocab_size=7, hidden_size=dim, n_layers=layers, kernel_size=kernel,
                               dilation_max=dilation_max, dilation_cycle=cycle)
    model = legacy.ConvNetForMaskedLM(cfg)
    with torch.no_grad():
        for p in model.parameters():  # biases and layer norms away from their init too
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(1)
    official = official_model()
    path = tmp_path_factory.mktemp("gpn")
    official.save_pretrained(path)
    return official, load_model(path)


def random_ids(B, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 7, (B, T), generator=g)  # [MASK], [UNK] and a c g t


def test_loaded_as_convnet(pair):
    _, ours = pair
    assert isinstance(ours, ConvNet)
    assert ours.config == ConvNetConfig(num_layers=4, hidden_size=32, dilation_max=4, dilation_cycle=3)
    assert ours.max_len is None
    assert [b.dilation for b in ours.layers] == [1, 2, 4, 1]


@pytest.mark.parametrize("T", [1, 5, 40, 200])
def test_logits_match_official(pair, T):
    official, ours = pair
    ids = random_ids(3, T, seed=T)
    with torch.no_grad():
        ref = official(input_ids=ids).logits
        got = ours.token_logits(ids)
    assert got.shape == ref.shape == (3, T, 7)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_hidden_states_match_official(pair):
    official, ours = pair
    ids = random_ids(2, 64)
    with torch.no_grad():
        ref = official.model(input_ids=ids).last_hidden_state
        torch.testing.assert_close(ours.hidden(ids, None, -1), ref, atol=1e-5, rtol=1e-5)
        x = torch.nn.functional.one_hot(ids, 32).float()
        ref1 = official.model.encoder[0](x)
        torch.testing.assert_close(ours.hidden(ids, None, 1), ref1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.hidden(ids, None, 0), x)


def test_logits_at_equals_full_forward(pair):
    _, ours = pair
    ids = random_ids(4, 120, seed=3)
    pos = torch.tensor([0, 60, 59, 119])
    with torch.no_grad():
        full = ours.token_logits(ids)[torch.arange(4), pos]
        torch.testing.assert_close(ours.logits_at(ids, pos), full, atol=1e-5, rtol=1e-5)


def test_padded_batch_equals_single_sequences(pair):
    _, ours = pair
    seqs = ["acgtnacgtaacc", "ggc", "ACGTACGTTTGACCA" * 3]
    batch = collate(DNA, [DNA.encode(s) for s in seqs])
    with torch.no_grad():
        together = ours.token_logits(batch.input_ids, batch.attention_mask)
        for i, s in enumerate(seqs):
            alone = ours.token_logits(torch.from_numpy(DNA.encode(s))[None])[0]
            torch.testing.assert_close(batch.residues(together, i), alone, atol=1e-5, rtol=1e-5)


def test_save_load_roundtrip(pair, tmp_path):
    _, ours = pair
    save_model(ours, tmp_path / "ck", metadata={"kind": "dna"})
    again = load_model(tmp_path / "ck")
    ids = random_ids(2, 50)
    with torch.no_grad():
        torch.testing.assert_close(again.token_logits(ids), ours.token_logits(ids), atol=0, rtol=0)
    assert build_model(ours.config.to_dict()).config == ours.config


def test_pytorch_model_bin(tmp_path):
    official = official_model(layers=2, dim=16, kernel=5)
    _save_bin(official, tmp_path)
    assert not (tmp_path / "model.safetensors").exists()
    ours = load_model(tmp_path)
    ids = random_ids(2, 30)
    with torch.no_grad():
        torch.testing.assert_close(ours.token_logits(ids), official(input_ids=ids).logits, atol=1e-5, rtol=1e-5)


def _save_bin(official, path):
    """The legacy HF layout: config.json + pytorch_model.bin."""
    official.config.save_pretrained(path)
    torch.save(official.state_dict(), path / "pytorch_model.bin")


def test_rejects_foreign_keys(tmp_path):
    from nucfm.errors import InputError

    official = official_model(layers=1, dim=16)
    _save_bin(official, tmp_path)
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state["model.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(InputError, match="unexpected"):
        load_model(tmp_path)


def test_even_kernel_same_padding():
    """Even kernels pad asymmetrically, as torch's padding='same'."""
    official = official_model(layers=3, dim=16, kernel=4, dilation_max=2, cycle=2)
    ours = dna_model(seed=None, num_layers=3, kernel_size=4, dilation_max=2, dilation_cycle=2)
    from nucfm.checkpoint.gpn import rename_gpn_key

    ours.load_state_dict({rename_gpn_key(k): v for k, v in official.state_dict().items()})
    ids = random_ids(2, 33)
    with torch.no_grad():
        torch.testing.assert_close(ours.token_logits(ids), official(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
        pos = torch.tensor([0, 32])
        torch.testing.assert_close(ours.logits_at(ids, pos), ours.token_logits(ids)[torch.arange(2), pos],
                                   atol=1e-5, rtol=1e-5)
    assert np.isfinite(ours.token_logits(ids).detach().numpy()).all()


def test_gradients_match_official(pair):
    """Training goes through the differentiable path: same loss gradients as the official model."""
    from nucfm.checkpoint.gpn import rename_gpn_key

    official, ours = pair
    ids = random_ids(2, 48, seed=5)
    labels = torch.randint(3, 7, (2, 48))
    loss_off = torch.nn.functional.cross_entropy(official(input_ids=ids).logits.reshape(-1, 7), labels.reshape(-1))
    loss_ours = torch.nn.functional.cross_entropy(ours.token_logits(ids).reshape(-1, 7), labels.reshape(-1))
    official.zero_grad()
    ours.zero_grad()
    loss_off.backward()
    loss_ours.backward()
    torch.testing.assert_close(loss_ours, loss_off, atol=1e-5, rtol=1e-5)
    grads = dict(ours.named_parameters())
    for k, p in official.named_parameters():
        torch.testing.assert_close(grads[rename_gpn_key(k)].grad, p.grad, atol=1e-5, rtol=1e-4, msg=k)
    ours.zero_grad()
    official.zero_grad()
