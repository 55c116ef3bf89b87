"""The one registry of file kinds: what each kind of wsd file must hold, which files it
names, and which code exports, reports and describes it.

Commands and the report look a kind up here instead of dispatching on its name; the code
named by ``exporter``, ``section`` and ``info`` (``"module:function"``) is imported only
when used, so this registry costs nothing at start-up. :func:`validate` checks a file
against its kind when it is opened, so a damaged or hand-made file is refused with one line
naming it (exit 65) instead of failing later inside a command.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from wsd.errors import BadInputError


@dataclass(frozen=True)
class Kind:
    """One kind of wsd file.

    rows : name of the row dimension of its per-row datasets (None: no rows, a model).
    required : per-row datasets it must hold -> their number of dimensions.
    optional : per-row datasets it may hold -> their number of dimensions.
    references : parameter naming another file -> the kind that file must be.
    exporter, section, info : ``"module:function"`` of its table exporter (``wsd export``),
        report section (``wsd report``) and extra ``wsd info`` fields; "" when none.
    """

    name: str
    rows: str | None
    required: dict[str, int] = field(default_factory=dict)
    optional: dict[str, int] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    exporter: str = ""
    section: str = ""
    info: str = ""

    def resolve(self, what: str) -> Callable | None:
        """The function named by ``what`` (exporter, section or info), or None."""
        ref = getattr(self, what)
        if not ref:
            return None
        module, name = ref.split(":")
        return getattr(importlib.import_module(module), name)


_ROWS = {"source_id": 1, "start_s": 1, "end_s": 1}

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("windows", "window", {**_ROWS, "windows": 3}, {"padded": 1, "label": 1},
         exporter="wsd.io.tables:export_windows",
         section="wsd.report.sections.detect:windows_section"),
    Kind("model", None, info="wsd.models.inference:model_info",
         section="wsd.report.sections.embed:model_section"),
    Kind("embeddings", "window", {**_ROWS, "embeddings": 2}, {"padded": 1, "label": 1},
         references={"windows": "windows", "model": "model"},
         exporter="wsd.io.tables:export_embeddings",
         section="wsd.report.sections.embed:embeddings_section"),
    Kind("detections", "window", {**_ROWS, "score": 1, "positive": 1},
         {"padded": 1, "label": 1},
         references={"windows": "windows", "embeddings": "embeddings"},
         exporter="wsd.io.tables:export_detections",
         section="wsd.report.sections.detect:detections_section"),
    Kind("clusters", "sequence", {**_ROWS, "cluster": 1, "seq_start": 1, "seq_stop": 1},
         {"label": 1, "novelty": 1, "medoid_distance": 1, "in_sample": 1},
         references={"embeddings": "embeddings"},
         exporter="wsd.io.tables:export_clusters",
         section="wsd.report.sections.cluster:clusters_section"),
    Kind("hits", "hit", {**_ROWS, "query_id": 1, "rank": 1, "score": 1}, {"label": 1},
         references={"embeddings": "embeddings"},
         exporter="wsd.io.tables:export_hits",
         section="wsd.report.sections.review:hits_section"),
)}


def names() -> tuple[str, ...]:
    return tuple(KINDS)


def get(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise BadInputError(f"unknown wsd_kind {kind!r} (known: {', '.join(KINDS)})") from None


def validate(f) -> None:
    """Check an open :class:`wsd.io.store.WsdFile` against its kind; raise
    :class:`BadInputError` naming the file and the first problem found.

    Checked: the sources table (present, columns of one length), every required per-row
    dataset (present, of its number of dimensions, all of one length), the spectrogram
    group of windows (present, its frames and bins those of the windows), a model's
    weights, configuration and normalisation, and the clusters' medoids and cluster ids.
    Source ids are checked where they are read (:meth:`WsdFile.read`), in bounded memory."""
    kind = get(f.kind)
    h = f.f

    def bad(reason):
        raise BadInputError(reason, f.path)

    if kind.rows is None:
        _validate_model(f, bad)
        return
    if "sources" not in h or "path" not in h["sources"]:
        bad("has no sources table (group 'sources' with a 'path' column)")
    lens = {k: len(h["sources"][k]) for k in h["sources"]}
    if len(set(lens.values())) > 1:
        bad(f"sources table columns differ in length ({lens})")
    n = None
    for name, ndim in {**kind.required, **{k: v for k, v in kind.optional.items()
                                           if k in h}}.items():
        if name not in h:
            bad(f"has no '{name}' dataset (a {kind.name} file needs "
                f"{', '.join(kind.required)})")
        d = h[name]
        if not hasattr(d, "shape") or len(d.shape) != ndim:
            bad(f"dataset '{name}' has shape {getattr(d, 'shape', '(a group)')}; expected "
                f"{ndim} dimension(s)")
        if n is None:
            n = d.shape[0]
        elif d.shape[0] != n:
            bad(f"dataset '{name}' has {d.shape[0]} rows where the others have {n}")
    _validate_source_ids(f, n, bad)
    if kind.name == "windows":
        w = h["windows"]
        if "spectrogram" not in h:
            bad("has no spectrogram group (the settings the windows were made with)")
        frames = h["spectrogram"].attrs.get("frames")
        if frames is not None and int(frames) != w.shape[1]:
            bad(f"windows have {w.shape[1]} frames but the spectrogram settings say {frames}")
        if "freqs" in h and h["freqs"].shape != (w.shape[2],):
            bad(f"freqs has shape {h['freqs'].shape} but windows have {w.shape[2]} bins")
    if kind.name == "clusters":
        _validate_clusters(f, n, bad)
    if kind.name == "hits":
        q = h.get("queries")
        nq = len(q["path"]) if q is not None and "path" in q else 0
        qid = h["query_id"][()]
        if len(qid) and (qid.min() < -1 or qid.max() >= nq):
            bad(f"query_id out of range (the queries table has {nq} rows)")
    if kind.name == "detections" and "events" in h:
        ev = h["events"]
        lens = {k: len(ev[k]) for k in ev}
        if len(set(lens.values())) > 1:
            bad(f"events table columns differ in length ({lens})")


#: Rows of source ids checked when a file is opened (all of them below this; the first and
#: last this many above it: the rest are checked as they are read).
CHECK_IDS = 1 << 22


def _validate_source_ids(f, n: int | None, bad) -> None:
    ds = f.f["source_id"]
    parts = [ds[()]] if (n or 0) <= 2 * CHECK_IDS else [ds[:CHECK_IDS], ds[-CHECK_IDS:]]
    n_src = f.n_sources
    for ids in parts:
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= n_src):
            worst = int(ids.min()) if ids.min() < 0 else int(ids.max())
            bad(f"'source_id' holds source id {worst}, outside the sources table of {n_src} "
                "recording(s)")


def _validate_clusters(f, n: int, bad) -> None:
    import numpy as np

    h = f.f
    cl = h["cluster"][()]
    if n and (cl.min() < 0):
        bad("cluster ids must be >= 0")
    if "medoids" in h:
        med = h["medoids"][()]
        if len(med) and (med.min() < 0 or med.max() >= n):
            bad(f"medoid index out of range (medoids must name one of the {n} sequences)")
        if n and int(cl.max()) >= len(med) and len(med):
            bad(f"cluster id {int(cl.max())} has no medoid ({len(med)} medoids)")
    if n:
        st, sp = h["seq_start"][()], h["seq_stop"][()]
        if np.any(sp < st) or np.any(st < 0):
            bad("sequence bounds seq_start/seq_stop are inconsistent")


def _validate_model(f, bad) -> None:
    import json

    import numpy as np

    h = f.f
    if "arch" not in h.attrs:
        bad("model has no 'arch' attribute")
    try:
        cfg = json.loads(h.attrs.get("arch_config", ""))
        if not isinstance(cfg, dict):
            raise ValueError
    except (ValueError, TypeError):
        bad("model's arch_config is not a JSON object")
    if "weights" not in h or not len(h["weights"]):
        bad("model has no weights")
    if "normalisation" not in h or not {"mean", "std"} <= set(h["normalisation"].attrs):
        bad("model has no normalisation (mean and std)")
    mean = float(h["normalisation"].attrs["mean"])
    std = float(h["normalisation"].attrs["std"])
    if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
        bad(f"model's normalisation is unusable (mean {mean}, std {std}): inputs would "
            "become NaN")
