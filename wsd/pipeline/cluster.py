"""Coordinator of ``wsd cluster``: embeddings (and a silence mask) in, a clusters file out.

With ``--sample``, the assignment of the other sequences to the sample's medoids can run on
local processes or a Dask cluster: the prepared sequences are written once to a scratch
folder beside the output, which each task memory-maps.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsd.discovery.search import MAX_SEGMENTS, SEGMENTS
from wsd.errors import BadInputError, UsageError
from wsd.pipeline.progress import Progress

DISTANCES = ("auto", "dtw", "cosine", "fused")
#: Store the clustered sequences' DTW matrix in the output up to this many sequences.
STORE_MATRIX_MAX = 3000


@dataclass(frozen=True)
class ClusterParams:
    mask: str | None = None
    per_file: bool = False
    min_windows: int = 1
    max_windows: int | None = None
    window: int | None = None
    length_norm: str = "sqrt"
    normalize: str = "zscore"
    distance: str = "auto"  # auto | dtw | cosine (each sequence pooled) | fused
    segments: int = SEGMENTS  # with cosine and fused: parts in time joining the pooling
    windows: str | None = None  # with fused: the windows file (default: embed's record)
    pca: int | None = None
    rerank: str = "auto"  # auto | none | mp | mp+qe (wsd.discovery.rerank)
    linkage: str = "ward"
    n_clusters: int | None = 10
    threshold: float | None = None
    sample: int | None = None
    novelty_k: int = 5
    memory_gb: float | None = None
    seed: int = 0
    workers: int = 1
    scheduler: str | None = None

    def __post_init__(self):
        if self.mask and self.per_file:
            raise UsageError("--mask and --per-file exclude each other")
        if self.min_windows < 1 or (self.max_windows is not None and
                                    self.max_windows < self.min_windows):
            raise UsageError("need 1 <= --min-windows <= --max-windows")
        if self.length_norm not in ("none", "sqrt"):
            raise UsageError(f"--length-norm must be none or sqrt (got {self.length_norm})")
        if self.normalize not in ("none", "zscore", "l2"):
            raise UsageError(f"--normalize must be none, zscore or l2 (got {self.normalize})")
        if self.distance not in DISTANCES:
            raise UsageError(f"--distance must be {', '.join(DISTANCES[:-1])} or "
                             f"{DISTANCES[-1]} (got {self.distance})")
        if self.distance == "fused" and self.sample:
            raise UsageError("--distance fused needs the full matrix: leave out --sample")
        if self.windows and self.distance != "fused":
            raise UsageError("--windows gives the frames of --distance fused")
        from wsd.discovery.rerank import RERANKS

        if self.rerank not in RERANKS:
            raise UsageError(f"--rerank must be {', '.join(RERANKS[:-1])} or {RERANKS[-1]} "
                             f"(got {self.rerank})")
        if self.sample and self.rerank not in ("auto", "none"):
            raise UsageError(f"--rerank {self.rerank} needs the full matrix: leave out "
                             "--sample (or --rerank none)")
        if not 0 <= self.segments <= MAX_SEGMENTS:
            raise UsageError(f"--segments must be 0 to {MAX_SEGMENTS} (got {self.segments})")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if (self.workers > 1 or self.scheduler) and not self.sample:
            raise UsageError("--workers and --scheduler spread the --sample assignment; without "
                             "--sample the DTW matrix is computed here, on all cores (OpenMP)")
        if self.pca is not None and self.pca < 1:
            raise UsageError("--pca must be at least 1")
        if self.window is not None and self.window < 0:
            raise UsageError("--window must be >= 0")
        if self.novelty_k < 0:
            raise UsageError("--novelty-k must be >= 0")
        if self.n_clusters is not None and self.n_clusters < 1:
            raise UsageError(f"--n-clusters must be at least 1 (got {self.n_clusters})")
        if self.threshold is not None and not (math.isfinite(self.threshold)
                                               and self.threshold >= 0):
            raise UsageError(f"--threshold must be a number >= 0 (got {self.threshold})")
        if self.sample is not None and self.sample < 2:
            raise UsageError(f"--sample must be at least 2 sequences (got {self.sample})")
        if self.memory_gb is not None and not (math.isfinite(self.memory_gb)
                                               and self.memory_gb > 0):
            raise UsageError(f"--memory-gb must be a positive number (got {self.memory_gb})")


def pooled_sequences(arrays: list[np.ndarray], segments: int = 0) -> list[np.ndarray]:
    """``--distance cosine``: each sequence ``(len, d)`` becomes one step ``(1, (2 +
    segments) d)``: the mean and standard deviation of its rows and the means of
    ``segments`` equal parts in time (:func:`wsd.discovery.search.pool`), standardised
    across the sequences, the parts weighted by ``1 / sqrt(segments)``
    (:func:`~wsd.discovery.search.pool_weights`), and scaled to unit length. The DTW of two
    one-step sequences is then their Euclidean (chord) distance, sqrt(2 (1 - cosine
    similarity)), so linkage (Ward on chord distances is Ward on the unit vectors),
    medoids, novelty and --sample all work unchanged."""
    from wsd.discovery.search import pool, pool_weights

    p = np.stack([pool(a, segments) for a in arrays]).astype(np.float64)
    p = (p - p.mean(0)) / (p.std(0) + 1e-9) * pool_weights(arrays[0].shape[1], segments)
    p /= np.linalg.norm(p, axis=1, keepdims=True) + 1e-12
    return [row[None, :] for row in p]


def _silent_mask(det, emb) -> np.ndarray:
    """Per-row silence from a detections file of the embeddings' windows: the detection of
    the same window, or, for embeddings with one row per step (``embed --rows steps``), of
    the window of the same recording whose centre is nearest the step's."""
    if det.kind != "detections":
        raise BadInputError(f"is a {det.kind} file; --mask takes detections", det.path)
    if list(det.sources["path"]) != list(emb.sources["path"]):
        raise BadInputError(f"detections do not match the recordings of {emb.path} (made "
                            "from another windows file?)", det.path)
    silent = ~det.read("positive").astype(bool)
    if emb.attrs("/").get("rows") != "steps":
        if det.n != emb.n or not np.array_equal(det.read("start_s"), emb.read("start_s")):
            raise BadInputError(f"detections do not match the windows of {emb.path} (made "
                                "from another windows file?)", det.path)
        return silent
    dsid = det.read("source_id")
    dcen = (det.read("start_s") + det.read("end_s")) / 2
    esid = emb.read("source_id")
    ecen = (emb.read("start_s") + emb.read("end_s")) / 2
    out = np.ones(len(esid), bool)
    for s in np.unique(esid):
        rows = np.flatnonzero(dsid == s)
        mine = np.flatnonzero(esid == s)
        if not len(rows):
            continue
        order = rows[np.argsort(dcen[rows], kind="stable")]
        c = dcen[order]
        j = np.clip(np.searchsorted(c, ecen[mine]), 1, max(1, len(c) - 1))
        j = np.where(np.abs(c[j - 1] - ecen[mine]) <= np.abs(c[np.minimum(j, len(c) - 1)]
                                                              - ecen[mine]), j - 1, j)
        out[mine] = silent[order[np.minimum(j, len(c) - 1)]]
    return out


def run_cluster(emb_path: str, p: ClusterParams, out, history: list[str], *, force: bool,
                progress: Progress | None = None) -> dict:
    """Cluster the sequences of ``emb_path`` into ``out``; returns a summary."""
    from wsd.discovery.frames import recorded_windows
    from wsd.io.store import check_output, output_lock

    progress = progress or Progress()
    out = Path(out)
    check_output(out, force, inputs=[emb_path, p.mask, p.windows,
                                     *recorded_windows(emb_path)])
    with output_lock(out):
        return _cluster(emb_path, p, out, history, force, progress)


def _cluster(emb_path: str, p: ClusterParams, out: Path, history, force, progress) -> dict:
    from wsd.discovery import agglomerative, cost, dtw, sampled
    from wsd.discovery import sequences as S
    from wsd.io.store import open_file
    from wsd.metrics.clustering import label_metrics

    if not dtw.c_available():
        raise dtw.DtwUnavailableError("dtaidistance's C library is not available")
    with open_file(emb_path, "embeddings") as e:
        emb = e.read("embeddings")
        sid, st, en = e.read("source_id"), e.read("start_s"), e.read("end_s")
        labels = e.read("label") if e.has("label") else None
        silent = None
        if p.mask:
            with open_file(p.mask) as d:
                silent = _silent_mask(d, e)
        sources, spec, emb_id = e.sources, e.spectrogram, e.file_id
        distance, windows = p.distance, p.windows
        if distance == "auto":
            distance = S.default_distance(e.params.get("arch"))
            if distance == "fused":
                from wsd.discovery.frames import find_windows

                found = find_windows(e) if not p.sample else None
                if found is None:
                    distance = "cosine"
                    progress.note("--distance auto: pooled cosine, not fused ("
                                  + ("--sample" if p.sample else "the windows file the "
                                     "embeddings were made from is not found")
                                  + ")")
                else:
                    windows = str(found)
        hist = list(dict.fromkeys(e.history)) + history
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        raise BadInputError(f"{int(bad.sum())} embeddings hold NaN or infinite values (first: "
                            f"row {int(np.flatnonzero(bad)[0])})", emb_path)
    if p.per_file:
        seqs = S.sequences_per_file(sid, st, en)
    else:
        seqs = S.sequences_from_mask(sid, st, en, silent, min_windows=p.min_windows,
                                     max_windows=p.max_windows)
    m = len(seqs)
    if m < 2:
        raise BadInputError(f"only {m} sequence(s) to cluster (is the mask all silence?)",
                            emb_path)
    n_clusters = p.n_clusters
    n_clu = m if not p.sample else min(m, p.sample)
    if n_clusters is not None and n_clusters > n_clu:
        progress.note(f"--n-clusters {n_clusters} is more than the {n_clu} sequences "
                      f"clustered: at most {n_clu} clusters")
        n_clusters = n_clu
    x = dtw.preprocess(emb, p.normalize, p.pca, seed=p.seed)
    arrays = seqs.arrays(x)
    lengths, length_norm = seqs.lengths, p.length_norm
    frames = None
    if distance in ("cosine", "fused"):
        arrays = pooled_sequences(arrays, p.segments)
        lengths, length_norm = np.ones(m, np.int64), "none"
    if distance == "fused":
        from wsd.discovery.frames import sequence_frames

        with open_file(emb_path, "embeddings") as e:
            frames = sequence_frames(e, seqs.source_id, seqs.start_s, seqs.end_s, windows)
    from wsd.discovery.rerank import MIN_ITEMS

    rerank = p.rerank
    if rerank == "auto":
        rerank = "none" if p.sample and p.sample < m else "mp+qe"
    if m < MIN_ITEMS:  # no neighbourhood to re-rank by
        rerank = "none"
    limit = int(p.memory_gb * 1e9) if p.memory_gb else None
    if frames is not None:
        nbytes, secs = cost.estimate_cost(m, np.array([len(f) for f in frames]),
                                          frames[0].shape[1], None)
        what = "fused (pooled cosine + DTW of the frames)"
    else:
        nbytes, secs = cost.estimate_cost(n_clu, lengths, arrays[0].shape[1], p.window)
        what = "cosine (pooled)" if distance == "cosine" else "DTW"
    progress.note(f"{m} sequences of {seqs.lengths.min()}-{seqs.lengths.max()} windows, "
                  f"{arrays[0].shape[1]}-d; {what} matrix of {n_clu} sequences"
                  f"{'' if rerank == 'none' else f', re-ranked ({rerank})'}: about "
                  f"{nbytes / 1e6:.0f} MB, {secs:.0f} s (dtaidistance C library"
                  f"{', OpenMP' if dtw.openmp_available() else ', no OpenMP: serial'})")
    kw = {"method": p.linkage, "n_clusters": n_clusters, "distance_threshold": p.threshold,
          "window": p.window, "novelty_k": p.novelty_k or None, "memory_limit": limit,
          "length_norm": length_norm}
    with progress.task("clustering", None, "") as advance:
        if frames is not None:
            res = _cluster_fused(arrays, frames, kw, rerank)
        elif p.sample and p.sample < m:
            spread = p.workers > 1 or bool(p.scheduler)
            assign = (_Distributed(arrays, p.workers, p.scheduler, out.resolve().parent)
                      if spread else None)
            res = sampled.cluster_sampled(arrays, p.sample, seed=p.seed, assign_chunks=assign,
                                          spread=p.workers if not p.scheduler else 8, **kw)
        else:
            res = agglomerative.cluster_sequences(arrays, rerank=rerank, **kw)
        advance(1)
    seq_labels = S.sequence_labels(labels, seqs) if labels is not None else None
    metrics = None
    if seq_labels is not None and (seq_labels != "").any():
        metrics = label_metrics(seq_labels, res.labels, res.distance, res.clustered)
    k = int(res.labels.max()) + 1
    params = {**dataclasses.asdict(p), "distance": distance, "windows": windows,
              "rerank": rerank,
              "embeddings": emb_path,
              "embeddings_id": emb_id}
    _write(out, force, params, spec, hist, sources, seqs, res, seq_labels, metrics)
    return {"n_sequences": m, "n_clusters": k, "silhouette": res.silhouette,
            "metrics": metrics}


def _cluster_fused(pooled: list[np.ndarray], frames: list[np.ndarray], kw: dict,
                   rerank: str = "none"):
    """``--distance fused``: the cosine distance of the pooled unit vectors and the DTW of
    the whitened frames, fused (:func:`wsd.discovery.frames.fuse`), then clustered."""
    from scipy.spatial.distance import squareform

    from wsd.discovery import agglomerative, dtw
    from wsd.discovery.frames import fuse

    m = len(pooled)
    agglomerative.check_memory(m, kw["memory_limit"])
    u = np.concatenate(pooled)
    cos = np.clip(1.0 - u @ u.T, 0.0, None)
    np.fill_diagonal(cos, 0.0)
    d_frames = dtw.dtw_condensed(frames, length_norm="sqrt")
    fused = fuse(squareform(cos, checks=False), d_frames)
    return agglomerative.cluster_condensed(fused, kw["method"], kw["n_clusters"],
                                           kw["distance_threshold"], kw["novelty_k"],
                                           rerank=rerank)


def _write(out, force: bool, params: dict, spec, hist, sources, seqs, res, seq_labels,
           metrics) -> None:
    """The clusters file: one row per sequence, the tree, medoids and (small) matrix."""
    from wsd.io.store import atomic_output, ensure_space
    from wsd.io.store.rows import RowWriter

    m = len(seqs)
    k = int(res.labels.max()) + 1
    n_mat = len(res.clustered) if len(res.clustered) <= STORE_MATRIX_MAX else 0
    ensure_space(out, m * 96 + 4 * n_mat * n_mat)
    with atomic_output(out, force) as tmp:
        w = RowWriter(tmp, "clusters", params, spec, hist, sources)
        try:
            cols = {"source_id": seqs.source_id, "start_s": seqs.start_s, "end_s": seqs.end_s,
                    "cluster": res.labels, "seq_start": seqs.start, "seq_stop": seqs.stop,
                    "medoid_distance": res.medoid_distance, "in_sample": res.sampled,
                    "novelty": (res.novelty if res.novelty is not None
                                else np.full(m, np.nan))}
            if seq_labels is not None:
                cols["label"] = seq_labels
            w.append(**cols)
            w.put("linkage", res.linkage)
            w.put("linkage_index", res.clustered)
            w.put("medoids", res.medoids)
            if len(res.clustered) <= STORE_MATRIX_MAX:
                w.put("distance", res.distance.astype(np.float32))
            w.set_attrs(n_clusters=k, silhouette=res.silhouette,
                        metrics_json=json.dumps(metrics) if metrics else None,
                        dtw_library="dtaidistance C")
        finally:
            w.close()


@dataclass(frozen=True)
class AssignTask:
    """One chunk of the ``--sample`` assignment, for a worker process or a Dask worker."""

    folder: str  # rows.npy (all sequences' rows, float64) and offsets.npy (m + 1,)
    number: int
    idx: np.ndarray  # the chunk's sequence indices
    job: object  # wsd.discovery.sampled.AssignJob


def run_assign_task(t: AssignTask) -> tuple:
    """(task number, (labels, distances, novelty)) of one :class:`AssignTask`."""
    from wsd.discovery.sampled import assign_block

    rows = np.load(Path(t.folder) / "rows.npy", mmap_mode="r")
    off = np.load(Path(t.folder) / "offsets.npy")

    def seq(i):
        return np.ascontiguousarray(rows[off[i]:off[i + 1]])

    j = t.job
    sample_seqs = [seq(i) for i in j.sample.tolist()]
    return t.number, assign_block([seq(i) for i in t.idx.tolist()], sample_seqs,
                                  [sample_seqs[k] for k in j.medoids.tolist()], j.medoids,
                                  j.window, j.novelty_k, True, j.length_norm)


class _Distributed:
    """``assign_chunks`` for :func:`wsd.discovery.sampled.cluster_sampled` on local processes
    or Dask: the sequences go once to a scratch folder beside the output (every worker must
    see it), which the tasks memory-map; the folder is removed afterwards."""

    def __init__(self, seqs, workers: int, scheduler: str | None, scratch: Path):
        self.seqs, self.workers, self.scheduler, self.scratch = seqs, workers, scheduler, scratch

    def __call__(self, chunks: list, job) -> list:
        import shutil
        import tempfile

        from wsd.discovery.dtw import as_dtw_inputs
        from wsd.runtime.executor import run_tasks

        arrays, _ = as_dtw_inputs(self.seqs)
        folder = Path(tempfile.mkdtemp(prefix=".wsd-assign-", dir=self.scratch))
        try:
            np.save(folder / "rows.npy", np.concatenate(arrays))
            np.save(folder / "offsets.npy",
                    np.concatenate([[0], np.cumsum([len(a) for a in arrays])]))
            del arrays
            tasks = [AssignTask(str(folder), i, idx, job) for i, idx in enumerate(chunks)]
            done = dict(run_tasks(run_assign_task, tasks, workers=self.workers,
                                  scheduler=self.scheduler,
                                  preload=["wsd.pipeline.cluster", "wsd.discovery.sampled"]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return [done[i] for i in range(len(chunks))]
