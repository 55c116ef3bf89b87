"""wsd detect: flag silence, or find calls with a trained detector."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wsd.cli.common import AMP, FORCE, QUIET, TRACEBACK, Reporter, history_entry


def detect_cmd(
    windows: Path = typer.Argument(..., metavar="WINDOWS.h5", help="Windows file."),
    output: Path = typer.Option(..., "--output", "-o", help="Detections file to write."),
    silence: bool = typer.Option(False, "--silence", help="Adaptive noise-floor silence "
                                 "detector (no model needed)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="A detector trained with "
                                         "wsd train --positive LABEL."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Score at or above "
                                              "which a window is a detection [default: the "
                                              "model's, set on validation]."),
    min_gap: float = typer.Option(0.0, "--min-gap", help="Merge detections of one recording "
                                  "separated by at most this many seconds into one event."),
    min_duration: float = typer.Option(0.0, "--min-duration", help="Drop events shorter than "
                                       "this (s)."),
    positive: Optional[str] = typer.Option(None, "--positive", help="For metrics: the label "
                                           "that counts as a true detection [default: the "
                                           "model's; silence: any label]."),
    fmin: float = typer.Option(0.0, "--fmin", help="Silence: lowest frequency of the band "
                               "looked at (Hz)."),
    fmax: Optional[float] = typer.Option(None, "--fmax", help="Silence: highest frequency of "
                                         "the band (Hz)."),
    on_db: float = typer.Option(10.0, "--on-db", help="Silence: dB above the recording's "
                                "noise floor at which a frame becomes active."),
    off_db: float = typer.Option(4.0, "--off-db", help="Silence: dB above the floor below "
                                 "which an active frame stops (hysteresis)."),
    floor_percentile: float = typer.Option(20.0, "--floor-percentile", help="Silence: "
                                           "percentile of a recording's frame levels taken "
                                           "as its noise floor."),
    top_frac: float = typer.Option(0.01, "--top-frac", help="Silence: share of the band's "
                                   "loudest bins averaged into a frame's level."),
    min_run_frames: int = typer.Option(3, "--min-run-frames", help="Silence: shortest run of "
                                       "active frames kept..."),
    click_db: float = typer.Option(15.0, "--click-db", help="Silence: ...unless it peaks this "
                                   "far above the floor (clicks)."),
    min_active_frac: float = typer.Option(0.03, "--min-active-frac", help="Silence: share of "
                                          "a window's frames that must be active."),
    whiten: bool = typer.Option(True, "--whiten/--no-whiten", help="Silence: subtract a "
                                "per-frequency noise floor first, so coloured noise does not "
                                "hide calls in quiet bands."),
    floor_span_s: float = typer.Option(30.0, "--floor-span-s", help="Silence: the per-"
                                       "frequency floor follows the noise over this many "
                                       "seconds either side."),
    batch_size: int = typer.Option(256, "--batch-size", help="Model: windows per batch."),
    device: str = typer.Option("auto", "--device", help="Model: auto, cpu or cuda."),
    amp: Optional[bool] = AMP,
    workers: int = typer.Option(1, "--workers", "-j", help="Chunks of windows (silence: "
                                "groups of recordings) scored in parallel processes."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask distributed "
                                            "scheduler ADDRESS to run the chunks on."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Score every window, decide, and merge detections into events.

    --silence: per recording, a frame's level is the mean dB of its loudest bins in the band;
    the noise floor is a low percentile of the levels; frames rise into activity at --on-db
    above the floor and fall back below --off-db (hysteresis); short runs are dropped unless
    they peak above --click-db (clicks count as activity). A window is active, not silence,
    when enough of its frames are. The score is the window's loudest frame in dB above the
    floor. --model: the score is the detector's probability of its positive class.

    When the windows carry labels, ROC AUC, average precision, accuracy, F1, precision,
    recall and the confusion matrix are stored and printed, per window and per recording (a
    recording's score is its highest window score).
    """
    import json

    import numpy as np

    from wsd.pipeline import chunks as rowjobs
    from wsd.pipeline.detect import check_binary, evaluate, format_metrics, write_detections
    from wsd.dsp.silence import SilenceParams
    from wsd.errors import UsageError
    from wsd.io.store import atomic_output, check_output, open_file
    from wsd.io.store.rows import RowWriter

    rep = Reporter(quiet, "wsd detect")
    if silence == (model is not None):
        raise UsageError("give exactly one of --silence or --model MODEL.h5")
    check_output(output, force)
    sp = SilenceParams(fmin=fmin, fmax=fmax, top_frac=top_frac,
                       floor_percentile=floor_percentile, on_db=on_db, off_db=off_db,
                       min_run_frames=min_run_frames, click_db=click_db,
                       min_active_frac=min_active_frac, whiten=whiten,
                       floor_span_s=floor_span_s) if silence else None
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    info = None
    if model is not None:
        from wsd.io.store.models import load_model
        from wsd.pipeline.train import pick_device

        dev = pick_device(device)
        info = load_model(model)
        pos_label = check_binary(info, str(model))
    shards = rowjobs.shard_dir(output)
    with open_file(windows, "windows") as f:
        run_kw = {"workers": workers, "scheduler": scheduler}
        if silence:
            params = {"detector": "silence", "windows": str(windows), **sp.__dict__}
            tasks = rowjobs.plan("silence", str(windows), f.n, str(shards),
                                 source_id=f.read("source_id"),
                                 options=json.dumps(sp.__dict__))
            with rep.progress("silence", f.n, "windows") as adv:
                parts = rowjobs.collect(rowjobs.run(tasks, progress=adv, **run_kw))
            score, decided = parts["score"], parts["positive"].astype(bool)
            floor = np.full(len(f.sources["path"]), np.nan, np.float32)
            floor[parts["floor_sid"]] = parts["floor_db"]
            extra = {"floor_db": floor, "active_frac": parts["active_frac"]}
            thr, truth_label = on_db, positive
        else:
            from wsd.models.inference import check_model_settings, choose_amp

            check_model_settings(info, f.spectrogram, f.shape("windows")[2], str(windows))
            use_amp, why = choose_amp(rowjobs.cached_model(str(model), dev)[0],
                                      lambda: f.read("windows", slice(0, min(8, f.n))),
                                      info["norm"], dev, amp)
            if why:
                (rep.warn if amp else rep.note)(why)
            thr = float(threshold if threshold is not None else info["params"]["threshold"])
            params = {"detector": "model", "windows": str(windows), "model": str(model),
                      "arch": info["arch"], "batch_size": batch_size, "amp": use_amp}
            tasks = rowjobs.plan("score", str(windows), f.n, str(shards), model=str(model),
                                 batch_size=batch_size, device=dev, amp=use_amp)
            with rep.progress("detecting", f.n, "windows") as adv:
                score = rowjobs.collect(rowjobs.run(tasks, progress=adv, **run_kw))["score"]
            decided = score >= thr
            extra, truth_label = {}, positive or pos_label
        if silence and threshold is not None:
            decided = score >= threshold
            thr = threshold
        params.update(threshold=thr, min_gap=min_gap, min_duration=min_duration,
                      positive=truth_label)
        metrics = None
        if f.has("label"):
            metrics = evaluate(f.read("label"), truth_label, score, decided,
                               f.read("source_id"), thr)
        history = f.history + ([] if info is None else info["history"])
        history = list(dict.fromkeys(history)) + [history_entry("detect")]
        with atomic_output(output, force) as tmp:
            w = RowWriter(tmp, "detections", params, f.spectrogram, history, f.sources)
            try:
                w.set_attrs(detector=params["detector"], positive_label=truth_label or "")
                ev = write_detections(w, f, score, decided, thr, min_gap, min_duration,
                                      metrics, extra)
            finally:
                w.close()
        n = f.n
    rowjobs.remove(shards)
    kept = int(decided.sum())
    what = "active (not silence)" if silence else "detections"
    rep.note(f"{kept}/{n} windows {what} ({100 * kept / max(n, 1):.1f}%), "
             f"{len(ev['start_s'])} events -> {output}")
    if metrics is not None:
        for line in format_metrics(metrics):
            rep.note(line)
    return 0
