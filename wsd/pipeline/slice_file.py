"""The unit of work of ``wsd slice``: one recording decoded, windowed (and whitened, and
its silence dropped, when asked) into one finished shard. ``slice_file`` is a top-level
function with a picklable task so that it runs the same in-process, in a local process pool
or on a Dask worker."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsd.dsp.spectrogram import SpectrogramParams
from wsd.errors import BadInputError, InputMissingError, WsdError

#: Bumped when a shard's content changes for the same inputs (old shards are not reused).
SHARD_VERSION = 2
#: Fewer windows than this from one file is worth a warning (settings too long for it) ...
FEW_WINDOWS = 3
#: ... when the windows are longer than this (s).
LONG_WINDOW_S = 5.0


@dataclass(frozen=True)
class SliceTask:
    index: int
    path: str
    shard_dir: str
    spec: dict  # SpectrogramParams.as_dict()
    dtype: str
    events: tuple = ()  # ((start_s, end_s, label), ...) or () without --labels
    labelled: bool = False
    skip_bad: bool = False
    name: str = ""  # the path as the user gave it, for messages ("" -> path)
    silence: str = ""  # --drop-silence: JSON of the SilenceParams ("" keeps every window)

    @property
    def label(self) -> str:
        return self.name or self.path

    def fingerprint(self) -> str:
        from wsd.runtime.shards import file_key, fingerprint

        return fingerprint(SHARD_VERSION, file_key(self.path), self.spec, self.dtype,
                           list(self.events), self.labelled, self.silence)

    def shard_path(self) -> Path:
        from wsd.runtime.shards import ShardFolder

        return ShardFolder.at(self.shard_dir).name(self.index, self.fingerprint())


@dataclass
class SliceResult:
    index: int
    path: str
    shard: str | None
    n_windows: int
    reused: bool = False
    padded: bool = False
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    row: dict | None = None


def bad_row(path: str, message: str) -> dict:
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size, mtime = -1, 0.0
    return {"path": str(path), "size": size, "mtime": mtime, "format": "",
            "native_sample_rate": 0, "channels": 0, "frames_header": 0, "frames_decoded": 0,
            "duration_s": 0.0, "n_windows": 0, "status": "bad", "message": message}


def slice_file(task: SliceTask) -> SliceResult:
    """Decode, window and store one recording. Reuses a finished shard with the same
    fingerprint (same file size/mtime, settings and labels)."""
    from wsd.io.audio.decode import AudioStream, probe
    from wsd.io.labels import assign
    from wsd.dsp.spectrogram import SpectrogramParams, Spectrogrammer
    from wsd.io.store.windows import ShardWriter, read_shard

    try:
        try:
            shard = task.shard_path()
        except FileNotFoundError:
            raise InputMissingError("no such file (it vanished while slicing)",
                                    task.label) from None
        if shard.exists():
            try:
                info = read_shard(shard)
                return SliceResult(task.index, task.label, str(shard), info.n, reused=True,
                                   row=info.row)
            except (WsdError, KeyError, IndexError, OSError):
                shard.unlink(missing_ok=True)  # damaged shard: slice the file again
        p = SpectrogramParams.from_dict(task.spec)
        info = probe(task.path)
        stream = AudioStream(task.path, p.sample_rate, p.channel, info=info, name=task.label)
        spec = Spectrogrammer(p)
        # with --drop-silence the full shard is written beside the final one, then filtered
        full = shard.with_name(shard.stem + ".all.h5") if task.silence else shard
        writer = ShardWriter(full, p.frames, p.bins, task.dtype)
        try:
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
            start = np.concatenate(writer.start_s)
            end = np.concatenate(writer.end_s)
            if (not padded and len(start) < FEW_WINDOWS
                    and p.window_samples / p.sample_rate > LONG_WINDOW_S):
                warnings.append(f"only {len(start)} window(s) of {p.window_samples / p.sample_rate:.3g}"
                                f" s from {duration:.3g} s of audio: the window is long for this "
                                "file (fewer --frames, or a smaller --n-fft/--hop-length)")
            rows = {}
            if task.labelled:
                rows["label"] = assign(list(task.events), start, end)
            status = ("truncated" if stream.stats.truncated else "damaged" if stream.stats.damaged
                      else "short" if padded else "ok")
            row = {"path": task.path, "size": info.size, "mtime": info.mtime,
                   "format": f"{info.format}/{info.subtype}",
                   "native_sample_rate": info.sample_rate, "channels": info.channels,
                   "frames_header": info.frames_header,
                   "frames_decoded": stream.stats.frames_decoded, "duration_s": duration,
                   "n_windows": len(start), "status": status, "message": "; ".join(warnings)}
            writer.commit(row, rows, {"fingerprint": shard.name},
                          transform=_whitener(p) if p.whiten is not None else None)
        except BaseException:
            writer.abort()
            raise
        if task.silence:
            row = _drop_silence(full, shard, p, json.loads(task.silence), row)
        return SliceResult(task.index, task.label, str(shard), row["n_windows"], padded=padded,
                           warnings=warnings, row=row)
    except (BadInputError, InputMissingError) as e:
        if e.path == task.path:  # name the file as the user did (args: survives pickling)
            e.path = task.label
            e.args = (e.reason, e.path)
        if not task.skip_bad:
            raise
        return SliceResult(task.index, task.label, None, 0, error=e.reason,
                           row=bad_row(task.path, e.reason))


#: Windows read at a time when whitening a recording.
WHITEN_BLOCK = 4096


def _whitener(p: SpectrogramParams):
    """``transform`` for a shard: subtract the recording's per-band noise floor
    (:func:`wsd.dsp.frontend.recording_floor` of the --whiten percentile), then standardise
    the recording (its mean and standard deviation after whitening, kept as attributes of
    the windows so the level can be recovered: ``x * std + mean``), a block at a time."""
    from wsd.dsp.frontend import recording_floor, window_percentile
    from wsd.dsp.spectrogram import WHITEN_SPAN_S

    def transform(ds, start_s):
        n = ds.shape[0]
        if n == 0:
            return
        per = np.concatenate([window_percentile(ds[a:a + WHITEN_BLOCK], p.whiten)
                              for a in range(0, n, WHITEN_BLOCK)])
        floor = recording_floor(per, start_s, WHITEN_SPAN_S)
        s1 = s2 = cnt = 0.0
        for a in range(0, n, WHITEN_BLOCK):
            b = min(n, a + WHITEN_BLOCK)
            x = ds[a:b].astype(np.float32) - floor[a:b, None, :]
            ds[a:b] = x.astype(ds.dtype)
            s1, s2, cnt = s1 + float(x.sum(dtype=np.float64)), \
                s2 + float((x.astype(np.float64) ** 2).sum()), cnt + x.size
        mean = s1 / cnt
        std = float(np.sqrt(max(s2 / cnt - mean * mean, 0.0))) or 1.0
        for a in range(0, n, WHITEN_BLOCK):
            b = min(n, a + WHITEN_BLOCK)
            ds[a:b] = ((ds[a:b].astype(np.float32) - mean) / std).astype(ds.dtype)
        ds.attrs["whiten_mean"], ds.attrs["whiten_std"] = mean, std
    return transform


def _drop_silence(full: Path, shard: Path, p, silence: dict, row: dict) -> dict:
    """Keep only the active windows of the finished shard ``full`` in ``shard``, with the
    recording's activity table (events of active windows); returns the updated source row."""
    from wsd.pipeline.detect import silence_rows
    from wsd.dsp.events import events_from_decisions
    from wsd.dsp.silence import SilenceParams
    from wsd.io.store.windows import ShardView, filter_shard

    try:
        with ShardView(full, p) as view:
            d = silence_rows(view, slice(0, view.n), SilenceParams(**silence))
            start, end = view.read("start_s"), view.read("end_s")
        keep = d["positive"].astype(bool)
        ev = events_from_decisions(np.zeros(len(keep), np.int64), start, end, keep, d["score"])
        row = {**row, "n_windows": int(keep.sum())}
        activity = {"start_s": ev["start_s"], "end_s": ev["end_s"], "score": ev["score"],
                    "windows_sliced": len(keep),
                    "floor_db": float(d["floor_db"][0]) if len(d["floor_db"]) else np.nan}
        filter_shard(full, shard, keep, row, activity)
    finally:
        full.unlink(missing_ok=True)
    return row
