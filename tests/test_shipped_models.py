"""The shipped default models: they load offline, keep their numbers, and every command runs
with them when --model is not given."""

import numpy as np
import pytest
import torch

from nucfm import load_model
from nucfm.alphabet import DNA
from nucfm.checkpoint import registry
from nucfm.cli import main


def test_defaults_are_shipped_for_each_kind():
    assert set(registry.DEFAULTS) >= {"rna", "dna", "ss", "contact"}
    for name in registry.DEFAULTS.values():
        assert registry.MODELS[name].shipped
        assert (registry.SHIPPED_DIR / name / "MODEL_CARD.md").exists()
        size = sum(f.stat().st_size for f in (registry.SHIPPED_DIR / name).iterdir())
        assert size < 50 * 2**20


def test_rna_default_golden_embedding():
    m = load_model(registry.DEFAULTS["rna"])
    e = m.embed(["GGGAAACUUCGGUUUCCC"], pool="mean")[0]
    np.testing.assert_allclose(e[:4], [0.50484788, 0.56543690, 0.30712208, 0.19650699], atol=1e-4)
    assert e.sum() == pytest.approx(-0.74959469, abs=1e-3)


def test_dna_default_golden_logits():
    m = load_model(registry.DEFAULTS["dna"])
    ids = torch.tensor(DNA.encode("ACGTACGTTTGACAGTCAGTACGATCGACTAGCTAG"))[None]
    ids[0, 10] = DNA.mask_id
    with torch.no_grad():
        got = m.token_logits(ids)[0, 10, 3:].numpy()  # a, c, g, t
    np.testing.assert_allclose(got, [0.75779253, 0.96977510, 0.65297866, 0.78676490], atol=1e-4)


def test_commands_run_on_defaults(tmp_path):
    fa = tmp_path / "r.fa"
    fa.write_text(">a\nGGGAAACUUCGGUUUCCC\n>b\nGCGGAUUUAGCUCAGUUGGGAGAGCGCCAGACUGAAGAUCUGGAG\n")
    assert main(["embed", "-i", str(fa), "-o", str(tmp_path / "e.h5")]) == 0
    assert main(["fold", "-i", str(fa), "-o", str(tmp_path / "f.dbn")]) == 0
    assert (tmp_path / "f.dbn").read_text().count(">") == 2
    rng = np.random.default_rng(0)
    genome = "".join(rng.choice(list("ACGT"), 3000))
    (tmp_path / "g.fa").write_text(">chr1\n" + genome + "\n")
    (tmp_path / "v.tsv").write_text(f"chrom\tpos\tref\talt\nchr1\t1\t{genome[0]}\tA\nchr1\t1500\t{genome[1499]}\tC\n")
    assert main(["vep", "--genome", str(tmp_path / "g.fa"), "--variants", str(tmp_path / "v.tsv"),
                 "-o", str(tmp_path / "s.tsv"), "--no-progress"]) == 0
    lines = (tmp_path / "s.tsv").read_text().splitlines()
    assert len(lines) == 3 and "score" in lines[0]


def test_ss_default_golden_probabilities():
    from nucfm.checkpoint.structure import load_structure_model

    p = load_structure_model(registry.DEFAULTS["ss"])
    seq = "GGGGAAACUUCGGUUUCCCCAUGCAUGC"
    probs = p.predict_probs([seq])[0]
    np.testing.assert_allclose([probs[0, 19], probs[3, 16], probs[7, 12], probs[0, 27]],
                               [5.4190391e-01, 8.3227867e-01, 6.2501007e-01, 1.5015779e-04], atol=1e-4)
    np.testing.assert_allclose(probs, probs.T)
    from nucfm.tasks.structure import fold_sequences

    assert fold_sequences(p, [seq])[0][0] == [(0, 19), (1, 18), (2, 17), (3, 16), (4, 15), (5, 14), (6, 13), (7, 12)]


def test_contact_default_golden_probabilities_and_command(tmp_path):
    from nucfm.checkpoint.structure import load_structure_model

    assert set(registry.DEFAULTS) >= {"contact"}
    p = load_structure_model(registry.DEFAULTS["contact"])
    assert p.config.task == "contact"
    seq = "GGGGAAACUUCGGUUUCCCCAUGCAUGCAAAGCAUGCAUGGG"
    probs = p.predict_probs([seq])[0]
    np.testing.assert_allclose([probs[0, 19], probs[3, 16], probs[0, 41], probs[5, 30]],
                               [0.87100118, 0.96497047, 0.21189073, 0.09536768], atol=1e-4)
    fa = tmp_path / "r.fa"
    fa.write_text(f">a\n{seq}\n")
    assert main(["contacts", "-i", str(fa), "-o", str(tmp_path / "c.npz")]) == 0
    assert (tmp_path / "c.top.tsv").read_text().count("\n") == 1 + len(seq)


def test_mrl_model_knows_uaug_frame_and_structure():
    """The shipped 5' UTR model, on random UTRs of 25-150 nt (trained on 50 nt only): an
    out-of-frame upstream AUG (reading past the start codon out of frame) lowers the predicted
    ribosome load far more than an in-frame one, and a stable hairpin lowers it too."""
    name = next(n for n, e in registry.MODELS.items() if e.kind == "task" and "mrl" in n)
    model = load_model(name)
    rng = np.random.default_rng(0)
    for n in (25, 50, 150):
        base = ["".join(rng.choice(list("ACGU"), n)).replace("AUG", "ACG") for _ in range(40)]
        p = lambda seqs: float(np.mean(np.stack(model.predict(seqs))))  # noqa: E731
        plain = p(base)
        out_of_frame = p([s[: n - 20] + "AUG" + s[n - 17 :] for s in base])  # 17 nt after: not a multiple of 3
        in_frame = p([s[: n - 21] + "AUG" + s[n - 18 :] for s in base])
        hairpin = p([s[: n // 2 - 10] + "GGGGCCCCAAAAGGGGCCCC" + s[n // 2 + 10 :] for s in base])
        assert out_of_frame < in_frame - 0.5 and out_of_frame < plain - 0.8, (n, plain, in_frame, out_of_frame)
        assert hairpin < plain - 0.2, (n, plain, hairpin)
