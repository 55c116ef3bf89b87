"""Windows files: per-recording shards written while slicing, joined into one file.

Every input recording is sliced into its own shard ``OUT.shards/NNNNNN-FINGERPRINT.h5``
(written atomically), so an interrupted run, re-run, reuses finished shards and ends identical
to an uninterrupted one. The joined output either copies the shards' windows into one
self-contained file (``merge``; the shard folder is then removed) or maps them as an HDF5
virtual dataset (``virtual``; no copy, the file must stay beside its shard folder, which
``WsdFile`` checks on open with a clear error).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from wsd.io.store.atomic import AtomicOutput, atomic_output
from wsd.io.store.files import open_h5 as _open
from wsd.io.store.schema import (concat_sources, read_params, write_header, write_params,
                                 write_rows, write_sources)

CHUNK_BYTES = 1 << 20  # about 1 MB per chunk of windows


def chunk_windows(frames: int, bins: int, itemsize: int) -> int:
    """Windows per HDF5 chunk: about 1 MB, so runs of consecutive windows read fast."""
    return max(1, CHUNK_BYTES // (frames * bins * itemsize))


class ShardWriter:
    """Write one recording's windows to ``final`` atomically (buffered in whole chunks)."""

    def __init__(self, final, frames: int, bins: int, dtype: str):
        self.final = Path(final)
        self.out = AtomicOutput(self.final, force=True)
        self.tmp = self.out.tmp
        self.dtype = np.dtype(dtype)
        self.chunk = chunk_windows(frames, bins, self.dtype.itemsize)
        self.f = _open(self.tmp, "w")
        self.ds = self.f.create_dataset("windows", shape=(0, frames, bins),
                                        maxshape=(None, frames, bins), dtype=self.dtype,
                                        chunks=(self.chunk, frames, bins))
        self.n = 0
        self._buf: list[np.ndarray] = []
        self._nbuf = 0
        self.start_s: list[np.ndarray] = []
        self.end_s: list[np.ndarray] = []
        self.padded: list[np.ndarray] = []

    def _flush(self, final: bool = False) -> None:
        if not self._nbuf:
            return
        data = np.concatenate(self._buf) if len(self._buf) > 1 else self._buf[0]
        k = len(data) if final else (len(data) // self.chunk) * self.chunk
        if k == 0:
            return
        self.ds.resize(self.n + k, axis=0)
        self.ds[self.n : self.n + k] = data[:k]
        self.n += k
        rest = data[k:]
        self._buf = [rest] if len(rest) else []
        self._nbuf = len(rest)

    def append(self, windows: np.ndarray, start_s, end_s, padded: bool = False) -> None:
        if len(windows) == 0:
            return
        self._buf.append(windows.astype(self.dtype, copy=False))
        self._nbuf += len(windows)
        self.start_s.append(np.asarray(start_s, np.float64))
        self.end_s.append(np.asarray(end_s, np.float64))
        self.padded.append(np.full(len(windows), bool(padded)))
        if self._nbuf >= self.chunk:
            self._flush()

    def commit(self, source_row: dict, rows: dict[str, np.ndarray], params: dict,
               transform=None) -> None:
        """Write the per-window rows and the source row, close and rename into place.
        ``transform(windows_dataset, start_s)``, when given, rewrites the recording's
        windows in place first (whitening needs all of them), before the shard is final."""
        try:
            self._flush(final=True)
            if transform is not None:
                starts = self.start_s
                transform(self.ds, np.concatenate(starts) if starts else np.zeros(0))
            cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt))
            write_rows(self.f, {"start_s": cat(self.start_s, np.float64),
                                "end_s": cat(self.end_s, np.float64),
                                "padded": cat(self.padded, bool), **rows})
            self.f.attrs["source_row"] = json.dumps(source_row, default=_plain)
            write_params(self.f, params)
            self.f.close()
            self.out.commit()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.f.close()
        self.out.abort()


def _plain(v):
    return v.item() if isinstance(v, np.generic) else str(v)


@dataclass
class ShardInfo:
    """What the join needs of a finished shard, read in one opening."""

    row: dict  # its recording's row of the sources table
    rows: dict  # per-window rows (start_s, end_s, padded, label...)
    n: int  # windows
    whiten: tuple  # (mean, std) of --whiten's standardisation, or (nan, nan)
    activity: dict | None  # --drop-silence: the recording's activity


def read_shard(path) -> ShardInfo:
    """The source row, per-window rows, window count, whitening stats and activity of a
    finished shard."""
    with _open(path) as f:
        row = json.loads(f.attrs["source_row"])
        rows = {k: (f[k].asstr()[:] if f[k].dtype.kind == "O" else f[k][:])
                for k in f if k not in ("windows", "sources") and isinstance(f[k], h5py.Dataset)}
        a = f["windows"].attrs
        stats = (float(a.get("whiten_mean", np.nan)), float(a.get("whiten_std", np.nan)))
        act = ({k: f["activity"][k][()] for k in f["activity"]} if "activity" in f else None)
        return ShardInfo(row, rows, f["windows"].shape[0], stats, act)


class ShardView:
    """Read access to a finished shard shaped like a windows WsdFile (``read``,
    ``spectrogram``, ``n``), for running the silence detector on it."""

    def __init__(self, path, spec):
        self.f = _open(path)
        self.spectrogram = spec.as_dict()
        self._freqs = spec.freqs()
        self.n = self.f["windows"].shape[0]

    def shape(self, name: str) -> tuple:
        return self.f[name].shape

    def has(self, name: str) -> bool:
        return name == "whiten_stats" and "whiten_std" in self.f["windows"].attrs

    def read(self, name: str, sel=slice(None)) -> np.ndarray:
        if name == "freqs":
            return self._freqs
        if name == "source_id":
            return np.zeros(self.n, np.int64)[sel]
        if name == "whiten_stats":
            a = self.f["windows"].attrs
            return np.array([[a["whiten_mean"], a["whiten_std"]]])
        return self.f[name][sel]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def filter_shard(src, dst, keep: np.ndarray, row: dict, activity: dict) -> None:
    """Write ``dst`` (atomically) with the windows of shard ``src`` where ``keep``, the
    source ``row`` and an ``activity`` group (events and counts of the whole recording)."""
    idx = np.flatnonzero(keep)
    with atomic_output(dst, force=True) as tmp, _open(src) as s, h5py.File(tmp, "w") as d:
        w = s["windows"]
        ds = d.create_dataset("windows", shape=(len(idx), *w.shape[1:]),
                              maxshape=(None, *w.shape[1:]), dtype=w.dtype, chunks=w.chunks)
        for k, v in w.attrs.items():
            ds.attrs[k] = v
        step = max(1, w.chunks[0]) * 16
        for a in range(0, len(idx), step):
            part = idx[a : a + step]
            ds[a : a + len(part)] = w[part[0] : part[-1] + 1][part - part[0]]
        write_rows(d, {k: (s[k].asstr()[:] if s[k].dtype.kind == "O" else s[k][:])[idx]
                       for k in s if isinstance(s[k], h5py.Dataset) and k != "windows"})
        d.attrs["source_row"] = json.dumps(row, default=_plain)
        write_params(d, read_params(s))
        g = d.create_group("activity")
        for k, v in activity.items():
            g.create_dataset(k, data=np.asarray(v))



def join(tmp_out, out_name: str, entries: list, *, frames: int, bins: int, dtype: str,
         freqs: np.ndarray, header: dict, mode: str, row_names: list[str], progress=None) -> int:
    """Write the joined windows file to ``tmp_out``.

    ``entries`` is one item per input in input order: either ``(shard_path, None)`` for a
    finished shard or ``(None, source_row)`` for a file that yielded no windows (bad input
    under --skip-bad). ``mode`` is "merge" (copy windows) or "virtual" (map the shards).
    Returns the number of windows.
    """
    rows_all: dict[str, list] = {k: [] for k in ["source_id", *row_names]}
    sources, shards, activity = [], [], []
    stats = np.full((len(entries), 2), np.nan)
    for sid, (shard, row) in enumerate(entries):
        if shard is not None:
            info = read_shard(shard)
            row, n = info.row, info.n
            for k in row_names:
                rows_all[k].append(info.rows[k])
            rows_all["source_id"].append(np.full(n, sid, np.int32))
            shards.append((shard, n))
            stats[sid] = info.whiten
            if info.activity is not None:
                activity.append((sid, info.activity))
        sources.append(row)
    n_total = sum(n for _, n in shards)
    dt = np.dtype(dtype)
    chunk = chunk_windows(frames, bins, dt.itemsize)
    with h5py.File(tmp_out, "w") as f:
        write_header(f, "windows", header["params"], header["spectrogram"], header["history"])
        f.attrs["layout"] = mode
        write_sources(f, concat_sources(sources))
        cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in rows_all.items()}
        cat["source_id"] = cat["source_id"].astype(np.int32)
        write_rows(f, cat)
        shape = (n_total, frames, bins)
        if mode == "virtual" and n_total:
            lay = h5py.VirtualLayout(shape, dt)
            off = 0
            for shard, n in shards:
                if n:
                    rel = f"{out_name}.shards/{Path(shard).name}"
                    lay[off : off + n] = h5py.VirtualSource(rel, "windows",
                                                            shape=(n, frames, bins))
                off += n
            ds = f.create_virtual_dataset("windows", lay, fillvalue=np.nan)
        else:
            ds = f.create_dataset("windows", shape=shape, dtype=dt,
                                  chunks=(min(chunk, n_total), frames, bins) if n_total else None)
            off = 0
            for shard, n in shards:
                with _open(shard) as s:
                    src = s["windows"]
                    for a in range(0, n, chunk * 16):
                        b = min(n, a + chunk * 16)
                        ds[off + a : off + b] = src[a:b]
                off += n
                if progress:
                    progress(n)
        if activity:  # --drop-silence: each recording's activity, silence excluded
            g = f.create_group("activity")
            ev = [(sid, a) for sid, a in activity]
            g.create_dataset("source_id", data=np.concatenate(
                [np.full(len(a["start_s"]), sid, np.int32) for sid, a in ev]))
            for k in ("start_s", "end_s", "score"):
                g.create_dataset(k, data=np.concatenate([a[k] for _, a in ev]))
            per = np.zeros(len(entries), np.int64)
            floor = np.full(len(entries), np.nan)
            for sid, a in ev:
                per[sid], floor[sid] = int(a["windows_sliced"]), float(a["floor_db"])
            g.create_dataset("windows_sliced", data=per)
            g.create_dataset("floor_db", data=floor)
        ds.attrs["units"] = header.get("units", "dB re full-scale sine")
        if np.isfinite(stats).any():  # --whiten: each recording's standardisation
            ws = f.create_dataset("whiten_stats", data=stats)
            ws.attrs["long_name"] = "mean and std each recording was standardised with"
        fq = f.create_dataset("freqs", data=np.asarray(freqs, np.float64))
        fq.attrs["units"] = "Hz"
        from wsd.io.store.netcdf import apply_schema

        apply_schema(f)  # dimension names and units for xarray
    return n_total
