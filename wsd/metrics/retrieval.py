"""How well a distance matrix between items (clips, sequences) recovers their labels:
leave-one-out 1-nearest-neighbour accuracy, query-by-example mean average precision, and
the agreement of a hierarchical clustering cut at K (scikit-learn and scipy)."""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError


def _check(distance: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distance, np.float64)
    y = np.asarray(labels).astype(str)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] != len(y):
        raise BadInputError(f"distance {d.shape} and labels ({len(y)},) do not match")
    return d, y


def repeated(labels: np.ndarray, min_count: int = 2) -> np.ndarray:
    """Mask of the items whose label occurs at least ``min_count`` times (a singleton can
    never find its own kind)."""
    y = np.asarray(labels).astype(str)
    names, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    return counts[inv] >= min_count


def knn1_accuracy(distance: np.ndarray, labels: np.ndarray, among: np.ndarray | None = None
                  ) -> float:
    """Leave-one-out 1-NN accuracy: the share of items (``among``: a mask of the items
    scored, default all) whose nearest other item has the same label (sklearn's
    NearestNeighbors on the precomputed matrix, which leaves each item out of its own
    neighbours)."""
    from sklearn.neighbors import NearestNeighbors

    d, y = _check(distance, labels)
    nn = NearestNeighbors(n_neighbors=1, metric="precomputed").fit(d)
    _, idx = nn.kneighbors()
    hit = y[idx[:, 0]] == y
    among = np.ones(len(y), bool) if among is None else np.asarray(among, bool)
    return float(hit[among].mean()) if among.any() else float("nan")


def mean_average_precision(distance: np.ndarray, labels: np.ndarray,
                           among: np.ndarray | None = None) -> float:
    """Query by example: each item of ``among`` (default: those with a repeated label)
    ranks all others by distance; the average precision of its same-label items
    (sklearn), averaged over queries."""
    from sklearn.metrics import average_precision_score

    d, y = _check(distance, labels)
    among = repeated(y) if among is None else np.asarray(among, bool)
    aps = []
    for i in np.flatnonzero(among):
        others = np.arange(len(y)) != i
        rel = (y[others] == y[i]).astype(int)
        if rel.any():
            aps.append(average_precision_score(rel, -d[i, others]))
    return float(np.mean(aps)) if aps else float("nan")


def cut_clusters(distance: np.ndarray, k: int, method: str = "ward") -> np.ndarray:
    """Agglomerative clustering of a distance matrix (scipy linkage) cut into ``k``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    d = np.asarray(distance, np.float64)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    z = linkage(squareform(d, checks=False), method=method)
    return fcluster(z, t=int(k), criterion="maxclust")


def retrieval_metrics(distance: np.ndarray, labels: np.ndarray, method: str = "ward",
                      cosine: bool = False) -> dict:
    """1-NN (over items with a repeated label, and over all), mAP, and the ARI and NMI of
    the clustering cut at K = the number of labels (``cosine``: Ward on the chord distance
    ``sqrt(2 d)``, i.e. on L2-normalised vectors)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    d, y = _check(distance, labels)
    k = len(np.unique(y))
    cl = cut_clusters(np.sqrt(2 * np.clip(d, 0, None)) if cosine else d, k, method)
    return {"knn1": knn1_accuracy(d, y, repeated(y)), "knn1_all": knn1_accuracy(d, y),
            "map": mean_average_precision(d, y), "ari": float(adjusted_rand_score(y, cl)),
            "nmi": float(normalized_mutual_info_score(y, cl)), "n": int(len(y)), "k": int(k)}
