"""Short WAV excerpts beside the report page, so every gallery entry and event can be played.

Clips are requested with a priority, then the best ``max_clips`` are cut from the source
recordings (through :mod:`wsd.io.audio.decode`, the only module that decodes sound) and
written under ``DIR/audio/`` as 16-bit WAV. A clip holds ``context`` seconds of sound before
and after the requested span (within the recording) and at most ``max_seconds`` in all; it
is kept at the analysis sample rate (the spectrograms' rate: the report shows nothing above
its Nyquist frequency, and clips stay small) or the recording's own rate when that is lower,
then sped up and written at a rate browsers play (:mod:`wsd.report.playback`). Timeline
excerpts (a player per recording) are written on their own and do not count against the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from wsd.errors import WsdError


@dataclass(frozen=True)
class ClipRequest:
    """A clip: file ``key``.wav from ``source`` (the recording's path as stored), times in s,
    at most ``rate`` Hz (None: native), content below ``fmax`` Hz (None: up to Nyquist);
    lower ``priority`` tuples are written first."""

    key: str
    source: str
    start_s: float
    end_s: float
    priority: tuple
    rate: float | None = None
    fmax: float | None = None


@dataclass(frozen=True)
class Clip:
    """A written clip: ``src`` (path relative to the report folder), played ``speed`` times
    faster than recorded, starting at ``start_s`` of its recording and holding
    ``duration_s`` recording seconds; ``event``: where the requested span (call, sequence,
    event) starts and ends in it, recording seconds from the clip's start (None for a
    timeline excerpt)."""

    src: str
    speed: float = 1.0
    start_s: float = 0.0
    duration_s: float = 0.0
    event: tuple[float, float] | None = None


def find_source(stored: str, near: Path | None) -> Path | None:
    """The recording a sources table names: the stored path, else the same path relative to
    (or the bare name in) the folder of the file that holds the table; None if not found."""
    p = Path(stored)
    cands = [p]
    if near is not None:
        cands += [near.parent / p, near.parent / p.name]
    return next((c for c in cands if c.is_file()), None)


class ClipWriter:
    """Collects clip requests, then writes the most important ones.

    Parameters
    ----------
    outdir : the report folder (clips go to ``outdir/audio``).
    max_clips : how many requested clips are written at most.
    max_seconds : longest clip, context included (a longer span keeps its beginning).
    warn : ``warn(message, path)`` for recordings that cannot be found or read.
    context : seconds of sound kept before and after each requested span.
    playback : ``"auto"`` (see :func:`wsd.report.playback.auto_speed`) or a speed-up factor.
    """

    def __init__(self, outdir: Path, max_clips: int, max_seconds: float,
                 warn: Callable[[str, str | None], None], context: float = 0.0,
                 playback: str | float = "auto"):
        self.outdir = Path(outdir)
        self.max_clips = int(max_clips)
        self.max_seconds = float(max_seconds)
        self.context = float(context)
        self.playback = playback
        self.warn = warn
        self.requests: dict[str, ClipRequest] = {}
        self.written: dict[str, Clip] = {}
        self.missing: set[str] = set()
        self.left_out = 0
        self.speeds: set[float] = set()
        self._found: dict[tuple[str, str], Path | None] = {}

    def request(self, key: str, source: str, start_s: float, end_s: float, priority: tuple,
                near: Path | None = None, rate: float | None = None,
                fmax: float | None = None) -> None:
        """Ask for a clip (``near``: the wsd file whose sources table names ``source``;
        ``rate``: highest sample rate to keep, Hz; ``fmax``: top of the band shown, Hz)."""
        path = self._locate(source, near)
        if path is None:
            return
        old = self.requests.get(key)
        if old is None or priority < old.priority:
            self.requests[key] = ClipRequest(key, str(path), float(start_s), float(end_s),
                                             priority, rate, fmax)

    def _locate(self, source: str, near: Path | None) -> Path | None:
        k = (source, str(near))
        if k not in self._found:
            self._found[k] = find_source(source, near)
            if self._found[k] is None and source not in self.missing:
                self.missing.add(source)
                self.warn("recording not found: its clips are left out of the report", source)
        return self._found[k]

    def speed_for(self, rate: float, fmax: float | None = None) -> float:
        """The playback speed asked for audio at ``rate`` Hz (before rounding to a rate)."""
        from wsd.report.playback import auto_speed

        return auto_speed(rate, fmax) if self.playback == "auto" else float(self.playback)

    def _write(self, r: ClipRequest, context: float, max_seconds: float) -> Clip | None:
        from wsd.io.audio.decode import read_excerpt, write_wav
        from wsd.io.audio.resample import resample_ratio
        from wsd.report.playback import render

        (self.outdir / "audio").mkdir(exist_ok=True)
        rel = f"audio/{r.key}.wav"
        a = max(0.0, r.start_s)
        b = max(a, r.end_s)
        c0 = max(0.0, a - context)
        c1 = min(b + context, c0 + max_seconds)
        try:
            x, sr = read_excerpt(r.source, c0, c1)
            if not len(x):
                return None
            if r.rate and int(r.rate) < sr:
                from scipy.signal import resample_poly

                up, down = resample_ratio(sr, int(r.rate))
                x, sr = resample_poly(x, up, down).astype("float32"), int(r.rate)
            y, p = render(x, sr, self.speed_for(sr, r.fmax))
            write_wav(self.outdir / rel, y, p.out_rate)
        except WsdError as e:
            if r.source not in self.missing:
                self.missing.add(r.source)
                self.warn(f"cannot cut clips ({e.reason})", r.source)
            return None
        self.speeds.add(round(p.speed, 6))
        dur = len(x) / sr
        return Clip(rel, p.speed, c0, dur, (min(a - c0, dur), min(b - c0, dur)))

    def write_all(self, advance=lambda n=1, **_: None) -> dict[str, Clip]:
        """Write the ``max_clips`` requests of lowest priority; return key -> :class:`Clip`.
        ``advance(1, status=key)`` after each clip."""
        order = sorted(self.requests.values(), key=lambda r: (r.priority, r.key))
        self.left_out = max(0, len(order) - self.max_clips)
        for r in order[: self.max_clips]:
            clip = self._write(r, self.context, self.max_seconds)
            if clip is not None:
                self.written[r.key] = clip
            advance(1, status=r.key)
        return self.written

    def to_write(self) -> int:
        """How many clips :meth:`write_all` will write (at most)."""
        return min(len(self.requests), self.max_clips)

    def timeline(self, key: str, source: str, start_s: float, end_s: float,
                 near: Path | None = None, rate: float | None = None,
                 fmax: float | None = None) -> Clip | None:
        """Write a timeline's whole excerpt now (not capped, no context): its
        :class:`Clip` (``event`` None), or None."""
        path = self._locate(source, near)
        if path is None:
            return None
        clip = self._write(ClipRequest(key, str(path), start_s, end_s, (), rate, fmax),
                           0.0, math.inf)
        return None if clip is None else Clip(clip.src, clip.speed, clip.start_s,
                                              clip.duration_s, None)
