"""Review blocks: items (the hits of a search, detected events) to listen to and mark yes, no
or unsure in the report page, whose marks the browser saves as a labels CSV.

The page needs no server: marks live in the browser's ``localStorage`` under a key made of
the reviewed file's identity (its ``wsd_id``), so they survive a reload and a rebuilt report
of the same file, and "download labels CSV" writes them through a Blob and a download link
as ``path,start_s,end_s,label`` rows, the events CSV that ``wsd slice --labels`` and ``wsd
train EMB.h5 --arch linear --labels`` read as they are:

* yes -> the label typed in the item's group field (default: the query's label, or the
  detector's positive label, else :data:`YES_DEFAULT`);
* no -> :data:`NO_LABEL`;
* unsure -> :data:`UNSURE_LABEL`, which the linear probe leaves out
  (:data:`wsd.models.probe.IGNORED`).

``path`` is the recording's path as the file's sources table stores it, ``start_s`` and
``end_s`` the item's span (Python's shortest ``repr`` of the value rounded to 6 decimals).
Items of one span (a stretch found by two queries) share their mark, a yes meaning the label
of the group it was marked in; the CSV holds each marked span once, in page order. Each item shows a thumbnail spectrogram of its clip's
span (cut from a windows file holding its recording, when one is found) with the item's
span marked, and the clip's play button.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsd.models.probe import IGNORED

YES_DEFAULT = "call"
NO_LABEL = "noise"
UNSURE_LABEL = IGNORED
THUMBS = "review"  # folder of the thumbnails in the report


def num(x: float) -> str:
    """A time as written in the labels CSV: shortest repr of ``x`` rounded to 6 decimals."""
    return repr(round(float(x), 6))


@dataclass
class Thumb:
    """A thumbnail spectrogram ``src`` of ``t0``..``t1`` recording seconds over ``f0``..``f1``
    Hz (bin edges)."""

    src: str
    t0: float
    t1: float
    f0: float
    f1: float

    def pct(self, t: float) -> float:
        """Where time ``t`` lies across the image, in percent (0..100)."""
        span = max(self.t1 - self.t0, 1e-9)
        return float(min(max((t - self.t0) / span, 0.0), 1.0) * 100)

    def band(self) -> str:
        scale, unit = (1e-3, "kHz") if self.f1 >= 2000 else (1.0, "Hz")
        return f"{self.f0 * scale:.3g}-{self.f1 * scale:.3g} {unit}"


@dataclass
class ReviewItem:
    """One span to mark: the recording's ``path`` as stored, ``start_s``..``end_s``,
    ``head`` (its one-line title), ``facts`` (short texts: score, rank, label), ``clip`` (a
    clip key, replaced by the :class:`wsd.report.clips.Clip` written, or None) and
    ``thumb`` (:class:`Thumb` or None)."""

    path: str
    start_s: float
    end_s: float
    head: str
    facts: list = field(default_factory=list)
    clip: object = None
    thumb: Thumb | None = None

    @property
    def key(self) -> str:
        """The span's identity: items with one key share their mark."""
        return f"{self.path}|{num(self.start_s)}|{num(self.end_s)}"

    def player(self) -> dict | None:
        """``{"c0", "speed"}`` of the written clip (recording time of its start, playback
        speed), for the cursor over the thumbnail; None without a written clip."""
        c = self.clip
        if c is None or isinstance(c, str):
            return None
        return {"c0": c.start_s, "speed": c.speed}


@dataclass
class ReviewGroup:
    """Items reviewed under one "yes" label: a query's hits (``query``: the query itself,
    shown first and not marked) or a file's events."""

    title: str
    items: list
    yes_label: str = YES_DEFAULT
    query: ReviewItem | None = None
    note: str = ""


@dataclass
class Review:
    """A review block: ``groups`` of items, marks stored in the browser under ``store``,
    the CSV downloaded as ``filename``."""

    caption: str
    store: str
    filename: str
    groups: list
    no_label: str = NO_LABEL
    unsure_label: str = UNSURE_LABEL

    def items(self) -> list[ReviewItem]:
        return [it for g in self.groups for it in ([g.query] if g.query else []) + g.items]

    def resolve(self, written: dict) -> None:
        """Replace the clip keys by the clips written (None when left out)."""
        for it in self.items():
            if isinstance(it.clip, str):
                it.clip = written.get(it.clip)

    @property
    def n_items(self) -> int:
        return sum(len(g.items) for g in self.groups)


def store_key(item) -> str:
    """The ``localStorage`` key of a reviewed file's marks: its ``wsd_id``, else its name,
    size and modification time."""
    fid = item.f.file_id if item.f is not None else None
    if not fid:
        st = Path(item.path).stat()
        fid = f"{Path(item.path).name}:{st.st_size}:{st.st_mtime_ns}"
    return f"wsd-review:{fid}"


def write_thumb(img: np.ndarray, path: Path) -> None:
    """A spectrogram image ``(cols, bins)`` (NaN: no window) as a PNG, low bins at the
    bottom, coloured like the report's figures between percentiles of its values."""
    import matplotlib
    from PIL import Image

    from wsd.report.analysis import db_range
    from wsd.report.figures.plotting import SPEC_CMAP

    vmin, vmax = db_range(img)
    x = (np.asarray(img, np.float64).T[::-1] - vmin) / (vmax - vmin)
    cmap = matplotlib.colormaps[SPEC_CMAP].with_extremes(bad="#e8e8e8")
    rgba = cmap(np.ma.masked_invalid(x), bytes=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(path, compress_level=3)


class ItemMaker:
    """Makes the review items of one wsd file ``item``: asks for their clips (keys
    ``<prefix>_<n>``, lower ``priority`` first) and draws their thumbnails from ``wd``
    (a :class:`wsd.report.collect.WindowsData` or None) when it holds the recording."""

    def __init__(self, ctx, item, wd, prefix: str):
        self.ctx, self.item, self.wd, self.prefix = ctx, item, wd, prefix
        src = item.f.sources
        self.paths = [str(p) for p in src.get("path", [])]
        self.durations = dict(zip(self.paths, np.asarray(src.get("duration_s", []),
                                                         np.float64).tolist()))
        self._wsid: dict[str, int] = {}
        if wd is not None:
            names = [Path(p).name for p in wd.paths]
            for i, p in enumerate(wd.paths):
                self._wsid[p] = i
                if names.count(names[i]) == 1:
                    self._wsid.setdefault(names[i], i)
        self.thumbs = 0

    def make(self, key: str, path: str, a: float, b: float, head: str, facts: list,
             priority: tuple) -> ReviewItem:
        it = ReviewItem(path, float(a), float(b), head, list(facts))
        if not (np.isfinite(a) and np.isfinite(b)):
            return it
        key = f"{self.prefix}_{key}"
        self.ctx.clips.request(key, path, a, b, priority, near=self.item.path,
                               **self.ctx.band(self.item))
        it.clip = key
        it.thumb = self._thumb(key, path, float(a), float(b))
        return it

    def _thumb(self, key: str, path: str, a: float, b: float) -> Thumb | None:
        """The thumbnail of the clip's span (as :class:`wsd.report.clips.ClipWriter` cuts
        it: context before and after, at most ``--clip-seconds``), or None."""
        from wsd.report.analysis import stitch
        from wsd.report.figures.plotting import freq_extent

        wd = self.wd
        sid = self._wsid.get(path, self._wsid.get(Path(path).name)) if wd is not None else None
        if sid is None:
            return None
        o = self.ctx.opts
        t0 = max(0.0, a - o.clip_context)
        t1 = min(max(a, b) + o.clip_context, t0 + o.clip_seconds)
        dur = wd.duration(sid) or self.durations.get(path, 0.0)
        t1 = min(t1, dur) if dur > t0 else t1
        rows = wd.source_rows(sid, t0, t1)
        if not len(rows) or t1 <= t0:
            return None
        img = stitch(wd.rows(rows), wd.start_s[rows], wd.hop_s, t0, t1)
        rel = f"{THUMBS}/{key}.png"
        write_thumb(img, self.ctx.outdir / rel)
        self.ctx.thumbs.append(rel)
        self.ctx.advance(0, status=rel)
        self.thumbs += 1
        f0, f1 = freq_extent(wd.freqs)
        return Thumb(rel, t0, t1, max(0.0, f0), f1)


def missing_note(what: str, wd, audio_hint: bool = True) -> str:
    """The sentence saying why the items have no spectrograms (empty when ``wd`` is
    found)."""
    if wd is not None:
        return ""
    return (f"{what}: no spectrograms here"
            + ("; the items are listed with play buttons where their recordings are found."
               if audio_hint else "."))
