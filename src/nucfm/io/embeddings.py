"""Writers for embeddings, chosen by the output file's extension.

Per-residue embeddings (one (L_i, D) array per record):

* ``.h5`` / ``.hdf5``: one float32 dataset per record under ``/embeddings/<key>``; ``key`` is the
  record id, with ``/`` replaced by ``|`` and ``#2``, ``#3``... appended to repeated ids, so
  duplicate ids are kept apart. Root datasets ``ids`` (input order, original ids) and ``keys``
  (the matching dataset names); attributes ``model``, ``layer``, ``pool``, ``nucfm_version``.
* ``.npz``: the same keys as arrays, plus ``__ids__`` and ``__keys__``.

Pooled embeddings (one (D,) vector per record):

* ``.h5``: dataset ``embeddings`` (N, D) and ``ids``; ``.npz``: ``embeddings`` and ``ids``;
* ``.npy``: the (N, D) array, ids in ``<name>.ids.txt`` beside it;
* ``.parquet``: columns ``id`` and ``embedding`` (fixed-size list of float32;
  ``np.stack(pd.read_parquet(p).embedding)`` gives the matrix).

Rows are written as they come (HDF5, Parquet), so memory stays one chunk of records.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nucfm.errors import InputError

PER_RESIDUE = (".h5", ".hdf5", ".npz")
POOLED = (".h5", ".hdf5", ".npz", ".npy", ".parquet")


def unique_keys(ids, seen: dict[str, int] | None = None) -> list[str]:
    """Dataset names for ids: '/' -> '|', repeats get '#2', '#3', ... (input order kept).
    ``seen`` carries the counts across calls when ids arrive in chunks."""
    seen = {} if seen is None else seen
    keys = []
    for rid in ids:
        base = (rid or "unnamed").replace("/", "|")
        n = seen.get(base, 0) + 1
        seen[base] = n
        keys.append(base if n == 1 else f"{base}#{n}")
    return keys


class EmbeddingWriter:
    """Incremental writer: ``add(ids, arrays)`` any number of times, then ``close()``."""

    def __init__(self, path: str | Path, pooled: bool, dim: int, attrs: dict | None = None):
        self.path = Path(path)
        self.pooled = pooled
        self.dim = dim
        self.attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
        ext = self.path.suffix.lower()
        allowed = POOLED if pooled else PER_RESIDUE
        if ext not in allowed:
            kind = "pooled" if pooled else "per-residue"
            raise InputError(f"{self.path}: {kind} embeddings can be written as {', '.join(allowed)}")
        self.ext = ext
        self.ids: list[str] = []
        self.keys: list[str] = []
        self._seen: dict[str, int] = {}
        self._arrays: list[np.ndarray] = []  # npz / npy only
        self._h5 = None
        self._pq = None
        if ext in (".h5", ".hdf5"):
            import h5py

            self._h5 = h5py.File(self.path, "w")
            for k, v in self.attrs.items():
                self._h5.attrs[k] = v
            if pooled:
                self._h5.create_dataset("embeddings", shape=(0, dim), maxshape=(None, dim), dtype="f4",
                                        chunks=(256, dim))
            else:
                self._h5.create_group("embeddings")

    def add(self, ids: list[str], arrays: list[np.ndarray]) -> None:
        keys = unique_keys(ids, self._seen)
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
                self._pq = pq.ParquetWriter(self.path, table.schema.with_metadata(meta))
            self._pq.write_table(table)
        else:
            self._arrays.extend(arrays)

    def close(self) -> None:
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
            np.save(self.path, np.stack(self._arrays) if self._arrays else np.empty((0, self.dim), np.float32))
            self.path.with_suffix(".ids.txt").write_text("".join(f"{i}\n" for i in self.ids))
        elif self.ext == ".npz":
            if self.pooled:
                data = {"embeddings": np.stack(self._arrays) if self._arrays else np.empty((0, self.dim))}
                np.savez(self.path, ids=np.array(self.ids), **data)
            else:
                np.savez(self.path, __ids__=np.array(self.ids), __keys__=np.array(keys),
                         **dict(zip(keys, self._arrays)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
