"""Work on chunks of windows, for ``embed`` and ``detect``: the same tasks run in-process,
on local processes (``--workers N``) or on a Dask cluster (``--scheduler ADDRESS``).

Every chunk's result is written to its own shard (atomically), named by a fingerprint of
the inputs (windows file, model file, rows, settings), so a killed or failed worker's task is
simply run again (Dask retries it) and a re-run skips the chunks already done. The single-
process run goes through exactly the same chunks, so outputs are identical bit for bit
whatever the number of workers.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from wsd.errors import BadInputError
from wsd.runtime.shards import ShardFolder, file_key, fingerprint

#: Windows per task (a multiple of any power-of-two batch size up to 4096): seconds of
#: work for a model, so progress over local processes or Dask moves often enough.
CHUNK = 4096
#: Modules a local worker process imports once (fork-server preload).
PRELOAD = ["wsd.pipeline.chunks", "wsd.io.store", "wsd.io.store.rows", "wsd.models.inference",
           "wsd.pipeline.detect", "torch"]

_MODELS: dict = {}


@dataclass(frozen=True)
class RowTask:
    """Rows [a, b) of a windows file through ``op`` ("embed", "score" or "silence")."""

    op: str
    windows: str
    a: int
    b: int
    shard_dir: str
    model: str | None = None
    batch_size: int = 256
    device: str = "cpu"
    amp: bool = False  # bfloat16 autocast (decided once by the coordinator: wsd.runtime.device)
    options: str = "{}"  # JSON of op-specific settings (silence parameters)
    rows: str = "windows"  # embed: one row per window, or per step of the model ("steps")

    def shard(self) -> Path:
        key = fingerprint(file_key(self.windows), self.model and file_key(self.model),
                          asdict(self) | {"shard_dir": "", "device": ""})
        return ShardFolder.at(self.shard_dir).name(self.a, key, op=self.op, digits=12)


def cached_model(path: str, device: str):
    """(model, model file dict), loaded once per process."""
    from wsd.models.inference import load_trained

    key = (os.getpid(), *file_key(path), device)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_trained(path, device)
    return _MODELS[key]


def run_rows(task: RowTask, advance=None) -> tuple[int, str]:
    """Compute one chunk and write its shard (unless it exists). Returns (a, shard path).
    Windows holding NaN or infinite values, or a model turning them into such, are refused
    (:class:`BadInputError` naming the file and the first bad row): never written."""
    from wsd.io.store import open_file
    from wsd.io.store.rows import write_arrays

    advance = advance or (lambda n=1, **_: None)
    shard = task.shard()
    if shard.exists():
        advance(task.b - task.a)
        return task.a, str(shard)
    with open_file(task.windows, "windows") as f:
        sel = slice(task.a, task.b)
        try:
            if task.op == "silence":
                out = _silence(f, sel, json.loads(task.options))
                advance(task.b - task.a)
            elif task.op == "birdnet":
                out = {"embeddings": _birdnet().embed_windows(task.windows, start=task.a,
                                                              stop=task.b, advance=advance)}
            else:
                out = _model_rows(f, task, advance)
        except BadInputError as e:  # the array cores name no file: these are its rows
            if e.path is None:
                e.path = task.windows
                e.args = (e.reason, e.path)
            raise
    write_arrays(shard, out)
    return task.a, str(shard)


def _birdnet():
    """The BirdNET embedder of this process (an interpreter cannot be pickled)."""
    key = (os.getpid(), "birdnet")
    if key not in _MODELS:
        from wsd.models.birdnet import BirdnetEmbedder

        _MODELS[key] = BirdnetEmbedder()
    return _MODELS[key]


def check_finite(x: np.ndarray, first_row: int, what: str, path: str) -> None:
    """Refuse rows of ``x`` holding NaN or infinite values (BadInputError naming ``path``)."""
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise BadInputError(f"{len(rows)} {what} hold NaN or infinite values (first: row "
                            f"{first_row + int(rows[0])}); nothing was written", path)


def _model_rows(f, task: RowTask, advance) -> dict:
    from wsd.models.inference import embed_batches

    net, info = cached_model(task.model, task.device)
    norm = info["norm"]

    def batches():
        for a in range(task.a, task.b, task.batch_size):
            x = f.read("windows", slice(a, min(task.b, a + task.batch_size)))
            check_finite(x, a, "windows", task.windows)
            yield x
            advance(len(x))
    steps = task.op == "embed" and task.rows == "steps"
    res = list(embed_batches(net, batches(), float(norm["mean"]), float(norm["std"]),
                             task.device, scores=task.op == "score", amp=task.amp,
                             steps=steps))
    z = np.concatenate(res).astype(np.float32)
    if steps:
        return _step_rows(f, task, z)
    check_finite(z, task.a, "outputs of the model (its weights or inputs are not usable)",
                 task.model)
    if task.op == "score":
        return {"score": z[:, 1].copy()}
    return {"embeddings": z}


#: Two windows of one recording are neighbours when the second starts one step after the
#: first, to within this share of a frame.
CONTIGUOUS_TOL = 0.25


def _step_rows(f, task: RowTask, z: np.ndarray) -> dict:
    """One row per kept step embedding (:func:`wsd.models.inference.keep_steps`) of the
    windows [a, b), with its recording, times, and its window's label and padding."""
    from wsd.models.inference import keep_steps

    sp = f.spectrogram
    hop_s = sp["hop_length"] / sp["sample_rate"]
    frames, step = int(sp["frames"]), int(sp["step"])
    lo, hi = max(0, task.a - 1), min(f.n, task.b + 1)  # one neighbour each side
    sid, st, en = f.read("source_id", slice(lo, hi)), f.read("start_s", slice(lo, hi)), \
        f.read("end_s", slice(lo, hi))
    near = (sid[1:] == sid[:-1]) & (np.abs(st[1:] - st[:-1] - step * hop_s)
                                    < CONTIGUOUS_TOL * hop_s)
    i = np.arange(task.a, task.b) - lo
    first = ~np.r_[False, near][i]
    last = ~np.r_[near, False][i]
    n_steps = z.shape[1]
    per_s = frames * hop_s / n_steps
    end_step = np.ceil((en[i] - st[i]) / per_s - 1e-6).astype(int)
    keep = keep_steps(n_steps, frames, step, first, last, end_step)
    rows = [(w, k) for w, (k0, k1) in enumerate(keep) for k in range(k0, k1)]
    w_idx = np.array([r[0] for r in rows], np.int64)
    k_idx = np.array([r[1] for r in rows], np.int64)
    out = {"embeddings": z[w_idx, k_idx], "source_id": sid[i][w_idx].astype(np.int32),
           "start_s": st[i][w_idx] + k_idx * per_s}
    out["end_s"] = out["start_s"] + per_s
    for name in ("label", "padded"):
        if f.has(name):
            v = f.read(name, slice(task.a, task.b))[w_idx]
            out[name] = v.astype(object).astype(str) if name == "label" else v
    return out


def _silence(f, sel: slice, options: dict) -> dict:
    from wsd.pipeline.detect import silence_rows
    from wsd.dsp.silence import SilenceParams

    options = dict(options)
    runs = bool(options.pop("runs", False))  # the runs of active frames too (frame events)
    return silence_rows(f, sel, SilenceParams(**options), runs=runs)


def plan(op: str, windows: str, n: int, shard_dir: str, *, source_id=None, **kw) -> list:
    """Tasks covering rows [0, n) in chunks of about CHUNK; for ``silence`` the chunks end at
    recording boundaries (the detector works per recording)."""
    bounds = list(range(0, n, CHUNK)) + [n]
    if op == "silence" and n:
        change = np.flatnonzero(np.diff(source_id)) + 1
        starts = np.concatenate([[0], change])
        bounds, last = [0], 0
        for s in starts[1:]:
            if s - last >= CHUNK:
                bounds.append(int(s))
                last = s
        bounds.append(n)
    return [RowTask(op, windows, a, b, shard_dir, **kw) for a, b in zip(bounds[:-1], bounds[1:])
            if b > a]


def collect(shards: list[str]) -> dict[str, np.ndarray]:
    """Concatenate the shards' arrays, in order (for small per-row results)."""
    from wsd.io.store.rows import read_arrays

    parts = [read_arrays(s) for s in shards]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run(tasks: list, *, workers: int = 1, scheduler: str | None = None,
        progress=lambda n=1, **_: None) -> list[str]:
    """Run the tasks (skipping finished shards) and return shard paths in row order;
    ``progress(n)`` hears of every batch in-process, of every chunk elsewhere."""
    import functools

    from wsd.runtime.executor import run_tasks

    serial = workers <= 1 and not scheduler
    sizes = {t.a: t.b - t.a for t in tasks}
    done: dict[int, str] = {}

    def got(r):
        done[r[0]] = r[1]
        if not serial:
            progress(sizes[r[0]])
    fn = functools.partial(run_rows, advance=progress) if serial else run_rows
    run_tasks(fn, tasks, workers=workers, scheduler=scheduler, on_result=got, preload=PRELOAD)
    return [done[t.a] for t in tasks]
