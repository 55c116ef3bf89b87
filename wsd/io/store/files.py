"""Reading wsd files: :func:`open_file` opens one, checks it against its kind
(:mod:`wsd.io.store.kinds`) and gives its attributes, tables and datasets; every failure is
one line naming the file (exit 65 for a damaged or malformed file, 66 for a missing one).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import h5py
import numpy as np

from wsd.errors import BadInputError, InputMissingError, WsdIOError
from wsd.io.store.schema import FORMAT, _decode, read_params



def open_h5(path, mode: str = "r") -> h5py.File:
    """``h5py.File(path, mode)`` with one-line errors naming ``path``: missing (66), not a
    regular file (a folder or a FIFO, which would block: 65), not HDF5 or damaged (65)."""
    if mode == "r":
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise InputMissingError("no such file", path) from None
        except OSError as e:
            raise InputMissingError(f"cannot read ({e.strerror})", path) from None
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise BadInputError(f"is {what}; expected a wsd HDF5 file", path)
    try:
        return h5py.File(path, mode)
    except FileNotFoundError:
        raise InputMissingError("no such file", path) from None
    except PermissionError:
        raise InputMissingError("permission denied", path) from None
    except OSError as e:
        if mode == "r":
            raise BadInputError("not an HDF5 file (or damaged)", path) from None
        raise WsdIOError(f"cannot write ({e})", path) from None


class WsdFile:
    """A wsd HDF5 file opened for reading (a context manager).

    ``kind``, ``params``, ``spectrogram`` (dict or None), ``history`` (list of lines),
    ``sources`` (dict of column arrays), ``n`` (rows), ``read(name, sel)`` for datasets.
    """

    def __init__(self, path, expect: str | tuple[str, ...] | None = None):
        self.path = str(path)
        self.f = open_h5(path)
        try:
            kind = _decode(self.f.attrs.get("wsd_kind"))
            if kind is None:
                raise BadInputError("not a wsd file (no wsd_kind attribute)", path)
            fmt = int(_decode(self.f.attrs.get("wsd_format", 0)))
            if fmt > FORMAT:
                raise BadInputError(f"made by a newer wsd (format {fmt}; this reads {FORMAT})",
                                    path)
            if expect is not None:
                want = (expect,) if isinstance(expect, str) else expect
                if kind not in want:
                    raise BadInputError(f"is a {kind} file; expected a {' or '.join(want)} file",
                                        path)
            self.kind = kind
            self._check_virtual()
            from wsd.io.store.kinds import validate

            validate(self)
        except (OSError, RuntimeError) as e:  # h5py met damaged bytes in the metadata
            self.f.close()
            raise BadInputError(f"damaged HDF5 file ({_first_line(e)})", path) from None
        except BaseException:
            self.f.close()
            raise

    def _check_virtual(self) -> None:
        folder = Path(self.path).parent
        for name, obj in self.f.items():
            if isinstance(obj, h5py.Dataset) and obj.is_virtual:
                for src in {m.file_name for m in obj.virtual_sources()}:
                    if src != "." and not (folder / src).exists() and not Path(src).exists():
                        raise BadInputError(
                            f"dataset '{name}' is stored in shard {src}, which is missing: keep "
                            f"the folder {Path(src).parts[0]} beside the file, or re-run slice "
                            "with --join merge for a single self-contained file", self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.f.close()

    @property
    def params(self) -> dict:
        return read_params(self.f)

    @property
    def spectrogram(self) -> dict | None:
        return read_params(self.f["spectrogram"]) if "spectrogram" in self.f else None

    @property
    def history(self) -> list[str]:
        h = _decode(self.f.attrs.get("history", ""))
        return [line for line in h.split("\n") if line]

    @property
    def sources(self) -> dict[str, np.ndarray]:
        g = self.f.get("sources")
        if g is None:
            return {}
        try:
            return {k: (g[k].asstr()[:] if g[k].dtype.kind == "O" else g[k][:]) for k in g}
        except OSError as e:
            raise BadInputError(f"damaged sources table ({_first_line(e)})", self.path) from None

    @property
    def n(self) -> int:
        return len(self.f["source_id"]) if "source_id" in self.f else 0

    def has(self, name: str) -> bool:
        return name in self.f

    def shape(self, name: str) -> tuple:
        return self.f[name].shape

    def dtype(self, name: str):
        return self.f[name].dtype

    def read(self, name: str, sel=slice(None)) -> np.ndarray:
        """Read ``name[sel]``; strings come back as str objects. Damaged data (a corrupt
        chunk) is a :class:`BadInputError` naming the file, and source ids are checked
        against the sources table as they are read."""
        try:
            d = self.f[name]
            out = d.asstr()[sel] if d.dtype.kind == "O" else d[sel]
        except KeyError:
            raise BadInputError(f"has no dataset '{name}'", self.path) from None
        except OSError as e:
            raise BadInputError(f"damaged data in '{name}' ({_first_line(e)})",
                                self.path) from None
        if name.endswith("source_id") and np.size(out):
            self._check_source_ids(name, out)
        return out

    def _check_source_ids(self, name: str, ids: np.ndarray) -> None:
        n = self.n_sources
        lo, hi = int(np.min(ids)), int(np.max(ids))
        if lo < 0 or hi >= n:
            raise BadInputError(f"'{name}' holds source id {lo if lo < 0 else hi}, outside "
                                f"the sources table of {n} recording(s)", self.path)

    @property
    def file_id(self) -> str | None:
        """The file's identity (``wsd_id``, written once when it was made), or None for
        files made before wsd wrote one."""
        v = self.f.attrs.get("wsd_id")
        return None if v is None else _decode(v)

    @property
    def n_sources(self) -> int:
        g = self.f.get("sources")
        return len(g["path"]) if g is not None and "path" in g else 0

    def attrs(self, name: str) -> dict:
        return {k: _decode(v) for k, v in self.f[name].attrs.items()}

    def datasets(self) -> dict[str, tuple]:
        out = {}

        from wsd.io.store.netcdf import is_dim

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not is_dim(obj):
                out[name] = (obj.shape, str(obj.dtype), bool(obj.is_virtual))
        self.f.visititems(visit)
        return out


def open_file(path, expect=None) -> WsdFile:
    """Open a wsd file for reading, checked against its kind (and ``expect``: a kind or
    tuple of kinds it must be)."""
    return WsdFile(path, expect)


def _first_line(e: Exception) -> str:
    return str(e).strip().split("\n")[0][:200]
