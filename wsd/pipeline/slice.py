"""Coordinator of ``wsd slice``: one task per long recording or per group of consecutive
short ones (decode, window, store a shard), run serially, on local processes or on Dask;
each finished shard joins the windows file in input order while later tasks still run.

``slice_group`` is a top-level function with a picklable task so that it runs the same
in-process, in a local process pool or on a Dask worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wsd.errors import BadInputError, UsageError, WsdError
from wsd.pipeline.progress import Progress

if TYPE_CHECKING:  # the module imports nothing heavy: the CLI reads PRELOAD first thing
    from wsd.dsp.spectrogram import SpectrogramParams

JOIN_MODES = ("auto", "merge", "virtual")
#: ``--join auto`` copies the windows into one file below this size, maps shards above it.
MERGE_LIMIT_BYTES = 2 << 30
#: A frame longer than this (s) smears every call shorter than it: worth a warning.
LONG_FRAME_S = 2.0
#: Recordings are sliced in groups of consecutive files of at most this many bytes in all
#: (a file this large or larger is a task of its own; 16 MB of 16-bit mono audio at 44.1 kHz
#: is about 3 minutes, sliced in about 0.7 s) ...
GROUP_BYTES = 16 << 20
#: ... and at most this many files: each task writes a shard that the join reads back, about
#: 15 ms a shard (issue 13), which a group pays once.
GROUP_FILES = 32
#: Lossy formats hold about this many times more sound per byte than wav or flac (128-160
#: kbit/s against 706 for 16-bit mono at 44.1 kHz): their sizes count this many times.
LOSSY = {".mp3": 8, ".ogg": 8, ".opus": 8}
#: Modules a local worker process imports once (fork-server preload).
PRELOAD = ["wsd.pipeline.slice_file", "wsd.io.audio.decode", "wsd.dsp.spectrogram",
           "scipy.fft", "wsd.io.labels", "wsd.io.store.windows"]


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
        from wsd.dsp.spectrogram import DTYPES

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


def start_workers(files: list, workers: int, scheduler: str | None = None) -> None:
    """Start the local worker processes' fork server (it imports :data:`PRELOAD`) while the
    caller still reads headers; nothing for one worker, one task or on Dask. (The CLI
    starts it earlier still, from the raw arguments: :func:`wsd.cli.early.start_early`;
    this is then a no-op.)"""
    if not scheduler and workers > 1 and len(group_files(files)) > 1:
        from wsd.runtime.executor import start_workers as start

        start(workers, PRELOAD)


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


def group_files(files: list, limit_bytes: int | None = None,
                most_files: int | None = None, workers: int = 1) -> list[range]:
    """Consecutive runs of input numbers sliced as one task each: a file of ``GROUP_BYTES``
    or more alone, shorter ones together up to ``GROUP_BYTES`` and ``GROUP_FILES``. File
    sizes only (lossy formats' times :data:`LOSSY`; no header is read), so the same inputs
    (and ``workers``) always give the same groups (and shards).

    With ``workers`` > 1 local workers and only files shorter than the limit, a number of
    groups that is not a multiple of ``workers`` is raised to the next multiple, the groups
    then cut at equal shares of the bytes: otherwise one worker slices the last group alone
    while the others wait (200 files of 10 s gave 9 groups of 0.3 s each: 5 rounds for one
    worker, 4 for the other)."""
    limit = GROUP_BYTES if limit_bytes is None else limit_bytes
    most = GROUP_FILES if most_files is None else most_files
    sizes = []
    for f in files:
        try:
            sizes.append(os.stat(f).st_size * LOSSY.get(Path(f).suffix.lower(), 1))
        except OSError:
            sizes.append(0)  # missing: reported when its group is sliced
    groups: list[range] = []
    first, total = 0, 0
    for i, size in enumerate(sizes):
        if i > first and (total + size > limit or i - first >= most):
            groups.append(range(first, i))
            first, total = i, 0
        total += size
    if files:
        groups.append(range(first, len(files)))
    if workers > 1 and len(groups) > 1 and len(groups) % workers and max(sizes) < limit:
        even = _even_groups(sizes, -(-len(groups) // workers) * workers)
        if even is not None and all(len(r) <= most for r in even):
            groups = even
    return groups


def _even_groups(sizes: list[int], n: int) -> list[range] | None:
    """``n`` runs of consecutive files of about equal bytes (each file goes to the share in
    which its middle byte falls); None when some share gets no file."""
    total = float(sum(sizes))
    if total <= 0 or n > len(sizes):
        return None
    before, share = 0.0, []
    for size in sizes:
        share.append(min(n - 1, int((before + size / 2) * n / total)))
        before += size
    cuts = [0] + [i for i in range(1, len(sizes)) if share[i] != share[i - 1]] + [len(sizes)]
    out = [range(a, b) for a, b in zip(cuts, cuts[1:])]
    return out if len(out) == n else None


def run_slice(files: list[Path], out: Path, params: SliceParams, history: list[str], *,
              force: bool, scheduler: str | None = None, label_table=None,
              progress: Progress | None = None) -> dict:
    """Slice ``files`` into the windows file ``out``. Returns a summary dict.

    Bad files raise unless ``params.skip_bad``. On any failure no output is left and this
    run's temporary files are removed; finished shards (one per task: a long file or a
    group of short ones) stay in ``OUT.shards/`` (the folder is removed if it holds none) so
    that a re-run resumes. A second process writing the same output is refused (exit 73)
    while this one runs."""
    from wsd.io.store import check_output, output_lock
    from wsd.io.store.atomic import AtomicOutput, writing
    from wsd.io.store.windows import Join
    from wsd.pipeline.slice_file import SliceResult, SliceTask, slice_group
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
        spec = params.spectrogram.as_dict()
        tasks = [SliceTask(g.start, tuple(os.path.abspath(files[i]) for i in g),
                           str(folder.path), spec, params.dtype,
                           tuple(tuple(label_table.for_file(files[i])) for i in g)
                           if labelled else (), labelled, params.skip_bad,
                           names=tuple(str(files[i]) for i in g), silence=silence)
                 for g in group_files(files, workers=1 if scheduler else params.workers)]
        results: dict[int, SliceResult] = {}
        p = params.spectrogram
        # the output is written while the tasks run: each finished shard joins it in input
        # order as soon as those before it have (a merge copies its windows then)
        joined = AtomicOutput(out, force)
        joiner = Join(joined.tmp, out.name, frames=p.frames, bins=p.bins, dtype=params.dtype,
                      mode=params.join, limit_bytes=MERGE_LIMIT_BYTES,
                      row_names=["start_s", "end_s", "padded"] + (["label"] if labelled else []))
        order = iter(tasks)
        nxt = [next(order, None)]
        try:
            with progress.task("slicing", len(files), "files") as advance:
                def got(r):
                    results[r.index] = r
                    for f in r.files:
                        for w in f.warnings:
                            progress.warn(w, f.path)
                        if f.error:
                            progress.warn(f"skipped: {f.error}", f.path)
                    advance(len(r.files), status=Path(r.files[-1].path).name[:40])
                    while nxt[0] is not None and nxt[0].index in results:
                        with writing(joined):
                            joiner.add(results[nxt[0].index].shard)
                        nxt[0] = next(order, None)
                run_tasks(slice_group, tasks, workers=params.workers, scheduler=scheduler,
                          on_result=got, preload=PRELOAD)
            summary = _join(files, [results[t.index] for t in tasks], out, params, history,
                            labelled, folder, progress, joined, joiner)
        except BaseException:
            joiner.close()
            joined.abort()
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
    return int(2 ** max(2, round(math.log2(max(x, 4)))))


def _join(files, results, out: Path, params: SliceParams, history, labelled, folder,
          progress: Progress, joined, joiner) -> dict:
    """Finish the output ``joiner`` has been writing since the first shard came (what is
    left to copy, the rows, sources and header), rename it into place and tidy the shard
    folder."""
    import numpy as np

    from wsd.io.store.atomic import writing

    p = params.spectrogram
    fs = [f for r in results for f in r.files]
    n_ok = sum(1 for f in fs if not f.error)
    if n_ok == 0:
        raise BadInputError("no input file could be sliced (all were skipped as bad)")
    n_win = sum(f.n_windows for f in fs)
    nbytes = n_win * p.frames * p.bins * np.dtype(params.dtype).itemsize
    header = {"params": params.as_attrs(), "spectrogram": p.as_dict(), "history": history,
              "units": p.units}
    if len(joiner.shards) != len(results) or joiner.n != n_win:  # every shard, in order
        raise AssertionError(f"joined {len(joiner.shards)} shards ({joiner.n} windows) of "
                             f"{len(results)} ({n_win})")
    mode = joiner.final_mode()
    # a merge has copied the windows as the shards came: a bar only for what is left
    bar = progress.task("joining", joiner.pending if mode == "merge" else n_win, "windows") \
        if mode != "merge" or joiner.pending else contextlib.nullcontext(None)
    with bar as advance:
        with writing(joined):
            joiner.finish(freqs=p.freqs(), header=header,
                          progress=advance if mode == "merge" else None)
        joined.commit()
    if mode == "merge":
        folder.remove()
    else:
        folder.remove(keep={Path(r.shard).name for r in results  # the mapped ones
                            if any(f.n_windows for f in r.files)})
    status = [f.row["status"] if f.row else "" for f in fs]
    return {"files": len(files), "ok": n_ok, "windows": n_win, "bytes": nbytes, "mode": mode,
            "reused": sum(1 for r in results if r.reused for f in r.files if not f.error),
            "padded": sum(f.padded for f in fs), "truncated": status.count("truncated"),
            "damaged": status.count("damaged"),
            "bad": [(f.path, f.error) for f in fs if f.error]}
