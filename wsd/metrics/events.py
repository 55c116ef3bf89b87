"""Event-level scores of a detector against reference events, as DCASE scores them: a
detected event and a reference event match when their temporal IoU is at least 0.3, each at
most once (a maximum one-to-one matching: scipy's Hungarian algorithm on the pairs above the
threshold, most matches first); precision, recall and F1 of the matches, false positives per
hour, and average precision of the detections ranked by score (each greedily matched to the
free reference it overlaps most)."""

from __future__ import annotations

import numpy as np

#: Temporal IoU at which a detection matches a reference event.
IOU = 0.3


def iou_matrix(det: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Temporal IoU ``(m, k)`` of detections ``(m, >=2)`` and references ``(k, >=2)``
    (columns start, end in seconds)."""
    det, ref = np.asarray(det, np.float64), np.asarray(ref, np.float64)
    if len(det) == 0 or len(ref) == 0:
        return np.zeros((len(det), len(ref)))
    s = np.maximum(det[:, None, 0], ref[None, :, 0])
    e = np.minimum(det[:, None, 1], ref[None, :, 1])
    inter = np.clip(e - s, 0, None)
    union = (det[:, 1] - det[:, 0])[:, None] + (ref[:, 1] - ref[:, 0])[None, :] - inter
    return inter / np.maximum(union, 1e-12)


def match_count(det: np.ndarray, ref: np.ndarray, iou: float = IOU) -> int:
    """Size of the maximum one-to-one matching of pairs with IoU >= ``iou``."""
    from scipy.optimize import linear_sum_assignment

    m = iou_matrix(det, ref)
    ok = m >= iou
    if not ok.any():
        return 0
    r, c = linear_sum_assignment(-(ok * (1.0 + m)))
    return int(ok[r, c].sum())


def event_ap(dets: dict, refs: dict, iou: float = IOU) -> float | None:
    """Average precision of detections ranked by score (``det[:, 2]``) over recordings: None
    without reference events, 0 when there are some and no detection (none is found)."""
    rows = sorted(((float(d[i, 2]), name, i) for name, d in dets.items()
                   for i in range(len(d))), key=lambda r: -r[0])
    n_ref = sum(len(r) for r in refs.values())
    if n_ref == 0:
        return None
    if not rows:
        return 0.0
    used = {n: np.zeros(len(r), bool) for n, r in refs.items()}
    ious = {n: iou_matrix(dets[n], refs[n]) for n in dets if n in refs}
    tp = np.zeros(len(rows))
    for k, (_, name, i) in enumerate(rows):
        if name not in ious or ious[name].shape[1] == 0:
            continue
        row = np.where(used[name], -1.0, ious[name][i])
        j = int(np.argmax(row))
        if row[j] >= iou:
            used[name][j] = True
            tp[k] = 1
    ctp = np.cumsum(tp)
    prec = ctp / np.arange(1, len(rows) + 1)
    rec = ctp / n_ref
    return float(np.sum(np.diff(np.concatenate([[0.0], rec])) * prec))


def event_metrics(dets: dict, refs: dict, hours: float, iou: float = IOU) -> dict:
    """``dets``: recording -> ``(m, 3)`` start, end, score; ``refs``: recording -> ``(k, 2)``;
    ``hours`` of audio scored. F1, precision, recall, counts, false positives per hour,
    average precision."""
    tp = fp = fn = 0
    for name in set(refs) | set(dets):
        det = dets.get(name, np.zeros((0, 3)))
        ref = refs.get(name, np.zeros((0, 2)))
        m = match_count(det, ref, iou)
        tp, fp, fn = tp + m, fp + len(det) - m, fn + len(ref) - m
    return {"f1": 2 * tp / max(2 * tp + fp + fn, 1), "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1), "tp": tp, "fp": fp, "fn": fn,
            "fp_per_hour": fp / hours if hours > 0 else None,
            "average_precision": event_ap(dets, refs, iou), "iou": iou}
