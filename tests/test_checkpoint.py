import json

import numpy as np
import pytest
import torch

from nucfm import load_model, save_model
from nucfm.checkpoint import build_model, registry, unwrap
from nucfm.errors import InputError, ModelNotFoundError
from nucfm.models.config import TransformerConfig as TC

from tiny import rna_model


def test_roundtrip_equal_logits(tmp_path):
    m = rna_model(contact_head=True)
    path = save_model(m, tmp_path / "ck", metadata={"note": "x"})
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["format"] == "nucfm" and cfg["model"]["architecture"] == "transformer"
    assert cfg["alphabet"]["name"] == "rna-fm" and cfg["metadata"] == {"note": "x"}
    m2 = load_model(path)
    ids = torch.tensor([[0, 4, 5, 6, 7, 2]])
    with torch.no_grad():
        assert torch.equal(m(ids).logits, m2(ids).logits)
        assert torch.equal(m(ids, return_contacts=True).contacts, m2(ids, return_contacts=True).contacts)


def test_fp16_storage_loads_as_fp32(tmp_path, tiny_rna_model):
    m = tiny_rna_model
    m2 = load_model(save_model(m, tmp_path / "ck16", dtype=torch.float16))
    assert all(p.dtype == torch.float32 for p in m2.parameters())
    ids = torch.tensor([[0, 4, 5, 6, 7, 2]])
    with torch.no_grad():
        assert (m(ids).logits - m2(ids).logits).abs().max() < 1e-2


def test_config_strict():
    with pytest.raises(ValueError, match="unknown TransformerConfig config keys: hidden_sise"):
        TC.from_dict({"num_layers": 2, "hidden_sise": 3})
    with pytest.raises(ValueError, match="divisible"):
        TC(hidden_size=10, num_heads=3)
    with pytest.raises(InputError, match="unknown architecture"):
        build_model({"architecture": "lstm"})


def test_strict_keys_and_bad_paths(tmp_path, tiny_rna_model):
    path = save_model(tiny_rna_model, tmp_path / "ck")
    cfg = json.loads((path / "config.json").read_text())
    cfg["model"]["num_layers"] = 3
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=r"model.safetensors: damaged: .*tensor\(s\) missing: layers\.2"):
        load_model(path)  # strict keys, said in one line naming the file
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        load_model(tmp_path / "empty")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a readable RNA-FM"):
        load_model(junk)
    with pytest.raises(ModelNotFoundError, match="registered"):
        load_model("definitely-not-a-model")


def test_official_pth_with_arbitrary_object_is_refused(tmp_path):
    """A .pth that pickles anything beyond tensors and argparse.Namespace must not load."""
    import collections

    path = tmp_path / "evil.pth"
    torch.save({"args": collections.OrderedDict(a=1), "model": {}, "x": collections.Counter("ab")}, path)
    with pytest.raises(InputError):
        load_model(path)


def test_unwrap_ddp_like(tiny_rna_model):
    m = tiny_rna_model

    class Wrapper(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    assert unwrap(Wrapper(m)) is m


def test_registry_offline_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCFM_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("rna-fm", download=False)
    assert str(tmp_path / "rna-fm" / "RNA-FM_pretrained.pth") in str(e.value)
    assert "https://" in str(e.value)
    # a file put where the message says is picked up (checked against the registry's sha256)
    import dataclasses
    import hashlib

    entry = registry.MODELS["rna-fm"]
    fake = dataclasses.replace(entry.files[0], sha256=hashlib.sha256(b"x").hexdigest())
    monkeypatch.setitem(registry.MODELS, "rna-fm", dataclasses.replace(entry, files=(fake,)))
    (tmp_path / "rna-fm").mkdir()
    (tmp_path / "rna-fm" / "RNA-FM_pretrained.pth").write_bytes(b"x")
    assert registry.resolve("rna-fm", download=False) == tmp_path / "rna-fm" / "RNA-FM_pretrained.pth"


def test_attentions_shape_and_rows_sum_to_one(tiny_rna_model):
    m = tiny_rna_model
    ids = torch.tensor([[0, 4, 5, 6, 7, 2], [0, 4, 5, 2, 1, 1]])
    with torch.no_grad():
        out = m(ids, need_attentions=True)
    assert out.attentions.shape == (2, 2, 2, 6, 6)
    np.testing.assert_allclose(out.attentions[0].sum(-1).numpy(), 1.0, atol=1e-5)
    assert float(out.attentions[1, ..., 4:].abs().max()) == 0.0  # padding masked


def test_a_damaged_cached_download_says_how_to_refetch(tmp_path, monkeypatch, tiny_rna_model):
    """A model under NUCFM_HOME is a cached download: the one-line error names the damaged file
    and the directory whose deletion fetches it again."""
    monkeypatch.setenv("NUCFM_HOME", str(tmp_path / "home"))
    path = save_model(tiny_rna_model, tmp_path / "home" / "some-model")
    (path / "config.json").write_text((path / "config.json").read_text()[:40])
    with pytest.raises(InputError) as e:
        load_model(path)
    msg = str(e.value)
    assert msg.startswith(f"{path / 'config.json'}: damaged: not valid JSON")
    assert f"delete {path.resolve()} and rerun to fetch it again" in msg and "\n" not in msg
