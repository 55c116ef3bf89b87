"""Merging window decisions (of any detector) into events."""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError, UsageError


#: Times are sums and differences of float seconds: a gap or length within this of the
#: limit counts as equal to it (0.528 s windows measure 0.5279999999999987 s in places).
TIME_TOL_S = 1e-6


def _check_rows(n: int, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if a.shape != (n,):
            raise BadInputError(f"{name} has shape {a.shape}, expected ({n},)")


def events_from_decisions(
    source_id: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    positive: np.ndarray,
    score: np.ndarray,
    min_gap_s: float = 0.0,
    min_duration_s: float = 0.0,
) -> dict[str, np.ndarray]:
    """Merge positive windows into events.

    Positive windows of one recording, in time order, join the current event when they start at
    most ``min_gap_s`` after its end (overlapping windows always join); events lasting less than
    ``min_duration_s`` are dropped.

    Parameters
    ----------
    source_id : int ``(n,)``; start_s, end_s : float ``(n,)`` seconds; positive : bool ``(n,)``;
    score : float ``(n,)``, per-window score (probability, dB above floor...).

    Returns
    -------
    dict of ``(m,)`` arrays, ordered by recording then start: ``source_id`` int64,
    ``start_s`` and ``end_s`` float64, ``score`` float64 (the largest window score),
    ``n_windows`` int64.
    """
    if min_gap_s < 0 or min_duration_s < 0:
        raise UsageError("min_gap_s and min_duration_s must be >= 0 seconds")
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, dtype=np.float64)
    end_s = np.asarray(end_s, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    _check_rows(positive.size, source_id=source_id, start_s=start_s, end_s=end_s,
                positive=positive, score=score)
    if np.any(end_s < start_s):
        raise BadInputError("some windows end before they start")

    sel = np.flatnonzero(positive)
    order = sel[np.lexsort((start_s[sel], source_id[sel]))]
    sid, st, en, sc = source_id[order], start_s[order], end_s[order], score[order]
    new = np.ones(order.size, dtype=bool)
    if order.size:
        _, first = np.unique(sid, return_index=True)
        reach = np.empty_like(en)  # running latest end within each recording
        for a, b in zip(first, np.append(first[1:], order.size)):
            reach[a:b] = np.maximum.accumulate(en[a:b])
        new[1:] = (sid[1:] != sid[:-1]) | (st[1:] - reach[:-1] > min_gap_s + TIME_TOL_S)
    heads = np.flatnonzero(new)
    if heads.size == 0:
        ev_end = ev_score = np.zeros(0)
    else:
        ev_end = np.maximum.reduceat(en, heads)
        ev_score = np.maximum.reduceat(sc, heads)
    keep = ev_end - st[heads] >= min_duration_s - TIME_TOL_S
    return {
        "source_id": sid[heads][keep].astype(np.int64),
        "start_s": st[heads][keep],
        "end_s": ev_end[keep],
        "score": ev_score[keep],
        "n_windows": np.diff(np.append(heads, order.size))[keep].astype(np.int64),
    }


#: Calibration scales of ``wsd detect --calibrate`` (and the probe's recorded thresholds).
CALIBRATIONS = ("recording", "peaks")

#: ``peaks``: the trace is averaged over 2 N + 1 windows before its local maxima are taken
#: (a fixed width, so that the probe's threshold and detect's scale agree whatever detect's
#: --smooth; measured against the unsmoothed maxima in benchmarks/upcall_calibration.py).
PEAK_SCALE_SMOOTH = 2

#: ``peaks``: a recording with fewer local maxima than this is scaled by all its scores.
PEAK_SCALE_MIN = 5


def _robust(x: np.ndarray) -> tuple[float, float]:
    med = float(np.median(x))
    return med, max(1.4826 * float(np.median(np.abs(x - med))), 1e-6)


def trace_peaks(x: np.ndarray, smooth: int = PEAK_SCALE_SMOOTH) -> np.ndarray:
    """The local maxima of a score trace (in time order) averaged over ``2 smooth + 1``
    windows: the background peaks a detection threshold has to clear."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import argrelmax

    s = uniform_filter1d(np.asarray(x, np.float64), 2 * smooth + 1, mode="nearest")
    return s[argrelmax(s)[0]]


def recording_z(source_id: np.ndarray, score: np.ndarray, scale: str = "recording",
                start_s: np.ndarray | None = None) -> np.ndarray:
    """Scores standardised per recording (``(n,)`` float64), so one threshold holds across
    recordings of different noise (``wsd detect --calibrate``):

    * ``recording``: robust z, ``(x - median) / (1.4826 MAD)`` of all the recording's
      scores: its usual level maps to 0 whatever its background;
    * ``peaks``: the median and 1.4826 MAD of the local maxima of the recording's trace
      (:func:`trace_peaks`; rows in time order, by ``start_s`` when given) instead: the
      threshold is then counted in spreads of the background's own peaks, which is what a
      detection has to clear. A recording with fewer than ``PEAK_SCALE_MIN`` maxima (a short
      clip) is scaled as ``recording``.
    """
    if scale not in CALIBRATIONS:
        raise UsageError(f"calibration scale must be {' or '.join(CALIBRATIONS)} (got {scale})")
    source_id = np.asarray(source_id)
    out = np.asarray(score, dtype=np.float64).copy()
    _check_rows(out.size, source_id=source_id)
    if start_s is None:
        order = np.argsort(source_id, kind="stable")
    else:
        start_s = np.asarray(start_s, dtype=np.float64)
        _check_rows(out.size, start_s=start_s)
        order = np.lexsort((start_s, source_id))
    cuts = np.flatnonzero(np.diff(source_id[order])) + 1
    for rows in np.split(order, cuts):  # one recording at a time, in one pass over the rows
        if len(rows) == 0:
            continue
        x = out[rows]
        ref = x
        if scale == "peaks":
            pk = trace_peaks(x)
            if len(pk) >= PEAK_SCALE_MIN:
                ref = pk
        med, spread = _robust(ref)
        out[rows] = (x - med) / spread
    return out


def events_from_peaks(
    source_id: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    score: np.ndarray,
    threshold: float,
    length_s: float,
    min_separation_s: float = 1.0,
    smooth: int = 0,
) -> dict[str, np.ndarray]:
    """One event of ``length_s`` seconds centred on each peak of the score trace.

    Per recording, window scores in time order are averaged over ``2 smooth + 1`` windows;
    then, highest first, every window at or above ``threshold`` whose centre lies at least
    ``min_separation_s`` from every peak already taken is a peak (non-maximum suppression).
    Suited to calls of a known typical length that many overlapping windows each see whole
    (merging those windows would make one long event).

    Returns the same dict as :func:`events_from_decisions` (``n_windows`` holds 1); events
    are clipped to the recording's first window start and last window end.
    """
    if not (length_s > 0 and min_separation_s >= 0 and smooth >= 0):
        raise UsageError("peaks need an event length > 0, a separation >= 0 and smooth >= 0")
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, dtype=np.float64)
    end_s = np.asarray(end_s, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    _check_rows(score.size, source_id=source_id, start_s=start_s, end_s=end_s)
    centre = (start_s + end_s) / 2
    out = {k: [] for k in ("source_id", "start_s", "end_s", "score")}
    by_source = np.argsort(source_id, kind="stable")
    cuts = np.flatnonzero(np.diff(source_id[by_source])) + 1
    for rows in np.split(by_source, cuts):
        if len(rows) == 0:
            continue
        s = source_id[rows[0]]
        rows = rows[np.argsort(centre[rows], kind="stable")]
        x = score[rows]
        if smooth:
            k = np.ones(2 * smooth + 1) / (2 * smooth + 1)
            x = np.convolve(np.pad(x, smooth, mode="edge"), k, mode="valid")
        t = centre[rows]
        # highest first; a peak suppresses the windows within the separation around it, so
        # each candidate is one lookup (linear in the recording's windows, not quadratic)
        gap = min_separation_s - TIME_TOL_S
        free = np.ones(len(x), bool)
        taken: list[int] = []
        for i in np.argsort(-x, kind="stable"):
            if x[i] < threshold:
                break
            if not free[i]:
                continue
            taken.append(int(i))
            if gap > 0:
                a = np.searchsorted(t, t[i] - gap, side="right")
                b = np.searchsorted(t, t[i] + gap, side="left")
                free[a:b] = False
        taken.sort()
        lo, hi = start_s[rows].min(), end_s[rows].max()
        for i in taken:
            out["source_id"].append(s)
            out["start_s"].append(max(lo, t[i] - length_s / 2))
            out["end_s"].append(min(hi, t[i] + length_s / 2))
            out["score"].append(x[i])
    return {"source_id": np.asarray(out["source_id"], np.int64),
            "start_s": np.asarray(out["start_s"], np.float64),
            "end_s": np.asarray(out["end_s"], np.float64),
            "score": np.asarray(out["score"], np.float64),
            "n_windows": np.ones(len(out["score"]), np.int64)}
