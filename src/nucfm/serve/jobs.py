"""The job queue of ``nucfm serve``: a fixed pool of worker threads, a bound on the jobs queued
or running (one more is refused with :class:`QueueFull`, answered 429 with ``Retry-After``), a
deadline per job, and finished jobs kept (with their files, in a private temporary directory)
for a while so results can be polled and downloaded.

Compute never runs on the event loop: a route submits a job and awaits its future. Torch
releases the GIL in its kernels, so two workers on two models run in parallel; each model (and
each genome, whose file reader is not thread-safe) has its own lock, so one model runs one job
at a time. A deadline cannot stop a running kernel: jobs call :meth:`Job.update` (the progress
hook of the library functions) or :meth:`Job.check` between batches and records, which raise
:class:`JobTimeout` once ``job_timeout`` seconds have passed since the job started.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nucfm.errors import InputError, NucfmError
from nucfm.serve.settings import Limits

log = logging.getLogger("nucfm.serve")


class QueueFull(Exception):
    """The queue holds ``limits.queue`` jobs; ``retry_after`` seconds is a fair wait."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy (job queue full); retry in {retry_after} s")
        self.retry_after = retry_after


class JobTimeout(NucfmError):
    """A job ran past the per-job time limit."""


@dataclass
class Job:
    id: str
    kind: str
    dir: Path
    timeout: float
    status: str = "queued"  # queued, running, done, failed
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    done: int = 0  # progress, in ``unit``
    total: int | None = None
    unit: str = ""
    result: dict | None = None
    error: str | None = None
    error_status: int | None = None  # the HTTP status a failed job answers with
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)  # download name -> (path, media type)
    future: Future | None = None
    _deadline: float = math.inf

    # ---- called by job bodies (a tqdm-like progress object) ------------------------------------
    def check(self) -> None:
        if time.monotonic() > self._deadline:
            raise JobTimeout(f"the {self.kind} job ran past the time limit of {self.timeout:g} s; "
                             "send fewer or shorter sequences")

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        self.check()

    def set_total(self, total: int, unit: str) -> None:
        self.total, self.unit = int(total), unit

    def add_file(self, name: str, path: Path, media_type: str) -> str:
        self.files[name] = (Path(path), media_type)
        return f"/api/jobs/{self.id}/files/{name}"

    def to_json(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "status": self.status,
               "progress": {"done": self.done, "total": self.total, "unit": self.unit},
               "url": f"/api/jobs/{self.id}"}
        if self.started is not None:
            out["seconds"] = round((self.finished or time.time()) - self.started, 3)
        if self.status == "done":
            out["result"] = self.result
        if self.status == "failed":
            out["error"] = self.error
        return out


class JobManager:
    """Runs job bodies ``fn(job, *args) -> dict`` on ``limits.workers`` threads."""

    def __init__(self, limits: Limits, root: Path):
        self.limits = limits
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="nucfm-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._active = 0
        self._mean_seconds = 1.0  # running mean of job durations, for Retry-After

    @property
    def active(self) -> int:
        return self._active

    def submit(self, kind: str, fn: Callable[..., dict], *args) -> Job:
        with self._lock:
            self._purge()
            if self._active >= self.limits.queue:
                waves = math.ceil(self._active / self.limits.workers)
                raise QueueFull(max(1, math.ceil(waves * self._mean_seconds)))
            self._active += 1
            job_id = secrets.token_urlsafe(12)  # unguessable: results are private to whoever asked
            job = Job(job_id, kind, self.root / job_id, self.limits.job_timeout)
            job.dir.mkdir()
            self._jobs[job_id] = job
        try:
            job.future = self._pool.submit(self._run, job, fn, args)
        except RuntimeError:  # the pool is shut down
            with self._lock:
                self._active -= 1
            raise QueueFull(5) from None
        return job

    def _run(self, job: Job, fn, args) -> None:
        job.status, job.started = "running", time.time()
        job._deadline = time.monotonic() + job.timeout
        try:
            job.result = fn(job, *args)
            job.status = "done"
        except JobTimeout as e:
            job.status, job.error, job.error_status = "failed", str(e), 504
        except NucfmError as e:  # the job's private paths are not the client's business: names only
            job.status, job.error = "failed", " ".join(str(e).replace(f"{job.dir}{os.sep}", "").split())
            job.error_status = 422 if isinstance(e, InputError) else 400
        except MemoryError:
            job.status, job.error, job.error_status = "failed", "out of memory: send fewer or shorter sequences", 507
        except Exception:  # a bug: logged with its traceback here, never sent to the client
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.status, job.error_status = "failed", 500
            job.error = f"internal error in job {job.id}; see the server log"
        finally:
            job.finished = time.time()
            with self._lock:
                self._active -= 1
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * (job.finished - job.started)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._purge()
            return self._jobs.get(job_id)

    def _purge(self) -> None:
        """Drop finished jobs past ``result_ttl`` and the oldest beyond ``keep_results``."""
        now = time.time()
        finished = sorted((j for j in self._jobs.values() if j.finished is not None), key=lambda j: j.finished)
        excess = len(finished) - self.limits.keep_results
        for k, job in enumerate(finished):
            if k < excess or now - job.finished > self.limits.result_ttl:
                del self._jobs[job.id]
                shutil.rmtree(job.dir, ignore_errors=True)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)
