"""Zero-shot variant-effect scores from a masked DNA language model (GPN's rule), and the
resumable, shardable file-to-file runner behind ``nucfm vep``.

GPN's rule for an SNV at 0-based ``start`` with window ``W``: take the genome window
``[start - W//2, start - W//2 + W)`` (``N``-padded past contig ends), mask the variant (index
``W//2``), and read ``logit[alt] - logit[ref]`` there; do the same on the reverse-complement
window (variant at index ``W - 1 - W//2``, alleles complemented); the score is the mean of the two
strands. Both strands of a batch go through the model together, and a ConvNet computes only the
receptive cone of the masked base (:meth:`nucfm.models.base.NucleotideLM.logits_at`).

GPN-MSA models (:func:`needs_alignment`) read the target window from an alignment
(:class:`nucfm.io.alignment.Alignment`, which stands in for the genome) and the aligned species'
bases at each position as auxiliary input, reverse-complemented with the window.

Data flow: ``Variant -> window ids (2 strands) -> masked -> logits at the variant -> strategy ->
mean over strands``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nucfm import distributed
from nucfm.checkpoint import fingerprint
from nucfm.errors import InputError
from nucfm.inference import pin, prefetch, run_halving, to_device
from nucfm.io.genome import Genome
from nucfm.io.variants import Variant, VariantTable, check_variants, status_counts
from nucfm.paths import atomic_path
from nucfm.resume import Parts

log = logging.getLogger("nucfm")


# ---- strategies: (logits (N, 4) over A,C,G,T, ref (N,), alt (N,) in 0..3) -> (N,) --------------
def _llr(logits, ref, alt):
    """GPN: logit[alt] - logit[ref] (= log p(alt) - log p(ref); the softmax normaliser cancels)."""
    rows = np.arange(len(ref))
    return logits[rows, alt] - logits[rows, ref]


def _alt_logprob(logits, ref, alt):
    """log p(alt), the distribution renormalised over A, C, G, T."""
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return logp[np.arange(len(alt)), alt]


STRATEGIES: dict[str, Callable] = {"llr": _llr, "alt_logprob": _alt_logprob}
# Largest window for models without a length limit (GPN's ConvNet): 64 kb of context per site is far
# beyond any receptive field, and a batch of such windows still fits in memory.
MAX_WINDOW = 65_536
BASES = "ACGT"


def check_window(model, window: int) -> None:
    """Refuse a window the model cannot take (checked before any work or output)."""
    most = model.max_len or MAX_WINDOW
    if not 1 <= window <= most:
        raise InputError(f"window {window} must be in 1..{most:,}" + ("" if model.max_len else " (a model without a "
                         "length limit still needs memory for every window)"))


def window_bounds(start: int, window: int) -> tuple[int, int, int]:
    """(window start, window end, index of the variant) for a variant at 0-based ``start``;
    GPN's convention: ``W//2`` bases before the variant, so the reverse-complement window has
    it at ``W - 1 - W//2``."""
    lo = start - window // 2
    return lo, lo + window, window // 2


def encode_windows(model, seqs: Sequence[str]) -> np.ndarray:
    """(B, W) token ids of equal-length genome windows (case folded; N and IUPAC -> unknown)."""
    alphabet = model.alphabet
    W = len(seqs[0])
    ids = alphabet.encode("".join(seqs))
    if len(ids) != W * len(seqs):  # gap letters in the genome would be removed: treat them as N
        ids = alphabet.encode("".join(s.replace("-", "N").replace(".", "N") for s in seqs))
    return ids.reshape(len(seqs), W)


def needs_alignment(model) -> int:
    """Aligned species (besides the target) a model reads at every position: 0 for a
    single-genome model, > 0 for GPN-MSA."""
    return getattr(model.config, "n_aux_features", 0) // getattr(model.config, "aux_features_vocab_size", 1)


def aligned_species(model, genome):
    """For GPN-MSA (:func:`needs_alignment`): ``aux(sites, c, W) -> (2B, W, S)`` tokens of the
    aligned species in each site's window, forward strands then reverse complements (as GPN-MSA
    reverse-complements the whole alignment); None for a single-genome model."""
    n = needs_alignment(model)
    if not n:
        return None
    from nucfm.io.alignment import Alignment, msa_tokens, reverse_complement_tokens

    if not isinstance(genome, Alignment):
        raise InputError("this GPN-MSA model reads the aligned bases of other species at every position: "
                         "give the alignment with --msa")
    genome.check_model(n)

    def aux(sites, c, window):
        fwd = msa_tokens(np.stack([genome.aligned(ch, st - c, st - c + window)[:, 1:] for ch, st in sites]))
        return torch.from_numpy(np.concatenate([fwd, reverse_complement_tokens(fwd, axis=1)]).astype(np.int64))

    return aux


@torch.no_grad()
def site_logits(model, genome: Genome, sites: Sequence[tuple[str, int]], window: int = 512,
                batch_size: int | None = None, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Masked-LM logits over A, C, G, T at each site (chrom, 0-based start), the site masked.

    Returns (fwd, rev), each (N, 4) float64 in forward-strand letter order: ``rev[:, 0]`` is
    the reverse-complement window's logit of ``T`` (the complement of ``A``) at the site.
    Both strands of a batch go through the model in one pass.
    """
    check_window(model, window)
    alphabet = model.alphabet
    device = model.device
    aux = aligned_species(model, genome)
    if batch_size is None:
        batch_size = 128 if device.type == "cuda" else 8
    comp = alphabet.complement_ids()
    cols = np.asarray(alphabet.residue_ids())  # ids of a, c, g, t
    c = window // 2
    N = len(sites)
    fwd_all, rev_all = np.empty((N, 4)), np.empty((N, 4))

    def prepare(b0):  # both strands' masked windows of one batch, pinned (in the prefetch thread)
        chunk = sites[b0 : b0 + batch_size]
        B = len(chunk)
        fwd = encode_windows(model, [genome.fetch(ch, st - c, st - c + window) for ch, st in chunk])  # (B, W)
        rev = comp[fwd[:, ::-1]]  # reverse complement: the site moves to W-1-c
        ids = np.concatenate([fwd, rev])  # (2B, W)
        ids[np.arange(B), c] = alphabet.mask_id
        ids[np.arange(B, 2 * B), window - 1 - c] = alphabet.mask_id
        extra = None if aux is None else pin(aux(chunk, c, window), device)  # (2B, W, S) aligned species
        return b0, pin(torch.from_numpy(ids), device), extra

    for b0, ids, extra in prefetch(map(prepare, range(0, N, batch_size))):
        B = len(ids) // 2

        def forward(rows, ids=ids, extra=extra, B=B):  # rows of the batch; after an out-of-memory error, a half
            pick = None if len(rows) == B else list(rows) + [B + r for r in rows]
            part = ids if pick is None else ids[pick]
            kw = {} if extra is None else {"aux": to_device(extra if pick is None else extra[pick], device)}
            n = len(rows)
            positions = torch.tensor([c] * n + [window - 1 - c] * n, device=device)
            return model.logits_at(to_device(part, device), positions, **kw).double().cpu().numpy()  # (2n, V)

        for rows, logits in run_halving(forward, range(B)):
            n, at = len(rows), b0 + rows[0]
            fwd_all[at : at + n] = logits[:n][:, cols]
            rev_all[at : at + n] = logits[n:][:, comp[cols]]  # column of A <- logit of t, etc.
            if progress is not None:
                progress.update(n)
    return fwd_all, rev_all


def score_variants(model, genome: Genome, variants: Sequence[Variant], window: int = 512, method: str = "llr",
                   per_strand: bool = False, batch_size: int | None = None, progress=None,
                   indel_method: str = "pll_centred", flank: int = 4) -> dict[str, np.ndarray]:
    """Score variants with a masked DNA LM; returns ``{"score": (N,)}`` float64 (plus
    ``score_fwd``/``score_rev`` with ``per_strand``), the mean over the two strands.

    ``variants`` must have A/C/G/T alleles and a REF that matches the genome (see
    :func:`nucfm.io.variants.check_variants`). Single-base substitutions (after trimming shared
    bases: ``AC>AG`` is an SNV) take GPN's rule with ``method`` (a key of :data:`STRATEGIES`);
    MNVs and indels take ``indel_method`` (``pll_centred``, ``pll`` or ``unmasked``, with ``flank`` bases each
    side, :mod:`nucfm.tasks.indels`). Alleles at the same site share one forward pass (the
    masked input does not depend on the allele). ``progress`` is an optional tqdm-like bar,
    advanced per site and per MNV/indel.

    >>> score_variants(model, genome, [Variant("1", 99, "A", "G")])["score"]  # doctest: +SKIP
    array([-1.23])
    """
    from nucfm.io.variants import variant_span
    from nucfm.tasks.indels import METHODS, score_haplotypes

    if method not in STRATEGIES:
        raise InputError(f"unknown scoring method {method!r}; known: {sorted(STRATEGIES)}")
    if indel_method not in METHODS:
        raise InputError(f"unknown indel method {indel_method!r}; known: {list(METHODS)}")
    spans = []
    for v in variants:
        if not (set(v.ref) <= set(BASES) and set(v.alt) <= set(BASES)) or not v.ref or not v.alt:
            raise InputError(f"{v.chrom}:{v.pos} {v.ref}>{v.alt}: only A/C/G/T alleles can be scored")
        seq = genome.fetch(v.chrom, v.start, v.start + len(v.ref)).upper()
        if seq != v.ref:
            raise InputError(f"{v.chrom}:{v.pos}: REF {v.ref} differs from the genome ({seq}); check variants first")
        spans.append(variant_span(genome, v, limit=window // 4))
    chrom = [genome.resolve(v.chrom) for v in variants]
    is_snv = np.array([w - u == 1 and len(a) == 1 for u, w, a in spans], dtype=bool)
    s_fwd, s_rev = np.zeros(len(variants)), np.zeros(len(variants))
    snv = np.flatnonzero(is_snv)
    if len(snv):
        sites = list(dict.fromkeys((chrom[i], spans[i][0]) for i in snv))
        row = {s: k for k, s in enumerate(sites)}
        fwd, rev = site_logits(model, genome, sites, window=window, batch_size=batch_size, progress=progress)
        idx = np.array([row[(chrom[i], spans[i][0])] for i in snv], dtype=np.int64)
        ref = np.array([BASES.index(genome.fetch(chrom[i], spans[i][0], spans[i][0] + 1).upper()) for i in snv])
        alt = np.array([BASES.index(spans[i][2]) for i in snv], dtype=np.int64)
        strategy = STRATEGIES[method]
        s_fwd[snv], s_rev[snv] = strategy(fwd[idx], ref, alt), strategy(rev[idx], ref, alt)
    other = np.flatnonzero(~is_snv)
    if len(other) and needs_alignment(model):
        v = variants[other[0]]
        raise InputError(f"{v.chrom}:{v.pos} {v.ref}>{v.alt}: GPN-MSA models score SNVs only (as the official "
                         f"code); {len(other)} MNV/indel(s) in the input")
    if len(other):
        changes = [(chrom[i], *spans[i]) for i in other]
        s_fwd[other], s_rev[other] = score_haplotypes(model, genome, changes, window=window, method=indel_method,
                                                      flank=flank, batch_size=batch_size)
        if progress is not None:
            progress.update(len(other))
    out = {"score": (s_fwd + s_rev) / 2}
    if per_strand:
        out["score_fwd"], out["score_rev"] = s_fwd, s_rev
    return out


def strand_probs(fwd: np.ndarray, rev: np.ndarray, strands: str = "both") -> np.ndarray:
    """(N, 4) probabilities over A, C, G, T from :func:`site_logits`' (fwd, rev) logits: the mean
    of the two strands' softmax (``"both"``) or the forward strand's (``"fwd"``).

    >>> strand_probs(np.zeros((1, 4)), np.array([[0.0, 0, 0, np.log(3)]])).round(3).tolist()
    [[0.208, 0.208, 0.208, 0.375]]
    """

    def softmax(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return softmax(fwd) if strands == "fwd" else (softmax(fwd) + softmax(rev)) / 2


PROBS_BLOCK = 65536  # positions computed, gathered and written together by ``nucfm probs``


def iter_position_probs(model, genome: Genome, chrom: str, start: int, end: int, window: int = 512,
                        strands: str = "both", batch_size: int | None = None, progress=None,
                        block: int = PROBS_BLOCK) -> Iterator[dict[str, np.ndarray]]:
    """:func:`position_probs` of ``[start, end)`` in consecutive blocks of ``block`` positions,
    in order, so that a chromosome-long region needs the memory of one block. Under ``torchrun``
    every process computes its share of each block and only rank 0 yields (the others yield
    nothing)."""
    if strands not in ("both", "fwd"):
        raise InputError(f"strands must be 'both' or 'fwd', not {strands!r}")
    n = genome.length(chrom)
    if not 0 <= start < end <= n:
        raise InputError(f"region {chrom}:{start + 1}-{end} is not inside {chrom} (1-{n})")
    if aligned_species(model, genome) is not None:
        genome.check_covers([(chrom, start), (chrom, end - 1)])
    ctx = distributed.setup()  # under torchrun: each process scores its share of positions, rank 0 gets all
    for a in range(start, end, block):
        b = min(end, a + block)
        sites = [(chrom, p) for p in range(a, b)]
        mine = distributed.shard(sites, ctx)
        fwd_m, rev_m = site_logits(model, genome, [sites[i] for i in mine], window=window, batch_size=batch_size,
                                   progress=progress)
        rows = distributed.gather(list(zip(fwd_m, rev_m)), ctx, len(sites))
        if rows is None:
            continue
        fwd = np.array([r[0] for r in rows]).reshape(-1, 4)
        rev = np.array([r[1] for r in rows]).reshape(-1, 4)
        yield {"pos": np.arange(a, b) + 1, "ref": np.array(list(genome.fetch(chrom, a, b))),
               "probs": strand_probs(fwd, rev, strands)}


def position_probs(model, genome: Genome, chrom: str, start: int, end: int, window: int = 512,
                   strands: str = "both", batch_size: int | None = None, progress=None) -> dict[str, np.ndarray]:
    """Masked-prediction distribution over A, C, G, T at every position of ``[start, end)``
    (0-based), each position masked in turn in a window centred on it (as for variants).

    Returns ``{"pos": (N,) 1-based, "ref": (N,) genome letters (case kept), "probs": (N, 4)}``;
    ``strands="both"`` averages the forward and reverse-complement distributions (in
    forward-strand letters), ``"fwd"`` uses the forward strand only. Under ``torchrun`` each
    process computes its share of positions and rank 0 returns them all (others return None).
    (:func:`iter_position_probs` gives the same in blocks.)
    """
    blocks = list(iter_position_probs(model, genome, chrom, start, end, window=window, strands=strands,
                                      batch_size=batch_size, progress=progress))
    if not blocks:
        return None
    return {k: np.concatenate([b[k] for b in blocks]) for k in ("pos", "ref", "probs")}


# ---- file runner: chunks, resume (:mod:`nucfm.resume`), torchrun shards -----------------------
def saturation_table(genome: Genome, chrom: str, start: int, end: int, warn: bool = True) -> VariantTable:
    """Every SNV of ``[start, end)`` (0-based): three rows per A/C/G/T position (``chrom, pos,
    ref, alt``; ``pos`` 1-based), in position order, alternatives in A, C, G, T order. Positions
    whose genome base is not A/C/G/T (``N``) have no substitution to score and are left out
    (with a warning, unless ``warn`` is off)."""
    import pandas as pd

    n = genome.length(chrom)
    if not 0 <= start < end <= n:
        raise InputError(f"region {chrom}:{start + 1}-{end} is not inside {chrom} (1-{n})")
    seq = genome.fetch(chrom, start, end).upper()
    rows = [(p, b, a) for p, b in zip(range(start, end), seq) if b in BASES for a in BASES if a != b]
    skipped = sum(b not in BASES for b in seq)
    if skipped and warn:
        log.warning("%s:%d-%d: %d position(s) with a non-ACGT genome base (N) have no SNVs and are left out",
                    chrom, start + 1, end, skipped)
    name = genome.resolve(chrom)
    table = pd.DataFrame({"chrom": name, "pos": [p + 1 for p, _, _ in rows], "ref": [b for _, b, _ in rows],
                          "alt": [a for _, _, a in rows]})
    return VariantTable(Path(f"{name}:{start + 1}-{end}"), "tsv", table,
                        [Variant(name, p, b, a) for p, b, a in rows],
                        read_status=np.full(len(rows), "", dtype=object))


@dataclass
class VariantSource:
    """What :func:`score_variant_file` reads: ``identity`` (for the resume manifest), ``total``
    rows for the progress bar (file rows, or sites of a scan), ``unit`` of the bar, and
    ``chunks()``, a fresh iterator of :class:`VariantTable` pieces fixed by the input and
    ``rows`` (the same pieces on every run, so finished ones can be skipped)."""

    identity: dict
    total: int
    unit: str
    chunks: Callable[[], Iterator[VariantTable]]
    advance: Callable[[VariantTable], int]  # bar steps one piece is worth

    @classmethod
    def of(cls, variants, rows: int) -> VariantSource:
        """From a variant file path (streamed), an in-memory :class:`VariantTable`, or a source."""
        from nucfm.io.variants import chunk_table, count_rows, iter_variant_chunks

        if isinstance(variants, VariantSource):
            return variants
        if isinstance(variants, VariantTable):
            return cls({"variants": str(variants.path), "rows": len(variants)}, len(variants), "variant",
                       lambda: chunk_table(variants, rows), _rows_read)
        path = Path(variants)
        st = path.stat()
        return cls({"variants": str(path.resolve()), "variants_bytes": st.st_size,
                    "variants_mtime_ns": st.st_mtime_ns}, count_rows(path),
                   "record" if path.name.lower().removesuffix(".gz").removesuffix(".bgz").endswith(".vcf") else "row",
                   lambda: iter_variant_chunks(path, rows), _rows_read)

    @classmethod
    def scan(cls, genome: Genome, chrom: str, start: int, end: int, rows: int) -> VariantSource:
        """Every SNV of a region (:func:`saturation_table`), generated ``rows // 3`` positions at a
        time: memory holds one piece, whatever the region's length."""
        if not 0 <= start < end <= genome.length(chrom):
            raise InputError(f"region {chrom}:{start + 1}-{end} is not inside {chrom} (1-{genome.length(chrom)})")
        step = max(1, rows // 3)

        def chunks():
            for a in range(start, end, step):
                yield saturation_table(genome, chrom, a, min(end, a + step), warn=False)
            letters = genome.fetch(chrom, start, end).upper()
            n = len(letters) - sum(letters.count(b) for b in BASES)
            if n:
                log.warning("%s:%d-%d: %d position(s) with a non-ACGT genome base (N) have no SNVs and are left out",
                            chrom, start + 1, end, n)

        name = genome.resolve(chrom)
        return cls({"variants": f"{name}:{start + 1}-{end}", "scan": True}, end - start, "site", chunks,
                   lambda vt: len(vt) // 3)


def _rows_read(vt: VariantTable) -> int:
    """Input rows a piece was read from (VCF records; table rows before ALTs were split)."""
    return vt.input_rows if vt.input_rows is not None else len(vt)


def score_variant_file(model, genome: Genome, variants, output: str | Path,
                       window: int = 512, method: str = "llr", per_strand: bool = False,
                       batch_size: int | None = None, chunk_size: int = 2048, strict_ref: bool = False,
                       restart: bool = False, progress: bool = True, info_key: str = "NUCFM_SCORE",
                       model_name: str = "", indel_method: str = "pll_centred", flank: int = 4,
                       annotate=None, calibrate=None) -> dict[str, int] | None:
    """Score a variant file (a path, a :class:`VariantTable` or a :class:`VariantSource` such as
    :meth:`VariantSource.scan`) into ``output`` (TSV/CSV/Parquet/VCF by its name); streamed and
    resumable.

    The input is read in pieces of ``chunk_size`` rows (a VCF's whole records); each piece is
    checked, scored and formatted, and kept in ``OUTPUT.parts/`` (atomically) until the last
    one is done; then the pieces are joined into ``output`` in input order. Memory holds one
    piece, whatever the input's size. Rerunning the same command skips finished pieces. Under
    ``torchrun`` each of the N processes takes pieces ``i % N == rank``, and rank 0 joins.
    Variants longer than ``window // 4`` get ``allele_too_long``. ``annotate(vt) -> {column:
    (n,) str}`` adds columns (consequences, :mod:`nucfm.tasks.consequence`; ``annotate.columns``
    names them, by default consequence, gene, transcript); ``calibrate(scores, kinds) -> (n,)``
    adds ``score_percentile`` (:mod:`nucfm.tasks.calibration`); their ``identity`` attribute, a
    dict, goes into the resume manifest. When every row of the first piece is on a contig the
    genome lacks, it is an error before any scoring. Returns the status counts (rank 0) or None
    (other ranks).
    """
    from nucfm.io.variants import ScoredFormat, write_scored_pieces
    from nucfm.progress import bar as progress_bar
    from nucfm.progress import estimate_line
    from nucfm.tasks.consequence import ANNOTATION_COLUMNS

    ctx = distributed.setup()
    rank, world = ctx.rank, ctx.world
    check_window(model, window)
    if method not in STRATEGIES:
        raise InputError(f"unknown scoring method {method!r}; known: {sorted(STRATEGIES)}")
    source = VariantSource.of(variants, chunk_size)
    msa = aligned_species(model, genome) is not None
    snv_only = needs_alignment(model)
    columns = ["score"] + (["score_fwd", "score_rev"] if per_strand else [])
    spec = {c: False for c in columns} | ({"score_percentile": False} if calibrate is not None else {}) | (
        {c: True for c in getattr(annotate, "columns", ANNOTATION_COLUMNS)} if annotate is not None else {})
    manifest = {
        **source.identity, "genome": str(genome.path.resolve()), "aliases": genome.aliases,
        "model_fingerprint": fingerprint(model), "window": window, "method": method, "columns": list(spec),
        "indel_method": indel_method, "flank": flank, "strict_ref": strict_ref, "info_key": info_key,
        "chunk_rows": chunk_size,
        # the pieces hold the extra columns too: what they depend on (the GFF, the background)
        "annotate": getattr(annotate, "identity", None), "calibrate": getattr(calibrate, "identity", None),
    }
    parts = Parts(output, manifest, suffix=".part", restart=restart)
    if rank == 0:
        parts.prepare()
    distributed.barrier(ctx)
    finished = parts.finished()
    description = (f"{method} of alt vs ref (indels/MNVs: {indel_method}, flank {flank}), masked LM, "
                   f"mean of both strands, window {window}" + (f", model {model_name}" if model_name else ""))
    if rank == 0:
        log.info(estimate_line("vep", {f"{source.unit}s": source.total}))
    form, n_chunks = None, 0
    with progress_bar(total=source.total, unit=source.unit, enabled=progress and rank == 0, desc="vep",
                      smoothing=0.05) as bar:
        for i, vt in enumerate(source.chunks()):
            n_chunks = i + 1
            if form is None:  # the header, from the first piece (its columns, or its VCF header)
                form = ScoredFormat(output, vt, spec, info_key, description)
            if i % world != rank or i in finished:  # (rank 0's bar: other ranks' pieces count as read)
                bar.update(source.advance(vt))
                continue
            status = check_variants(vt, genome, strict_ref=strict_ref, max_span=window // 4,
                                    all_unknown_fails=i == 0)
            if msa:  # GPN-MSA: every variant inside the alignment
                genome.check_covers([(v.chrom, v.start) for v, s in zip(vt.variants, status) if s == "ok"])
            if snv_only:  # GPN-MSA's rule has no answer for MNVs and indels (nor has its code)
                status[[k for k in np.flatnonzero(status == "ok") if vt.variants[k].kind != "snv"]] = "not_snv"
            ok = np.flatnonzero(status == "ok")
            values = {c: np.full(len(vt), np.nan) for c in columns}
            if len(ok):
                res = score_variants(model, genome, [vt.variants[k] for k in ok], window=window, method=method,
                                     per_strand=per_strand, batch_size=batch_size, indel_method=indel_method,
                                     flank=flank)
                for c in columns:
                    values[c][ok] = res[c]
            if calibrate is not None:
                snv = np.array([s == "ok" and v.kind == "snv" for v, s in zip(vt.variants, status)], dtype=bool)
                values["score_percentile"] = calibrate(values["score"], snv)
            if annotate is not None:
                values.update(annotate(vt))
            piece = form.piece(vt, values, status)
            counts = status_counts(status)
            with parts.writing(i) as tmp:
                if isinstance(piece, str):
                    tmp.write_text(piece, encoding="utf-8")
                else:
                    piece.to_parquet(tmp, index=False)
                with atomic_path(_counts_path(parts.path(i))) as c:  # before the piece itself lands
                    c.write_text(json.dumps(counts))
            bar.update(source.advance(vt))
    distributed.barrier(ctx)
    if rank != 0:
        return None
    write_scored_pieces(output, form, (parts.path(i) for i in range(n_chunks)))
    total: dict[str, int] = {}
    for i in range(n_chunks):
        for k, v in json.loads(_counts_path(parts.path(i)).read_text()).items():
            total[k] = total.get(k, 0) + v
    parts.remove()
    return dict(sorted(total.items()))


def _counts_path(part: Path) -> Path:
    """Where a finished piece's status counts are kept: ``chunk_NNNNNN.part.json``."""
    return part.with_name(part.name + ".json")


PROBS_SUFFIXES = (".tsv", ".tsv.gz", ".txt", ".txt.gz", ".csv", ".csv.gz", ".parquet", ".npz")


def check_probs_output(path: str | Path) -> str:
    """The table format of a ``probs`` output (``npz``, ``parquet``, ``csv`` or ``tsv``), or a
    one-line error for any other name."""
    name = Path(path).name.lower()
    for suffix in PROBS_SUFFIXES:
        if name.endswith(suffix):
            return {".npz": "npz", ".parquet": "parquet"}.get(suffix, "csv" if ".csv" in suffix else "tsv")
    raise InputError(f"{path}: output must end in .tsv[.gz], .csv[.gz], .parquet or .npz")


def write_position_probs(result, chrom: str, path: str | Path) -> Path:
    """Write :func:`position_probs` output (a dict, or the blocks of :func:`iter_position_probs`,
    written as they come: memory holds one block) as TSV[.gz] / CSV[.gz] / Parquet (columns chrom,
    pos, A, C, G, T, ref) or NPZ (arrays chrom, pos, probs (N, 4) in A,C,G,T order, ref; built in
    memory). ``.gz`` tables are BGZF (as every nucfm ``.gz`` output, so ``tabix`` accepts them);
    the file is written atomically (:func:`nucfm.paths.atomic_path`)."""
    import pandas as pd

    path = Path(path)
    fmt = check_probs_output(path)
    blocks = [result] if isinstance(result, dict) else result
    with atomic_path(path) as tmp:
        if fmt == "npz":
            blocks = list(blocks)
            np.savez_compressed(tmp, chrom=np.array(chrom), pos=np.concatenate([b["pos"] for b in blocks]),
                                probs=np.concatenate([b["probs"] for b in blocks]).astype(np.float32),
                                ref=np.concatenate([b["ref"] for b in blocks]))
            return path
        writer = None
        try:
            for k, b in enumerate(blocks):
                df = pd.DataFrame({"chrom": chrom, "pos": b["pos"],
                                   **{base: b["probs"][:, j] for j, base in enumerate(BASES)}, "ref": b["ref"]})
                if fmt == "parquet":
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    t = pa.Table.from_pandas(df, preserve_index=False)
                    writer = writer or pq.ParquetWriter(tmp, t.schema)
                    writer.write_table(t)
                    continue
                text = df.to_csv(sep="," if fmt == "csv" else "\t", index=False, header=k == 0, float_format="%.6g",
                                 lineterminator="\n").encode("utf-8")
                if writer is None:
                    if path.name.lower().endswith(".gz"):
                        import pysam

                        writer = pysam.BGZFile(str(tmp), "wb")
                    else:
                        writer = open(tmp, "wb")
                writer.write(text)
        finally:
            if writer is not None:
                writer.close()
    return path
