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
