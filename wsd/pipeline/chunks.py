"""Work on chunks of windows, for ``embed`` and ``detect``: the same tasks run in-process,
on local processes (``--workers N``) or on a Dask cluster (``--scheduler ADDRESS``).

Every chunk's result is written to its own shard (atomically), named by a fingerprint of
the inputs (windows file, model file, rows, settings), so a killed or failed worker's task is
simply run again (Dask retries it) and a re-run skips the chunks already done. The single-
process run goes through exactly the same chunks, so outputs are identical bit for bit
whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Windows per task (a multiple of any power-of-two batch size up to 4096).
CHUNK = 16384

_MODELS: dict = {}


def file_key(path: str) -> list:
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


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

    def shard(self) -> Path:
        key = json.dumps([file_key(self.windows), self.model and file_key(self.model),
                          asdict(self) | {"shard_dir": "", "device": ""}], default=str)
        h = hashlib.sha256(key.encode()).hexdigest()[:16]
        return Path(self.shard_dir) / f"{self.op}-{self.a:012d}-{h}.h5"


def cached_model(path: str, device: str):
    """(model, model file dict), loaded once per process."""
    from wsd.models.inference import load_trained

    key = (os.getpid(), *file_key(path), device)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_trained(path, device)
    return _MODELS[key]


def run_rows(task: RowTask) -> tuple[int, str]:
    """Compute one chunk and write its shard (unless it exists). Returns (a, shard path)."""
    from wsd.io.store import open_file
    from wsd.io.store.rows import write_arrays

    shard = task.shard()
    if shard.exists():
        return task.a, str(shard)
    with open_file(task.windows, "windows") as f:
        sel = slice(task.a, task.b)
        if task.op == "silence":
            out = _silence(f, sel, json.loads(task.options))
        else:
            out = _model_rows(f, task)
    write_arrays(shard, out)
    return task.a, str(shard)


def _model_rows(f, task: RowTask) -> dict:
    from wsd.models.inference import embed_batches

    net, info = cached_model(task.model, task.device)
    norm = info["norm"]

    def batches():
        for a in range(task.a, task.b, task.batch_size):
            yield f.read("windows", slice(a, min(task.b, a + task.batch_size)))
    res = list(embed_batches(net, batches(), float(norm["mean"]), float(norm["std"]),
                             task.device, scores=task.op == "score", amp=task.amp))
    z = np.concatenate(res).astype(np.float32)
    if task.op == "score":
        return {"score": z[:, 1].copy()}
    return {"embeddings": z}


def _silence(f, sel: slice, options: dict) -> dict:
    from wsd.pipeline.detect import silence_rows
    from wsd.dsp.silence import SilenceParams

    return silence_rows(f, sel, SilenceParams(**options))


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


def shard_dir(out) -> Path:
    """``OUT.shards/``, created; where a command's chunk results wait until it completes."""
    d = Path(out).with_name(Path(out).name + ".shards")
    try:
        d.mkdir(exist_ok=True)
    except OSError as e:
        from wsd.errors import OutputError
        raise OutputError(f"cannot create {d} ({e.strerror})", out) from None
    return d


def remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def collect(shards: list[str]) -> dict[str, np.ndarray]:
    """Concatenate the shards' arrays, in order (for small per-row results)."""
    from wsd.io.store.rows import read_arrays

    parts = [read_arrays(s) for s in shards]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run(tasks: list, *, workers: int = 1, scheduler: str | None = None,
        progress=lambda n: None) -> list[str]:
    """Run the tasks (skipping finished shards) and return shard paths in row order."""
    from wsd.runtime.executor import run_tasks

    sizes = {t.a: t.b - t.a for t in tasks}
    done: dict[int, str] = {}

    def got(r):
        done[r[0]] = r[1]
        progress(sizes[r[0]])
    run_tasks(run_rows, tasks, workers=workers, scheduler=scheduler, on_result=got,
              preload=["wsd.pipeline.chunks", "wsd.io.store", "wsd.io.store.rows", "wsd.models.inference",
                       "wsd.pipeline.detect", "torch"])
    return [done[t.a] for t in tasks]
