"""Writers and readers of embeddings, the format chosen by the output file's extension.

Per-residue embeddings (one (L_i, D) array per record), two layouts of ``.h5`` / ``.hdf5``:

* ``layout="records"`` (default; handy for small files, every record by name in any HDF5
  viewer): one float32 dataset per record under ``/embeddings/<key>``; ``key`` is
  :func:`nucfm.paths.unique_names` of the record ids (characters other than letters, digits,
  ``-_.#`` become ``_``; a repeated or colliding name gets ``#2``, ``#3``...; the names in
  :data:`RESERVED` are never used), so every record is kept. Root datasets ``ids`` (input
  order, original ids) and ``keys`` (the matching dataset names).
* ``layout="concat"`` (for large files: millions of records): every record's rows one after the
  other in ONE chunked dataset ``embeddings`` (sum L_i, D) float32, and ``offsets``
  (N + 1,) int64: record ``i`` is ``embeddings[offsets[i]:offsets[i + 1]]``; ``ids`` in input
  order. Attribute ``layout = "concat"``. Writing appends to one dataset (no per-record HDF5
  object), and reading one record touches one or two compressed chunks.

Both carry the attributes ``model``, ``layer``, ``pool``, ``nucfm_version``. ``.npz`` holds the
records layout's keys as arrays plus ``__ids__`` and ``__keys__`` (built in memory: for small files).

Pooled embeddings (one (D,) vector per record):

* ``.h5``: dataset ``embeddings`` (N, D) and ``ids``; ``.npz``: ``embeddings`` and ``ids``;
* ``.npy``: the (N, D) array, ids in ``<name>.ids.txt`` beside it;
* ``.parquet``: columns ``id`` and ``embedding`` (fixed-size list of float32;
  ``np.stack(pd.read_parquet(p).embedding)`` gives the matrix).

Rows are written as they come (``.h5`` both layouts, ``.parquet``, ``.npy``), so memory stays one
chunk of records however many records there are (``.npz`` and the records layout's table of
used names grow with the file). Everything goes to a temporary file beside the output that
replaces it only when :meth:`EmbeddingWriter.close` completes without an error (see
:func:`nucfm.paths.atomic_path`): a failure or Ctrl-C leaves a previous output untouched and no
partial file behind.

:func:`open_embeddings` reads any of these files back, one record at a time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nucfm.errors import InputError
from nucfm.paths import _remove, _temporary_sibling, unique_names

PER_RESIDUE = (".h5", ".hdf5", ".npz")
LAYOUTS = ("records", "concat")
# The concat layout's HDF5 chunks: about 64 KiB of rows each (at least 64 rows), so reading a short
# record touches one or two chunks. Not compressed: on float32 embeddings gzip-1 + shuffle saved
# 15 % of the size but wrote 6x slower and read a random record 9x slower; lzf saved 10 %, 5x and
# 9x (bench/embedding_layouts.py, docs/scale.md).
CHUNK_BYTES = 1 << 16
COMPRESSION: dict = {}
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


def check_embedding_output(path: str | Path, pooled: bool, layout: str = "records") -> str:
    """The output extension for pooled or per-residue embeddings, or a one-line error."""
    ext = Path(path).suffix.lower()
    allowed = POOLED if pooled else PER_RESIDUE
    if ext not in allowed:
        kind = "pooled (--pool mean)" if pooled else "per-residue (--pool none)"
        raise InputError(f"{path}: {kind} embeddings can be written as {', '.join(allowed)}")
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if layout == "concat" and (pooled or ext not in (".h5", ".hdf5")):
        raise InputError(f"{path}: the concat layout is for per-residue .h5/.hdf5 files")
    return ext




class EmbeddingWriter:
    """Incremental writer: ``add(ids, arrays)`` any number of times, then ``close()``.
    ``layout`` (per-residue ``.h5`` only): ``records`` or ``concat`` (see the module docstring)."""

    def __init__(self, path: str | Path, pooled: bool, dim: int, attrs: dict | None = None,
                 layout: str = "records"):
        self.path = Path(path)
        self.pooled = pooled
        self.dim = dim
        self.layout = layout
        self.attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
        ext = check_embedding_output(self.path, pooled, layout)
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the directory {self.path.parent} does not exist")
        self.ext = ext
        self.tmp = _temporary_sibling(self.path)  # renamed to path by a successful close()
        self.closed = False
        self.n = 0
        self._keyed = not pooled and layout == "records"  # records named by unique keys
        self._taken: set[str] = set()
        self._ids: list[str] = []  # npz only
        self._keys: list[str] = []  # npz only
        self._arrays: list[np.ndarray] = []  # npz only
        self._h5 = self._pq = self._rows = self._ids_fh = None
        self.tmp_ids = self.tmp_rows = None
        if ext in (".h5", ".hdf5"):
            import h5py

            self._h5 = h5py.File(self.tmp, "w")
            for k, v in self.attrs.items():
                self._h5.attrs[k] = v
            strings = {"shape": (0,), "maxshape": (None,), "dtype": h5py.string_dtype(), "chunks": (4096,)}
            self._h5.create_dataset("ids", **strings)
            if pooled:
                self._h5.create_dataset("embeddings", shape=(0, dim), maxshape=(None, dim), dtype="f4",
                                        chunks=(256, dim))
            elif layout == "concat":
                self._h5.attrs["layout"] = "concat"
                rows = max(64, CHUNK_BYTES // (4 * dim))
                self._h5.create_dataset("embeddings", shape=(0, dim), maxshape=(None, dim), dtype="f4",
                                        chunks=(rows, dim), **COMPRESSION)
                self._h5.create_dataset("offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(65536,))
            else:
                self._h5.create_dataset("keys", **strings)
                self._h5.create_group("embeddings")
        elif ext == ".npy":  # rows spooled to a raw file, given their .npy header at close
            self.tmp_rows = _temporary_sibling(self.path.with_suffix(".rows"))
            self.tmp_ids = _temporary_sibling(self.path.with_suffix(".ids.txt"))
            self._rows = open(self.tmp_rows, "wb")  # noqa: SIM115 - closed in _finish / abort
            self._ids_fh = open(self.tmp_ids, "w", encoding="utf-8")  # noqa: SIM115

    def add(self, ids: list[str], arrays: list[np.ndarray]) -> None:
        ids = [str(i) for i in ids]
        keys = unique_keys(ids, self._taken) if self._keyed else None
        n0, self.n = self.n, self.n + len(ids)
        if self._h5 is not None:
            f = self._h5
            _append(f["ids"], np.array(ids, dtype=object))
            if self.pooled:
                _append(f["embeddings"], np.stack(arrays) if arrays else np.empty((0, self.dim), np.float32))
            elif self.layout == "concat":
                lengths = np.array([len(a) for a in arrays], dtype=np.int64)
                end = int(f["offsets"][n0])
                _append(f["offsets"], end + np.cumsum(lengths))
                if lengths.sum():
                    _append(f["embeddings"], np.concatenate(arrays).astype(np.float32, copy=False))
            else:
                _append(f["keys"], np.array(keys, dtype=object))
                group = f["embeddings"]
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
        elif self.ext == ".npy":
            if arrays:
                self._rows.write(np.stack(arrays).astype("<f4", copy=False).tobytes())
            self._ids_fh.write("".join(f"{i}\n" for i in ids))
        else:
            self._ids.extend(ids)
            self._keys.extend(keys or [])
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
        for handle in (self._h5, self._pq, self._rows, self._ids_fh):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # noqa: BLE001 - the file is deleted anyway
                pass
        for p in (self.tmp, self.tmp_ids, self.tmp_rows):
            if p is not None:
                _remove(p)

    def _finish(self) -> None:
        if self._h5 is not None:
            self._h5.close()
        elif self.ext == ".parquet":
            if self._pq is None:  # no records: still write a valid empty file
                self.add([], [])
            self._pq.close()
        elif self.ext == ".npy":
            import shutil

            self._rows.close()
            self._ids_fh.close()
            with open(self.tmp, "wb") as out, open(self.tmp_rows, "rb") as rows:
                header = {"descr": "<f4", "fortran_order": False, "shape": (self.n, self.dim)}
                np.lib.format.write_array_header_1_0(out, header)
                shutil.copyfileobj(rows, out, 1 << 22)
            _remove(self.tmp_rows)
        elif self.ext == ".npz":
            if self.pooled:
                data = {"embeddings": np.stack(self._arrays) if self._arrays else np.empty((0, self.dim))}
                np.savez(self.tmp, ids=np.array(self._ids), **data)
            else:
                np.savez(self.tmp, __ids__=np.array(self._ids), __keys__=np.array(self._keys),
                         **dict(zip(self._keys, self._arrays)))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _append(ds, values) -> None:
    """Append ``values`` along axis 0 of a resizable HDF5 dataset."""
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    if len(values):
        ds[n:] = values


# ---- reading back -------------------------------------------------------------------------------
class EmbeddingFile:
    """Read access to any file :class:`EmbeddingWriter` writes, one record at a time.

    ``ids`` (input order), ``len(f)``, ``f[i]`` (record ``i``: an (L_i, D) float32 array, or a
    (D,) vector for pooled files), ``f.get(id)`` (the first record with that id), iteration over
    ``(id, array)`` pairs, ``attrs`` (model, layer, pool, nucfm version) and ``pooled``. HDF5 files
    are opened lazily and read per record, so a file of millions of records is not loaded; use it
    as a context manager (or call :meth:`close`).

    >>> with open_embeddings("emb.h5") as f:  # doctest: +SKIP
    ...     f.ids[:2], f[0].shape
    (['r1', 'r2'], (60, 640))
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{path}: no such file")
        self.ext = self.path.suffix.lower()
        self._h5 = self._data = self._offsets = None
        self._index: dict[str, int] | None = None
        self.attrs: dict = {}
        if self.ext in (".h5", ".hdf5"):
            import h5py

            self._h5 = f = h5py.File(self.path, "r")
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            self.ids = list(f["ids"].asstr()[:])
            self.layout = "concat" if "offsets" in f else ("records" if "keys" in f else "pooled")
            self.pooled = self.layout == "pooled"
            if self.layout == "concat":
                self._offsets = f["offsets"][:]
            elif self.layout == "records":
                self._keys = list(f["keys"].asstr()[:])
            self._data = f["embeddings"]
        elif self.ext == ".npz":
            z = np.load(self.path)
            self.pooled = "embeddings" in z.files and "__keys__" not in z.files
            self.layout = "pooled" if self.pooled else "records"
            self.ids = [str(i) for i in z["ids" if self.pooled else "__ids__"]]
            self._data = z["embeddings"] if self.pooled else z
            self._keys = None if self.pooled else [str(k) for k in z["__keys__"]]
        elif self.ext == ".npy":
            self.pooled, self.layout = True, "pooled"
            self._data = np.load(self.path, mmap_mode="r")
            names = self.path.with_suffix(".ids.txt")
            self.ids = names.read_text(encoding="utf-8").splitlines() if names.is_file() else []
        elif self.ext == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(self.path)
            self.pooled, self.layout = True, "pooled"
            self.attrs = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            self.ids = table.column("id").to_pylist()
            dim = table.schema.field("embedding").type.list_size
            self._data = table.column("embedding").combine_chunks().values.to_numpy().reshape(-1, dim)
        else:
            raise InputError(f"{path}: not an embeddings file (.h5, .hdf5, .npz, .npy, .parquet)")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"record {i} of {len(self)}")
        i %= len(self)
        if self.layout == "concat":
            return self._data[self._offsets[i] : self._offsets[i + 1]]
        if self.layout == "records":
            a = self._data[self._keys[i]]
            return a[()] if self._h5 is not None else a
        return np.asarray(self._data[i], dtype=np.float32)

    def get(self, record_id: str) -> np.ndarray:
        """The first record whose id is ``record_id``."""
        if self._index is None:
            self._index = {}
            for k, rid in enumerate(self.ids):
                self._index.setdefault(rid, k)
        if record_id not in self._index:
            raise KeyError(record_id)
        return self[self._index[record_id]]

    def __iter__(self):
        for k, rid in enumerate(self.ids):
            yield rid, self[k]

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_embeddings(path: str | Path) -> EmbeddingFile:
    """Open an embeddings file written by ``nucfm embed`` (any format, any layout) for reading
    one record at a time; see :class:`EmbeddingFile`."""
    return EmbeddingFile(path)
