"""``nucfm atlas``: the RNA atlas of a typed FASTA file (RNA-FM Fig. 2a/2b) and, with a root
label, diffusion pseudotime (Fig. 2c).

Every record is labelled from its header (:func:`label_records`), represented several ways —
mean-pooled embeddings of each language model (the pooling of ``nucfm embed --pool mean``:
:func:`nucfm.models.embedding.embed_sequences`, long records in windows), a randomly initialised
model of the first model's shape, and k-mer composition — and each representation is mapped to
2-D (UMAP) and scored against the labels and each coarser grouping
(:mod:`nucfm.analysis.representation`). Records that cannot be used (header not matching, empty
sequence, no complete k-mer) are listed in ``DIR/unlabelled.tsv`` with the reason, never dropped
silently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.io.tables import compile_label_regex, header_label

log = logging.getLogger("nucfm")

# The shared typed sets: Rfam seeds carry `TP=Gene;rRNA` (the type after TP=), the RNAcentral
# 28-type set and miRBase-derived files the type as the second word (`URS... rRNA from 13 species`).
DEFAULT_LABEL_REGEX = r"^(?:.*\sTP=(\S+)|\S+\s+(\S+))"
MIN_RECORDS = 10  # UMAP and 5-fold kNN (k = 5) need at least this many labelled records
FOLDS, K_NEIGHBOURS = 5, 5
BUILTIN_GROUPS = ("length", "housekeeping")


@dataclass
class LabelledSet:
    """The records an atlas is drawn from (input order) and those left out, with the reason."""

    ids: list[str] = field(default_factory=list)
    index: list[int] = field(default_factory=list)  # 0-based position in the input file
    seqs: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    left_out: list[tuple[int, str, str, str]] = field(default_factory=list)  # (index, id, header, reason)
    read: int = 0
    subsampled: dict[str, list[int]] = field(default_factory=dict)  # label -> [before, after]

    def keep(self, rows: np.ndarray) -> None:
        for name in ("ids", "index", "seqs", "labels"):
            setattr(self, name, [getattr(self, name)[i] for i in rows])


def label_records(fasta: str | Path, label_regex: str = DEFAULT_LABEL_REGEX, max_per_label: int | None = None,
                  seed: int = 0) -> LabelledSet:
    """Read ``fasta`` and label every record from its header; records whose header does not
    match and empty records are left out (with the reason). With ``max_per_label`` a label with
    more records keeps a seeded random subset of that many (in input order)."""
    from nucfm.io.fasta import read_fasta

    pattern = compile_label_regex(label_regex)
    out = LabelledSet()
    unmatched: list[str] = []
    for i, rec in enumerate(read_fasta(fasta)):
        out.read += 1
        header = f"{rec.id} {rec.description}".strip()
        label = header_label(pattern, header)
        seq = rec.seq.replace("-", "").replace(".", "")
        if label is None:
            out.left_out.append((i, rec.id, header, "header does not match --label-regex"))
            unmatched.append(header)
        elif not seq:
            out.left_out.append((i, rec.id, header, "empty sequence"))
        else:
            out.ids.append(rec.id)
            out.index.append(i)
            out.seqs.append(seq)
            out.labels.append(label)
    if not out.labels:
        shown = "; ".join(h[:60] for h in unmatched[:3])
        raise InputError(f"--label-regex {label_regex!r} matches no header of {fasta} "
                         f"({out.read} records; first: {shown})" if unmatched else
                         f"{fasta}: no record with a sequence ({out.read} records, all empty)")
    if unmatched:
        log.warning(f"{len(unmatched)} of {out.read} headers do not match --label-regex (listed in unlabelled.tsv; "
                    f"first: {unmatched[0][:60]!r})")
    if max_per_label is not None:
        rng = np.random.default_rng(seed)
        labels = np.array(out.labels)
        rows = []
        for label in sorted(set(out.labels)):
            where = np.flatnonzero(labels == label)
            if len(where) > max_per_label:
                out.subsampled[label] = [int(len(where)), int(max_per_label)]
                where = rng.choice(where, max_per_label, replace=False)
            rows.extend(where.tolist())
        out.keep(np.sort(rows))
        if out.subsampled:
            before = sum(b for b, _ in out.subsampled.values())
            log.info(f"--max-per-label {max_per_label}: {len(out.subsampled)} labels subsampled ({before} records "
                     f"-> {max_per_label * len(out.subsampled)}; seed {seed})")
    return out


def grouping_values(spec: str, data: LabelledSet) -> tuple[str, list[str], list[str]]:
    """(name, one group per record, the labels the grouping leaves unmapped) for a ``--group``
    value: ``length``, ``housekeeping`` or a label -> group TSV file. A file that leaves any
    label unmapped is an error."""
    from nucfm.analysis.atlas import UNMAPPED, housekeeping_group, length_group, read_group_file

    if spec == "length":
        return "length", [length_group(len(s)) for s in data.seqs], []
    if spec == "housekeeping":
        groups = [housekeeping_group(label) for label in data.labels]
        unmapped = sorted({lab for lab, g in zip(data.labels, groups) if g == UNMAPPED})
        return "housekeeping", groups, unmapped
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"--group {spec!r}: not {' or '.join(BUILTIN_GROUPS)}, nor a label -> group TSV file")
    mapping = read_group_file(path)
    missing = sorted(set(data.labels) - set(mapping))
    if missing:
        raise InputError(f"--group {spec}: {len(missing)} label(s) are not mapped: "
                         f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return path.stem, [mapping[label] for label in data.labels], []


def check_grouping(name: str, groups: list[str]) -> None:
    """A grouping's mapped records support the metrics (two groups of at least 5 records)."""
    from nucfm.analysis.atlas import UNMAPPED
    from nucfm.analysis.representation import check_classes

    kept = [g for g in groups if g != UNMAPPED]
    try:
        check_classes(kept, FOLDS, K_NEIGHBOURS)
    except InputError as e:
        raise InputError(f"grouping {name!r}: {e}") from None


@dataclass
class Representation:
    name: str  # shown in the figure and tables
    slug: str  # file names
    kind: str  # lm, random-init or kmer
    X: np.ndarray
    layer: int | None = None
    model: str | None = None


def model_label(name: str) -> str:
    """A short display name: the registered name, or the last part of a path."""
    from nucfm.checkpoint import registry

    return name if name in registry.MODELS else (Path(name).name or name)


def embed_representations(data: LabelledSet, models: list[str], layers: list[int], random_init: bool, seed: int,
                          batch_tokens: int, device=None, show_progress: bool = True) -> list[Representation]:
    """Mean-pooled embeddings of every model at every layer, then of a randomly initialised model
    of the first model's config (``torch.manual_seed(seed)`` before it is built)."""
    import torch

    from nucfm.alphabet import EncodingReport
    from nucfm.checkpoint import load_model
    from nucfm.models import NucleotideLM
    from nucfm.models.embedding import embed_sequences
    from nucfm.paths import safe_name
    from nucfm.progress import bar as progress_bar

    reps: list[Representation] = []
    residues = sum(len(s) for s in data.seqs)
    first = None
    todo = [(name, False) for name in models] + ([(models[0], True)] if random_init else [])
    for name, random in todo:
        if random:
            torch.manual_seed(seed)
            model = type(first)(first.config).eval()
        else:
            model = load_model(name)
            if not isinstance(model, NucleotideLM):
                raise InputError(f"{name} is not a language model; atlas embeds with RNA or DNA language models")
        first = first or model
        if device is not None:
            model = model.to(device)
        for layer in layers:
            if not -model.num_layers - 1 <= layer <= model.num_layers:
                raise InputError(f"--layer {layer} does not exist: {name} has layers 0..{model.num_layers}")
        short = model_label(name)
        for layer in layers:
            suffix = "" if layer == -1 and len(layers) == 1 else f" layer {layer if layer >= 0 else 'last'}"
            display = (f"random-init {short} (seed {seed})" if random else short) + suffix
            report = EncodingReport()
            with progress_bar(total=residues, unit="nt", unit_scale=True, desc=display[:40],
                              enabled=show_progress) as bar:
                X = np.stack(embed_sequences(model, data.seqs, layer=layer, pool="mean", batch_tokens=batch_tokens,
                                             report=report, progress=bar))
            if layer == layers[0]:
                conversion = "->".join(model.alphabet.convert[0]) if model.alphabet.convert else ""
                for msg in report.messages(conversion):
                    log.info(f"{short}: {msg}")
            slug = safe_name((f"random-init_{short}_seed{seed}" if random else short)
                             + ("" if not suffix else f"_layer{layer if layer >= 0 else 'last'}"))
            reps.append(Representation(display, slug, "random-init" if random else "lm", X.astype(np.float32),
                                       layer=layer, model=str(name)))
    return reps


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _write_tsv(path: Path, header: list[str], rows) -> None:
    from nucfm.paths import atomic_write_text

    lines = ["\t".join(header)] + ["\t".join(_fmt(v) for v in row) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def run_atlas(fasta: str | Path, outdir: str | Path, models: list[str], label_regex: str = DEFAULT_LABEL_REGEX,
              layers: tuple[int, ...] = (-1,), groups: tuple[str, ...] = (), trajectory: str | None = None,
              kmers: tuple[int, ...] = (1, 3), random_init: bool = True, max_per_label: int | None = None,
              seed: int = 0, umap_epochs: int | None = None, batch_tokens: int = 1024, device=None,
              show_progress: bool = True) -> dict:
    """Write the atlas of ``fasta`` into ``outdir`` (created if needed); returns the summary that
    goes to ``atlas_metrics.json``. Every check on labels, groupings and the root label runs before
    a model is loaded."""
    from nucfm.analysis.atlas import UNMAPPED, diffusion_pseudotime, plot_atlas, umap_2d
    from nucfm.analysis.representation import check_classes, kmer_composition, representation_metrics
    from nucfm.io.embeddings import EmbeddingWriter

    outdir = Path(outdir)
    data = label_records(fasta, label_regex, max_per_label, seed)
    # k-mer features first: a record with no complete k-mer has no composition to compare with
    comps = {k: kmer_composition(data.seqs, k) for k in kmers}
    bad = np.zeros(len(data.seqs), bool)
    for C in comps.values():
        bad |= C.sum(1) == 0
    for i in np.flatnonzero(bad):
        data.left_out.append((data.index[i], data.ids[i], data.ids[i], f"no complete A/C/G/U {max(kmers)}-mer"))
    if bad.any():
        log.warning(f"{int(bad.sum())} records have no complete A/C/G/U k-mer and are left out (unlabelled.tsv)")
        rows = np.flatnonzero(~bad)
        data.keep(rows)
        comps = {k: C[rows] for k, C in comps.items()}
    if len(data.labels) < MIN_RECORDS:
        raise InputError(f"too few records: {len(data.labels)} labelled; the atlas needs at least {MIN_RECORDS} "
                         f"(UMAP and {FOLDS}-fold kNN with k = {K_NEIGHBOURS})")
    check_classes(data.labels, FOLDS, K_NEIGHBOURS)
    labels = np.array(data.labels)
    if trajectory is not None and trajectory not in set(data.labels):
        known = sorted(set(data.labels))
        raise InputError(f"--trajectory {trajectory!r} is not a label of {fasta} (labels: {', '.join(known[:8])}"
                         f"{' ...' if len(known) > 8 else ''})")
    groupings = [("label", list(data.labels), [])]
    for spec in groups:
        name, values, unmapped = grouping_values(spec, data)
        check_grouping(name, values)
        if unmapped:
            n = sum(v == UNMAPPED for v in values)
            log.warning(f"--group {name} leaves {len(unmapped)} labels unmapped ({', '.join(unmapped)}): their {n} "
                        "records are left out of that grouping's metrics")
        groupings.append((name, values, unmapped))

    reps = embed_representations(data, models, list(layers), random_init, seed, batch_tokens, device, show_progress)
    outdir.mkdir(parents=True, exist_ok=True)
    for k in kmers:
        reps.append(Representation(f"{k}-mer composition" + (" (mean one-hot)" if k == 1 else ""), f"kmer{k}", "kmer",
                                   comps[k]))

    metric_rows, maps, pseudotimes = [], {}, {}
    for rep in reps:
        log.info(f"{rep.name}: UMAP and metrics on {len(rep.X)} records x {rep.X.shape[1]} features")
        with EmbeddingWriter(outdir / f"embeddings_{rep.slug}.parquet", pooled=True, dim=rep.X.shape[1],
                             attrs={"representation": rep.name, "model": rep.model, "layer": rep.layer}) as w:
            w.add(data.ids, list(rep.X))
        maps[rep.slug] = umap_2d(rep.X, seed=seed, n_epochs=umap_epochs)
        for gname, values, _ in groupings:
            values = np.array(values)
            use = values != UNMAPPED
            m = representation_metrics(rep.X[use], values[use], k=K_NEIGHBOURS, folds=FOLDS, seed=seed)
            metric_rows.append({"representation": rep.name, "kind": rep.kind, "layer": rep.layer, "grouping": gname,
                                **m})
        if trajectory is not None:
            pseudotimes[rep.slug] = diffusion_pseudotime(rep.X, labels == trajectory, seed=seed)

    summary = _write_outputs(outdir, fasta, data, reps, groupings, metric_rows, maps, pseudotimes, trajectory,
                             dict(label_regex=label_regex, layers=list(layers), kmers=list(kmers), seed=seed,
                                  max_per_label=max_per_label, umap_epochs=umap_epochs, models=list(models)))
    rows = _figure_rows(data, reps, groupings, metric_rows, maps, pseudotimes, trajectory)
    plot_atlas(rows, outdir / "atlas.png", outdir / "atlas.svg", title=f"{Path(fasta).name}: {len(labels)} records, "
               f"{len(set(data.labels))} labels")
    return summary


def _figure_rows(data, reps, groupings, metric_rows, maps, pseudotimes, trajectory) -> list[dict]:
    from collections import Counter

    from nucfm.analysis.atlas import UNMAPPED

    score = {(r["representation"], r["grouping"]): r for r in metric_rows}
    rows = []
    for gname, values, _ in groupings:
        counts = Counter(values)
        order = sorted(k for k in counts if k != UNMAPPED) + ([UNMAPPED] if UNMAPPED in counts else [])
        panels = []
        for rep in reps:
            m = score[(rep.name, gname)]
            panels.append({"title": f"{rep.name}\nkNN {m['knn_accuracy']:.2f}  F1 {m['knn_macro_f1']:.2f}  "
                                    f"sil {m['silhouette']:.2f}  ARI {m['ari_kmeans']:.2f}",
                           "xy": maps[rep.slug], "values": values})
        rows.append({"name": gname, "kind": "categorical", "panels": panels, "order": order, "counts": counts})
    if trajectory is not None:
        panels = [{"title": f"{rep.name}\nroot: {data.ids[pseudotimes[rep.slug][1]]}", "xy": maps[rep.slug],
                   "values": pseudotimes[rep.slug][0]} for rep in reps]
        rows.append({"name": f"pseudotime (root {trajectory})", "kind": "continuous", "panels": panels,
                     "colorbar": "diffusion pseudotime"})
    return rows


def _write_outputs(outdir, fasta, data, reps, groupings, metric_rows, maps, pseudotimes, trajectory, settings):
    from nucfm.paths import atomic_write_text

    cols = ["representation", "kind", "layer", "grouping", "n", "classes", "knn_accuracy", "knn_accuracy_sd",
            "knn_macro_f1", "silhouette", "ari_kmeans", "ari_leiden", "leiden_clusters"]
    _write_tsv(outdir / "atlas_metrics.tsv", cols,
               ([r[c] if r[c] is not None else "" for c in cols] for r in metric_rows))
    gnames = [g for g, _, _ in groupings[1:]]
    umap_rows = []
    for rep in reps:
        xy = maps[rep.slug]
        for i in range(len(data.ids)):
            umap_rows.append([data.index[i], data.ids[i], data.labels[i], *(g[1][i] for g in groupings[1:]), rep.name,
                              f"{xy[i, 0]:.4f}", f"{xy[i, 1]:.4f}"])
    _write_tsv(outdir / "umap.tsv", ["n", "id", "label", *gnames, "representation", "x", "y"], umap_rows)
    _write_tsv(outdir / "unlabelled.tsv", ["n", "id", "header", "reason"],
               ([n, rid, h.replace("\t", " "), why] for n, rid, h, why in sorted(data.left_out)))
    reasons: dict[str, int] = {}
    for *_, why in data.left_out:
        reasons[why] = reasons.get(why, 0) + 1
    summary = {
        "input": str(fasta), **settings, "records_read": data.read, "records_used": len(data.labels),
        "left_out": reasons, "subsampled": data.subsampled, "labels": {k: data.labels.count(k)
                                                                        for k in sorted(set(data.labels))},
        "metrics_definition": {"knn": f"k={K_NEIGHBOURS}, cosine, stratified {FOLDS}-fold CV (shuffled, seed "
                               f"{settings['seed']}), accuracy and macro-F1 over out-of-fold predictions",
                               "silhouette": "cosine, on the representation",
                               "ari_kmeans": "k-means (k = number of groups, n_init 10) on unit-length vectors",
                               "ari_leiden": "scanpy Leiden (resolution 1, igraph) on the 15-NN cosine graph"},
        "random_init_seed": settings["seed"],
        "groupings": {g: {"unmapped_labels": unmapped} for g, _, unmapped in groupings[1:]},
        "rows": metric_rows,
    }
    if trajectory is not None:
        pt_rows, by_label = [], {}
        for rep in reps:
            pt, root = pseudotimes[rep.slug]
            for i in range(len(data.ids)):
                pt_rows.append([data.index[i], data.ids[i], data.labels[i], rep.name,
                                "" if np.isnan(pt[i]) else f"{pt[i]:.5f}", int(i == root)])
            by_label[rep.name] = {"root": data.ids[root], "unreached": int(np.isnan(pt).sum()),
                                  "median_by_label": {k: float(np.nanmedian(pt[np.array(data.labels) == k]))
                                                      if np.isfinite(pt[np.array(data.labels) == k]).any() else None
                                                      for k in sorted(set(data.labels))}}
            if by_label[rep.name]["unreached"]:
                log.warning(f"{rep.name}: {by_label[rep.name]['unreached']} records are not connected to the root "
                            "in the kNN graph (pseudotime left empty)")
        _write_tsv(outdir / "pseudotime.tsv", ["n", "id", "label", "representation", "pseudotime", "root"], pt_rows)
        summary["trajectory"] = {"root_label": trajectory, "method": "scanpy diffmap + dpt on the 15-NN cosine graph; "
                                 "root = the cosine medoid of the root label's records", "by_representation": by_label}
    atomic_write_text(outdir / "atlas_metrics.json", json.dumps(summary, indent=1, default=str) + "\n")
    return summary
