"""Call sequences from window embeddings, and their agglomerative clustering by DTW.

Pure core of ``wsd cluster``: :func:`sequences_from_mask` (or :func:`sequences_per_file`)
cuts windows into call sequences; ``wsd.discovery.dtw.preprocess`` normalises the embeddings;
:func:`cluster_sequences` clusters the full DTW matrix (labels, medoids, silhouette,
novelty), :func:`cluster_sampled` a seeded sample, assigning every other sequence to its
nearest medoid (``wsd.discovery.dtw.assign``); :func:`label_metrics` compares clusters with known
labels. scipy and sklearn are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsd.discovery.dtw import (as_dtw_inputs, assign, check_memory, dtw_condensed, dtw_cross,
                     knn_from_cross, knn_novelty)
from wsd.errors import BadInputError, UsageError

METHODS = ("complete", "average", "single")


@dataclass(frozen=True)
class Sequences:
    """Call sequences as half-open window index ranges ``[start, stop)`` into the window arrays.

    Attributes (all ``(m,)``): ``start``, ``stop`` int64 window indices; ``source_id`` int64;
    ``start_s`` float64 start of the first window and ``end_s`` end of the last, in seconds
    from the start of the source.
    """

    start: np.ndarray
    stop: np.ndarray
    source_id: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    @property
    def lengths(self) -> np.ndarray:
        """``(m,)`` int64 number of windows per sequence."""
        return self.stop - self.start

    def subset(self, index) -> "Sequences":
        """The sequences at ``index`` (an index array or boolean mask)."""
        return Sequences(self.start[index], self.stop[index], self.source_id[index],
                         self.start_s[index], self.end_s[index])

    def arrays(self, x: np.ndarray) -> list[np.ndarray]:
        """Per-sequence row blocks of ``x`` ``(n_windows, D)``: views ``(len_i, D)``, no copies."""
        return [x[a:b] for a, b in zip(self.start.tolist(), self.stop.tolist())]


def _window_arrays(source_id, start_s, end_s, silent=None):
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, dtype=np.float64)
    end_s = np.asarray(end_s, dtype=np.float64)
    n = len(source_id)
    arrays = {"source_id": source_id, "start_s": start_s, "end_s": end_s}
    if silent is not None:
        arrays["silent"] = silent = np.asarray(silent, dtype=bool)
    for name, a in arrays.items():
        if a.shape != (n,):
            raise BadInputError(f"{name} has shape {a.shape}; expected ({n},) like source_id")
    return source_id, start_s, end_s, silent


def _make(start, stop, source_id, start_s, end_s) -> Sequences:
    start = np.asarray(start, dtype=np.int64)
    stop = np.asarray(stop, dtype=np.int64)
    return Sequences(start, stop, np.asarray(source_id[start], dtype=np.int64),
                     start_s[start].astype(np.float64), end_s[stop - 1].astype(np.float64))


def sequences_from_mask(source_id, start_s, end_s, silent=None, min_windows: int = 1,
                        max_windows: int | None = None,
                        max_gap_s: float | None = None) -> Sequences:
    """Runs of consecutive non-silent windows of one source, as call sequences.

    Window ``i`` continues the run of window ``i - 1`` when both are non-silent, they have the
    same source, ``start_s[i] > start_s[i-1]`` and, if ``max_gap_s`` is given,
    ``start_s[i] - end_s[i-1] <= max_gap_s``. So neighbours must be adjacent in the arrays
    (a silent window between them ends the run) *and* close in time (windows dropped from the
    arrays, e.g. by an earlier filter, end the run when they leave a gap over ``max_gap_s``).
    Overlapping windows have a negative gap and always continue.

    A run longer than ``max_windows`` is cut into ``ceil(len / max_windows)`` pieces of
    near-equal length (no short tail); then runs shorter than ``min_windows`` are dropped.

    Parameters
    ----------
    source_id, start_s, end_s : ``(n,)`` per window; windows in time order within a source.
    silent : ``(n,)`` bool, True for windows to leave out (None: no window is silent).
    min_windows : shortest sequence kept, >= 1.
    max_windows : longest sequence, >= min_windows (None: no limit).
    max_gap_s : largest silence in seconds between two windows of one run (None: no limit).

    Returns
    -------
    :class:`Sequences`, in window order.
    """
    source_id, start_s, end_s, silent = _window_arrays(source_id, start_s, end_s, silent)
    if int(min_windows) != min_windows or min_windows < 1:
        raise UsageError(f"min_windows must be a whole number >= 1, got {min_windows!r}")
    if max_windows is not None and (int(max_windows) != max_windows or max_windows < min_windows):
        raise UsageError(f"max_windows must be a whole number >= min_windows ({min_windows}), "
                         f"got {max_windows!r}")
    if max_gap_s is not None and not max_gap_s >= 0:
        raise UsageError(f"max_gap_s must be >= 0 seconds, got {max_gap_s!r}")
    n = len(source_id)
    keep = np.ones(n, dtype=bool) if silent is None else ~silent
    cont = np.zeros(n, dtype=bool)  # cont[i]: window i continues the run of window i - 1
    if n > 1:
        c = keep[1:] & keep[:-1] & (source_id[1:] == source_id[:-1]) & (start_s[1:] > start_s[:-1])
        if max_gap_s is not None:
            c &= (start_s[1:] - end_s[:-1]) <= max_gap_s
        cont[1:] = c
    starts = np.flatnonzero(keep & ~cont)
    ends = np.flatnonzero(keep & ~np.append(cont[1:], False)) + 1
    if max_windows is not None and len(starts):
        lengths = ends - starts
        pieces = -(-lengths // int(max_windows))
        run = np.repeat(np.arange(len(starts)), pieces)
        j = np.arange(len(run)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        p, L, s0 = pieces[run], lengths[run], starts[run]
        starts, ends = s0 + (j * L) // p, s0 + ((j + 1) * L) // p
    ok = (ends - starts) >= min_windows
    return _make(starts[ok], ends[ok], source_id, start_s, end_s)


def sequences_per_file(source_id, start_s, end_s) -> Sequences:
    """One sequence per source: all of its windows.

    Parameters
    ----------
    source_id, start_s, end_s : ``(n,)`` per window; each source's windows must be contiguous
        in the arrays and in time order.

    Returns
    -------
    :class:`Sequences`, one per source, in order of first appearance.
    """
    source_id, start_s, end_s, _ = _window_arrays(source_id, start_s, end_s)
    n = len(source_id)
    if n == 0:
        return _make(np.zeros(0, np.int64), np.zeros(0, np.int64), source_id, start_s, end_s)
    starts = np.flatnonzero(np.append(True, source_id[1:] != source_id[:-1]))
    if len(np.unique(source_id[starts])) != len(starts):
        raise BadInputError("a source's windows are not contiguous; sort the windows by source "
                            "and time first")
    ends = np.append(starts[1:], n)
    return _make(starts, ends, source_id, start_s, end_s)


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
                      parallel: bool = True, length_norm: str = "none") -> ClusterResult:
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

    Returns
    -------
    :class:`ClusterResult` with every sequence clustered.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    m = len(seqs)
    _check_cut(method, n_clusters, distance_threshold, m)
    check_memory(m, memory_limit)
    condensed = dtw_condensed(seqs, window=window, parallel=parallel, length_norm=length_norm)
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


def cluster_sampled(seqs, sample_size: int, seed: int = 0, method: str = "complete",
                    n_clusters: int | None = None, distance_threshold: float | None = None,
                    window: int | None = None, novelty_k: int | None = 5,
                    memory_limit: int | None = None, chunk_size: int = 1024,
                    parallel: bool = True, workers: int = 1, scheduler: str | None = None,
                    scratch=None, length_norm: str = "none") -> ClusterResult:
    """Cluster a seeded random sample fully, then give every other sequence its nearest medoid.

    Cost: ``N^2 / 2`` DTW pairs for the sample plus ``(m - N) * K`` for the assignment, linear
    in m. With novelty (``novelty_k``) each other sequence is compared with the whole sample
    instead (``(m - N) * N`` pairs): its novelty is its mean DTW distance to its k nearest
    sampled sequences (a sampled one's: to its k nearest *other* sampled ones). Set
    ``novelty_k=None`` for the cheap assignment. The others go in chunks of ``chunk_size``.

    Parameters as :func:`cluster_sequences`, plus ``sample_size`` N (>= 2; N >= m clusters all)
    and ``seed``. Returns a :class:`ClusterResult` whose ``clustered`` lists the sample; labels
    are renumbered by the clusters' sizes after assignment.

    ``workers`` > 1 (local processes) or ``scheduler`` (a Dask distributed address) spread the
    assignment chunks: the prepared sequences are written once to a folder made in
    ``scratch`` (default: the system's temporary folder; with Dask, a folder every worker can
    read) and each task memory-maps them. Each sequence's result does not depend on the
    chunking, so the outcome is identical to a single-process run.
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
    spread = workers > 1 or bool(scheduler)
    if spread:  # at least 4 chunks per worker (32 on Dask), for balance and retries
        chunk_size = min(chunk_size, max(1, -(-len(rest) // (4 * max(workers, 8)))))
    chunks = [rest[a:a + chunk_size] for a in range(0, len(rest), chunk_size)]
    if spread and len(chunks) > 1:
        results = _assign_distributed(seqs, sample, part.medoids, chunks, window, novelty_k,
                                      workers, scheduler, scratch, length_norm)
    else:
        results = [_assign_block([seqs[i] for i in idx.tolist()], sample_seqs, medoid_seqs,
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


def _assign_block(chunk, sample_seqs, medoid_seqs, medoids, window, novelty_k, parallel,
                  length_norm="none"):
    """(nearest medoid, its distance, novelty or None) of each sequence in ``chunk``."""
    if not novelty_k:
        return (*assign(chunk, medoid_seqs, window, parallel, length_norm), None)
    cross = dtw_cross(chunk, sample_seqs, window=window, parallel=parallel,
                      length_norm=length_norm)
    to_medoids = cross[:, medoids]
    return to_medoids.argmin(axis=1), to_medoids.min(axis=1), knn_from_cross(cross, novelty_k)


@dataclass(frozen=True)
class AssignTask:
    """One chunk of the ``--sample`` assignment, for a worker process or a Dask worker."""
    folder: str  # rows.npy (all sequences' rows, float64) and offsets.npy (m + 1,)
    number: int
    idx: np.ndarray  # the chunk's sequence indices
    sample: np.ndarray  # the clustered sample's sequence indices
    medoids: np.ndarray  # positions of the medoids within the sample
    window: int | None
    novelty_k: int | None
    length_norm: str = "none"


def run_assign_task(t: AssignTask) -> tuple:
    """(task number, (labels, distances, novelty)) of one :class:`AssignTask`."""
    from pathlib import Path

    rows = np.load(Path(t.folder) / "rows.npy", mmap_mode="r")
    off = np.load(Path(t.folder) / "offsets.npy")

    def seq(i):
        return np.ascontiguousarray(rows[off[i]:off[i + 1]])

    sample_seqs = [seq(i) for i in t.sample.tolist()]
    return t.number, _assign_block([seq(i) for i in t.idx.tolist()], sample_seqs,
                                   [sample_seqs[j] for j in t.medoids.tolist()], t.medoids,
                                   t.window, t.novelty_k, True, t.length_norm)


def _assign_distributed(seqs, sample, medoids, chunks, window, novelty_k, workers, scheduler,
                        scratch, length_norm="none") -> list:
    import shutil
    import tempfile
    from pathlib import Path

    from wsd.runtime.executor import run_tasks

    arrays, _ = as_dtw_inputs(seqs)
    folder = Path(tempfile.mkdtemp(prefix=".wsd-assign-", dir=scratch))
    try:
        np.save(folder / "rows.npy", np.concatenate(arrays))
        np.save(folder / "offsets.npy", np.concatenate([[0], np.cumsum([len(a) for a in arrays])]))
        del arrays
        tasks = [AssignTask(str(folder), i, idx, sample, medoids, window, novelty_k,
                            length_norm)
                 for i, idx in enumerate(chunks)]
        done = dict(run_tasks(run_assign_task, tasks, workers=workers, scheduler=scheduler,
                              preload=["wsd.discovery.clustering", "wsd.discovery.dtw"]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [done[i] for i in range(len(chunks))]


def sequence_labels(window_labels, seqs: Sequences) -> np.ndarray:
    """Each sequence's label: the most common non-empty label of its windows.

    Parameters
    ----------
    window_labels : ``(n,)`` strings, "" for an unlabelled window.
    seqs : sequences over those windows (non-overlapping).

    Returns
    -------
    ``(m,)`` str array; "" when none of a sequence's windows is labelled; ties go to the
    alphabetically first label.
    """
    window_labels = np.asarray(window_labels).astype(str)
    if len(seqs) and seqs.stop.max() > len(window_labels):
        raise BadInputError(f"{len(window_labels)} window labels for sequences up to window "
                            f"{seqs.stop.max()}")
    lengths = seqs.lengths
    seq_of = np.repeat(np.arange(len(seqs)), lengths)
    rows = np.arange(lengths.sum()) + np.repeat(seqs.start - (np.cumsum(lengths) - lengths),
                                                 lengths)
    names, code = np.unique(window_labels[rows], return_inverse=True)
    out = np.full(len(seqs), "", dtype=names.dtype if len(names) else str)
    labelled = names[code] != ""
    pairs, counts = np.unique(np.stack([seq_of[labelled], code[labelled]]), axis=1,
                              return_counts=True)
    if pairs.size:
        best = np.lexsort((pairs[1], -counts, pairs[0]))
        first = np.append(True, pairs[0][best][1:] != pairs[0][best][:-1])
        out[pairs[0][best][first]] = names[pairs[1][best][first]]
    return out


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
