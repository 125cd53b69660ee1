"""``nucfm compare``: do embedding distances between whole records (genomes, long RNAs) draw the
same tree as sequence distances?

One vector per record — the per-residue mean over the whole record, computed by the code behind
``nucfm embed --pool mean`` (:func:`nucfm.models.embedding.embed_ids`: records longer than the
model maximum are embedded in overlapping windows, each residue read once from the window that
owns it, then averaged; ``mask_uncalled`` averages over A/C/G/U residues only, all residues
still embedded in context). Distances between the vectors (cosine or euclidean) and between the
sequences (:mod:`nucfm.analysis.sequence_distance`), a neighbour-joining tree of each, their
Mantel correlation and Robinson-Foulds distance (:mod:`nucfm.analysis.tree_compare`).

Output directory (replaced as a whole, atomically):

* ``records.tsv`` — key (tree tip name), id, file, length, called (A/C/G/U/T letters), uncalled;
* ``embeddings.tsv`` — key and the D vector components;
* ``distances_embedding.tsv``, ``distances_sequence.tsv`` — square matrices (row and column keys);
* ``pairs.tsv`` — one row per record pair: both distances (the scatter of the figure) and, for
  ``aligned``, the counts behind the p-distance (differences, substitutions, gaps, compared);
* ``tree_embedding.nwk``, ``tree_sequence.nwk`` — unrooted NJ trees (Newick);
* ``compare.json``, ``compare.tsv`` — settings, Mantel r and p, Robinson-Foulds raw and
  normalised with a shuffled-tip null, and a confound check: the Mantel correlation of the
  embedding distances with the difference in uncalled letters (N) between records; a note
  wherever a number is undefined (NaN in the TSV, null in the JSON);
* ``compare.png``, ``compare.svg`` — the figure (tanglegram, heatmaps, scatter).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.paths import safe_name, unique_names

log = logging.getLogger("nucfm")
SEQ_DISTANCES = ("aligned", "mash")
OUTPUT_SUFFIXES = (".tsv", ".json", ".nwk", ".png", ".svg")
CALLED = set("ACGUTacgut")
# Residues embedded per call of the model code: bounds the per-residue arrays held at once.
CHUNK_RESIDUES = 200_000


@dataclass(frozen=True)
class Genome:
    key: str
    id: str
    file: str
    seq: str  # gaps ('-', '.') removed, letters as in the file


def read_records(paths: list[str]) -> list[Genome]:
    """Every record of every FASTA in order, checked for ``nucfm compare``: at least 3 records,
    no empty record, none without an A/C/G/U/T letter, no two ids with the same record key
    (:func:`nucfm.paths.unique_names`: file-safe, case-insensitive). One-line InputError otherwise."""
    from nucfm.io.fasta import read_fasta

    recs = []
    for path in paths:
        for r in read_fasta(path):
            recs.append((str(path), r.id, r.seq.replace("-", "").replace(".", "")))
    if len(recs) < 3:
        raise InputError(f"{len(recs)} record(s) in {', '.join(map(str, paths))}: comparing trees needs at least 3 "
                         "records (a tree and a Mantel test need 3)")
    empty = [rid for _, rid, s in recs if not s]
    if empty:
        raise InputError(f"{len(empty)} empty record(s) ({_shown(empty)}): an empty sequence has no embedding and "
                         "no sequence distance; remove them")
    uncalled = [rid for _, rid, s in recs if not CALLED.intersection(s)]
    if uncalled:
        raise InputError(f"{len(uncalled)} record(s) with no A/C/G/U/T letter, e.g. only N ({_shown(uncalled)}): "
                         "nothing to compare; remove them")
    ids = [rid for _, rid, _ in recs]
    keys = unique_names(ids)
    clash = [(ids[i], i) for i, k in enumerate(keys) if k != safe_name(ids[i])]
    if clash:
        rid, i = clash[0]
        first = next(j for j in range(i) if keys[j].lower() == safe_name(rid).lower())
        raise InputError(f"duplicate record id {rid!r} (records {first + 1} and {i + 1}"
                         f"{'' if ids[first] == rid else f', as {ids[first]!r} and {rid!r} name the same key'}"
                         f"; {len(clash)} duplicate(s) in all): a tree needs one tip per name; rename them")
    return [Genome(k, rid, f, s) for k, (f, rid, s) in zip(keys, recs)]


def _shown(items: list[str], n: int = 3) -> str:
    return ", ".join(repr(x) for x in items[:n]) + (" ..." if len(items) > n else "")


def record_vectors(model, seqs: list[str], layer: int = -1, mask_uncalled: bool = False, batch_tokens: int = 1024,
                   overlap: int | None = None, report=None, progress=None) -> np.ndarray:
    """(N, D) record vectors: the mean of the per-residue embeddings over each whole record
    (windows over long records exactly as ``nucfm embed --pool mean``); with ``mask_uncalled``,
    the mean over residues that are A, C, G or U/T only."""
    from nucfm.models.embedding import embed_ids

    alphabet = model.alphabet
    called_ids = np.array([alphabet.index(c) for c in "ACGUTacgut" if c in alphabet.tokens])
    out = np.empty((len(seqs), model.hidden_size), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        start = 0
        while start < len(seqs):
            stop, size = start, 0
            while stop < len(seqs) and (stop == start or size + len(seqs[stop]) <= CHUNK_RESIDUES):
                size += len(seqs[stop])
                stop += 1
            enc = [alphabet.encode(s, report) for s in seqs[start:stop]]
            if not mask_uncalled:
                vecs = embed_ids(model, enc, layer=layer, pool="mean", batch_tokens=batch_tokens, overlap=overlap,
                                 progress=progress)
            else:
                per_residue = embed_ids(model, enc, layer=layer, pool=None, batch_tokens=batch_tokens,
                                        overlap=overlap, progress=progress)
                vecs = [h[np.isin(e, called_ids)].mean(0) for e, h in zip(enc, per_residue)]
            out[start:stop] = np.stack(vecs)
            start = stop
    finally:
        model.train(was_training)
    return out


def compare_records(
    model,
    inputs: list[str],
    output: str | Path,
    layer: int = -1,
    metric: str = "cosine",
    seq_distance: str = "aligned",
    kmer: int = 21,
    mask_uncalled: bool = False,
    mantel_method: str = "pearson",
    permutations: int = 999,
    seed: int = 0,
    batch_tokens: int = 1024,
    overlap: int | None = None,
    model_name: str | None = None,
    show_progress: bool = True,
) -> dict:
    """Compare the embedding tree with the sequence tree of the records of ``inputs`` (FASTA
    files, records concatenated in order) and write the output directory ``output`` (see the
    module docstring). ``model``: a language model, or a callable returning one (called after
    the records are read and the sequence distances computed, so bad input costs no model load).
    Returns the summary written to ``compare.json``."""
    from nucfm.alphabet import EncodingReport
    from nucfm.analysis import sequence_distance as sd
    from nucfm.analysis import tree_compare as tc
    from nucfm.paths import atomic_path
    from nucfm.progress import bar as progress_bar

    if seq_distance not in SEQ_DISTANCES:
        raise InputError(f"sequence distance {seq_distance!r}: choose one of {', '.join(SEQ_DISTANCES)}")
    records = read_records(inputs)
    keys, seqs = [r.key for r in records], [r.seq for r in records]
    n = len(records)
    log.info(f"{n} records from {len(inputs)} file(s), {sum(map(len, seqs)):,} nt")
    with progress_bar(total=n * (n - 1) // 2, unit="pair", desc=f"{seq_distance} distances",
                      enabled=show_progress) as bar:
        if seq_distance == "aligned":
            d_seq, counts = sd.aligned_distances(seqs, names=keys, progress=bar)
        else:
            d_seq, counts = sd.mash_distances(seqs, k=kmer, names=keys, progress=bar), {}

    if callable(model) and not hasattr(model, "alphabet"):
        model = model()
    report = EncodingReport()
    with progress_bar(total=sum(map(len, seqs)), unit="nt", unit_scale=True, desc="embed",
                      enabled=show_progress) as bar:
        vectors = record_vectors(model, seqs, layer, mask_uncalled, batch_tokens, overlap, report, progress=bar)
    for msg in report.messages("->".join(model.alphabet.convert[0]) if model.alphabet.convert else ""):
        log.info(msg)
    windowed = sum(1 for s in seqs if model.max_len is not None and len(s) > model.max_len)
    if windowed:
        log.info(f"{windowed} records longer than {model.max_len} nt were embedded in overlapping windows")
    d_emb = tc.pairwise_distances(vectors, metric)

    tree_emb, tree_seq = tc.nj_tree(d_emb, keys), tc.nj_tree(d_seq, keys)
    mantel = tc.mantel_test(d_emb, d_seq, mantel_method, permutations, seed)
    # A confound check: uncalled letters (N runs of sequencing gaps) move a record's embedding
    uncalled = np.array([len(r.seq) - sum(r.seq.count(c) for c in CALLED) for r in records], dtype=float)
    uncalled_mantel = tc.mantel_test(d_emb, np.abs(uncalled[:, None] - uncalled[None]), mantel_method, permutations,
                                     seed, names=("embedding distances", "counts of uncalled letters (N...)"))
    rf = tc.robinson_foulds(tree_emb, tree_seq, d_emb, d_seq, permutations, seed)
    for what, d in (("embedding", d_emb), ("sequence", d_seq)):
        if tc.is_constant(d):
            log.warning(f"all {what} distances are equal ({d.max():.3g}): Mantel and Robinson-Foulds are NaN")
    seq_label = "alignment p-distance" if seq_distance == "aligned" else f"Mash distance (k={kmer})"
    summary = {
        "inputs": [str(p) for p in inputs],
        "records": n,
        "residues": int(sum(map(len, seqs))),
        "model": model_name,
        "layer": layer,
        "pool": "mean over the A/C/G/U residues of each record" if mask_uncalled
        else "mean over all residues of each record (as `nucfm embed --pool mean`)",
        "windowed_records": windowed,
        "max_len": model.max_len,
        "embedding_metric": metric,
        "sequence_distance": seq_distance,
        "sequence_distance_label": seq_label,
        "kmer": kmer if seq_distance == "mash" else None,
        "mantel": mantel,
        "robinson_foulds": rf,
        "uncalled_mantel": uncalled_mantel,
    }
    with atomic_path(output, directory=True) as tmp:
        titles = (f"embedding distance ({metric})", f"sequence distance ({seq_label})")
        order = tc.plot_comparison(d_emb, d_seq, tree_emb, tree_seq, keys, summary, tmp / "compare.png",
                                   tmp / "compare.svg", titles=titles)
        summary["figure_order"] = order
        _write_tables(tmp, records, vectors, d_emb, d_seq, counts)
        (tmp / "tree_embedding.nwk").write_text(tc.newick(tree_emb))
        (tmp / "tree_sequence.nwk").write_text(tc.newick(tree_seq))
        (tmp / "compare.json").write_text(json.dumps(_json_safe(summary), indent=1) + "\n")
        (tmp / "compare.tsv").write_text(_stats_tsv(summary))
    log.info(f"Mantel r = {_num(mantel['r'])} (p = {_num(mantel['p'])}); Robinson-Foulds {_num(rf['rf'])} "
             f"(normalised {_num(rf['rf_normalised'])}) -> {output}")
    return summary


def _write_tables(out: Path, records, vectors, d_emb, d_seq, counts) -> None:
    keys = [r.key for r in records]
    with open(out / "records.tsv", "w") as fh:
        fh.write("key\tid\tfile\tlength\tcalled\tuncalled\n")
        for r in records:
            called = sum(r.seq.count(c) for c in CALLED)
            fh.write(f"{r.key}\t{r.id}\t{r.file}\t{len(r.seq)}\t{called}\t{len(r.seq) - called}\n")
    with open(out / "embeddings.tsv", "w") as fh:
        fh.write("key\t" + "\t".join(f"d{j}" for j in range(vectors.shape[1])) + "\n")
        for k, v in zip(keys, vectors):
            fh.write(k + "\t" + "\t".join(f"{x:.7g}" for x in v) + "\n")
    for name, d in (("distances_embedding.tsv", d_emb), ("distances_sequence.tsv", d_seq)):
        with open(out / name, "w") as fh:
            fh.write("key\t" + "\t".join(keys) + "\n")
            for k, row in zip(keys, d):
                fh.write(k + "\t" + "\t".join(f"{x:.8g}" for x in row) + "\n")
    extra = list(counts)
    with open(out / "pairs.tsv", "w") as fh:
        fh.write("\t".join(["key_a", "key_b", "embedding_distance", "sequence_distance", *extra]) + "\n")
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                fh.write("\t".join([keys[i], keys[j], f"{d_emb[i, j]:.8g}", f"{d_seq[i, j]:.8g}",
                                    *(str(int(counts[c][i, j])) for c in extra)]) + "\n")


def _stats_tsv(summary: dict) -> str:
    m, rf = summary["mantel"], summary["robinson_foulds"]
    rows = [("records", summary["records"], ""),
            (f"mantel_r_{m['method']}", m["r"], m["note"]),
            ("mantel_p", m["p"], m["note"] or f"two-sided, {m['permutations']} permutations, seed {m['seed']}"),
            ("rf", rf["rf"], rf["note"] or "unrooted Robinson-Foulds: splits in one tree only"),
            ("rf_normalised", rf["rf_normalised"], rf["note"] or "rf / all non-trivial splits of both trees"),
            ("rf_null_mean", rf["rf_null_mean"], rf["note"] or (f"mean rf with the sequence tree's tips shuffled "
             f"({rf['null_permutations']} times, seed {m['seed']})" if rf["null_permutations"] else "no permutations")),
            ("rf_p", rf["rf_p"], rf["note"] or ("P(shuffled rf <= rf): small = the trees share more than chance"
                                                if rf["null_permutations"] else "no permutations")),
            ("uncalled_mantel_r", summary["uncalled_mantel"]["r"], summary["uncalled_mantel"]["note"]
             or "embedding distance vs |difference in uncalled letters (N)|: high = embeddings see sequencing gaps"),
            ("uncalled_mantel_p", summary["uncalled_mantel"]["p"], summary["uncalled_mantel"]["note"]),
            ("splits_embedding", rf["splits_embedding"], ""),
            ("splits_sequence", rf["splits_sequence"], "")]
    return "statistic\tvalue\tnote\n" + "".join(f"{k}\t{_num(v)}\t{note}\n" for k, v, note in rows)


def _num(v) -> str:
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def _json_safe(obj):
    """NaN becomes null (JSON has no NaN); the note beside it says why."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
