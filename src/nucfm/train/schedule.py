"""The learning-rate schedule of every nucfm training recipe."""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "inverse_sqrt", "constant")


def lr_factor(step: int, warmup: int, schedule: str = "cosine", total: int | None = None,
              min_ratio: float = 0.0, progress: float | None = None) -> float:
    """Multiplier of the peak learning rate after ``step`` optimizer steps (0 before the first,
    as ``torch.optim.lr_scheduler.LambdaLR`` counts): linear warmup over ``warmup`` steps, then
    ``cosine`` decay to ``min_ratio`` at ``total`` steps (or at ``progress`` = 1, when the caller
    measures progress otherwise, e.g. by wall time), ``inverse_sqrt`` or ``constant``.

    >>> [round(lr_factor(s, 2, "cosine", total=4, min_ratio=0.1), 3) for s in range(5)]
    [0.0, 0.5, 1.0, 0.55, 0.1]
    """
    w = max(1, warmup)
    if step < w:
        return step / w
    if schedule == "inverse_sqrt":
        return math.sqrt(w / step)
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    if progress is None:
        progress = (step - w) / max(1, (total or w) - w)
    progress = min(1.0, max(0.0, progress))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
