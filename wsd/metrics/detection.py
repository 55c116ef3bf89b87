"""Scores of a binary detector against labels: ROC AUC, average precision, accuracy, F1,
precision, recall and the confusion matrix, per window and per recording (scikit-learn)."""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError


def _check_rows(n: int, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if a.shape != (n,):
            raise BadInputError(f"{name} has shape {a.shape}, expected ({n},)")

def _labels_scores(y_true, score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise BadInputError(f"y_true {y.shape} and score {s.shape} must be 1-D and equal")
    if not np.all((y == 0) | (y == 1)):
        raise BadInputError("y_true must hold only 0/1 (or False/True)")
    if not np.all(np.isfinite(s)):
        raise BadInputError("scores must be finite")
    return y.astype(bool), s


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict:
    """Metrics of a binary detector; a window is predicted positive when ``score >= threshold``.

    Parameters
    ----------
    y_true : 0/1 or bool ``(n,)``; score : float ``(n,)``, higher meaning more likely positive.

    Returns
    -------
    JSON-ready dict: ``n``, ``n_positive``, ``threshold``, ``roc_auc`` and ``average_precision``
    (sklearn, threshold-free), ``accuracy``, ``precision``, ``recall``, ``f1``,
    ``confusion`` ``[[tn, fp], [fn, tp]]`` (counts), ``rates`` (``tpr``, ``fpr``, ``tnr``,
    ``fnr``) and ``notes``. A value that is undefined for this data (AUC with one class,
    precision with no predicted positive, ...) is None and ``notes`` says why.
    """
    from sklearn.metrics import (average_precision_score, confusion_matrix,
                                 precision_recall_fscore_support, roc_auc_score)

    y, s = _labels_scores(y_true, score)
    pred = s >= threshold
    (tn, fp), (fn, tp) = confusion_matrix(y, pred, labels=[False, True]).tolist()
    prf = precision_recall_fscore_support(y, pred, labels=[True], zero_division=np.nan)
    precision, recall, f1 = (None if np.isnan(v[0]) else float(v[0]) for v in prf[:3])
    pos, neg = tp + fn, tn + fp
    notes = []
    if pos == 0 or neg == 0:
        only = "negative" if pos == 0 else "positive"
        notes.append(f"roc_auc undefined: every window is {only} in y_true")
        auc = None
    else:
        auc = float(roc_auc_score(y, s))
    if pos == 0:
        notes.append("average_precision and recall undefined: no positive in y_true")
        ap = None
    else:
        ap = float(average_precision_score(y, s))
    if precision is None:
        notes.append(f"precision undefined: no score reaches the threshold {threshold:g}")
    if f1 is None:
        notes.append("f1 undefined: no positive in y_true and none predicted")
    return {
        "n": int(y.size),
        "n_positive": int(pos),
        "threshold": float(threshold),
        "roc_auc": auc,
        "average_precision": ap,
        "accuracy": _ratio(tp + tn, y.size),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "confusion": [[tn, fp], [fn, tp]],
        "rates": {"tpr": recall, "fpr": _ratio(fp, neg), "tnr": _ratio(tn, neg),
                  "fnr": _ratio(fn, pos)},
        "notes": notes,
    }


def decision_metrics(y: np.ndarray, score: np.ndarray, decision: np.ndarray) -> dict:
    """:func:`binary_metrics` of the decisions actually made (``decision`` ``(n,)`` bool:
    accuracy, precision, recall, F1, confusion, rates), with ROC AUC and average precision
    ranked by ``score``; for a detector whose decisions are not a plain threshold on its
    score (the silence detector's hysteresis)."""
    ranked = binary_metrics(y, score)
    made = binary_metrics(y, np.asarray(decision, np.float64), 0.5)
    made["roc_auc"], made["average_precision"] = ranked["roc_auc"], ranked["average_precision"]
    made["notes"] = sorted(set(ranked["notes"]) | set(made["notes"]))
    made.pop("threshold")
    return made


def detector_metrics(y: np.ndarray, score: np.ndarray, decided: np.ndarray,
                     source_id: np.ndarray, how: str = "max") -> dict:
    """:func:`decision_metrics` per window and per recording (see :func:`per_recording`:
    a recording is positive when any window is, its score its windows' scores aggregated
    by ``how``, and it is detected when its windows' decisions, 0 or 1, aggregated the same
    way reach 0.5: with ``max`` when any window is, with ``mean`` or ``median`` when at
    least half are); all inputs ``(n,)``."""
    rec, ry, rs = per_recording(y, score, source_id, how)
    _, _, rd = per_recording(y, np.asarray(decided, np.float64), source_id, how)
    return {"window": decision_metrics(y, score, decided),
            "recording": decision_metrics(ry, rs, rd >= 0.5), "n_recordings": int(len(rec)),
            "recording_score": how}


#: How a recording's score comes from its windows' (``wsd detect --clip-score``), each
#: with the words the page's captions use: the highest; the mean; the median; the mean of
#: the highest quarter (at least one window).
CLIP_SCORE_WORDS = {"max": "highest", "mean": "mean", "median": "median",
                    "top": "mean of the highest quarter"}
CLIP_SCORES = tuple(CLIP_SCORE_WORDS)
#: ``--clip-score auto``: ``median`` when the recordings are clips (their median length is
#: at most this many seconds), else ``max``. Measured on the OrcaCNN orca and noise clips
#: (benchmarks/quality.py --tasks orca, default encoder, 3 seeds): a window probe's clip ROC
#: AUC is 0.860 by median, 0.805 by mean, 0.772 by top and 0.627 by max, where one loud
#: transient in a noise clip decides the max.
#: In a long recording a call is a few windows among thousands: only the max sees it.
CLIP_SECONDS = 60.0


def clip_score_for(how: str, durations_s) -> str:
    """``how``, with ``auto`` resolved by the recordings' lengths (:data:`CLIP_SECONDS`)."""
    if how != "auto":
        return how
    d = np.asarray(durations_s, dtype=np.float64)
    d = d[np.isfinite(d)]
    return "median" if d.size and float(np.median(d)) <= CLIP_SECONDS else "max"


def _aggregate(values: np.ndarray, how: str) -> float:
    if how == "max":
        return float(values.max())
    if how == "mean":
        return float(values.mean())
    if how == "median":
        return float(np.median(values))
    if how == "top":
        k = max(1, len(values) // 4)
        return float(np.partition(values, len(values) - k)[len(values) - k:].mean())
    raise BadInputError(f"unknown recording score {how!r} (one of {', '.join(CLIP_SCORES)})")


def per_recording(
    y_true: np.ndarray, score: np.ndarray, source_id: np.ndarray, how: str = "max"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collapse window labels and scores to recordings.

    A recording is positive if any of its windows is; its score is its window scores
    aggregated by ``how`` (:data:`CLIP_SCORES`: the largest by default). Inputs are
    ``(n,)``; returns ``recordings`` int64 ``(r,)`` ascending, ``y`` bool ``(r,)``,
    ``score`` float64 ``(r,)``, ready for :func:`binary_metrics`.
    """
    y, s = _labels_scores(y_true, score)
    source_id = np.asarray(source_id)
    _check_rows(y.size, source_id=source_id)
    recs, inv = np.unique(source_id, return_inverse=True)
    y_rec = np.zeros(recs.size, dtype=bool)
    np.logical_or.at(y_rec, inv, y)
    if how == "max":
        s_rec = np.full(recs.size, -np.inf)
        np.maximum.at(s_rec, inv, s)
    else:
        order = np.argsort(inv, kind="stable")
        groups = np.split(s[order], np.flatnonzero(np.diff(inv[order])) + 1)
        s_rec = np.array([_aggregate(g, how) for g in groups], dtype=np.float64)
    return recs.astype(np.int64), y_rec, s_rec


def best_threshold(y_true: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Threshold maximising F1 (``score >= threshold`` is positive), for a validation set.

    Inputs are ``(n,)``. Returns ``(threshold, f1)``; among equal F1 the lowest threshold.
    """
    from sklearn.metrics import precision_recall_curve

    y, s = _labels_scores(y_true, score)
    if not y.any():
        raise BadInputError("best threshold undefined: no positive in y_true")
    precision, recall, thresholds = precision_recall_curve(y, s)
    p, r = precision[:-1], recall[:-1]
    denom = p + r
    f1 = np.divide(2 * p * r, denom, out=np.zeros_like(denom), where=denom > 0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])
