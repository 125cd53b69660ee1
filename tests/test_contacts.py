"""Contact (3D closeness) maps: metrics by hand, the contact recipe (train, resume, init_from),
local mode of the structure models, parallel features, the contacts / score-contacts commands
and odd inputs."""

import gzip
import json
import random

import numpy as np
import pytest
import torch

from nucfm.errors import InputError
from nucfm.metrics import average_contact_scores, contact_hits, score_contacts


# ---- metrics, golden values by hand ---------------------------------------------------------------
def test_contact_hits_by_hand():
    L = 40  # long-range candidates: j - i >= 24; L/10 = 4, L/5 = 8 predictions
    p = np.zeros((L, L))
    ranked = [(0, 39), (1, 38), (2, 37), (3, 36), (0, 30), (5, 35), (6, 33), (7, 34), (8, 38)]
    for r, (i, j) in enumerate(ranked):
        p[i, j] = 1.0 - r / 100
    p[10, 12] = 5.0  # short range: never counted in the long-range ranking
    contacts = [(0, 39), (2, 37), (0, 30), (7, 34), (10, 12), (14, 26)]
    assert contact_hits(p, contacts, L, k=10) == (2, 4)  # (0,39) (2,37) among the top 4
    assert contact_hits(p, contacts, L, k=5) == (4, 8)  # + (0,30) (7,34)
    # medium range (12-23): one contact (14, 26); all medium scores are 0, so ties break row-major
    assert contact_hits(p, contacts, L, k=10, separation=(12, 23)) == (0, 4)
    assert contact_hits(p, [(10, 12)], L, k=5) is None  # no long-range contact: skipped


def test_average_contact_scores_by_hand():
    a = {"long_L/5": (2, 4)}
    b = {"long_L/5": (1, 1)}
    c = {"long_L/5": None}
    avg = average_contact_scores([a, b, c])["long_L/5"]
    assert avg["precision"] == pytest.approx((0.5 + 1.0) / 2)
    assert avg["pooled"] == pytest.approx(3 / 5)
    assert avg["precision_all"] == pytest.approx(1.5 / 3)
    assert (avg["chains"], avg["skipped"]) == (2, 1)
    keys = score_contacts(np.zeros((30, 30)), [(0, 29)], 30)
    assert set(keys) == {f"{r}_L/{k}" for r in ("long", "medium") for k in (10, 5, 2, 1)}


# ---- data --------------------------------------------------------------------------------------
def _seq(n, seed):
    rng = random.Random(seed)
    return "".join(rng.choice("ACGU") for _ in range(n))


def _contact_file(path, n=6, seed=0):
    rows = []
    for k in range(n):
        s = _seq(20 + 3 * k, seed + k)
        L = len(s)
        contacts = [[i, i + d] for i in range(L) for d in (1, 2) if i + d < L] + [[0, L - 1], [1, L - 2], [2, L - 5]]
        rows.append(json.dumps({"id": f"c{k}", "seq": s, "contacts": contacts}))
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    return path


def test_read_contacts_checks_pairs(tmp_path):
    from nucfm.io.contacts import read_contacts

    path = _contact_file(tmp_path / "c.jsonl.gz")
    recs = read_contacts(path)
    assert len(recs) == 6 and recs[0].pairs == recs[0].contacts and recs[0].contacts[0] == (0, 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "seq": "ACGU", "contacts": [[0, 4]]}\n')
    with pytest.raises(InputError, match="outside"):
        read_contacts(bad)


# ---- the recipe --------------------------------------------------------------------------------
def _cfg(tmp_path, out, data, **kw):
    from nucfm.train.structure import TrainStructureConfig

    d = {"task": "contact", "train": str(data), "valid": str(data), "output": str(tmp_path / out), "lm": "none",
         "features": "onehot", "blocks": 1, "channels": 4, "reduction": 4, "crop": 24, "batch_pairs": 2 * 576,
         "max_steps": 6, "max_minutes": 0, "eval_every": 3, "save_every": 2, "log_every": 1, "threads": 1,
         "warmup": 2} | kw
    return TrainStructureConfig.from_dict(d)


def test_contact_recipe_trains_and_resumes(tmp_path):
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.train.structure import train_structure

    data = _contact_file(tmp_path / "c.jsonl.gz")
    summary = train_structure(_cfg(tmp_path, "full", data))
    assert summary["task"] == "contact" and 0 <= summary["valid_score"] <= 1
    assert "long_L/5" in summary["valid"]
    model = load_structure_model(tmp_path / "full" / "best")
    assert model.config.task == "contact"
    assert json.loads((tmp_path / "full" / "best" / "config.json").read_text())["metadata"]["kind"] == "contact"
    assert train_structure(_cfg(tmp_path, "cut", data), interrupt_at=3) is None
    train_structure(_cfg(tmp_path, "cut", data))

    def losses(out):
        rows = [json.loads(x) for x in (tmp_path / out / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in rows if "loss" in r}

    full, cut = losses("full"), losses("cut")
    assert sorted(full) == sorted(cut) == list(range(1, 7))
    assert all(abs(full[s] - cut[s]) < 1e-6 for s in full)


def test_init_from_copies_weights_and_refuses_mismatches(tmp_path):
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.train.structure import StructureRecipe, train_structure

    data = _contact_file(tmp_path / "c.jsonl.gz")
    train_structure(_cfg(tmp_path, "src", data, task="structure", train=str(_dbn(tmp_path)),
                         valid=str(_dbn(tmp_path)), max_steps=2))
    src = load_structure_model(tmp_path / "src" / "best").head.state_dict()
    recipe = StructureRecipe(_cfg(tmp_path, "dst", data, init_from=str(tmp_path / "src" / "best")))
    recipe.setup()
    recipe.build()
    for k, v in recipe.head.state_dict().items():
        assert torch.equal(v, src[k]), k
    for change, words in (({"channels": 8}, ["channels=4", "--channels 4"]),
                          ({"features": "onehot,bpp"}, ["features=onehot", "--features onehot"]),
                          ({"channels": 8, "blocks": 3, "features": "onehot,bpp"},  # every difference at once
                           ["features=onehot", "channels=4", "blocks=", "--features onehot", "--channels 4"])):
        bad = StructureRecipe(_cfg(tmp_path, "bad", data, init_from=str(tmp_path / "src" / "best"), **change))
        with pytest.raises(InputError) as e:
            bad.setup()  # before the features are computed
        assert all(w in str(e.value) for w in words), str(e.value)
        assert "\n" not in str(e.value) and not hasattr(bad, "train_set")


def _dbn(tmp_path):
    path = tmp_path / "s.dbn"
    if not path.exists():
        path.write_text("".join(f">s{k}\n{'G' * 5}{_seq(6 + k, k)}{'C' * 5}\n"
                                f"((((({'.' * (6 + k)})))))\n" for k in range(4)))
    return path


# ---- local mode ----------------------------------------------------------------------------------
def _tiny_structure_model(features=("onehot", "bpp"), blocks=2):
    from nucfm.models.config import PairHeadConfig, StructureConfig
    from nucfm.models.heads import PairHead
    from nucfm.models.structure import StructureModel

    torch.manual_seed(0)
    hc = PairHeadConfig(embed_dim=0, reduction=4, channels=4, blocks=blocks, extra_channels=17 if "bpp" in
                        features else 16)
    head = PairHead(hc)
    for m in head.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return StructureModel(head, StructureConfig(head=hc.to_dict(), features=features))


def test_local_mode_equals_global_when_the_span_covers_everything():
    from nucfm.tasks.structure import decode_structure

    model = _tiny_structure_model()
    s = "GGGGAAACCCCAUGCAUGGGAAACCCAUGC"
    whole = model.predict_probs([s])[0]
    local = model.predict_local(s, span=len(s))
    dense = local.toarray()
    upper = np.triu(whole, 1)
    # bpp from RNAplfold (W = span = L) vs RNAfold -p agree to ~1e-6 (plfold's cutoff)
    assert np.abs(np.where(upper > 1e-4, upper, 0) - dense).max() < 1e-5
    from nucfm.models.config import DecodeOptions

    opts = DecodeOptions(threshold=float(np.median(upper[upper > 0])))
    assert decode_structure(local, s, opts) == decode_structure(whole, s, opts)


def test_local_mode_blocks_equal_the_whole_map_and_bound_memory():
    """Blocks cut with the receptive-field margin give exactly the whole-map probabilities
    inside the span (one-hot inputs: no thermodynamics involved), on a sequence long enough
    for several blocks; the result is sparse, O(L * span)."""
    model = _tiny_structure_model(features=("onehot",), blocks=2)
    s = _seq(1400, 3)  # block 1024, overlap 2 * (span + radius): two blocks
    span = 20
    local = model.predict_local(s, span)
    whole = np.triu(model.predict_probs([s])[0], 1)
    band = np.triu(whole, 1) - np.triu(whole, span + 1)
    assert np.abs(np.where(band > 1e-4, band, 0) - local.toarray()).max() < 1e-5
    assert local.nnz <= len(s) * span
    i, j = local.nonzero()
    assert ((j > i) & (j - i <= span)).all()


def test_long_sequences_fold_locally_with_bounded_output(tmp_path):
    from nucfm.tasks.structure import fold_sequences

    model = _tiny_structure_model()
    s = _seq(3000, 4)
    (pairs, probs), = fold_sequences(model, [s], max_span=30)
    assert probs.shape == (3000, 3000) and probs.nnz <= 3000 * 30
    assert all(0 < j - i <= 30 for i, j in pairs)


# ---- parallel features -------------------------------------------------------------------------
def test_parallel_features_identical_to_serial():
    from nucfm.data.structure_features import bpp_maps

    seqs = [_seq(n, n) for n in (40, 25, 61, 33, 2, 0)]
    feats = ("onehot", "bpp", "bpp-langdon2018")
    serial = bpp_maps(seqs, feats)
    parallel = bpp_maps(seqs, feats, workers=2)
    for a, b in zip(serial, parallel):
        assert a.keys() == b.keys() == {"bpp", "bpp-langdon2018"}
        for f in a:
            assert np.array_equal(a[f], b[f])
    assert not np.array_equal(serial[0]["bpp"], serial[0]["bpp-langdon2018"])  # each worker loaded its set
    local_s = bpp_maps(seqs[:3], feats, spans=[10, 10, None])
    local_p = bpp_maps(seqs[:3], feats, spans=[10, 10, None], workers=2)
    for a, b in zip(local_s, local_p):
        for f in a:
            x, y = (a[f], b[f]) if isinstance(a[f], tuple) else ((a[f],), (b[f],))
            assert all(np.array_equal(u, v) for u, v in zip(x, y))


# ---- commands and odd inputs ---------------------------------------------------------------------
def test_cli_contacts_and_score_contacts(tmp_path, capsys):
    from nucfm.checkpoint.structure import save_structure_model
    from nucfm.cli import main
    from nucfm.models.config import StructureConfig

    model = _tiny_structure_model(features=("onehot",))
    mdir = tmp_path / "m"
    save_structure_model(model.head, StructureConfig(head=model.config.head, features=("onehot",), task="contact"),
                         mdir, metadata={"kind": "contact"})
    ref = _contact_file(tmp_path / "ref.jsonl.gz", n=3)
    fa = tmp_path / "in.fa"
    recs = [json.loads(x) for x in gzip.open(ref, "rt")]
    odd = ">empty\n\n>one\nA\n>nn\nNNNNNNNN\n>odd\nACGXP\n"
    fa.write_text("".join(f">{r['id']}\n{r['seq']}\n" for r in recs) + odd)
    out = tmp_path / "maps.npz"
    assert main(["contacts", "-i", str(fa), "-o", str(out), "-m", str(mdir), "--plot", str(tmp_path / "plots"),
                 "--top-k", "5", "--ref", str(ref), "--threads", "1"]) == 0
    z = np.load(out)
    assert list(z["__keys__"]) == ["c0", "c1", "c2", "empty", "one", "nn", "odd"]
    assert z["c0"].shape == (20, 20) and z["empty"].shape == (0, 0) and z["one"].shape == (1, 1)
    top = (tmp_path / "maps.top.tsv").read_text().splitlines()
    assert top[0].split("\t") == ["key", "id", "i", "j", "separation", "probability"]
    assert sum(line.startswith("c0\t") for line in top) == 5
    assert all(int(line.split("\t")[4]) >= 6 for line in top[1:])
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["c0.png", "c1.png", "c2.png", "nn.png",
                                                                      "odd.png"]
    assert "long\tL/5" in capsys.readouterr().out
    assert main(["score-contacts", "--pred", str(out), "--ref", str(ref), "--json", str(tmp_path / "s.json")]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "range\ttop\tprecision\tpooled\tchains\tskipped" and "medium\tL/1" in printed
    assert json.loads((tmp_path / "s.json").read_text())["scored"] == 3
    # arguments are checked before any model is loaded
    assert main(["contacts", "-i", str(fa), "-o", str(tmp_path / "x.tsv"), "-m", "nope"]) == 2
    assert main(["contacts", "-i", str(fa), "-o", str(out), "-m", "nope", "--top-k", "0"]) == 2
    assert main(["score-contacts", "--pred", str(tmp_path / "none.npz"), "--ref", str(ref)]) == 2


def test_fold_odd_records_warn_and_keep_every_record(tmp_path, caplog):
    from nucfm.checkpoint.structure import save_structure_model
    from nucfm.cli import main
    from nucfm.io.structure import read_structures

    model = _tiny_structure_model()
    save_structure_model(model.head, model.config, tmp_path / "m")
    fa = tmp_path / "in.fa"
    fa.write_text(">empty\n\n>one\nG\n>nn\nNNNNNNNNNN\n>odd\nGGGXPAAACCC\n>long\n" + _seq(300, 9) + "\n")
    with caplog.at_level("WARNING", logger="nucfm"):
        assert main(["fold", "-i", str(fa), "-o", str(tmp_path / "o.dbn"), "--model", str(tmp_path / "m"),
                     "--max-span", "50", "--threads", "2", "--probs", str(tmp_path / "p.npz")]) == 0
    text = caplog.text
    assert "1 empty record" in text and "1 1-nt record" in text and "1 all-N record" in text
    assert "2 residue(s) other than" in text
    out = read_structures(tmp_path / "o.dbn")
    assert [r.id for r in out] == ["empty", "one", "nn", "odd", "long"]
    assert all(j - i <= 50 for i, j in out[-1].pairs)
    z = np.load(tmp_path / "p.npz")
    assert "long.sparse" in z.files and z["long.sparse"].shape[1] == 3
    assert main(["fold", "-i", str(fa), "-o", str(tmp_path / "o2.dbn"), "--max-span", "0"]) == 2


def test_parallel_prediction_identical_to_one_thread():
    model = _tiny_structure_model()
    seqs = [_seq(n, n + 7) for n in (30, 12, 45, 0, 1, 26)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = model.predict_probs(seqs)
    finally:
        torch.set_num_threads(threads)
    parallel = model.predict_probs(seqs, workers=2)
    assert [p.shape for p in parallel] == [p.shape for p in serial]
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel))
