"""Agreement of clusters with known labels: ARI, NMI, purity, and leave-one-out
1-nearest-neighbour accuracy from a distance matrix (scikit-learn)."""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError


def label_metrics(true_labels, labels, distance: np.ndarray | None = None,
                  clustered: np.ndarray | None = None, chunk: int = 1024) -> dict:
    """Agreement of clusters with known labels, over the labelled sequences only.

    Parameters
    ----------
    true_labels : ``(m,)`` strings, "" for unlabelled sequences.
    labels : ``(m,)`` cluster ids.
    distance : ``(N, N)`` DTW matrix of the sequences ``clustered`` ``(N,)`` (default: all m),
        for leave-one-out 1-nearest-neighbour accuracy (None: skipped).

    Returns
    -------
    dict: ``n_labelled``, ``n_classes``, ``ari`` (adjusted Rand index), ``nmi`` (normalised
    mutual information), ``purity`` (share of labelled sequences in their cluster's most
    common class), ``knn1_accuracy`` (share of labelled clustered sequences whose nearest
    other labelled clustered sequence has the same label) and ``knn1_n`` (how many were
    scored). A metric that cannot be computed (no labels; 1-NN with < 2) is None.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.metrics.cluster import contingency_matrix

    true = np.asarray(true_labels).astype(str)
    labels = np.asarray(labels)
    if true.shape != labels.shape:
        raise BadInputError(f"{len(true)} true labels for {len(labels)} cluster labels")
    has = true != ""
    t, p = true[has], labels[has]
    out = {"n_labelled": int(has.sum()), "n_classes": len(np.unique(t)), "ari": None,
           "nmi": None, "purity": None, "knn1_accuracy": None, "knn1_n": 0}
    if has.any():
        out["ari"] = float(adjusted_rand_score(t, p))
        out["nmi"] = float(normalized_mutual_info_score(t, p))
        table = contingency_matrix(t, p)  # (classes, clusters)
        out["purity"] = float(table.max(axis=0).sum() / len(t))
    if distance is not None:
        clustered = np.arange(len(true)) if clustered is None else np.asarray(clustered)
        pos = np.flatnonzero(has[clustered])
        if len(pos) >= 2:
            hits = 0
            for a in range(0, len(pos), chunk):
                block = np.array(distance[np.ix_(pos[a:a + chunk], pos)], dtype=np.float64)
                block[np.arange(len(block)), np.arange(a, a + len(block))] = np.inf
                nearest = pos[block.argmin(axis=1)]
                hits += int((true[clustered[nearest]] == true[clustered[pos[a:a + chunk]]]).sum())
            out["knn1_accuracy"] = hits / len(pos)
            out["knn1_n"] = int(len(pos))
    return out
