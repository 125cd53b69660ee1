"""Several processes under ``torchrun``: THE one place that sets up torch.distributed.

Every command that can outgrow one machine (``pretrain``, ``vep``, ``embed``, ``fold``,
``probs``) calls :func:`setup`; without ``torchrun`` it returns rank 0 of 1 and nothing else
happens. Work is split by :func:`shard` (item ``i`` goes to rank ``i % world``), results come back
to rank 0 with :func:`gather`, and only rank 0 writes outputs, so a run on N processes writes the
same file as a run on one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str | None = None) -> torch.device:
        """``requested`` (``cpu``, ``cuda``, ``cuda:1``...) or, when None or ``auto``, CUDA if
        available; under torchrun each process takes the GPU of its local rank."""
        if requested in (None, "auto"):
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        if requested == "cuda" and self.world > 1:
            return torch.device(f"cuda:{self.local_rank}")
        return torch.device(requested)


def setup(timeout: timedelta = timedelta(days=7)) -> Context:
    """Initialise the process group once when run under torchrun (``WORLD_SIZE`` > 1): nccl on
    GPUs, gloo on CPUs. Long timeout: one process's share may take days."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timeout)
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(ctx: Context) -> None:
    if ctx.world > 1:
        import torch.distributed as dist

        dist.barrier()


def shard(items: Sequence, ctx: Context) -> list[int]:
    """Indices of ``items`` this process handles (``i % world == rank``)."""
    return list(range(ctx.rank, len(items), ctx.world))


def gather(local: list[Any], ctx: Context, n: int) -> list[Any] | None:
    """Rank 0 receives every process's ``local`` results (``local[k]`` is item ``rank + k *
    world``) and returns all ``n`` of them in item order; other ranks get None."""
    if ctx.world <= 1:
        return list(local)
    import torch.distributed as dist

    parts: list[Any] = [None] * ctx.world if ctx.is_main else None  # type: ignore[assignment]
    dist.gather_object(local, parts, dst=0)
    if not ctx.is_main:
        return None
    out: list[Any] = [None] * n
    for r, part in enumerate(parts):
        for k, value in enumerate(part):
            out[r + k * ctx.world] = value
    return out


def all_sum(value: float, ctx: Context) -> float:
    """Sum of a number over processes (for logging the global loss)."""
    if ctx.world <= 1:
        return value
    import torch.distributed as dist

    # NCCL reduces GPU tensors only (the loss and the time budget of multi-GPU training)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t)


def teardown(ctx: Context) -> None:
    if ctx.world > 1:
        finish()


def finish() -> None:
    """Leave the process group, if one was set up: a barrier (so no process exits while another
    still talks to it), then destroy it. Commands call this when they are done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
