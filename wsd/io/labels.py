"""Label tables for ``wsd slice --labels``: read them and give each window a label.

Accepted, detected from the header line:

* CSV ``path,label``: clip labels (the whole file carries the label);
* CSV ``path,start_s,end_s,label``: events in seconds from the file's start;
* a Raven selection table (tab-separated, ``Begin Time (s)``, ``End Time (s)``, a file column
  ``Begin Path``/``Begin File``, a label column ``Label``/``Annotation``/``Class``/``Call
  Type``/``Species``; ``File Offset (s)`` is preferred to ``Begin Time (s)`` when present);
* an Audacity label track (``start<TAB>end<TAB>label`` lines, no header; the spectral
  selection lines Audacity writes after a label, starting with a backslash, are skipped).

A Raven table without a file column and an Audacity label track name no file: they label the
one audio input, and are refused when there are several.

A label row's path matches an audio input when it names the same file (relative to the
label file's folder, or to the current folder) or when it is a trailing part of the input's
path (``S_2.wav`` or ``calls/S_2.wav`` match ``/data/calls/S_2.wav``).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsd.errors import BadInputError, InputMissingError

RAVEN_FILE_COLS = ("Begin Path", "Begin File", "File", "Sound", "Filename")
RAVEN_LABEL_COLS = ("Label", "label", "Annotation", "Class", "Call Type", "Species", "Type")

Event = tuple[float, float, str]
#: The key of the events of a table that names no file (they label the only input).
ANY_FILE = "*"


@dataclass
class LabelTable:
    """Events per label path (clip labels are events spanning the whole file)."""

    source: str
    kind: str  # "clip", "events" or "raven"
    events: dict[str, list[Event]] = field(default_factory=dict)
    base: Path = Path(".")
    used: set = field(default_factory=set)

    def for_file(self, audio_path) -> list[Event]:
        """All events whose label path designates ``audio_path``."""
        ap = Path(os.path.realpath(audio_path))
        out: list[Event] = []
        for key, evs in self.events.items():
            if key == ANY_FILE:
                self.used.add(key)
                out.extend(evs)
                continue
            kp = Path(key)
            hit = False
            if kp.is_absolute():
                hit = Path(os.path.realpath(kp)) == ap
            else:
                for base in (self.base, Path.cwd()):
                    if Path(os.path.realpath(base / kp)) == ap:
                        hit = True
                        break
                parts = tuple(p for p in kp.parts if p not in (".", ""))
                if not hit and parts and ap.parts[-len(parts):] == parts:
                    hit = True
            if hit:
                self.used.add(key)
                out.extend(evs)
        return sorted(out)

    def unused(self) -> list[str]:
        return [k for k in self.events if k not in self.used]


def _num(v: str, what: str, src: str, line: int) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise BadInputError(f"line {line}: {what} {v!r} is not a number", src) from None
    if not math.isfinite(x):
        raise BadInputError(f"line {line}: {what} {v!r} is not finite", src)
    return x


def read_labels(path, n_inputs: int | None = None, need_label: bool = True) -> LabelTable:
    """Parse a label table (see module docstring). Raises BadInputError naming the line.

    ``n_inputs``: how many audio files it is for; a table that names no file is refused
    when there are several. ``need_label=False``: time ranges without labels are accepted
    (``path,start_s,end_s``, a Raven table without a label column: the queries of ``wsd
    search``); their label is ""."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputMissingError("label file not found", p) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"cannot read label file ({e})", p) from None
    first = text.split("\n", 1)[0]
    src = str(p)
    if _audacity(first):
        return _single(_read_audacity(text, src, p), n_inputs, p)
    raven = "\t" in first and ("Begin Time (s)" in first or "Selection" in first)
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t" if raven else ","))
    if not rows:
        raise BadInputError("label file has a header but no rows", p)
    cols = list(rows[0].keys())
    table = LabelTable(source=src, kind="raven" if raven else "", base=p.parent)
    if raven:
        fcol = next((c for c in RAVEN_FILE_COLS if c in cols), None)
        lcol = next((c for c in RAVEN_LABEL_COLS if c in cols), None)
        if lcol is None and need_label:
            raise BadInputError(
                "Raven table needs a label column (one of " + ", ".join(RAVEN_LABEL_COLS) +
                ")", p)
        off = "File Offset (s)" if "File Offset (s)" in cols else None
        for i, r in enumerate(rows, start=2):
            b = _num(r.get("Begin Time (s)"), "Begin Time (s)", src, i)
            e = _num(r.get("End Time (s)"), "End Time (s)", src, i)
            start = _num(r[off], off, src, i) if off else b
            key = r[fcol] if fcol else ANY_FILE
            lab = r[lcol] if lcol else ""
            table.events.setdefault(key, []).append((start, start + (e - b), lab))
        return _single(table, n_inputs, p) if fcol is None else table
    low = {c.strip().lower(): c for c in cols if c is not None}
    has_t = "start_s" in low and "end_s" in low
    if "path" not in low or ("label" not in low and (need_label or not has_t)):
        raise BadInputError("label CSV needs columns path,label or path,start_s,end_s,label "
                            f"(found: {','.join(cols)})", p)
    table.kind = "events" if has_t else "clip"
    for i, r in enumerate(rows, start=2):
        fp = r[low["path"]]
        lab = (r[low["label"]] or "").strip() if "label" in low else ""
        if not fp:
            raise BadInputError(f"line {i}: empty path", p)
        if has_t:
            a = _num(r[low["start_s"]], "start_s", src, i)
            b = _num(r[low["end_s"]], "end_s", src, i)
            if b <= a:
                raise BadInputError(f"line {i}: end_s ({b}) is not after start_s ({a})", p)
            table.events.setdefault(fp, []).append((a, b, lab))
        else:
            table.events.setdefault(fp, []).append((0.0, math.inf, lab))
    return table


def _audacity(first: str) -> bool:
    """An Audacity label track starts with ``number<TAB>number<TAB>label``."""
    cells = first.rstrip("\r").split("\t")
    if len(cells) < 2:
        return False
    try:
        float(cells[0]), float(cells[1])
    except ValueError:
        return False
    return True


def _read_audacity(text: str, src: str, p: Path) -> LabelTable:
    table = LabelTable(source=src, kind="audacity", base=p.parent)
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("\\"):
            continue  # blank, or the spectral selection (\tfmin\tfmax) of the label above
        cells = line.split("\t")
        if len(cells) < 2:
            raise BadInputError(f"line {i}: an Audacity label is start<TAB>end<TAB>label", p)
        a = _num(cells[0], "start", src, i)
        b = _num(cells[1], "end", src, i)
        if b < a:
            raise BadInputError(f"line {i}: end ({b}) is before start ({a})", p)
        lab = cells[2].strip() if len(cells) > 2 else ""
        table.events.setdefault(ANY_FILE, []).append((a, max(b, a + 1e-9), lab))
    if not table.events:
        raise BadInputError("Audacity label track holds no labels", p)
    return table


def _single(table: LabelTable, n_inputs: int | None, p: Path) -> LabelTable:
    """A table naming no file labels the only input: refuse it for several."""
    if n_inputs is not None and n_inputs > 1:
        raise BadInputError(f"names no audio file (an Audacity label track, or a Raven table "
                            f"without a file column): it can label only one input, not "
                            f"{n_inputs}", p)
    return table


#: The label of a window that touches an event too little to count as one, nor as
#: background (``min_cover``); probes and classifiers leave such rows out.
UNSURE = "unsure"


def assign(events: list[Event], start_s: np.ndarray, end_s: np.ndarray,
           min_cover: float = 0.0) -> np.ndarray:
    """Label each window [start_s, end_s) with the event covering most of it, or "".

    With ``min_cover`` > 0, a window takes the event's label only when the overlap is at
    least ``min_cover`` of the shorter of the two (the event, for calls shorter than a
    window; the window, for long events); a window that overlaps an event by less is
    :data:`UNSURE` rather than background.

    Shapes: start_s, end_s (n,) seconds; returns (n,) object array of str.
    """
    n = len(start_s)
    out = np.full(n, "", dtype=object)
    if not events or n == 0:
        return out
    ea = np.array([e[0] for e in events])
    eb = np.array([e[1] for e in events])
    names = np.array([e[2] for e in events], dtype=object)
    for i in range(0, n, 4096):
        a, b = start_s[i : i + 4096, None], end_s[i : i + 4096, None]
        ov = np.minimum(b, eb[None]) - np.maximum(a, ea[None])
        best = ov.argmax(axis=1)
        got = ov[np.arange(len(best)), best]
        ok = got > 0
        lab = np.where(ok, names[best], "").astype(object)
        if min_cover > 0:
            short = np.minimum((eb - ea)[best], (b - a)[:, 0])
            lab[ok & (got < min_cover * short - 1e-9)] = UNSURE
        out[i : i + 4096] = lab
    return out
    ea = np.array([e[0] for e in events])
    eb = np.array([e[1] for e in events])
    names = np.array([e[2] for e in events], dtype=object)
    for i in range(0, n, 4096):
        a, b = start_s[i : i + 4096, None], end_s[i : i + 4096, None]
        ov = np.minimum(b, eb[None]) - np.maximum(a, ea[None])
        best = ov.argmax(axis=1)
        ok = ov[np.arange(len(best)), best] > 0
        out[i : i + 4096][ok] = names[best[ok]]
    return out
