"""Clustering an archive too large for a full DTW matrix: a seeded sample is clustered
fully (:func:`wsd.discovery.agglomerative.cluster_sequences`), then every other sequence is
assigned to its nearest medoid in chunks (linear cost). The chunks can be spread over
processes or a Dask cluster by the caller (``assign_chunks``, :mod:`wsd.pipeline.cluster`):
each sequence's result does not depend on the chunking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsd.discovery.agglomerative import ClusterResult, _by_size, cluster_sequences
from wsd.discovery.dtw import as_dtw_inputs, assign, dtw_cross
from wsd.discovery.novelty import knn_from_cross
from wsd.errors import UsageError

#: Sequences per assignment chunk.
CHUNK_SEQUENCES = 1024


def cluster_sampled(seqs, sample_size: int, seed: int = 0, method: str = "complete",
                    n_clusters: int | None = None, distance_threshold: float | None = None,
                    window: int | None = None, novelty_k: int | None = 5,
                    memory_limit: int | None = None, chunk_size: int = CHUNK_SEQUENCES,
                    parallel: bool = True, assign_chunks=None, spread: int = 0,
                    length_norm: str = "none") -> ClusterResult:
    """Cluster a seeded random sample fully, then give every other sequence its nearest medoid.

    Cost: ``N^2 / 2`` DTW pairs for the sample plus ``(m - N) * K`` for the assignment, linear
    in m. With novelty (``novelty_k``) each other sequence is compared with the whole sample
    instead (``(m - N) * N`` pairs): its novelty is its mean DTW distance to its k nearest
    sampled sequences (a sampled one's: to its k nearest *other* sampled ones). Set
    ``novelty_k=None`` for the cheap assignment. The others go in chunks of ``chunk_size``.

    Parameters as :func:`cluster_sequences`, plus ``sample_size`` N (>= 2; N >= m clusters all)
    and ``seed``. Returns a :class:`ClusterResult` whose ``clustered`` lists the sample; labels
    are renumbered by the clusters' sizes after assignment.

    ``assign_chunks(chunks, job)``, when given, computes :func:`assign_block` for every chunk
    of sequence indices (``job``: an :class:`AssignJob`, the sample and medoids) and returns
    the results in chunk order; the coordinator spreads them over processes or a Dask
    cluster (``spread``: how many workers, for at least 4 chunks each). Each sequence's
    result does not depend on the chunking, so the outcome is the same as in-process.
    """
    m = len(seqs)
    if int(sample_size) != sample_size or sample_size < 2:
        raise UsageError(f"sample size must be a whole number >= 2, got {sample_size!r}")
    if sample_size >= m:
        return cluster_sequences(seqs, method, n_clusters, distance_threshold, window,
                                 novelty_k, memory_limit, parallel, length_norm)
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise UsageError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    sample = np.sort(np.random.default_rng(seed).choice(m, size=int(sample_size), replace=False))
    sample_seqs = as_dtw_inputs([seqs[i] for i in sample.tolist()])[0]  # converted once
    part = cluster_sequences(sample_seqs, method, n_clusters, distance_threshold, window,
                             novelty_k, memory_limit, parallel, length_norm)
    labels = np.empty(m, dtype=np.int64)
    medoid_distance = np.empty(m)
    novelty = np.empty(m) if novelty_k else None
    labels[sample], medoid_distance[sample] = part.labels, part.medoid_distance
    if novelty is not None:
        novelty[sample] = part.novelty
    medoid_seqs = [sample_seqs[j] for j in part.medoids.tolist()]
    rest = np.setdiff1d(np.arange(m), sample)
    if assign_chunks is not None:  # at least 4 chunks per worker, for balance and retries
        chunk_size = min(chunk_size, max(1, -(-len(rest) // (4 * max(spread, 8)))))
    chunks = [rest[a:a + chunk_size] for a in range(0, len(rest), chunk_size)]
    if assign_chunks is not None and len(chunks) > 1:
        job = AssignJob(sample, part.medoids, window, novelty_k, length_norm)
        results = assign_chunks(chunks, job)
    else:
        results = [assign_block([seqs[i] for i in idx.tolist()], sample_seqs, medoid_seqs,
                                part.medoids, window, novelty_k, parallel, length_norm)
                   for idx in chunks]
    for idx, (lab, dist, nov) in zip(chunks, results):
        labels[idx], medoid_distance[idx] = lab, dist
        if novelty is not None:
            novelty[idx] = nov
    final = _by_size(labels)
    order = np.empty(len(part.medoids), dtype=np.int64)
    order[final[sample[part.medoids]]] = np.arange(len(part.medoids))
    return ClusterResult(labels=final, medoids=sample[part.medoids][order],
                         medoid_distance=medoid_distance, clustered=sample, linkage=part.linkage,
                         distance=part.distance, silhouette=part.silhouette, novelty=novelty)


def assign_block(chunk, sample_seqs, medoid_seqs, medoids, window, novelty_k, parallel,
                  length_norm="none"):
    """(nearest medoid, its distance, novelty or None) of each sequence in ``chunk``."""
    if not novelty_k:
        return (*assign(chunk, medoid_seqs, window, parallel, length_norm), None)
    cross = dtw_cross(chunk, sample_seqs, window=window, parallel=parallel,
                      length_norm=length_norm)
    to_medoids = cross[:, medoids]
    return to_medoids.argmin(axis=1), to_medoids.min(axis=1), knn_from_cross(cross, novelty_k)


@dataclass(frozen=True)
class AssignJob:
    """What every assignment chunk shares: the clustered sample's sequence indices, the
    medoids' positions within it, and the DTW settings."""

    sample: np.ndarray
    medoids: np.ndarray
    window: int | None
    novelty_k: int | None
    length_norm: str = "none"
