"""How the report's audio is played: sped up when the recording is infrasonic or low-rate,
and written at a sample rate that browsers play.

Browsers refuse WAV files outside a range of sample rates. Measured in headless Chromium 156
(Debian's package, with playwright): ``<audio>`` plays 3,000 to 768,000 Hz and answers
"NotSupportedError: The element has no supported sources" at 2,999 Hz and below (so a 50 Hz
blue-whale or a 2 kHz right-whale recording at its own rate does not play) and above
768,000 Hz. Clips are therefore written between :data:`PLAYABLE_MIN` (8 kHz, the telephone
rate every browser plays) and :data:`PLAYABLE_MAX` Hz: audio whose played rate falls outside
is resampled by a whole factor (``scipy.signal.resample_poly``), which changes nothing of
what is heard.

The played rate is the recording's rate times the playback speed. ``auto`` keeps speed 1
when the recording reaches audible frequencies, and otherwise takes the smallest speed of
1, 2, 5, 10, 20, 50... that lifts the top of its band (half its sample rate, or the
spectrogram's ``fmax``) to :data:`AUDIBLE_TOP_HZ`: a 50 Hz recording is played 10x faster,
so blue-whale calls at 10-25 Hz are heard at 100-250 Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from wsd.errors import UsageError

CHROMIUM_RATES = (3000, 768000)  # measured: the WAV sample rates Chromium's <audio> plays
PLAYABLE_MIN = 8000
PLAYABLE_MAX = 384000
AUDIBLE_TOP_HZ = 250.0
_LADDER = (1, 2, 5)


def speeds():
    """1, 2, 5, 10, 20, 50, ... up to 10**6."""
    for decade in range(7):
        for m in _LADDER:
            yield m * 10 ** decade


def auto_speed(rate: float, fmax: float | None = None) -> float:
    """The playback speed chosen for audio at ``rate`` Hz whose content lies below ``fmax``
    (default: the Nyquist frequency): 1 when that reaches :data:`AUDIBLE_TOP_HZ`, else the
    smallest of 2, 5, 10, 20, 50, ... that lifts it there."""
    top = rate / 2.0 if fmax is None or not fmax > 0 else min(rate / 2.0, float(fmax))
    for n in speeds():
        if n * top >= AUDIBLE_TOP_HZ:
            return float(n)
    return 1e6


def check_playback_rate(value) -> str | float:
    """``"auto"`` or a speed > 0 (numbers given as text too); raises UsageError."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and 1e-3 <= v <= 1e6):
        raise UsageError(f"--playback-rate must be auto or a speed-up factor between 0.001 and "
                         f"1e6, got {value!r}")
    return v


@dataclass(frozen=True)
class Plan:
    """How samples at ``rate`` Hz (recording time) become a playable WAV: resample by
    ``up``/``down`` and write at ``out_rate`` Hz; then it plays ``speed`` times faster than
    recorded."""

    rate: int
    speed: float
    up: int
    down: int
    out_rate: int


def plan(rate: int, speed: float) -> Plan:
    """The :class:`Plan` for samples at ``rate`` Hz played ``speed`` times faster (the speed
    kept is the one the integer output rate gives, within 0.5 Hz of the asked one)."""
    played = Fraction(int(rate)) * Fraction(speed).limit_denominator(1000)
    up = down = 1
    if played < PLAYABLE_MIN:
        up = math.ceil(PLAYABLE_MIN / played)
    elif played > PLAYABLE_MAX:
        down = math.ceil(played / PLAYABLE_MAX)
    out_rate = max(1, round(played * up / down))
    return Plan(int(rate), out_rate * down / (up * int(rate)), up, down, out_rate)


def render(x: np.ndarray, rate: int, speed: float) -> tuple[np.ndarray, Plan]:
    """Samples ``x`` ``(n,)`` at ``rate`` Hz -> the samples to write ``(m,)`` float32 and the
    :class:`Plan` (its ``out_rate`` is the rate to write them at)."""
    p = plan(rate, speed)
    x = np.asarray(x, dtype=np.float32)
    if (p.up, p.down) != (1, 1) and len(x):
        from scipy.signal import resample_poly

        x = resample_poly(x, p.up, p.down).astype(np.float32)
    return x, p


def speed_text(speed: float) -> str:
    """"played 10x faster", "played 4x slower", or "" at (about) normal speed."""
    if abs(speed - 1.0) < 5e-4:
        return ""
    if speed > 1:
        return f"played {speed:.3g}x faster"
    return f"played {1 / speed:.3g}x slower"
