"""The official GPN variant-effect algorithm, restated step for step: the one reference that the
parity test (tests/test_vep.py) and the speed benchmark (bench/vep_vs_official.py) compare with.

``gpn.ss.run_vep`` itself cannot be imported (it needs Biopython and ``datasets`` and forces fp16
with torch.compile), so its ``get_tokenized_seq`` + ``MLMforVEPModel.forward`` are written out
here on the official model class: window ``[pos-1-W//2, pos-1+W//2)`` (one more base at the end
for odd W) N-padded and upper-cased, string reverse complement, mask at ``W//2`` (forward) and
``W//2 - 1`` (reverse, even W), ``llr = logit[alt] - logit[ref]`` per strand, mean of the two.
"""

from __future__ import annotations

import numpy as np
import torch

VOCAB = {c: i for i, c in enumerate(["[PAD]", "[MASK]", "[UNK]", "a", "c", "g", "t"])}
COMP = str.maketrans("ACGTN", "TGCAN")


def _ids(chars: list[str]) -> list[int]:
    return [VOCAB["[MASK]"] if c == "[MASK]" else VOCAB.get(c.lower(), VOCAB["[UNK]"]) for c in chars]


def official_vep_scores(model, genome, variants, window: int, batch_size: int = 16) -> np.ndarray:
    """Scores of A/C/G/T SNVs (``Variant`` with 0-based ``start``) with an official
    ``gpn.legacy.ConvNetForMaskedLM`` on ``genome`` (a :class:`nucfm.io.genome.Genome`)."""
    dev = next(model.parameters()).device  # inputs follow the model (a GPU in bench/gpu_throughput.py)
    pos_fwd = window // 2
    pos_rev = pos_fwd - 1 if window % 2 == 0 else pos_fwd
    out = []
    for b0 in range(0, len(variants), batch_size):
        vs = variants[b0 : b0 + batch_size]
        rows = torch.arange(len(vs))
        llr = []
        for strand in ("fwd", "rev"):
            seqs, refs, alts = [], [], []
            for v in vs:
                start = v.start - window // 2
                w = genome.fetch(v.chrom, start, start + window).upper()
                ref, alt, pos = v.ref, v.alt, pos_fwd
                if strand == "rev":
                    w, ref, alt, pos = w.translate(COMP)[::-1], ref.translate(COMP), alt.translate(COMP), pos_rev
                chars = list(w)
                assert chars[pos] == ref, (v, chars[pos])
                chars[pos] = "[MASK]"
                seqs.append(_ids(chars))
                refs.append(VOCAB[ref.lower()])
                alts.append(VOCAB[alt.lower()])
            with torch.no_grad():
                logits = model(input_ids=torch.tensor(seqs, device=dev)).logits[rows, pos].float().cpu()
            llr.append(logits[rows, torch.tensor(alts)] - logits[rows, torch.tensor(refs)])
        out.append(((llr[0] + llr[1]) / 2).numpy())
    return np.concatenate(out) if out else np.zeros(0)
