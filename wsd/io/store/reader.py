"""Fast reads of runs of consecutive windows, one open file per process (DataLoader
workers and Dask tasks open their own handle lazily: h5py handles do not survive a fork)."""

from __future__ import annotations

import os

import h5py
import numpy as np

from wsd.errors import BadInputError
from wsd.io.store.files import open_h5

_HANDLES: dict[tuple[int, str], h5py.File] = {}


def _handle(path: str) -> h5py.File:
    key = (os.getpid(), path)
    f = _HANDLES.get(key)
    if f is None or not f.id.valid:
        f = _HANDLES[key] = open_h5(path)
    return f


def read_rows(path: str, name: str, a: int, b: int) -> np.ndarray:
    """``name[a:b]`` of the file at ``path`` (a contiguous, hence fast, read)."""
    try:
        return _handle(str(path))[name][a:b]
    except OSError as e:
        raise BadInputError(f"damaged data in '{name}' rows {a}-{b} "
                            f"({str(e).splitlines()[0][:160]})", path) from None
