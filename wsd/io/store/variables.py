"""What every dataset of every wsd file is called along each axis, in which units, and what
it means: the names xarray and pandas users see (:mod:`wsd.io.store.netcdf` writes them).

Dimensions: ``window`` (a row of windows, embeddings and detections), ``frame`` (s after the
window's start), ``freq`` (Hz), ``dim`` (embedding dimension), ``source`` (a recording),
``event``, ``sequence`` (a row of clusters), ``cluster_id``, ``hit`` and ``query`` (search
results), ``epoch`` and others. Index-only dimensions cost nothing on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

@dataclass(frozen=True)
class Dim:
    """A dimension: index-only (no stored values) or a coordinate (``units`` and values)."""
    long_name: str
    units: str | None = None
    coordinate: bool = False


@dataclass(frozen=True)
class Var:
    """How one dataset is labelled. ``dims`` names every axis; "*" in ``dims`` means
    "by size" (``n{size}``, then ``n{size}_2`` for a repeat within the dataset).
    ``units`` may be a dict {root attribute: {value: units}} for kind-dependent units."""
    dims: tuple[str, ...]
    long_name: str
    units: str | dict | None = None
    coordinates: str | None = None
    attrs: dict = field(default_factory=dict)


ROW = "start_s end_s source_id"  # auxiliary coordinates of every per-window/sequence row
DB = "dB re full-scale sine"     # the unit wsd already writes on windows (keep it)

#: Every dimension name used by wsd files. Index-only dimensions cost nothing on disk.
DIMS: dict[str, Dim] = {
    "window": Dim("window (row of the file)"),
    "stat": Dim("statistic (mean, standard deviation)"),
    "frame": Dim("frame start after the window start", "s", coordinate=True),
    "freq": Dim("frequency of the FFT bin centre", "Hz", coordinate=True),
    "source": Dim("recording (row of /sources)"),
    "event": Dim("event (run of positive windows)"),
    "dim": Dim("embedding dimension"),
    "recon": Dim("reconstructed example"),
    "draw": Dim("generated example (GAN draw)"),
    "sequence": Dim("call sequence (row of the clusters file)"),
    "cluster_id": Dim("cluster (value of the cluster variable)"),
    "clustered": Dim("sequence in the hierarchical clustering (matrix row)"),
    "clustered_2": Dim("sequence in the hierarchical clustering (matrix column)"),
    "merge": Dim("merge step of the agglomerative clustering"),
    "linkage_column": Dim("column of the scipy linkage matrix", coordinate=True),
    "epoch": Dim("training epoch"),
    "hit": Dim("search hit (row of the hits file)"),
    "query": Dim("query window"),
}
LINKAGE_COLUMNS = np.array(["cluster_a", "cluster_b", "distance", "size"], dtype=object)

SOURCES = {
    "sources/path": Var(("source",), "path of the recording as given"),
    "sources/size": Var(("source",), "file size", "byte"),
    "sources/mtime": Var(("source",), "file modification time",
                         "seconds since 1970-01-01 00:00:00 UTC"),
    "sources/format": Var(("source",), "container/codec"),
    "sources/native_sample_rate": Var(("source",), "sample rate of the file", "Hz"),
    "sources/channels": Var(("source",), "channels in the file", "1"),
    "sources/frames_header": Var(("source",), "sample frames promised by the header", "1"),
    "sources/frames_decoded": Var(("source",), "sample frames actually decoded", "1"),
    "sources/duration_s": Var(("source",), "duration decoded", "s"),
    "sources/n_windows": Var(("source",), "windows cut from the recording", "1"),
    "sources/status": Var(("source",), "ok, truncated, bad ..."),
    "sources/message": Var(("source",), "why a recording is not ok"),
}
ROWS = {  # per-window rows shared by windows, embeddings, detections
    "start_s": Var(("window",), "window start, seconds from the start of the recording", "s"),
    "end_s": Var(("window",), "window end, seconds from the start of the recording", "s"),
    "source_id": Var(("window",), "recording of the window (index along source)"),
    "padded": Var(("window",), "window zero-padded (recording shorter than a window)",
                  coordinates=ROW),
    "label": Var(("window",), "label of the event overlapping the window most",
                 coordinates=ROW),
}
SCORE_UNITS = {"detector": {"silence": "dB above noise floor", "model": "1"}}

SCHEMA: dict[str, dict[str, Var]] = {
    "windows": {
        **ROWS, **SOURCES,
        "windows": Var(("window", "frame", "freq"), "log-magnitude spectrogram window", DB,
                       coordinates=ROW),
        "whiten_stats": Var(("source", "stat"), "mean and standard deviation each recording "
                            "was standardised with after whitening (--whiten)"),
        "freqs": Var(("freq",), "frequency of the FFT bin centre (alias of freq kept for "
                     "readers of wsd_format 1)", "Hz"),
        "activity/source_id": Var(("event",), "recording of the event (index along source)"),
        "activity/start_s": Var(("event",), "event start, seconds from the recording start", "s"),
        "activity/end_s": Var(("event",), "event end, seconds from the recording start", "s"),
        "activity/score": Var(("event",), "largest window score in the event",
                              "dB above noise floor"),
        "activity/windows_sliced": Var(("source",), "windows sliced before dropping silence",
                                       "1"),
        "activity/floor_db": Var(("source",), "noise floor of the recording", DB),
    },
    "embeddings": {
        **ROWS, **SOURCES,
        "embeddings": Var(("window", "dim"), "embedding of the window", "1", coordinates=ROW),
        "recon_index": Var(("recon",), "window (row) reconstructed"),
        "recon_input": Var(("recon", "frame", "freq"), "window given to the autoencoder", DB),
        "recon_output": Var(("recon", "frame", "freq"), "autoencoder reconstruction", DB),
        "generated": Var(("draw", "frame", "freq"), "window drawn from the generator", DB),
    },
    "detections": {
        **ROWS, **SOURCES,
        "score": Var(("window",), "detector score of the window", SCORE_UNITS,
                     coordinates=ROW),
        "positive": Var(("window",), "window detected (not silence / call)", coordinates=ROW),
        "active_frac": Var(("window",), "fraction of active frames", "1", coordinates=ROW),
        "floor_db": Var(("source",), "noise floor of the recording", DB),
        "events/source_id": Var(("event",), "recording of the event (index along source)"),
        "events/start_s": Var(("event",), "event start, seconds from the recording start", "s"),
        "events/end_s": Var(("event",), "event end, seconds from the recording start", "s"),
        "events/score": Var(("event",), "largest window score in the event", SCORE_UNITS),
        "events/n_windows": Var(("event",), "windows in the event", "1"),
    },
    "clusters": {
        **SOURCES,
        "start_s": Var(("sequence",), "sequence start, seconds from the recording start", "s"),
        "end_s": Var(("sequence",), "sequence end, seconds from the recording start", "s"),
        "source_id": Var(("sequence",), "recording of the sequence (index along source)"),
        "cluster": Var(("sequence",), "cluster of the sequence (index along cluster_id)",
                       coordinates=ROW),
        "seq_start": Var(("sequence",), "first window (row of the embeddings file)",
                         coordinates=ROW),
        "seq_stop": Var(("sequence",), "one past the last window (row of the embeddings file)",
                        coordinates=ROW),
        "medoid_distance": Var(("sequence",), "distance to the cluster medoid (as clustered: "
                               "the distance and rerank params)", "1",
                               coordinates=ROW),
        "in_sample": Var(("sequence",), "sequence was clustered (not assigned to a medoid)",
                         coordinates=ROW),
        "novelty": Var(("sequence",), "mean distance (as clustered) to the nearest clustered "
                       "sequences", "1", coordinates=ROW),
        "label": Var(("sequence",), "label of the sequence", coordinates=ROW),
        "medoids": Var(("cluster_id",), "medoid of the cluster (index along sequence)"),
        "linkage": Var(("merge", "linkage_column"), "scipy linkage matrix"),
        "linkage_index": Var(("clustered",), "sequence of each matrix row (index along "
                             "sequence)"),
        "distance": Var(("clustered", "clustered_2"), "distance matrix as clustered (the "
                        "distance and rerank params)", "1"),
    },
    "model": {
        **SOURCES,
        "weights/*": Var(("*",), "tensor of the model's state dict"),
        "loss_history/loss": Var(("epoch",), "training loss", "1"),
        "loss_history/val_loss": Var(("epoch",), "validation loss", "1"),
        "loss_history/seconds": Var(("epoch",), "wall time of the epoch", "s"),
        "loss_history/windows_per_s": Var(("epoch",), "training throughput", "s-1"),
        "loss_history/*": Var(("epoch",), "logged per epoch"),
    },
    # proposal: ``wsd search`` results, one row per (query, rank) hit, flat like every wsd
    # table (``ds.set_index(hit=["query_id", "rank"]).unstack("hit")`` gives query x rank)
    "hits": {
        **SOURCES,
        "query_id": Var(("hit",), "query of the hit (index along query)"),
        "rank": Var(("hit",), "rank of the hit for its query, 1 = best"),
        "source_id": Var(("hit",), "recording of the hit (index along source)"),
        "start_s": Var(("hit",), "hit start, seconds from the recording start", "s"),
        "end_s": Var(("hit",), "hit end, seconds from the recording start", "s"),
        "score": Var(("hit",), "similarity of the hit to its query", "1",
                     coordinates="query_id rank start_s end_s source_id"),
        "queries/path": Var(("query",), "recording of the query"),
        "queries/start_s": Var(("query",), "query start, seconds from the recording start", "s"),
        "queries/end_s": Var(("query",), "query end, seconds from the recording start", "s"),
        "queries/label": Var(("query",), "label of the query, if known"),
        "queries/n_windows": Var(("query",), "windows in the query", "1"),
        "label": Var(("hit",), "label of the hit, if known",
                     coordinates="query_id rank start_s end_s source_id"),
    },
}
