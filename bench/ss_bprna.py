"""Secondary-structure benchmark: a nucfm structure model vs ViennaRNA RNAfold (MFE), same run.

Two RNAfold rows: its default energy parameters (Turner 2004: the baseline the target refers
to) and Langdon 2018 (``RNAfold -P rna_langdon2018.par``), the stronger thermodynamic baseline
once a model reads Langdon base-pair probabilities.

Test sets: bpRNA TS0 (1,305 sequences) and the PDB test set TS1 (67 chains; labels include
non-canonical pairs and base multiplets, scored as given). For each method: macro precision,
recall, F1, MCC (exact and ±1 shift) and wall seconds per sequence. The nucfm time covers
everything a user waits for: feature computation (ViennaRNA bpp when the model uses it, LM
embeddings), the head, and decoding.

    flock /tmp/nucfm-bench.lock python bench/ss_bprna.py --threads 1 -o bench/results/ss_bprna.json

Sequences are upper-cased, T->U, other letters -> N for both methods (RNAfold treats N as
unpairable).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def load_sets(data: Path, which: list[str]):
    from nucfm.io.fasta import read_fasta
    from nucfm.io.structure import read_pair_list, read_structures

    sets = {}
    if "TS0" in which:
        sets["bpRNA TS0"] = [(r.id, r.seq, r.pairs) for r in read_structures(data / "bprna" / "TS0.dbn")]
    if "TS1" in which:
        recs = []
        for f in sorted(os.listdir(data / "pdb" / "TS1_labels")):
            seq = next(read_fasta(data / "pdb" / "TS1_sequences" / f)).seq
            recs.append((f, seq, read_pair_list(data / "pdb" / "TS1_labels" / f, seq=seq, strict=False).pairs))
        sets["PDB TS1"] = recs
    return sets


def score(preds, recs):
    from nucfm.io.structure import StructureRecord
    from nucfm.metrics import macro_average
    from nucfm.tasks.structure import score_structures

    refs = [StructureRecord(rid, s, ref) for rid, s, ref in recs]
    return {"exact": macro_average(score_structures(preds, refs)),
            "shift1": macro_average(score_structures(preds, refs, shift=1))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="structure model (default: the shipped default)")
    ap.add_argument("--data", default="../shared/data/ss", help="folder with bprna/ and pdb/")
    ap.add_argument("--sets", default="TS0,TS1")
    ap.add_argument("--limit", type=int, default=0, help="first N sequences per set (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", default=None, help="write the results as JSON")
    args = ap.parse_args(argv)

    import torch

    from nucfm.alphabet import structure_letters as clean_rna
    from nucfm.checkpoint import registry
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.data.structure_features import vienna_mfe
    from nucfm.tasks.structure import fold_sequences

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.exists():
        sys.exit(f"no data folder {data} (see shared/data/README.md)")
    name = args.model or registry.default_model("ss")
    predictor = load_structure_model(name)
    results = {"model": str(name), "threads": args.threads, "decode": predictor.config.decode, "sets": {}}
    for set_name, recs in load_sets(data, args.sets.split(",")).items():
        if args.limit:
            recs = recs[: args.limit]
        seqs = [clean_rna(s) for _, s, _ in recs]
        # interleaved in chunks of 25 sequences, so every method sees the same machine load while
        # ViennaRNA's global energy parameters switch (~8 ms) once per chunk, not per sequence
        methods = {"nucfm": lambda chunk: [pairs for pairs, _ in fold_sequences(predictor, chunk)],
                   "rnafold": lambda chunk: [vienna_mfe(s) for s in chunk],
                   "rnafold-langdon": lambda chunk: [vienna_mfe(s, "Langdon2018") for s in chunk]}
        preds = {m: [] for m in methods}
        secs = dict.fromkeys(methods, 0.0)
        for c in range(0, len(seqs), 25):
            for m, fold in methods.items():
                t = time.perf_counter()
                preds[m].extend(fold(seqs[c : c + 25]))
                secs[m] += time.perf_counter() - t
        res = {"n": len(recs), "mean_length": float(np.mean([len(s) for s in seqs]))}
        for m in methods:
            res[m] = score(preds[m], recs) | {"seconds_per_seq": secs[m] / len(recs)}
        results["sets"][set_name] = res
        print(f"\n{set_name}: {len(recs)} sequences, mean length {res['mean_length']:.0f}")
        print(f"{'method':16s} {'P':>6s} {'R':>6s} {'F1':>6s} {'MCC':>6s} {'F1(±1)':>7s} {'s/seq':>8s}")
        for m in methods:
            e, s = res[m]["exact"], res[m]["shift1"]
            print(f"{m:16s} {e['precision']:6.3f} {e['recall']:6.3f} {e['f1']:6.3f} {e['mcc']:6.3f} "
                  f"{s['f1']:7.3f} {res[m]['seconds_per_seq']:8.4f}")
        sys.stdout.flush()
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
