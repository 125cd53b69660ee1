"""Where nucfm keeps files, and how it writes them.

* :func:`home` — the cache root (``$NUCFM_HOME``, default ``~/.cache/nucfm``): downloaded
  weights, feature caches, genome indexes of read-only directories.
* :func:`atomic_path` / :func:`atomic_write_text` — THE way nucfm writes an output file or
  directory: to a temporary name beside the target, renamed into place only when complete, so an
  error or an interruption never leaves a truncated, empty or half-written file where a good one
  was, and never leaves state that blocks a rerun.
* :func:`safe_name` — one rule that turns a record id into a file name.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nucfm.errors import InputError


def home() -> Path:
    """The nucfm cache directory: ``$NUCFM_HOME`` or ``~/.cache/nucfm``."""
    return Path(os.environ.get("NUCFM_HOME", Path.home() / ".cache" / "nucfm")).expanduser()


def cache_dir(name: str) -> Path:
    """``home()/name``, created if needed."""
    d = home() / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def _temporary_sibling(path: Path) -> Path:
    # Same directory (so the rename is atomic), hidden, unique per process (its pid: see
    # _sweep_stale), same suffixes (so writers that choose a format by extension, e.g. numpy's
    # .npz, keep doing so).
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp{''.join(path.suffixes[-2:])}")


_TEMPORARY = re.compile(r"\.(.+)\.(\d+)-[0-9a-f]{6}\.tmp")  # _temporary_sibling's names: .NAME.PID-HEX.tmp...
_swept: set[Path] = set()  # directories swept by this process already


def _sweep_stale(directory: Path) -> None:
    """Delete the temporaries in ``directory`` that a process which no longer runs left behind
    (killed with SIGKILL, or the machine going down, while it wrote): their names carry the
    writer's pid. A writer still running on this machine keeps its file. Once per directory and
    process: a run writing thousands of chunks lists their directory once, not per chunk."""
    if directory in _swept:
        return
    try:
        entries = list(os.scandir(directory))
    except OSError:  # not there (yet)
        return
    _swept.add(directory)
    for e in entries:
        m = _TEMPORARY.match(e.name)
        if m is None or int(m[2]) == os.getpid():
            continue
        try:
            os.kill(int(m[2]), 0)
        except ProcessLookupError:
            _remove(Path(e.path))
        except OSError:  # alive, another user's
            pass


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on any error
    (or Ctrl-C) it is deleted and ``path`` is untouched. Temporaries that killed processes left
    in the same directory are deleted first (:func:`_sweep_stale`, once per directory).

    ``directory=True`` creates the temporary directory first; an existing ``path`` directory is
    replaced as a whole (renamed away, then deleted) only after the new one is complete.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "x.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('done', ['x.txt'])
    """
    path = Path(path)
    _sweep_stale(path.parent.resolve())
    tmp = _temporary_sibling(path)
    try:  # the mkdir inside: a signal right after it must not leave the directory behind
        if directory:
            tmp.mkdir(parents=False)
        yield tmp
        if directory and path.is_dir():
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def check_output_dir(path: str | Path, suffixes: tuple[str, ...], what: str = "output") -> Path:
    """Refuse an existing ``path`` that is a file, or a directory holding anything but files
    ending in ``suffixes`` (a previous output of the same kind, which is replaced as a whole), so
    a per-record output never mixes with, or deletes, unrelated files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: the {what} is a directory of per-record files, but a file has this name")
    if path.is_dir():
        other = [p.name for p in path.iterdir() if not p.name.endswith(suffixes)]
        if other:
            raise InputError(f"{path}: the {what} directory holds other files ({', '.join(sorted(other)[:3])}"
                             f"{' ...' if len(other) > 3 else ''}); choose a new or empty directory")
    make_parent(path)
    return path


def make_parent(path: str | Path) -> Path:
    """Create the missing directories above ``path`` (``mkdir -p``), so ``-o results/run1/x.tsv``
    works in a fresh folder; a *file* in the way, or an unwritable directory, is a one-line error.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> make_parent(d / "a" / "b" / "x.tsv").is_dir()
    True
    """
    path = Path(path)
    parent = path.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(f"{path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK):
        raise InputError(f"{path}: the directory {existing} is not writable")
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def safe_name(key: str, fallback: str = "record") -> str:
    """A file name for a record key: letters, digits, ``-``, ``_``, ``.`` and ``#`` kept, every
    other character (``/``, spaces, ``:``...) becomes ``_``; names that are empty or only dots
    become ``fallback``. Distinct keys can collide after this (``a/1`` and ``a_1``): writers make
    the names unique with :func:`unique_names`.

    >>> safe_name("chr1:10-20/+"), safe_name(".."), safe_name("")
    ('chr1_10-20__', 'record', 'record')
    """
    name = "".join(c if c.isalnum() or c in "-_.#" else "_" for c in key)
    return fallback if not name.strip(".") else name


def unique_names(keys, fallback: str = "record", reserved: tuple[str, ...] = ()) -> list[str]:
    """File-safe, case-insensitively unique names for ``keys``, in order: the n-th repeat of a
    name gets ``#n`` (``a``, ``a#2``...), as record ids do everywhere in nucfm. ``reserved``
    names (compared case-insensitively) are never produced.

    >>> unique_names(["a", "a", "a/1", "a_1", "A"])
    ['a', 'a#2', 'a_1', 'a_1#2', 'A#3']
    """
    return list(iter_unique_names(keys, fallback, reserved))


def iter_unique_names(keys: Iterable[str], fallback: str = "record", reserved: tuple[str, ...] = (),
                      repeated: frozenset[int] | None = None) -> Iterator[str]:
    """:func:`unique_names`, one name at a time. Remembered: the ``reserved`` names, each
    renamed name's highest ``#n``, and the names given as they are: all of them, or with
    ``repeated`` (:func:`repeated_names` of the same keys, in this process) only those that a
    later name can equal: a repeated key's, and ``x#...`` where ``x`` may be renamed (``x`` is
    reserved, repeated or holds ``#``). The names are the same either way; memory then grows
    with the repeated keys only.

    >>> keys = ["a", "b", "a", "a#2"]
    >>> list(iter_unique_names(keys, repeated=repeated_names(keys))) == unique_names(keys)
    True
    """
    reserved = {r.lower() for r in reserved}
    taken = set(reserved)  # lower case, as every comparison; the "#n" copies given are in `last`
    last: dict[str, int] = {}  # a renamed name's highest n: its copies #2..#n are all taken

    def renamable(low: str) -> bool:  # a later key of this name may be renamed (and copies made)
        return hash(low) in repeated or low in reserved or "#" in low

    for key in keys:
        base = safe_name(key, fallback)
        low = base.lower()
        if low in taken or _copy_taken(low, last):
            n = last.get(low, 1) + 1
            while f"{low}#{n}" in taken:
                n += 1
            last[low] = n
            yield f"{base}#{n}"
            continue
        head, sep, _ = low.rpartition("#")
        if repeated is None or hash(low) in repeated or (sep and renamable(head)):
            taken.add(low)
        yield base


def _copy_taken(low: str, last: dict[str, int]) -> bool:
    """Whether ``low`` is a ``#n`` copy name given already (each copy of ``x`` up to ``last[x]``
    was given, or skipped because the name was taken)."""
    head, sep, n = low.rpartition("#")
    return bool(sep) and n.isascii() and n.isdigit() and n[0] != "0" and 2 <= int(n) <= last.get(head, 1)


def repeated_names(keys: Iterable[str], fallback: str = "record") -> frozenset[int]:
    """Hashes (Python's, valid in this process only) of the :func:`safe_name` s that occur more
    than once in ``keys``, case-insensitively, so that :func:`iter_unique_names` need not remember
    every name. One pass; about 8 bytes per key held while it runs (a hash collision only makes
    the set larger, never the names different)."""
    from array import array

    import numpy as np

    hashes = array("q", (hash(safe_name(k, fallback).lower()) for k in keys))
    h = np.frombuffer(hashes, dtype=np.int64)
    h.sort()  # in place
    again = h[1:][h[1:] == h[:-1]]  # sorted: each repeated hash once or more
    return frozenset(again[np.diff(again, prepend=again[:1] - 1) != 0].tolist())
