"""RNA secondary structure: pair features, decoding of pair probabilities, folding, scoring.

Coordinates: residues are 0-based; a pair is ``(i, j)`` with ``i < j``; maps are (L, L) with
``[i, j]`` the score of residues i and j pairing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from nucfm.errors import InputError
from nucfm.models.config import from_dict_strict

log = logging.getLogger("nucfm")

NUCLEOTIDES = "ACGU"
CANONICAL = frozenset({("A", "U"), ("U", "A"), ("G", "C"), ("C", "G"), ("G", "U"), ("U", "G")})
# ViennaRNA base-pair probabilities under each energy parameter set a model may read, by feature
# name; "bpp" is RNAfold's default (Turner 2004). Langdon 2018 (parameters fitted for structure
# prediction accuracy) folds bpRNA VL0 better than the default, and the head learns from both.
BPP_PARAMS = {"bpp": "Turner2004", "bpp-langdon2018": "Langdon2018", "bpp-andronescu2007": "Andronescu2007"}
FEATURES = ("onehot", *BPP_PARAMS)  # extra pair channels a structure model may use
FEATURE_CHANNELS = {"onehot": 16, **{f: 1 for f in BPP_PARAMS}}


def clean_rna(seq: str) -> str:
    """Upper case, T -> U, and every letter other than A, C, G, U -> N (unknown; may still pair
    unless decoding is canonical-only)."""
    s = seq.upper().replace("T", "U")
    return "".join(c if c in NUCLEOTIDES else "N" for c in s)


# ---- pair features ------------------------------------------------------------------------------
def _vienna():
    try:
        import RNA
    except ImportError:
        raise InputError("this needs ViennaRNA's Python module: pip install viennarna") from None
    return RNA


_LOADED_PARAMS = ["Turner2004"]  # the set now loaded in ViennaRNA's global state


def energy_parameters(params: str = "Turner2004"):
    """ViennaRNA with the energy parameter set ``params`` loaded. Its parameters are global, so
    every nucfm fold names its set and this switches only when the set changes (a switch costs
    ~8 ms here; folding one long list under one set pays it once)."""
    RNA = _vienna()
    if _LOADED_PARAMS[0] != params:
        loader = getattr(RNA, f"params_load_RNA_{params}", None)
        if loader is None:
            raise InputError(f"unknown ViennaRNA energy parameter set {params!r}")
        loader()
        _LOADED_PARAMS[0] = params
    return RNA


def vienna_bpp(seq: str, params: str = "Turner2004") -> np.ndarray:
    """ViennaRNA (RNAfold -p, 37 °C) base-pair probabilities under the energy parameter set
    ``params`` (``Turner2004`` = RNAfold's default, ``Langdon2018``, ``Andronescu2007``):
    (L, L) float32, symmetric, zero diagonal."""
    s = clean_rna(seq)
    L = len(s)
    out = np.zeros((L, L), dtype=np.float32)
    if L < 2:
        return out
    fc = energy_parameters(params).fold_compound(s)
    fc.pf()
    p = np.asarray(fc.bpp(), dtype=np.float32)[1:, 1:]  # (L, L) upper triangle, 1-based in Vienna
    out[:] = np.triu(p, 1)
    return out + out.T


def vienna_mfe(seq: str, params: str = "Turner2004") -> list[tuple[int, int]]:
    """Pairs of the RNAfold minimum-free-energy structure (the thermodynamic baseline) under the
    energy parameter set ``params`` (default: RNAfold's own, Turner 2004)."""
    from nucfm.io.structure import parse_dot_bracket

    s = clean_rna(seq)
    if len(s) < 2:
        return []
    db, _ = energy_parameters(params).fold(s)
    return parse_dot_bracket(db)


def onehot_outer(seq: str) -> np.ndarray:
    """(16, L, L) float32: channel 4 a + b is 1 where residue i is nucleotide a and j is b
    (a, b in A, C, G, U; N rows are all zero)."""
    s = clean_rna(seq)
    oh = np.zeros((4, len(s)), dtype=np.float32)
    for k, c in enumerate(s):
        if c != "N":
            oh[NUCLEOTIDES.index(c), k] = 1
    return (oh[:, None, :, None] * oh[None, :, None, :]).reshape(16, len(s), len(s))


def pair_features(seq: str, features: tuple[str, ...], bpps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(C, L, L) float32 extra channels, in the order of ``features`` (``onehot`` = 16, each
    ``bpp*`` = 1). Precomputed bpp maps (L, L) may be given by feature name in ``bpps``."""
    parts = []
    for f in features:
        if f == "onehot":
            parts.append(onehot_outer(seq))
        elif f in BPP_PARAMS:
            given = (bpps or {}).get(f)
            parts.append((vienna_bpp(seq, BPP_PARAMS[f]) if given is None else given)[None])
        else:
            raise InputError(f"unknown pair feature {f!r}; known: {', '.join(FEATURES)}")
    L = len(seq)
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, L, L), dtype=np.float32)


def bpp_to_sparse(p: np.ndarray, cutoff: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle entries above ``cutoff``: (idx (N, 2) int16, values (N,) float16)."""
    i, j = np.nonzero(np.triu(p, 1) > cutoff)
    return np.stack([i, j], 1).astype(np.int16), p[i, j].astype(np.float16)


def sparse_to_bpp(idx: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros((length, length), dtype=np.float32)
    out[idx[:, 0], idx[:, 1]] = values
    return out + out.T


# ---- decoding -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecodeOptions:
    """How a pair-probability map becomes a structure.

    method: ``greedy`` (highest probability first, skipping conflicts: the official RNA-FM rule)
        or ``matching`` (maximum-weight matching of the pairs above threshold, networkx).
    threshold: pairs need probability > threshold.
    min_hairpin: j - i - 1 >= min_hairpin unpaired residues inside every pair.
    canonical_only: keep only AU, GC, GU pairs.
    pseudoknots: keep crossing pairs; False removes them (keeps the nested page 0).
    """

    method: str = "greedy"
    threshold: float = 0.5
    min_hairpin: int = 3
    canonical_only: bool = False
    pseudoknots: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DecodeOptions":
        return from_dict_strict(cls, d, "decoding option")


def candidate_pairs(probs: np.ndarray, seq: str, opts: DecodeOptions) -> tuple[np.ndarray, np.ndarray]:
    """Allowed pairs above threshold: (idx (N, 2) with i < j, probabilities (N,))."""
    L = probs.shape[0]
    allowed = np.triu(np.ones((L, L), dtype=bool), opts.min_hairpin + 1)
    allowed &= probs > opts.threshold
    if opts.canonical_only:
        s = np.array(list(clean_rna(seq)))
        ok = np.zeros((L, L), dtype=bool)
        for a, b in CANONICAL:
            ok |= (s[:, None] == a) & (s[None, :] == b)
        allowed &= ok
    i, j = np.nonzero(allowed)
    return np.stack([i, j], 1), probs[i, j]


def _greedy(idx: np.ndarray, p: np.ndarray) -> list[tuple[int, int]]:
    used: set[int] = set()
    out = []
    for k in np.argsort(-p, kind="stable"):
        i, j = int(idx[k, 0]), int(idx[k, 1])
        if i not in used and j not in used:
            used.update((i, j))
            out.append((i, j))
    return sorted(out)


def _matching(idx: np.ndarray, p: np.ndarray) -> list[tuple[int, int]]:
    try:
        import networkx as nx
    except ImportError:
        raise InputError("decoding by matching needs networkx: pip install networkx") from None

    g = nx.Graph()
    g.add_weighted_edges_from((int(i), int(j), float(w)) for (i, j), w in zip(idx, p))
    return sorted((min(a, b), max(a, b)) for a, b in nx.max_weight_matching(g))


DECODERS = {"greedy": _greedy, "matching": _matching}


def decode_structure(probs: np.ndarray, seq: str, opts: DecodeOptions = DecodeOptions()) -> list[tuple[int, int]]:
    """A valid structure from a (L, L) pair-probability map: every residue in at most one pair,
    every pair leaving ``min_hairpin`` residues inside, optional canonical-only and nesting.

    >>> p = np.zeros((8, 8)); p[0, 7] = p[7, 0] = 0.9; p[0, 6] = p[6, 0] = 0.8
    >>> decode_structure(p, "GAAAAAAC")
    [(0, 7)]
    """
    from nucfm.io.structure import remove_pseudoknots

    if opts.method not in DECODERS:
        raise InputError(f"unknown decoding method {opts.method!r}; known: {', '.join(DECODERS)}")
    probs = np.asarray(probs, dtype=np.float64)
    idx, p = candidate_pairs(probs, seq, opts)
    pairs = DECODERS[opts.method](idx, p) if len(p) else []
    if not opts.pseudoknots:
        pairs = remove_pseudoknots(pairs)
    return pairs


# ---- structure models ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StructureConfig:
    """Everything a structure checkpoint needs to rebuild and run itself.

    head: the :class:`~nucfm.models.heads.PairHeadConfig` as a dict.
    features: extra pair channels, in order (``onehot``: 16, each of :data:`BPP_PARAMS`: 1).
    lm: the language model whose embeddings the head reads (a registered name or a path), or
        None for a head on pair features only; ``lm_hidden_size`` guards against a mismatch.
    lm_layer: which LM layer (RNA-FM numbering, -1 = final output).
    decode: :class:`DecodeOptions` as a dict (threshold chosen on validation data).
    """

    head: dict
    features: tuple[str, ...] = ()
    lm: str | None = None
    lm_hidden_size: int = 0
    lm_layer: int = -1
    decode: dict = None  # type: ignore[assignment]

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        if self.decode is None:
            object.__setattr__(self, "decode", DecodeOptions().to_dict())
        for f in self.features:
            if f not in FEATURES:
                raise InputError(f"unknown pair feature {f!r}; known: {', '.join(FEATURES)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StructureConfig":
        return from_dict_strict(cls, d, "structure-model config")


def residue_embeddings(lm, seqs: list[str], layer: int = -1) -> list[np.ndarray]:
    """(L_i, D) float32 embeddings of cleaned sequences; longer than the LM's maximum are
    embedded in overlapping windows (:func:`nucfm.tasks.embed.embed_sequences`)."""
    return lm.embed([clean_rna(s) for s in seqs], layer=layer)


class StructurePredictor:
    """A pair head, its optional language model and decoding options, ready to fold.

    >>> predictor = load_structure_model("nucfm-ss-...")  # doctest: +SKIP
    >>> probs = predictor.predict_probs(["GGGAAACUUCGGUUUCCC"])[0]  # (18, 18)  # doctest: +SKIP
    """

    def __init__(self, head, config: StructureConfig, lm=None, name: str | None = None):
        self.head = head.eval()
        self.config = config
        self.lm = lm
        self.name = name
        if config.lm is not None and lm is None:
            raise InputError(f"structure model needs language model {config.lm!r}")

    @property
    def decode_options(self) -> DecodeOptions:
        return DecodeOptions.from_dict(self.config.decode)

    def inputs(self, seqs: list[str], embeddings=None, bpps=None):
        """Per-sequence head inputs: (embedding (L, D) or None, pair features (C, L, L) or None).
        ``bpps``: optional precomputed maps, one ``{feature: (L, L)}`` dict per sequence. Maps of
        one energy parameter set are computed together (ViennaRNA switches sets once per call)."""
        if self.lm is not None and embeddings is None:
            embeddings = residue_embeddings(self.lm, seqs, self.config.lm_layer)
        bpps = [dict(b) for b in bpps] if bpps is not None else [{} for _ in seqs]
        for f in self.config.features:
            if f in BPP_PARAMS:
                for s, b in zip(seqs, bpps):
                    if b.get(f) is None:
                        b[f] = vienna_bpp(s, BPP_PARAMS[f])
        out = []
        for k, s in enumerate(seqs):
            e = embeddings[k] if embeddings is not None else None
            f = pair_features(s, self.config.features, bpps[k]) if self.config.features else None
            out.append((e, f))
        return out

    def predict_probs(self, seqs: list[str], embeddings=None, bpps=None, chunk: int = 16) -> list[np.ndarray]:
        """(L, L) float32 symmetric pair probabilities per sequence (sigmoid of the head's logits).
        Inputs are built ``chunk`` sequences at a time, so memory holds one chunk's pair features."""
        import torch

        probs = []
        with torch.inference_mode():
            for c in range(0, len(seqs), chunk):
                part = seqs[c : c + chunk]
                e_part = None if embeddings is None else embeddings[c : c + chunk]
                b_part = None if bpps is None else bpps[c : c + chunk]
                for s, (e, f) in zip(part, self.inputs(part, e_part, b_part)):
                    if len(s) == 0:
                        probs.append(np.zeros((0, 0), dtype=np.float32))
                        continue
                    et = None if e is None else torch.as_tensor(np.asarray(e, dtype=np.float32))[None]
                    ft = None if f is None else torch.as_tensor(f)[None]
                    probs.append(torch.sigmoid(self.head(et, ft))[0].numpy())
        return probs

    def fold(self, seqs: list[str], opts: DecodeOptions | None = None) -> list[tuple[list, np.ndarray]]:
        """(pairs, probabilities) per sequence."""
        opts = opts or self.decode_options
        return [(decode_structure(p, s, opts), p) for s, p in zip(seqs, self.predict_probs(seqs))]


# ---- files in, files out ------------------------------------------------------------------------
def fold_fasta(predictor: StructurePredictor, fasta: str, output: str, fmt: str = "dbn",
               probs_path: str | None = None, plot_dir: str | None = None,
               opts: DecodeOptions | None = None) -> dict:
    """Fold every record of ``fasta`` and write structures to ``output`` (dbn/ct: one file;
    bpseq: one file for one record, else a directory of ``ID.bpseq``). ``probs_path`` (.npz)
    receives each record's (L, L) float16 pair probabilities under its id; ``plot_dir`` a PNG
    per record (probability map + 2D diagram). Returns a summary dict."""
    from pathlib import Path

    from nucfm.io.fasta import read_fasta
    from nucfm.io.structure import StructureRecord, write_structures

    recs = list(read_fasta(fasta))
    opts = opts or predictor.decode_options
    empty = [r.id for r in recs if not r.seq]
    seqs = [r.seq.replace("-", "").replace(".", "") for r in recs]
    converted = sum(c not in NUCLEOTIDES for s in seqs for c in s.upper().replace("T", "U"))
    if empty:
        log.warning("%d empty record(s) written with no pairs: %s", len(empty), ", ".join(empty[:5]))
    if converted:
        log.warning("%d residue(s) other than A, C, G, U/T are read as N (unknown nucleotide)", converted)
    long = [r.id for r, s in zip(recs, seqs) if predictor.lm is not None and predictor.lm.max_len
            and len(s) > predictor.lm.max_len]
    if long:
        log.info("%d sequence(s) longer than the language model maximum (%d): embedded in overlapping windows",
                 len(long), predictor.lm.max_len)
    results = predictor.fold(seqs, opts)
    out_recs = [StructureRecord(r.id, s, pairs) for r, s, (pairs, _) in zip(recs, seqs, results)]
    write_structures(out_recs, output, fmt)
    if probs_path:
        np.savez_compressed(probs_path, **{_npz_key(r.id, k): p.astype(np.float16) for k, (r, (_, p))
                                           in enumerate(zip(recs, results))})
    if plot_dir:
        from nucfm.analysis.structure_plots import plot_structure

        Path(plot_dir).mkdir(parents=True, exist_ok=True)
        for rec, (pairs, p) in zip(out_recs, results):
            plot_structure(rec.seq, pairs, p, Path(plot_dir) / f"{_npz_key(rec.id, 0)}.png", title=rec.id)
    return {"records": len(recs), "pairs": sum(len(p) for p, _ in results), "empty": len(empty),
            "windowed": len(long), "converted": converted}


def _npz_key(rid: str, k: int) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in rid) or f"record{k}"


def score_files(pred_path: str, ref_path: str, shift: int = 0) -> tuple[dict, dict]:
    """Macro scores of predicted structures against references, matched by id.

    Returns (macro averages incl. ``n`` and ``missing``: references without a prediction, scored
    as empty predictions; per-id :class:`~nucfm.metrics.PairScores`). Sequences must agree."""
    from nucfm.io.structure import read_structures
    from nucfm.metrics import macro_average, score_pairs

    preds = {r.id: r for r in read_structures(pred_path)}
    refs = read_structures(ref_path)
    if not refs:
        raise InputError(f"{ref_path}: no reference structures")
    per, missing = {}, 0
    for ref in refs:
        pred = preds.get(ref.id)
        if pred is None:
            missing += 1
            pairs = []
        else:
            if clean_rna(pred.seq) != clean_rna(ref.seq):
                raise InputError(f"record {ref.id!r}: the predicted and reference sequences differ")
            pairs = pred.pairs
        per[ref.id] = score_pairs(pairs, ref.pairs, len(ref.seq), shift=shift)
    avg = macro_average(list(per.values())) | {"missing": missing}
    return avg, per
