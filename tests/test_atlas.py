"""`nucfm atlas`: the representation metrics against independent computations, the command's
outputs on a tiny typed FASTA, and its bad inputs (one-line errors, exit 2, nothing written)."""

import numpy as np
import pandas as pd
import pytest

from nucfm import load_model, save_model
from nucfm.analysis.atlas import housekeeping_group
from nucfm.analysis.representation import cluster_ari, kmer_composition, knn_accuracy, silhouette
from nucfm.cli import main
from nucfm.tasks.atlas import DEFAULT_LABEL_REGEX, compile_label_regex, header_label

from tiny import rna_model

TYPES = {"tRNA": ([0.4, 0.1, 0.1, 0.4], 60), "miRNA": ([0.1, 0.4, 0.4, 0.1], 30), "lncRNA": ([0.25] * 4, 210)}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = tmp_path_factory.mktemp("atlas")
    save_model(rna_model(seed=1, max_len=40), w / "tiny")  # max 40 nt: the 210-nt records go in windows
    rng = np.random.default_rng(0)
    lines = []
    for t, (p, n) in TYPES.items():
        for i in range(10):
            lines.append(f">{t}_{i} {t} from test\n{''.join(rng.choice(list('ACGU'), n, p=p))}")
    lines += [">nolabel\nACGUACGU", ">empty tRNA\n", ">unknown tRNA\nNNNNNN"]
    (w / "typed.fa").write_text("\n".join(lines) + "\n")
    (w / "groups.tsv").write_text("label\tgroup\ntRNA\tstructured\nmiRNA\tsmall\n")  # lncRNA unmapped
    return w


def run(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ---- metrics ----------------------------------------------------------------------------------------
def _knn_by_hand(X, y, k, folds, seed):
    """Cosine kNN majority vote over the same stratified folds, in numpy."""
    from sklearn.model_selection import StratifiedKFold

    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    pred = np.empty_like(y)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        dist = 1 - Xn[test] @ Xn[train].T
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
        for row, idx in zip(test, nearest):
            values, counts = np.unique(y[train][idx], return_counts=True)
            pred[row] = values[np.argmax(counts)]
    return pred


def test_knn_accuracy_matches_an_independent_computation():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y = np.array(["a"] * 30 + ["b"] * 25)  # two classes, k odd: no tied votes
    X = rng.normal(size=(55, 6)) + np.where(y == "a", 0.6, -0.6)[:, None]
    got = knn_accuracy(X, y, k=5, folds=5, seed=0)
    pred = _knn_by_hand(X, y, 5, 5, 0)
    assert got["accuracy"] == pytest.approx(np.mean(pred == y))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert 0.6 < got["accuracy"] < 1.0 and got["n"] == 55 and got["classes"] == 2


def test_silhouette_matches_the_formula():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(24, 5)) + np.repeat(np.eye(5)[:3] * 2, 8, axis=0)
    y = np.repeat(["x", "y", "z"], 8)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    D = 1 - Xn @ Xn.T
    s = []
    for i in range(len(y)):
        same = (y == y[i]) & (np.arange(len(y)) != i)
        a = D[i, same].mean()
        b = min(D[i, y == other].mean() for other in set(y) - {y[i]})
        s.append((b - a) / max(a, b))
    assert silhouette(X, y) == pytest.approx(np.mean(s), abs=1e-6)


def test_kmer_composition_and_clustering():
    comp = kmer_composition(["ACGUT", "NNNN", "AC"], k=2)
    assert comp.shape == (3, 16)
    # ACGUT -> AC, CG, GU, UU (T read as U), each 1/4
    np.testing.assert_allclose(comp[0][[1, 6, 11, 15]], 0.25)
    assert comp[1].sum() == 0 and comp[2][1] == 1
    X = np.r_[np.tile([1.0, 0, 0], (6, 1)), np.tile([0, 1.0, 0], (6, 1))] + 0.01 * np.arange(12)[:, None]
    y = ["a"] * 6 + ["b"] * 6
    assert cluster_ari(X, y, "kmeans")["ari"] == pytest.approx(1.0)
    assert cluster_ari(X, ["a", "b"] * 6, "kmeans")["ari"] < 0.2


def test_labels_from_headers():
    p = compile_label_regex(DEFAULT_LABEL_REGEX)
    assert header_label(p, "URS00008314B2 rRNA from 13 species") == "rRNA"
    assert header_label(p, "M16174.1/3-119 RF00001 5S_rRNA TP=Gene;rRNA") == "Gene;rRNA"
    assert header_label(p, "lonely") is None
    assert header_label(compile_label_regex(r"sp=(?P<label>\w+)|(x)"), "a sp=human") == "human"
    assert [housekeeping_group(t) for t in ("RNase_P_RNA", "piRNA", "ribozyme")] == \
        ["housekeeping", "regulatory", "unmapped"]


# ---- the command ------------------------------------------------------------------------------------
def test_atlas_command_writes_figure_tables_and_embeddings(ws, capsys):
    out = ws / "out"
    code, stdout, err = run(["atlas", "-i", str(ws / "typed.fa"), "-o", str(out), "-m", str(ws / "tiny"),
                             "--group", "length", "--group", "housekeeping", "--trajectory", "tRNA",
                             "--umap-epochs", "20", "--no-progress", "--threads", "1"], capsys)
    assert code == 0, err
    for name in ("atlas.png", "atlas.svg", "atlas_metrics.tsv", "atlas_metrics.json", "umap.tsv", "unlabelled.tsv",
                 "pseudotime.tsv", "embeddings_tiny.parquet",
                 "embeddings_random-init_tiny_seed0.parquet", "embeddings_kmer1.parquet", "embeddings_kmer3.parquet"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "atlas.png").read_bytes()[:4] == b"\x89PNG"
    metrics = pd.read_csv(out / "atlas_metrics.tsv", sep="\t")
    assert len(metrics) == 4 * 3  # (LM, random-init, 1-mer, 3-mer) x (label, length, housekeeping)
    assert set(metrics["grouping"]) == {"label", "length", "housekeeping"}
    assert (metrics.loc[metrics.grouping == "label", "n"] == 30).all()
    assert (metrics.loc[metrics.grouping == "housekeeping", "classes"] == 2).all()
    # the table's number is the metric of the written embeddings; the embeddings are `embed --pool mean`'s
    emb = pd.read_parquet(out / "embeddings_tiny.parquet")
    X = np.stack(emb.embedding)
    labels = [i.split("_")[0] for i in emb.id]
    row = metrics[(metrics.representation == "tiny") & (metrics.grouping == "label")].iloc[0]
    assert row.knn_accuracy == pytest.approx(knn_accuracy(X, labels)["accuracy"], abs=1e-3)
    seqs = [line for line in (ws / "typed.fa").read_text().splitlines() if line and not line.startswith(">")]
    pooled = load_model(ws / "tiny").embed(seqs[:30], pool="mean")
    np.testing.assert_allclose(X, np.stack(pooled), atol=1e-5)
    kmer = metrics[(metrics.representation == "3-mer composition") & (metrics.grouping == "label")].iloc[0]
    assert kmer.knn_accuracy > 0.8  # the types differ in composition by construction
    umap = pd.read_csv(out / "umap.tsv", sep="\t")
    assert len(umap) == 4 * 30 and list(umap.columns) == ["n", "id", "label", "length", "housekeeping",
                                                          "representation", "x", "y"]
    left = pd.read_csv(out / "unlabelled.tsv", sep="\t")
    assert dict(zip(left.id, left.reason)) == {"nolabel": "header does not match --label-regex",
                                               "empty": "empty sequence", "unknown": "no complete A/C/G/U 3-mer"}
    pt = pd.read_csv(out / "pseudotime.tsv", sep="\t")
    roots = pt[pt.root == 1]
    assert len(roots) == 4 and (roots.label == "tRNA").all() and (roots.pseudotime == 0).all()
    assert "tiny\tlabel\t30" in stdout


def test_layer_all_gives_one_representation_per_layer(ws, capsys):
    out = ws / "layers"
    code, _, err = run(["atlas", "-i", str(ws / "typed.fa"), "-o", str(out), "-m", str(ws / "tiny"), "--layer", "all",
                        "--no-random", "--kmer", "none", "--umap-epochs", "5", "--no-progress"], capsys)
    assert code == 0, err
    metrics = pd.read_csv(out / "atlas_metrics.tsv", sep="\t")
    assert list(metrics.layer) == [0, 1, 2]
    X0 = np.stack(pd.read_parquet(out / "embeddings_tiny_layer0.parquet").embedding)
    X2 = np.stack(pd.read_parquet(out / "embeddings_tiny_layer2.parquet").embedding)
    assert not np.allclose(X0, X2)


# ---- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, extra, message", [
    ("no header matches", ["--label-regex", r"cls=(\w+)"], "matches no header"),
    ("regex without group", ["--label-regex", r"\w+"], "has no group"),
    ("unknown root", ["--trajectory", "rRNA"], "'rRNA' is not a label"),
    ("group file leaves labels unmapped", ["--group", "GROUPS"], "1 label(s) are not mapped: lncRNA"),
    ("unknown grouping", ["--group", "colour"], "no such file"),
    ("bad layer", ["--layer", "7"], "--layer 7 does not exist"),
    ("bad kmer", ["--kmer", "0"], "k must be 1..8"),
    ("model given twice", ["-m", "MODEL"], "given twice"),
])
def test_bad_input_is_one_line(ws, capsys, case, extra, message):
    extra = [{"GROUPS": str(ws / "groups.tsv"), "MODEL": str(ws / "tiny")}.get(e, e) for e in extra]
    out = ws / f"bad_{case.replace(' ', '_')}"
    code, _, err = run(["atlas", "-i", str(ws / "typed.fa"), "-o", str(out), "-m", str(ws / "tiny"),
                        "--no-progress", *extra], capsys)
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()  # every check runs before anything is written


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("hello world\n", "FASTA"),
    ("".join(f">r{i} tRNA\nACGUAC\n" for i in range(12)), "only one class"),
    (">a tRNA\nACGU\n>b tRNA\nACGU\n>c miRNA\nGGCC\n>d miRNA\nGGCC\n", "too few records: 4"),
    ("".join(f">r{i} {'tRNA' if i < 9 else 'miRNA'}\nACGUAC\n" for i in range(12)),
     "fewer than 5 records (the 5 stratified folds need one each): miRNA (3)"),
])
def test_bad_sets_are_one_line(tmp_path, ws, capsys, text, message):
    (tmp_path / "in.fa").write_text(text)
    code, _, err = run(["atlas", "-i", str(tmp_path / "in.fa"), "-o", str(tmp_path / "out"), "-m", str(ws / "tiny"),
                        "--no-progress"], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "out").exists()
