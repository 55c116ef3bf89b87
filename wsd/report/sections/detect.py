"""Report sections for detections (curves, confusion matrices, score distribution, events
with clips, timeline players) and for windows files given on their own (timelines)."""

from __future__ import annotations

import json

import numpy as np

from wsd.report.figures import detect as FD
from wsd.report.analysis import busiest_span, db_range, label_runs, stitch
from wsd.report.context import Ctx
from wsd.report.collect import Item, WindowsData, label_mask
from wsd.report.page import ClipTable, Figure, Note, Section, Timeline
from wsd.report.figures.plotting import axes_box


def _finite(s: np.ndarray) -> np.ndarray:
    """``(n,)`` float64 scores with NaN/inf replaced by the lowest finite score."""
    s = np.asarray(s, dtype=np.float64).copy()
    bad = ~np.isfinite(s)
    if bad.any():
        ok = s[~bad]
        s[bad] = ok.min() if ok.size else 0.0
    return s


def _events(item: Item) -> dict[str, np.ndarray]:
    f = item.f
    if not f.has("events/source_id"):
        return {k: np.zeros(0) for k in ("source_id", "start_s", "end_s", "score", "n_windows")}
    return {k: np.asarray(f.read(f"events/{k}")) for k in
            ("source_id", "start_s", "end_s", "score", "n_windows") if f.has(f"events/{k}")}


def decision_metrics(y: np.ndarray, score: np.ndarray, decision: np.ndarray) -> dict:
    """ROC AUC and average precision of ``score``; accuracy, precision, recall, F1, confusion
    ``[[tn, fp], [fn, tp]]`` and rates of the stored ``decision`` (all ``(n,)``), by
    :func:`wsd.metrics.detection.binary_metrics`."""
    from wsd.metrics.detection import binary_metrics

    by_score = binary_metrics(y, score)
    by_dec = binary_metrics(y, np.asarray(decision, np.float64), 0.5)
    out = {k: by_dec[k] for k in ("n", "n_positive", "accuracy", "precision", "recall", "f1",
                                  "confusion", "rates")}
    out["roc_auc"] = by_score["roc_auc"]
    out["average_precision"] = by_score["average_precision"]
    return out


def timeline_block(ctx: Ctx, wd: WindowsData, sid: int, t0: float, t1: float, key: str,
                   title: str, det: dict | None = None, events=(), caption: str = "") -> Timeline:
    """A timeline figure of source ``sid`` over ``[t0, t1]`` s with its audio excerpt.

    ``det``: ``{"start", "end", "score", "positive", "threshold", "score_name"}``, the
    detector's per-window output for the windows of this span in time order."""
    rows = wd.source_rows(sid, t0, t1)
    img = stitch(wd.rows(rows), wd.start_s[rows], wd.hop_s, t0, t1)
    vmin, vmax = db_range(img)
    lab = wd.labels_at(rows)
    runs = label_runs(lab, wd.start_s[rows], wd.end_s[rows]) if lab is not None else []
    windows = None
    if det is not None:
        windows = (det["start"], det["end"], det["score"], det["positive"])
    fig, ax, sx = FD.timeline(img, t0, t1, wd.hop_s, wd.offset_s, wd.freqs, vmin, vmax, title,
                              windows=windows, threshold=det and det.get("threshold"),
                              score_name=det["score_name"] if det else "score",
                              events=list(events), labels=runs)
    box = axes_box(fig, ax)
    if sx is not None:
        box["bottom"] = axes_box(fig, sx)["bottom"]
    src = ctx.save(fig, key)
    clip = ctx.clips.timeline(key, wd.paths[sid] if sid < len(wd.paths) else "", t0, t1,
                              near=wd.item.path, **ctx.band(wd.item))
    wins = None
    if det is not None:
        wins = [[round(float(a), 4), round(float(b), 4), float(s), bool(p)] for a, b, s, p in
                zip(det["start"], det["end"], det["score"], det["positive"])]
    return Timeline(src=src, caption=caption, t0=t0, t1=t1, box=box,
                    audio=clip.src if clip else None, windows=wins,
                    score_name=det["score_name"] if det else "score",
                    speed=clip.speed if clip else 1.0)


def _one_class(y: np.ndarray, name: str, level: str) -> str:
    return (f"every {level} is '{name}'" if y.all() else f"no {level} is '{name}'")


def _labelled_figures(ctx: Ctx, sec: Section, det: Item, y, score, positive, source_id,
                      name: str, metrics: dict) -> bool:
    """ROC/PR curves and confusion matrices of the levels (window, recording) whose labels
    hold both classes, a note for the others; ``metrics["computed"]`` for all. Whether the
    windows' labels hold both classes (so the score distribution can be split by them)."""
    from wsd.metrics.detection import CLIP_SCORE_WORDS, per_recording

    if y is None:
        sec.blocks.append(Note("No labels in this file: no ROC, precision-recall or confusion "
                               "matrix, and the score distribution is not split by true "
                               "class (slice with --labels to get them)."))
        return False
    how = str(det.attr("clip_score", "max"))  # files written before --clip-score: max
    how = how if how in CLIP_SCORE_WORDS else "max"
    recs, y_rec, s_rec = per_recording(y, score, source_id, how)
    _, _, d_rec = per_recording(y, np.asarray(positive, np.float64), source_id, how)
    d_rec = d_rec >= 0.5  # as detect decides a recording (detector_metrics)
    levels = {"window": (y, score, positive), "recording": (y_rec, s_rec, d_rec)}
    metrics["computed"] = {lv: decision_metrics(*v) for lv, v in levels.items()}
    two = {lv: v for lv, v in levels.items() if v[0].any() and not v[0].all()}
    one = [f"per {lv} ({_one_class(v[0], name, lv)})" for lv, v in levels.items()
           if lv not in two]
    if one:
        sec.blocks.append(Note("The labels hold a single class " + " and ".join(one) + ": no "
                               "ROC, precision-recall curve or confusion matrix there"
                               + ("" if "window" in two else ", and the score distribution "
                                  "is not split by true class") + "."))
    if two:
        sec.blocks.append(Figure(ctx.save(FD.roc_pr(two, name), f"{det.name}_roc_pr"),
                                 "ROC and precision-recall curves of the per-window score (a "
                                 f"recording's score is the {CLIP_SCORE_WORDS[how]} of its "
                                 "windows' scores); dots mark the detector's decisions."))
        cms = {lv: metrics["computed"][lv]["confusion"] for lv in two}
        sec.blocks.append(Figure(ctx.save(FD.confusion(cms, name, "rest"),
                                          f"{det.name}_confusion"),
                                 "Confusion matrices of the decisions: counts, and rates per "
                                 "true class (rows sum to 100%)."))
    return "window" in two


def detections_section(ctx: Ctx, det: Item) -> tuple[Section, dict]:
    f = det.f
    sec = Section(f"Detections: {det.display}", anchor=f"det-{det.name}")
    detector = str(det.attr("detector", "detector"))
    threshold = det.attr("threshold")
    threshold = None if threshold is None else float(threshold)
    score = _finite(f.read("score"))
    positive = np.asarray(f.read("positive"), bool)
    source_id = np.asarray(f.read("source_id"), np.int64)
    start_s = np.asarray(f.read("start_s"), np.float64)
    end_s = np.asarray(f.read("end_s"), np.float64)
    pos_label = det.attr("positive_label")
    score_name = ("score (dB above noise floor)" if detector == "silence"
                  else "score (P(call))" if pos_label == "*"
                  else f"score (P({pos_label}))" if pos_label else "score")
    ev = _events(det)
    metrics: dict = {"kind": "detections", "detector": detector, "threshold": threshold,
                     "n_windows": int(len(score)), "n_detected_windows": int(positive.sum()),
                     "n_events": int(len(ev["source_id"]))}
    stored = det.attr("metrics_json")
    if stored:
        metrics["stored"] = json.loads(stored) if isinstance(stored, str) else stored
    any_label = not pos_label or pos_label == "*"
    y, counts = (label_mask(f, None if any_label else str(pos_label)) if f.has("label")
                 else (None, {}))
    if y is not None:
        metrics["labels"] = counts
    name = "call" if any_label else str(pos_label)
    by_class = _labelled_figures(ctx, sec, det, y if counts else None, score, positive,
                                 source_id, name, metrics)
    hist = FD.score_histogram(score, y if by_class else None, threshold, name, score_name)
    sec.blocks.append(Figure(ctx.save(hist, f"{det.name}_scores"),
                             "Distribution of the per-window score (log scale)"
                             + (", by true class." if by_class else ".")))
    wd = ctx.windows(det.refs.get("windows"))
    sec.blocks += _timelines(ctx, det, wd, source_id, start_s, end_s, score, positive,
                             threshold, score_name, ev)
    sec.blocks += _event_blocks(ctx, det, ev)
    return sec, metrics


def _timelines(ctx, det, wd, source_id, start_s, end_s, score, positive, threshold, score_name,
               ev) -> list:
    if not ctx.opts.timelines:
        return []
    if wd is None or wd.n != len(score):
        return [Note("The windows file of these detections was not found (or differs): no "
                     "timeline.")]
    if len(ev["source_id"]):
        ids, counts = np.unique(ev["source_id"].astype(np.int64), return_counts=True)
    else:
        ids, counts = np.unique(source_id[positive], return_counts=True)
    if not len(ids):
        ids, counts = np.unique(source_id, return_counts=True)
    chosen = ids[np.lexsort((ids, -counts))][: ctx.opts.timelines]
    out = []
    for sid in chosen.tolist():
        mine = ev["source_id"] == sid
        t0, t1 = busiest_span(ev["start_s"][mine], ev["end_s"][mine], wd.duration(sid),
                              ctx.opts.timeline_seconds)
        rows = wd.source_rows(sid, t0, t1)
        spans = [(float(a), float(b)) for a, b in zip(ev["start_s"][mine], ev["end_s"][mine])
                 if b > t0 and a < t1]
        info = {"start": start_s[rows], "end": end_s[rows], "score": score[rows],
                "positive": positive[rows], "threshold": threshold, "score_name": score_name}
        name = wd.source_name(sid)
        out.append(timeline_block(
            ctx, wd, sid, t0, t1, f"{det.name}_timeline_{sid}",
            f"{name}: {t0:.1f}-{t1:.1f} s", info, spans,
            f"{name} from {t0:.1f} to {t1:.1f} s: spectrogram with {len(spans)} detected "
            f"event(s) (top bar) and labels (bottom bar); below, the per-window score, green "
            "where detected. Play it: the cursor follows the sound; click the image to jump."))
    return out


def _event_blocks(ctx: Ctx, det: Item, ev: dict) -> list:
    """The table of the ``--events`` highest-scoring events with clips, and their review
    block (the same clips)."""
    from wsd.report.sections.review import events_review

    m = len(ev["source_id"])
    if not m:
        return [Note("No events in this file.")]
    order = np.argsort(-np.asarray(ev.get("score", np.zeros(m)), np.float64), kind="stable")
    order = order[: ctx.opts.events]
    keys = [f"event_{rank + 1:04d}" for rank in range(len(order))]
    return [_events_table(ctx, det, ev, order, keys),
            *events_review(ctx, det, ev, order, keys)]


def _events_table(ctx: Ctx, det: Item, ev: dict, order: np.ndarray, keys: list) -> ClipTable:
    m = len(ev["source_id"])
    rows = []
    src = det.f.sources
    paths = [str(p) for p in src.get("path", [])]
    for rank, i in enumerate(order.tolist()):
        sid = int(ev["source_id"][i])
        a, b = float(ev["start_s"][i]), float(ev["end_s"][i])
        key = f"{det.name}_{keys[rank]}"
        if sid < len(paths):
            ctx.clips.request(key, paths[sid], a, b, (2, rank, 1), near=det.path,
                              **ctx.band(det))
        name = paths[sid].rsplit("/", 1)[-1] if sid < len(paths) else str(sid)
        cells = [rank + 1, name, round(a, 3), round(b, 3), round(b - a, 3),
                 float(ev["score"][i]) if "score" in ev else None,
                 int(ev["n_windows"][i]) if "n_windows" in ev else None]
        rows.append((cells, key))
    more = f" (the {len(order)} highest-scoring of {m})" if m > len(order) else ""
    return ClipTable(f"Detected events{more}", ["rank", "recording", "start (s)", "end (s)",
                                                 "duration (s)", "score", "windows"], rows)


def windows_section(ctx: Ctx, win: Item) -> tuple[Section, dict] | None:
    """Timelines of a windows file given on its own (labels marked), and label counts; None
    for a windows file only followed, or shown by a detections section already."""
    if not win.given or any(d.refs.get("windows") is win
                            for d in ctx.col.of_kind("detections")):
        return None
    wd = ctx.windows(win)
    sec = Section(f"Windows: {win.display}", anchor=f"win-{win.name}")
    metrics: dict = {"kind": "windows", "n_windows": int(wd.n), "n_sources": len(wd.paths)}
    labelled = np.ones(wd.n, dtype=bool)
    if wd.has_label:
        labelled, metrics["labels"] = wd.labelled()
    ids, counts = np.unique(wd.source_id[labelled], return_counts=True)
    if not len(ids):
        labelled[:] = True
        ids, counts = np.unique(wd.source_id, return_counts=True)
    for sid in ids[np.lexsort((ids, -counts))][: ctx.opts.timelines].tolist():
        lab = (wd.source_id == sid) & labelled
        t0, t1 = busiest_span(wd.start_s[lab], wd.end_s[lab], wd.duration(sid),
                              ctx.opts.timeline_seconds)
        name = wd.source_name(sid)
        sec.blocks.append(timeline_block(
            ctx, wd, sid, t0, t1, f"{win.name}_timeline_{sid}", f"{name}: {t0:.1f}-{t1:.1f} s",
            caption=f"{name} from {t0:.1f} to {t1:.1f} s, labels along the bottom. Play it: "
                    "the cursor follows the sound; click the image to jump."))
    return sec, metrics
