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
