"""Coordinator of ``wsd detect``: per-window scores from the silence detector or a trained
classifier, decisions, events and metrics, written as a detections file."""

from __future__ import annotations

import json

import numpy as np

from wsd.errors import UsageError

CHUNK = 2048


def silence_rows(f, sel: slice, params) -> dict:
    """Silence detection on rows ``sel`` of an open windows file, which must hold whole
    recordings: score (dB above floor), positive (active), active_frac, and each
    recording's floor (``floor_sid``, ``floor_db``)."""
    from wsd.dsp.silence import bin_floor, decide, frame_energy, window_floor

    freqs = f.read("freqs")
    spec = f.spectrogram
    sid, start = f.read("source_id", sel), f.read("start_s", sel)
    a, b = sel.start, sel.stop
    floor = None
    if params.whiten:  # first pass: per-bin noise floor of every window
        wf = np.concatenate([window_floor(f.read("windows", slice(i, min(b, i + CHUNK))))
                             for i in range(a, b, CHUNK)] or [np.zeros((0, len(freqs)))])
        floor = bin_floor(wf, sid, start, params.floor_span_s)
    energy = []
    for i in range(a, b, CHUNK):
        rows = slice(i, min(b, i + CHUNK))
        energy.append(frame_energy(f.read("windows", rows), freqs, params,
                                   None if floor is None else floor[i - a : rows.stop - a]))
    energy = np.concatenate(energy) if energy else np.zeros((0, spec["frames"]), np.float32)
    hop_s = spec["hop_length"] / spec["sample_rate"]
    d = decide(energy, sid, start, params, hop_s=hop_s)
    return {"score": d.score.astype(np.float32), "positive": ~d.silent,
            "active_frac": d.active_frac.astype(np.float32), "floor_sid": d.recordings,
            "floor_db": d.floor_db}


def check_binary(info: dict, path: str) -> str:
    """The model's positive label; refuses autoencoders and multi-class classifiers."""
    params = info["params"]
    if "classes" not in params:
        raise UsageError(f"{info['arch']} is not a detector: --model needs a supervised model "
                         "trained with --positive LABEL", path)
    if not params.get("positive"):
        classes = params["classes"]
        raise UsageError(f"model is a classifier over {len(classes)} classes "
                         f"({', '.join(classes)}); a detector is trained with --positive", path)
    return params["positive"]


def evaluate(labels: np.ndarray, positive_label: str | None, score: np.ndarray,
             decided: np.ndarray, source_id: np.ndarray, threshold: float) -> dict:
    """Window and recording metrics against window labels.

    Truth: a window is positive when its label equals ``positive_label``, or, with None (the
    silence detector), when it carries any label. ROC AUC and average precision rank by
    ``score``; the threshold metrics and confusion matrix use the decisions actually made
    (``decided``: for the silence detector they include hysteresis, so they differ from a
    plain threshold on the score). A recording is positive when any window is; its score is
    its highest window score and it is detected when any window is."""
    from wsd.metrics.detection import binary_metrics, per_recording

    from wsd.models.targets import ANY, is_positive

    y = is_positive(labels, positive_label or ANY).astype(np.int64)
    rec_ids, ry, rs = per_recording(y, score, source_id)
    _, _, rd = per_recording(y, decided.astype(np.float64), source_id)
    out = {"positive_label": positive_label or "(any label)", "threshold": float(threshold),
           "n_recordings": int(len(rec_ids))}
    for level, yy, ss, dd in (("window", y, score, decided.astype(np.float64)),
                              ("recording", ry, rs, rd)):
        ranked = binary_metrics(yy, ss, threshold)
        made = binary_metrics(yy, dd, 0.5)
        made["roc_auc"], made["average_precision"] = ranked["roc_auc"], ranked["average_precision"]
        made["notes"] = sorted(set(ranked.get("notes", [])) | set(made.get("notes", [])))
        out[level] = made
    return out


def format_metrics(m: dict) -> list[str]:
    lines = []
    for level in ("window", "recording"):
        d = m[level]
        vals = ", ".join(f"{k} {d[k]:.3f}" for k in ("roc_auc", "average_precision", "accuracy",
                                                     "f1", "precision", "recall")
                         if d.get(k) is not None)
        (tn, fp), (fn, tp) = d["confusion"]
        lines.append(f"{level}: {vals}; confusion tn={tn} fp={fp} fn={fn} tp={tp}")
    return lines


def write_detections(w, f, score, positive, threshold, min_gap_s, min_duration_s,
                     metrics, extra) -> dict:
    """Rows, events, metrics and extras into a RowWriter ``w``. Returns the events."""
    from wsd.dsp.silence import events_from_decisions

    sid, st, en = f.read("source_id"), f.read("start_s"), f.read("end_s")
    cols = {"source_id": sid, "start_s": st, "end_s": en, "score": score,
            "positive": positive.astype(bool)}
    for k in ("padded", "label"):
        if f.has(k):
            cols[k] = f.read(k)
    w.append(**cols)
    ev = events_from_decisions(sid, st, en, positive, score, min_gap_s, min_duration_s)
    for k, v in ev.items():
        w.put(f"events/{k}", v)
    for k, v in extra.items():
        w.put(k, v)
    w.set_attrs(threshold=float(threshold), n_events=int(len(ev["start_s"])))
    if metrics is not None:
        w.set_attrs(metrics_json=json.dumps(metrics))
    return ev
