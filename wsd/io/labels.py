"""Label tables for ``wsd slice --labels``: read them and give each window a label.

Accepted, detected from the header line:

* CSV ``path,label``: clip labels (the whole file carries the label);
* CSV ``path,start_s,end_s,label``: events in seconds from the file's start;
* a Raven selection table (tab-separated, ``Begin Time (s)``, ``End Time (s)``, a file column
  ``Begin Path``/``Begin File``, a label column ``Label``/``Annotation``/``Class``/``Call
  Type``/``Species``; ``File Offset (s)`` is preferred to ``Begin Time (s)`` when present).

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


def read_labels(path) -> LabelTable:
    """Parse a label table (see module docstring). Raises BadInputError naming the line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputMissingError("label file not found", p) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"cannot read label file ({e})", p) from None
    first = text.split("\n", 1)[0]
    src = str(p)
    raven = "\t" in first and ("Begin Time (s)" in first or "Selection" in first)
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t" if raven else ","))
    if not rows:
        raise BadInputError("label file has a header but no rows", p)
    cols = list(rows[0].keys())
    table = LabelTable(source=src, kind="raven" if raven else "", base=p.parent)
    if raven:
        fcol = next((c for c in RAVEN_FILE_COLS if c in cols), None)
        lcol = next((c for c in RAVEN_LABEL_COLS if c in cols), None)
        if fcol is None or lcol is None:
            raise BadInputError(
                "Raven table needs a file column (one of " + ", ".join(RAVEN_FILE_COLS) +
                ") and a label column (one of " + ", ".join(RAVEN_LABEL_COLS) + ")", p)
        off = "File Offset (s)" if "File Offset (s)" in cols else None
        for i, r in enumerate(rows, start=2):
            b = _num(r.get("Begin Time (s)"), "Begin Time (s)", src, i)
            e = _num(r.get("End Time (s)"), "End Time (s)", src, i)
            start = _num(r[off], off, src, i) if off else b
            table.events.setdefault(r[fcol], []).append((start, start + (e - b), r[lcol]))
        return table
    low = {c.strip().lower(): c for c in cols if c is not None}
    if "path" not in low or "label" not in low:
        raise BadInputError("label CSV needs columns path,label or path,start_s,end_s,label "
                            f"(found: {','.join(cols)})", p)
    has_t = "start_s" in low and "end_s" in low
    table.kind = "events" if has_t else "clip"
    for i, r in enumerate(rows, start=2):
        fp, lab = r[low["path"]], (r[low["label"]] or "").strip()
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


def assign(events: list[Event], start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Label each window [start_s, end_s) with the event covering most of it, or "".

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
        ok = ov[np.arange(len(best)), best] > 0
        out[i : i + 4096][ok] = names[best[ok]]
    return out
