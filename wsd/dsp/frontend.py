"""Front ends beyond the seeds' linear dB spectrogram: mel bands, log1p and PCEN compression,
and per-recording spectral whitening. Pure numpy; shapes in the docstrings.

* **Bands** (``--freq-scale mel --n-mels N``): triangular filters equally spaced on the mel
  scale between ``fmin`` and ``fmax`` (HTK formula), each normalised to sum to one, so a band
  is the weighted mean of its FFT bins' magnitudes; the kept frequency of a band is its
  centre. Narrow low bands are widened to cover at least one bin.
* **Compression** (``--scale``): ``db``, magnitude in dB re a full-scale sine (the seeds');
  ``log1p``, ``log(1 + 100 |X|)`` of the raw rfft magnitude (the call-type baseline's); or
  ``pcen``, per-channel energy normalisation with librosa's definition and defaults (gain
  0.98, bias 2, power 0.5, time constant 0.4 s, eps 1e-6, magnitudes scaled by 2**31), whose
  smoother state is carried from block to block so a stream equals the whole signal.
* **Whitening** (``--whiten Q``): per recording, each band's Q-th percentile over the frames
  (within ``span`` seconds either side, so it follows slow changes of the noise along a long
  recording) is subtracted: values become the level above the recording's noise floor, and
  coloured or site-specific noise no longer tells recordings apart. It needs the whole
  recording, so ``wsd slice`` applies it to a recording's windows once they are all cut.
"""

from __future__ import annotations

import numpy as np

#: PCEN (librosa's defaults).
PCEN_GAIN, PCEN_BIAS, PCEN_POWER, PCEN_TIME_S, PCEN_EPS = 0.98, 2.0, 0.5, 0.4, 1e-6
PCEN_INPUT_SCALE = 2.0 ** 31
LOG1P_GAIN = 100.0


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                   fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """``(weights (n_fft//2, n_mels) float32, centres (n_mels,) Hz)``: triangular mel bands
    over the rfft bins below Nyquist, each column summing to one."""
    f = np.arange(n_fft // 2) * (sample_rate / n_fft)
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    df = sample_rate / n_fft
    w = np.zeros((len(f), n_mels))
    for b in range(n_mels):
        lo, c, hi = pts[b], pts[b + 1], pts[b + 2]
        lo, hi = min(lo, c - df), max(hi, c + df)
        w[:, b] = np.clip(np.minimum((f - lo) / (c - lo), (hi - f) / (hi - c)), 0, None)
    s = w.sum(0, keepdims=True)
    s[s == 0] = 1.0
    return (w / s).astype(np.float32), pts[1:-1]


def pcen_b(sample_rate: int, hop_length: int, time_s: float = PCEN_TIME_S) -> float:
    """librosa's smoothing coefficient for a time constant of ``time_s`` seconds."""
    t = time_s * sample_rate / float(hop_length)
    return float((np.sqrt(1 + 4 * t * t) - 1) / (2 * t * t))


class Pcen:
    """PCEN over a stream of magnitude frames; ``__call__(mag (n, bands)) -> (n, bands)``
    carries the smoother's state, so calling it block by block equals one call on all."""

    def __init__(self, sample_rate: int, hop_length: int):
        from scipy.signal import lfilter_zi

        self.b = pcen_b(sample_rate, hop_length)
        self._zi0 = float(lfilter_zi([self.b], [1, self.b - 1])[0])
        self.zi = None

    def __call__(self, mag: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        s = np.asarray(mag, np.float64) * PCEN_INPUT_SCALE
        if len(s) == 0:
            return s.astype(np.float32)
        if self.zi is None:
            self.zi = np.full((1, s.shape[1]), self._zi0)
        smooth, self.zi = lfilter([self.b], [1, self.b - 1], s, axis=0, zi=self.zi)
        gain = np.exp(-PCEN_GAIN * (np.log(PCEN_EPS) + np.log1p(smooth / PCEN_EPS)))
        out = (PCEN_BIAS ** PCEN_POWER) * np.expm1(PCEN_POWER * np.log1p(s * gain / PCEN_BIAS))
        return out.astype(np.float32)


def window_percentile(windows: np.ndarray, q: float) -> np.ndarray:
    """Each window's per-band ``q``-th percentile over its frames: ``(n, frames, bands)`` ->
    ``(n, bands)`` float32."""
    return np.percentile(np.asarray(windows, np.float32), q, axis=1).astype(np.float32)


def recording_floor(per_window: np.ndarray, start_s: np.ndarray, span_s: float) -> np.ndarray:
    """The noise floor of every window of one recording ``(n, bands)``: the median, over the
    windows starting within ``span_s`` seconds either side, of their per-band percentiles
    (:func:`window_percentile`); for a recording shorter than the span, one floor."""
    from scipy.ndimage import median_filter

    per_window = np.asarray(per_window, np.float32)
    n = len(per_window)
    if n <= 1:
        return per_window
    step = float(np.median(np.diff(start_s))) or 1.0
    half = int(round(span_s / step))
    if 2 * half + 1 >= n:
        return np.broadcast_to(np.median(per_window, axis=0), per_window.shape).copy()
    return median_filter(per_window, size=(2 * half + 1, 1), mode="nearest")
