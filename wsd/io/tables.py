"""Tables for ``wsd export``: rows a spreadsheet, pandas or Raven reads, per kind of file.

Each exporter takes an open :class:`wsd.io.store.WsdFile` and a format and yields lists of
cells (the first one the header). Commands register their kind's exporter in ``EXPORTERS``.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from wsd.errors import UsageError

FORMATS = ("csv", "raven")
RAVEN_HEADER = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)",
                "Low Freq (Hz)", "High Freq (Hz)", "Begin Path", "File Offset (s)"]
CHUNK = 65536


def _paths(f) -> np.ndarray:
    return np.asarray(f.sources["path"], dtype=object)


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if np.isfinite(x) else ""


def row_table(f, columns: dict[str, Callable[[slice], np.ndarray]]) -> Iterator[list[str]]:
    """``path,start_s,end_s`` then ``columns`` for every row, read in chunks."""
    paths = _paths(f)
    yield ["path", "start_s", "end_s", *columns]
    for a in range(0, f.n, CHUNK):
        sel = slice(a, min(f.n, a + CHUNK))
        sid, st, en = f.read("source_id", sel), f.read("start_s", sel), f.read("end_s", sel)
        extra = [fn(sel) for fn in columns.values()]
        for i in range(len(sid)):
            cells = [paths[sid[i]], _fmt(st[i]), _fmt(en[i])]
            for col in extra:
                v = col[i]
                cells.append(_fmt(float(v)) if isinstance(v, (float, np.floating)) else str(v))
            yield cells


def raven_table(f, rows: Iterator[tuple[int, float, float, dict]],
                extra: list[str]) -> Iterator[list[str]]:
    """A Raven selection table; ``rows`` yields (source_id, start_s, end_s, {column: value})."""
    paths = _paths(f)
    spec = f.spectrogram or {}
    lo = float(spec.get("fmin", 0.0))
    hi = spec.get("fmax")
    hi = float(hi) if hi is not None else float(spec.get("sample_rate", 0)) / 2
    yield RAVEN_HEADER + extra
    for k, (sid, a, b, vals) in enumerate(rows, start=1):
        yield [str(k), "Spectrogram 1", "1", _fmt(a), _fmt(b), _fmt(lo), _fmt(hi),
               paths[sid], _fmt(a)] + [str(vals.get(c, "")) for c in extra]


def export_windows(f, fmt: str) -> Iterator[list[str]]:
    has_label = f.has("label")
    if fmt == "csv":
        cols = {"label": (lambda sel: f.read("label", sel))} if has_label else {
            "label": (lambda sel: np.full(sel.stop - sel.start, "", dtype=object))}
        return row_table(f, cols)

    def rows():
        for a in range(0, f.n, CHUNK):
            sel = slice(a, min(f.n, a + CHUNK))
            sid, st, en = f.read("source_id", sel), f.read("start_s", sel), f.read("end_s", sel)
            lab = f.read("label", sel) if has_label else [""] * len(sid)
            for i in range(len(sid)):
                yield int(sid[i]), float(st[i]), float(en[i]), {"Label": lab[i]}
    return raven_table(f, rows(), ["Label"])


def export_embeddings(f, fmt: str) -> Iterator[list[str]]:
    if fmt != "csv":
        raise UsageError("embeddings export only as csv (a Raven table has no place for "
                         "vectors)", f.path)
    dim = f.shape("embeddings")[1]
    cache: dict = {}

    def col(j):
        def get(sel):
            if cache.get("sel") != (sel.start, sel.stop):
                cache["sel"] = (sel.start, sel.stop)
                cache["data"] = f.read("embeddings", sel)
            return cache["data"][:, j]
        return get
    return row_table(f, {f"e{j}": col(j) for j in range(dim)})


def export_detections(f, fmt: str) -> Iterator[list[str]]:
    """csv: one row per window (score, detected); raven: one selection per event."""
    if fmt == "csv":
        return row_table(f, {"score": lambda sel: f.read("score", sel).astype(np.float64),
                             "detected": lambda sel: f.read("positive", sel).astype(int)})
    label = f.attrs("/").get("positive_label") or (
        "sound" if f.attrs("/").get("detector") == "silence" else "detection")

    def rows():
        sid, st, en = f.read("events/source_id"), f.read("events/start_s"), f.read("events/end_s")
        sc = f.read("events/score")
        for i in range(len(sid)):
            yield int(sid[i]), float(st[i]), float(en[i]), {"Label": label,
                                                             "Score": _fmt(float(sc[i]))}
    return raven_table(f, rows(), ["Label", "Score"])


def export_clusters(f, fmt: str) -> Iterator[list[str]]:
    """One row per sequence: cluster and novelty (and label when known)."""
    has_label = f.has("label")
    if fmt == "csv":
        cols = {"cluster": lambda sel: f.read("cluster", sel),
                "novelty": lambda sel: f.read("novelty", sel).astype(np.float64)}
        if has_label:
            cols["label"] = lambda sel: f.read("label", sel)
        return row_table(f, cols)

    def rows():
        sid, st, en = f.read("source_id"), f.read("start_s"), f.read("end_s")
        cl, nov = f.read("cluster"), f.read("novelty")
        lab = f.read("label") if has_label else [""] * len(sid)
        for i in range(len(sid)):
            yield int(sid[i]), float(st[i]), float(en[i]), {
                "Cluster": int(cl[i]), "Novelty": _fmt(float(nov[i])), "Label": lab[i]}
    return raven_table(f, rows(), ["Cluster", "Novelty", "Label"])


EXPORTERS: dict[str, Callable] = {"clusters": export_clusters, "windows": export_windows, "embeddings": export_embeddings,
                                  "detections": export_detections}


def export(f, fmt: str) -> Iterator[list[str]]:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got {fmt})")
    fn = EXPORTERS.get(f.kind)
    if fn is None:
        raise UsageError(f"cannot export a {f.kind} file (exportable: "
                         f"{', '.join(sorted(EXPORTERS))})", f.path)
    return fn(f, fmt)
