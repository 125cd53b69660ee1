"""Resumable file-to-file runs: THE one place that keeps finished chunks next to an output.

A long command (``vep``, ``embed``, ``fold``, ``contacts``, ``predict``, ``genome-clusters``) cuts
its input into chunks that are fixed by the input and the options, and saves each finished chunk
as ``OUTPUT.parts/chunk_000123.<ext>`` (atomically, :func:`nucfm.paths.atomic_path`) beside a
``manifest.json`` of everything the chunks depend on (input file size and time, model fingerprint,
options). Rerunning the same command skips the finished chunks; a rerun whose manifest differs is
refused with the differing keys (``--restart`` discards the old parts); when every chunk is done
the command merges them into the output and deletes the directory. Because the merge reads the
same chunks in the same order, a resumed run writes the same bytes as an uninterrupted one.

Under ``torchrun`` only rank 0 prepares the directory (:meth:`Parts.prepare`), and every rank
reads the list of finished chunks once after a barrier (:meth:`Parts.finished`), so all ranks
agree on what is left to do.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nucfm.errors import InputError
from nucfm.paths import atomic_path

log = logging.getLogger("nucfm")


def parts_dir(output: str | Path) -> Path:
    """``OUTPUT.parts``: where the finished chunks of ``output`` wait for the merge."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def input_identity(path: str | Path) -> dict:
    """What a manifest records of an input file: its absolute path, size and modification time
    (a changed file is a different input)."""
    p = Path(path)
    st = p.stat()
    return {"input": str(p.resolve()), "input_bytes": st.st_size, "input_mtime_ns": st.st_mtime_ns}


class Parts:
    """The finished chunks of one output: ``OUTPUT.parts/chunk_NNNNNN<suffix>`` and a manifest.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "scores.tsv"
    >>> parts = Parts(out, {"model": "m1", "window": 512}, suffix=".npy")
    >>> parts.prepare()
    >>> with parts.writing(0) as tmp:
    ...     _ = tmp.write_bytes(b"x")
    >>> sorted(parts.finished())
    [0]
    >>> Parts(out, {"model": "m2", "window": 512}).prepare()
    Traceback (most recent call last):
    ...
    nucfm.errors.InputError: ... holds a run with different settings (model); pass --restart to discard it
    """

    def __init__(self, output: str | Path, manifest: dict, suffix: str = ".npy", restart: bool = False):
        self.dir = parts_dir(output)
        self.manifest = json.loads(json.dumps(manifest))  # as it reads back from disk (tuples -> lists)
        self.suffix = suffix
        self.restart = restart

    def path(self, i: int) -> Path:
        return self.dir / f"chunk_{i:06d}{self.suffix}"

    def finished(self) -> set[int]:
        """Indices of the chunks saved so far."""
        if not self.dir.is_dir():
            return set()
        return {int(p.name[6:12]) for p in self.dir.glob(f"chunk_*{self.suffix}")}

    def prepare(self) -> None:
        """Check that a directory already there belongs to the same run (a different run with
        nothing finished yet is simply replaced: nothing to lose); the directory is created with
        the first finished chunk."""
        if self.dir.exists() and self.restart:
            shutil.rmtree(self.dir)
        if self.dir.exists():
            mf = self.dir / "manifest.json"
            old = json.loads(mf.read_text()) if mf.exists() else {}
            new = self.manifest
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if diff and not self.finished():
                shutil.rmtree(self.dir)
            elif diff:
                raise InputError(f"{self.dir} holds a run with different settings ({', '.join(diff)}); "
                                 "pass --restart to discard it")
            else:
                done = len(self.finished())
                if done:
                    total = new.get("chunks")
                    log.info("resuming: %d%s chunks already done in %s", done, f" of {total}" if total else "",
                             self.dir)
                return
        # the directory itself appears with the first finished chunk (:meth:`writing`): a run that
        # fails before finishing one (a bad record in the middle of the input) leaves nothing behind

    def _create(self) -> None:
        if (self.dir / "manifest.json").exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dir / "manifest.json") as tmp:
            tmp.write_text(json.dumps(self.manifest, indent=1) + "\n")

    @contextmanager
    def writing(self, i: int) -> Iterator[Path]:
        """A temporary path that becomes chunk ``i`` only if the block completes."""
        self._create()
        with atomic_path(self.path(i)) as tmp:
            yield tmp

    def remove(self) -> None:
        """Delete the directory (after the merge)."""
        shutil.rmtree(self.dir, ignore_errors=True)
