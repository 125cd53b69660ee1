"""Parity with the official ``gpn.model.GPNForMaskedLM`` (the current ``model_type: GPN``
format): each encoder and embedding, and GPN-MSA (RoFormer + auxiliary alignment features), built
from the official package with random weights and saved with ``save_pretrained``; VEP scores of
GPN-MSA against the official ``gpn.msa.vep.VEPInference`` on a Zarr alignment (its release format)."""

import numpy as np
import pytest
import torch
from gpn.legacy import GPNRoFormerConfig, GPNRoFormerForMaskedLM
from gpn.model import GPNConfig as OfficialConfig  # the official package (test extra): never skipped
from gpn.model import GPNForMaskedLM

from nucfm import load_model, save_model
from nucfm.data.collate import collate
from nucfm.io.alignment import read_alignment
from nucfm.io.variants import Variant
from nucfm.models import GPN
from nucfm.tasks.variants import score_variants

pytestmark = pytest.mark.parity

ENCODERS = {
    "convnet": dict(encoder="convnet"),
    "convnet-embedding-bias": dict(encoder="convnet", embedding="embedding", bias=True),
    "convnet-depthwise-nohead": dict(encoder="convnet", depthwise=True, mlm_head_transform=False),
    "bytenet": dict(encoder="bytenet"),
    "bytenet-slim": dict(encoder="bytenet", slim=True),
    "roformer": dict(encoder="roformer", num_attention_heads=4, max_position_embeddings=96),
    "gpn-msa": dict(encoder="roformer", vocab_size=6, n_aux_features=3 * 5, num_attention_heads=4,
                    max_position_embeddings=96),
    # the legacy class of the released songlab/gpn-msa-sapiens (model_type GPNRoFormer)
    "gpn-msa-legacy": dict(legacy=True, vocab_size=6, n_aux_features=3 * 5, num_attention_heads=4,
                           max_position_embeddings=96),
}


def official_model(seed=0, legacy=False, **kw):
    torch.manual_seed(seed)
    if legacy:
        cfg = GPNRoFormerConfig(num_hidden_layers=3, hidden_size=32, intermediate_size=48, **kw)
        model = GPNRoFormerForMaskedLM(cfg).eval()
    else:
        cfg = OfficialConfig(num_hidden_layers=3, hidden_size=32, intermediate_size=48, first_kernel_size=5,
                             rest_kernel_size=3, dilation_max=4, dilation_cycle=3, **kw)
        model = GPNForMaskedLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # biases and layer norms away from their init too
            p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture(scope="module", params=list(ENCODERS))
def pair(request, tmp_path_factory):
    official = official_model(**ENCODERS[request.param])
    path = tmp_path_factory.mktemp(request.param)
    official.save_pretrained(path)
    return official, load_model(path)


def inputs(official, B, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, official.config.vocab_size, (B, T), generator=g)
    n = official.config.n_aux_features // 5
    aux = torch.randint(0, 5, (B, T, n), generator=g) if n else None
    return ids, aux


@pytest.mark.parametrize("T", [1, 7, 90])
def test_logits_match_official(pair, T):
    official, ours = pair
    assert isinstance(ours, GPN)
    ids, aux = inputs(official, 3, T, seed=T)
    with torch.no_grad():
        ref = official(input_ids=ids, aux_features=aux).logits
        got = ours.token_logits(ids, aux=aux)
    assert got.shape == ref.shape == (3, T, official.config.vocab_size)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_hidden_states_match_official(pair):
    official, ours = pair
    ids, aux = inputs(official, 2, 50)
    with torch.no_grad():
        embedding = getattr(official.model, "embeddings", None) or official.model.embedding  # legacy name
        emb = embedding(input_ids=ids, aux_features=aux)
        torch.testing.assert_close(ours.hidden(ids, None, 0, aux=aux), emb, atol=0, rtol=0)
        torch.testing.assert_close(ours.hidden(ids, None, -1, aux=aux),
                                   official.model(input_ids=ids, aux_features=aux).last_hidden_state,
                                   atol=1e-5, rtol=1e-5)
        x = emb
        for i, layer in enumerate(official.model.encoder.layer):
            if isinstance(official, GPNRoFormerForMaskedLM) or official.config.encoder == "roformer":
                out = layer(x, None, official.model.encoder.embed_positions(x.shape[:-1])[None, None])
                x = out[0] if isinstance(out, tuple) else out
            else:
                x = layer(x)
            want = ours.hidden(ids, None, i + 1, aux=aux) if i + 1 < ours.num_layers else ours._encode(ids, None, i + 1,
                                                                                                     aux)
            torch.testing.assert_close(want, x, atol=1e-5, rtol=1e-5)


def test_padded_batch_equals_single_sequences(pair):
    _, ours = pair  # (GPN-MSA without aux features: the official --disable_aux_features input)
    seqs = ["acgtnacgtaacc", "ggc", "ACGTACGTTTGACCA" * 3]
    a = ours.alphabet
    batch = collate(a, [a.encode(s) for s in seqs])
    with torch.no_grad():
        together = ours.token_logits(batch.input_ids, batch.attention_mask)
        for i, s in enumerate(seqs):
            alone = ours.token_logits(torch.from_numpy(a.encode(s))[None])[0]
            torch.testing.assert_close(batch.residues(together, i), alone, atol=1e-5, rtol=1e-5)


def test_save_load_roundtrip(pair, tmp_path):
    official, ours = pair
    save_model(ours, tmp_path / "ck")
    again = load_model(tmp_path / "ck")
    ids, aux = inputs(official, 2, 40)
    with torch.no_grad():
        torch.testing.assert_close(again.token_logits(ids, aux=aux), ours.token_logits(ids, aux=aux), atol=0, rtol=0)


# ---- GPN-MSA variant scores against the official VEP code on its own alignment format ----------
SPECIES = 4  # target + 3 aligned, as the gpn-msa model above
W = 16


def _random_alignment(L, seed):
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGTacgt-N", dtype=np.uint8)
    msa = rng.choice(letters[:8], size=(L, SPECIES))
    msa[:, 1:][rng.random((L, SPECIES - 1)) < 0.2] = ord("-")  # gaps and missing species
    msa[rng.random(L) < 0.05, 1:] = ord("N")
    return msa.astype(np.uint8)


def _write_zarr(path, chroms):
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    for name, msa in chroms.items():
        root.create_array(name, data=msa, chunks=(64, SPECIES))


def official_vep(model_dir, zarr_path, chrom, positions, refs, alts):
    """Scores from gpn.msa.vep (its tokenize_function and MLMforVEPModel, without the Trainer)."""
    from gpn.data import GenomeMSA
    from gpn.msa.vep import VEPInference

    inf = VEPInference(str(model_dir), GenomeMSA(str(zarr_path)), W)
    batch = inf.tokenize_function({"chrom": [chrom] * len(positions), "pos": positions, "ref": refs, "alt": alts})
    t = {k: torch.as_tensor(np.asarray(v)) for k, v in batch.items()}
    with torch.no_grad():
        return inf.model.eval()(**t).numpy()


@pytest.fixture(scope="module")
def msa_setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("msa")
    official = official_model(**ENCODERS["gpn-msa"])
    official.save_pretrained(d / "model")
    L = 120
    msa = _random_alignment(L, 3)
    msa[:, 0] = np.frombuffer(b"ACGTacgt", dtype=np.uint8)[np.random.default_rng(4).integers(0, 8, L)]
    # the official code slices the array without padding: its copy of the contig carries W/2 gaps
    # each side, which is what nucfm reads past a contig end
    padded = np.full((L + W, SPECIES), ord("-"), dtype=np.uint8)
    padded[W // 2 : W // 2 + L] = msa
    _write_zarr(d / "ours.zarr", {"chr1": msa})
    _write_zarr(d / "official.zarr", {"chr1": padded})
    return d, msa


def test_msa_vep_matches_official(msa_setup):
    d, msa = msa_setup
    ours = load_model(d / "model")
    aln = read_alignment(d / "ours.zarr")
    L = len(msa)
    starts = [0, 1, 5, 8, 30, 31, 60, 90, L - 8, L - 2, L - 1]  # contig edges, gaps in the other species
    refs = [chr(msa[s, 0]).upper() for s in starts]
    alts = ["ACGT"[("ACGT".index(r) + 1 + k % 3) % 4] for k, r in enumerate(refs)]
    got = score_variants(ours, aln, [Variant("chr1", s, r, a) for s, r, a in zip(starts, refs, alts)],
                         window=W)["score"]
    ref = official_vep(d / "model", d / "official.zarr", "chr1", [s + 1 + W // 2 for s in starts], refs, alts)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    assert np.abs(got).max() > 0.01  # not trivially equal


# ---- single-genome GPN-format models: VEP against GPN's scoring rule ----------------------------
@pytest.mark.parametrize("name", ["convnet", "bytenet-slim", "roformer"])
def test_vep_matches_official_rule(name, tmp_path):
    from nucfm.io.genome import Genome

    from reference import official_vep_scores

    official = official_model(**ENCODERS[name])
    official.save_pretrained(tmp_path / "model")
    ours = load_model(tmp_path / "model")
    rng = np.random.default_rng(5)
    chrom = "".join(rng.choice(list("ACGT"), 80))
    chrom = chrom[:30] + chrom[30:40].lower() + "NN" + chrom[42:]
    (tmp_path / "g.fa").write_text(f">c\n{chrom}\n")
    genome = Genome(tmp_path / "g.fa")
    starts = [0, 1, 20, 35, 50, 78, 79]  # contig edges, soft-masked bases, N in the window
    variants = [Variant("c", s, chrom[s].upper(), "ACGT"[("ACGT".index(chrom[s].upper()) + 1) % 4]) for s in starts]
    got = score_variants(ours, genome, variants, window=W)["score"]
    ref = official_vep_scores(official, genome, variants, window=W)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    assert np.abs(got).max() > 0.01


@pytest.mark.parametrize("change,message", [
    ({"hidden_act": "relu"}, "hidden_act"),
    ({"vocab_size": 9}, "vocab_size"),
    ({"tie_word_embeddings": True}, "tie_word_embeddings"),
    ({"encoder": "lstm"}, "unknown GPN encoder"),
])
def test_refuses_what_it_cannot_reproduce(tmp_path, change, message):
    import json

    from nucfm.errors import InputError

    official_model(**ENCODERS["bytenet"]).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(InputError, match=message):
        load_model(tmp_path)


def test_refuses_foreign_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    from nucfm.errors import InputError

    official_model(**ENCODERS["convnet"]).save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["model.extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(InputError, match="unexpected"):
        load_model(tmp_path)
