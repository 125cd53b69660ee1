"""Writers for embeddings, chosen by the output file's extension.

Per-residue embeddings (one (L_i, D) array per record):

* ``.h5`` / ``.hdf5``: one float32 dataset per record under ``/embeddings/<key>``; ``key`` is
  :func:`nucfm.paths.unique_names` of the record ids (characters other than letters, digits,
  ``-_.#`` become ``_``; a repeated or colliding name gets ``#2``, ``#3``...; the names in
  :data:`RESERVED` are never used), so every record is kept. Root datasets ``ids`` (input
  order, original ids) and ``keys`` (the matching dataset names); attributes ``model``,
  ``layer``, ``pool``, ``nucfm_version``.
* ``.npz``: the same keys as arrays, plus ``__ids__`` and ``__keys__``.

Pooled embeddings (one (D,) vector per record):

* ``.h5``: dataset ``embeddings`` (N, D) and ``ids``; ``.npz``: ``embeddings`` and ``ids``;
* ``.npy``: the (N, D) array, ids in ``<name>.ids.txt`` beside it;
* ``.parquet``: columns ``id`` and ``embedding`` (fixed-size list of float32;
  ``np.stack(pd.read_parquet(p).embedding)`` gives the matrix).

Rows are written as they come (HDF5, Parquet), so memory stays one chunk of records. Everything
goes to a temporary file beside the output that replaces it only when :meth:`EmbeddingWriter.close`
completes without an error (see :func:`nucfm.paths.atomic_path`): a failure or Ctrl-C leaves a
previous output untouched and no partial file behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.paths import _remove, _temporary_sibling, unique_names

PER_RESIDUE = (".h5", ".hdf5", ".npz")
POOLED = (".h5", ".hdf5", ".npz", ".npy", ".parquet")


# Names a record key must never take: the root datasets / npz arrays beside the records, and
# numpy.savez's own keyword arguments.
RESERVED = ("ids", "keys", "__ids__", "__keys__", "embeddings", "file", "allow_pickle")


def unique_keys(ids, taken: set[str] | None = None) -> list[str]:
    """Dataset / array names for ids (:func:`nucfm.paths.unique_names`, never one of
    :data:`RESERVED`). ``taken`` (lower-cased names) carries the names across calls when ids
    arrive in chunks.

    >>> unique_keys(["a", "a", "a/1", "a_1", "ids", "."])
    ['a', 'a#2', 'a_1', 'a_1#2', 'ids#2', 'record']
    """
    taken = set() if taken is None else taken
    keys = unique_names(ids, reserved=tuple(taken) + RESERVED)
    taken.update(k.lower() for k in keys)
    return keys


def check_embedding_output(path: str | Path, pooled: bool) -> str:
    """The output extension for pooled or per-residue embeddings, or a one-line error."""
    ext = Path(path).suffix.lower()
    allowed = POOLED if pooled else PER_RESIDUE
    if ext not in allowed:
        kind = "pooled (--pool mean)" if pooled else "per-residue (--pool none)"
        raise InputError(f"{path}: {kind} embeddings can be written as {', '.join(allowed)}")
    return ext


class EmbeddingWriter:
    """Incremental writer: ``add(ids, arrays)`` any number of times, then ``close()``."""

    def __init__(self, path: str | Path, pooled: bool, dim: int, attrs: dict | None = None):
        self.path = Path(path)
        self.pooled = pooled
        self.dim = dim
        self.attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
        ext = check_embedding_output(self.path, pooled)
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the directory {self.path.parent} does not exist")
        self.ext = ext
        self.tmp = _temporary_sibling(self.path)  # renamed to path by a successful close()
        self.tmp_ids = _temporary_sibling(self.path.with_suffix(".ids.txt")) if ext == ".npy" else None
        self.closed = False
        self.ids: list[str] = []
        self.keys: list[str] = []
        self._taken: set[str] = set()
        self._arrays: list[np.ndarray] = []  # npz / npy only
        self._h5 = None
        self._pq = None
        if ext in (".h5", ".hdf5"):
            import h5py

            self._h5 = h5py.File(self.tmp, "w")
            for k, v in self.attrs.items():
                self._h5.attrs[k] = v
            if pooled:
                self._h5.create_dataset("embeddings", shape=(0, dim), maxshape=(None, dim), dtype="f4",
                                        chunks=(256, dim))
            else:
                self._h5.create_group("embeddings")

    def add(self, ids: list[str], arrays: list[np.ndarray]) -> None:
        ids = [str(i) for i in ids]
        keys = unique_keys(ids, self._taken)
        self.ids.extend(ids)
        self.keys.extend(keys)
        if self._h5 is not None:
            if self.pooled:
                ds = self._h5["embeddings"]
                n = ds.shape[0]
                ds.resize(n + len(arrays), axis=0)
                ds[n:] = np.stack(arrays) if arrays else np.empty((0, self.dim), np.float32)
            else:
                group = self._h5["embeddings"]
                for k, a in zip(keys, arrays):
                    group.create_dataset(k, data=a, dtype="f4")
        elif self.ext == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            flat = pa.array(np.stack(arrays).reshape(-1) if arrays else np.empty(0, np.float32), pa.float32())
            table = pa.table({"id": pa.array(ids, pa.string()),
                              "embedding": pa.FixedSizeListArray.from_arrays(flat, self.dim)})
            if self._pq is None:
                meta = {k.encode(): str(v).encode() for k, v in self.attrs.items()}
                self._pq = pq.ParquetWriter(self.tmp, table.schema.with_metadata(meta))
            self._pq.write_table(table)
        else:
            self._arrays.extend(arrays)

    def close(self) -> None:
        """Finish the file and move it into place; called while an exception propagates (from a
        ``finally`` or ``with`` block), it calls :meth:`abort` instead."""
        import sys

        if self.closed:
            return
        if sys.exc_info()[0] is not None:
            self.abort()
            return
        try:
            self._finish()
        except BaseException:
            self.abort()
            raise
        os.replace(self.tmp, self.path)
        if self.tmp_ids is not None:
            os.replace(self.tmp_ids, self.path.with_suffix(".ids.txt"))
        self.closed = True

    def abort(self) -> None:
        """Drop everything written; the output path is left as it was."""
        self.closed = True
        for handle in (self._h5, self._pq):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # noqa: BLE001 - the file is deleted anyway
                pass
        _remove(self.tmp)
        if self.tmp_ids is not None:
            _remove(self.tmp_ids)

    def _finish(self) -> None:
        keys = self.keys
        if self._h5 is not None:
            import h5py

            str_dt = h5py.string_dtype()
            self._h5.create_dataset("ids", data=np.array(self.ids, dtype=object), dtype=str_dt)
            if not self.pooled:
                self._h5.create_dataset("keys", data=np.array(keys, dtype=object), dtype=str_dt)
            self._h5.close()
        elif self.ext == ".parquet":
            if self._pq is None:  # no records: still write a valid empty file
                self.add([], [])
            self._pq.close()
        elif self.ext == ".npy":
            np.save(self.tmp, np.stack(self._arrays) if self._arrays else np.empty((0, self.dim), np.float32))
            self.tmp_ids.write_text("".join(f"{i}\n" for i in self.ids), encoding="utf-8")
        elif self.ext == ".npz":
            if self.pooled:
                data = {"embeddings": np.stack(self._arrays) if self._arrays else np.empty((0, self.dim))}
                np.savez(self.tmp, ids=np.array(self.ids), **data)
            else:
                np.savez(self.tmp, __ids__=np.array(self.ids), __keys__=np.array(keys),
                         **dict(zip(keys, self._arrays)))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()
