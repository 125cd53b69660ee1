"""Limits and settings of ``nucfm serve``: every limit has an option and an environment variable
(``NUCFM_SERVE_<NAME>``, e.g. ``NUCFM_SERVE_MAX_FOLD_LEN=500``); an option beats the variable,
the variable beats the default."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from nucfm.errors import InputError


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how much work the server takes on at once."""

    max_body_mb: float = 16.0  # request body (uploads included); larger bodies get 413
    max_records: int = 100  # FASTA records per fold / embed request
    max_fold_len: int = 2000  # residues per folded sequence: pair maps and the 2D head grow as L^2
    max_fold_residues: int = 20_000  # residues per fold request, all records together
    max_embed_len: int = 20_000  # residues per embedded sequence (long ones go in windows: linear)
    max_embed_residues: int = 200_000  # residues per embed request
    max_variants: int = 5_000  # variant rows per vep request
    max_region: int = 2_000  # positions per probs request
    queue: int = 16  # jobs queued or running; one more gets 429 with Retry-After
    workers: int = 2  # compute threads (torch releases the GIL; each model has its own lock)
    job_timeout: float = 300.0  # seconds a job may run; checked between batches and records
    keep_results: int = 64  # finished jobs kept (their files too), oldest dropped first
    result_ttl: float = 3600.0  # seconds a finished job's results stay downloadable

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if not getattr(self, f.name) > 0:
                raise InputError(f"serve limit {f.name} must be > 0, not {getattr(self, f.name)!r}")


def env_name(field: str) -> str:
    return "NUCFM_SERVE_" + field.upper()


def limits_from(options: dict | None = None, environ=None) -> Limits:
    """:class:`Limits` from ``options`` (None values ignored), then ``NUCFM_SERVE_*`` variables.

    >>> limits_from({"max_records": 5}, environ={"NUCFM_SERVE_QUEUE": "3"}).queue
    3
    """
    environ = os.environ if environ is None else environ
    values = {}
    for f in dataclasses.fields(Limits):
        kind = int if f.type in (int, "int") else float
        if options and options.get(f.name) is not None:
            values[f.name] = kind(options[f.name])
        elif env_name(f.name) in environ:
            text = environ[env_name(f.name)]
            try:
                values[f.name] = kind(text)
            except ValueError:
                raise InputError(f"{env_name(f.name)}={text!r} is not a number") from None
    return Limits(**values)
