"""Tables for ``wsd export``: rows a spreadsheet, pandas, Raven or Audacity reads, per kind of
file. Each kind names its exporter in :mod:`wsd.io.store.kinds`; an exporter returns a
:class:`Table`: typed columns read a chunk of rows at a time (CSV and Parquet) and the
selections a Raven table or an Audacity label track shows (events for detections, rows for
the rest). Memory stays bounded by :data:`CHUNK` rows whatever the file's length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from wsd.errors import UsageError

FORMATS = ("csv", "raven", "audacity", "parquet")
LABEL_FROM = ("label", "cluster")
RAVEN_HEADER = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)",
                "Low Freq (Hz)", "High Freq (Hz)", "Begin Path", "File Offset (s)"]
CHUNK = 65536
UNITS = {"start_s": "s", "end_s": "s", "query_start_s": "s", "query_end_s": "s"}

Reader = Callable[[slice], np.ndarray]
Selection = tuple[int, float, float, dict]  # source id, start, end, {column: value}


@dataclass
class Table:
    """Columns of one row per item (``n`` rows), and selections for Raven and Audacity."""

    n: int
    columns: dict[str, Reader]
    selections: Callable[[], Iterator[Selection]]
    selection_columns: list[str] = field(default_factory=list)
    band: tuple[float, float] = (0.0, 0.0)  # Low and High Freq (Hz) of the selections


@dataclass(frozen=True)
class ExportOptions:
    fmt: str = "csv"
    label_from: str = "label"
    source: str | None = None  # only the rows of this recording (path or file name)

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got {self.fmt})")
        if self.label_from not in LABEL_FROM:
            raise UsageError(f"--label-from must be one of {', '.join(LABEL_FROM)} "
                             f"(got {self.label_from})")


def _fmt(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{x:.6f}".rstrip("0").rstrip(".") if np.isfinite(x) else ""
    return str(x)


def _band(f, lo: float | None = None, hi: float | None = None) -> tuple[float, float]:
    """Low and High Freq of selections: the detector's band when it had one, else the
    spectrogram's (--fmin/--fmax, or 0 to Nyquist)."""
    spec = f.spectrogram or {}
    low = lo if lo is not None else float(spec.get("fmin") or 0.0)
    top = spec.get("fmax")
    top = float(top) if top is not None else float(spec.get("sample_rate", 0)) / 2
    return low, (hi if hi is not None else top)


def _rows(f, extra: dict[str, Reader]) -> dict[str, Reader]:
    paths = np.asarray(f.sources["path"], dtype=object)
    return {"path": lambda s: paths[f.read("source_id", s)],
            "start_s": lambda s: f.read("start_s", s).astype(np.float64),
            "end_s": lambda s: f.read("end_s", s).astype(np.float64), **extra}


def _row_selections(f, label: Reader | None, extra: dict[str, Reader] | None = None):
    def gen():
        for a in range(0, f.n, CHUNK):
            sel = slice(a, min(f.n, a + CHUNK))
            sid, st, en = f.read("source_id", sel), f.read("start_s", sel), f.read("end_s", sel)
            lab = label(sel) if label else [""] * len(sid)
            cols = {k: fn(sel) for k, fn in (extra or {}).items()}
            for i in range(len(sid)):
                yield int(sid[i]), float(st[i]), float(en[i]), {
                    "Label": lab[i], **{k: v[i] for k, v in cols.items()}}
    return gen


def _labels_of(f) -> Reader:
    if f.has("label"):
        return lambda s: f.read("label", s)
    return lambda s: np.full(s.stop - s.start, "", dtype=object)


def export_windows(f, o: ExportOptions) -> Table:
    lab = _labels_of(f)
    return Table(f.n, _rows(f, {"label": lab}), _row_selections(f, lab), ["Label"], _band(f))


def export_embeddings(f, o: ExportOptions) -> Table:
    if o.fmt in ("raven", "audacity"):
        raise UsageError("embeddings export as csv or parquet (a selection table has no "
                         "place for vectors)", f.path)
    dim = f.shape("embeddings")[1]
    cache: dict = {}

    def col(j):
        def get(sel):
            if cache.get("sel") != (sel.start, sel.stop):
                cache["sel"] = (sel.start, sel.stop)
                cache["data"] = f.read("embeddings", sel)
            return cache["data"][:, j]
        return get
    return Table(f.n, _rows(f, {f"e{j}": col(j) for j in range(dim)}), lambda: iter(()))


def export_detections(f, o: ExportOptions) -> Table:
    """csv/parquet: one row per window (score, detected); raven/audacity: one selection per
    event, in the detector's band."""
    root = f.attrs("/")
    label = root.get("positive_label") or (
        "sound" if root.get("detector") == "silence" else "detection")
    if label == "*":
        label = "call"
    params = f.params

    def events():
        if not f.has("events/source_id"):
            return
        sid, st, en = f.read("events/source_id"), f.read("events/start_s"), f.read("events/end_s")
        sc = f.read("events/score")
        for i in range(len(sid)):
            yield int(sid[i]), float(st[i]), float(en[i]), {"Label": label, "Score": sc[i]}
    lo = params.get("fmin") if params.get("detector") == "silence" else None
    hi = params.get("fmax") if params.get("detector") == "silence" else None
    cols = {"score": lambda s: f.read("score", s).astype(np.float64),
            "detected": lambda s: f.read("positive", s).astype(int)}
    return Table(f.n, _rows(f, cols), events, ["Label", "Score"],
                 _band(f, float(lo) if lo else None, float(hi) if hi else None))


def export_clusters(f, o: ExportOptions) -> Table:
    """One row per sequence: cluster and novelty, and its label (the cluster id itself with
    ``--label-from cluster``, so clusters go back into ``wsd slice --labels``)."""
    if o.label_from == "cluster":
        lab = lambda s: f.read("cluster", s).astype(str).astype(object)  # noqa: E731
    else:
        lab = _labels_of(f)
    cols = {"cluster": lambda s: f.read("cluster", s),
            "novelty": lambda s: f.read("novelty", s).astype(np.float64), "label": lab}
    extra = {"Cluster": cols["cluster"], "Novelty": cols["novelty"]}
    return Table(f.n, _rows(f, cols), _row_selections(f, lab, extra),
                 ["Label", "Cluster", "Novelty"], _band(f))


def export_hits(f, o: ExportOptions) -> Table:
    """One row per hit: ``query_path,query_start_s,query_end_s,path,start_s,end_s,rank,
    score`` (and label when the archive was labelled)."""
    q = {k: f.read(f"queries/{k}") for k in ("path", "start_s", "end_s")}
    qid = lambda s: f.read("query_id", s)  # noqa: E731
    cols = {"query_path": lambda s: np.asarray(q["path"], object)[qid(s)],
            "query_start_s": lambda s: np.asarray(q["start_s"])[qid(s)],
            "query_end_s": lambda s: np.asarray(q["end_s"])[qid(s)]}
    cols.update(_rows(f, {"rank": lambda s: f.read("rank", s),
                          "score": lambda s: f.read("score", s).astype(np.float64)}))
    if f.has("label"):
        cols["label"] = lambda s: f.read("label", s)
    extra = {"Query": lambda s: qid(s) + 1, "Rank": cols["rank"], "Score": cols["score"]}
    return Table(f.n, cols, _row_selections(f, _labels_of(f), extra),
                 ["Label", "Query", "Rank", "Score"], _band(f))


def table(f, o: ExportOptions) -> Table:
    """The :class:`Table` of the open file ``f``, by the exporter its kind names."""
    from wsd.io.store.kinds import KINDS

    fn = KINDS[f.kind].resolve("exporter")
    if fn is None:
        able = sorted(k for k, v in KINDS.items() if v.exporter)
        raise UsageError(f"cannot export a {f.kind} file (exportable: {', '.join(able)})",
                         f.path)
    return fn(f, o)


def _source_filter(f, source: str | None) -> int | None:
    if source is None:
        return None
    paths = list(f.sources["path"])
    hits = [i for i, p in enumerate(paths) if p == source or p.endswith("/" + source)]
    if len(hits) != 1:
        raise UsageError(f"--source {source!r} matches {len(hits)} of the file's "
                         f"{len(paths)} recordings", f.path)
    return hits[0]


def text_rows(f, o: ExportOptions) -> Iterator[list[str]]:
    """Rows of cells (the first one the header, none for Audacity) in format ``o.fmt``."""
    t = table(f, o)
    only = _source_filter(f, o.source)
    if o.fmt == "audacity":
        if only is None and len(f.sources["path"]) > 1:
            raise UsageError("an Audacity label track belongs to one recording: choose it "
                             "with --source PATH", f.path)
        for sid, a, b, vals in t.selections():
            if only is None or sid == only:
                yield [_fmt(a), _fmt(b), str(vals.get("Label", ""))]
        return
    if o.fmt == "raven":
        paths = np.asarray(f.sources["path"], dtype=object)
        yield RAVEN_HEADER + t.selection_columns
        k = 0
        for sid, a, b, vals in t.selections():
            if only is not None and sid != only:
                continue
            k += 1
            yield ([str(k), "Spectrogram 1", "1", _fmt(a), _fmt(b), _fmt(t.band[0]),
                    _fmt(t.band[1]), paths[sid], _fmt(a)]
                   + [_fmt(vals.get(c, "")) for c in t.selection_columns])
        return
    yield list(t.columns)
    for a in range(0, t.n, CHUNK):
        sel = slice(a, min(t.n, a + CHUNK))
        cols = [fn(sel) for fn in t.columns.values()]
        keep = range(len(cols[0]))
        if only is not None:
            sid = f.read("source_id", sel)
            keep = np.flatnonzero(sid == only)
        for i in keep:
            yield [_fmt(c[i]) for c in cols]


def write_parquet(f, o: ExportOptions, out) -> int:
    """The CSV columns, typed, as a Parquet file (pyarrow, the ``parquet`` extra), one row
    group per chunk of rows; returns the number of rows."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'wsd[parquet]'") from None
    t = table(f, o)
    only = _source_filter(f, o.source)
    meta = {b"wsd_kind": f.kind.encode(), b"history": "\n".join(f.history).encode()}
    writer, n = None, 0
    try:
        for a in range(0, max(t.n, 1), CHUNK):
            sel = slice(a, min(t.n, a + CHUNK))
            cols = {k: np.asarray(fn(sel)) for k, fn in t.columns.items()}
            if only is not None:
                keep = f.read("source_id", sel) == only
                cols = {k: v[keep] for k, v in cols.items()}
            arrays = {k: (pa.array(v.astype(str)).dictionary_encode() if k == "path"
                          else pa.array(v.astype(str) if v.dtype.kind == "O" else v))
                      for k, v in cols.items()}
            fields = [pa.field(k, arr.type, metadata={b"units": UNITS[k].encode()}
                               if k in UNITS else None) for k, arr in arrays.items()]
            batch = pa.Table.from_arrays(list(arrays.values()),
                                         schema=pa.schema(fields, metadata=meta))
            if writer is None:
                writer = pq.ParquetWriter(str(out), batch.schema)
            writer.write_table(batch)
            n += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return n
