"""wsd report: figures, metrics.json and a self-contained index.html from wsd files."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from wsd.cli.common import FORCE, QUIET, TRACEBACK, Reporter


def report_cmd(
    inputs: List[Path] = typer.Argument(..., metavar="INPUT.h5...", help="wsd files of any "
                                        "kind: windows, model, embeddings, detections, "
                                        "clusters, hits."),
    output: Path = typer.Option(..., "--output", "-o", help="Report folder to create."),
    projection: str = typer.Option("pca", "--projection", help="Embedding map: pca or tsne."),
    max_points: int = typer.Option(5000, "--max-points", help="Windows drawn on the embedding "
                                   "map at most (a seeded sample beyond)."),
    max_clips: int = typer.Option(200, "--max-clips", help="WAV clips written at most "
                                  "(medoids first, then the most novel sequences, then "
                                  "gallery members and events)."),
    clip_seconds: float = typer.Option(10.0, "--clip-seconds", help="Longest clip (context "
                                       "included) and gallery panel (s)."),
    clip_context: float = typer.Option(1.0, "--clip-context", help="Seconds of sound a clip "
                                       "keeps before and after its window, sequence or event "
                                       "(within the recording); the page marks where the "
                                       "event lies in the clip."),
    playback_rate: str = typer.Option("auto", "--playback-rate", metavar="auto|N",
                                      help="Play clips and timelines N times faster than "
                                      "recorded (N < 1: slower). auto: 1 for recordings that "
                                      "reach audible frequencies; 2, 5, 10... for infrasonic "
                                      "and low-rate ones (10 for 50 Hz, so 10-25 Hz blue-whale "
                                      "calls are heard at 100-250 Hz). Audio is written at 8 "
                                      "kHz or more: browsers do not play low-rate WAV."),
    gallery_size: int = typer.Option(8, "--gallery-size", help="Spectrograms per cluster "
                                     "gallery, the medoid included."),
    galleries: int = typer.Option(12, "--galleries", help="Clusters given a gallery (the "
                                  "largest)."),
    review_items: int = typer.Option(200, "--review-items", help="Items on a review page at "
                                     "most: the hits of a hits file (every query's best ranks "
                                     "first) or a detections file's events (of the --events "
                                     "listed); each has a spectrogram, a clip and yes / no / "
                                     "unsure marks."),
    novel: int = typer.Option(10, "--novel", help="Most novel sequences listed to listen to."),
    events: int = typer.Option(100, "--events", help="Detected events listed (highest score "
                               "first)."),
    timelines: int = typer.Option(3, "--timelines", help="Recordings given a timeline "
                                  "player."),
    timeline_seconds: float = typer.Option(60.0, "--timeline-seconds", help="Longest span of "
                                           "a recording in a timeline (its busiest part, s)."),
    seed: int = typer.Option(0, "--seed", help="Seed for samples and t-SNE."),
    follow: bool = typer.Option(True, "--follow/--no-follow", help="Also open the files the "
                                "inputs were made from (windows, model, embeddings)."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Write PNG figures, metrics.json and index.html into a folder.

    What is drawn is chosen to fit the kinds of file given.

    Embeddings: a PCA or t-SNE map coloured by cluster, label or detector decision, with the
    densest regions enlarged; reconstructions; a GAN's generated windows. Models: training
    curves and the first convolution layer's kernels. Detections: ROC and precision-recall
    curves, confusion matrices (counts and rates), the score distribution, and timeline
    players (spectrogram, per-window score coloured by decision, events) with a cursor that
    follows the sound. Clusters: sizes, dendrogram, a density/novelty view and a gallery
    per cluster (medoid first) with a play button under every spectrogram.

    Hits (wsd search): a review page, hits grouped by query, best first, each with a
    spectrogram, a play button and yes / no / unsure marks (keys j/k, y/n/u, x, space)
    downloaded as a labels CSV path,start_s,end_s,label (yes: the label typed, no: noise,
    unsure: unsure) for wsd train --arch linear --labels and wsd slice --labels; marks stay
    in the browser until cleared. Detections get the same review of their events.
    The files the inputs were made from are opened too (unless --no-follow), so
    `wsd report clusters.h5 -o report/` shows the whole chain. Clips are short WAV excerpts
    of the recordings in report/audio/; the page works offline from the folder (open
    index.html in a browser). An existing report folder is replaced only with --force.
    """
    from wsd.report import ReportOptions, build_report

    rep = Reporter(quiet, "wsd report")
    opts = ReportOptions(projection=projection, max_points=max_points, max_clips=max_clips,
                         clip_seconds=clip_seconds, clip_context=clip_context,
                         playback_rate=playback_rate, gallery_size=gallery_size,
                         galleries=galleries, novel=novel, events=events, timelines=timelines,
                         timeline_seconds=timeline_seconds, seed=seed, follow=follow,
                         review_items=review_items)
    out = build_report([str(p) for p in inputs], output, opts, force=force,
                       warn=lambda msg, path=None: rep.warn(msg, path), progress=rep)
    more = f" ({out['clips_left_out']} left out: --max-clips)" if out["clips_left_out"] else ""
    rep.note(f"{len(out['figures'])} figures, {len(out['clips'])} clips{more} -> {out['page']}")
    return 0
