"""Novelty of sequences: the mean DTW distance to their k nearest neighbours, so that rare
sounds can be heard first."""

from __future__ import annotations

import numpy as np

from wsd.errors import UsageError


def knn_novelty(distance: np.ndarray, k: int = 5, chunk: int = 1024) -> np.ndarray:
    """Mean DTW distance of each sequence to its ``k`` nearest other sequences.

    Parameters
    ----------
    distance : ``(m, m)`` symmetric DTW matrix (the diagonal is ignored).
    k : neighbours, >= 1; lowered to ``m - 1`` when fewer sequences exist.

    Returns
    -------
    ``(m,)`` float64; NaN when m < 2. Higher is more unusual.
    """
    distance = np.asarray(distance)
    m = len(distance)
    if int(k) != k or k < 1:
        raise UsageError(f"novelty k must be a whole number >= 1, got {k!r}")
    if m < 2:
        return np.full(m, np.nan)
    k = min(int(k), m - 1)
    out = np.empty(m)
    for a in range(0, m, chunk):
        rows = np.array(distance[a:a + chunk], dtype=np.float64)
        rows[np.arange(len(rows)), np.arange(a, a + len(rows))] = np.inf
        out[a:a + len(rows)] = knn_from_cross(rows, k)
    return out


def knn_from_cross(cross: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean of the ``k`` smallest distances per row of ``cross`` ``(m, N)`` (k lowered to N).

    Returns ``(m,)`` float64. Used for novelty against a reference set (the clustered sample).
    """
    cross = np.asarray(cross, dtype=np.float64)
    k = min(int(k), cross.shape[1])
    if k < 1:
        return np.full(len(cross), np.nan)
    return np.partition(cross, k - 1, axis=1)[:, :k].mean(axis=1)
