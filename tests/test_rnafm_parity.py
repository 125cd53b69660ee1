"""Parity with the official ``fm`` package: random official weights, official .pth layout."""

import argparse

import fm  # the official package (test extra): imported, never skipped
import numpy as np
import pytest
import torch

from nucfm import load_model
from nucfm.alphabet import RNA
from nucfm.checkpoint.rnafm import write_rnafm_pth
from nucfm.data.collate import collate

pytestmark = pytest.mark.parity

SEQS = ["GGGAAACUUCGGUUUCCC", "ACGU", "AUGGCUACGAUCGAUCGAUGCAUGCAUCGAUCAGCUAGCAUCGA", "NRYACGU-AC"]


def official_model(layers=2, dim=64, heads=4, ffn=128, max_positions=1024, ln_before=True, contacts=True):
    args = argparse.Namespace(arch="roberta_large", layers=layers, embed_dim=dim, ffn_embed_dim=ffn,
                              attention_heads=heads, max_positions=max_positions,
                              emb_layer_norm_before=ln_before)
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    model = fm.BioBertModel(args, alphabet)
    with torch.no_grad():
        for p in model.parameters():  # layer norms away from identity too
            p.add_(torch.randn_like(p) * 0.02)
        model.embed_tokens.weight[alphabet.mask_idx].zero_()
    if not contacts:
        del model.contact_head
    return model.eval(), alphabet, args


def write_official_pth(model, args, path):
    write_rnafm_pth(model.state_dict(), args, path)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    model, alphabet, args = official_model()
    path = tmp_path_factory.mktemp("ckpt") / "RNA-FM_pretrained.pth"
    write_official_pth(model, args, path)
    return model, alphabet, load_model(path)


def official_outputs(model, alphabet, seqs):
    conv = alphabet.get_batch_converter()
    _, _, tokens = conv([(str(i), s) for i, s in enumerate(seqs)])
    with torch.no_grad():
        return tokens, model(tokens, repr_layers=list(range(model.num_layers + 1)), return_contacts=True)


def test_alphabet_ids_match_official(pair):
    _, alphabet, _ = pair
    assert list(RNA.tokens) == alphabet.all_toks
    for s in SEQS:
        assert RNA.encode(s).tolist() == [alphabet.get_idx(c) for c in s if c != "-"]


@pytest.mark.parametrize("batched", [True, False])
def test_logits_hidden_contacts_match(pair, batched):
    ref_model, alphabet, ours = pair
    groups = [SEQS] if batched else [[s] for s in SEQS]
    for group in groups:
        # the official converter keeps '-' as a token; compare on ungapped input
        group = [s.replace("-", "") for s in group]
        tokens, ref = official_outputs(ref_model, alphabet, group)
        batch = collate(RNA, [RNA.encode(s) for s in group])
        assert torch.equal(batch.input_ids, tokens)
        with torch.no_grad():
            out = ours(batch.input_ids, batch.attention_mask, repr_layers=range(ours.num_layers + 1),
                       return_contacts=True)
        for i in range(len(group)):
            L = batch.lengths[i]
            n = L + 2
            # logits reach +-30 with the official default init (N(0,1) token embeddings, tied to
            # the LM head), where fp32 spacing is ~2e-6: 1e-5 is held relative to that scale
            scale = max(1.0, float(ref["logits"][i, :n].abs().max()) / 10)
            assert (out.logits[i, :n] - ref["logits"][i, :n]).abs().max() <= 1e-5 * scale
            for k in range(ours.num_layers + 1):
                diff = (batch.residues(out.hidden_states[k], i) - ref["representations"][k][i, 1 : L + 1]).abs().max()
                assert diff <= 1e-5, (k, float(diff))
            diff = (out.contacts[i, :L, :L] - ref["contacts"][i, :L, :L]).abs().max()
            assert diff <= 1e-5


def test_embed_api_matches_official(pair):
    ref_model, alphabet, ours = pair
    embs = ours.embed(SEQS, layer=-1)
    pooled = ours.embed(SEQS, layer=-1, pool="mean")
    for s, e, p in zip(SEQS, embs, pooled, strict=True):
        s = s.replace("-", "")
        _, ref = official_outputs(ref_model, alphabet, [s])
        r = ref["representations"][ref_model.num_layers][0, 1 : len(s) + 1].numpy()
        assert e.dtype == np.float32 and e.shape == r.shape
        assert np.abs(e - r).max() <= 1e-5
        assert np.abs(p - r.mean(0)).max() <= 1e-5


def test_cli_convert_official_to_nucfm_dir(pair, tmp_path):
    from nucfm.cli import main

    ref_model, alphabet, _ = pair
    _, _, args = official_model()
    src = tmp_path / "official.pth"
    write_official_pth(ref_model, args, src)
    assert main(["convert", "-m", str(src), "-o", str(tmp_path / "conv")]) == 0
    converted, direct = load_model(tmp_path / "conv"), load_model(src)
    # conversion is a lossless copy: the same weights as reading the .pth directly, bit for bit
    assert converted.config == direct.config
    want = direct.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in converted.state_dict().items())
    tokens, ref = official_outputs(ref_model, alphabet, ["GGGAAACUUCGGUUUCCC"])
    with torch.no_grad():
        scale = max(1.0, float(ref["logits"].abs().max()) / 10)  # as in test_logits_hidden_contacts_match
        assert (converted(tokens).logits - ref["logits"]).abs().max() <= 1e-5 * scale
