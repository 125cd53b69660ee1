"""``nucfm compare``: sequence distances (golden counts, checked independently), NJ trees, Mantel,
Robinson-Foulds, record vectors (the same as ``embed --pool mean``), the command end to end and
its bad inputs (one ``nucfm: error:`` line, exit 2, nothing written)."""

import json
import logging

import numpy as np
import pytest
from scipy.spatial.distance import squareform
from scipy.stats import pearsonr
from skbio import TreeNode

from nucfm import save_model
from nucfm.analysis import sequence_distance as sd
from nucfm.analysis import tree_compare as tc
from nucfm.cli import main
from nucfm.errors import InputError
from nucfm.models.embedding import embed_sequences
from nucfm.tasks.compare import record_vectors

from tiny import dna_model, rna_model

RNG = np.random.default_rng(7)


def random_seq(n: int, rng=RNG) -> str:
    return "".join(rng.choice(list("ACGU"), n))


# ---- sequence distances -----------------------------------------------------------------------------
def mutant(seq: str) -> tuple[str, int, int]:
    """``seq`` with 3 substitutions, one 2-nt deletion, an N run and both ends cut: (mutant,
    substitutions, deleted called letters)."""
    s = list(seq)
    for i in (100, 250, 400):
        s[i] = {"A": "C", "C": "G", "G": "U", "U": "A"}[s[i]]
    s[300:310] = "N" * 10  # uncalled: never a difference
    del s[500:502]
    return "".join(s[7:-5]), 3, 2


@pytest.mark.parametrize("max_cells", [10**7, 5_000])  # one full alignment / anchored on exact blocks
def test_aligned_counts_are_the_known_mutations(max_cells):
    ref = random_seq(700)
    mut, subs, dels = mutant(ref)
    c = sd.align_pair(sd.encode(ref), sd.encode(mut.replace("U", "t")), max_cells=max_cells)  # T read as U
    assert (c.substitutions, c.gaps) == (subs, dels)
    # compared: every letter of the mutant but its Ns, plus the 2 deleted columns
    assert c.compared == len(mut) - 10 + dels


def test_aligned_distance_matrix_is_symmetric_p_distance():
    ref = random_seq(700)
    seqs = [ref, mutant(ref)[0], random_seq(650)]
    d, counts = sd.aligned_distances(seqs)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert d[0, 1] == pytest.approx(5 / counts["compared"][0, 1])
    assert 0.3 < d[0, 2] < 0.8  # unrelated sequences: about what a random alignment gives
    assert counts["compared"][0, 2] > 500  # they overlap, they do not slide apart
    with pytest.raises(InputError, match="seq-distance mash"):  # too long to align without anchors
        sd.aligned_distances(seqs, max_cells=5_000)


def test_kmers_and_mash_match_a_direct_count():
    a, b = random_seq(120), random_seq(120)
    b = a[:60] + b[60:]
    k = 7
    v, ok = sd.kmer_codes(sd.encode(a), k)
    assert int(v[3]) == int("".join(str("ACGU".index(c)) for c in a[3:3 + k]), 4) and ok.all()
    sa, sb = ({s[i:i + k] for i in range(len(s) - k + 1)} for s in (a, b))
    j = len(sa & sb) / len(sa | sb)
    expected = -np.log(2 * j / (1 + j)) / k
    got = sd.mash_distance(sd.kmer_set(sd.encode(a), k), sd.kmer_set(sd.encode(b), k), k)
    assert got == pytest.approx(expected)
    assert sd.mash_distances([a, a, b], k)[0, 1] == 0.0
    assert len(sd.kmer_set(sd.encode("ACGUNACGUA"), 5)) == 1  # k-mers over N are left out


# ---- trees and statistics -----------------------------------------------------------------------------
def test_nj_recovers_the_tree_of_an_additive_matrix():
    # ((a:1,b:2):1,(c:1,d:3):2,e:1): path lengths written out by hand
    names = list("abcde")
    d = np.array([[0, 3, 5, 7, 3],
                  [3, 0, 6, 8, 4],
                  [5, 6, 0, 4, 4],
                  [7, 8, 4, 0, 6],
                  [3, 4, 4, 6, 0]], dtype=float)
    tree = tc.nj_tree(d, names)
    truth = TreeNode.read(["((a:1,b:2):1,(c:1,d:3):2,e:1);"])
    assert tree.compare_rfd(truth, rooted=False) == 0
    assert tree.find("d").length == pytest.approx(3)
    assert tc.count_splits(tree) == 2
    wrong = TreeNode.read(["((a,c),(b,d),e);"])
    assert tree.compare_rfd(wrong, rooted=False) == 4


def test_mantel_r_is_the_pearson_of_the_condensed_matrices():
    x = squareform(RNG.random(28))  # 8 records
    y = squareform(squareform(x) + RNG.normal(0, 0.2, 28).clip(-0.5, 0.5) + 0.6)
    m = tc.mantel_test(x, y, permutations=99, seed=1)
    assert m["r"] == pytest.approx(pearsonr(squareform(x), squareform(y))[0])
    assert m["p"] == tc.mantel_test(x, y, permutations=99, seed=1)["p"]  # seeded
    assert 0 < m["p"] <= 1


def test_robinson_foulds_identical_and_permuted_trees():
    d = squareform(RNG.random(21) + 0.1)  # 7 records
    names = [f"r{i}" for i in range(7)]
    t = tc.nj_tree(d, names)
    same = tc.robinson_foulds(t, tc.nj_tree(d.copy(), names), permutations=50)
    assert same["rf"] == 0 and same["rf_normalised"] == 0
    assert same["rf_p"] <= 3 / 51  # few of the 50 shuffled trees share all 4 splits
    other = tc.nj_tree(d, names[::-1])
    rf = tc.robinson_foulds(t, other)
    assert rf["rf"] == t.compare_rfd(other, rooted=False) and rf["rf_normalised"] <= 1


def test_equal_distances_give_nan_with_a_reason():
    d = np.ones((4, 4)) - np.eye(4)
    star = tc.nj_tree(d, list("abcd"))
    assert tc.count_splits(star) == 0
    m = tc.mantel_test(d, squareform(RNG.random(6)))
    assert np.isnan(m["r"]) and "embedding distances are equal" in m["note"]
    rf = tc.robinson_foulds(star, star, d, d)
    assert np.isnan(rf["rf"]) and "star" in rf["note"]


# ---- record vectors --------------------------------------------------------------------------------------
def test_record_vectors_are_embed_pool_mean_with_windows():
    model = rna_model(max_len=50)
    seqs = [random_seq(n) for n in (30, 130, 260)]  # two records need windows
    got = record_vectors(model, seqs)
    want = np.stack(embed_sequences(model, seqs, pool="mean"))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    masked_seq = seqs[1][:40] + "N" * 20 + seqs[1][60:]
    masked = record_vectors(model, [masked_seq], mask_uncalled=True)[0]
    per_residue = embed_sequences(model, [masked_seq])[0]
    keep = np.array([c != "N" for c in masked_seq])
    np.testing.assert_allclose(masked, per_residue[keep].mean(0), rtol=1e-5, atol=1e-6)
    dna = dna_model()  # a DNA model works too: its letters are lowercase a/c/g/t
    got = record_vectors(dna, [masked_seq], mask_uncalled=True)[0]
    per_residue = embed_sequences(dna, [masked_seq])[0]
    np.testing.assert_allclose(got, per_residue[keep].mean(0), rtol=1e-5, atol=1e-6)


# ---- the command -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = tmp_path_factory.mktemp("compare")
    save_model(rna_model(max_len=50), w / "rna")
    base = random_seq(150)
    fam = [base, mutant(base + random_seq(550))[0][:150]]
    other = random_seq(140)
    (w / "a.fa").write_text("".join(f">fam{i}\n{s}\n" for i, s in enumerate(fam)))
    (w / "b.fa.gz").write_bytes(__import__("gzip").compress(
        f">other\n{other}\n>other_mut\n{other[:70]}{'G' if other[70] != 'G' else 'C'}{other[71:-3]}NNN\n".encode()))
    return w


def run(*argv):
    return main(["compare", "--no-progress", "--permutations", "49", "--threads", "1", *map(str, argv)])


def test_compare_writes_every_output(ws, capsys):
    out = ws / "out"
    assert run("-i", ws / "a.fa", "-i", ws / "b.fa.gz", "-o", out, "-m", ws / "rna", "--metric", "euclidean") == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"records.tsv", "embeddings.tsv", "distances_embedding.tsv", "distances_sequence.tsv",
                     "pairs.tsv", "tree_embedding.nwk", "tree_sequence.nwk", "compare.json", "compare.tsv",
                     "compare.png", "compare.svg"}
    summary = json.loads((out / "compare.json").read_text())
    assert summary["records"] == 4 and summary["windowed_records"] == 4
    keys = ["fam0", "fam1", "other", "other_mut"]
    emb = np.loadtxt(out / "embeddings.tsv", skiprows=1, usecols=range(1, 17), delimiter="\t")
    d_emb = np.loadtxt(out / "distances_embedding.tsv", skiprows=1, usecols=range(1, 5), delimiter="\t")
    direct = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))
    np.testing.assert_allclose(d_emb, direct, rtol=1e-5, atol=1e-6)
    d_seq = np.loadtxt(out / "distances_sequence.tsv", skiprows=1, usecols=range(1, 5), delimiter="\t")
    assert d_seq[2, 3] == pytest.approx(1 / 137)  # one substitution in 137 compared columns (3 N)
    m = summary["mantel"]
    assert m["r"] == pytest.approx(pearsonr(squareform(d_emb, checks=False), squareform(d_seq, checks=False))[0],
                                   abs=1e-6)
    n_diff = squareform(np.abs(np.subtract.outer([0, 0, 0, 3], [0, 0, 0, 3])), checks=False)
    assert summary["uncalled_mantel"]["r"] == pytest.approx(pearsonr(squareform(d_emb, checks=False), n_diff)[0],
                                                            abs=1e-6)
    seq_tree = TreeNode.read(str(out / "tree_sequence.nwk"))
    assert sorted(t.name for t in seq_tree.tips()) == keys
    expected = TreeNode.read(["((fam0,fam1),(other,other_mut));"])
    assert seq_tree.compare_rfd(expected, rooted=False) == 0  # the one split: the two related pairs
    rows = dict(line.split("\t")[:2] for line in (out / "compare.tsv").read_text().splitlines()[1:])
    assert float(rows["mantel_r_pearson"]) == pytest.approx(m["r"], abs=1e-5)
    pairs = (out / "pairs.tsv").read_text().splitlines()
    assert len(pairs) == 1 + 6 and pairs[0].endswith("differences\tsubstitutions\tgaps\tcompared")
    assert run("-i", ws / "a.fa", ws / "b.fa.gz", "-o", out, "-m", ws / "rna", "--seq-distance", "mash",
               "--kmer", "9") == 0  # rerun replaces the earlier output
    assert json.loads((out / "compare.json").read_text())["sequence_distance"] == "mash"


def bad(ws, capsys, text, *argv):
    out = ws / "bad_out"
    assert run(*argv, "-o", out, "-m", ws / "rna") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nucfm: error:") and len(err.splitlines()) == 1 and text in err, err
    assert not out.exists()


@pytest.mark.parametrize("fasta,text", [
    (">a\nACGUACGU\n>b\nACGUACGA\n", "needs at least 3 records"),
    (">a\nACGUACGU\n>b\nACGUACGA\n>a\nACGUAAGA\n", "duplicate record id 'a' (records 1 and 3"),
    (">a/1\nACGUACGU\n>a_1\nACGUACGA\n>c\nACGUAAGA\n", "name the same key"),
    (">a\nACGUACGU\n>b\n\n>c\nACGUAAGA\n", "1 empty record(s) ('b')"),
    (">a\nACGUACGU\n>b\nNNNNNN\n>c\nACGUAAGA\n", "no A/C/G/U/T letter"),
])
def test_bad_records(ws, capsys, fasta, text):
    (ws / "bad.fa").write_text(fasta)
    bad(ws, capsys, text, "-i", ws / "bad.fa")


def test_bad_options(ws, capsys):
    bad(ws, capsys, "at most 31", "-i", ws / "a.fa", "--seq-distance", "mash", "--kmer", "40")
    (ws / "short.fa").write_text(">s\nACGUACGUAC\n")
    bad(ws, capsys, "no 21-mer", "-i", ws / "a.fa", ws / "short.fa", "--seq-distance", "mash")
    other = ws / "other_dir"
    other.mkdir(exist_ok=True)
    (other / "notes.txt").write_text("mine\n")
    assert run("-i", ws / "a.fa", "-i", ws / "b.fa.gz", "-o", other, "-m", ws / "rna") == 2
    assert "holds other files" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine\n"


def test_identical_records_give_nan_not_a_crash(ws, caplog):
    seq = random_seq(60)
    (ws / "same.fa").write_text("".join(f">s{i}\n{seq}\n" for i in range(3)))
    out = ws / "same_out"
    caplog.set_level(logging.INFO, logger="nucfm")
    assert run("-i", ws / "same.fa", "-o", out, "-m", ws / "rna") == 0
    summary = json.loads((out / "compare.json").read_text())
    assert summary["mantel"]["r"] is None and "are equal" in summary["mantel"]["note"]
    assert summary["robinson_foulds"]["rf"] is None and "undefined" in summary["robinson_foulds"]["note"]
    assert "mantel_r_pearson\tNaN\tall" in (out / "compare.tsv").read_text()
    assert "Mantel and Robinson-Foulds are NaN" in caplog.text
