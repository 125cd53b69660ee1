"""Does an RNA model's pooled embedding carry RNA type? kNN type accuracy on the nRC test set
(2,600 records, 13 types, the type is the header's second word) for pooled embeddings written by
``nucfm embed --pool mean`` (one .h5 per layer or model), against 3-mer composition; each on the raw
features and after standardising every feature (zero mean, unit variance over the records), with
:func:`nucfm.analysis.representation.knn_accuracy` (k = 5, cosine, stratified 5-fold CV, seed 0).

    nucfm embed -m MODEL -i ../shared/data/ncrna/nrc/test_2600.fasta --pool mean -o last.h5
    python bench/rna_signal.py --fasta ../shared/data/ncrna/nrc/test_2600.fasta --embeddings last.h5 -o rna.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import h5py
import numpy as np

from nucfm.analysis.representation import kmer_composition, knn_accuracy
from nucfm.io.fasta import read_fasta


def standardise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, np.float64)
    return (X - X.mean(0)) / np.maximum(X.std(0), 1e-8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fasta", required=True)
    ap.add_argument("--embeddings", nargs="+", required=True, help="pooled .h5 files of nucfm embed")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    recs = list(read_fasta(a.fasta))
    label = {r.id: r.description.split()[0] if r.description else "" for r in recs}
    res: dict = {"fasta": a.fasta, "n": len(recs)}
    y_all = np.array([label[r.id] for r in recs])
    X = kmer_composition([r.seq for r in recs], 3)
    res["3-mer"] = {"raw": knn_accuracy(X, y_all)["accuracy"],
                    "standardised": knn_accuracy(standardise(X), y_all)["accuracy"]}
    for path in a.embeddings:
        with h5py.File(path, "r") as f:
            E = f["embeddings"][:]
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in f["ids"][:]]
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        y = np.array([label[i] for i in ids])
        res[Path(path).name] = {"model": str(attrs.get("model")), "layer": int(attrs.get("layer", -1)),
                                "raw": knn_accuracy(E, y)["accuracy"],
                                "standardised": knn_accuracy(standardise(E), y)["accuracy"]}
    print(json.dumps(res, indent=1))
    Path(a.output).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
