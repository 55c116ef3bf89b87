"""Streamed writing of per-row outputs (embeddings, detections): datasets grow in chunks as
batches arrive, so memory stays bounded however many windows an archive has."""

from __future__ import annotations

import h5py
import numpy as np

from wsd.io.store.atomic import atomic_output
from wsd.io.store.files import open_h5
from wsd.io.store.schema import STR, write_header, write_sources


class RowWriter:
    """Append rows to datasets of an (already temporary) HDF5 file, then finish it.

    ``append(name=array, ...)`` adds the same number of rows to every named dataset; arrays
    may be (n,) or (n, ...) numeric, or (n,) str.
    """

    def __init__(self, path, kind: str, params: dict, spectrogram: dict | None,
                 history: list[str], sources: dict, chunk_rows: int = 4096):
        self.f = h5py.File(path, "w")
        write_header(self.f, kind, params, spectrogram, history)
        write_sources(self.f, sources)
        self.chunk_rows = chunk_rows
        self.n = 0

    def append(self, **cols: np.ndarray) -> None:
        lens = {len(v) for v in cols.values()}
        assert len(lens) == 1, {k: len(v) for k, v in cols.items()}
        k = lens.pop()
        if k == 0:
            return
        for name, data in cols.items():
            data = np.asarray(data)
            if name not in self.f:
                if data.dtype.kind in "OUS":
                    self.f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=STR,
                                          chunks=(self.chunk_rows,))
                else:
                    rows = max(1, min(self.chunk_rows, (1 << 20) // max(1, data[0].nbytes)))
                    self.f.create_dataset(name, shape=(0, *data.shape[1:]),
                                          maxshape=(None, *data.shape[1:]), dtype=data.dtype,
                                          chunks=(rows, *data.shape[1:]))
            ds = self.f[name]
            ds.resize(self.n + k, axis=0)
            ds[self.n : self.n + k] = data.astype(object) if data.dtype.kind in "US" else data
        self.n += k

    def put(self, name: str, data, attrs: dict | None = None) -> None:
        """A whole dataset at once (small outputs: linkage, medoids, metrics)."""
        data = np.asarray(data)
        if data.dtype.kind in "OUS":
            ds = self.f.create_dataset(name, data=data.astype(object), dtype=STR)
        else:
            ds = self.f.create_dataset(name, data=data)
        for k, v in (attrs or {}).items():
            ds.attrs[k] = v

    def set_attrs(self, group: str | None = None, **attrs) -> None:
        obj = self.f.require_group(group) if group else self.f
        for k, v in attrs.items():
            if v is not None:
                obj.attrs[k] = v

    def close(self) -> None:
        """Label every dataset for xarray (:func:`wsd.io.store.netcdf.apply_schema`) when
        the file is complete, and close it."""
        from wsd.io.store.netcdf import apply_schema

        try:
            if self.f.id.valid and self.f.mode != "r":
                apply_schema(self.f)
        finally:
            self.f.close()


def write_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    """A small HDF5 file of named arrays, written atomically (a task's shard)."""
    from wsd.io.store.atomic import in_memory_h5

    from wsd.io.store.schema import put_array

    with atomic_output(path, force=True) as tmp, in_memory_h5(tmp) as f:
        for k, v in arrays.items():
            put_array(f, k, v)


def read_arrays(path) -> dict[str, np.ndarray]:
    with open_h5(path) as f:
        return {k: (f[k].asstr()[()] if f[k].dtype.kind == "O" else f[k][()]) for k in f}
