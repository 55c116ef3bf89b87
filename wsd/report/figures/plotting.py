"""Shared matplotlib helpers: figures on the Agg canvas (no pyplot state), saving, spectrogram
panels with time and frequency axes in units, and where an axes lies in the saved image.

matplotlib is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DPI = 100
SPEC_CMAP = "magma"
OTHER = "#b0b0b0"  # colour of "other"/unlabelled points


def figure(width: float, height: float):
    """A new ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches on the Agg canvas
    (its own canvas: pyplot's global backend and figures are left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: Path) -> Path:
    """Write ``fig`` as PNG at :data:`DPI` (the whole canvas: axes positions stay known)."""
    fig.savefig(str(path), dpi=DPI, format="png", facecolor="white",
                pil_kwargs={"compress_level": 3})
    return Path(path)


def axes_box(fig, ax) -> dict:
    """Where ``ax``'s data area lies in the saved image, as fractions of its width and height
    from the top-left corner: ``{"left", "right", "top", "bottom"}``.

    Exact for the figures here, whose axes are placed with ``subplots_adjust``/gridspecs
    (no layout engine moves them at draw time) and saved without cropping."""
    b = ax.get_position()
    return {"left": float(b.x0), "right": float(b.x1), "top": float(1 - b.y1),
            "bottom": float(1 - b.y0)}


def khz(freqs: np.ndarray) -> tuple[float, str]:
    """Scale and axis label for frequencies ``freqs`` (Hz): kHz from 2 kHz up."""
    top = float(np.max(freqs)) if len(freqs) else 0.0
    return (1e-3, "frequency (kHz)") if top >= 2000 else (1.0, "frequency (Hz)")


def freq_extent(freqs: np.ndarray) -> tuple[float, float]:
    """Lower and upper edge (Hz) of the bins centred on ``freqs``."""
    freqs = np.asarray(freqs, dtype=np.float64)
    df = float(np.median(np.diff(freqs))) if len(freqs) > 1 else 1.0
    return float(freqs[0] - df / 2), float(freqs[-1] + df / 2)


def spectrogram(ax, img: np.ndarray, t0: float, hop_s: float, offset_s: float,
                freqs: np.ndarray, vmin: float, vmax: float, xlabel: bool = True,
                ylabel: bool = True):
    """Draw ``img`` ``(cols, bins)`` dB, column ``c`` being the frame that starts at
    ``t0 + c * hop_s`` (its centre ``offset_s`` later), with time (s) and frequency axes.
    NaN columns (no window there) show as the axes background. Returns the AxesImage."""
    scale, flabel = khz(freqs)
    f0, f1 = freq_extent(freqs)
    cols = img.shape[0]
    left = t0 + offset_s - hop_s / 2
    im = ax.imshow(np.asarray(img, dtype=np.float32).T, origin="lower", aspect="auto",
                   cmap=SPEC_CMAP, vmin=vmin, vmax=vmax, interpolation="auto",
                   extent=(left, left + cols * hop_s, f0 * scale, f1 * scale))
    ax.set_facecolor("#e8e8e8")
    if xlabel:
        ax.set_xlabel("time (s)")
    if ylabel:
        ax.set_ylabel(flabel)
    return im


def window_image(ax, win: np.ndarray, hop_s: float, offset_s: float, freqs: np.ndarray,
                 vmin: float, vmax: float, xlabel: bool = True, ylabel: bool = True):
    """One window ``(frames, bins)`` dB drawn from time 0 (see :func:`spectrogram`)."""
    return spectrogram(ax, win, 0.0, hop_s, offset_s, freqs, vmin, vmax, xlabel, ylabel)


def colorbar(fig, im, ax, label: str = "level (dB re full scale)"):
    """A colour bar in a slim axes right of ``ax`` (``ax`` keeps its size and position)."""
    cax = ax.inset_axes([1.015, 0.0, 0.015, 1.0])
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(label)
    return cb


def category_colours(n: int) -> list:
    """``n`` distinct colours (tab10, then tab20, then a hue wheel)."""
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["hsv"](i / n) for i in range(n)]


ELLIPSIS = "\u2026"
_BREAK_AFTER = " _-/.,"


def fit_text(text: str, width: float, measure, max_lines: int = 2) -> str:
    """``text`` broken into at most ``max_lines`` lines each no wider than ``width`` (as
    ``measure(line)`` gives it), breaking after a space, ``_``, ``-``, ``/``, ``.`` or ``,``
    where one is near, else anywhere. Text that still does not fit loses characters from
    its middle, marked by an ellipsis, so its start and its end (a time, a label) stay."""
    text = " ".join(text.split())
    lines = _wrap(text, width, measure)
    if len(lines) <= max_lines:
        return "\n".join(lines)
    lo, hi, best = 1, len(text), [ELLIPSIS]
    while lo <= hi:  # the fewest characters to drop
        k = (lo + hi) // 2
        head = (len(text) - k + 1) // 2
        lines = _wrap(text[:head] + ELLIPSIS + text[head + k:], width, measure)
        if len(lines) <= max_lines:
            best, hi = lines, k - 1
        else:
            lo = k + 1
    return "\n".join(best)


def _wrap(text: str, width: float, measure) -> list[str]:
    """Greedy line breaking of ``text`` to ``width`` (see :func:`fit_text`)."""
    lines: list[str] = []
    rest = text
    while rest:
        if measure(rest) <= width:
            lines.append(rest)
            break
        n = _longest_fit(rest, width, measure)
        cut = max((rest.rfind(c, 0, n) + 1 for c in _BREAK_AFTER), default=0)
        cut = cut if cut > n // 2 else n
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines


def _longest_fit(s: str, width: float, measure) -> int:
    """The longest prefix length of ``s`` (at least 1) no wider than ``width``."""
    lo, hi = 1, len(s)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(s[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fitted_title(ax, text: str, fontsize: float, max_lines: int = 2, **kw):
    """Set ``ax``'s title to ``text`` wrapped and shortened (:func:`fit_text`) to the width
    of ``ax`` at the figure's size, so neighbouring panels' titles never overlap; the full
    text belongs in the page's tooltip. Returns the title's Text."""
    from matplotlib.font_manager import FontProperties

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    prop = FontProperties(size=fontsize)
    width = ax.get_position().width * fig.get_figwidth() * fig.dpi - 2

    def measure(s: str) -> float:
        return renderer.get_text_width_height_descent(s, prop, ismath=False)[0]

    return ax.set_title(fit_text(text, width, measure, max_lines), fontsize=fontsize,
                        parse_math=False, **kw)
