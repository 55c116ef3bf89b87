"""Numbers behind the report's figures: projections, dense regions, neighbour accuracy,
spectrograms stitched from windows, and the choice of what to show. Arrays in, arrays out.

sklearn and scipy are imported inside the functions.
"""

from __future__ import annotations

import numpy as np

from wsd.errors import UsageError

PROJECTIONS = ("pca", "tsne")


def project_2d(x: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, dict]:
    """2-D map of vectors ``x`` ``(n, D)`` -> ``(n, 2)`` float64 and facts about it.

    ``pca``: sklearn PCA (the dict holds ``explained_variance_ratio`` of the two axes);
    ``tsne``: sklearn t-SNE initialised with PCA, perplexity ``min(30, (n - 1) / 3)``,
    seeded. Fewer than 3 points, or a single dimension, are laid out as they are.
    """
    if method not in PROJECTIONS:
        raise UsageError(f"unknown projection {method!r}; choose from {', '.join(PROJECTIONS)}")
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 3 or x.shape[1] < 2:
        out = np.zeros((n, 2))
        out[:, : min(2, x.shape[1])] = x[:, :2]
        return out, {"method": "none"}
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed)
        xy = pca.fit_transform(x)
        return xy, {"method": "pca",
                    "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_]}
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(1.0, (n - 1) / 3.0)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    return np.asarray(xy, dtype=np.float64), {"method": "tsne", "perplexity": perplexity}


def dense_regions(xy: np.ndarray, k: int = 2, share: float = 0.2, bins: int = 48,
                  min_points: int = 30, max_area: float = 0.25
                  ) -> list[tuple[float, float, float, float]]:
    """Boxes ``(x0, x1, y0, y1)`` around the ``k`` densest parts of a 2-D map ``xy`` ``(n, 2)``.

    The density is a Gaussian-smoothed 2-D histogram; around its highest peak the box holds
    the ``share`` of all points nearest to the peak (their 2nd to 98th percentiles, padded by
    5%). The points in a box are then set aside and the next peak is taken. A box that
    overlaps an earlier one or covers more than ``max_area`` of the map (nothing to zoom
    into) is not kept. Fewer than ``min_points`` points give no boxes.
    """
    from scipy import ndimage

    xy = np.asarray(xy, dtype=np.float64)
    left = np.ones(len(xy), dtype=bool)
    boxes: list[tuple[float, float, float, float]] = []
    if len(xy) < min_points:
        return boxes
    span = np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    take = max(5, int(round(share * len(xy))))
    for _ in range(3 * k):
        pts = xy[left]
        if len(boxes) == k or len(pts) < max(min_points // 2, 5):
            break
        h, ex, ey = np.histogram2d(pts[:, 0], pts[:, 1], bins=bins)
        h = ndimage.gaussian_filter(h, sigma=1.5)
        i, j = np.unravel_index(int(np.argmax(h)), h.shape)
        peak = np.array([(ex[i] + ex[i + 1]) / 2, (ey[j] + ey[j + 1]) / 2])
        d = np.hypot(*((pts - peak) / span).T)
        near = np.argsort(d, kind="stable")[: min(take, len(pts))]
        lo = np.percentile(pts[near], 2, axis=0)
        hi = np.percentile(pts[near], 98, axis=0)
        pad = np.maximum(0.05 * (hi - lo), 0.01 * span)
        lo, hi = lo - pad, hi + pad
        left &= ~np.all((xy >= lo) & (xy <= hi), axis=1)
        overlaps = any(lo[0] < b[1] and hi[0] > b[0] and lo[1] < b[3] and hi[1] > b[2]
                       for b in boxes)
        if overlaps or np.prod((hi - lo) / span) > max_area:
            continue
        boxes.append((float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])))
    return boxes


def knn_accuracy(x: np.ndarray, labels: np.ndarray, k: int = 5) -> dict:
    """Leave-one-out k-nearest-neighbour accuracy of labels in the space ``x`` ``(n, D)``.

    Only rows with a non-empty label count, as queries and as neighbours; the vote is the
    most common label among the k nearest other rows (Euclidean), ties to the nearest of the
    tied labels. Returns ``{"k", "n", "accuracy"}`` (accuracy None with fewer than k + 1
    labelled rows).
    """
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels).astype(str)
    has = labels != ""
    xs, ys = np.asarray(x, dtype=np.float64)[has], labels[has]
    out = {"k": int(k), "n": int(has.sum()), "accuracy": None}
    if len(ys) <= k:
        return out
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(xs).kneighbors(xs)
    hits = 0
    for i, row in enumerate(idx):
        nb = [j for j in row if j != i][:k]
        votes: dict[str, int] = {}
        for j in nb:
            votes[ys[j]] = votes.get(ys[j], 0) + 1
        top = max(votes.values())
        pred = next(ys[j] for j in nb if votes[ys[j]] == top)
        hits += pred == ys[i]
    out["accuracy"] = hits / len(ys)
    return out


def stitch(windows: np.ndarray, start_s: np.ndarray, hop_s: float, t0: float,
           t1: float) -> np.ndarray:
    """Frames of windows laid on one time grid: a spectrogram image of ``[t0, t1)``.

    Parameters
    ----------
    windows : ``(n, frames, bins)`` dB, windows of one recording; frame ``i`` of window ``w``
        starts at ``start_s[w] + i * hop_s`` seconds.
    t0, t1 : seconds; column ``c`` of the result holds the frame starting nearest to
        ``t0 + c * hop_s``.

    Returns
    -------
    ``(ceil((t1 - t0) / hop_s), bins)`` float32, NaN where no window has a frame (dropped
    silence, the end of the file). Overlapping windows hold the same frames; later ones win.
    """
    windows = np.asarray(windows)
    ncols = max(1, int(np.ceil((t1 - t0) / hop_s - 1e-9)))
    img = np.full((ncols, windows.shape[2] if windows.ndim == 3 else 1), np.nan, np.float32)
    if windows.ndim != 3 or not len(windows):
        return img
    frames = windows.shape[1]
    for w, s in zip(windows, np.asarray(start_s, dtype=np.float64)):
        c0 = int(round((s - t0) / hop_s))
        a, b = max(0, -c0), min(frames, ncols - c0)
        if b > a:
            img[c0 + a: c0 + b] = w[a:b]
    return img


def busiest_span(starts: np.ndarray, ends: np.ndarray, duration: float, length: float,
                 lead: float = 1.0) -> tuple[float, float]:
    """``(t0, t1)`` of at most ``length`` seconds within ``[0, duration]`` covering the most
    event time: candidate spans start ``lead`` seconds before each event (or at 0)."""
    if duration <= length or not len(starts):
        return 0.0, float(min(duration, length))
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    cands = np.clip(np.concatenate([[0.0], starts - lead]), 0.0, duration - length)
    cover = [np.clip(np.minimum(ends, c + length) - np.maximum(starts, c), 0, None).sum()
             for c in cands]
    c = float(cands[int(np.argmax(cover))])
    return c, c + float(length)


def label_runs(labels: np.ndarray, start_s: np.ndarray, end_s: np.ndarray
               ) -> list[tuple[float, float, str]]:
    """Consecutive windows (in the given order) with the same non-empty label merged:
    ``[(start_s, end_s, label)]``."""
    runs: list[tuple[float, float, str]] = []
    for lab, a, b in zip(np.asarray(labels).astype(str), start_s, end_s):
        if not lab:
            continue
        if runs and runs[-1][2] == lab and a <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], float(b)), lab)
        else:
            runs.append((float(a), float(b), lab))
    return runs


def db_range(x: np.ndarray, lo: float = 2.0, hi: float = 99.8) -> tuple[float, float]:
    """Colour limits (dB) for spectrogram images: percentiles of the finite values."""
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return -100.0, 0.0
    a, b = np.percentile(v, [lo, hi])
    if b - a < 1.0:
        a, b = a - 0.5, b + 0.5
    return float(a), float(b)


def sequence_means(x: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mean row of ``x`` ``(n, D)`` over each index range ``[start_i, stop_i)`` -> ``(m, D)``."""
    x = np.asarray(x, dtype=np.float64)
    c = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    start, stop = np.asarray(start, np.int64), np.asarray(stop, np.int64)
    return (c[stop] - c[start]) / np.maximum(stop - start, 1)[:, None]
