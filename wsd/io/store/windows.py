"""Windows files: shards written while slicing, joined into one file.

Every task of ``wsd slice`` (one long recording, or a group of consecutive short ones) is
sliced into its own shard ``OUT.shards/NNNNNNN-FINGERPRINT.h5`` (written atomically; NNNNNNN
is the input number of its first recording), so an interrupted run, re-run, reuses finished
shards and ends identical to an uninterrupted one. A shard holds its recordings' windows one
after the other, in input order, with their source rows (``source_rows``, JSON, one per
recording, whose ``n_windows`` say which windows are whose) and per-recording whitening
statistics. The joined output either copies the shards' windows into one self-contained
file (``merge``; the shard folder is then removed) or maps them as an HDF5 virtual dataset
(``virtual``; no copy, the file must stay beside its shard folder, which ``WsdFile`` checks on
open with a clear error).
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


#: Datasets of a shard that hold one item per recording, not per window.
PER_RECORDING = ("source_rows", "whiten_stats")


class ShardWriter:
    """Write the windows of one or more recordings to ``final`` atomically (buffered in
    whole chunks). ``mark``/``rollback`` drop what a recording appended when it turns out
    bad part way (``--skip-bad`` in a group)."""

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

    def mark(self) -> tuple[int, int]:
        """Where the next recording starts (for :meth:`rollback`)."""
        return self.n + self._nbuf, len(self.start_s)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Forget every window appended since ``mark``."""
        n, parts = mark
        del self.start_s[parts:], self.end_s[parts:], self.padded[parts:]
        if n >= self.n:
            data = np.concatenate(self._buf) if self._buf else None
            self._buf = [data[: n - self.n]] if n > self.n else []
        else:
            self.ds.resize(n, axis=0)
            self.n, self._buf = n, []
        self._nbuf = n - self.n

    def commit(self, source_rows: list[dict], rows: dict[str, np.ndarray], params: dict,
               transform=None) -> None:
        """Write the per-window rows and the recordings' source rows (whose ``n_windows``
        partition the windows, in order), close and rename into place.
        ``transform(windows_dataset, offset, n, start_s) -> (mean, std)``, when given,
        rewrites each recording's windows in place first (whitening needs all of them),
        before the shard is final."""
        try:
            self._flush(final=True)
            cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt))
            start = cat(self.start_s, np.float64)
            counts = [int(r["n_windows"]) for r in source_rows]
            if sum(counts) != len(start):
                raise AssertionError(f"recordings hold {counts} windows, shard {len(start)}")
            stats = np.full((len(source_rows), 2), np.nan)
            if transform is not None:
                off = 0
                for k, n in enumerate(counts):
                    if n:
                        stats[k] = transform(self.ds, off, n, start[off : off + n])
                    off += n
            write_rows(self.f, {"start_s": start, "end_s": cat(self.end_s, np.float64),
                                "padded": cat(self.padded, bool), **rows})
            _write_per_recording(self.f, source_rows, stats)
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


def _write_per_recording(f, source_rows: list[dict], stats: np.ndarray) -> None:
    """The recordings' source rows (one JSON string: no attribute size limit) and their
    whitening statistics ``(m, 2)`` (nan without --whiten)."""
    f.create_dataset("source_rows", data=json.dumps(source_rows, default=_plain),
                     dtype=h5py.string_dtype())
    f.create_dataset("whiten_stats", data=np.asarray(stats, np.float64).reshape(-1, 2))


def _row_datasets(f) -> dict:
    """The per-window rows of an open shard (start_s, end_s, padded, label...)."""
    return {k: (f[k].asstr()[:] if f[k].dtype.kind == "O" else f[k][:])
            for k in f if k != "windows" and k not in PER_RECORDING
            and isinstance(f[k], h5py.Dataset)}


@dataclass
class ShardInfo:
    """What the join needs of a finished shard, read in one opening."""

    sources: list[dict]  # its recordings' rows of the sources table, in order
    rows: dict  # per-window rows (start_s, end_s, padded, label...)
    n: int  # windows
    whiten: np.ndarray  # (recordings, 2): mean and std of --whiten's standardisation, or nan
    activity: dict | None  # --drop-silence: the recordings' activity (``member`` per event)

    @property
    def counts(self) -> np.ndarray:
        """Windows of each recording."""
        return np.array([int(r["n_windows"]) for r in self.sources], np.int64)

    @property
    def member(self) -> np.ndarray:
        """Each window's recording, counted from 0 within the shard."""
        return np.repeat(np.arange(len(self.sources), dtype=np.int64), self.counts)


def read_shard(path) -> ShardInfo:
    """The source rows, per-window rows, window count, whitening stats and activity of a
    finished shard; a shard whose parts disagree raises ``ValueError``."""
    with _open(path) as f:
        sources = json.loads(f["source_rows"].asstr()[()])
        rows = _row_datasets(f)
        stats = f["whiten_stats"][:]
        act = ({k: f["activity"][k][()] for k in f["activity"]} if "activity" in f else None)
        info = ShardInfo(sources, rows, f["windows"].shape[0], stats, act)
    if int(info.counts.sum()) != info.n or len(stats) != len(sources) or \
            any(len(v) != info.n for v in rows.values()):
        raise ValueError(f"shard {path} is inconsistent")
    return info


class ShardView:
    """Read access to a finished shard shaped like a windows WsdFile (``read``,
    ``spectrogram``, ``n``; ``source_id`` counts its recordings from 0), for running the
    silence detector on it."""

    def __init__(self, path, spec):
        self.f = _open(path)
        self.spectrogram = spec.as_dict()
        self._freqs = spec.freqs()
        self.n = self.f["windows"].shape[0]
        sources = json.loads(self.f["source_rows"].asstr()[()])
        counts = [int(r["n_windows"]) for r in sources]
        self._member = np.repeat(np.arange(len(counts), dtype=np.int64), counts)

    def shape(self, name: str) -> tuple:
        return self.f[name].shape

    def has(self, name: str) -> bool:
        return name == "whiten_stats" and bool(np.isfinite(self.f["whiten_stats"][:]).any())

    def read(self, name: str, sel=slice(None)) -> np.ndarray:
        if name == "freqs":
            return self._freqs
        if name == "source_id":
            return self._member[sel]
        return self.f[name][sel]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def filter_shard(src, dst, keep: np.ndarray, source_rows: list[dict], activity: dict) -> None:
    """Write ``dst`` (atomically) with the windows of shard ``src`` where ``keep``, the
    updated ``source_rows`` and an ``activity`` group (events, with the recording within the
    shard as ``member``, and per-recording counts of the whole recordings)."""
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
        write_rows(d, {k: v[idx] for k, v in _row_datasets(s).items()})
        _write_per_recording(d, source_rows, s["whiten_stats"][:])
        write_params(d, read_params(s))
        g = d.create_group("activity")
        for k, v in activity.items():
            g.create_dataset(k, data=np.asarray(v))


class Join:
    """The joined windows file, written to ``tmp_out`` while the shards come in.

    :meth:`add` takes each finished shard in input order (each holds one or more consecutive
    recordings, bad ones under --skip-bad as source rows without windows); a merge copies
    its windows at once, so that the copy overlaps with the slicing of later shards instead
    of following it. :meth:`finish` copies what is left, writes the rows, sources and
    header, and returns the number of windows and the mode used.

    ``mode`` is "merge" (copy windows), "virtual" (map the shards) or "auto": merge while
    the windows stay below ``limit_bytes``, map them when the total reaches it (a copy
    begun is then dropped). The windows dataset is created once at least one chunk of
    windows is in (its chunks, like its values, are then those of a one-go join, but it is
    resizable: ``maxshape`` None); a join whose windows all fit in one chunk is written at
    :meth:`finish`, fixed-size, as before.
    """

    def __init__(self, tmp_out, out_name: str, *, frames: int, bins: int, dtype: str,
                 mode: str, row_names: list[str], limit_bytes: int | None = None):
        if mode not in ("merge", "virtual", "auto"):
            raise ValueError(f"join mode {mode!r}")
        self.tmp, self.out_name, self.mode = Path(tmp_out), out_name, mode
        self.frames, self.bins, self.dt = frames, bins, np.dtype(dtype)
        self.limit = limit_bytes
        self.row_names = list(row_names)
        self.chunk = chunk_windows(frames, bins, self.dt.itemsize)
        self.rows: dict[str, list] = {k: [] for k in ["source_id", *self.row_names]}
        self.sources: list[dict] = []
        self.shards: list[tuple[str, int]] = []
        self.activity: list = []
        self.stats: list[np.ndarray] = []
        self.n = 0  # windows added
        self.f = None  # the output, open from the first windows copied
        self.ds = None
        self.copied = 0  # shards whose windows are in ``ds``
        self.n_copied = 0  # their windows

    @property
    def nbytes(self) -> int:
        """Bytes of the windows added so far."""
        return self.n * self.frames * self.bins * self.dt.itemsize

    @property
    def pending(self) -> int:
        """Windows added but not yet copied (what :meth:`finish` still copies in a merge)."""
        return self.n - self.n_copied

    def final_mode(self) -> str:
        """What the join is, given the windows added so far ("auto" decided)."""
        if self.mode != "auto":
            return self.mode
        return "merge" if self.limit is None or self.nbytes < self.limit else "virtual"

    def add(self, shard) -> int:
        """Take the next finished shard (in input order); returns its windows."""
        info = read_shard(shard)
        base = len(self.sources)
        for k in self.row_names:
            self.rows[k].append(info.rows[k])
        self.rows["source_id"].append((base + info.member).astype(np.int32))
        self.shards.append((str(shard), info.n))
        self.stats.append(info.whiten)
        if info.activity is not None:
            self.activity.append((base, len(info.sources), info.activity))
        self.sources.extend(info.sources)
        self.n += info.n
        if self.final_mode() == "merge":
            if self.ds is None and self.n >= self.chunk:
                self._open()
                self.ds = self.f.create_dataset(
                    "windows", shape=(0, self.frames, self.bins),
                    maxshape=(None, self.frames, self.bins), dtype=self.dt,
                    chunks=(self.chunk, self.frames, self.bins))
            if self.ds is not None:
                self._copy()
        elif self.f is not None:  # auto, now too large to merge: the copy is not wanted
            self.close()
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.ds, self.copied, self.n_copied, self._tail_rows = None, 0, 0, 0
        return info.n

    def _open(self) -> None:
        if self.f is None:
            self.f = h5py.File(self.tmp, "w")

    def _copy(self, progress=None) -> None:
        """Append the windows of the shards added and not yet copied to ``ds``."""
        if self.ds.shape[0] < self.n:
            self.ds.resize(self.n, axis=0)
        for shard, n in self.shards[self.copied:]:
            with _open(shard) as s:
                src = s["windows"]
                if self._raw_ok(src):
                    self._copy_chunks(src, n)
                else:
                    self._flush_tail()
                    step = self.chunk * 16
                    for a in range(0, n, step):
                        b = min(n, a + step)
                        self.ds[self.n_copied + a : self.n_copied + b] = src[a:b]
            self.copied += 1
            self.n_copied += n
            if progress:
                progress(n)

    def _raw_ok(self, src) -> bool:
        """Whether ``src``'s chunks can be copied as stored: the same shape and type as the
        output's, neither filtered (compressed)."""
        ds = self.ds
        return (src.chunks == ds.chunks == (self.chunk, self.frames, self.bins)
                and src.dtype == ds.dtype and not src.compression
                and src.id.get_create_plist().get_nfilters() == 0
                and ds.id.get_create_plist().get_nfilters() == 0)

    #: rows of the output's chunk being filled (``_tail``): those before ``n_copied``
    _tail: np.ndarray | None = None
    _tail_rows = 0

    def _copy_chunks(self, src, n: int) -> None:
        """Copy ``n`` windows of ``src`` after the ``n_copied`` in the output, whole chunks
        as stored (no HDF5 selection or conversion: about half the CPU time of a copy by
        slices); an output chunk that spans two shards is assembled in ``_tail`` and
        written when full (or at the end)."""
        ch, shape = self.chunk, (self.chunk, self.frames, self.bins)
        row = self.n_copied
        if self._tail is None:
            self._tail = np.empty(shape, self.dt)
        if row % ch != self._tail_rows:  # rows written by slices since: read them back
            self._tail_rows = row % ch
            self._tail[: self._tail_rows] = self.ds[row - self._tail_rows : row]
        sid = src.id
        for a in range(0, n, ch):
            m = min(ch, n - a)
            _, raw = sid.read_direct_chunk((a, 0, 0))
            if self._tail_rows == 0 and m == ch:
                self.ds.id.write_direct_chunk((row + a, 0, 0), raw)
                continue
            x = np.frombuffer(raw, self.dt).reshape(shape)
            k = 0
            while k < m:
                t = min(ch - self._tail_rows, m - k)
                self._tail[self._tail_rows : self._tail_rows + t] = x[k : k + t]
                self._tail_rows += t
                k += t
                if self._tail_rows == ch:
                    start = row + a + k - ch
                    self.ds.id.write_direct_chunk((start, 0, 0), self._tail)
                    self._tail_rows = 0

    def _flush_tail(self) -> None:
        """Write the output chunk being assembled (its rows after ``n_copied`` are
        unused: beyond the windows, or overwritten by the next ones)."""
        if self._tail_rows:
            row = self.n_copied - self._tail_rows
            self._tail[self._tail_rows :] = 0
            self.ds.id.write_direct_chunk((row, 0, 0), self._tail)
            self._tail_rows = 0

    def close(self) -> None:
        """Close the output (after :meth:`finish`, or to give up)."""
        if self.f is not None:
            with contextlib.suppress(Exception):
                self.f.close()
            self.f = None

    def finish(self, *, freqs: np.ndarray, header: dict, progress=None) -> tuple[int, str]:
        """Copy the windows not yet copied, write everything else and close the output.
        Returns (windows, mode)."""
        mode = self.final_mode()
        n_total, frames, bins, dt = self.n, self.frames, self.bins, self.dt
        self._open()
        f = self.f
        write_header(f, "windows", header["params"], header["spectrogram"], header["history"])
        f.attrs["layout"] = mode
        write_sources(f, concat_sources(self.sources))
        cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in self.rows.items()}
        cat["source_id"] = cat["source_id"].astype(np.int32)
        write_rows(f, cat)
        shape = (n_total, frames, bins)
        if mode == "virtual" and n_total:
            lay = h5py.VirtualLayout(shape, dt)
            off = 0
            for shard, n in self.shards:
                if n:
                    rel = f"{self.out_name}.shards/{Path(shard).name}"
                    lay[off : off + n] = h5py.VirtualSource(rel, "windows",
                                                            shape=(n, frames, bins))
                off += n
            ds = f.create_virtual_dataset("windows", lay, fillvalue=np.nan)
        else:
            if self.ds is None:  # fewer windows than a chunk (or none): fixed size
                self.ds = f.create_dataset(
                    "windows", shape=shape, dtype=dt,
                    chunks=(min(self.chunk, n_total), frames, bins) if n_total else None)
            self._copy(progress)
            self._flush_tail()
            ds = self.ds
        activity, sources = self.activity, self.sources
        if activity:  # --drop-silence: each recording's activity, silence excluded
            g = f.create_group("activity")
            g.create_dataset("source_id", data=np.concatenate(
                [(base + a["member"]).astype(np.int32) for base, _, a in activity]))
            for k in ("start_s", "end_s", "score"):
                g.create_dataset(k, data=np.concatenate([a[k] for _, _, a in activity]))
            per = np.zeros(len(sources), np.int64)
            floor = np.full(len(sources), np.nan)
            for base, m, a in activity:
                per[base : base + m] = a["windows_sliced"]
                floor[base : base + m] = a["floor_db"]
            g.create_dataset("windows_sliced", data=per)
            g.create_dataset("floor_db", data=floor)
        ds.attrs["units"] = header.get("units", "dB re full-scale sine")
        stats = np.concatenate(self.stats) if self.stats else np.zeros((0, 2))
        if np.isfinite(stats).any():  # --whiten: each recording's standardisation
            ws = f.create_dataset("whiten_stats", data=stats)
            ws.attrs["long_name"] = "mean and std each recording was standardised with"
        fq = f.create_dataset("freqs", data=np.asarray(freqs, np.float64))
        fq.attrs["units"] = "Hz"
        from wsd.io.store.netcdf import apply_schema, create_dim

        if self.ds is not None and self.ds.maxshape[0] is None:
            create_dim(f, "window", n_total)  # fixed, as for a one-go join
        apply_schema(f)  # dimension names and units for xarray
        self.f = None
        f.close()
        return n_total, mode


def join(tmp_out, out_name: str, entries: list, *, frames: int, bins: int, dtype: str,
         freqs: np.ndarray, header: dict, mode: str, row_names: list[str], progress=None) -> int:
    """Write the joined windows file to ``tmp_out`` in one go (:class:`Join`).

    ``entries`` is the finished shards in input order. ``mode`` is "merge" (copy windows)
    or "virtual" (map the shards). Returns the number of windows.
    """
    j = Join(tmp_out, out_name, frames=frames, bins=bins, dtype=dtype, mode=mode,
             row_names=row_names)
    try:
        for shard in entries:
            j.add(shard)
        return j.finish(freqs=freqs, header=header, progress=progress)[0]
    finally:
        j.close()
