"""Short WAV excerpts beside the report page, so every gallery entry and event can be played.

Clips are requested with a priority, then the best ``max_clips`` are cut from the source
recordings (through :mod:`wsd.io.audio.decode`, the only module that decodes sound) and written under
``DIR/audio/`` as 16-bit WAV at the analysis sample rate (the spectrograms' rate: the report
shows nothing above its Nyquist frequency, and clips stay small) or the recording's own rate
when that is lower. Timeline excerpts (a player per recording) are written on their own and
do not count against the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from wsd.errors import WsdError


@dataclass(frozen=True)
class ClipRequest:
    """A clip: file ``key``.wav from ``source`` (the recording's path as stored), times in s,
    at most ``rate`` Hz (None: native); lower ``priority`` tuples are written first."""

    key: str
    source: str
    start_s: float
    end_s: float
    priority: tuple
    rate: float | None = None


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
    max_seconds : longer clips are cut to their first ``max_seconds``.
    warn : ``warn(message, path)`` for recordings that cannot be found or read.
    """

    def __init__(self, outdir: Path, max_clips: int, max_seconds: float,
                 warn: Callable[[str, str | None], None]):
        self.outdir = Path(outdir)
        self.max_clips = int(max_clips)
        self.max_seconds = float(max_seconds)
        self.warn = warn
        self.requests: dict[str, ClipRequest] = {}
        self.written: dict[str, str] = {}  # key -> path relative to outdir
        self.missing: set[str] = set()
        self.left_out = 0
        self._found: dict[tuple[str, str], Path | None] = {}

    def request(self, key: str, source: str, start_s: float, end_s: float, priority: tuple,
                near: Path | None = None, rate: float | None = None) -> None:
        """Ask for a clip (``near``: the wsd file whose sources table names ``source``;
        ``rate``: highest sample rate to keep, Hz)."""
        path = self._locate(source, near)
        if path is None:
            return
        old = self.requests.get(key)
        if old is None or priority < old.priority:
            self.requests[key] = ClipRequest(key, str(path), float(start_s), float(end_s),
                                             priority, rate)

    def _locate(self, source: str, near: Path | None) -> Path | None:
        k = (source, str(near))
        if k not in self._found:
            self._found[k] = find_source(source, near)
            if self._found[k] is None and source not in self.missing:
                self.missing.add(source)
                self.warn("recording not found: its clips are left out of the report", source)
        return self._found[k]

    def _write(self, key: str, path: str, start_s: float, end_s: float,
               rate: float | None) -> str | None:
        from wsd.io.audio.decode import read_excerpt, resample_ratio, write_wav

        (self.outdir / "audio").mkdir(exist_ok=True)
        rel = f"audio/{key}.wav"
        try:
            x, sr = read_excerpt(path, max(0.0, start_s), max(start_s, end_s))
            if not len(x):
                return None
            if rate and int(rate) < sr:
                from scipy.signal import resample_poly

                up, down = resample_ratio(sr, int(rate))
                x, sr = resample_poly(x, up, down).astype("float32"), int(rate)
            write_wav(self.outdir / rel, x, sr)
        except WsdError as e:
            if path not in self.missing:
                self.missing.add(path)
                self.warn(f"cannot cut clips ({e.reason})", path)
            return None
        return rel

    def write_all(self) -> dict[str, str]:
        """Write the ``max_clips`` requests of lowest priority; return key -> relative path."""
        order = sorted(self.requests.values(), key=lambda r: (r.priority, r.key))
        self.left_out = max(0, len(order) - self.max_clips)
        for r in order[: self.max_clips]:
            end = min(r.end_s, r.start_s + self.max_seconds)
            rel = self._write(r.key, r.source, r.start_s, end, r.rate)
            if rel is not None:
                self.written[r.key] = rel
        return self.written

    def timeline(self, key: str, source: str, start_s: float, end_s: float,
                 near: Path | None = None, rate: float | None = None) -> str | None:
        """Write a timeline's whole excerpt now (not capped); its relative path or None."""
        path = self._locate(source, near)
        return None if path is None else self._write(key, str(path), start_s, end_s, rate)
