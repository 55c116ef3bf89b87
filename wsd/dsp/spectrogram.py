"""Log-magnitude spectrogram windows, computed block by block.

Conventions (documented in man/wsd-slice.1 and the README):

* Frames are not centred: frame ``i`` covers samples ``[i*hop_length, i*hop_length + n_fft)``
  of the (resampled) signal, with a periodic Hann window.
* Of the ``n_fft // 2 + 1`` rfft bins the last one (the Nyquist bin, exactly sr/2) is dropped,
  so the default n_fft = 512 gives 256 bins: DC up to sr/2 - sr/512 (the Convnet V1 seed's
  32 x 256 input). ``fmin``/``fmax`` then crop to the bins whose centre lies in [fmin, fmax].
* Values are magnitude in dB re a full-scale sinusoid: ``20 log10(max(|X| * 2 / sum(w),
  10**(floor_db/20)))``, so a sine of amplitude 1 reads about 0 dB and the floor is
  ``floor_db`` (-100 dB by default; digital silence reads exactly the floor).
* Window ``w`` holds frames ``[w*step, w*step + frames)``; it starts at sample
  ``w*step*hop_length`` and ends at ``start + (frames-1)*hop_length + n_fft``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from wsd.errors import UsageError

DTYPES = ("float16", "float32")
FREQ_SCALES = ("linear", "mel")
SCALES = ("db", "log1p", "pcen")
#: --whiten follows the noise floor over this many seconds either side of a window.
WHITEN_SPAN_S = 60.0


@dataclass(frozen=True)
class SpectrogramParams:
    """Spectrogram and windowing settings; travel with every file and model."""

    sample_rate: int
    n_fft: int = 512
    hop_length: int = 256
    frames: int = 32
    step: int = 32
    fmin: float = 0.0
    fmax: float | None = None
    floor_db: float = -100.0
    channel: str = "mix"
    freq_scale: str = "linear"
    n_mels: int = 64
    scale: str = "db"
    whiten: float | None = None

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise UsageError(msg)
        need(self.sample_rate > 0, f"--sample-rate must be positive (got {self.sample_rate})")
        need(self.n_fft >= 4, f"--n-fft must be at least 4 (got {self.n_fft})")
        need(0 < self.hop_length, f"--hop-length must be positive (got {self.hop_length})")
        need(self.frames >= 1, f"--frames must be at least 1 (got {self.frames})")
        need(self.step >= 1, f"--step must be at least 1 (got {self.step})")
        need(self.fmin >= 0, f"--fmin must be >= 0 (got {self.fmin})")
        need(self.floor_db < 0, f"floor_db must be negative (got {self.floor_db})")
        if self.fmax is not None:
            need(self.fmax > self.fmin, f"--fmax ({self.fmax}) must be above --fmin ({self.fmin})")
        need(self.freq_scale in FREQ_SCALES, f"--freq-scale must be one of "
             f"{', '.join(FREQ_SCALES)} (got {self.freq_scale})")
        need(self.scale in SCALES, f"--scale must be one of {', '.join(SCALES)} "
             f"(got {self.scale})")
        need(self.n_mels >= 1, f"--n-mels must be at least 1 (got {self.n_mels})")
        need(self.whiten is None or 0 <= self.whiten <= 100,
             f"--whiten takes a percentile in [0, 100] (got {self.whiten})")
        if self.freq_scale == "mel":
            need(self.fmin < self.top(), f"--fmin ({self.fmin}) must be below --fmax / "
                 f"Nyquist ({self.top():g} Hz)")
        need(len(self.bin_indices()) > 0,
             f"no frequency bin lies in [{self.fmin}, {self.fmax}] Hz at "
             f"{self.sample_rate} Hz with --n-fft {self.n_fft}")
        if self.channel != "mix":
            need(str(self.channel).isdigit(), f"--channel must be 'mix' or a channel number "
                                              f"counted from 0 (got {self.channel!r})")

    def top(self) -> float:
        """Highest frequency of the band (Hz): --fmax, else just below Nyquist."""
        nyq = self.sample_rate / 2 - self.sample_rate / self.n_fft
        return nyq if self.fmax is None else min(float(self.fmax), self.sample_rate / 2)

    def bin_indices(self) -> np.ndarray:
        """Indices into the rfft bins kept (Nyquist bin dropped, then cropped); with mel
        bands, the bins the filterbank reads."""
        f = np.arange(self.n_fft // 2) * (self.sample_rate / self.n_fft)
        hi = np.inf if self.fmax is None else self.fmax
        return np.flatnonzero((f >= self.fmin) & (f <= hi))

    def freqs(self) -> np.ndarray:
        """Centre frequency in Hz of each kept bin (mel: band), shape (bins,)."""
        if self.freq_scale == "mel":
            from wsd.dsp.frontend import mel_filterbank

            return mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin,
                                  self.top())[1]
        return self.bin_indices() * (self.sample_rate / self.n_fft)

    @property
    def bins(self) -> int:
        return self.n_mels if self.freq_scale == "mel" else len(self.bin_indices())

    @property
    def units(self) -> str:
        """What the values of a window are."""
        u = {"db": "dB re full-scale sine", "log1p": "log(1 + 100 |X|)", "pcen": "PCEN"}
        if self.whiten is None:
            return u[self.scale]
        return (f"{u[self.scale]} above the recording's noise floor, in standard deviations "
                "of the recording")

    @property
    def window_samples(self) -> int:
        """Samples spanned by one window."""
        return (self.frames - 1) * self.hop_length + self.n_fft

    def window_times(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (s) of windows number ``w`` counted from a file's start."""
        start = np.asarray(w, np.int64) * self.step * self.hop_length
        return start / self.sample_rate, (start + self.window_samples) / self.sample_rate

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SpectrogramParams":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("fmax") is not None and not np.isfinite(kw["fmax"]):
            kw["fmax"] = None
        return cls(**kw)

    def describe(self) -> str:
        fmax = "sr/2" if self.fmax is None else f"{self.fmax:g}"
        return (f"sample_rate={self.sample_rate} n_fft={self.n_fft} hop_length={self.hop_length} "
                f"frames={self.frames} bins={self.bins} fmin={self.fmin:g} fmax={fmax} "
                f"floor_db={self.floor_db:g} freq_scale={self.freq_scale} scale={self.scale} "
                f"whiten={self.whiten}")

    def comparable(self) -> dict:
        """The settings that must agree between a model and the windows it reads."""
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "frames": self.frames, "bins": self.bins,
                "fmin": float(self.fmin), "fmax": self.fmax, "floor_db": float(self.floor_db),
                "freq_scale": self.freq_scale, "scale": self.scale, "whiten": self.whiten}


class Spectrogrammer:
    """Turn a stream of sample blocks into windows of log spectrogram frames.

    ``push(samples)`` returns the windows completed so far as ``(k, frames, bins)`` float32
    and their window numbers ``(k,)``; ``finish(pad=True)`` zero-pads a stream too short for a
    single window into one window (returned with ``padded=True``). Memory: one block plus one
    window of frames.
    """

    def __init__(self, p: SpectrogramParams):
        self.p = p
        # periodic Hann, as scipy.signal.get_window("hann", n_fft) (not imported: slow start)
        w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(p.n_fft) / p.n_fft)).astype(np.float32)
        self._win = w
        import scipy.fft  # here, not at the top: a coordinator that only reads the settings
        # (wsd slice --workers N) does not pay its import (0.3 s)

        self._rfft = scipy.fft.rfft
        keep = p.bin_indices()
        self._bins = p.bins
        self._mel = None
        if p.freq_scale == "mel":
            from wsd.dsp.frontend import mel_filterbank

            fb = mel_filterbank(p.sample_rate, p.n_fft, p.n_mels, p.fmin, p.top())[0]
            keep = np.flatnonzero(fb.sum(1) > 0)
            self._mel = np.ascontiguousarray(fb[keep])
        contiguous = len(keep) and keep[-1] - keep[0] + 1 == len(keep)
        self._keep = slice(int(keep[0]), int(keep[-1]) + 1) if contiguous else keep
        self._scale_db = np.float32(20 * np.log10(2.0 / float(w.sum())))
        self._floor_mag = np.float32(10 ** ((p.floor_db - self._scale_db) / 20))
        self._pcen = None
        if p.scale == "pcen":
            from wsd.dsp.frontend import Pcen

            self._pcen = Pcen(p.sample_rate, p.hop_length)
        self._samples = np.zeros(0, np.float32)
        self._skip = 0  # samples to drop before the next frame (hop_length > n_fft)
        self._frames = np.zeros((0, p.bins), np.float32)
        self._frame0 = 0  # frame number of _frames[0]
        self._next_window = 0
        self.n_samples = 0

    def frames_db(self, x: np.ndarray) -> np.ndarray:
        """All complete frames of ``x`` (1-D, starting on a frame boundary), (n, bins), in
        the front end's scale (dB by default)."""
        p = self.p
        if len(x) < p.n_fft:
            return np.zeros((0, self._bins), np.float32)
        n = 1 + (len(x) - p.n_fft) // p.hop_length
        fr = np.lib.stride_tricks.sliding_window_view(x, p.n_fft)[:: p.hop_length][:n]
        spec = self._rfft(fr * self._win, axis=1)[:, self._keep]
        mag = np.abs(spec)  # (n, bins) float32
        if self._mel is not None:
            mag = mag @ self._mel
        if p.scale == "log1p":
            from wsd.dsp.frontend import LOG1P_GAIN

            return np.log1p(LOG1P_GAIN * mag).astype(np.float32)
        if p.scale == "pcen":
            return self._pcen(mag)
        np.maximum(mag, self._floor_mag, out=mag)
        np.log10(mag, out=mag)
        mag *= 20
        mag += self._scale_db
        return mag

    def _emit(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        avail = self._frame0 + len(self._frames)  # frames computed so far (exclusive end)
        last = (avail - p.frames) // p.step  # last window number complete
        if last < self._next_window:
            empty = np.zeros((0, p.frames, self._bins), np.float32)
            return empty, np.zeros(0, np.int64)
        ws = np.arange(self._next_window, last + 1)
        first = ws[0] * p.step - self._frame0
        if p.step == p.frames:  # back to back: a reshape, no copy
            out = self._frames[first : first + len(ws) * p.frames].reshape(len(ws), p.frames,
                                                                              self._bins)
        else:
            view = np.lib.stride_tricks.sliding_window_view(self._frames, p.frames, axis=0)
            out = np.ascontiguousarray(view[first :: p.step][: len(ws)].transpose(0, 2, 1))
        self._next_window = last + 1
        drop = min(self._next_window * p.step - self._frame0, len(self._frames))
        self._frames = self._frames[drop:]
        self._frame0 += drop
        return out, ws

    def push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed samples (1-D float32); return new windows (k, frames, bins) and numbers (k,)."""
        self.n_samples += len(x)
        x = np.asarray(x, np.float32)
        if self._skip:
            k = min(self._skip, len(x))
            x, self._skip = x[k:], self._skip - k
        buf = np.concatenate([self._samples, x]) if len(self._samples) else x
        fr = self.frames_db(buf)
        used = len(fr) * self.p.hop_length
        self._samples = buf[used:]
        self._skip += max(0, used - len(buf))
        if len(fr):
            self._frames = np.concatenate([self._frames, fr]) if len(self._frames) else fr
        return self._emit()

    @property
    def windows_done(self) -> int:
        return self._next_window

    def finish(self, pad: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
        """Windows still pending; a stream with no window at all is zero-padded into one."""
        if self._next_window > 0 or not pad or self.n_samples == 0:
            empty = np.zeros((0, self.p.frames, self.p.bins), np.float32)
            return empty, np.zeros(0, np.int64), False
        short = self.p.window_samples - self.n_samples
        n = self.n_samples
        out, ws = self.push(np.zeros(short, np.float32))
        self.n_samples = n
        return out, ws, True


def spectrogram_windows(x: np.ndarray, p: SpectrogramParams) -> np.ndarray:
    """All windows of a whole 1-D signal at once, (n, frames, bins) (for tests and small data)."""
    s = Spectrogrammer(p)
    out, _ = s.push(np.asarray(x, np.float32))
    return out
