"""Coordinator of ``wsd slice``: one task per recording (decode, window, store a shard),
run serially, on local processes or on Dask, then the shards joined into one windows file.

``slice_file`` is a top-level function with a picklable task so that it runs the same
in-process, in a local process pool or on a Dask worker.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsd.dsp.spectrogram import DTYPES, SpectrogramParams
from wsd.errors import BadInputError, UsageError, WsdError
from wsd.pipeline.progress import Progress

JOIN_MODES = ("auto", "merge", "virtual")
#: ``--join auto`` copies the windows into one file below this size, maps shards above it.
MERGE_LIMIT_BYTES = 2 << 30
#: A frame longer than this (s) smears every call shorter than it: worth a warning.
LONG_FRAME_S = 2.0
#: Modules a local worker process imports once (fork-server preload).
PRELOAD = ["wsd.pipeline.slice_file", "wsd.io.audio.decode", "wsd.dsp.spectrogram",
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
    from wsd.pipeline.slice_file import SliceResult, SliceTask, slice_file
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
    from wsd.pipeline.slice_file import bad_row

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
    header = {"params": params.as_attrs(), "spectrogram": p.as_dict(), "history": history,
              "units": p.units}
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
