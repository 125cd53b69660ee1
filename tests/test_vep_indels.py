"""MNVs and indels: representation invariance, reduction to GPN's rule, strands, limits, statuses."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nucfm.io.genome import Genome
from nucfm.io.variants import Variant, check_variants, read_variants, variant_span
from nucfm.tasks.indels import haplotype_windows, score_haplotypes
from nucfm.tasks.variants import score_variants

from tiny import vep_dna_model

rng = np.random.default_rng(1)
LEFT = "".join(rng.choice(list("ACGT"), 60))
RIGHT = "".join(rng.choice(list("ACGT"), 60))
CHR = LEFT + "G" + "CA" * 6 + "T" + RIGHT  # a CA repeat at 0-based 61..72
COMP = str.maketrans("ACGT", "TGCA")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("indel")
    (d / "g.fa").write_text(f">c\n{CHR}\n>rc\n{CHR.translate(COMP)[::-1]}\n")
    model = vep_dna_model()
    return Genome(d / "g.fa"), model


def haplotype(genome, v):
    seq = genome.fetch(v.chrom, 0, genome.length(v.chrom))
    return seq[: v.start] + v.alt + seq[v.start + len(v.ref):]


def test_span_is_the_same_for_every_placement_in_a_repeat(setup):
    g, _ = setup
    # deletion of one CA unit written at each of its placements (left-aligned one anchored on G)
    forms = [Variant("c", 60, "GCA", "G")] + [Variant("c", s, CHR[s : s + 3], CHR[s]) for s in range(61, 71)]
    forms = [v for v in forms if haplotype(g, v) == haplotype(g, forms[0])]
    assert len(forms) >= 6  # many VCF spellings of one deletion
    spans = {variant_span(g, v) for v in forms}
    assert len(spans) == 1
    u, w, alt = spans.pop()
    assert (u, w) == (61, 73) and len(alt) == 10  # the whole repeat, minus one unit
    ins = [Variant("c", s, CHR[s], CHR[s] + CHR[s + 1 : s + 3]) for s in range(60, 72)]
    ins = [v for v in ins if haplotype(g, v) == haplotype(g, ins[0])]
    assert len(ins) >= 6 and len({variant_span(g, v) for v in ins}) == 1


def test_representations_of_one_indel_score_the_same(setup):
    g, model = setup
    forms = [Variant("c", 60, "GCA", "G"), Variant("c", 62, "ACA", "A"), Variant("c", 70, "ACA", "A"),
             Variant("c", 60, "GCACACACACACAT", "GCACACACACAT")]  # left, shifted, right, padded
    assert len({haplotype(g, v) for v in forms}) == 1
    for method in ("pll", "pll_centred", "unmasked"):
        s = score_variants(model, g, forms, window=64, indel_method=method)["score"]
        np.testing.assert_allclose(s, s[0], atol=1e-9)
        assert abs(s[0]) > 1e-3


def test_one_base_mnv_equals_the_snv_and_ref_equal_alt_is_zero(setup):
    g, model = setup
    s = 30
    alt = {"A": "G", "C": "T", "G": "A", "T": "C"}[CHR[s]]
    snv = Variant("c", s, CHR[s], alt)
    mnv = Variant("c", s - 1, CHR[s - 1 : s + 2], CHR[s - 1] + alt + CHR[s + 1])
    same = Variant("c", s, CHR[s : s + 3], CHR[s : s + 3])
    got = score_variants(model, g, [snv, mnv, same], window=40, per_strand=True)
    assert got["score"][0] == got["score"][1] and got["score_fwd"][0] == got["score_fwd"][1]
    assert got["score"][2] == 0


def test_pll_without_flanks_is_gpns_rule_on_an_snv(setup):
    g, model = setup
    for s in (0, 30, 61, len(CHR) - 1):
        alt = {"A": "G", "C": "T", "G": "A", "T": "C"}[CHR[s]]
        gpn = score_variants(model, g, [Variant("c", s, CHR[s], alt)], window=41, per_strand=True)
        f, r = score_haplotypes(model, g, [("c", s, s + 1, alt)], window=41, flank=0)
        fc, rc = score_haplotypes(model, g, [("c", s, s + 1, alt)], window=41, flank=0, method="pll_centred")
        np.testing.assert_allclose([fc[0], rc[0]], [f[0], r[0]], atol=1e-9)  # entropies cancel
        np.testing.assert_allclose([f[0], r[0]], [gpn["score_fwd"][0], gpn["score_rev"][0]], atol=1e-5)


def test_windows_are_aligned_and_of_equal_length(setup):
    g, _ = setup
    ref_w, alt_w, lr, la = haplotype_windows(g, "c", 40, 43, "T", 32)
    assert len(ref_w) == len(alt_w) == 32 and (lr, la) == (15, 16) and ref_w == CHR[25:57]
    assert alt_w == CHR[24:40] + "T" + CHR[43:58]  # centred on the one ALT base, same coordinates


@settings(max_examples=12, deadline=None)
@given(start=st.integers(5, 120), size=st.sampled_from([2, 4]), kind=st.sampled_from(["ins", "del", "mnv"]),
       method=st.sampled_from(["pll", "unmasked"]))
def test_reverse_complement_genome_swaps_strands(setup, start, size, kind, method):
    """A change seen on the reverse-complemented contig gets the same strand scores, swapped
    (windows are mirror images when W - Lr and W - La are even)."""
    g, model = setup
    L = len(CHR)
    if kind == "ins":
        v = Variant("c", start, CHR[start], CHR[start] + "GT" * (size // 2))
    elif kind == "del":
        v = Variant("c", start, CHR[start : start + size + 1], CHR[start])
    else:
        v = Variant("c", start, CHR[start : start + size], CHR[start : start + size].translate(COMP))
    u, w, alt = variant_span(g, v)
    if (w - u) % 2 or len(alt) % 2:
        return  # the trimmed change has an odd length (e.g. an MNV with a self-complementary base)
    mirrored = ("rc", L - w, L - u, alt.translate(COMP)[::-1])
    a = score_haplotypes(model, g, [("c", u, w, alt)], window=40, method=method)
    b = score_haplotypes(model, g, [mirrored], window=40, method=method)
    np.testing.assert_allclose([a[0][0], a[1][0]], [b[1][0], b[0][0]], atol=1e-5)


def test_long_alleles_edges_and_bad_alleles_get_statuses(setup, tmp_path):
    g, model = setup
    L = len(CHR)
    rows = [
        ("c", 10, CHR[9:30], CHR[9]),  # 20-bp deletion: longer than window/4 = 16
        ("c", 10, CHR[9], CHR[9] + "ACGTACGTACGTACGTACGT"),  # 20-bp insertion
        ("c", 1, CHR[0:3], CHR[0]),  # deletion at the contig start
        ("c", L - 2, CHR[L - 3 : L], CHR[L - 3]),  # deletion ending at the contig end
        ("c", L, CHR[L - 1], CHR[L - 1] + "GG"),  # insertion after the last base
        ("c", L - 1, CHR[L - 2 : L] + "A", "A"),  # runs past the end
        ("c", 20, CHR[19], "<DEL>"), ("c", 20, CHR[19], "*"), ("c", 20, CHR[19], "N[c:5["),
        ("c", 20, CHR[19:21], "NA"), ("c", 20, CHR[19], CHR[19] + "NN"),
        ("c", 20, CHR[19:23], CHR[19]), ("c", 21, CHR[20:22], CHR[20]),  # overlapping records
    ]
    (tmp_path / "v.tsv").write_text("chrom\tpos\tref\talt\n" + "".join(f"{c}\t{p}\t{r}\t{a}\n" for c, p, r, a in rows))
    vt = read_variants(tmp_path / "v.tsv")
    status = list(check_variants(vt, g, max_span=64 // 4))
    assert status == ["allele_too_long", "allele_too_long", "ok", "ok", "ok", "pos_out_of_range",
                      "symbolic_allele", "spanning_deletion", "breakend", "alt_not_acgt", "alt_not_acgt", "ok", "ok"]
    ok = [v for v, s in zip(vt.variants, status) if s == "ok"]
    got = score_variants(model, g, ok, window=64)["score"]
    assert np.isfinite(got).all() and (got != 0).all()


def test_methods_agree_in_sign_on_average_and_differ(setup):
    """The two indel methods are different numbers on the same variants (both finite)."""
    g, model = setup
    vs = [Variant("c", s, CHR[s : s + 3], CHR[s]) for s in range(5, 120, 9)]
    a = score_variants(model, g, vs, window=48, indel_method="pll")["score"]
    b = score_variants(model, g, vs, window=48, indel_method="unmasked")["score"]
    assert np.isfinite(a).all() and np.isfinite(b).all() and not np.allclose(a, b)
