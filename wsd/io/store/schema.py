"""The layout every wsd file shares (``wsd_format`` 1): root attributes, the spectrogram
settings, the sources table and per-row datasets, and the functions that write them.

* root attributes: ``wsd_format``, ``wsd_kind`` (:mod:`wsd.io.store.kinds`), ``wsd_version``,
  ``history`` (one line per command that led to the file) and the parameters of the step
  that wrote it, one attribute per parameter under the CLI flag's name (``--n-fft`` ->
  ``n_fft``; None is left out), plus all of them as JSON in ``params_json``.
* group ``spectrogram``: the spectrogram settings, carried forward by every file and model.
* group ``sources``: one row per input recording (path, size, mtime, native sample rate,
  channels, frames promised by the header and actually decoded, duration, windows, status).
* per-row datasets at the root, all of the same length: ``source_id`` (row in ``sources``),
  ``start_s``, ``end_s`` and the kind's own (``windows``, ``padded``, ``label``, ...).
"""

from __future__ import annotations

import json
import uuid

import h5py
import numpy as np

from wsd import __version__

FORMAT = 1
STR = h5py.string_dtype("utf-8")

SOURCE_COLUMNS = {  # name -> numpy dtype (str columns stored as utf-8)
    "path": str, "size": np.int64, "mtime": np.float64, "format": str,
    "native_sample_rate": np.int64, "channels": np.int64, "frames_header": np.int64,
    "frames_decoded": np.int64, "duration_s": np.float64, "n_windows": np.int64,
    "status": str, "message": str,
}


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
    from wsd.io.store.kinds import KINDS

    assert kind in KINDS, kind
    f.attrs["wsd_format"] = FORMAT
    f.attrs["wsd_kind"] = kind
    f.attrs["wsd_version"] = __version__
    f.attrs["wsd_id"] = uuid.uuid4().hex  # files that name this one check it is the same
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
        put_array(f, name, data)


def put_array(f, name: str, data) -> None:
    """One dataset from an array; strings stored as utf-8."""
    data = np.asarray(data)
    if data.dtype.kind in "OUS":
        f.create_dataset(name, data=data.astype(object), dtype=STR)
    else:
        f.create_dataset(name, data=data)


