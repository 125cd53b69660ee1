"""Zero-shot scores of codon substitutions in coding sequences with a codon model (mRNA-FM):
``nucfm codon-vep``.

The rule (the masked marginal of ESM-style models, applied to codon tokens): mask the codon that
holds the variant and read ``logit[alt codon] - logit[ref codon]`` there (= log p(alt) - log p(ref);
the softmax normaliser cancels). Every variant of one codon shares one forward pass. A CDS longer
than the model (1022 codons for mRNA-FM) is read in a window of ``max_len`` codons around the
masked codon, clipped to the CDS.

Variants use ``nucfm vep``'s files and conventions (:mod:`nucfm.io.variants`): VCF / TSV / CSV /
Parquet with ``chrom, pos, ref, alt``, where ``chrom`` is the id of a record of the CDS FASTA and
``pos`` the 1-based position in that record (gaps not counted); ``U`` and ``T`` both read as U.
Every input row is kept and gets ``score``, ``consequence`` (Sequence Ontology, from the standard
genetic code: ``synonymous_variant``, ``missense_variant``, ``stop_gained``, ``stop_lost``,
``start_lost``, ``stop_retained_variant``), ``codon`` (1-based number in the CDS), ``codon_ref``,
``codon_alt``, ``aa_ref``, ``aa_alt`` and ``status``: ``ok`` or why it was not scored (vep's
reasons, plus ``outside_cds`` for a base outside the frame or ORF read, ``spans_codons`` for
changed bases in two codons, ``not_codon_substitution`` for an indel).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nucfm.data.cds import GENETIC_CODE, Cds, CdsReport, cds_letters, codon_change, prepare_cds
from nucfm.data.collate import collate
from nucfm.errors import InputError
from nucfm.io.variants import Variant, VariantTable, read_variants, status_counts, write_scored

log = logging.getLogger("nucfm")
COLUMNS = ("score", "consequence", "codon", "codon_ref", "codon_alt", "aa_ref", "aa_alt")


def check_codon_model(model, name: str) -> None:
    if getattr(model.alphabet, "kmer", 1) != 3:
        raise InputError(f"{name} is not a codon model; codon-vep needs one such as mrna-fm (see `nucfm models`)")


def read_cds_fasta(path: str | Path, frame: int | None = None, orf: bool = False
                   ) -> tuple[dict[str, str], dict[str, Cds]]:
    """({id: ungapped upper-case letters with U}, {id: CDS}) of every record; CDS warnings logged."""
    from nucfm.io.fasta import read_fasta

    letters, cds, report = {}, {}, CdsReport()
    for rec in read_fasta(path):
        letters[rec.id] = cds_letters(rec.seq)
        cds[rec.id] = prepare_cds(rec.id, rec.seq, frame=frame, orf=orf, report=report)
    for msg in report.messages():
        log.warning(msg)
    return letters, cds


def _status(v: Variant, read_status: str, letters: dict[str, str], cds: dict[str, Cds]) -> str:
    ref, alt = v.ref.replace("T", "U"), v.alt.replace("T", "U")
    if read_status:
        return read_status
    if not ref or not alt or not set(ref + alt) <= set("ACGUN"):
        return "invalid_allele"
    if len(ref) != len(alt):
        return "not_codon_substitution"
    if v.chrom not in letters:
        return "unknown_contig"
    seq = letters[v.chrom]
    if v.start < 0 or v.start + len(ref) > len(seq):
        return "pos_out_of_range"
    if seq[v.start : v.start + len(ref)] != ref:
        return f"ref_mismatch:cds={seq[v.start : v.start + len(ref)]}"
    c = cds[v.chrom]
    changed = [v.start + k for k in range(len(ref)) if ref[k] != alt[k]] or [v.start]
    if changed[0] < c.start or changed[-1] >= c.start + len(c.seq):
        return "outside_cds"
    if (changed[0] - c.start) // 3 != (changed[-1] - c.start) // 3:
        return "spans_codons"
    codon = (changed[0] - c.start) // 3
    ref_codon = c.seq[3 * codon : 3 * codon + 3]
    if not set(ref_codon) <= set("ACGU"):
        return "ref_not_acgt"
    if "N" in alt:
        return "alt_not_acgt"
    return "ok"


@torch.inference_mode()
def masked_codon_logits(model, cds_ids: dict[str, np.ndarray], sites: list[tuple[str, int]],
                        batch_size: int = 8) -> np.ndarray:
    """(N, V) logits at each masked codon ``(record, 0-based codon index)``, each CDS read in a window of
    at most ``model.max_len`` codons around the site."""
    alphabet, most = model.alphabet, model.max_len
    out = np.empty((len(sites), len(alphabet)), dtype=np.float32)
    for b in range(0, len(sites), batch_size):
        windows, positions = [], []
        for rec, c in sites[b : b + batch_size]:
            ids = cds_ids[rec]
            lo = 0 if most is None or len(ids) <= most else min(max(0, c - most // 2), len(ids) - most)
            w = ids[lo : lo + most if most else None].copy()
            w[c - lo] = alphabet.mask_id
            windows.append(w)
            positions.append(c - lo)
        batch = collate(alphabet, windows, max_len=most)
        dev = model.device
        logits = model.token_logits(batch.input_ids.to(dev), batch.attention_mask.to(dev))  # (B, T, V)
        rows = torch.arange(len(windows), device=dev)
        at = torch.tensor(positions, device=dev) + batch.offset
        out[b : b + len(windows)] = logits[rows, at].float().cpu().numpy()
    return out


Site = tuple[str, int]  # (record id, 0-based codon index)


def codon_changes(letters: dict[str, str], cds: dict[str, Cds], vt: VariantTable
                  ) -> dict[Site, list[tuple[int, str, str]]]:
    """Set ``vt.status`` and group the scorable rows by the codon they change:
    ``{site: [(row, ref codon, alt codon), ...]}`` in row order."""
    n = len(vt)
    read_status = vt.read_status if vt.read_status is not None else np.full(n, "", dtype=object)
    status = np.array([_status(v, read_status[i], letters, cds) for i, v in enumerate(vt.variants)], dtype=object)
    if n and all(s == "unknown_contig" for s in status):
        raise InputError(f"{vt.path}: no variant names a record of the CDS FASTA (chrom must be a record id, "
                         f"e.g. {next(iter(letters), '?')!r})")
    vt.status = status
    by_site: dict[Site, list[tuple[int, str, str]]] = defaultdict(list)
    for i, v in enumerate(vt.variants):
        if status[i] != "ok":
            continue
        c = cds[v.chrom]
        k = (v.start - c.start) // 3
        ref_codon = c.seq[3 * k : 3 * k + 3]
        alt_codon = list(ref_codon)
        for j, a in enumerate(v.alt.replace("T", "U")):
            off = v.start + j - c.start - 3 * k
            if 0 <= off < 3:
                alt_codon[off] = a  # bases outside the codon are unchanged (checked by _status)
        by_site[(v.chrom, k)].append((i, ref_codon, "".join(alt_codon)))
    return dict(by_site)


def site_scores(model, cds: dict[str, Cds], by_site: dict[Site, list[tuple[int, str, str]]], sites: list[Site],
                batch_size: int = 8, progress=None) -> np.ndarray:
    """The scores of the changes at ``sites``, concatenated in site order then row order."""
    if not sites:
        return np.empty(0)
    cds_ids = {r: model.alphabet.encode(cds[r].seq) for r in {s[0] for s in sites}}
    index = {t: i for i, t in enumerate(model.alphabet.tokens)}
    out = []
    for b in range(0, len(sites), batch_size):
        batch = sites[b : b + batch_size]
        logits = masked_codon_logits(model, cds_ids, batch, batch_size=batch_size)
        out += [logits[row, index[alt]] - logits[row, index[ref]]
                for row, site in enumerate(batch) for _, ref, alt in by_site[site]]
        if progress is not None:
            progress.update(len(batch))
    return np.asarray(out, dtype=np.float64)


def _columns(n: int, by_site: dict[Site, list[tuple[int, str, str]]], scores: np.ndarray) -> dict[str, np.ndarray]:
    """The output columns (:data:`COLUMNS`) of ``n`` rows from the changes and their scores (in
    :func:`site_scores` order over ``sorted(by_site)``)."""
    cols = {"score": np.full(n, np.nan), "codon": np.full(n, np.nan),
            **{k: np.full(n, "", dtype=object) for k in COLUMNS if k not in ("score", "codon")}}
    changes = [(site, change) for site in sorted(by_site) for change in by_site[site]]
    for ((_, k), (i, ref, alt)), score in zip(changes, scores, strict=True):
        cols["score"][i], cols["codon"][i] = score, k + 1
        cols["consequence"][i] = codon_change(ref, alt, first=k == 0)
        cols["codon_ref"][i], cols["codon_alt"][i] = ref, alt
        cols["aa_ref"][i], cols["aa_alt"][i] = GENETIC_CODE[ref], GENETIC_CODE[alt]
    return {k: cols[k] for k in COLUMNS}


def score_codon_variants(model, letters: dict[str, str], cds: dict[str, Cds], vt: VariantTable,
                         batch_size: int = 8) -> dict[str, np.ndarray]:
    """The output columns (:data:`COLUMNS`) for every row of ``vt``, in memory; sets ``vt.status``."""
    by_site = codon_changes(letters, cds, vt)
    return _columns(len(vt), by_site, site_scores(model, cds, by_site, sorted(by_site), batch_size))


def saturation_variants(letters: dict[str, str], cds: dict[str, Cds]) -> VariantTable:
    """Every single-base substitution of every codon of every CDS, as a variant table
    (``chrom, pos, ref, alt``; pos 1-based in the record)."""
    rows = []
    for rec, c in cds.items():
        for p in range(c.start, c.start + len(c.seq)):
            ref = letters[rec][p]
            rows += [(rec, p + 1, ref, a) for a in "ACGU" if a != ref]
    table = pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt"])
    variants = [Variant(r, p - 1, ref, alt) for r, p, ref, alt in rows]
    return VariantTable(path=Path("saturation"), format="tsv", table=table, variants=variants)


def score_codon_file(model, cds_fasta: str | Path, variants: str | Path | None, output: str | Path,
                     frame: int | None = None, orf: bool = False, batch_size: int = 8, chunk_size: int = 2048,
                     restart: bool = False, progress: bool = False) -> dict[str, int]:
    """Score the variants of ``variants`` (or, when None, every SNV of every CDS) and write them to
    ``output`` (the input rows plus :data:`COLUMNS` and ``status``; format by extension, as
    ``nucfm vep``); resumable as ``nucfm vep``: scores of each ``chunk_size`` codons go to
    ``OUTPUT.parts/`` as they are done, and rerunning the same command skips finished chunks
    (``restart`` discards them). Returns the status counts."""
    from tqdm.auto import tqdm

    from nucfm.checkpoint import fingerprint
    from nucfm.resume import Parts

    check_codon_model(model, "the model")
    letters, cds = read_cds_fasta(cds_fasta, frame=frame, orf=orf)
    vt = read_variants(variants) if variants is not None else saturation_variants(letters, cds)
    by_site = codon_changes(letters, cds, vt)
    sites = sorted(by_site)
    n_chunks = (len(sites) + chunk_size - 1) // chunk_size
    files = {"cds": Path(cds_fasta), **({"variants": Path(variants)} if variants is not None else {})}
    manifest = {**{f"{k}{suffix}": v for k, p in files.items() for suffix, v in
                   (("", str(p.resolve())), ("_bytes", p.stat().st_size), ("_mtime_ns", p.stat().st_mtime_ns))},
                "frame": frame, "orf": orf, "model_fingerprint": fingerprint(model), "chunk_size": chunk_size,
                "sites": len(sites), "chunks": n_chunks}
    parts = Parts(output, manifest, suffix=".npy", restart=restart)
    parts.prepare()
    finished = parts.finished()
    todo = [i for i in range(n_chunks) if i not in finished]
    with tqdm(total=sum(len(sites[i * chunk_size : (i + 1) * chunk_size]) for i in todo), unit="codon",
              desc="codon-vep", disable=not progress) as bar:
        for i in todo:
            scores = site_scores(model, cds, by_site, sites[i * chunk_size : (i + 1) * chunk_size], batch_size, bar)
            with parts.writing(i) as tmp:
                np.save(tmp, scores)
    scores = np.concatenate([np.load(parts.path(i)) for i in range(n_chunks)] or [np.empty(0)])
    write_scored(vt, _columns(len(vt), by_site, scores), output, info_key="NUCFM_CODON_SCORE",
                 description="nucfm masked-codon log-likelihood ratio (logit alt codon - logit ref codon)")
    parts.remove()
    counts = status_counts(vt.status)
    skipped = {k: v for k, v in counts.items() if k != "ok"}
    if skipped:
        log.warning("%d of %d variants not scored (%s)", sum(skipped.values()), len(vt),
                    ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())))
    return counts
