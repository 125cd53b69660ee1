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


# ---- fold and contacts read their input as a stream: chunk sizes, warnings, flat memory ----------
ODD_IDS = ["a", "a", "A", "a#2", "a/1", "a_1", "__keys__", "e0", "e1", "e2", "e3", "e4", "e5", "one", "nn", "odd",
           "long", "", "x"]


def _odd_fasta(path):
    """Repeated, colliding and empty ids; 6 empty records, a 1-nt, an all-N one, odd letters and
    gaps, one record long enough for local mode (max_span 30)."""
    seqs = {"one": "G", "nn": "NNNNNN", "odd": "GGGXPAA--ACCC", "long": _seq(90, 5)}
    seqs |= {f"e{k}": "" for k in range(6)}
    path.write_text("".join(f">{rid}\n{seqs.get(rid, _seq(12 + k, k))}\n" for k, rid in enumerate(ODD_IDS)))
    return path


def _fake_probs(seqs, workers=1, max_span=None, progress=None, **_):
    """Deterministic symmetric maps that depend on each sequence alone (never on its batch), sparse
    upper triangles in local mode, as StructureModel.predict_probs returns them."""
    from scipy import sparse

    from nucfm.models.structure import span_for

    out = []
    for s in seqs:
        x = np.frombuffer(s.encode(), np.uint8).astype(np.float64)
        r = np.arange(len(s))
        m = (np.cos(np.outer(x, x) + np.add.outer(r, r)) ** 2).astype(np.float32)
        span = span_for(len(s), max_span)
        out.append(m if span is None else sparse.csr_matrix(np.triu(m, 1) - np.triu(m, span + 1)))
        if progress is not None:
            progress.update(len(s))
    return out


@pytest.fixture
def fake_model(monkeypatch):
    """A tiny structure model whose predictions are :func:`_fake_probs`; zip member times fixed,
    so that files written at different seconds compare byte for byte."""
    import time

    fixed = time.struct_time((2024, 1, 1, 0, 0, 0, 0, 1, -1))
    monkeypatch.setattr(time, "localtime", lambda *a: fixed)
    model = _tiny_structure_model(features=("onehot",), blocks=1)
    monkeypatch.setattr(model, "predict_probs", _fake_probs)
    return model


def _run(command, model, fa, out, chunk, **kw):
    import dataclasses

    from nucfm.tasks.contacts import contacts_fasta
    from nucfm.tasks.structure import fold_fasta

    if command == "fold":
        return fold_fasta(model, str(fa), str(out / "s.dbn"), probs_path=str(out / "p.npz"), max_span=30,
                          chunk_records=chunk, show_progress=False, **kw)
    model.config = dataclasses.replace(model.config, task="contact")
    return contacts_fasta(model, str(fa), str(out / "c.npz"), max_span=30, chunk_records=chunk, show_progress=False,
                          **kw)


@pytest.mark.parametrize("command", ["fold", "contacts"])
def test_any_chunk_size_writes_the_same_files_as_everything_in_memory(tmp_path, fake_model, command):
    """Every output, for chunks of 1, 2 and all records, has the bytes of the outputs written from
    lists of every record (the way fold and contacts wrote them before they streamed)."""
    from nucfm.alphabet import structure_letters
    from nucfm.io.structure import StructureRecord, write_structures
    from nucfm.paths import unique_names
    from nucfm.tasks.contacts import _top_path, _write_top, top_pairs
    from nucfm.tasks.structure import decode_structure, write_pair_probs

    fa = _odd_fasta(tmp_path / "in.fa")
    seqs = [structure_letters(s, drop_gaps=True) for s in fa.read_text().splitlines()[1::2]]
    keys = unique_names(ODD_IDS)
    maps = _fake_probs(seqs, max_span=30)
    want = tmp_path / "want"
    want.mkdir()
    if command == "fold":
        # as the chunks keep them: float16 dense maps, float32 sparse ones
        kept = [p.astype(np.float16) if not hasattr(p, "tocoo") else p.astype(np.float32) for p in maps]
        opts = fake_model.decode_options
        write_structures([StructureRecord(i, s, decode_structure(p, s, opts)) for i, s, p in zip(ODD_IDS, seqs, maps)],
                         want / "s.dbn")
        write_pair_probs(want / "p.npz", keys, kept)
        names = ["s.dbn", "p.npz"]
    else:
        kept = [p.astype(np.float16) if not hasattr(p, "tocoo") else p.astype(np.float32) for p in maps]
        write_pair_probs(want / "c.npz", keys, kept)
        _write_top(_top_path(str(want / "c.npz")), [(k, i, top_pairs(p, len(s))) for k, i, s, p in
                                                    zip(keys, ODD_IDS, seqs, kept)])
        names = ["c.npz", "c.top.tsv"]
    for chunk in (1, 2, 100):
        out = tmp_path / f"c{chunk}"
        out.mkdir()
        summary = _run(command, fake_model, fa, out, chunk)
        assert summary["records"] == len(ODD_IDS) and summary["empty"] == 6
        for name in names:
            assert (out / name).read_bytes() == (want / name).read_bytes(), (chunk, name)
        assert not list(out.glob("*.parts"))
    with np.load(tmp_path / "c1" / names[-1 if command == "fold" else 0]) as z:
        assert list(z["__keys__"]) == unique_names(keys, reserved=("__keys__",))
        assert "long.sparse" in z.files and "__keys__#2.npy" not in z.files and "__keys__#2" in z.files


def test_odd_record_warnings_name_five_and_count_all(tmp_path, fake_model, caplog):
    fa = _odd_fasta(tmp_path / "in.fa")
    with caplog.at_level("WARNING", logger="nucfm"):
        summary = _run("fold", fake_model, fa, tmp_path, 3)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["6 empty record(s) written with no pairs: e0, e1, e2, e3, e4 ...",
                     "1 1-nt record(s) written with no pairs: one",
                     "1 all-N record(s) written (no known nucleotide: predictions carry no information): nn",
                     "8 residue(s) other than A, C, G, U/T are read as N (unknown nucleotide)"]
    assert {k: summary[k] for k in ("records", "empty", "single", "all_n", "converted", "local", "windowed")} == {
        "records": 19, "empty": 6, "single": 1, "all_n": 1, "converted": 8, "local": 1, "windowed": 0}


@pytest.mark.parametrize("command", ["fold", "contacts"])
def test_resume_after_one_finished_chunk_computes_the_rest_only(tmp_path, fake_model, monkeypatch, command):
    fa = _odd_fasta(tmp_path / "in.fa")
    (tmp_path / "straight").mkdir()
    _run(command, fake_model, fa, tmp_path / "straight", 4)
    calls, stop = [], [2]

    def second_chunk_stops(seqs, **kw):  # the first run: Ctrl-C in the second chunk
        calls.append(len(seqs))
        if len(calls) in stop:
            raise KeyboardInterrupt
        return _fake_probs(seqs, **kw)

    monkeypatch.setattr(fake_model, "predict_probs", second_chunk_stops)
    out = tmp_path / "resumed"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        _run(command, fake_model, fa, out, 4)
    parts = next(out.glob("*.parts"))
    assert sorted(p.name for p in parts.glob("chunk_*")) == ["chunk_000000.npz"]
    calls.clear()
    stop.clear()
    _run(command, fake_model, fa, out, 4)
    assert calls == [4, 4, 4, 3]  # 19 records in chunks of 4: the first was not computed again
    assert not parts.exists()
    for f in (tmp_path / "straight").iterdir():
        assert (out / f.name).read_bytes() == f.read_bytes(), f.name


@pytest.mark.parametrize("command", ["fold", "contacts"])
def test_memory_does_not_grow_with_the_number_of_records(tmp_path, fake_model, command):
    """Ten times the records, about the same peak: a few chunks, a record and a few bytes per
    record while the input is first read (the hashes that make keys unique); the lists fold and
    contacts kept before cost 1.4 and 1.1 kB per record here."""
    import tracemalloc

    peaks = []
    for n in (150, 150, 1500):  # the first run imports what the others need: not measured
        fa = tmp_path / f"in{n}.fa"
        fa.write_text("".join(f">r{k}\n{_seq(8, k)}\n" for k in range(n)))
        tracemalloc.start()
        _run(command, fake_model, fa, tmp_path, 50)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert (peaks[2] - peaks[1]) / 1350 < 200, peaks  # bytes per record; 22-48 measured now
