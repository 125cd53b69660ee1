"""Pair features for structure models: ViennaRNA base-pair probabilities and one-hot pair maps.

Inputs are sequences in structure letters (:func:`nucfm.alphabet.structure_letters`: A, C, G,
U, N); callers clean once at their boundary. Maps are (L, L) with ``[i, j]`` about residues i
and j (0-based).
"""

from __future__ import annotations

import numpy as np

from nucfm import interrupts
from nucfm.alphabet import STRUCTURE_LETTERS
from nucfm.errors import InputError

# ViennaRNA base-pair probabilities under each energy parameter set a model may read, by feature
# name; "bpp" is RNAfold's default (Turner 2004). Langdon 2018 (parameters fitted for structure
# prediction accuracy) folds bpRNA VL0 better than the default, and the head learns from both.
BPP_PARAMS = {"bpp": "Turner2004", "bpp-langdon2018": "Langdon2018", "bpp-andronescu2007": "Andronescu2007"}
FEATURES = ("onehot", *BPP_PARAMS)  # extra pair channels a structure model may use
FEATURE_CHANNELS = {"onehot": 16, **{f: 1 for f in BPP_PARAMS}}


def check_features(features) -> tuple[str, ...]:
    """``features`` as a tuple, refusing unknown names."""
    for f in features:
        if f not in FEATURES:
            raise InputError(f"unknown pair feature {f!r}; known: {', '.join(FEATURES)}")
    return tuple(features)


def feature_channels(features) -> int:
    return sum(FEATURE_CHANNELS[f] for f in check_features(features))


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
    L = len(seq)
    out = np.zeros((L, L), dtype=np.float32)
    if L < 2:
        return out
    fc = energy_parameters(params).fold_compound(seq)
    fc.pf()
    p = np.asarray(fc.bpp(), dtype=np.float32)[1:, 1:]  # (L, L) upper triangle, 1-based in Vienna
    out[:] = np.triu(p, 1)
    return out + out.T


def vienna_mfe(seq: str, params: str = "Turner2004") -> list[tuple[int, int]]:
    """Pairs of the RNAfold minimum-free-energy structure (the thermodynamic baseline) under the
    energy parameter set ``params`` (default: RNAfold's own, Turner 2004)."""
    from nucfm.io.structure import parse_dot_bracket

    if len(seq) < 2:
        return []
    db, _ = energy_parameters(params).fold(seq)
    return parse_dot_bracket(db)


def onehot_outer(seq: str) -> np.ndarray:
    """(16, L, L) float32: channel 4 a + b is 1 where residue i is nucleotide a and j is b
    (a, b in A, C, G, U; N rows are all zero).

    >>> onehot_outer("AU")[3].tolist()  # channel A-U
    [[0.0, 1.0], [0.0, 0.0]]
    """
    oh = np.zeros((4, len(seq)), dtype=np.float32)
    for k, c in enumerate(seq):
        if c in STRUCTURE_LETTERS:
            oh[STRUCTURE_LETTERS.index(c), k] = 1
    return (oh[:, None, :, None] * oh[None, :, None, :]).reshape(16, len(seq), len(seq))


def vienna_bpp_local(seq: str, params: str = "Turner2004", span: int = 200, window: int | None = None,
                     cutoff: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Local base-pair probabilities (RNAplfold: pairs spanning at most ``span`` residues,
    averaged over all ``window``-residue windows; default ``window = span + span // 2``) under
    the energy set ``params``: (idx (N, 2) int64 0-based with i < j, values (N,) float32), the
    entries above ``cutoff``. Memory and time are O(L · window · span) and O(L · span): any
    length. With ``span`` and ``window`` >= L it is the global partition function (RNAfold -p)
    up to ``cutoff``."""
    L = len(seq)
    if L < 2:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    window = window or span + span // 2
    span, window = min(span, L), min(max(window, span), L)
    plist = energy_parameters(params).pfl_fold(seq, window, span, cutoff)
    ij = np.array([(e.i - 1, e.j - 1) for e in plist if e.i > 0], dtype=np.int64).reshape(-1, 2)
    val = np.array([e.p for e in plist if e.i > 0], dtype=np.float32)
    return ij, val


def _bpp_job(job: tuple[str, str, int | None]):
    """One ViennaRNA fold in a worker: dense (L, L) map, or sparse local pairs when ``span`` is set.
    The energy set is named per job: ViennaRNA's parameters are global to each process."""
    seq, params, span = job
    return vienna_bpp(seq, params) if span is None else vienna_bpp_local(seq, params, span)


def bpp_maps(seqs: list[str], features, workers: int = 1, spans: list[int | None] | None = None,
             pool=None) -> list[dict]:
    """``{feature: map}`` per sequence for the ``bpp*`` features among ``features``: a dense
    (L, L) map, or, where ``spans[k]`` is set, sparse local probabilities (idx, values) of
    :func:`vienna_bpp_local`. Folds run one energy set at a time; with ``workers > 1`` (or a
    given multiprocessing ``pool``) they run in parallel worker processes, each folding whole
    sequences, with results identical to the serial ones."""
    names = [f for f in check_features(features) if f in BPP_PARAMS]
    spans = spans or [None] * len(seqs)
    jobs = [(s, BPP_PARAMS[f], span) for f in names for s, span in zip(seqs, spans)]
    # under the CLI (nucfm.interrupts armed) even one fold runs in a worker: ViennaRNA holds the
    # interpreter, so only a worker process can be stopped within a second of Ctrl-C
    if pool is not None or (workers > 1 and len(jobs) > 1) or (jobs and interrupts.armed()):
        results = _parallel(jobs, workers, pool)
    else:
        results = [_bpp_job(j) for j in jobs]
    out: list[dict] = [{} for _ in seqs]
    for k, r in enumerate(results):
        out[k % len(seqs)][names[k // len(seqs)]] = r
    return out


def _parallel(jobs: list, workers: int, pool=None) -> list:
    """``_bpp_job`` over ``jobs`` in worker processes, longest first (balance), results in order."""
    order = sorted(range(len(jobs)), key=lambda k: -len(jobs[k][0]))
    if pool is None:
        with feature_pool(workers) as own:
            done = own.map(_bpp_job, [jobs[k] for k in order], chunksize=1)
    else:
        done = pool.map(_bpp_job, [jobs[k] for k in order], chunksize=1)
    out: list = [None] * len(jobs)
    for k, r in zip(order, done):
        out[k] = r
    return out


def feature_pool(workers: int, initializer=None, initargs: tuple = ()):
    """A process pool for :func:`bpp_maps` (fork where available: workers start in milliseconds
    and inherit ViennaRNA; each job loads its energy set anyway). ``initializer(*initargs)`` runs
    in each worker (a structure model installs itself there for whole predictions)."""
    import multiprocessing as mp

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method).Pool(workers, initializer=interrupts.worker_start, initargs=(initializer, initargs))


def pair_features(seq: str, features, bpps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(C, L, L) float32 extra channels, in the order of ``features`` (``onehot`` = 16, each
    ``bpp*`` = 1). Precomputed (L, L) bpp maps may be given by feature name in ``bpps``."""
    parts = []
    for f in check_features(features):
        if f == "onehot":
            parts.append(onehot_outer(seq))
        else:
            given = (bpps or {}).get(f)
            parts.append((vienna_bpp(seq, BPP_PARAMS[f]) if given is None else given)[None])
    L = len(seq)
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, L, L), dtype=np.float32)


def bpp_to_sparse(p: np.ndarray, cutoff: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle entries above ``cutoff``: (idx (N, 2) int16, values (N,) float16)."""
    i, j = np.nonzero(np.triu(p, 1) > cutoff)
    return np.stack([i, j], 1).astype(np.int16), p[i, j].astype(np.float16)


def sparse_to_bpp(idx: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """The symmetric (L, L) float32 map of :func:`bpp_to_sparse` output."""
    out = np.zeros((length, length), dtype=np.float32)
    idx = np.asarray(idx, dtype=np.int64)
    out[idx[:, 0], idx[:, 1]] = values
    return out + out.T
