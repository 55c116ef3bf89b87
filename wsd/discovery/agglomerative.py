"""Agglomerative clustering of sequences on their full DTW distance matrix: labels by
cluster size, medoids, silhouette and novelty (scipy's linkage; sklearn's silhouette)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsd.discovery.cost import check_memory
from wsd.discovery.dtw import dtw_condensed
from wsd.discovery.novelty import knn_novelty
from wsd.errors import BadInputError, UsageError

#: Linkages: scipy's. ``ward`` on a DTW matrix is Ward's criterion applied to non-Euclidean
#: distances (the Lance-Williams update): not a variance decomposition, but it measured best
#: at recovering call types (benchmarks/quality.py), where complete and average chain.
METHODS = ("ward", "complete", "average", "single")


@dataclass(frozen=True)
class ClusterResult:
    """Outcome of a DTW clustering of m sequences, N of them clustered (N = m without sampling).

    Attributes
    ----------
    labels : ``(m,)`` int64 cluster 0..K-1, 0 the largest (ties: the one seen first).
    medoids : ``(K,)`` int64 sequence index of each cluster's medoid (the clustered member with
        the least summed DTW distance to the cluster's other clustered members).
    medoid_distance : ``(m,)`` float64 DTW distance of each sequence to its cluster's medoid.
    clustered : ``(N,)`` int64 indices of the clustered sequences, ascending; they are the
        leaves of ``linkage`` and the rows of ``distance``.
    linkage : ``(N - 1, 4)`` float64 scipy linkage matrix (heights are DTW distances).
    distance : ``(N, N)`` float64 DTW matrix of the clustered sequences.
    silhouette : mean silhouette of the clustered sequences; None when K < 2 or K == N.
    novelty : ``(m,)`` float64 mean DTW distance to the k nearest clustered sequences (the
        sequence itself excluded), or None when not asked for.
    """

    labels: np.ndarray
    medoids: np.ndarray
    medoid_distance: np.ndarray
    clustered: np.ndarray
    linkage: np.ndarray
    distance: np.ndarray
    silhouette: float | None
    novelty: np.ndarray | None

    @property
    def sampled(self) -> np.ndarray:
        """``(m,)`` bool: True for the sequences that were clustered."""
        mask = np.zeros(len(self.labels), dtype=bool)
        mask[self.clustered] = True
        return mask


def _check_cut(method: str, n_clusters, distance_threshold, n: int) -> None:
    if method not in METHODS:
        raise UsageError(f"unknown linkage {method!r}; choose from {', '.join(METHODS)}")
    if (n_clusters is None) == (distance_threshold is None):
        raise UsageError("give exactly one of n_clusters and distance_threshold")
    if n_clusters is not None and (int(n_clusters) != n_clusters or not 1 <= n_clusters <= n):
        raise UsageError(f"n_clusters must be between 1 and the {n:,} sequences clustered, "
                         f"got {n_clusters!r}")
    if distance_threshold is not None and not distance_threshold >= 0:
        raise UsageError(f"distance_threshold must be >= 0, got {distance_threshold!r}")
    if n < 2:
        raise BadInputError(f"clustering needs at least 2 sequences, got {n}")


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel ``(m,)`` ints to 0..K-1 by decreasing size, ties by first appearance."""
    _, first, inverse, counts = np.unique(labels, return_index=True, return_inverse=True,
                                          return_counts=True)
    order = np.lexsort((first, -counts))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)]


def medoids_of(distance: np.ndarray, labels: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``(K,)`` int64 row in ``distance`` ``(N, N)`` of each cluster's medoid, for ``labels``
    ``(N,)`` 0..K-1: the member with the least summed distance to the others (first on ties)."""
    k = int(labels.max()) + 1
    medoids = np.empty(k, dtype=np.int64)
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        sums = np.concatenate([distance[np.ix_(idx[a:a + chunk], idx)].sum(axis=1)
                               for a in range(0, len(idx), chunk)])
        medoids[c] = idx[np.argmin(sums)]
    return medoids


def cluster_sequences(seqs, method: str = "complete", n_clusters: int | None = None,
                      distance_threshold: float | None = None, window: int | None = None,
                      novelty_k: int | None = 5, memory_limit: int | None = None,
                      parallel: bool = True, length_norm: str = "none",
                      rerank: str = "none") -> ClusterResult:
    """Agglomerative clustering of all sequences on their full DTW distance matrix.

    Parameters
    ----------
    seqs : m >= 2 sequences, each ``(len_i, D)`` (e.g. ``Sequences.arrays(x)``).
    method : scipy linkage: "complete", "average" or "single".
    n_clusters : cut the tree into at most this many clusters (fcluster "maxclust"; fewer
        when heights tie) ...
    distance_threshold : ... or where merges are higher than this DTW distance ("distance").
    window : DTW band in windows (None: none).
    novelty_k : neighbours for novelty (None or 0: no novelty).
    memory_limit : bytes allowed for the matrices (None: a quarter of RAM); over it
        ``wsd.discovery.dtw.MatrixTooLargeError`` is raised before any DTW is computed.
    length_norm : "none" or "sqrt" (distances divided by sqrt(len_a + len_b), see
        ``wsd.discovery.dtw.dtw_condensed``).
    rerank : "none", "mp" or "mp+qe": the matrix re-ranked before linkage
        (:func:`wsd.discovery.rerank.rerank`).

    Returns
    -------
    :class:`ClusterResult` with every sequence clustered.
    """
    m = len(seqs)
    _check_cut(method, n_clusters, distance_threshold, m)
    check_memory(m, memory_limit)
    condensed = dtw_condensed(seqs, window=window, parallel=parallel, length_norm=length_norm)
    return cluster_condensed(condensed, method, n_clusters, distance_threshold, novelty_k,
                             rerank=rerank)


def cluster_condensed(condensed: np.ndarray, method: str = "complete",
                      n_clusters: int | None = None, distance_threshold: float | None = None,
                      novelty_k: int | None = 5, rerank: str = "none") -> ClusterResult:
    """:func:`cluster_sequences` on a condensed distance matrix already computed (scipy's
    ``pdist`` order; any distance >= 0, e.g. ``wsd cluster --distance fused``). With
    ``rerank`` other than "none" the matrix is re-ranked first
    (:func:`wsd.discovery.rerank.rerank`) and everything after (linkage, medoids,
    silhouette, novelty, the returned ``distance``) uses the re-ranked one."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    condensed = np.asarray(condensed, np.float64)
    m = int(round((1 + np.sqrt(1 + 8 * len(condensed))) / 2))
    _check_cut(method, n_clusters, distance_threshold, m)
    if rerank != "none":
        from wsd.discovery.rerank import rerank_inplace

        square = squareform(condensed, checks=False)
        if not np.all(np.isfinite(square)):
            raise BadInputError("the distance matrix holds NaN or infinite values")
        rerank_inplace(square, rerank)
        condensed = squareform(square, checks=False)
        del square
    z = linkage(condensed, method=method)
    if n_clusters is not None:
        raw = fcluster(z, t=int(n_clusters), criterion="maxclust")
    else:
        raw = fcluster(z, t=float(distance_threshold), criterion="distance")
    labels = _by_size(raw)
    distance = squareform(condensed, checks=False)
    del condensed
    medoids = medoids_of(distance, labels)
    silhouette = None
    if 2 <= len(medoids) < m:
        from sklearn.metrics import silhouette_score

        silhouette = float(silhouette_score(distance, labels, metric="precomputed"))
    novelty = knn_novelty(distance, novelty_k) if novelty_k else None
    return ClusterResult(labels=labels, medoids=medoids,
                         medoid_distance=distance[medoids[labels], np.arange(m)],
                         clustered=np.arange(m, dtype=np.int64), linkage=z, distance=distance,
                         silhouette=silhouette, novelty=novelty)
