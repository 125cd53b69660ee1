"""Print the largest differences between official GPN models (random weights, built from the
``gpn`` package as the parity tests build them) and nucfm: logits, final hidden states, and
GPN-MSA VEP scores against ``gpn.msa.vep``. Needs the test extra.

    PYTHONPATH=src:tests python scripts/gpn_parity_diffs.py
"""

import tempfile
from pathlib import Path

import numpy as np
import test_gpn_current_parity as t
import torch

from nucfm import load_model
from nucfm.io.alignment import read_alignment
from nucfm.io.variants import Variant
from nucfm.tasks.variants import score_variants

for name, kw in t.ENCODERS.items():
    official = t.official_model(**kw)
    d = Path(tempfile.mkdtemp())
    official.save_pretrained(d)
    ours = load_model(d)
    ids, aux = t.inputs(official, 3, 90, seed=1)
    with torch.no_grad():
        lo = (official(input_ids=ids, aux_features=aux).logits - ours.token_logits(ids, aux=aux)).abs().max().item()
        hs = (official.model(input_ids=ids, aux_features=aux).last_hidden_state
              - ours.hidden(ids, None, -1, aux=aux)).abs().max().item()
    print(f"{name:26s} max|logits diff| {lo:.2e}  max|hidden diff| {hs:.2e}")

d = Path(tempfile.mkdtemp())
official = t.official_model(**t.ENCODERS["gpn-msa"])
official.save_pretrained(d / "model")
L = 120
msa = t._random_alignment(L, 3)
msa[:, 0] = np.frombuffer(b"ACGTacgt", dtype=np.uint8)[np.random.default_rng(4).integers(0, 8, L)]
padded = np.full((L + t.W, t.SPECIES), ord("-"), dtype=np.uint8)
padded[t.W // 2 : t.W // 2 + L] = msa
t._write_zarr(d / "ours.zarr", {"chr1": msa})
t._write_zarr(d / "official.zarr", {"chr1": padded})
starts = list(range(L))
refs = [chr(msa[s, 0]).upper() for s in starts]
alts = ["ACGT"[("ACGT".index(r) + 1 + k % 3) % 4] for k, r in enumerate(refs)]
got = score_variants(load_model(d / "model"), read_alignment(d / "ours.zarr"),
                     [Variant("chr1", s, r, a) for s, r, a in zip(starts, refs, alts)], window=t.W)["score"]
ref = t.official_vep(d / "model", d / "official.zarr", "chr1", [s + 1 + t.W // 2 for s in starts], refs, alts)
print(f"GPN-MSA VEP, {L} SNVs (every position, edges included): max|score diff| {np.abs(got - ref).max():.2e}, "
      f"score range [{got.min():.3f}, {got.max():.3f}]")
