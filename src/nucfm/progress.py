"""THE progress facility of every long command: one bar per stage on stderr.

* stderr is a terminal: a tqdm bar with units that mean something (records, nt, variants,
  windows) and an ETA;
* stderr is a file or a pipe (batch jobs, ``nohup``, ``sbatch``): one plain line every
  :data:`LOG_EVERY` seconds (``nucfm: fold: 40% 1200/3000 nt [01:10<01:45, 17.1 nt/s]``), plus
  one at the start and one at the end, so a log shows life without carriage-return noise;
* ``enabled=False`` (``--no-progress``): nothing at all.

>>> with bar(total=3, unit="record", desc="fold", enabled=False) as b:
...     b.update(3)
>>> estimate_line("fold", {"records": 3, "nt": 1200})
'fold: 3 records, 1,200 nt'
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm import tqdm

LOG_EVERY = 30.0  # seconds between plain progress lines when stderr is not a terminal
_SHOWN: ContextVar[bool] = ContextVar("progress_shown", default=True)


@contextmanager
def shown(show: bool = True):
    """Within ``shown(False)`` (``--no-progress``) no bar of any stage is drawn."""
    token = _SHOWN.set(bool(show))
    try:
        yield
    finally:
        _SHOWN.reset(token)


ESTIMATE_AFTER = 3.0  # seconds of work before the one-line estimate of the whole stage


class _Estimating(tqdm):
    """A bar that, once ESTIMATE_AFTER seconds of work are done, says once how long the rest of
    the stage should take at the rate so far (the quick timing of the first batches)."""

    _estimated = False

    def update(self, n=1):
        shown = super().update(n)
        if not self._estimated and self.total and 0 < self.n < self.total:
            elapsed = self.format_dict["elapsed"]
            if elapsed >= ESTIMATE_AFTER:
                self._estimated = True
                rest = elapsed / self.n * (self.total - self.n)
                self.say(f"{self.desc or 'work'}: about {duration(rest)} to go at the rate of the first "
                         f"{self.format_sizeof(self.n) if self.unit_scale else self.n} {self.unit}")
        return shown

    def say(self, text: str) -> None:
        self.write(f"nucfm: {text}", file=sys.stderr)


class _Discard:
    def write(self, text):
        pass

    def flush(self):
        pass


class _LineBar(_Estimating):
    """tqdm's counting, rate and ETA, written to stderr as whole lines (no bar graphics, no
    carriage returns) at most every LOG_EVERY seconds."""

    _last_line = None  # monotonic time of the last line written
    _closing = False

    def __init__(self, *args, **kwargs):
        kwargs.update(mininterval=LOG_EVERY, maxinterval=LOG_EVERY, file=_Discard())
        super().__init__(*args, **kwargs)

    def close(self):
        self._closing = True
        super().close()

    def display(self, msg=None, pos=None):
        import time

        now = time.monotonic()
        if self._last_line is not None and now - self._last_line < LOG_EVERY and not self._closing:
            return True  # set_postfix and refresh calls wait for the next line too
        self._last_line = now
        d = self.format_dict
        known = "{desc}: {percentage:.0f}% {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]"
        d["bar_format"] = known if d["total"] else "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}]"
        self.say(self.format_meter(**d))
        return True

    def say(self, text: str) -> None:
        sys.stderr.write(f"nucfm: {text}\n")
        sys.stderr.flush()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _terminal_sized(stream) -> bool:
    """True when the terminal reports its size (a bare pty says 0 x 0, and tqdm then draws nothing)."""
    import os

    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return size.columns > 0 and size.lines > 0


def bar(iterable=None, total: int | float | None = None, unit: str = "it", desc: str | None = None,
        enabled: bool = True, unit_scale: bool = False, leave: bool = True, **kwargs) -> tqdm:
    """A progress bar for one stage: a context manager with ``update(n)``, or a wrapped ``iterable``.

    ``unit`` names what is counted (``"record"``, ``"nt"``, ``"variant"``, ``"window"``);
    ``unit_scale`` prints large counts as 1.2M. A terminal gets a live bar; anything else gets
    a plain line every :data:`LOG_EVERY` s; ``enabled=False`` shows nothing."""
    common = dict(iterable=iterable, total=total, unit=unit, desc=desc, unit_scale=unit_scale, leave=leave,
                  file=sys.stderr, **kwargs)
    if not (enabled and _SHOWN.get()):
        return tqdm(disable=True, **common)
    if _is_terminal(sys.stderr):
        if _terminal_sized(sys.stderr):
            return _Estimating(dynamic_ncols=True, **common)
        return _Estimating(ncols=80, nrows=24, **common)  # a terminal of unknown size: 80 x 24
    return _LineBar(**common)


def estimate_line(command: str, counts: dict, seconds: float | None = None) -> str:
    """What a command is about to do, in one line: ``fold: 3 records, 1,200 nt`` and, when a
    time is estimated, ``(about 2 h 5 min)``."""
    what = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    return f"{command}: {what}" + (f" (about {duration(seconds)})" if seconds is not None else "")


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 days 4 h``: a human duration.

    >>> duration(7500)
    '2 h 5 min'
    """
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} days {s % 86400 // 3600} h"
