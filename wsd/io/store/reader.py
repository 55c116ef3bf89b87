"""Fast reads of runs of consecutive windows, one open file per process (DataLoader
workers and Dask tasks open their own handle lazily: h5py handles do not survive a fork)."""

from __future__ import annotations

import os

import h5py
import numpy as np

from wsd.io.store import _open

_HANDLES: dict[tuple[int, str], h5py.File] = {}


def _handle(path: str) -> h5py.File:
    key = (os.getpid(), path)
    f = _HANDLES.get(key)
    if f is None or not f.id.valid:
        f = _HANDLES[key] = _open(path)
    return f


def read_rows(path: str, name: str, a: int, b: int) -> np.ndarray:
    """``name[a:b]`` of the file at ``path`` (a contiguous, hence fast, read)."""
    return _handle(str(path))[name][a:b]


def close_all() -> None:
    for k, f in list(_HANDLES.items()):
        if k[0] == os.getpid():
            f.close()
            del _HANDLES[k]
