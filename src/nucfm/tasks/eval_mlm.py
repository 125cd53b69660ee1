"""Masked-token evaluation of a model against count baselines on the same masked positions.

15 % of residues are selected (seeded, so two runs score the same positions) and all of them
are replaced by the mask token (``mask_frac=1``; pass 0.8 for training's 80/10/10, where the
model may copy the 10 % left unchanged — an advantage the baselines do not get). At every
selected position whose true base is one of the four canonical nucleotides we score

* the model: its logits restricted to the four bases (log-softmax over A/C/G/U or a/c/g/t);
* the unigram baseline: base frequencies of the training data;
* ``kmer``: the base given its k true neighbours on each side, counted on the training data
  (:class:`nucfm.data.baselines.ContextCounts`). It sees the *uncorrupted* neighbours, which
  the model does not (with 15 % masking, 1 - 0.85**6 = 62 % of positions have a masked
  neighbour within ±3), so it is favoured;
* ``kmer_masked``: the same counts given the neighbours *as the model sees them*: a masked
  neighbour is marginalised over the four bases, a randomly replaced one is taken as shown,
  the edge of the model's input window counts as "other".

Accuracy is argmax agreement; perplexity is ``exp`` of the mean negative log-likelihood (nats),
4 = uniform guessing. For a genome region with a GFF, positions are also split by class.

The ``all`` row also carries ``vs``: per baseline, the model's accuracy gain and NLL reduction
with 95 % confidence intervals from a paired bootstrap over pieces (sequences, or genome windows):
positions of one piece are resampled together, since they are not independent.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nucfm.data.baselines import WILDCARD, ContextCounts
from nucfm.data.collate import collate
from nucfm.data.masking import mask_tokens
from nucfm.errors import InputError
from nucfm.inference import run_halving
from nucfm.io.fasta import read_fasta

log = logging.getLogger("nucfm")

CLASSES = ("CDS", "5'UTR", "3'UTR", "ncRNA", "intron", "intergenic")
SCORERS = ("model", "unigram", "kmer", "kmer_masked")
NONCODING_TRANSCRIPTS = {"lnc_RNA", "tRNA", "miRNA", "snoRNA", "ncRNA", "snRNA", "antisense_RNA",
                         "primary_transcript", "transcript", "rRNA"}


@dataclass
class Tally:
    n: int = 0
    correct: dict = field(default_factory=lambda: dict.fromkeys(SCORERS, 0))
    nll: dict = field(default_factory=lambda: dict.fromkeys(SCORERS, 0.0))

    def add(self, label: np.ndarray, logps: dict[str, np.ndarray]) -> tuple[int, dict, dict]:
        """label (N,) codes 0..3; logps[scorer] (N, 4). Returns what was added: (N, correct, nll)."""
        correct = {s: int((lp.argmax(-1) == label).sum()) for s, lp in logps.items()}
        nll = {s: -float(lp[np.arange(len(label)), label].sum()) for s, lp in logps.items()}
        self.n += len(label)
        for s in logps:
            self.correct[s] += correct[s]
            self.nll[s] += nll[s]
        return len(label), correct, nll

    def row(self) -> dict:
        out = {"positions": self.n}
        for s in SCORERS:
            out[f"{s}_acc"] = self.correct[s] / self.n if self.n else float("nan")
            out[f"{s}_ppl"] = math.exp(self.nll[s] / self.n) if self.n else float("nan")
        return out


@dataclass
class Piece:
    """A model input: residue ids plus, per residue, baseline context index source and class."""

    ids: np.ndarray  # (L,) residue ids
    kmer_logp: np.ndarray  # (L, 4) context-baseline log-probs from the full sequence
    classes: np.ndarray | None = None  # (L,) int class codes or None
    soft: np.ndarray | None = None  # (L,) bool lowercase (repeat)


def pieces_of(ids: np.ndarray, counts: ContextCounts, chunk: int, classes=None, soft=None) -> list[Piece]:
    """Split one sequence into model-sized chunks; baselines see the whole sequence."""
    _, ctx = counts.log_probs(ids)
    out = []
    for s in range(0, len(ids), chunk):
        sl = slice(s, s + chunk)
        out.append(Piece(ids[sl], ctx[sl], None if classes is None else classes[sl],
                         None if soft is None else soft[sl]))
    return out


@torch.no_grad()
def evaluate_mlm(model, pieces: list[Piece], counts: ContextCounts, mask_prob: float = 0.15, seed: int = 0,
                 batch_size: int = 16, progress: bool = False, mask_frac: float = 1.0) -> dict[str, dict]:
    """Score masked positions of ``pieces`` with the model and both baselines.

    Returns {set name: row} with rows for ``all``, and when pieces carry classes / soft-masking,
    one per class and ``repeat (lowercase)`` / ``non-repeat (uppercase)`` (overlapping the classes).
    """
    alphabet = model.alphabet
    if counts.alphabet.name != alphabet.name:
        raise InputError(f"baseline counts are for the {counts.alphabet.name!r} alphabet, "
                         f"the model uses {alphabet.name!r}")
    residue_ids = alphabet.residue_ids()
    uni, _ = counts.log_probs(np.zeros(0, np.int64))
    tallies: dict[str, Tally] = defaultdict(Tally)
    per_piece = []  # (n, correct per scorer, nll per scorer) of each piece, for the bootstrap
    order = np.argsort([len(p.ids) for p in pieces], kind="stable")
    from nucfm.progress import bar as progress_bar

    model.eval()
    for b in progress_bar(range(0, len(order), batch_size), enabled=progress, unit="batch"):
        group = [pieces[i] for i in order[b : b + batch_size]]
        batch = collate(alphabet, [p.ids for p in group])
        g = torch.Generator().manual_seed(seed * 1_000_003 + b)
        m = mask_tokens(batch.input_ids, alphabet, g, mask_prob=mask_prob, mask_frac=mask_frac,
                        random_frac=(1 - mask_frac) / 2)
        dev = getattr(model, "device", None) or torch.device("cpu")  # the batch follows the model (--device)

        def forward(rows, ids=m.input_ids, am=batch.attention_mask, dev=dev):  # halved on out-of-memory
            rows = slice(rows.start, rows.stop)  # rows: a range
            return model.token_logits(ids[rows].to(dev), am[rows].to(dev))[..., residue_ids].float().cpu()

        logits = torch.cat([part for _, part in run_halving(forward, range(len(group)))])
        logp = torch.log_softmax(logits, -1).numpy()
        selected = m.selected.numpy()
        for i, p in enumerate(group):
            sel = batch.residues(torch.from_numpy(selected), i).numpy()
            codes = counts.codes(p.ids)
            sel &= codes < 4
            if not sel.any():
                continue
            seen = batch.residues(m.input_ids, i).numpy()
            seen_codes = np.where(seen == alphabet.mask_id, WILDCARD, counts.codes(seen))
            lp = {"model": batch.residues(torch.from_numpy(logp), i).numpy()[sel],
                  "unigram": np.broadcast_to(uni, (int(sel.sum()), 4)),
                  "kmer": p.kmer_logp[sel],
                  "kmer_masked": counts.log_probs_masked(seen_codes)[sel]}
            label = codes[sel]
            n, correct, nll = tallies["all"].add(label, lp)
            per_piece.append((n, [correct[k] for k in SCORERS], [nll[k] for k in SCORERS]))
            if p.classes is not None:
                cls = p.classes[sel]
                for c in np.unique(cls):
                    k = cls == c
                    tallies[CLASSES[c]].add(label[k], {s: v[k] for s, v in lp.items()})
            if p.soft is not None:
                k = p.soft[sel]
                for name, part in (("repeat (lowercase)", k), ("non-repeat (uppercase)", ~k)):
                    if part.any():
                        tallies[name].add(label[part], {s: v[part] for s, v in lp.items()})
    names = ["all"] + [c for c in (*CLASSES, "repeat (lowercase)", "non-repeat (uppercase)") if c in tallies]
    rows = {n: tallies[n].row() for n in names}
    if per_piece:
        rows["all"]["vs"] = paired_bootstrap(per_piece, seed=seed)
    return rows


def paired_bootstrap(per_piece: list, n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Model minus each baseline: accuracy difference and NLL difference (nats per position,
    negative = model better), point estimates and 95 % percentile intervals, resampling pieces."""
    n = np.array([p[0] for p in per_piece], dtype=np.float64)
    correct = np.array([p[1] for p in per_piece], dtype=np.float64)  # (P, S)
    nll = np.array([p[2] for p in per_piece], dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n), size=(n_boot, len(n)))
    w = np.stack([np.bincount(row, minlength=len(n)) for row in idx]).astype(np.float64)  # (B, P)
    tot = w @ n
    acc = (w @ correct) / tot[:, None]  # (B, S)
    mnll = (w @ nll) / tot[:, None]
    acc0, nll0 = correct.sum(0) / n.sum(), nll.sum(0) / n.sum()
    out = {}
    for k, s in enumerate(SCORERS[1:], start=1):
        da, dn = acc[:, 0] - acc[:, k], mnll[:, 0] - mnll[:, k]
        out[s] = {"acc_diff": float(acc0[0] - acc0[k]),
                  "acc_diff_ci95": [float(x) for x in np.percentile(da, [2.5, 97.5])],
                  "nll_diff": float(nll0[0] - nll0[k]),
                  "nll_diff_ci95": [float(x) for x in np.percentile(dn, [2.5, 97.5])],
                  "pieces": len(n)}
    return out


# ---- inputs -------------------------------------------------------------------------------------
def fasta_pieces(path, model, counts: ContextCounts, chunk: int | None = None) -> list[Piece]:
    chunk = chunk or model.max_len or 512
    out = []
    for rec in read_fasta(path):
        ids = model.alphabet.encode(rec.seq)
        if len(ids):
            out.extend(pieces_of(ids, counts, chunk))
    if not out:
        raise InputError(f"{path}: no sequences to evaluate")
    return out


def region_classes(gff, chrom: str, start: int, end: int, aliases: dict[str, str] | None = None) -> np.ndarray:
    """Class code (index into ``CLASSES``) of every base of ``[start, end)`` (0-based half-open)
    of the genome contig ``chrom``, from a GFF3 (:func:`nucfm.io.gff.read_gff`).

    Priority CDS > 5'UTR > 3'UTR > ncRNA exon > intron > intergenic. UTRs are exons of mRNAs
    outside the CDS (RefSeq GFFs have no UTR features); introns are mRNA/ncRNA spans outside
    exons. ``aliases`` maps the GFF's contig names to the genome's (``{"1": "NC_003070.9"}``).
    A warning is logged when no GFF contig matches ``chrom`` (every base would be intergenic) or
    when the region holds no feature.
    """
    from nucfm.io.gff import read_gff

    L = end - start
    transcripts: dict[str, tuple[str, int, int, str]] = {}  # id -> (type, start, end, strand)
    exons: dict[str, list[tuple[int, int]]] = defaultdict(list)
    cds: dict[str, list[tuple[int, int]]] = defaultdict(list)
    seen: set[str] = set()
    n_features = 0
    for f in read_gff(gff, contig=chrom, start=start, end=end, aliases=aliases, seen=seen):
        n_features += 1
        if f.type == "mRNA" or f.type in NONCODING_TRANSCRIPTS:
            transcripts[f.id] = (f.type, f.start, f.end, f.strand)
        elif f.type in ("exon", "CDS"):
            for parent in f.parents() or [""]:
                (exons if f.type == "exon" else cds)[parent].append((f.start, f.end))
    if chrom not in seen:
        shown = ", ".join(sorted(seen)[:5]) + (f" and {len(seen) - 5} more" if len(seen) > 5 else "")
        example = next(iter(sorted(seen)), "NAME")
        log.warning("%s: none of its contigs (%s) is the genome's %s: every base is counted as intergenic; "
                    "map names with --chrom-alias %s=%s", gff, shown or "none", chrom, example, chrom)
    elif not n_features:
        log.warning("%s: no features on %s:%d-%d: every base is counted as intergenic", gff, chrom, start + 1, end)
    rank = np.full(L, len(CLASSES) - 1, dtype=np.int64)  # intergenic

    def paint(s, e, c):
        s, e = max(s, start) - start, min(e, end) - start
        if e > s:
            rank[s:e] = np.minimum(rank[s:e], c)

    for tid, (kind, s, e, strand) in transcripts.items():
        paint(s, e, CLASSES.index("intron"))
        ex = exons.get(tid, [])
        if kind != "mRNA":
            for a, b in ex:
                paint(a, b, CLASSES.index("ncRNA"))
            continue
        cd = cds.get(tid, [])
        if cd:
            lo, hi = min(a for a, _ in cd), max(b for _, b in cd)
            left, right = ("5'UTR", "3'UTR") if strand != "-" else ("3'UTR", "5'UTR")
            for a, b in ex:
                paint(a, min(b, lo), CLASSES.index(left))
                paint(max(a, hi), b, CLASSES.index(right))
            for a, b in cd:
                paint(a, b, CLASSES.index("CDS"))
        else:
            for a, b in ex:
                paint(a, b, CLASSES.index("ncRNA"))
    return rank


def genome_pieces(genome, region: str, model, counts: ContextCounts, window: int, gff=None,
                  aliases: dict[str, str] | None = None) -> list[Piece]:
    """Pieces of ``region`` (``CHROM:START-END``, 1-based inclusive) of a genome FASTA, with
    per-base classes from ``gff`` when given. ``aliases`` (``{name_in_input: contig_in_genome}``)
    applies to the region's contig and to the GFF's contig names alike."""
    from nucfm.io.genome import Genome, parse_region

    chrom, start, end = parse_region(region)
    g = Genome(genome, aliases=aliases)
    seq = g.fetch(chrom, start, end, pad=None)
    ids = model.alphabet.encode(seq)
    if len(ids) != len(seq):
        raise InputError(f"region {region} holds gap characters; cannot align annotation")
    raw = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
    soft = (raw >= ord("a")) & (raw <= ord("z"))
    classes = region_classes(gff, g.resolve(chrom), start, end, aliases=aliases) if gff else None
    chunk = min(window, model.max_len) if model.max_len else window
    return pieces_of(ids, counts, chunk, classes, soft)


def format_table(rows: dict[str, dict]) -> str:
    width = max([3, *map(len, rows)])  # "non-repeat (uppercase)" and longer set names stay aligned
    head = f"{'set':{width}s} {'positions':>9s} " + " ".join(f"{s + '_acc':>16s} {s + '_ppl':>16s}" for s in SCORERS)
    lines = [head]
    for name, r in rows.items():
        lines.append(f"{name:{width}s} {r['positions']:9d} " + " ".join(
            f"{r[s + '_acc']:16.4f} {r[s + '_ppl']:16.4f}" for s in SCORERS))
    vs = rows.get("all", {}).get("vs")
    if vs:
        n_pieces = next(iter(vs.values()))["pieces"]
        lines.append(f"model minus baseline on all positions (95 % CI, bootstrap over {n_pieces} pieces):")
        for s, d in vs.items():
            lines.append(f"  vs {s:12s} accuracy {d['acc_diff']:+.4f} [{d['acc_diff_ci95'][0]:+.4f}, "
                         f"{d['acc_diff_ci95'][1]:+.4f}]   NLL {d['nll_diff']:+.4f} nats "
                         f"[{d['nll_diff_ci95'][0]:+.4f}, {d['nll_diff_ci95'][1]:+.4f}]")
    return "\n".join(lines)


def find_counts(model_path: str | Path | None) -> Path | None:
    """The ``mlm_counts.npz`` saved beside a model directory, if any."""
    from nucfm.checkpoint import COUNTS_FILE

    if model_path is None:
        return None
    p = Path(model_path)
    if p.is_dir() and (p / COUNTS_FILE).exists():
        return p / COUNTS_FILE
    return None
