"""wsd detect: flag silence, or find calls with a trained detector."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wsd.cli.common import (AMP, DEVICE, FORCE, QUIET, TRACEBACK,
                            Reporter, history_entry, scheduler_option, workers_option)


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
    min_duration: Optional[float] = typer.Option(None, "--min-duration", help="Drop events "
                                                 "shorter than this (s) [default: 0.5 for "
                                                 "frame events (--silence), measured: most "
                                                 "shorter runs in real recordings are noise "
                                                 "transients; else 0]."),
    calibrate: str = typer.Option("auto", "--calibrate", help="auto | none | recording | peaks: "
                                  "the model's log-odds scaled per recording, so one "
                                  "threshold holds across recordings of different noise. "
                                  "recording: robust z ((x - median) / (1.4826 MAD) of all "
                                  "its scores); peaks: the same with the median and MAD of "
                                  "the trace's local maxima (averaged over 5 windows): the "
                                  "background peaks a detection must clear. The threshold is "
                                  "then in those units [default threshold: the probe's, set "
                                  "on cross-validation for each scale]. auto: for a model on "
                                  "long recordings (median over 60 s) the recipe: peaks "
                                  "here, --events peaks and --smooth 2 (measured best on "
                                  "up-calls and killer whale calls: benchmarks/README.md), "
                                  "unless --threshold, --min-gap, --min-duration, --events "
                                  "are given or the model records no peaks threshold; else "
                                  "none."),
    events: str = typer.Option("auto", "--events", help="merge: detected windows closer "
                               "than --min-gap join into one event; peaks: one event of "
                               "--event-length around each peak of the score above the "
                               "threshold (for calls of a typical length); frames (with "
                               "--silence): each run of active frames is an event, as long "
                               "as the sound rather than whole windows, runs closer than "
                               "--min-gap joined; auto: frames for --silence (merge with "
                               "--threshold); for a model peaks with the recipe of "
                               "--calibrate auto, else merge."),
    event_length: Optional[float] = typer.Option(None, "--event-length", help="Peaks: an "
                                                 "event's length (s) [default: the median "
                                                 "length of the events the probe was "
                                                 "trained on (--labels), else a window's]."),
    min_separation: Optional[float] = typer.Option(None, "--min-separation", help="Peaks: "
                                                   "seconds between two peaks at least "
                                                   "[default: the event length, so events "
                                                   "never overlap]."),
    smooth: Optional[int] = typer.Option(None, "--smooth", help="Peaks: average the scores "
                                         "over 2 N + 1 windows first [default: 2 in the "
                                         "recipe of --calibrate auto, else 0]."),
    clip_score: str = typer.Option("auto", "--clip-score", help="A recording's (a clip's) "
                                   "score, for the per-recording metrics and the page: its "
                                   "windows' max, mean, median, or top (the mean of their "
                                   "highest quarter); the recording counts as detected when "
                                   "its windows' decisions (0 or 1) aggregated the same way "
                                   "reach 0.5. auto: median for clips (median length <= 60 "
                                   "s; measured best on orca and noise clips, where max "
                                   "follows one loud transient), max for longer recordings "
                                   "(where a call is a few windows among thousands)."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="Reference events (a Raven "
                                         "table, an Audacity track or a path,start_s,end_s "
                                         "CSV): score the events one-to-one at IoU >= 0.3 "
                                         "(F1, precision, recall, false positives per hour, "
                                         "AP), as DCASE does."),
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
    band_spread: bool = typer.Option(True, "--band-spread/--no-band-spread", help="Silence: "
                                     "divide each frequency's rise above its floor by how "
                                     "much that frequency's noise swings in the recording "
                                     "(the spread of its 10th to 90th percentile, at least "
                                     "--min-spread-db), relative to a typical frequency's: fluctuating "
                                     "bands (surf, flow, a codec's top band, an engine) must "
                                     "rise further than steady ones (measured: "
                                     "benchmarks/README.md). A sound filling one narrow band "
                                     "for over a tenth of the recording is scaled down with "
                                     "it (at most 3x): --no-band-spread there."),
    min_spread_db: float = typer.Option(3.0, "--min-spread-db", help="Silence: with "
                                        "--band-spread, the smallest spread a frequency is "
                                        "divided by (a band empty in the recording is not "
                                        "amplified without bound)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Model: windows per batch."),
    device: str = DEVICE,
    amp: Optional[bool] = AMP,
    workers: int = workers_option("Chunks of windows (silence: groups of recordings) scored"),
    scheduler: Optional[str] = scheduler_option("the chunks"),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Score every window, decide, and merge detections into events.

    --silence: per recording, a frame's level is the mean dB of its loudest bins in the band,
    each bin's rise above its own floor scaled by how steady that bin's noise is; the noise
    floor is a low percentile of the levels; frames rise into activity at --on-db
    above the floor and fall back below --off-db (hysteresis); short runs are dropped unless
    they peak above --click-db (clicks count as activity). A window is active, not silence,
    when enough of its frames are. The score is the window's loudest frame in dB above the
    floor. --model: the score is the detector's probability of its positive class.

    When the windows carry labels, ROC AUC, average precision, accuracy, F1, precision,
    recall and the confusion matrix are stored and printed, per window and per recording (a
    recording's score is its windows' max, mean, median or top quarter, --clip-score; by
    default the median for clips of up to 60 s and the max for longer recordings).
    """
    from wsd.dsp.silence import SilenceParams
    from wsd.pipeline.detect import DetectParams, format_metrics, run_detect

    rep = Reporter(quiet, "wsd detect")
    sp = SilenceParams(fmin=fmin, fmax=fmax, top_frac=top_frac,
                       floor_percentile=floor_percentile, on_db=on_db, off_db=off_db,
                       min_run_frames=min_run_frames, click_db=click_db,
                       min_active_frac=min_active_frac, whiten=whiten,
                       floor_span_s=floor_span_s, band_spread=band_spread,
                       min_spread_db=min_spread_db) if silence else None
    p = DetectParams(silence=sp, model=str(model) if model is not None else None,
                     threshold=threshold, min_gap=min_gap, min_duration=min_duration,
                     positive=positive, batch_size=batch_size, device=device, amp=amp,
                     workers=workers, scheduler=scheduler,
                     truth=str(truth) if truth else None, calibrate=calibrate,
                     events=events, event_length=event_length,
                     min_separation=min_separation, smooth=smooth, clip_score=clip_score)
    s = run_detect(windows, output, p, [history_entry("detect")], force=force, progress=rep)
    n, kept = s["n"], s["detected"]
    what = "active (not silence)" if silence else "detections"
    rep.note(f"{kept}/{n} windows {what} ({100 * kept / max(n, 1):.1f}%), "
             f"{len(s['events']['start_s'])} events -> {output}")
    if s["metrics"] is not None and "window" in s["metrics"]:
        for line in format_metrics(s["metrics"]):
            rep.note(line)
    e = s.get("event_metrics")
    if e:
        rep.note(f"events against {truth}: F1 {e['f1']:.3f}, precision {e['precision']:.3f}, "
                 f"recall {e['recall']:.3f} (tp {e['tp']}, fp {e['fp']}, fn {e['fn']}), "
                 + (f"{e['fp_per_hour']:.1f} false positives/hour" if e['fp_per_hour'] is not None
                    else "") + (f", AP {e['average_precision']:.3f}"
                                if e['average_precision'] is not None else ""))
    return 0
