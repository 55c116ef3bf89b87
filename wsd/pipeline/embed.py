"""Coordinator of ``wsd embed``: windows and a trained model in, an embeddings file out.

Windows are embedded in chunks (:mod:`wsd.pipeline.chunks`), each written to a shard under
``OUT.shards/`` (an interrupted run resumes; ``--workers``/``--scheduler`` spread the
chunks); the output is the same bit for bit whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsd.errors import UsageError
from wsd.pipeline.progress import Progress

#: ``--reconstruct``: windows drawn at random, among which the shown ones span quiet to loud.
RECON_CANDIDATES = 1024


@dataclass(frozen=True)
class EmbedParams:
    """What ``wsd embed`` was asked to do (validated here; saved in the output)."""

    batch_size: int = 256
    device: str = "auto"
    amp: bool | None = None
    reconstruct: int = 0
    seed: int = 0
    workers: int = 1
    scheduler: str | None = None
    rows: str = "auto"  # windows | steps | files | auto (steps for models that make them)

    def __post_init__(self):
        from wsd.runtime.device import check_device_name

        if self.rows not in ("auto", "windows", "steps", "files"):
            raise UsageError(f"--rows must be auto, windows, steps or files (got {self.rows})")
        if self.rows == "files" and self.reconstruct:
            raise UsageError("--reconstruct shows windows; it does not go with --rows files")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.reconstruct < 0:
            raise UsageError(f"--reconstruct must be >= 0 (got {self.reconstruct})")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")
        check_device_name(self.device)


def run_embed(windows, model, out, p: EmbedParams, history: list[str], *, force: bool,
              progress: Progress | None = None) -> dict:
    """Embed every window of ``windows`` with ``model`` into ``out``; returns a summary."""
    from wsd.io.store import (atomic_output, check_output, ensure_space, open_file,
                              output_lock)
    from wsd.io.store.rows import RowWriter, read_arrays
    from wsd.models.inference import check_model_settings, choose_amp
    from wsd.pipeline import chunks
    from wsd.runtime.device import pick_device
    from wsd.runtime.shards import ShardFolder

    progress = progress or Progress()
    out = Path(out)
    if str(model) == BIRDNET:
        if p.rows in ("steps", "files"):
            raise UsageError("--model birdnet makes one embedding per window (--rows windows); "
                             f"--rows {p.rows} is not available with it")
        return _run_birdnet(windows, out, p, history, force, progress)
    check_output(out, force, inputs=[windows, model])
    dev = pick_device(p.device)
    with output_lock(out), open_file(windows, "windows") as f, \
            contextlib.ExitStack() as stack:
        net, info = chunks.cached_model(str(model), dev)
        check_model_settings(info, f.spectrogram, f.shape("windows")[2], str(windows))
        n = f.n
        use_amp, why = choose_amp(net, lambda: f.read("windows", slice(0, min(8, n))),
                                  info["norm"], dev, p.amp)
        if why:
            (progress.warn if p.amp else progress.note)(why)
        rows = p.rows if p.rows != "auto" else \
            ("steps" if hasattr(net, "steps") else "windows")
        if rows == "steps" and not hasattr(net, "steps"):
            raise UsageError(f"{info['arch']} makes one embedding per window (--rows windows)")
        params = {**dataclasses.asdict(p), "rows": rows, "windows": str(windows),
                  "model": str(model),
                  "windows_id": f.file_id, "model_id": info.get("id"),
                  "arch": info["arch"], "device": dev, "amp": use_amp,
                  # equal blocks of a row made by separate copies of the encoder (kmeans
                  # -p members=N; a probe's default -p blocks, one fit per copy). Rows of
                  # --rows files are all means then all deviations: one block
                  "member_blocks": 1 if rows == "files" else
                  int(info["config"].get("members", 1))}
        hist = list(dict.fromkeys(f.history + info["history"])) + history
        carried = [k for k in ("padded", "label") if f.has(k)]
        folder = stack.enter_context(ShardFolder(out).working())
        tasks = chunks.plan("embed", str(windows), n, str(folder.path), model=str(model),
                            batch_size=p.batch_size, device=dev, amp=use_amp,
                            rows="windows" if rows == "files" else rows)
        with progress.task("embedding", n, "windows") as advance:
            done = chunks.run(tasks, workers=p.workers, scheduler=p.scheduler,
                              progress=advance)
        ensure_space(out, n * (4 * int(net.embedding_dim) + 40)
                     * (4 if rows == "steps" else 1))
        with progress.task("writing", n, "windows") as advance, \
                atomic_output(out, force) as tmp:
            w = RowWriter(tmp, "embeddings", params, f.spectrogram, hist, f.sources)
            try:
                pool = FilePool(int(net.embedding_dim), f.has("label"), windows) \
                    if rows == "files" else None
                for t, shard in zip(tasks, done):
                    got = read_arrays(shard)
                    if pool is not None:
                        sel = slice(t.a, t.b)
                        pool.add(got["embeddings"], f.read("source_id", sel),
                                 f.read("start_s", sel), f.read("end_s", sel),
                                 f.read("label", sel) if f.has("label") else None)
                        ready = pool.take()
                        if ready is not None:
                            w.append(**ready)
                        advance(t.b - t.a)
                        continue
                    if rows == "windows":
                        sel = slice(t.a, t.b)
                        got.update({k: f.read(k, sel) for k in ("source_id", "start_s",
                                                                "end_s", *carried)})
                    w.append(**got)
                    advance(t.b - t.a)
                if pool is not None and (last := pool.take(final=True)) is not None:
                    w.append(**last)
                if p.reconstruct:
                    _reconstructions(w, net, f, p.reconstruct, p.seed, info["norm"], dev)
                dim = int(net.config["dim"]) if rows == "steps" else int(net.embedding_dim)
                dim *= 2 if rows == "files" else 1
                w.set_attrs(embedding_dim=dim, rows=rows)
                written = w.n
            finally:
                w.close()
    return {"windows": n, "dim": dim, "amp": use_amp, "device": dev, "rows": rows,
            "written": written}


class FilePool:
    """``--rows files``: one row per recording, the mean and the standard deviation of its
    windows' embeddings side by side (``(2 D,)``, float32), spanning its first window's
    start to its last window's end, labelled (where the windows carry labels) with its most
    common non-empty window label (a recording holding a call is a positive, as ``detect``
    counts recordings). Windows arrive in file order, in chunks cut anywhere, each
    recording's windows together (as ``slice`` writes them): a recording's row is ready
    (:meth:`take`) once the next recording starts, so memory is one accumulator whatever the
    number of recordings. A recording whose windows come back after another's is refused."""

    def __init__(self, dim: int, labelled: bool, path=None):
        self.dim, self.labelled, self.path = dim, labelled, path
        self.cur: int | None = None
        self.done: set[int] = set()
        self.ready: list[tuple] = []
        self._reset()

    def _reset(self) -> None:
        self.sum, self.sq = np.zeros(self.dim), np.zeros(self.dim)
        self.n, self.start, self.end = 0, np.inf, -np.inf
        self.counts: dict[str, int] = {}

    def add(self, z, source_id, start_s, end_s, labels=None) -> None:
        from wsd.errors import BadInputError

        sid = np.asarray(source_id, np.int64)
        st, en = np.asarray(start_s, np.float64), np.asarray(end_s, np.float64)
        cuts = np.flatnonzero(np.diff(sid)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(sid)]):
            s = int(sid[a])
            if s != self.cur:
                self._flush()
                if s in self.done:
                    raise BadInputError(f"--rows files needs each recording's windows "
                                        f"together, and recording {s}'s come back after "
                                        "another's (slice writes them together)", self.path)
                self.cur = s
            x = np.asarray(z[a:b], np.float64)
            self.sum += x.sum(0)
            self.sq += (x * x).sum(0)
            self.n += b - a
            self.start, self.end = min(self.start, st[a:b].min()), max(self.end, en[a:b].max())
            if labels is not None:
                for lab in labels[a:b]:
                    lab = lab.decode() if isinstance(lab, bytes) else str(lab)
                    if lab:
                        self.counts[lab] = self.counts.get(lab, 0) + 1

    def _flush(self) -> None:
        if self.cur is None:
            return
        mean = self.sum / self.n
        std = np.sqrt(np.maximum(self.sq / self.n - mean * mean, 0.0))
        label = max(self.counts.items(), key=lambda kv: (kv[1], kv[0]))[0] \
            if self.counts else ""
        self.ready.append((self.cur, np.r_[mean, std], self.start, self.end, label))
        self.done.add(self.cur)
        self.cur = None
        self._reset()

    def take(self, final: bool = False) -> dict | None:
        """The rows of the recordings complete so far (with ``final``: all), or None."""
        if final:
            self._flush()
        if not self.ready:
            return None
        rows, self.ready = self.ready, []
        out = {"embeddings": np.stack([r[1] for r in rows]).astype(np.float32),
               "source_id": np.array([r[0] for r in rows], np.int64),
               "start_s": np.array([r[2] for r in rows], np.float64),
               "end_s": np.array([r[3] for r in rows], np.float64)}
        if self.labelled:  # as windows rows carry labels only where the windows have them
            out["label"] = np.array([r[4] for r in rows], dtype=object)
        return out


#: ``--model birdnet``: the pretrained BirdNET v2.4 encoder (the optional extra).
BIRDNET = "birdnet"


def _run_birdnet(windows, out: Path, p: EmbedParams, history: list[str], force: bool,
                 progress: Progress) -> dict:
    """Embed every window with BirdNET v2.4 (3 s of the audio around each window, read
    again from the recordings at 48 kHz; :mod:`wsd.models.birdnet`)."""
    from wsd.io.store import atomic_output, check_output, open_file, output_lock
    from wsd.io.store.rows import RowWriter, read_arrays
    from wsd.models.birdnet import LICENCE_NOTE, BirdnetEmbedder
    from wsd.pipeline import chunks
    from wsd.runtime.shards import ShardFolder

    check_output(out, force, inputs=[windows])
    enc = BirdnetEmbedder()  # a UsageError naming the extra when it is not installed
    progress.note(LICENCE_NOTE)
    with output_lock(out), open_file(windows, "windows") as f, \
            ShardFolder(out).working() as folder:
        n = f.n
        params = {**dataclasses.asdict(p), "rows": "windows", "windows": str(windows),
                  "windows_id": f.file_id, "model": BIRDNET, "arch": "birdnet",
                  **{k: str(v) for k, v in enc.describe().items()}}
        tasks = chunks.plan("birdnet", str(windows), n, str(folder.path))
        with progress.task("embedding (BirdNET)", n, "windows") as advance:
            done = chunks.run(tasks, workers=p.workers, scheduler=p.scheduler,
                              progress=advance)
        carried = [k for k in ("padded", "label") if f.has(k)]
        with atomic_output(out, force) as tmp:
            w = RowWriter(tmp, "embeddings", params, f.spectrogram,
                          list(f.history) + history, f.sources)
            try:
                for t, shard in zip(tasks, done):
                    sel = slice(t.a, t.b)
                    w.append(**read_arrays(shard), **{k: f.read(k, sel) for k in
                                                      ("source_id", "start_s", "end_s",
                                                       *carried)})
                w.set_attrs(embedding_dim=enc.embedding_dim, rows="windows")
            finally:
                w.close()
    return {"windows": n, "dim": enc.embedding_dim, "amp": False, "device": "cpu",
            "rows": "windows"}


def _reconstructions(w, net, f, k: int, seed: int, norm: dict, dev: str) -> None:
    from wsd.models.inference import reconstruct

    mean, std = float(norm["mean"]), float(norm["std"])
    idx = spread_by_level(f, k, seed)
    x = np.stack([f.read("windows", int(i)) for i in idx]).astype(np.float32)
    y = reconstruct(net, x, mean, std, dev)
    if y is not None:
        w.put("recon_index", idx)
        w.put("recon_input", x)
        w.put("recon_output", y.astype(np.float32))
    gen = getattr(net, "generate", None)
    if gen is not None:
        import torch

        with torch.inference_mode():
            g = gen(k, seed)
        if g is not None:
            w.put("generated", g.float().cpu().numpy() * std + mean)


def spread_by_level(f, k: int, seed: int, candidates: int = RECON_CANDIDATES) -> np.ndarray:
    """``k`` window indices (sorted) spread from the quietest to the loudest of a seeded
    random sample of up to ``candidates`` windows (level: a window's 99th-percentile dB), so
    the reconstructions show calls as well as the background that most windows hold."""
    rng = np.random.default_rng(seed)
    cand = np.sort(rng.choice(f.n, size=min(f.n, max(k, candidates)), replace=False))
    level = np.array([np.percentile(f.read("windows", int(i)).astype(np.float32), 99)
                      for i in cand])
    order = cand[np.argsort(level, kind="stable")]
    pick = np.unique(np.round(np.linspace(0, len(order) - 1, min(k, len(order)))).astype(int))
    return np.sort(order[pick])
