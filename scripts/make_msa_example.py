"""Write the hand-made GPN-MSA example of ``examples/dna-msa/`` (docs/models/gpn-msa.md, tests).

* ``target.fa``: a 120-bp random "chr1" of the target species ``hg38`` (seeded; not real sequence);
* ``region.maf``: two MAF blocks over it: 0-70 with ``panTro`` and ``mm10`` (``mm10`` has a
  2-base insertion relative to the target and a gapped stretch), 70-120 with ``panTro`` only
  (``mm10`` missing there);
* ``region.fa``: the same alignment as aligned FASTA of the region (``>hg38 chr1:1-120``);
* ``species.txt``: the species order, target first;
* ``variants.tsv``: SNVs where ``panTro`` carries the ALT base, the REF base, or a gap;
* ``copy-model/``: a hand-set (not trained) GPN-MSA stand-in in nucfm format: a 1-layer RoFormer
  whose attention and feed-forward outputs are zero and whose decoder reads the first aligned
  species' one-hot channels, so it predicts the base ``panTro`` has at the masked position (and
  nothing where ``panTro`` has a gap). Its ``vep`` score is ``+d`` where ``panTro`` has ALT, ``-d``
  where it has REF and 0 otherwise, ``d = 1 / sqrt(p (1 - p)) / sqrt(1 + 1e-5)`` = 2.562038 with
  ``p = 3/16`` (the masked position's three one-hot channels among 16, after the LayerNorms; the
  last one has eps 1e-5).

    python scripts/make_msa_example.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from nucfm import save_model
from nucfm.models import GPN, GPNConfig

COMP = str.maketrans("ACGT", "TGCA")


def copy_model() -> GPN:
    config = GPNConfig(alphabet="gpn-msa", encoder="roformer", num_layers=1, hidden_size=16, intermediate_size=16,
                       num_heads=2, max_len=256, n_aux_features=2 * 5, mlm_head_transform=False)
    model = GPN(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0 if name.endswith("norm.weight") else 0.0)
        V = len(model.alphabet)
        for k in range(1, 5):  # A C G T: logit of letter k <- the first aligned species' channel of k
            model.decoder.weight[k, V + k] = 1.0
    return model.eval()


def main(out: Path) -> None:
    rng = np.random.default_rng(7)
    out.mkdir(parents=True, exist_ok=True)
    target = "".join(rng.choice(list("ACGT"), 120))
    target = target[:30] + target[30:40].lower() + target[40:]  # a soft-masked stretch
    chimp = list(target.upper())
    for i in (10, 50, 90):  # substitutions: chimp has another base
        chimp[i] = "ACGT"[("ACGT".index(chimp[i]) + 1) % 4]
    for i in (20, 21, 100):  # deletions in chimp
        chimp[i] = "-"
    chimp = "".join(chimp)
    mouse = "".join(c if rng.random() > 0.3 else rng.choice(list("ACGT")) for c in target[:70].upper())
    mouse = mouse[:60] + "-" * 5 + mouse[65:]
    # block 1 (target 0-70) with a 2-base insertion in mouse after target base 45
    t1, c1, m1 = target[:45] + "--" + target[45:70], chimp[:45] + "--" + chimp[45:70], mouse[:45] + "TT" + mouse[45:]
    t2, c2 = target[70:], chimp[70:]

    def s_line(src, start, text, size_total):
        n = sum(ch != "-" for ch in text)
        return f"s {src:<12} {start:>4} {n:>3} + {size_total:>4} {text}"

    maf = ["##maf version=1 scoring=none", "# hand-made example for nucfm (scripts/make_msa_example.py)", "",
           "a", s_line("hg38.chr1", 0, t1, 120), s_line("panTro.chr1", 0, c1, 200), s_line("mm10.chr7", 500, m1, 9000),
           "", "a", s_line("hg38.chr1", 70, t2, 120), s_line("panTro.chr1", 68, c2, 200), ""]
    (out / "region.maf").write_text("\n".join(maf) + "\n")
    fa_mouse = mouse + "-" * 50
    (out / "region.fa").write_text(f">hg38 chr1:1-120\n{target}\n>panTro\n{chimp}\n>mm10\n{fa_mouse}\n")
    (out / "target.fa").write_text(f">chr1 hand-made example target\n{target}\n")
    (out / "species.txt").write_text("hg38\npanTro\nmm10\n")
    rows = ["chrom\tpos\tref\talt\tid\texpected"]
    for i in (10, 50, 90):  # chimp has ALT: expected +d
        ref = target[i].upper()
        rows.append(f"chr1\t{i + 1}\t{ref}\t{chimp[i]}\tchimp_has_alt_{i + 1}\tplus")
    for i in (5, 60, 110):  # chimp has REF: expected -d
        ref = target[i].upper()
        alt = "ACGT"[("ACGT".index(ref) + 2) % 4]
        rows.append(f"chr1\t{i + 1}\t{ref}\t{alt}\tchimp_has_ref_{i + 1}\tminus")
    for i in (20, 100):  # chimp has a gap: expected 0
        ref = target[i].upper()
        alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
        rows.append(f"chr1\t{i + 1}\t{ref}\t{alt}\tchimp_gap_{i + 1}\tzero")
    (out / "variants.tsv").write_text("\n".join(rows) + "\n")
    save_model(copy_model(), out / "copy-model", metadata={"kind": "dna", "note": "hand-set GPN-MSA stand-in"})


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "examples" / "dna-msa")
