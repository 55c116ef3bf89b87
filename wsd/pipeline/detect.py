"""Coordinator of ``wsd detect``: per-window scores from the silence detector or a trained
detector, decisions, events and metrics, written as a detections file."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsd.dsp.events import CALIBRATIONS
from wsd.dsp.silence import SilenceParams

#: How events are made (``--events``): auto is frames for the silence detector with its own
#: decisions (events as long as the sound: benchmarks/silence_scenes.py), merge otherwise.
EVENTS = ("auto", "merge", "peaks", "frames")
#: Shortest frame event by default (s): on killer whale calls in real background
#: (benchmarks/silence_scenes.py) frame events without it scored event F1 0.05 / 0.08
#: (tune / check: thousands of noise transients an hour), with it 0.14 / 0.26, against
#: 0.05 / 0.17 for merged windows, the previous default.
FRAME_MIN_DURATION = 0.5
from wsd.errors import UsageError
from wsd.pipeline.progress import Progress


@dataclass(frozen=True)
class DetectParams:
    """What ``wsd detect`` was asked to do (validated here; saved in the output).

    silence : the silence detector's settings, or None for a trained detector (``model``).
    threshold : score at or above which a window is a detection (None: the model's, or the
        silence detector's own decisions).
    """

    silence: SilenceParams | None = None
    model: str | None = None
    threshold: float | None = None
    min_gap: float = 0.0
    min_duration: float | None = None  # None: FRAME_MIN_DURATION for frame events, else 0
    positive: str | None = None
    batch_size: int = 256
    device: str = "auto"
    amp: bool | None = None
    workers: int = 1
    scheduler: str | None = None
    truth: str | None = None  # a table of reference events: event-level scores
    calibrate: str = "auto"  # auto | none | recording | peaks: log-odds scaled per recording
    events: str = "auto"  # auto | merge | peaks | frames
    event_length: float | None = None  # peaks: seconds (None: the window's length)
    min_separation: float | None = None  # peaks: seconds between two peaks (None: the
    # event length, so that events never overlap)
    smooth: int | None = None  # peaks: moving average over 2 smooth + 1 windows (None:
    # SMOOTH_PEAKS with a model's peaks events resolved by auto, else 0)
    clip_score: str = "auto"  # a recording's score from its windows' (metrics, report)

    def __post_init__(self):
        from wsd.runtime.device import check_device_name

        if (self.silence is None) == (self.model is None):
            raise UsageError("give exactly one of --silence or --model MODEL.h5")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise UsageError(f"--threshold must be a finite number (got {self.threshold})")
        for name in ("min_gap", "min_duration"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0 seconds (got {v})")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.calibrate not in ("auto", "none", *CALIBRATIONS):
            raise UsageError(f"--calibrate must be auto, none, {' or '.join(CALIBRATIONS)} "
                             f"(got {self.calibrate})")
        if self.calibrate not in ("auto", "none") and self.silence is not None:
            raise UsageError("--calibrate applies to a trained detector (--model); the "
                             "silence detector is already relative to each recording's floor")
        if self.events not in EVENTS:
            raise UsageError(f"--events must be {', '.join(EVENTS[:-1])} or {EVENTS[-1]} "
                             f"(got {self.events})")
        if self.events == "frames" and self.silence is None:
            raise UsageError("--events frames makes events of the silence detector's active "
                             "frames: give it with --silence")
        if self.events == "frames" and self.threshold is not None:
            raise UsageError("--events frames follows the detector's own frame decisions "
                             "(--on-db, --off-db); --threshold decides whole windows: use "
                             "--events merge with it")
        if self.event_length is not None and not (math.isfinite(self.event_length)
                                                  and self.event_length > 0):
            raise UsageError(f"--event-length must be > 0 seconds (got {self.event_length})")
        if self.min_separation is not None and not (math.isfinite(self.min_separation)
                                                    and self.min_separation >= 0):
            raise UsageError(f"--min-separation must be >= 0 seconds (got "
                             f"{self.min_separation})")
        from wsd.metrics.detection import CLIP_SCORES

        if self.clip_score not in ("auto", *CLIP_SCORES):
            raise UsageError(f"--clip-score must be auto, {', '.join(CLIP_SCORES)} (got "
                             f"{self.clip_score})")
        if self.smooth is not None and self.smooth < 0:
            raise UsageError(f"--smooth must be >= 0 windows (got {self.smooth})")
        if self.events == "peaks" and (self.min_gap or self.min_duration):
            raise UsageError("--min-gap and --min-duration shape merged events; with --events "
                             "peaks every event is --event-length long, --min-separation apart")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")
        check_device_name(self.device)

    @property
    def min_duration_s(self) -> float:
        """``--min-duration`` resolved: FRAME_MIN_DURATION for frame events (in real
        recordings most runs of active frames shorter than that are noise transients),
        0 otherwise."""
        if self.min_duration is not None:
            return self.min_duration
        return FRAME_MIN_DURATION if self.how_events == "frames" else 0.0

    @property
    def how_events(self) -> str:
        """``--events`` resolved: auto is frames for the silence detector with its own
        decisions, merge otherwise."""
        if self.events != "auto":
            return self.events
        return "frames" if self.silence is not None and self.threshold is None else "merge"

    @property
    def smooth_windows(self) -> int:
        """``--smooth`` resolved: 0 unless given (the recipe sets it, :func:`model_defaults`)."""
        return 0 if self.smooth is None else int(self.smooth)


#: The detection recipe ``--calibrate auto`` / ``--events auto`` give a probe on long
#: recordings: log-odds scaled by the trace's own peaks, one event around each peak of the
#: trace smoothed over 2 * SMOOTH_PEAKS + 1 windows (measured best on the MERIDIAN up-calls
#: and on killer whale calls in 5-minute real backgrounds: benchmarks/README.md).
RECIPE_CALIBRATION = "peaks"
SMOOTH_PEAKS = 2


def model_defaults(p: DetectParams, durations_s, model_params: dict,
                   note=None) -> DetectParams:
    """``p`` with a model's ``auto`` settings resolved (the silence detector's are left
    alone). On long recordings (median over :data:`wsd.metrics.detection.CLIP_SECONDS`),
    when nothing asks otherwise (no ``--threshold``, ``--min-gap``, ``--min-duration``,
    explicit ``--events`` or ``--calibrate``) and the model recorded a threshold on that
    scale (probes trained on positives in two recordings or more): the recipe,
    ``--calibrate peaks --events peaks --smooth 2``; otherwise no calibration and merged
    windows, as for clips. ``--event-length`` defaults to the median length of the events
    the probe was trained on (``event_length_s``), else (later) a window's span. ``note``
    (a callable) hears why the recipe was not taken on long recordings."""
    import dataclasses

    from wsd.metrics.detection import clip_score_for

    if p.model is None:
        return p
    long = clip_score_for("auto", durations_s) == "max"
    free = (p.threshold is None and not p.min_gap and not p.min_duration
            and p.events == "auto" and p.calibrate == "auto")
    thr = model_params.get(f"threshold_{RECIPE_CALIBRATION}")
    has = thr is not None and math.isfinite(float(thr))
    recipe = long and free and has
    if long and free and not has and note is not None:
        note("this model records no threshold on the peaks scale (a probe trained on "
             "positives in two recordings or more does): windows merged into events, "
             "not calibrated")
    changes = {}
    if p.calibrate == "auto":
        changes["calibrate"] = RECIPE_CALIBRATION if recipe else "none"
    if p.events == "auto":
        changes["events"] = "peaks" if recipe else "merge"
    if p.smooth is None:
        changes["smooth"] = SMOOTH_PEAKS if recipe else 0
    if p.event_length is None and model_params.get("event_length_s"):
        changes["event_length"] = float(model_params["event_length_s"])
    return dataclasses.replace(p, **changes)


class _Rows:
    """Rows ``sel`` of a dataset, shaped like an array (for the array cores, read in
    chunks by them); ``mean``/``std`` per row undo a recording's standardisation."""

    def __init__(self, f, name: str, sel: slice, mean=None, std=None):
        self.f, self.name, self.a = f, name, sel.start
        self.shape = (sel.stop - sel.start, *f.shape(name)[1:])
        self.mean, self.std = mean, std

    def __getitem__(self, key):
        rows = key[0] if isinstance(key, tuple) else key
        rest = key[1:] if isinstance(key, tuple) else ()
        rows = slice(self.a + (rows.start or 0),
                     self.a + min(self.shape[0], rows.stop if rows.stop is not None
                                  else self.shape[0]))
        x = self.f.read(self.name, rows)
        if self.std is not None:
            r = slice(rows.start - self.a, rows.stop - self.a)
            x = x.astype(np.float32) * self.std[r, None, None] + self.mean[r, None, None]
        return x[(slice(None), *rest)] if rest else x


def level_units_per_db(spec: dict) -> float:
    """How many units of the windows' scale make one dB: 1 for dB, ln(10)/20 for log1p
    (``log(1 + 100 x)`` grows like ``ln x`` above the noise), so the silence detector's
    thresholds keep their meaning in dB; PCEN has no such scale and is refused."""
    scale = spec.get("scale", "db")
    if scale == "db":
        return 1.0
    if scale == "log1p":
        return math.log(10) / 20
    raise UsageError(f"the silence detector reads levels in dB or log1p; these windows are "
                     f"{scale} (slice with --scale db)")


def silence_rows(f, sel: slice, params: SilenceParams, runs: bool = False) -> dict:
    """The silence detector (:func:`wsd.dsp.silence.detect_silence`, the one implementation)
    on rows ``sel`` of an open windows file, which must hold whole recordings: score (dB
    above floor), positive (active), active_frac, each recording's floor (``floor_sid``,
    ``floor_db``), and with ``runs`` the runs of active frames (``run_*``,
    :func:`wsd.dsp.silence.active_runs`: the events of ``--events frames``)."""
    from wsd.dsp.silence import active_runs, detect_silence

    spec = f.spectrogram
    unit = level_units_per_db(spec)
    scaled = dataclasses.replace(params, on_db=params.on_db * unit,
                                 off_db=params.off_db * unit, click_db=params.click_db * unit,
                                 min_spread_db=params.min_spread_db * unit)
    sid = f.read("source_id", sel)
    mean = std = None
    if f.has("whiten_stats"):  # --whiten standardised each recording: levels back first
        stats = f.read("whiten_stats")
        mean, std = np.nan_to_num(stats[sid, 0]), np.nan_to_num(stats[sid, 1], nan=1.0)
    hop_s = spec["hop_length"] / spec["sample_rate"]
    st = f.read("start_s", sel)
    d = detect_silence(_Rows(f, "windows", sel, mean, std), f.read("freqs"), sid, st, scaled,
                       hop_s=hop_s, keep_level=runs)
    out = {"score": (d.score / unit).astype(np.float32), "positive": ~d.silent,
           "active_frac": d.active_frac.astype(np.float32), "floor_sid": d.recordings,
           "floor_db": d.floor_db}
    if runs:
        r = active_runs(d.active, d.level, sid, st, hop_s)
        out.update(run_source_id=r["source_id"], run_start_s=r["start_s"],
                   run_end_s=r["end_s"], run_score=r["score"] / unit)
    return out


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


def run_detect(windows, out, p: DetectParams, history: list[str], *, force: bool,
               progress: Progress | None = None) -> dict:
    """Score, decide and merge into events every window of ``windows``; write ``out``.
    Returns a summary with the events and (with labels) the metrics."""
    from wsd.io.store import (atomic_output, check_output, ensure_space, open_file,
                              output_lock)
    from wsd.io.store.rows import RowWriter
    from wsd.pipeline import chunks
    from wsd.runtime.shards import ShardFolder

    progress = progress or Progress()
    out = Path(out)
    check_output(out, force, inputs=[windows, p.model, p.truth])
    info, dev, pos_label = None, None, None
    if p.model is not None:
        from wsd.io.store.models import load_model
        from wsd.runtime.device import pick_device

        dev = pick_device(p.device)
        info = load_model(p.model)
        pos_label = check_binary(info, p.model)
    with output_lock(out), open_file(windows, ("windows", "embeddings")) as f, \
            contextlib.ExitStack() as stack:
        if info is not None:
            p = model_defaults(p, f.sources.get("duration_s", []), info["params"],
                               progress.note)
        if f.kind == "embeddings":
            return _detect_embeddings(f, out, p, info, pos_label, history, force, progress)
        folder = stack.enter_context(ShardFolder(out).working())
        run_kw = {"workers": p.workers, "scheduler": p.scheduler}
        runs = None
        if p.silence is not None:
            sp = dataclasses.asdict(p.silence)
            params = {"detector": "silence", "windows": str(windows), **sp}
            tasks = chunks.plan("silence", str(windows), f.n, str(folder.path),
                                source_id=f.read("source_id"),
                                options=json.dumps({**sp, "runs": p.how_events == "frames"}))
            with progress.task("silence", f.n, "windows") as advance:
                parts = chunks.collect(chunks.run(tasks, progress=advance, **run_kw))
            score, decided = parts["score"], parts["positive"].astype(bool)
            floor = np.full(f.n_sources, np.nan, np.float32)
            floor[parts["floor_sid"]] = parts["floor_db"]
            extra = {"floor_db": floor, "active_frac": parts["active_frac"]}
            if p.how_events == "frames":
                runs = {k[4:]: parts[k] for k in ("run_source_id", "run_start_s", "run_end_s",
                                                   "run_score")}
            thr, truth_label = p.silence.on_db, p.positive
        else:
            from wsd.models.inference import check_model_settings, choose_amp

            check_model_settings(info, f.spectrogram, f.shape("windows")[2], str(windows))
            use_amp, why = choose_amp(chunks.cached_model(str(p.model), dev)[0],
                                      lambda: f.read("windows", slice(0, min(8, f.n))),
                                      info["norm"], dev, p.amp)
            if why:
                (progress.warn if p.amp else progress.note)(why)
            thr = float(p.threshold if p.threshold is not None else info["params"]["threshold"])
            params = {"detector": "model", "windows": str(windows), "model": str(p.model),
                      "arch": info["arch"], "batch_size": p.batch_size, "amp": use_amp}
            tasks = chunks.plan("score", str(windows), f.n, str(folder.path),
                                model=str(p.model), batch_size=p.batch_size, device=dev,
                                amp=use_amp)
            with progress.task("detecting", f.n, "windows") as advance:
                score = chunks.collect(chunks.run(tasks, progress=advance, **run_kw))["score"]
            if p.calibrate != "none":
                p64 = np.clip(score.astype(np.float64), 1e-7, 1 - 1e-7)
                score = calibrated(np.log(p64) - np.log1p(-p64), f.read("source_id"),
                                   p.calibrate, f.read("start_s"))
                thr = calibrated_threshold(p, info["params"], str(p.model))
            decided = score >= thr
            extra, truth_label = {}, p.positive or pos_label
        if p.silence is not None and p.threshold is not None:
            decided, thr = score >= p.threshold, p.threshold
        params.update(threshold=thr, min_gap=p.min_gap, min_duration=p.min_duration_s,
                      positive=truth_label, windows_id=f.file_id, **event_params(p, f))
        metrics = None
        if f.has("label"):
            metrics = evaluate(f.read("label"), truth_label, score, decided,
                               f.read("source_id"), thr, params["clip_score"])
        hist = f.history + ([] if info is None else info["history"])
        hist = list(dict.fromkeys(hist)) + history
        ensure_space(out, f.n * 48)
        with atomic_output(out, force) as tmp:
            w = RowWriter(tmp, "detections", params, f.spectrogram, hist, f.sources)
            try:
                w.set_attrs(detector=params["detector"], positive_label=truth_label or "")
                ev = write_detections(w, f, score, decided, thr, p.min_gap, p.min_duration_s,
                                      metrics, extra, p.truth, peaks=peak_params(p, f),
                                      runs=runs)
            finally:
                w.close()
        n = f.n
    return {"n": n, "detected": int(decided.sum()), "events": ev,
            "metrics": metrics, "event_metrics": ev.pop("metrics", None)}


def _detect_embeddings(f, out, p: DetectParams, info, pos_label, history, force,
                       progress: Progress) -> dict:
    """A linear probe (``--arch linear``) scoring every row of an embeddings file."""
    from wsd.io.store import atomic_output
    from wsd.io.store.rows import RowWriter
    from wsd.models.probe import load_probe

    if p.model is None or info["arch"] != "linear":
        raise UsageError("an embeddings file is scored by a linear probe (wsd train EMB.h5 "
                         "--arch linear): --model CLF.h5", f.path)
    probe = load_probe(p.model, f.shape("embeddings")[1])
    want, have = info["params"].get("encoder_model_id"), f.params.get("model_id")
    if want and have and want != have:
        progress.warn("these embeddings were made by another encoder than the probe was "
                      "trained on; scores may mean nothing", f.path)
    cal = p.calibrate != "none"
    sid = f.read("source_id")
    with progress.task("detecting", f.n, "windows") as advance:
        score = probe.predict_rows(f.f["embeddings"], advance, logit=cal, source_id=sid)
    if cal:
        score = calibrated(score, sid, p.calibrate, f.read("start_s"))
        thr = calibrated_threshold(p, info["params"], str(p.model))
    else:
        thr = float(p.threshold if p.threshold is not None else probe.threshold)
    decided = score >= thr
    truth_label = p.positive or pos_label
    params = {"detector": "model", "embeddings": str(f.path), "model": str(p.model),
              "arch": "linear", "threshold": thr, "min_gap": p.min_gap,
              "min_duration": p.min_duration_s, "positive": truth_label,
              "embeddings_id": f.file_id, **event_params(p, f)}
    metrics = None
    if f.has("label"):
        metrics = evaluate(f.read("label"), truth_label, score, decided, sid, thr,
                           params["clip_score"])
    hist = list(dict.fromkeys(f.history + info["history"])) + history
    with atomic_output(out, force) as tmp:
        w = RowWriter(tmp, "detections", params, f.spectrogram, hist, f.sources)
        try:
            w.set_attrs(detector="model", positive_label=truth_label or "")
            ev = write_detections(w, f, score, decided, thr, p.min_gap, p.min_duration_s,
                                  metrics, {}, p.truth, peaks=peak_params(p, f))
        finally:
            w.close()
    return {"n": f.n, "detected": int(decided.sum()), "events": ev,
            "metrics": metrics, "event_metrics": ev.pop("metrics", None)}


def evaluate(labels: np.ndarray, positive_label: str | None, score: np.ndarray,
             decided: np.ndarray, source_id: np.ndarray, threshold: float,
             clip_score: str = "max") -> dict:
    """Window and recording metrics against window labels
    (:func:`wsd.metrics.detection.detector_metrics`; a recording's score is its windows'
    aggregated by ``clip_score``). Truth: a window is positive when its label equals
    ``positive_label``, or, with None (the silence detector), when it carries any label.
    The threshold metrics use the decisions actually made (``decided``)."""
    from wsd.metrics.detection import detector_metrics
    from wsd.models.targets import ANY, is_positive

    y = is_positive(labels, positive_label or ANY).astype(np.int64)
    return {"positive_label": positive_label or "(any label)", "threshold": float(threshold),
            **detector_metrics(y, score, decided, source_id, clip_score)}


def format_metrics(m: dict) -> list[str]:
    lines = []
    for level in ("window", "recording"):
        d = m[level]
        vals = ", ".join(f"{k} {d[k]:.3f}" for k in ("roc_auc", "average_precision", "accuracy",
                                                     "f1", "precision", "recall")
                         if d.get(k) is not None)
        (tn, fp), (fn, tp) = d["confusion"]
        how = f" ({m['recording_score']} of its windows)" if (
            level == "recording" and m.get("recording_score")) else ""
        lines.append(f"{level}{how}: {vals}; confusion tn={tn} fp={fp} fn={fn} tp={tp}")
    return lines


def score_events(f, ev: dict, truth: str) -> dict:
    """Event-level scores (:func:`wsd.metrics.events.event_metrics`) of the events ``ev``
    of the open file ``f`` against the reference events of the table ``truth`` (Raven,
    Audacity or ``path,start_s,end_s`` CSV), over all of ``f``'s recordings."""
    from wsd.io.labels import read_labels
    from wsd.metrics.events import event_metrics

    t = read_labels(truth, n_inputs=f.n_sources, need_label=False)
    src = f.sources
    refs, dets = {}, {}
    for s, path in enumerate(src["path"]):
        refs[s] = np.array([(a, b) for a, b, _ in t.for_file(path)], np.float64).reshape(-1, 2)
        m = ev["source_id"] == s
        dets[s] = np.stack([ev["start_s"][m], ev["end_s"][m], ev["score"][m]], axis=1)
    hours = float(np.sum(src["duration_s"])) / 3600
    return event_metrics(dets, refs, hours)


def calibrated(score: np.ndarray, source_id: np.ndarray, scale: str = "recording",
               start_s: np.ndarray | None = None) -> np.ndarray:
    """``--calibrate recording | peaks``: log-odds scaled per recording (float32;
    :func:`wsd.dsp.events.recording_z`)."""
    from wsd.dsp.events import recording_z

    return recording_z(source_id, score, scale, start_s).astype(np.float32)


def calibrated_threshold(p: DetectParams, model_params: dict, model_path: str) -> float:
    """--threshold, else the calibrated threshold the model recorded at training."""
    if p.threshold is not None:
        return float(p.threshold)
    thr = model_params.get(f"threshold_{p.calibrate}")
    if thr is None or not math.isfinite(float(thr)):
        hint = ("probes trained with wsd train --arch linear do" if p.calibrate == "recording"
                else "probes trained with wsd train --arch linear since --calibrate peaks "
                "exists do: train the probe again")
        raise UsageError(f"--calibrate {p.calibrate}: this model records no threshold on that "
                         f"scale ({hint}); or give --threshold in its units", model_path)
    return float(thr)


def event_params(p: DetectParams, f) -> dict:
    """How events were made, for the output's parameters (the event length actually used),
    and how a recording's score comes from its windows (``auto`` resolved)."""
    from wsd.metrics.detection import clip_score_for

    d = {"calibrate": p.calibrate, "events": p.how_events,
         "clip_score": clip_score_for(p.clip_score, f.sources.get("duration_s", []))}
    peaks = peak_params(p, f)
    if peaks is not None:
        d.update(event_length=peaks["length_s"], min_separation=peaks["min_separation_s"],
                 smooth=p.smooth_windows)
    return d


def peak_params(p: DetectParams, f) -> dict | None:
    """Arguments of :func:`wsd.dsp.events.events_from_peaks` (None: merge windows); the
    event length defaults to a window's span, the separation between peaks to the event
    length (two events never overlap: on the MERIDIAN up-calls a separation of 1 s left
    second peaks 1 s from a call as false positives)."""
    if p.how_events != "peaks":
        return None
    spec = f.spectrogram
    sr = float(spec["sample_rate"])
    window_s = ((int(spec["frames"]) - 1) * int(spec["hop_length"]) + int(spec["n_fft"])) / sr
    length = p.event_length if p.event_length is not None else window_s
    sep = p.min_separation if p.min_separation is not None else length
    return {"length_s": float(length), "min_separation_s": float(sep),
            "smooth": p.smooth_windows}


def write_detections(w, f, score, positive, threshold, min_gap_s, min_duration_s,
                     metrics, extra, truth: str | None = None, peaks: dict | None = None,
                     runs: dict | None = None) -> dict:
    """Rows, events, metrics and extras into a RowWriter ``w``. Returns the events; with
    ``truth`` (a table of reference events), the event-level scores go into the metrics.
    ``peaks``: events are fixed-length spans around score peaks
    (:func:`wsd.dsp.events.events_from_peaks` with these arguments), not merged windows.
    ``runs``: events are these runs of active frames (``source_id``, ``start_s``,
    ``end_s``, ``score``: :func:`wsd.dsp.silence.active_runs`), merged across gaps of up
    to ``min_gap_s`` like windows (``n_windows`` then counts runs)."""
    from wsd.dsp.events import events_from_decisions, events_from_peaks

    sid, st, en = f.read("source_id"), f.read("start_s"), f.read("end_s")
    cols = {"source_id": sid, "start_s": st, "end_s": en, "score": score,
            "positive": positive.astype(bool)}
    for k in ("padded", "label"):
        if f.has(k):
            cols[k] = f.read(k)
    w.append(**cols)
    if runs is not None:
        ev = events_from_decisions(runs["source_id"], runs["start_s"], runs["end_s"],
                                   np.ones(len(runs["start_s"]), bool), runs["score"],
                                   min_gap_s, min_duration_s)
    elif peaks is None:
        ev = events_from_decisions(sid, st, en, positive, score, min_gap_s, min_duration_s)
    else:
        ev = events_from_peaks(sid, st, en, score, threshold, **peaks)
    for k, v in ev.items():
        w.put(f"events/{k}", v)
    for k, v in extra.items():
        w.put(k, v)
    w.set_attrs(threshold=float(threshold), n_events=int(len(ev["start_s"])))
    if truth is not None:
        metrics = dict(metrics or {})
        metrics["events"] = score_events(f, ev, truth)
        ev["metrics"] = metrics["events"]
    if metrics is not None:
        w.set_attrs(metrics_json=json.dumps(metrics))
    return ev
