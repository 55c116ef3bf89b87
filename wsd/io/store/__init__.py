"""The only module that touches h5py: the file layout, validation and atomic writes.

Layout of every wsd file (``wsd_format`` 1):

* root attributes: ``wsd_format``, ``wsd_kind`` (windows, model, embeddings, detections,
  clusters), ``wsd_version``, ``history`` (one line per command that led to the file) and the
  parameters of the step that wrote it, one attribute per parameter under the CLI flag's name
  (``--n-fft`` -> ``n_fft``; None is left out), plus all of them as JSON in ``params_json``.
* group ``spectrogram``: the spectrogram settings, carried forward by every file and model.
* group ``sources``: one row per input recording (path, size, mtime, native sample rate,
  channels, frames promised by the header and actually decoded, duration, windows, status).
* per-row datasets at the root, all of the same length: ``source_id`` (row in ``sources``),
  ``start_s``, ``end_s`` and the kind's own (``windows``, ``padded``, ``label``, ...).

Outputs are written to a hidden temporary name in the target folder and renamed when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from wsd import __version__
from wsd.errors import BadInputError, InputMissingError, OutputError, WsdIOError

FORMAT = 1
KINDS = ("windows", "model", "embeddings", "detections", "clusters")
STR = h5py.string_dtype("utf-8")

SOURCE_COLUMNS = {  # name -> numpy dtype (str columns stored as utf-8)
    "path": str, "size": np.int64, "mtime": np.float64, "format": str,
    "native_sample_rate": np.int64, "channels": np.int64, "frames_header": np.int64,
    "frames_decoded": np.int64, "duration_s": np.float64, "n_windows": np.int64,
    "status": str, "message": str,
}


# ---------------------------------------------------------------- outputs, atomically

def check_output(path, force: bool) -> Path:
    """Fail early (exit 73) if ``path`` exists without ``force`` or its folder is unwritable."""
    path = Path(path)
    if path.is_dir():
        raise OutputError("is a folder", path)
    if path.exists() and not force:
        raise OutputError("exists (use --force to overwrite)", path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"folder {folder} does not exist", path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"folder {folder} is not writable", path)
    return path


@contextlib.contextmanager
def atomic_output(path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    A killed process leaves at most a hidden ``.NAME.PID.tmp``, never a half ``NAME``.
    """
    path = check_output(path, force)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _open(path, mode="r") -> h5py.File:
    try:
        return h5py.File(path, mode)
    except FileNotFoundError:
        raise InputMissingError("no such file", path) from None
    except OSError as e:
        if mode == "r":
            if not Path(path).exists():
                raise InputMissingError("no such file", path) from None
            raise BadInputError("not an HDF5 file (or damaged)", path) from None
        raise WsdIOError(f"cannot write ({e})", path) from None


# ---------------------------------------------------------------- attributes

def _attr_value(v):
    if isinstance(v, (list, tuple)):
        return json.dumps(v)
    if isinstance(v, dict):
        return json.dumps(v)
    return v


def write_params(obj, params: dict) -> None:
    """Parameters as one attribute each (None left out) and all together as JSON."""
    for k, v in params.items():
        if v is not None:
            obj.attrs[k] = _attr_value(v)
    obj.attrs["params_json"] = json.dumps(params, default=str)


def _decode(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def read_params(obj) -> dict:
    if "params_json" in obj.attrs:
        return json.loads(obj.attrs["params_json"])
    return {k: _decode(v) for k, v in obj.attrs.items()}


def history_line(command: str, argv: list[str], when: str) -> str:
    import shlex
    return f"{when} wsd {__version__} {command}: {shlex.join(argv)}"


def write_header(f: h5py.File, kind: str, params: dict, spectrogram: dict | None,
                 history: list[str]) -> None:
    assert kind in KINDS, kind
    f.attrs["wsd_format"] = FORMAT
    f.attrs["wsd_kind"] = kind
    f.attrs["wsd_version"] = __version__
    f.attrs["history"] = "\n".join(history)
    write_params(f, params)
    if spectrogram is not None:
        write_params(f.require_group("spectrogram"), spectrogram)


def write_sources(f: h5py.File, sources: dict[str, np.ndarray]) -> None:
    g = f.require_group("sources")
    for name, typ in SOURCE_COLUMNS.items():
        col = sources[name]
        if typ is str:
            g.create_dataset(name, data=np.asarray(col, dtype=object), dtype=STR)
        else:
            g.create_dataset(name, data=np.asarray(col, dtype=typ))


def empty_sources() -> dict[str, list]:
    return {k: [] for k in SOURCE_COLUMNS}


def concat_sources(rows: list[dict]) -> dict[str, np.ndarray]:
    out = empty_sources()
    for r in rows:
        for k in SOURCE_COLUMNS:
            out[k].append(r[k])
    return {k: np.asarray(v, dtype=object if SOURCE_COLUMNS[k] is str else SOURCE_COLUMNS[k])
            for k, v in out.items()}


def write_rows(f: h5py.File, datasets: dict[str, np.ndarray]) -> None:
    """Per-row datasets (all the same length); strings stored as utf-8."""
    lengths = {k: len(v) for k, v in datasets.items()}
    assert len(set(lengths.values())) <= 1, lengths
    for name, data in datasets.items():
        data = np.asarray(data)
        if data.dtype.kind in "OUS":
            f.create_dataset(name, data=data.astype(object), dtype=STR)
        else:
            f.create_dataset(name, data=data)


# ---------------------------------------------------------------- reading

class WsdFile:
    """A wsd HDF5 file opened for reading (a context manager).

    ``kind``, ``params``, ``spectrogram`` (dict or None), ``history`` (list of lines),
    ``sources`` (dict of column arrays), ``n`` (rows), ``read(name, sel)`` for datasets.
    """

    def __init__(self, path, expect: str | tuple[str, ...] | None = None):
        self.path = str(path)
        self.f = _open(path)
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
                    raise BadInputError(f"is a {kind} file; expected {' or '.join(want)}", path)
            self.kind = kind
            self._check_virtual()
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
        g = self.f["sources"]
        return {k: (g[k].asstr()[:] if g[k].dtype.kind == "O" else g[k][:]) for k in g}

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
        """Read ``name[sel]``; strings come back as str objects."""
        try:
            d = self.f[name]
            if d.dtype.kind == "O":
                return d.asstr()[sel]
            return d[sel]
        except KeyError:
            raise BadInputError(f"has no dataset '{name}'", self.path) from None
        except OSError as e:
            raise WsdIOError(f"read error in '{name}' ({e})", self.path) from None

    def attrs(self, name: str) -> dict:
        return {k: _decode(v) for k, v in self.f[name].attrs.items()}

    def datasets(self) -> dict[str, tuple]:
        out = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.shape, str(obj.dtype), bool(obj.is_virtual))
        self.f.visititems(visit)
        return out


def open_file(path, expect=None) -> WsdFile:
    return WsdFile(path, expect)
