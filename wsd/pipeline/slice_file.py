"""The unit of work of ``wsd slice``: one task, a long recording or a group of consecutive
short ones, decoded, windowed (and whitened, and its silence dropped, when asked) into one
finished shard. ``slice_group`` is a top-level function with a picklable task so that it runs
the same in-process, in a local process pool or on a Dask worker."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsd.dsp.spectrogram import SpectrogramParams
from wsd.errors import BadInputError, InputMissingError, WsdError

#: Bumped when a shard's content changes for the same inputs (old shards are not reused).
#: 3: a shard holds a group of recordings (``source_rows``, ``whiten_stats``).
SHARD_VERSION = 3
#: Fewer windows than this from one file is worth a warning (settings too long for it) ...
FEW_WINDOWS = 3
#: ... when the windows are longer than this (s).
LONG_WINDOW_S = 5.0


@dataclass(frozen=True)
class SliceTask:
    """Recordings ``index``, ``index + 1``, ... of the inputs, sliced into one shard."""

    index: int  # input number of the first recording
    paths: tuple  # absolute paths
    shard_dir: str
    spec: dict  # SpectrogramParams.as_dict()
    dtype: str
    events: tuple = ()  # per recording ((start_s, end_s, label), ...), or () without --labels
    labelled: bool = False
    skip_bad: bool = False
    names: tuple = ()  # the paths as the user gave them, for messages (() -> paths)
    silence: str = ""  # --drop-silence: JSON of the SilenceParams ("" keeps every window)

    def label(self, k: int) -> str:
        return self.names[k] if self.names and self.names[k] else self.paths[k]

    def fingerprint(self) -> str:
        from wsd.runtime.shards import fingerprint

        return fingerprint(SHARD_VERSION, [_key(p) for p in self.paths], self.spec, self.dtype,
                           [list(e) for e in self.events], self.labelled, self.silence)

    def shard_path(self) -> Path:
        from wsd.runtime.shards import ShardFolder

        return ShardFolder.at(self.shard_dir).name(self.index, self.fingerprint())


def _key(path: str) -> list:
    """A recording's part of the fingerprint; a missing file is part of it too (the group's
    shard then records it as bad, under --skip-bad, until it appears)."""
    from wsd.runtime.shards import file_key

    try:
        return file_key(path)
    except FileNotFoundError:
        return [os.path.abspath(path), None]


@dataclass
class FileResult:
    """One recording's outcome (``error`` and a 'bad' row when skipped under --skip-bad)."""

    index: int
    path: str  # as the user gave it
    n_windows: int
    padded: bool = False
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    row: dict | None = None


@dataclass
class SliceResult:
    """One task's outcome: its shard and each of its recordings'."""

    index: int
    shard: str
    files: list[FileResult]
    reused: bool = False


def bad_row(path: str, message: str) -> dict:
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size, mtime = -1, 0.0
    return {"path": str(path), "size": size, "mtime": mtime, "format": "",
            "native_sample_rate": 0, "channels": 0, "frames_header": 0, "frames_decoded": 0,
            "duration_s": 0.0, "n_windows": 0, "status": "bad", "message": message}


def slice_group(task: SliceTask) -> SliceResult:
    """Decode, window and store the task's recordings in one shard. Reuses a finished
    shard with the same fingerprint (same files' size/mtime, settings and labels). A bad
    recording raises (naming it as the user did) or, under --skip-bad, is recorded as bad
    and the group goes on without its windows."""
    from wsd.io.store.windows import ShardWriter, read_shard

    shard = task.shard_path()
    if shard.exists():
        try:
            info = read_shard(shard)
        except (WsdError, KeyError, IndexError, ValueError, OSError):
            info = None
            shard.unlink(missing_ok=True)  # damaged shard: slice the files again
        bad = [r["status"] == "bad" for r in info.sources] if info else []
        if info and (task.skip_bad or not any(bad)):
            files = [FileResult(task.index + k, task.label(k), int(r["n_windows"]),
                                error=r["message"] if b else None, row=r)
                     for k, (r, b) in enumerate(zip(info.sources, bad))]
            return SliceResult(task.index, str(shard), files, reused=True)
        # a shard made under --skip-bad, now without it: slice again so that the bad file
        # raises as it did (the shard stays for a re-run with --skip-bad)
    p = SpectrogramParams.from_dict(task.spec)
    # with --drop-silence the full shard is written beside the final one, then filtered
    full = shard.with_name(shard.stem + ".all.h5") if task.silence else shard
    writer = ShardWriter(full, p.frames, p.bins, task.dtype)
    files: list[FileResult] = []
    labels: list[np.ndarray] = []
    try:
        for k, path in enumerate(task.paths):
            mark = writer.mark()
            try:
                f, lab = _slice_one(task, k, p, writer)
            except (BadInputError, InputMissingError) as e:
                if e.path == path:  # name the file as the user did (args: survives pickling)
                    e.path = task.label(k)
                    e.args = (e.reason, e.path)
                if not task.skip_bad:
                    raise
                writer.rollback(mark)
                f, lab = FileResult(task.index + k, task.label(k), 0, error=e.reason,
                                    row=bad_row(path, e.reason)), None
            files.append(f)
            if lab is not None:
                labels.append(lab)
        rows = {}
        if task.labelled:
            rows["label"] = np.concatenate(labels) if labels else np.zeros(0, object)
        writer.commit([f.row for f in files], rows, {"fingerprint": shard.name},
                      transform=_whitener(p) if p.whiten is not None else None)
    except BaseException:
        writer.abort()
        raise
    if task.silence:
        kept = _drop_silence(full, shard, p, json.loads(task.silence), [f.row for f in files])
        for f, row in zip(files, kept):
            f.row, f.n_windows = row, row["n_windows"]
    return SliceResult(task.index, str(shard), files)


def _slice_one(task: SliceTask, k: int, p: SpectrogramParams, writer):
    """Append recording ``k`` of the task to ``writer``; its result and (with --labels) the
    labels of its windows."""
    from wsd.dsp.spectrogram import Spectrogrammer
    from wsd.io.audio.decode import AudioStream, probe
    from wsd.io.labels import assign

    path, label = task.paths[k], task.label(k)
    if not os.path.exists(path):
        raise InputMissingError("no such file (it vanished while slicing)", label)
    info = probe(path)
    stream = AudioStream(path, p.sample_rate, p.channel, info=info, name=label)
    spec = Spectrogrammer(p)
    first = len(writer.start_s)
    for block in stream:
        w, ws = spec.push(block)
        if len(w):
            a, b = p.window_times(ws)
            writer.append(w, a, b)
    w, ws, padded = spec.finish(pad=True)
    duration = stream.stats.samples_out / p.sample_rate
    warnings = list(stream.stats.warnings)
    if padded:
        a, b = p.window_times(ws)
        writer.append(w, a, np.minimum(b, duration), padded=True)
        warnings.append(f"shorter than one window ({duration:.3f} s < "
                        f"{p.window_samples / p.sample_rate:.3f} s): zero-padded into "
                        "one window, flagged 'padded'")
    start = np.concatenate(writer.start_s[first:]) if len(writer.start_s) > first \
        else np.zeros(0)
    end = np.concatenate(writer.end_s[first:]) if len(writer.end_s) > first else np.zeros(0)
    if (not padded and len(start) < FEW_WINDOWS
            and p.window_samples / p.sample_rate > LONG_WINDOW_S):
        warnings.append(f"only {len(start)} window(s) of {p.window_samples / p.sample_rate:.3g}"
                        f" s from {duration:.3g} s of audio: the window is long for this "
                        "file (fewer --frames, or a smaller --n-fft/--hop-length)")
    labels = assign(list(task.events[k]), start, end) if task.labelled else None
    status = ("truncated" if stream.stats.truncated else "damaged" if stream.stats.damaged
              else "short" if padded else "ok")
    row = {"path": path, "size": info.size, "mtime": info.mtime,
           "format": f"{info.format}/{info.subtype}",
           "native_sample_rate": info.sample_rate, "channels": info.channels,
           "frames_header": info.frames_header,
           "frames_decoded": stream.stats.frames_decoded, "duration_s": duration,
           "n_windows": len(start), "status": status, "message": "; ".join(warnings)}
    return FileResult(task.index + k, label, len(start), padded=padded, warnings=warnings,
                      row=row), labels


#: Windows read at a time when whitening a recording.
WHITEN_BLOCK = 4096


def _whitener(p: SpectrogramParams):
    """``transform`` for a shard: on the ``n`` windows of one recording from ``off``,
    subtract the recording's per-band noise floor (:func:`wsd.dsp.frontend.recording_floor`
    of the --whiten percentile), then standardise the recording; returns its mean and
    standard deviation after whitening (kept per recording so the level can be recovered:
    ``x * std + mean``). A block at a time."""
    from wsd.dsp.frontend import recording_floor, window_percentile
    from wsd.dsp.spectrogram import WHITEN_SPAN_S

    def transform(ds, off, n, start_s):
        per = np.concatenate([window_percentile(ds[off + a : off + min(n, a + WHITEN_BLOCK)],
                                                p.whiten)
                              for a in range(0, n, WHITEN_BLOCK)])
        floor = recording_floor(per, start_s, WHITEN_SPAN_S)
        s1 = s2 = cnt = 0.0
        for a in range(0, n, WHITEN_BLOCK):
            b = min(n, a + WHITEN_BLOCK)
            x = ds[off + a : off + b].astype(np.float32) - floor[a:b, None, :]
            ds[off + a : off + b] = x.astype(ds.dtype)
            s1, s2, cnt = s1 + float(x.sum(dtype=np.float64)), \
                s2 + float((x.astype(np.float64) ** 2).sum()), cnt + x.size
        mean = s1 / cnt
        std = float(np.sqrt(max(s2 / cnt - mean * mean, 0.0))) or 1.0
        for a in range(0, n, WHITEN_BLOCK):
            b = min(n, a + WHITEN_BLOCK)
            ds[off + a : off + b] = ((ds[off + a : off + b].astype(np.float32) - mean)
                                     / std).astype(ds.dtype)
        return mean, std
    return transform


def _drop_silence(full: Path, shard: Path, p, silence: dict, rows: list[dict]) -> list[dict]:
    """Keep only the active windows of the finished shard ``full`` in ``shard``, with each
    recording's activity table (events of active windows); returns the updated source
    rows."""
    from wsd.pipeline.detect import silence_rows
    from wsd.dsp.events import events_from_decisions
    from wsd.dsp.silence import SilenceParams
    from wsd.io.store.windows import ShardView, filter_shard

    try:
        with ShardView(full, p) as view:
            d = silence_rows(view, slice(0, view.n), SilenceParams(**silence))
            start, end = view.read("start_s"), view.read("end_s")
            member = view.read("source_id")
        keep = d["positive"].astype(bool)
        ev = events_from_decisions(member, start, end, keep, d["score"])
        m = len(rows)
        kept = np.bincount(member[keep], minlength=m)
        rows = [{**r, "n_windows": int(kept[k])} for k, r in enumerate(rows)]
        floor = np.full(m, np.nan)
        floor[np.asarray(d["floor_sid"], np.int64)] = d["floor_db"]
        activity = {"member": ev["source_id"].astype(np.int32), "start_s": ev["start_s"],
                    "end_s": ev["end_s"], "score": ev["score"],
                    "windows_sliced": np.bincount(member, minlength=m).astype(np.int64),
                    "floor_db": floor}
        filter_shard(full, shard, keep, rows, activity)
    finally:
        full.unlink(missing_ok=True)
    return rows
