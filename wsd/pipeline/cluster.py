"""Coordinator of ``wsd cluster``: embeddings (and a silence mask) in, a clusters file out."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsd.errors import BadInputError, UsageError

#: Store the clustered sequences' DTW matrix in the output up to this many sequences.
STORE_MATRIX_MAX = 3000


@dataclass(frozen=True)
class ClusterParams:
    mask: str | None = None
    per_file: bool = False
    min_windows: int = 1
    max_windows: int | None = None
    window: int | None = None
    length_norm: str = "none"
    normalize: str = "none"
    pca: int | None = None
    linkage: str = "complete"
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


def _silent_mask(det, emb) -> np.ndarray:
    """Per-window silence from a detections file aligned with the embeddings' windows."""
    if det.kind != "detections":
        raise BadInputError(f"is a {det.kind} file; --mask takes detections", det.path)
    if det.n != emb.n or not np.array_equal(det.read("start_s"), emb.read("start_s")) or \
            list(det.sources["path"]) != list(emb.sources["path"]):
        raise BadInputError(f"detections do not match the windows of {emb.path} (made from "
                            "another windows file?)", det.path)
    return ~det.read("positive").astype(bool)


def run_cluster(emb_path: str, p: ClusterParams, out, history: list[str], *, force: bool,
                report) -> dict:
    from wsd.discovery import clustering as C
    from wsd.discovery import dtw
    from wsd.io.store import atomic_output, open_file
    from wsd.io.store.rows import RowWriter

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
        sources, spec = e.sources, e.spectrogram
        hist = list(dict.fromkeys(e.history)) + history
    if p.per_file:
        seqs = C.sequences_per_file(sid, st, en)
    else:
        seqs = C.sequences_from_mask(sid, st, en, silent, min_windows=p.min_windows,
                                     max_windows=p.max_windows)
    m = len(seqs)
    if m < 2:
        raise BadInputError(f"only {m} sequence(s) to cluster (is the mask all silence?)",
                            emb_path)
    x = dtw.preprocess(emb, p.normalize, p.pca, seed=p.seed)
    arrays = seqs.arrays(x)
    limit = int(p.memory_gb * 1e9) if p.memory_gb else None
    n_clu = m if not p.sample else min(m, p.sample)
    nbytes, secs = dtw.estimate_cost(n_clu, seqs.lengths, x.shape[1], p.window)
    report.note(f"{m} sequences of {seqs.lengths.min()}-{seqs.lengths.max()} windows, "
                f"{x.shape[1]}-d; DTW matrix of {n_clu} sequences: about {nbytes / 1e6:.0f} MB,"
                f" {secs:.0f} s (dtaidistance C library"
                f"{', OpenMP' if dtw.openmp_available() else ', no OpenMP: serial'})")
    kw = {"method": p.linkage, "n_clusters": p.n_clusters, "distance_threshold": p.threshold,
          "window": p.window, "novelty_k": p.novelty_k or None, "memory_limit": limit,
          "length_norm": p.length_norm}
    if p.sample and p.sample < m:
        res = C.cluster_sampled(arrays, p.sample, seed=p.seed, workers=p.workers,
                                scheduler=p.scheduler, scratch=Path(out).resolve().parent,
                                **kw)
    else:
        res = C.cluster_sequences(arrays, **kw)
    seq_labels = C.sequence_labels(labels, seqs) if labels is not None else None
    metrics = None
    if seq_labels is not None and (seq_labels != "").any():
        metrics = C.label_metrics(seq_labels, res.labels, res.distance, res.clustered)
    k = int(res.labels.max()) + 1
    params = {**dataclasses.asdict(p), "embeddings": emb_path}
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
    return {"n_sequences": m, "n_clusters": k, "silhouette": res.silhouette,
            "metrics": metrics}
