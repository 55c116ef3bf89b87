"""Coordinator of ``wsd slice``: plan one task per recording, run them (serially, on local
processes or on Dask), join the shards into one windows file.

Kept apart from the command module so that scripts and the distributed runner can call it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from wsd.errors import BadInputError, OutputError, UsageError, WsdError
from wsd.dsp.spectrogram import DTYPES, SpectrogramParams

JOIN_MODES = ("auto", "merge", "virtual")
#: ``--join auto`` copies the windows into one file below this size, maps shards above it.
MERGE_LIMIT_BYTES = 2 << 30


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

    def as_attrs(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "spectrogram"}
        return {**self.spectrogram.as_dict(), **d}


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
              report=None) -> dict:
    """Slice ``files`` into the windows file ``out``. Returns a summary dict.

    ``report`` receives events: ("start", n_files), ("file", SliceResult),
    ("join", n_windows). Bad files raise unless ``params.skip_bad``. On any failure no
    output is left and this run's temporary files are removed; finished per-file shards stay
    in ``OUT.shards/`` (the folder is removed if it holds none) so that a re-run resumes.
    """
    from wsd.pipeline.slice_tasks import SliceResult, SliceTask, slice_file
    from wsd.runtime.executor import run_tasks
    from wsd.io.store import check_output
    from wsd.io.store.windows import remove_stale_temps, shard_folder

    report = report or (lambda *a: None)
    out = Path(out)
    check_output(out, force)
    folder = shard_folder(out)
    remove_stale_temps(out)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create shard folder {folder} ({e.strerror})", out) from None
    labelled = label_table is not None
    silence = ""
    if params.drop_silence:  # the silence detector of `wsd detect --silence`, its defaults
        from wsd.dsp.silence import SilenceParams
        silence = json.dumps(dataclasses.asdict(SilenceParams()))
    tasks = [SliceTask(i, os.path.abspath(f), str(folder), params.spectrogram.as_dict(),
                       params.dtype, tuple(label_table.for_file(f)) if labelled else (),
                       labelled, params.skip_bad, name=str(f), silence=silence)
             for i, f in enumerate(files)]
    report("start", len(tasks))
    results: dict[int, SliceResult] = {}

    def got(r):
        results[r.index] = r
        report("file", r)
    try:
        run_tasks(slice_file, tasks, workers=params.workers, scheduler=scheduler,
                  on_result=got, preload=["wsd.pipeline.slice_tasks", "wsd.io.audio.decode", "wsd.dsp.spectrogram",
                                          "wsd.io.labels", "wsd.io.store.windows"])
        summary = _join(tasks, results, out, params, history, force, labelled, report)
    except BaseException:
        remove_stale_temps(out)  # this run's own temporaries; finished shards stay (resume)
        raise
    return summary


def _join(tasks, results, out: Path, params: SliceParams, history, force, labelled,
          report) -> dict:
    from wsd.pipeline.slice_tasks import bad_row
    from wsd.io.store import atomic_output
    from wsd.io.store.windows import join, remove_shards

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
    nbytes = n_win * p.frames * p.bins * (2 if params.dtype == "float16" else 4)
    mode = params.join
    if mode == "auto":
        mode = "merge" if nbytes < MERGE_LIMIT_BYTES else "virtual"
    header = {"params": params.as_attrs(), "spectrogram": p.as_dict(), "history": history}
    report("join", n_win)
    with atomic_output(out, force) as tmp:
        join(tmp, out.name, entries, frames=p.frames, bins=p.bins, dtype=params.dtype,
             freqs=p.freqs(), header=header, mode=mode,
             row_names=["start_s", "end_s", "padded"] + (["label"] if labelled else []))
    if mode == "merge":
        remove_shards(out)
    else:
        remove_shards(out, keep={Path(r.shard).name for r in rs if r.shard})
    return {"files": len(tasks), "ok": n_ok, "windows": n_win, "bytes": nbytes, "mode": mode,
            "reused": sum(r.reused for r in rs), "padded": sum(r.padded for r in rs),
            "truncated": sum(1 for r in rs if r.row and r.row["status"] == "truncated"),
            "damaged": sum(1 for r in rs if r.row and r.row["status"] == "damaged"),
            "bad": [(r.path, r.error) for r in rs if r.error]}
