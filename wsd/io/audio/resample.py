"""Streamed resampling that equals ``scipy.signal.resample_poly`` on the whole signal, bit for
bit. That equality is the point: a recording sliced block by block (bounded memory) gives the
same windows as the same recording resampled at once, so windows do not depend on block
sizes or on how a run was interrupted and resumed. A faster resampler (soxr) would change
every window by its own filter; this one calls scipy's own polyphase filter on overlapping
segments and keeps each segment's exact outputs.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def resample_ratio(native: int, target: int) -> tuple[int, int]:
    """(up, down) in lowest terms such that target = native * up / down."""
    r = Fraction(int(target), int(native))
    return r.numerator, r.denominator


class StreamResampler:
    """Streamed ``scipy.signal.resample_poly`` that equals the whole-signal call.

    Input is cut into segments whose boundaries are multiples of ``down``; each segment is
    resampled with enough real input on both sides for the polyphase filter (10 * max(up,
    down) taps each side, scipy's default Kaiser-windowed design, computed once), and only
    the segment's own outputs are kept, so the concatenated output matches
    ``resample_poly(x, up, down)`` of the whole signal (the signal's true ends are
    zero-padded exactly as scipy does). Memory: one block plus the context.
    """

    def __init__(self, up: int, down: int):
        from scipy.signal import firwin  # imported here: scipy.signal takes ~1 s to import

        g = math.gcd(up, down)
        self.up, self.down = up // g, down // g
        half_len = 10 * max(self.up, self.down)
        self._h = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down),
                         window=("kaiser", 5.0)).astype(np.float32)
        ctx = math.ceil(half_len / self.up) + 1
        self.ctx = math.ceil(ctx / self.down) * self.down
        self._buf = np.zeros(0, np.float32)
        self._left = 0  # samples of left context at the head of _buf
        self._n_in = 0  # total input samples pushed
        self._n_out = 0  # total output samples emitted

    def _resample(self, xs: np.ndarray) -> np.ndarray:
        from scipy.signal import resample_poly

        return resample_poly(xs, self.up, self.down, window=self._h).astype(np.float32,
                                                                           copy=False)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed input samples (1-D); return the outputs that are now final."""
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)])
        self._n_in += len(x)
        avail = len(self._buf) - self._left - self.ctx  # segment samples with right context
        seg = (avail // self.down) * self.down
        if seg <= 0:
            return np.zeros(0, np.float32)
        y = self._resample(self._buf[: self._left + seg + self.ctx])
        k0 = self._left * self.up // self.down
        out = y[k0 : k0 + seg * self.up // self.down]
        # keep up to ctx samples of left context (a multiple of down, so segments stay aligned)
        keep_from = max(0, self._left + seg - self.ctx)
        self._left = self._left + seg - keep_from
        self._buf = self._buf[keep_from:]
        self._n_out += len(out)
        return out

    def finish(self) -> np.ndarray:
        """Return the remaining outputs (the signal's end is zero-padded as scipy does)."""
        total = -(-self._n_in * self.up // self.down)  # ceil
        need = total - self._n_out
        if need <= 0:
            return np.zeros(0, np.float32)
        y = self._resample(self._buf)
        k0 = self._left * self.up // self.down
        out = y[k0 : k0 + need]
        self._n_out += len(out)
        self._buf = np.zeros(0, np.float32)
        return out
