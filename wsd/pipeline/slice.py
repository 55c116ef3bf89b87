"""Coordinator of ``wsd slice``: one task per recording (decode, window, store a shard),
run serially, on local processes or on Dask, then the shards joined into one windows file.

``slice_file`` is a top-level function with a picklable task so that it runs the same
in-process, in a local process pool or on a Dask worker.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsd.dsp.spectrogram import DTYPES, SpectrogramParams
from wsd.errors import BadInputError, InputMissingError, UsageError, WsdError
from wsd.pipeline.progress import Progress

JOIN_MODES = ("auto", "merge", "virtual")
#: ``--join auto`` copies the windows into one file below this size, maps shards above it.
MERGE_LIMIT_BYTES = 2 << 30
#: Bumped when a shard's content changes for the same inputs (old shards are not reused).
SHARD_VERSION = 1
#: Fewer windows than this from one file is worth a warning (settings too long for it).
FEW_WINDOWS = 3
#: A frame longer than this (s) smears every call shorter than it: worth a warning.
LONG_FRAME_S = 2.0
#: ... and a file giving fewer than FEW_WINDOWS windows longer than this (s).
LONG_WINDOW_S = 5.0
#: Modules a local worker process imports once (fork-server preload).
PRELOAD = ["wsd.pipeline.slice", "wsd.io.audio.decode", "wsd.dsp.spectrogram",
           "wsd.io.labels", "wsd.io.store.windows"]


@dataclass(frozen=True)
class SliceParams:
    """Everything ``wsd slice`` was asked to do (saved as the output's root attributes)."""

    spectrogram: SpectrogramParams
    dtype: str = "float16"
    labels: str | None = None
    join: str = "auto"
    workers: int = 1
    skip_bad: bool = False
    drop_silence: bool = False

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPES)} (got {self.dtype})")
        if self.join not in JOIN_MODES:
            raise UsageError(f"--join must be one of {', '.join(JOIN_MODES)} (got {self.join})")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")
        if self.drop_silence and self.spectrogram.scale == "pcen":
            raise UsageError("--drop-silence reads levels in dB or log1p, not pcen")

    def as_attrs(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "spectrogram"}
        return {**self.spectrogram.as_dict(), **d}


def native_rates(files: list[Path], skip_bad: bool) -> dict[int, list[str]]:
    """Native sample rate -> the files at it (probing headers only). Unreadable files
    raise, or under ``skip_bad`` are left for the slicer to record."""
    from wsd.io.audio.decode import probe

    rates: dict[int, list[str]] = {}
    for f in files:
        try:
            rates.setdefault(probe(f).sample_rate, []).append(str(f))
        except WsdError:
            if not skip_bad:
                raise
    return rates


#: With inputs at several native rates, the band stops this far below the lowest Nyquist.
NYQUIST_MARGIN = 0.95


def auto_fmax(rates: dict[int, list[str]], target: int) -> float | None:
    """The highest frequency every input can hold: 0.95 of the lowest native Nyquist when
    that is below the target rate's (bands above it would be empty for some recordings and
    tell them apart by their sample rate, not by their sounds); None otherwise."""
    low = min(rates) if rates else target
    return NYQUIST_MARGIN * low / 2 if low < target else None


def common_rate(files: list[Path], skip_bad: bool) -> int:
    """The one native sample rate shared by ``files`` (probing headers only).

    Unreadable files raise, or under ``skip_bad`` are left for the slicer to record."""
    from wsd.io.audio.decode import probe

    rates: dict[int, list[str]] = {}
    first_bad = None
    for f in files:
        try:
            rates.setdefault(probe(f).sample_rate, []).append(str(f))
        except WsdError as e:
            if not skip_bad:
                raise
            first_bad = first_bad or e
    if len(rates) > 1:
        desc = "; ".join(f"{r} Hz: {v[0]}" + (f" and {len(v) - 1} more" if len(v) > 1 else "")
                         for r, v in sorted(rates.items()))
        raise UsageError(f"inputs have different sample rates ({desc}); pass --sample-rate HZ "
                         "to resample every file to one rate")
    if not rates:
        raise BadInputError(f"no input file could be sliced: all {len(files)} are unusable "
                            f"(e.g. {first_bad})")
    return next(iter(rates))


def run_slice(files: list[Path], out: Path, params: SliceParams, history: list[str], *,
              force: bool, scheduler: str | None = None, label_table=None,
              progress: Progress | None = None) -> dict:
    """Slice ``files`` into the windows file ``out``. Returns a summary dict.

    Bad files raise unless ``params.skip_bad``. On any failure no output is left and this
    run's temporary files are removed; finished per-file shards stay in ``OUT.shards/`` (the
    folder is removed if it holds none) so that a re-run resumes. A second process writing
    the same output is refused (exit 73) while this one runs."""
    from wsd.io.store import check_output, output_lock
    from wsd.runtime.executor import run_tasks
    from wsd.runtime.shards import ShardFolder

    progress = progress or Progress()
    out = Path(out)
    check_output(out, force, inputs=files)
    _check_settings(params.spectrogram, progress)
    with output_lock(out):
        folder = ShardFolder(out)
        folder.remove_stale_temps()
        folder.create()
        labelled = label_table is not None
        silence = ""
        if params.drop_silence:  # the silence detector of `wsd detect --silence`, its defaults
            from wsd.dsp.silence import SilenceParams
            silence = json.dumps(dataclasses.asdict(SilenceParams()))
        tasks = [SliceTask(i, os.path.abspath(f), str(folder.path), params.spectrogram.as_dict(),
                           params.dtype, tuple(label_table.for_file(f)) if labelled else (),
                           labelled, params.skip_bad, name=str(f), silence=silence)
                 for i, f in enumerate(files)]
        results: dict[int, SliceResult] = {}
        try:
            with progress.task("slicing", len(tasks), "files") as advance:
                def got(r):
                    results[r.index] = r
                    for w in r.warnings:
                        progress.warn(w, r.path)
                    if r.error:
                        progress.warn(f"skipped: {r.error}", r.path)
                    advance(1, status=Path(r.path).name[:40])
                run_tasks(slice_file, tasks, workers=params.workers, scheduler=scheduler,
                          on_result=got, preload=PRELOAD)
            summary = _join(tasks, results, out, params, history, force, labelled, folder,
                            progress)
        except BaseException:
            folder.remove_stale_temps()  # this run's own temporaries; finished shards stay
            raise
    return summary


def describe_windows(p: SpectrogramParams) -> str:
    """How long a window, a frame, the hop and the step are, in time."""
    return (f"{p.window_samples / p.sample_rate:.3g} s each (frame "
            f"{1000 * p.n_fft / p.sample_rate:.3g} ms, hop "
            f"{1000 * p.hop_length / p.sample_rate:.3g} ms, step "
            f"{p.step * p.hop_length / p.sample_rate:.3g} s)")


def _check_settings(p: SpectrogramParams, progress: Progress) -> None:
    """Warn about a frame too long to resolve calls (low sample rates)."""
    frame_s = p.n_fft / p.sample_rate
    window_s = p.window_samples / p.sample_rate
    if frame_s > LONG_FRAME_S:
        progress.warn(f"--n-fft {p.n_fft} at {p.sample_rate} Hz is a frame of {frame_s:.3g} s "
                      f"and a window of {window_s:.3g} s: calls shorter than a frame are "
                      "smeared into it; at low sample rates use a smaller --n-fft and "
                      f"--hop-length (e.g. --n-fft {_pow2(p.sample_rate)} --hop-length "
                      f"{max(1, _pow2(p.sample_rate) // 4)})")


def _pow2(x: float) -> int:
    return int(2 ** max(2, round(np.log2(max(x, 4)))))


def _join(tasks, results, out: Path, params: SliceParams, history, force, labelled, folder,
          progress: Progress) -> dict:
    from wsd.io.store import atomic_output
    from wsd.io.store.windows import join

    p = params.spectrogram
    entries = []
    for t in tasks:
        r = results[t.index]
        entries.append((r.shard, None) if r.shard else (None, r.row or bad_row(t.path, "")))
    rs = list(results.values())
    n_ok = sum(1 for r in rs if r.shard)
    if n_ok == 0:
        raise BadInputError("no input file could be sliced (all were skipped as bad)")
    n_win = sum(r.n_windows for r in rs)
    nbytes = n_win * p.frames * p.bins * np.dtype(params.dtype).itemsize
    mode = params.join
    if mode == "auto":
        mode = "merge" if nbytes < MERGE_LIMIT_BYTES else "virtual"
    header = {"params": params.as_attrs(), "spectrogram": p.as_dict(), "history": history}
    with progress.task("joining", n_win, "windows") as advance, \
            atomic_output(out, force) as tmp:
        join(tmp, out.name, entries, frames=p.frames, bins=p.bins, dtype=params.dtype,
             freqs=p.freqs(), header=header, mode=mode,
             row_names=["start_s", "end_s", "padded"] + (["label"] if labelled else []),
             progress=advance)
    if mode == "merge":
        folder.remove()
    else:
        folder.remove(keep={Path(r.shard).name for r in rs if r.shard})
    return {"files": len(tasks), "ok": n_ok, "windows": n_win, "bytes": nbytes, "mode": mode,
            "reused": sum(r.reused for r in rs), "padded": sum(r.padded for r in rs),
            "truncated": sum(1 for r in rs if r.row and r.row["status"] == "truncated"),
            "damaged": sum(1 for r in rs if r.row and r.row["status"] == "damaged"),
            "bad": [(r.path, r.error) for r in rs if r.error]}


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
                row, _, n = read_shard(shard)
                return SliceResult(task.index, task.label, str(shard), n, reused=True, row=row)
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
