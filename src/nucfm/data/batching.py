"""Grouping work by length: windows over long sequences and length-budget batches.

One home for "sort by length, fill batches up to a budget" (embedding, structure training and
inference) and for the windows that cover a sequence longer than a model takes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """Residues ``[start, end)`` of a sequence processed together; rows ``[own_start, own_end)``
    of the result are taken from this window."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_windows(length: int, max_len: int, overlap: int | None = None) -> list[Window]:
    """Windows of at most ``max_len`` residues covering ``length``, ``overlap`` apart at each
    seam (default a quarter window); each residue is owned by the window whose centre region
    holds it (seams in the middle of each overlap), the last window is aligned to the end.

    >>> [(w.start, w.end, w.own_start, w.own_end) for w in plan_windows(10, 6, 2)]
    [(0, 6, 0, 5), (4, 10, 5, 10)]
    """
    if length <= max_len:
        return [Window(0, length, 0, length)]
    if overlap is None:
        overlap = max_len // 4
    if not 0 <= overlap < max_len:
        raise ValueError(f"overlap must be in [0, {max_len}), got {overlap}")
    step = max_len - overlap
    starts = list(range(0, length - max_len, step)) + [length - max_len]
    windows = []
    for k, s in enumerate(starts):
        own_start = 0 if k == 0 else (s + starts[k - 1] + max_len) // 2
        own_end = length if k == len(starts) - 1 else (starts[k + 1] + s + max_len) // 2
        windows.append(Window(s, s + max_len, own_start, own_end))
    return windows


def length_batches(lengths: Sequence[int], budget: int, cost: Callable[[int], int] = lambda n: n,
                   rng: random.Random | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length whose padded cost, ``len(batch) *
    cost(longest)``, stays within ``budget`` (a longer item gets a batch of its own).

    ``cost`` is the per-item price of a padded length: tokens (``n + specials``) for a language
    model, pairs (``n * n``) for a 2D head. Without ``rng`` the batches are in length order;
    with it, equal lengths are shuffled and so is the batch order (training).

    >>> length_batches([5, 1, 3, 2], budget=6)
    [[1, 3], [2], [0]]
    """
    keys = [(n, rng.random() if rng is not None else 0.0) for n in lengths]
    order = sorted(range(len(lengths)), key=lambda i: keys[i])
    batches = [[order[p] for p in b] for b in pack_sorted([lengths[i] for i in order], budget, cost)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def pack_sorted(lengths: Iterable[int], budget: int | Callable[[], int],
                cost: Callable[[int], int] = lambda n: n) -> Iterator[list[int]]:
    """Positions of ``lengths`` (in non-decreasing order) cut into consecutive batches whose
    padded cost, ``len(batch) * cost(longest)``, stays within the budget (a longer item gets a
    batch of its own). ``budget`` may be a callable, read again at every item, so a budget that
    changes while batches are being consumed (:class:`nucfm.inference.TokenBudget`) applies to
    the next batch.

    >>> list(pack_sorted([1, 2, 3, 5], budget=6))
    [[0, 1], [2], [3]]
    """
    read = budget if callable(budget) else lambda: budget
    cur: list[int] = []
    for p, n in enumerate(lengths):
        if cur and (len(cur) + 1) * cost(n) > read():
            yield cur
            cur = []
        cur.append(p)
    if cur:
        yield cur
