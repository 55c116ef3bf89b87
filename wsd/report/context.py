"""What the parts of a report share: its options, the output folder, figure saving, the open
windows files and the clip writer."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from wsd.errors import UsageError
from wsd.report.analysis import PROJECTIONS
from wsd.report.clips import ClipWriter
from wsd.report.collect import Collection, Item, WindowsData


HEARTBEAT_S = 1.0  # seconds between progress updates while one long call runs


@dataclass(frozen=True)
class ReportOptions:
    """Settings of ``wsd report``; each field is the CLI flag (``max_clips`` -> ``--max-clips``).

    projection : "pca" or "tsne" for the embedding map.
    max_points : windows drawn on the embedding map at most (a seeded sample beyond).
    max_clips : WAV clips written at most for galleries, novel sequences and events.
    clip_seconds : a clip (context included, and a gallery panel) holds at most this many
        seconds.
    clip_context : seconds of sound a clip keeps before and after its window, sequence or
        event (within the recording); the page shows where the event lies in the clip.
    playback_rate : "auto" (1 for recordings that reach audible frequencies; a speed-up of
        2, 5, 10... for infrasonic and low-rate ones, e.g. 10 for 50 Hz) or a number, the
        factor clips and timelines are played faster than recorded (< 1: slower).
    gallery_size : panels per cluster gallery, the medoid included.
    galleries : clusters given a gallery (the largest ones).
    novel : most novel sequences listed with play buttons.
    events : detection events listed (highest score first).
    timelines : recordings given a timeline player.
    timeline_seconds : longest span of a recording a timeline shows (its busiest part).
    review_items : items on a review page at most: the hits of a hits file (every query's
        best ranks first) or a detections file's events (of the ``events`` listed).
    seed : seed for samples and t-SNE.
    follow : also open the files the inputs were made from (windows, model, embeddings).
    """

    projection: str = "pca"
    max_points: int = 5000
    max_clips: int = 200
    clip_seconds: float = 10.0
    clip_context: float = 1.0
    playback_rate: str | float = "auto"
    gallery_size: int = 8
    galleries: int = 12
    novel: int = 10
    events: int = 100
    timelines: int = 3
    timeline_seconds: float = 60.0
    review_items: int = 200
    seed: int = 0
    follow: bool = True

    def __post_init__(self):
        from wsd.report.playback import check_playback_rate

        bad = []
        try:
            object.__setattr__(self, "playback_rate", check_playback_rate(self.playback_rate))
        except UsageError as e:
            bad.append(str(e))
        if not (math.isfinite(self.clip_context) and self.clip_context >= 0):
            bad.append("--clip-context must be >= 0 seconds")
        if self.projection not in PROJECTIONS:
            bad.append(f"--projection must be one of {', '.join(PROJECTIONS)}, "
                       f"got {self.projection!r}")
        for name in ("max_points", "gallery_size"):
            if getattr(self, name) < 2:
                bad.append(f"--{name.replace('_', '-')} must be >= 2")
        for name in ("max_clips", "galleries", "novel", "events", "timelines",
                     "review_items"):
            if getattr(self, name) < 0:
                bad.append(f"--{name.replace('_', '-')} must be >= 0")
        for name in ("clip_seconds", "timeline_seconds"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                bad.append(f"--{name.replace('_', '-')} must be > 0 seconds")
        if bad:
            raise UsageError("; ".join(bad))


class Ctx:
    """Shared state while a report is built in ``outdir``."""

    def __init__(self, outdir: Path, options: ReportOptions, col: Collection,
                 warn: Callable[[str, str | None], None]):
        self.outdir = Path(outdir)
        self.opts = options
        self.col = col
        self.warn = warn
        self.clips = ClipWriter(self.outdir, options.max_clips, options.clip_seconds, warn,
                                options.clip_context, options.playback_rate)
        self.advance = lambda n=1, status=None, **_: None  # the progress bar of the figures
        self.files: list[str] = []  # figures written, relative to outdir
        self.thumbs: list[str] = []  # review thumbnails written, relative to outdir
        self.maps: dict[str, dict] = {}  # embeddings name -> {"index", "xy", "axis_names"}
        self._windows: dict[str, WindowsData | None] = {}

    def save(self, fig, name: str) -> str:
        """Save ``fig`` as ``outdir/name.png``; return the relative path."""
        from wsd.report.figures.plotting import save

        rel = f"{name}.png"
        save(fig, self.outdir / rel)
        self.files.append(rel)
        self.advance(1, status=rel)
        return rel

    def run_slow(self, fn: Callable, what: str):
        """``fn()`` (one long call, e.g. t-SNE) in a daemon thread while the progress bar's
        status counts the seconds every :data:`HEARTBEAT_S`; its result, or its exception."""
        out: dict = {}

        def target():
            try:
                out["value"] = fn()
            except BaseException as e:  # handed to the caller below
                out["error"] = e

        t = time.monotonic()
        th = threading.Thread(target=target, name="wsd-report-slow", daemon=True)
        th.start()
        self.advance(0, status=what)
        while th.is_alive():
            th.join(HEARTBEAT_S)
            if th.is_alive():
                self.advance(0, status=f"{what}: {time.monotonic() - t:.0f} s")
        if "error" in out:
            raise out["error"]
        return out["value"]

    def project(self, x: np.ndarray) -> tuple[np.ndarray, dict]:
        """:func:`wsd.report.analysis.project_2d` of ``x`` ``(n, D)`` with the report's
        projection and seed (a t-SNE keeps the progress bar moving)."""
        from wsd.report.analysis import project_2d

        run = lambda: project_2d(x, self.opts.projection, self.opts.seed)  # noqa: E731
        if self.opts.projection == "tsne" and len(x) >= 3:
            return self.run_slow(run, f"t-SNE of {len(x):,} points")
        return run()

    def band(self, item: Item) -> dict:
        """``rate`` (analysis sample rate) and ``fmax`` (top of the band it was cropped to)
        of an item's spectrogram, for :meth:`ClipWriter.request`."""
        spec = (item.f.spectrogram if item.f is not None else None) or {}
        return {"rate": spec.get("sample_rate"), "fmax": spec.get("fmax")}

    def windows(self, item: Item | None) -> WindowsData | None:
        """The windows data of a windows item (cached), or None."""
        if item is None or item.kind != "windows":
            return None
        if item.name not in self._windows:
            self._windows[item.name] = WindowsData(item)
        return self._windows[item.name]

    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.opts.seed, salt])


def spectrogram_axes(item: Item) -> tuple[np.ndarray, float, float] | None:
    """``(freqs (bins,) Hz, hop_s, offset_s)`` from a file's spectrogram settings, or None."""
    from wsd.dsp.spectrogram import SpectrogramParams

    spec = item.f.spectrogram if item.f is not None else None
    if not spec:
        return None
    try:
        p = SpectrogramParams.from_dict(spec)
    except (UsageError, TypeError):
        return None
    return p.freqs(), p.hop_length / p.sample_rate, p.n_fft / (2 * p.sample_rate)
