"""Query by example on embeddings: pure functions, arrays in and arrays out.

Three ways to compare a query with an archive of window embeddings ``(n, D)``:

* **window**: one query window against every archive window by cosine similarity
  (:func:`cosine_topk`, exact and blocked so memory stays bounded);
* **pooled**: a multi-window query (a call of several windows) pooled into one vector, the
  mean and standard deviation of its windows and the means of its start, middle and end
  (:func:`pool`), against the same pooling of
  every stretch of the archive as long as the query (:func:`sliding_pooled`, computed from
  running sums in ``O(n D)``), or of every whole recording;
* **dtw**: the query's windows against every subsequence of each recording by subsequence
  DTW (:func:`subsequence_dtw`, dtaidistance's C library), so a 2 s call is found inside an
  hour wherever its timing stretches.

Scores are "higher is more similar": cosine similarity in [-1, 1] for the first two, and
``-d`` for DTW, ``d`` the DTW distance per query window (the root-mean-square difference
along the warping path).
"""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError, UsageError

#: Archive rows per block of the exact search (memory: BLOCK x queries floats).
BLOCK = 65536
METHODS = ("pooled", "dtw")


def normalise(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Rows of ``x`` ``(n, D)`` scaled to unit L2 norm (``dtype``, float32 by default; all-zero
    rows stay zero)."""
    x = np.asarray(x, dtype)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def cosine_topk(queries: np.ndarray, archive, k: int, block: int = BLOCK
                ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` archive rows by cosine similarity for each query.

    queries : ``(q, D)``; archive : ``(n, D)``, anything sliceable by rows (an HDF5
    dataset is read a block at a time). Returns ``index (q, k')`` int64 and
    ``score (q, k')`` float32, best first, ``k' = min(k, n)``."""
    qn = normalise(queries)
    n = archive.shape[0]
    k = min(int(k), n)
    if k < 1:
        raise UsageError("-k must be at least 1")
    best_s = np.full((len(qn), 0), -np.inf, np.float32)
    best_i = np.zeros((len(qn), 0), np.int64)
    for a in range(0, n, block):
        x = normalise(np.asarray(archive[a:a + block], np.float32))
        s = qn @ x.T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, part + a], axis=1)
        top = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, top, 1)
        best_i = np.take_along_axis(cand_i, top, 1)
    return best_i, best_s


#: Equal parts in time whose means are appended to a pooled sequence by default
#: (``--segments``): the start, middle and end of a call, so that pooling keeps its rough
#: contour. Chosen on both call-type sets with both kmeans encoders (benchmarks/README.md):
#: every metric at least that of the mean and std alone, most above it.
SEGMENTS = 3
#: The most parts ``--segments`` takes.
MAX_SEGMENTS = 16


def segment_bounds(length: int, segments: int) -> list[tuple[int, int]]:
    """Row ranges ``[a, b)`` of ``segments`` equal parts in time of a sequence of ``length``
    rows. Each part holds at least one row, so a sequence shorter than ``segments`` repeats
    rows rather than leaving a part empty."""
    out = []
    for i in range(segments):
        a = (i * length) // segments
        out.append((a, max(a + 1, -(-((i + 1) * length) // segments))))
    return out


def pool_weights(dim: int, segments: int = 0) -> np.ndarray:
    """Column weights of :func:`pool`'s vector for window embeddings of ``dim`` values: 1 on
    the mean and std, ``1 / sqrt(segments)`` on each part's mean, so that the parts together
    weigh as much as the mean does."""
    w = np.ones((2 + segments) * dim, np.float32)
    if segments:
        w[2 * dim:] = segments ** -0.5
    return w


def pool(x: np.ndarray, segments: int = 0) -> np.ndarray:
    """A sequence of window embeddings ``(L, D)`` pooled into one vector ``((2 + segments)
    D,)``: the mean and standard deviation over its windows, then the mean of each of
    ``segments`` equal parts in time (:func:`segment_bounds`), unweighted (see
    :func:`pool_weights`)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise BadInputError(f"a sequence must be (windows, dim) with >= 1 window, got {x.shape}")
    parts = [x[a:b].mean(0) for a, b in segment_bounds(len(x), segments)]
    return np.concatenate([x.mean(0), x.std(0), *parts]).astype(np.float32)


def sliding_pooled(x: np.ndarray, length: int, segments: int = 0) -> np.ndarray:
    """:func:`pool` of every run of ``length`` consecutive rows of ``x`` ``(n, D)``:
    ``(n - length + 1, (2 + segments) D)`` float32 (one row per start), from running sums."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if length > n:
        return np.zeros((0, (2 + segments) * x.shape[1]), np.float32)
    c1 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, 0)])
    c2 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x * x, 0)])
    s1 = c1[length:] - c1[:-length]
    s2 = c2[length:] - c2[:-length]
    mean = s1 / length
    var = np.maximum(s2 / length - mean * mean, 0.0)
    starts = np.arange(n - length + 1)
    parts = [(c1[starts + b] - c1[starts + a]) / (b - a)
             for a, b in segment_bounds(length, segments)]
    return np.concatenate([mean, np.sqrt(var), *parts], axis=1).astype(np.float32)


def best_segments(score: np.ndarray, length: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` start positions of non-overlapping segments of ``length`` rows with the
    highest ``score`` ``(m,)`` (one per start), best first: greedy, each pick masking the
    starts whose segment would overlap it. Returns ``(starts, scores)``."""
    score = np.asarray(score, np.float64).copy()
    starts, vals = [], []
    while len(starts) < k and len(score) and np.isfinite(score).any():
        i = int(np.nanargmax(np.where(np.isfinite(score), score, -np.inf)))
        starts.append(i)
        vals.append(score[i])
        score[max(0, i - length + 1): i + length] = -np.inf
    return np.asarray(starts, np.int64), np.asarray(vals, np.float32)


def subsequence_dtw(query: np.ndarray, series: np.ndarray, k: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best non-overlapping matches of ``query`` ``(L, D)`` inside ``series``
    ``(n, D)`` by subsequence DTW (dtaidistance, C), each between L/2 and 2L windows long
    (shorter matches would win on fewer cells, not on likeness). Returns ``(start, stop, score)``:
    row ranges ``[start, stop)`` of ``series`` and ``-distance / L`` (higher is more
    similar), best first."""
    from dtaidistance.subsequence.dtw import subsequence_alignment

    q = np.ascontiguousarray(query, np.float64)
    s = np.ascontiguousarray(series, np.float64)
    if len(s) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    sa = subsequence_alignment(q, s, use_c=True)
    starts, stops, scores = [], [], []
    L = len(q)
    for m in sa.kbest_matches(k=k, overlap=0, minlength=max(1, (L + 1) // 2),
                              maxlength=2 * L) or []:
        a, b = (int(v) for v in m.segment)
        starts.append(a)
        stops.append(b + 1)
        scores.append(-float(m.value) / len(q))
    return (np.asarray(starts, np.int64), np.asarray(stops, np.int64),
            np.asarray(scores, np.float32))


def uncertainty_topk(p: np.ndarray, k: int, source_id: np.ndarray | None = None,
                     start_s: np.ndarray | None = None, end_s: np.ndarray | None = None,
                     skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows whose probability ``p`` ``(n,)`` is nearest the decision boundary
    (0.5), nearest first (active learning: what to review next). Returns ``(index,
    score)`` with ``score = 1 - 2 |p - 0.5|`` (1 on the boundary).

    With ``source_id``, ``start_s`` and ``end_s`` (the rows' recordings and spans) the picks
    are diverse: a row overlapping in time a row already picked from its recording is passed
    over (neighbouring windows share most of their sound, and reviewing one says the most
    about the others). ``skip`` (bool ``(n,)``): rows never picked (reviewed already)."""
    p = np.asarray(p, np.float64)
    score = 1.0 - 2.0 * np.abs(p - 0.5)
    if skip is not None:
        score = np.where(np.asarray(skip, bool), -np.inf, score)
    k = min(int(k), int(np.isfinite(score).sum()))
    if source_id is None:
        idx = np.argsort(-score, kind="stable")[:k]
        return idx.astype(np.int64), score[idx].astype(np.float32)
    order = np.argsort(-score, kind="stable")
    picked: list[int] = []
    spans: dict[int, list[tuple[float, float]]] = {}
    for i in order:
        if len(picked) == k or not np.isfinite(score[i]):
            break
        s, a, b = int(source_id[i]), float(start_s[i]), float(end_s[i])
        if any(a < y and x < b for x, y in spans.get(s, [])):
            continue
        spans.setdefault(s, []).append((a, b))
        picked.append(int(i))
    idx = np.asarray(picked, np.int64)
    return idx, score[idx].astype(np.float32)
