"""Coordinator of ``wsd index``: an approximate nearest-neighbour index of an embeddings
file, built in bounded memory and, like the other commands, in tasks spread over local
processes (``--workers``) or a Dask cluster (``--scheduler``).

The coarse quantizer is trained once here on a sample of the rows; each task adds its range
of rows to a copy and writes a shard; the shards' lists are merged on disk into one
memory-mapped file; nprobe is calibrated against exact search on sampled rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsd.errors import UsageError
from wsd.pipeline.progress import Progress

#: Rows per build task.
TASK_ROWS = 1_000_000


@dataclass(frozen=True)
class IndexParams:
    nlist: int | None = None
    workers: int = 1
    scheduler: str | None = None
    seed: int = 0

    def __post_init__(self):
        if self.nlist is not None and not (16 <= self.nlist <= 1 << 20):
            raise UsageError(f"--nlist must be in 16..{1 << 20} (got {self.nlist})")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")


@dataclass(frozen=True)
class AddTask:
    """Rows [a, b) of the embeddings file added to the trained index, saved as a shard."""

    embeddings: str
    trained: str
    shard: str
    a: int
    b: int


def run_add(t: AddTask) -> str:
    from wsd.io import index as ix
    from wsd.io.store import open_file

    idx = ix.read(t.trained)
    with open_file(t.embeddings, "embeddings") as e:
        ix.add_rows(idx, e.f["embeddings"], t.a, t.b)
    tmp = Path(t.shard).with_suffix(".tmp")
    ix.write(idx, tmp)
    tmp.rename(t.shard)
    return t.shard


def run_index(emb_path: str, out, p: IndexParams, *, force: bool,
              progress: Progress | None = None) -> dict:
    """Build the index of ``emb_path`` into the folder ``out``."""
    from wsd.io import index as ix
    from wsd.io.store import atomic_output, open_file, output_lock
    from wsd.runtime.executor import run_tasks

    progress = progress or Progress()
    out = Path(out)
    ix._faiss()  # the extra is installed, before any work
    with output_lock(out), open_file(emb_path, "embeddings") as e, \
            atomic_output(out, force, folder=True, inputs=[emb_path]) as tmp:
        n, dim = e.shape("embeddings")
        if n < 2:
            raise UsageError(f"only {n} row(s): nothing to index", emb_path)
        nlist = min(p.nlist or ix.nlist_for(n), max(1, n // ix.MIN_PER_LIST))
        rng = np.random.default_rng(p.seed)
        sample = np.sort(rng.choice(n, size=min(n, ix.TRAIN_PER_LIST * nlist), replace=False))
        progress.note(f"{n} rows of {dim}-d: IVF{nlist},SQfp16 trained on {len(sample)} rows")
        with progress.task("training", None, "") as advance:
            trained = ix.train_index(np.asarray(e.f["embeddings"][sample]), dim, nlist)
            advance(1)
        ix.write(trained, tmp / "trained.faiss")
        bounds = list(range(0, n, TASK_ROWS)) + [n]
        tasks = [AddTask(str(Path(emb_path).resolve()), str(tmp / "trained.faiss"),
                         str(tmp / f"shard-{i:04d}.faiss"), a, b)
                 for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
        with progress.task("adding", n, "rows") as advance:
            sizes = {t.shard: t.b - t.a for t in tasks}
            run_tasks(run_add, tasks, workers=p.workers, scheduler=p.scheduler,
                      on_result=lambda s: advance(sizes[s]),
                      preload=["wsd.pipeline.index", "wsd.io.index"])
        shards = [Path(t.shard) for t in tasks]
        ix.merge(tmp, tmp / "trained.faiss", shards)
        for s in shards:
            s.unlink()
        (tmp / "trained.faiss").unlink()
        meta = ix.IndexMeta(str(emb_path), e.file_id, n, dim, nlist)
        ix.write_meta(tmp, meta)
        with progress.task("calibrating nprobe", None, "") as advance:
            opened = ix.OpenIndex(tmp, meta)
            nprobe, recall = ix.calibrate(opened.idx, e.f["embeddings"], n, p.seed)
            advance(1)
        meta.nprobe, meta.recall_at_10 = nprobe, recall
        ix.write_meta(tmp, meta)
        size = ix.folder_size(tmp)
    return {"rows": n, "dim": dim, "nlist": nlist, "nprobe": nprobe, "recall": recall,
            "bytes": size}
