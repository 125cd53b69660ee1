"""Running models for inference on any device: precision, batches sized by a token budget that
adapts to the device's memory, out-of-memory recovery, and host->device transfer overlapped
with compute.

* :func:`inference_context` — no autograd plus autocast at ``--precision``; every
  model command runs inside it (``nucfm.cli``), so the tasks below need no precision code.
* :func:`budget_batches` — (index, token ids) items from any iterable, read a bounded buffer at a
  time, sorted by length inside it and packed into batches of at most ``budget`` padded tokens;
  the budget is read again for every batch, so it can shrink (after an out-of-memory error) or
  grow (to the free memory of a GPU) while the stream runs.
* :class:`TokenBudget` — that budget: fixed on the CPU, on a CUDA device sized from the peak
  memory each batch used per token and the memory still free.
* :func:`run_halving` — calls a batch function, and on an out-of-memory error frees the cache,
  halves the batch and retries each half (down to one item), so no record is lost.
* :func:`prefetch` — runs a producer (reading, tokenising, collating, pinning) in a background
  thread, a few batches ahead of the consumer; :func:`to_device` copies pinned tensors without
  blocking.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import torch

from nucfm.data.batching import pack_sorted
from nucfm.errors import InputError

log = logging.getLogger("nucfm")

T = TypeVar("T")
R = TypeVar("R")

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(device: torch.device | str, precision: str) -> None:
    """``precision`` (fp32, bf16, fp16) can run on ``device``: fp16 autocast needs a GPU (on the
    CPU it is emulated, slower than fp32 and not what a user asking for speed wants)."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "fp16" and kind == "cpu":
        raise InputError("--precision fp16 needs a GPU (--device cuda or mps); on the CPU use fp32 (default) or bf16")


def inference_context(device: torch.device | str, precision: str = "fp32") -> contextlib.ExitStack:
    """A context for model inference on ``device``: no autograd (``torch.no_grad``; not
    ``inference_mode``, whose tensors break models loaded inside it, and caches keyed on
    parameter versions) and,
    for ``bf16``/``fp16``, autocast (matmuls and convolutions in half precision, reductions and
    LayerNorm in fp32). Outputs of the tasks stay float32/float64 (they convert on the way out).

    >>> with inference_context("cpu", "fp32"):
    ...     torch.ones(2, requires_grad=True).mul(2).requires_grad
    False
    """
    check_precision(device, precision)
    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    if precision != "fp32":
        stack.enter_context(torch.autocast(torch.device(device).type, dtype=PRECISIONS[precision]))
    elif torch.device(device).type == "cuda":
        stack.enter_context(_ieee_fp32())
    return stack


@contextlib.contextmanager
def _ieee_fp32():
    """fp32 on a GPU means fp32: no TF32 (10-bit mantissa) in convolutions, which cuDNN uses by
    default, nor in matmuls; the settings are restored on exit."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9
        settings = [(torch.backends.cudnn.conv, "fp32_precision", "ieee"),
                    (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    else:
        settings = [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    before = [getattr(owner, name) for owner, name, _ in settings]
    try:
        for owner, name, value in settings:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(settings, before):
            setattr(owner, name, value)


# ---- batches by token budget ----------------------------------------------------------------------
class TokenBudget:
    """Padded tokens (or any cost unit: ``cost(n)`` per item of length n, e.g. ``n * n`` for a pair
    head) one batch may hold, read by :func:`budget_batches` for every batch.

    On the CPU the budget stays at ``tokens`` (there, batches beyond about a thousand tokens are
    slower: activations fall out of cache). On a CUDA device it adapts: :meth:`measure` around a
    batch records the peak memory per unit, and the budget becomes ``fraction`` of the memory
    still available divided by that, growing at most ``grow``-fold per batch, never above
    ``most`` and never above half a batch that ran out of memory (:meth:`shrink`).
    """

    def __init__(self, tokens: int, device: torch.device | str | None = None,
                 cost: Callable[[int], int] = lambda n: n, fraction: float = 0.7, grow: float = 4.0,
                 most: int = 1 << 20):
        self.tokens = max(1, int(tokens))
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if self.device.type == "cuda" and self.device.index is None:  # memory queries want an index
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.cost = cost
        self.fraction, self.grow, self.most = fraction, grow, most
        self.ceiling = most  # lowered by every out-of-memory error
        self.adapts = self.device.type == "cuda"
        self.per_unit: float | None = None  # peak bytes per unit, measured (CUDA)

    def __call__(self) -> int:
        return self.tokens

    def units(self, lengths: Sequence[int]) -> int:
        """The cost of one batch of items of these lengths: ``len * cost(longest)``."""
        return len(lengths) * self.cost(max(lengths, default=0))

    def shrink(self) -> None:
        """After an out-of-memory error: halve the budget and never grow back to where it failed."""
        self.ceiling = max(1, self.tokens // 2)
        self.tokens = self.ceiling
        log.debug("out of memory: batch budget halved to %d", self.tokens)

    @contextlib.contextmanager
    def measure(self, units: int):
        """Around one batch of ``units``: on CUDA, learn its peak memory and resize the budget."""
        if not self.adapts or units <= 0:
            yield
            return
        dev = self.device
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        yield
        peak = torch.cuda.max_memory_allocated(dev) - base
        if self.per_unit is None or units * 4 >= self.tokens:  # small batches: fixed costs dominate
            self.per_unit = peak / units
        free, _ = torch.cuda.mem_get_info(dev)
        available = free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        target = int(self.fraction * available / max(self.per_unit, 1.0))
        self.tokens = max(1, min(target, int(self.tokens * self.grow), self.ceiling, self.most))


def budget_batches(items: Iterable[tuple[int, Sequence]], budget: int | TokenBudget,
                   buffer_tokens: int = 1 << 20) -> Iterator[list[tuple[int, Sequence]]]:
    """Batches of ``(index, token ids)`` items of similar length, each within ``budget``
    (``len(batch) * cost(longest)``, see :class:`TokenBudget`; a plain int counts tokens).

    Items are read from ``items`` (any iterable, e.g. a generator over a FASTA file) into a buffer
    of about ``buffer_tokens`` tokens, which is sorted by length and cut into batches; memory is
    bounded by the buffer, not by the input. Every item comes out exactly once, with its index;
    batches come in length order inside each buffer, not input order.

    >>> [[i for i, _ in b] for b in budget_batches(enumerate(["ACGU", "A", "ACG", "AC"]), 6)]
    [[1, 3], [2], [0]]
    """
    if isinstance(budget, int):
        budget = TokenBudget(budget)
    buffer: list[tuple[int, Sequence]] = []
    size = 0
    for item in items:
        buffer.append(item)
        size += len(item[1])
        if size >= buffer_tokens:
            yield from _pack(buffer, budget)
            buffer, size = [], 0
    if buffer:
        yield from _pack(buffer, budget)


def _pack(buffer: list[tuple[int, Sequence]], budget: TokenBudget) -> Iterator[list[tuple[int, Sequence]]]:
    buffer.sort(key=lambda item: len(item[1]))
    for positions in pack_sorted([len(ids) for _, ids in buffer], budget, budget.cost):
        yield [buffer[p] for p in positions]


# ---- out-of-memory recovery -----------------------------------------------------------------------
def is_out_of_memory(error: BaseException) -> bool:
    """A device out-of-memory error (CUDA, MPS, or a CPU allocation failure inside torch)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_memory(device: torch.device | str | None) -> None:
    """Give cached device memory back after an out-of-memory error (``None``: whichever GPU is in use)."""
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_initialized() else "cpu")
    if kind == "cuda":
        torch.cuda.empty_cache()
    elif kind == "mps":
        torch.mps.empty_cache()


def run_halving(fn: Callable[[Sequence[T]], R], items: Sequence[T], budget: TokenBudget | None = None,
                units: Callable[[Sequence[T]], int] | None = None) -> Iterator[tuple[Sequence[T], R]]:
    """``(part, fn(part))`` for ``items`` in order: ``fn(items)`` when it fits; after an
    out-of-memory error the cache is emptied, ``budget`` halved (:meth:`TokenBudget.shrink`) and
    each half retried the same way, down to a single item, whose failure is raised as a
    :class:`MemoryError` naming it. Nothing is skipped: the parts cover ``items`` exactly.

    With ``budget``, each call runs under :meth:`TokenBudget.measure`; ``units(part)`` is its
    cost (default: ``budget.units`` of the lengths of (index, ids) items).

    >>> [(list(p), r) for p, r in run_halving(sum, [1, 2, 3])]
    [([1, 2, 3], 6)]
    """
    if budget is not None and units is None:
        def units(part):
            return budget.units([len(ids) for _, ids in part])
    pending: list[Sequence[T]] = [items]
    while pending:
        part = pending.pop()
        failed = False
        try:
            if budget is not None:
                with budget.measure(units(part)):
                    result = fn(part)
            else:
                result = fn(part)
        except Exception as e:  # noqa: BLE001 — only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(e):
                raise
            failed = True
            message = " ".join(str(e).split())[:200]
        if not failed:
            yield part, result
            continue
        # retry outside the except block: the traceback no longer pins the failed batch's tensors
        device = budget.device if budget is not None else None
        release_memory(device)
        if len(part) == 1:
            raise MemoryError(f"one item alone does not fit in the memory of {device or 'the device'} "
                              f"({message}); use a smaller window or --device cpu")
        if budget is not None:
            budget.shrink()
        half = len(part) // 2
        pending.append(part[half:])
        pending.append(part[:half])  # popped first: parts come back in input order


# ---- transfer and overlap -----------------------------------------------------------------------
def prefetch(iterable: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of ``iterable``, produced by a background thread up to ``depth`` items ahead
    (reading, tokenising, collating, pinning the next batch while the device computes this one).
    An exception in the producer is raised here; closing the iterator stops the producer.
    ``depth=0`` iterates in the calling thread.

    >>> list(prefetch(iter(range(5))))
    [0, 1, 2, 3, 4]
    """
    if depth <= 0:
        yield from iterable
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for x in iterable:
                if not put(("item", x)):
                    return
            put(("done", None))
        except BaseException as e:  # noqa: BLE001 — handed to the consumer, raised there
            put(("error", e))

    thread = threading.Thread(target=produce, name="nucfm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, x = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise x
            yield x
    finally:
        stop.set()
        thread.join()


def pin(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` in page-locked memory when it is going to a CUDA device (so the copy can overlap)."""
    return t.pin_memory() if device.type == "cuda" else t


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to ``device``, without blocking the host when ``t`` is pinned."""
    return t.to(device, non_blocking=t.is_pinned())

