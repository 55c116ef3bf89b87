"""The report page: one self-contained ``index.html`` (no server, no network, plain inline JS)
showing the figures, the metrics table and play buttons for the clips beside it.

The page is described by plain blocks (:class:`Figure`, :class:`Timeline`, :class:`Gallery`,
:class:`ClipTable`, :class:`Note`, :class:`wsd.report.review.Review`) grouped in sections; :func:`render` fills the jinja2
templates in ``templates/`` with them (autoescaped; the CSS and JS are included inline, so
the page stays one file). A timeline player moves a cursor over the spectrogram: the
figure's axes bounds (fractions of the image, written into the page) map the recording's
time to x exactly, and its ``speed`` maps the audio's time back to the recording's.
"""

from __future__ import annotations

import functools
import html
import json
from dataclasses import dataclass, field

from wsd.report.review import Review
from wsd.report.review import num as review_num


@dataclass
class Figure:
    src: str
    caption: str


@dataclass
class Timeline:
    """A recording's timeline figure ``src`` spanning ``t0``..``t1`` s with the audio ``audio``
    of that span, played ``speed`` times faster than recorded; ``box``: the axes bounds
    (left, right, top, bottom fractions of the image); ``windows``: ``[[start_s, end_s,
    score, detected], ...]`` for the live decision square."""

    src: str
    caption: str
    t0: float
    t1: float
    box: dict
    audio: str | None = None
    windows: list | None = None
    score_name: str = "score"
    speed: float = 1.0


@dataclass
class Gallery:
    """A gallery figure with a play button under each panel: ``entries`` are
    ``(x_centre_fraction, clip or None, tooltip)``; a clip is a path or a
    :class:`wsd.report.clips.Clip`."""

    src: str
    caption: str
    entries: list = field(default_factory=list)


@dataclass
class ClipTable:
    """A table whose rows may carry a clip: ``rows`` are ``(cells, clip or None)``; a clip is
    a path or a :class:`wsd.report.clips.Clip`."""

    caption: str
    columns: list
    rows: list


@dataclass
class Note:
    text: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    anchor: str = ""


BLOCKS = {Figure: "figure", Timeline: "timeline", Gallery: "gallery", ClipTable: "cliptable",
          Note: "note", Review: "review"}


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def flatten_metrics(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested metrics as ``(dotted name, value text)`` rows (lists of numbers kept whole)."""
    rows = []
    for k, v in metrics.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            rows += flatten_metrics(v, name)
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            rows += flatten_metrics({str(i): x for i, x in enumerate(v)}, name)
        else:
            rows.append((name, _fmt(v)))
    return rows


def clip_view(clip, title: str) -> dict | None:
    """What the page shows of a clip (a path, a Clip or None): ``src``, ``title``
    (tooltip), ``speed`` and its text, and the event's place as fractions of the clip
    (``ev0``, ``ev1``; None without one)."""
    from wsd.report.playback import speed_text

    if clip is None:
        return None
    if isinstance(clip, str):
        return {"src": clip, "title": title, "speed": 1.0, "speed_text": "", "ev0": None,
                "ev1": None}
    text = speed_text(clip.speed)
    view = {"src": clip.src, "speed": clip.speed, "speed_text": text, "ev0": None, "ev1": None,
            "title": title + (f" ({text})" if text else "")}
    if clip.event is not None and clip.duration_s > 0:
        a, b = clip.event
        view["ev0"], view["ev1"] = a / clip.duration_s, b / clip.duration_s
        view["title"] += (f"; clip {clip.start_s:.2f}-{clip.start_s + clip.duration_s:.2f} s "
                          f"of the recording, the event from {a:.2f} to {b:.2f} s into it "
                          "(darker in the bar)")
    return view


def _json_attr(value) -> str:
    """JSON for a double-quoted HTML attribute (``"`` as ``&quot;``)."""
    from markupsafe import Markup

    return Markup(html.escape(json.dumps(value), quote=True))


@functools.lru_cache(maxsize=1)
def environment():
    """The jinja2 environment of the page's templates (autoescaping on, strict undefined)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from wsd.report.playback import speed_text

    env = Environment(loader=PackageLoader("wsd.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=_fmt, json_attr=_json_attr)
    env.globals.update(clip_view=clip_view, speed_text=speed_text, num=review_num)
    return env


def render(title: str, subtitle: str, inputs: list[list], metrics: dict,
           sections: list[Section], warnings: list[str]) -> str:
    """The whole ``index.html`` as a string.

    ``inputs``: rows ``[file, kind, rows, role, made by]``; ``metrics``: the nested dict
    written to metrics.json (shown flattened); ``warnings``: lines shown at the top.
    """
    shown = []
    for s in sections:
        blocks = []
        for b in s.blocks:
            kind = BLOCKS.get(type(b))
            if kind is None:
                raise TypeError(f"unknown block {type(b).__name__}")
            blocks.append((kind, b))
        shown.append((s, blocks))
    tables = [(res.get("file", name), flatten_metrics({k: v for k, v in res.items()
                                                       if k != "file"}))
              for name, res in metrics.get("results", {}).items()]
    return environment().get_template("page.html").render(
        title=title, subtitle=subtitle, inputs=inputs, sections=shown, tables=tables,
        warnings=warnings)
