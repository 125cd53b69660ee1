"""Structure formats (dot-bracket, BPSEQ, CT, pair lists) and pair <-> matrix conversion."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nucfm.errors import InputError
from nucfm.io.structure import (
    StructureRecord,
    format_bpseq,
    format_ct,
    matrix_to_pairs,
    pairs_to_matrix,
    parse_dot_bracket,
    pseudoknot_pages,
    read_pair_list,
    read_structures,
    remove_pseudoknots,
    to_dot_bracket,
    write_structures,
)


@st.composite
def structures(draw, max_len=60):
    """A random valid structure (any pseudoknot depth) on a random sequence."""
    L = draw(st.integers(0, max_len))
    order = draw(st.permutations(range(L)))
    n = draw(st.integers(0, L // 2))
    pairs = sorted((min(order[2 * k], order[2 * k + 1]), max(order[2 * k], order[2 * k + 1])) for k in range(n))
    seq = "".join(draw(st.lists(st.sampled_from("ACGU"), min_size=L, max_size=L)))
    return StructureRecord(draw(st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True)), seq, pairs)


@given(structures())
@settings(max_examples=150, deadline=None)
def test_dot_bracket_round_trip(rec):
    db = to_dot_bracket(rec.pairs, len(rec.seq))
    assert len(db) == len(rec.seq)
    assert parse_dot_bracket(db) == rec.pairs


@given(st.lists(structures(), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None)
def test_file_round_trips(tmp_path_factory, recs):
    d = tmp_path_factory.mktemp("rt")
    recs = [StructureRecord(f"{r.id}_{k}", r.seq or "A", r.pairs if r.seq else []) for k, r in enumerate(recs)]
    for fmt in ("dbn", "ct"):
        write_structures(recs, d / f"x.{fmt}", fmt)
        back = read_structures(d / f"x.{fmt}")
        assert [(b.id, b.seq, b.pairs) for b in back] == [(r.id, r.seq, r.pairs) for r in recs]
    write_structures(recs, d / "bp", "bpseq")
    back = {b.id: b for b in read_structures(d / "bp")}
    for r in recs:
        assert back[r.id].seq == r.seq and back[r.id].pairs == r.pairs


def test_golden_dot_bracket_and_formats():
    db = "((.[[..)).]](..)"
    pairs = parse_dot_bracket(db)
    assert pairs == [(0, 8), (1, 7), (3, 11), (4, 10), (12, 15)]
    assert to_dot_bracket(pairs, len(db)) == db
    assert pseudoknot_pages(pairs) == [0, 0, 1, 1, 0]
    assert remove_pseudoknots(pairs) == [(0, 8), (1, 7), (12, 15)]
    assert parse_dot_bracket("AA..aa") == [(0, 5), (1, 4)]
    assert parse_dot_bracket("(.<).>") == [(0, 3), (2, 5)]
    rec = StructureRecord("s1", "GGAAACCAU", [(0, 6), (1, 5)])
    assert format_bpseq(rec).splitlines()[1:3] == ["1 G 7", "2 G 6"]
    assert format_ct(rec).splitlines()[:2] == ["9\ts1", "1\tG\t0\t2\t7\t1"]


def test_pairs_matrix_round_trip():
    pairs = [(0, 9), (2, 5)]
    m = pairs_to_matrix(pairs, 10)
    assert (m == m.T).all() and m.sum() == 4
    assert matrix_to_pairs(m) == pairs


@pytest.mark.parametrize("bad", ["((.)", "(.))", "((.]]", "..x.."])
def test_bad_dot_bracket(bad):
    with pytest.raises(InputError):
        parse_dot_bracket(bad)


def test_bad_files(tmp_path):
    f = tmp_path / "a.dbn"
    f.write_text(">a\nACGU\n((.)\n")
    with pytest.raises(InputError, match="unmatched"):
        read_structures(f)
    f.write_text(">a\nACGU\n(..)..\n")
    with pytest.raises(InputError, match="6 characters, sequence 4"):
        read_structures(f)
    g = tmp_path / "b.bpseq"
    g.write_text("1 A 3\n2 C 3\n3 G 1\n")
    with pytest.raises(InputError, match="more than one pair"):
        read_structures(g)


def test_pdb_pair_list(tmp_path):
    f = tmp_path / "x"
    f.write_text("# x\t L = 8\ni\tj\t\n1\t8\n2\t7\n")
    assert read_pair_list(f, seq="GGAAAACC").pairs == [(0, 7), (1, 6)]


def test_dot_bracket_keeps_what_it_can_write(tmp_path, caplog):
    """A structure crossing itself more than the bracket types allow (an untrained model's) is
    written with the pairs dot-bracket can hold and a counted warning, not an error; BPSEQ and CT
    keep every pair."""
    from nucfm.io.structure import BRACKETS, StructureRecord, read_structures, write_structures

    pairs = [(i, i + 100) for i in range(40)]  # 40 mutually crossing pairs: 40 pages
    rec = StructureRecord("x", "A" * 200, pairs)
    write_structures([rec], tmp_path / "o.dbn")
    assert len(read_structures(tmp_path / "o.dbn")[0].pairs) == len(BRACKETS)
    assert f"{40 - len(BRACKETS)} pair(s)" in caplog.text
    write_structures([rec], tmp_path / "o.ct", "ct")
    assert read_structures(tmp_path / "o.ct")[0].pairs == pairs


# ---- outputs written as a stream (fold, contacts) ------------------------------------------------
def _unique_names_by_the_rule(keys, reserved=()):
    """The rule of nucfm.paths.unique_names as first written: every name remembered."""
    from nucfm.paths import safe_name

    taken, out = {r.lower() for r in reserved}, []
    for key in keys:
        base = safe_name(key)
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            name = f"{base}#{n}"
        taken.add(name.lower())
        out.append(name)
    return out


ID_PARTS = ["a", "A", "b", "", "..", "x/1", "x_1", "#", "#2", "#3", "#10", "#02", "record", "Σ", "ς", "İ", "__keys__"]


@given(st.lists(st.lists(st.sampled_from(ID_PARTS), min_size=1, max_size=3).map("".join), max_size=40),
       st.lists(st.sampled_from(ID_PARTS[:12]), max_size=2).map(tuple))
@settings(max_examples=300, deadline=None)
def test_unique_names_streamed_equal_the_rule(keys, reserved):
    """Remembering only what can clash (repeated keys, names with '#') gives every name the rule
    gives; so does the .npz writers' second pass (the keys again, '__keys__' reserved)."""
    from nucfm.paths import iter_unique_names, repeated_names, unique_names

    want = _unique_names_by_the_rule(keys, reserved)
    assert unique_names(keys, reserved=reserved) == want
    assert list(iter_unique_names(keys, reserved=reserved, repeated=repeated_names(keys))) == want
    again = list(iter_unique_names(want, reserved=("__keys__",), repeated=repeated_names(want)))
    assert again == _unique_names_by_the_rule(want, ("__keys__",))


def test_pair_probs_npz_streamed_has_the_bytes_of_the_whole_lists(tmp_path, monkeypatch):
    """write_pair_probs from generators (keys array written in parts, the zip's directory spooled
    to disk) writes the bytes that numpy's own array writer gives for the whole lists, as the
    .npz used to be written; a sparse map becomes an ``.sparse`` (N, 3) array."""
    import time
    import zipfile

    import numpy as np
    from scipy import sparse

    from nucfm.paths import unique_names
    from nucfm.tasks.structure import _stored, write_pair_probs

    fixed = time.struct_time((2024, 1, 1, 0, 0, 0, 0, 1, -1))
    monkeypatch.setattr(time, "localtime", lambda *a: fixed)
    rng = np.random.default_rng(0)
    ids = [f"r{k % 300}" for k in range(700)] + ["__keys__", "file", "λ-1"]  # > one batch of key strings
    maps = [rng.random((k % 7, k % 7)).astype(np.float32) for k in range(len(ids))]
    maps[5] = sparse.csr_matrix(np.triu(rng.random((9, 9)), 1))
    keys = unique_names(ids)
    write_pair_probs(tmp_path / "streamed.npz", keys, iter(maps))
    npz_keys = unique_names(keys, reserved=("__keys__",))
    with zipfile.ZipFile(tmp_path / "whole.npz", "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for k, p in [("__keys__", np.array(npz_keys)), *(_stored(k, p) for k, p in zip(npz_keys, maps))]:
            with zf.open(f"{k}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(p), allow_pickle=False)
    assert (tmp_path / "streamed.npz").read_bytes() == (tmp_path / "whole.npz").read_bytes()
    with np.load(tmp_path / "streamed.npz") as z:
        assert list(z["__keys__"]) == npz_keys and z["r5.sparse"].shape[1] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.npz", "whole.npz"]  # no spool left


def test_structures_written_from_a_stream(tmp_path):
    """A generator writes the bytes a list does, in every format; BPSEQ files take the names given
    (else unique_names of the ids); one .bpseq file refuses two records and leaves nothing."""
    recs = [StructureRecord("a", "GGGAAACCC", [(0, 8), (1, 7)]), StructureRecord("a", "ACGU", []),
            StructureRecord("b/1", "", [])]
    for fmt in ("dbn", "ct"):
        assert write_structures(iter(recs), tmp_path / f"g.{fmt}", fmt) == 3
        write_structures(recs, tmp_path / f"l.{fmt}", fmt)
        assert (tmp_path / f"g.{fmt}").read_bytes() == (tmp_path / f"l.{fmt}").read_bytes()
    write_structures(iter(recs), tmp_path / "bp", "bpseq")
    assert sorted(p.name for p in (tmp_path / "bp").iterdir()) == ["a#2.bpseq", "a.bpseq", "b_1.bpseq"]
    write_structures(iter(recs), tmp_path / "named", "bpseq", names=iter(["x", "y", "z"]))
    assert (tmp_path / "named" / "y.bpseq").read_text() == (tmp_path / "bp" / "a#2.bpseq").read_text()
    with pytest.raises(InputError, match="holds one structure, not 3"):
        write_structures(iter(recs), tmp_path / "one.bpseq", "bpseq")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".one", "one"))]
