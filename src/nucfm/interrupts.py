"""THE interrupt facility: Ctrl-C (SIGINT) and ``kill`` (SIGTERM) stop a command the same way.

Inside :func:`handled` (the CLI wraps every command in it):

* SIGINT and SIGTERM raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so
  every ``finally`` and :func:`nucfm.paths.atomic_path` runs: no half-written output, finished
  chunks of resumable commands stay; the CLI exits 130 (SIGINT) or 143 (SIGTERM);
* SIGINT is handled even when the shell started nucfm with SIGINT ignored (``nohup``, ``cmd &``
  in a non-interactive shell), which Python would otherwise inherit;
* a second signal during the clean-up leaves at once (``os._exit``);
* C code that holds the interpreter (ViennaRNA's folds) cannot be interrupted from Python:
  :func:`armed` tells such code to run in a worker process instead, and :func:`worker_start`
  makes pool workers die on the pool's SIGTERM (and ignore the terminal's SIGINT, which the
  parent handles by terminating the pool).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_STATE: dict = {"armed": False, "signal": None}


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM arrived; ``code`` is the exit status (128 + signal number)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum


def _handler(signum, frame):
    if _STATE["signal"] is not None:  # a second signal while cleaning up: leave now
        os._exit(128 + _STATE["signal"])
    _STATE["signal"] = signum
    raise Interrupted(signum)


@contextmanager
def handled():
    """SIGINT and SIGTERM raise :class:`Interrupted` within; the previous handlers come back
    after. Outside the main thread (where Python cannot handle signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _handler)
    _STATE.update(armed=True, signal=None)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        _STATE.update(armed=False, signal=None)


def armed() -> bool:
    """True inside :func:`handled`: long C calls should then run in a worker process."""
    return _STATE["armed"]


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C (and a plain KeyboardInterrupt), 143 for SIGTERM."""
    return getattr(exc, "code", 128 + signal.SIGINT)


def worker_start(initializer=None, initargs: tuple = ()) -> None:
    """Initializer of a multiprocessing pool worker: SIGTERM kills it (``Pool.terminate``),
    the terminal's SIGINT is left to the parent; then ``initializer(*initargs)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _STATE.update(armed=False, signal=None)
    if initializer is not None:
        initializer(*initargs)
