import gzip

import numpy as np
import pytest

from nucfm.alphabet import DNA, RNA
from nucfm.data.corpus import (
    SOFT_BIT,
    DnaBatches,
    RnaBatches,
    TokenStore,
    prepare_dna,
    prepare_rna,
    random_crop,
    split_rna_families,
    window_starts,
)


def _random_seq(rng, n, letters="ACGU"):
    return "".join(rng.choice(list(letters), n))


@pytest.fixture
def rfam(tmp_path):
    """20 families (clans CL1 = RF00001-RF00004), one miRNA family, a sequence shared between
    two families, duplicates, T letters and a too-short sequence; plus a miRBase-like file."""
    rng = np.random.default_rng(0)
    fams = [f"RF{i:05d}" for i in range(1, 21)]
    tsv = tmp_path / "families.tsv"
    rows = ["AC\tID\tDE\tTP\tCL\tn_seed\tSS_source"]
    for i, f in enumerate(fams):
        tp = "Gene;miRNA" if f == "RF00020" else "Gene;sRNA"
        clan = "CL1" if i < 4 else ""
        rows.append(f"{f}\tfam{i}\tdesc\t{tp}\t{clan}\t3\tx")
    tsv.write_text("\n".join(rows) + "\n")
    shared = _random_seq(rng, 50)
    fa = tmp_path / "rfam.fa.gz"
    with gzip.open(fa, "wt") as fh:
        for f in fams:
            for j in range(5):
                fh.write(f">s{f}_{j} {f} fam TP=Gene\n{_random_seq(rng, 40 + j)}\n")
            fh.write(f">dup{f} {f} fam TP=Gene\n{shared.replace('U', 'T')}\n")  # in every family, T letters
        fh.write(">short RF00005 x\nACGU\n")
    mir = tmp_path / "mir.fa"
    hairpin = _random_seq(rng, 60)
    mir.write_text(f">mir1 MI1 hairpin\n{hairpin}\n>mir1b MI3 copy\n{hairpin}\n>mir2 MI2 hairpin\n{shared}\n")
    return fa, mir, tsv


def test_rna_split_has_no_leakage(rfam, tmp_path):
    fa, mir, tsv = rfam
    out = tmp_path / "prep"
    s = prepare_rna([fa, mir], out, tsv, valid_fraction=0.4, min_len=10, seed=1)
    valid_fams = set(s["valid_families"])
    assert valid_fams and len(valid_fams) < 20
    assert "RF00020" not in valid_fams  # miRNA families stay in training (miRBase holds homologues)
    clan = {f"RF{i:05d}" for i in range(1, 5)}
    assert clan <= valid_fams or not (clan & valid_fams)  # a clan is held out whole
    train, valid = TokenStore(out / "train"), TokenStore(out / "valid")
    train_seqs = {RNA.decode(train[i]) for i in range(len(train))}
    valid_seqs = {RNA.decode(valid[i]) for i in range(len(valid))}
    assert not train_seqs & valid_seqs
    assert all("T" not in x for x in train_seqs | valid_seqs)
    # every valid-family record is out of training; the shared sequence is only in validation
    assert s["valid_family_records"] == 6 * len(valid_fams) + ("RF00005" in valid_fams)
    assert s["identical_to_valid"] == 20 - len(valid_fams) + 1  # shared copies in train families + miRBase
    assert s["duplicates"] == 1  # the second copy of the hairpin
    assert s["too_short"] == int("RF00005" not in valid_fams)
    assert len(train) == len(train_seqs)  # exact duplicates removed
    # baseline counts were taken on training data only
    from nucfm.data.baselines import ContextCounts

    counts = ContextCounts.load(out / "counts.npz")
    assert counts.unigram.sum() == train.offsets[-1] - sum(
        int((~np.isin(train[i], RNA.residue_ids())).sum()) for i in range(len(train)))


def test_split_is_deterministic_and_seeded():
    fams = {f"RF{i:05d}": {"AC": f"RF{i:05d}", "TP": "Gene", "CL": ""} for i in range(1, 200)}
    a = split_rna_families(fams, 0.1, seed=0)
    assert a == split_rna_families(dict(reversed(list(fams.items()))), 0.1, seed=0)
    assert a != split_rna_families(fams, 0.1, seed=1)
    assert 5 <= len(a) <= 40


def test_window_starts_edges():
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]  # last window ends exactly at 10
    assert window_starts(3, 4, 1).tolist() == []  # shorter than a window
    assert window_starts(4, 4, 1).tolist() == [0]
    s = window_starts(100, 10, 5, exclude=(40, 60))
    assert all(x + 10 <= 40 or x >= 60 for x in s)
    assert 30 in s and 60 in s and 35 not in s and 55 not in s
    assert window_starts(100, 10, 10, start=40, end=65).tolist() == [40, 50]


def test_dna_prep_skips_all_n_and_holds_out_region(tmp_path):
    rng = np.random.default_rng(0)
    seq = _random_seq(rng, 300, "ACGT") + "N" * 100 + _random_seq(rng, 100, "acgt") + _random_seq(rng, 300, "ACGT")
    fa = tmp_path / "g.fa"
    fa.write_text(">chr1\n" + seq + "\n>chr2\n" + _random_seq(rng, 50, "ACGT") + "\n")
    s = prepare_dna(fa, tmp_path / "p", "chr1:601-800", window=50, stride=25)
    starts = np.load(tmp_path / "p" / "train.starts.npy")
    store = TokenStore(tmp_path / "p" / "genome")
    assert s["skipped_windows"] > 0
    for x in starts:
        w = store.span(x, x + 50) & ~SOFT_BIT
        assert np.isin(w, DNA.residue_ids()).any()  # no all-N window
        assert x + 50 <= 600 or x >= 800  # no overlap with the held-out region
    assert (tmp_path / "p" / "valid.starts.npy").exists()
    valid = np.load(tmp_path / "p" / "valid.starts.npy")
    assert valid.tolist() == list(range(600, 800, 50))
    assert 800 in starts  # chr2 starts at 800 in global coordinates; chr2 is 50 bp = one window
    # soft-masked letters keep their bit
    assert (store.span(400, 500) & SOFT_BIT).all()
    assert not (store.span(0, 300) & SOFT_BIT).any()


def test_reverse_complement_and_weights(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">c\nAACCggtt\n")
    prepare_dna(fa, tmp_path / "p", "c:4-8", window=4, stride=4)
    store = TokenStore(tmp_path / "p" / "genome")
    b = DnaBatches(store, np.array([0, 4]), 4, global_batch=2, seed=0, rc_augment=False, soft_mask_weight=0.1)
    ex = b.micro_batch(0, 0, 1, 0, 1)
    by_seq = {DNA.decode(e.ids): e.weight.tolist() for e in ex}
    assert by_seq["aacc"] == [1, 1, 1, 1]
    assert np.allclose(by_seq["ggtt"], [0.1] * 4)
    assert DNA.decode(DNA.reverse_complement_ids(DNA.encode("aacgN"))) == "[UNK]cgtt"
    assert DNA.decode(DNA.reverse_complement_ids(DNA.encode("aacgt"))) == "acgtt"


def test_batches_are_a_function_of_step_and_disjoint_across_ranks(tmp_path):
    fa = tmp_path / "r.fa"
    rng = np.random.default_rng(3)
    fa.write_text("".join(f">s{i} RF0000{i % 3 + 1} f\n{_random_seq(rng, 20 + i)}\n" for i in range(40)))
    prepare_rna([fa], tmp_path / "p", None, valid_fraction=0.34, min_len=5, seed=0)
    store = TokenStore(tmp_path / "p" / "train")
    b = RnaBatches(store, max_len=25, global_batch=4, seed=0)
    a0 = b.micro_batch(3, 0, 2, 0, 1)
    a1 = b.micro_batch(3, 1, 2, 0, 1)
    again = RnaBatches(store, max_len=25, global_batch=4, seed=0).micro_batch(3, 0, 2, 0, 1)
    assert [e.ids.tolist() for e in a0] == [e.ids.tolist() for e in again]
    assert all(len(e.ids) <= 25 for e in a0 + a1)
    assert len(a0) == len(a1) == 2
    # disjoint: the two ranks read different sequences of the same global batch
    assert not {tuple(e.ids) for e in a0} & {tuple(e.ids) for e in a1}
    # and, crops included, exactly what one process reads in 2 accumulation micro-batches
    acc = b.micro_batch(3, 0, 1, 0, 2) + b.micro_batch(3, 0, 1, 1, 2)
    assert [e.ids.tolist() for e in a0 + a1] == [e.ids.tolist() for e in acc]
    # another step reads another batch
    assert [e.ids.tolist() for e in b.micro_batch(4, 0, 2, 0, 1)] != [e.ids.tolist() for e in a0]


def test_random_crop():
    rng = np.random.default_rng(0)
    x = np.arange(100)
    y = random_crop(x, 10, rng)
    assert len(y) == 10 and (np.diff(y) == 1).all()
    assert random_crop(x[:5], 10, rng).tolist() == list(range(5))


def test_rna_fasta_without_rfam_accessions_splits_by_similarity(tmp_path, caplog):
    """Any RNA FASTA pretrains: near-identical copies land on the same side, the log says how."""
    import logging

    from nucfm.alphabet import RNA
    from nucfm.data.corpus import TokenStore, prepare_rna

    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(40):
        s = list(rng.choice(list("ACGU"), 150))
        seqs.append("".join(s))
        for p in rng.integers(0, 150, 2):  # a near-copy: two substitutions
            s[p] = "ACGU"[("ACGU".index(s[p]) + 1) % 4]
        seqs.append("".join(s))
    (tmp_path / "my.fa").write_text("".join(f">seq{i} from my lab\n{s}\n" for i, s in enumerate(seqs)))
    with caplog.at_level(logging.INFO, logger="nucfm"):
        summary = prepare_rna([tmp_path / "my.fa"], tmp_path / "prep", None, valid_fraction=0.1)
    assert "no Rfam accession" in caplog.text and "similarity groups" in caplog.text
    assert summary["split"].startswith("similarity") and summary["n_valid"] > 0 and summary["n_train"] > 0
    valid = {RNA.decode(TokenStore(tmp_path / "prep" / "valid")[i]) for i in range(summary["n_valid"])}
    together = sum((seqs[2 * i] in valid) == (seqs[2 * i + 1] in valid) for i in range(40))
    assert together >= 36  # LSH: ~0.97 per pair at two substitutions in 150 nt
