"""Parity with the official ``fm`` package's mRNA-FM (``fm.pretrained.mrna_fm_t12``, theme
``rna-3mer``): an official ``BioBertModel`` over the codon alphabet with random weights, saved in the
official .pth layout, loaded by nucfm; hidden states, logits and codon-variant scores compared."""

import argparse

import fm  # the official package (test extra): imported, never skipped
import numpy as np
import pytest
import torch

from nucfm import load_model
from nucfm.alphabet import CODON
from nucfm.checkpoint.rnafm import write_rnafm_pth
from nucfm.data.collate import collate

pytestmark = pytest.mark.parity

CDS = ["AUGGCUAAAGAAUUCUAA", "AUGUGGUAG", "AUGCCCGGGUUUAAACCCGGGUUUAAAGAGCUGCAGUGA", "AUGNNNACGUAA"]


def official_model(max_positions=1024):
    # mRNA-FM's published shape scaled down: no emb_layer_norm_before, no contact head in the file
    args = argparse.Namespace(arch="roberta_large", layers=2, embed_dim=32, ffn_embed_dim=64, attention_heads=4,
                              max_positions=max_positions, emb_layer_norm_before=False)
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna-3mer")
    torch.manual_seed(0)
    model = fm.BioBertModel(args, alphabet)
    with torch.no_grad():
        for p in model.parameters():  # layer norms away from identity too
            p.add_(torch.randn_like(p) * 0.02)
        model.embed_tokens.weight[alphabet.mask_idx].zero_()
    del model.contact_head
    return model.eval(), alphabet, args


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    model, alphabet, args = official_model()
    path = tmp_path_factory.mktemp("ckpt") / "mRNA-FM_pretrained.pth"
    write_rnafm_pth(model.state_dict(), args, path)
    return model, alphabet, load_model(path)


def test_codon_alphabet_is_the_official_one(pair):
    _, alphabet, ours = pair
    assert ours.alphabet == CODON and list(CODON.tokens) == alphabet.all_toks and len(CODON) == 73
    assert (CODON.unk_id, CODON.pad_id, CODON.mask_id) == (alphabet.unk_idx, alphabet.padding_idx, alphabet.mask_idx)
    conv = alphabet.get_batch_converter()
    for s in CDS:
        _, _, tokens = conv([("x", s)])
        assert CODON.encode(s).tolist() == tokens[0, 1:-1].tolist()  # NNN -> <unk> in both


def test_hidden_states_and_logits_match(pair):
    ref_model, alphabet, ours = pair
    assert ours.config.alphabet == "mrna-fm" and not ours.config.emb_layer_norm_before
    _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(CDS)])
    batch = collate(CODON, [CODON.encode(s) for s in CDS])
    assert torch.equal(batch.input_ids, tokens)
    with torch.no_grad():
        ref = ref_model(tokens, repr_layers=[0, 1, 2])
        out = ours(batch.input_ids, batch.attention_mask, repr_layers=range(3))
    for i in range(len(CDS)):
        n = batch.lengths[i] + 2
        scale = max(1.0, float(ref["logits"][i, :n].abs().max()) / 10)  # as in test_rnafm_parity
        assert (out.logits[i, :n] - ref["logits"][i, :n]).abs().max() <= 1e-5 * scale
        for k in range(3):
            assert (out.hidden_states[k][i, :n] - ref["representations"][k][i, :n]).abs().max() <= 1e-5


def test_embed_matches_official(pair):
    ref_model, alphabet, ours = pair
    embs = ours.embed(CDS)
    for s, e in zip(CDS, embs, strict=True):
        _, _, tokens = alphabet.get_batch_converter()([("x", s)])
        with torch.no_grad():
            r = ref_model(tokens, repr_layers=[2])["representations"][2][0, 1:-1].numpy()
        assert e.shape == (len(s) // 3, 32) and np.abs(e - r).max() <= 1e-5


def official_codon_llr(model, alphabet, cds: str, codon: int, alt: str) -> float:
    """The masked marginal with the official model and converter: mask codon ``codon`` (0-based),
    log p(alt codon) - log p(ref codon) at it."""
    _, _, tokens = alphabet.get_batch_converter()([("x", cds)])
    ref = tokens[0, codon + 1].item()
    tokens[0, codon + 1] = alphabet.mask_idx
    with torch.no_grad():
        logp = torch.log_softmax(model(tokens)["logits"][0, codon + 1], -1)
    return float(logp[alphabet.get_idx(alt)] - logp[ref])


def test_codon_vep_matches_the_official_scoring(pair, tmp_path):
    import pandas as pd

    from nucfm.tasks.codon_vep import score_codon_file

    ref_model, alphabet, ours = pair
    fasta = tmp_path / "cds.fa"
    fasta.write_text(f">g1\n{CDS[0]}\n>g2\n{CDS[2]}\n")
    # g1 = AUG GCU AAA GAA UUC UAA: pos 6 U>C GCU>GCC (Ala, synonymous); pos 7 A>G AAA>GAA (Lys>Glu);
    # pos 7 A>U AAA>UAA (stop gained); pos 2 U>C AUG>ACG (start lost); pos 17 A>G UAA>UGA (stop kept)
    variants = pd.DataFrame({"chrom": ["g1", "g1", "g1", "g1", "g1", "g2", "g2"],
                             "pos": [6, 7, 7, 2, 17, 30, 3],
                             "ref": ["U", "A", "A", "T", "A", "G", "G"], "alt": ["C", "G", "U", "C", "G", "A", "C"]})
    variants.to_csv(tmp_path / "v.tsv", sep="\t", index=False)
    score_codon_file(ours, fasta, tmp_path / "v.tsv", tmp_path / "out.tsv")
    out = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    assert list(out.status) == ["ok"] * 7
    assert list(out.consequence[:5]) == ["synonymous_variant", "missense_variant", "stop_gained", "start_lost",
                                         "stop_retained_variant"]
    seqs = {"g1": CDS[0], "g2": CDS[2]}
    for r in out.itertuples():
        want = official_codon_llr(ref_model, alphabet, seqs[r.chrom], int(r.codon) - 1, r.codon_alt)
        assert abs(r.score - want) <= 1e-4, (r, want)


def test_long_cds_is_windowed_like_the_official_model_on_its_window(tmp_path):
    """A CDS longer than the model is read in a window of max_len codons around the masked codon."""
    ref_model, alphabet, args = official_model(max_positions=12)  # 10 codons
    path = tmp_path / "m.pth"
    write_rnafm_pth(ref_model.state_dict(), args, path)
    ours = load_model(path)
    assert ours.max_len == 10
    from nucfm.tasks.codon_vep import masked_codon_logits

    rng = np.random.default_rng(0)
    cds = "AUG" + "".join(rng.choice(list(CODON.tokens[4:67])) for _ in range(24)) + "UAA"  # 26 codons
    ids = {"x": CODON.encode(cds)}
    for codon in (0, 13, 25):
        lo = min(max(0, codon - 5), 26 - 10)
        window = cds[3 * lo : 3 * (lo + 10)]
        got = masked_codon_logits(ours, ids, [("x", codon)])[0]
        want = official_codon_llr(ref_model, alphabet, window, codon - lo, "GAG")
        idx = alphabet.get_idx
        ref_codon = cds[3 * codon : 3 * codon + 3]
        assert abs((got[idx("GAG")] - got[idx(ref_codon)]) - want) <= 1e-4


def test_cli_convert_official_mrnafm(pair, tmp_path):
    from nucfm.cli import main

    ref_model, alphabet, _ = pair
    _, _, args = official_model()
    src = tmp_path / "mRNA-FM_pretrained.pth"
    write_rnafm_pth(ref_model.state_dict(), args, src)
    assert main(["convert", "-m", str(src), "-o", str(tmp_path / "conv")]) == 0
    converted, direct = load_model(tmp_path / "conv"), load_model(src)
    assert converted.alphabet == CODON and converted.config == direct.config
    want = direct.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in converted.state_dict().items())
