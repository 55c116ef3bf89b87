"""Coordinator of ``wsd search``: queries (windows, recordings or time ranges), an archive of
window embeddings, and the top-k hits of every query written as a hits file.

* ``--query Q.h5``: every window of an embeddings file is a query, matched to archive
  windows by cosine similarity (exactly, or through ``--index``); with ``--per-file`` every
  recording of Q is one query and every archive recording one candidate.
* ``--query-table T``: a Raven table or a ``path,start_s,end_s`` CSV of time ranges in the
  archive's recordings; each range's windows are one query, matched against every stretch
  of the archive (``--match pooled``: mean and std of the windows, cosine; ``--match dtw``:
  subsequence DTW), so a call is found inside an hour.
* ``--uncertain CLF.h5``: no query: the windows a linear probe is least sure about, for
  the next round of review.
Self-hits are reported, not hidden.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsd.discovery.search import MAX_SEGMENTS, SEGMENTS
from wsd.errors import BadInputError, UsageError
from wsd.pipeline.progress import Progress

MATCHES = ("auto", "pooled", "dtw", "fused")
#: ``--match auto`` for queries of several windows (chosen on the call-type catalogue:
#: benchmarks/quality.py, query by example: DTW of step embeddings mAP 0.42 against 0.32
#: pooled); embeddings of the kmeans encoder match fused (whole recordings) or pooled
#: (stretches) instead (:func:`wsd.discovery.sequences.default_distance`).
DEFAULT_MATCH = "dtw"


@dataclass(frozen=True)
class SearchParams:
    """What ``wsd search`` was asked to do (validated here; saved in the output)."""

    query: str | None = None
    query_table: str | None = None
    uncertain: str | None = None
    k: int = 10
    per_file: bool = False
    match: str = "auto"
    index: str | None = None
    nprobe: int | None = None
    segments: int | None = None  # None: SEGMENTS for whole recordings, 0 for stretches
    windows: str | None = None  # --match fused: the archive's windows file
    exclude: str | None = None  # --uncertain: a table of time ranges reviewed already
    query_windows: str | None = None  # --match fused: the queries' windows file
    rerank: str = "auto"  # --per-file: auto (mp+qe) | none | mp | mp+qe

    def __post_init__(self):
        given = [x for x in (self.query, self.query_table, self.uncertain) if x]
        if len(given) != 1:
            raise UsageError("give exactly one of --query Q.h5, --query-table TABLE or "
                             "--uncertain CLF.h5")
        if self.k < 1:
            raise UsageError(f"-k must be at least 1 (got {self.k})")
        if self.match not in MATCHES:
            raise UsageError(f"--match must be one of {', '.join(MATCHES)} (got {self.match})")
        if self.per_file and not self.query:
            raise UsageError("--per-file makes each recording of --query Q.h5 one query")
        if self.index and (self.per_file or not self.query):
            raise UsageError("--index serves window queries (--query Q.h5 without --per-file)")
        if self.nprobe is not None and self.nprobe < 1:
            raise UsageError("--nprobe must be at least 1")
        if self.segments is not None and not 0 <= self.segments <= MAX_SEGMENTS:
            raise UsageError(f"--segments must be 0 to {MAX_SEGMENTS} (got {self.segments})")
        if self.match == "fused" and not self.per_file:
            raise UsageError("--match fused compares whole recordings: give it with "
                             "--per-file")
        if self.exclude and not self.uncertain:
            raise UsageError("--exclude leaves reviewed windows out of --uncertain")
        if (self.windows or self.query_windows) and self.match != "fused":
            raise UsageError("--windows and --query-windows give the frames of --match fused")
        from wsd.discovery.rerank import RERANKS

        if self.rerank not in RERANKS:
            raise UsageError(f"--rerank must be {', '.join(RERANKS[:-1])} or {RERANKS[-1]} "
                             f"(got {self.rerank})")
        if self.rerank not in ("auto", "none") and not self.per_file:
            raise UsageError("--rerank re-ranks whole recordings: give it with --per-file")

    def resolved_rerank(self) -> str:
        """``--rerank``, auto resolved: mp+qe for whole recordings (measured better on both
        call-type sets: benchmarks/README.md), none otherwise."""
        if self.rerank != "auto":
            return self.rerank
        return "mp+qe" if self.per_file else "none"

    def parts(self, whole: bool) -> int:
        """``--segments``, its default resolved: SEGMENTS for whole recordings (measured
        better on both call-type sets), 0 for stretches of long recordings (no gain measured
        on the up-call search, at 1.7 times the time: benchmarks/README.md)."""
        if self.segments is not None:
            return self.segments
        return SEGMENTS if whole else 0


@dataclass
class Queries:
    """The queries: per query its recording, time range, label and window embeddings."""

    path: list = field(default_factory=list)
    start_s: list = field(default_factory=list)
    end_s: list = field(default_factory=list)
    label: list = field(default_factory=list)
    vectors: list = field(default_factory=list)  # (L, D) each

    def add(self, path, a, b, label, x):
        self.path.append(str(path))
        self.start_s.append(float(a))
        self.end_s.append(float(b))
        self.label.append(str(label))
        self.vectors.append(np.asarray(x, np.float32))

    def __len__(self):
        return len(self.path)


@dataclass
class Hits:
    query_id: list = field(default_factory=list)
    rank: list = field(default_factory=list)
    source_id: list = field(default_factory=list)
    start_s: list = field(default_factory=list)
    end_s: list = field(default_factory=list)
    score: list = field(default_factory=list)
    rerank: str = "none"  # how the scores were re-ranked (--per-file)

    def add(self, q: int, sid, a, b, score):
        """The hits of query ``q`` (arrays, best first)."""
        n = len(score)
        self.query_id.append(np.full(n, q, np.int64))
        self.rank.append(np.arange(1, n + 1, dtype=np.int64))
        for name, v in (("source_id", sid), ("start_s", a), ("end_s", b), ("score", score)):
            getattr(self, name).append(np.asarray(v))

    def arrays(self) -> dict:
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
        return {"query_id": cat(self.query_id, np.int64), "rank": cat(self.rank, np.int64),
                "source_id": cat(self.source_id, np.int32),
                "start_s": cat(self.start_s, np.float64), "end_s": cat(self.end_s, np.float64),
                "score": cat(self.score, np.float32)}


def run_search(archive: str, out, p: SearchParams, history: list[str], *, force: bool,
               progress: Progress | None = None) -> dict:
    """Search the embeddings file ``archive``; write the hits file ``out``."""
    from wsd.discovery.frames import recorded_windows
    from wsd.io.store import (atomic_output, check_output, ensure_space, open_file,
                              output_lock)
    from wsd.io.store.rows import RowWriter

    progress = progress or Progress()
    out = Path(out)
    check_output(out, force,
                 inputs=[archive, p.query, p.query_table, p.uncertain, p.index, p.exclude,
                         p.windows, p.query_windows, *recorded_windows(archive),
                         *(recorded_windows(p.query) if p.query else [])])
    with output_lock(out), open_file(archive, "embeddings") as e:
        hits, queries, how = _search(e, p, progress)
        h = hits.arrays()
        labels = e.read("label") if e.has("label") else None
        params = {**dataclasses.asdict(p), "embeddings": str(archive),
                  "embeddings_id": e.file_id, "how": how,
                  "rerank": hits.rerank}
        hist = list(dict.fromkeys(e.history)) + history
        ensure_space(out, len(h["score"]) * 48)
        with atomic_output(out, force) as tmp:
            w = RowWriter(tmp, "hits", params, e.spectrogram, hist, e.sources)
            try:
                if labels is not None:
                    h["label"] = _hit_labels(e, h)
                w.append(**h)
                for k in ("path", "start_s", "end_s", "label"):
                    w.put(f"queries/{k}", np.asarray(getattr(queries, k),
                                                     dtype=object if k in ("path", "label")
                                                     else np.float64))
                w.put("queries/n_windows", np.asarray([len(v) for v in queries.vectors],
                                                      np.int64))
                w.set_attrs(n_queries=len(queries), k=p.k)
            finally:
                w.close()
    return {"queries": len(queries), "hits": len(h["score"]), "how": how}


def _search(e, p: SearchParams, progress: Progress) -> tuple[Hits, Queries, str]:
    x = e.f["embeddings"]
    if p.uncertain:
        return _uncertain(e, p, progress)
    if p.query_table:
        queries = _table_queries(e, p.query_table)
    else:
        queries = _file_queries(e, p)
    if not len(queries):
        raise BadInputError("no query: the query file or table selects no window",
                            p.query or p.query_table)
    dim = x.shape[1]
    for v in queries.vectors:
        if v.shape[1] != dim:
            raise BadInputError(f"query embeddings are {v.shape[1]}-d but the archive's are "
                                f"{dim}-d (embed both with the same model)",
                                p.query or p.query_table)
    if p.query and not p.per_file:
        return _window_search(e, queries, p, progress), queries, \
            "window: cosine" + (" (index)" if p.index else " (exact)")
    match, windows = _auto_match(e, p, progress)
    mu, sd = _archive_stats(x)
    queries.vectors = [(v - mu) / sd for v in queries.vectors]
    groups = _recordings(e)
    if p.per_file:
        hits = _per_file_search(e, queries, groups, match, p, mu, sd, progress, windows)
        return hits, queries, f"{match} against recordings" + (
            f", re-ranked ({hits.rerank})" if hits.rerank != "none" else "")
    hits = Hits()
    with progress.task("searching", len(queries) * len(groups), "recordings") as advance:
        for qi, q in enumerate(queries.vectors):
            cand = [_candidates(e, q, sid, rows, match, p, x, mu, sd) for sid, rows in groups]
            advance(len(groups))
            sid, a, b, s = (np.concatenate(c) for c in zip(*cand)) if cand else ([],) * 4
            top = np.argsort(-np.asarray(s), kind="stable")[:p.k]
            hits.add(qi, np.asarray(sid)[top], np.asarray(a)[top], np.asarray(b)[top],
                     np.asarray(s)[top])
    return hits, queries, f"{match} against stretches"


def _auto_match(e, p: SearchParams, progress: Progress) -> tuple[str, tuple]:
    """The match for queries of several windows, and (archive, query) windows files for
    fused. ``--match auto``: fused for kmeans embeddings with ``--per-file`` when both
    windows files are found, else pooled (noted); DTW for the other encoders."""
    from wsd.discovery.frames import find_windows
    from wsd.discovery.sequences import default_distance
    from wsd.io.store import open_file

    if p.match != "auto":
        return p.match, (p.windows, p.query_windows)
    match = default_distance(e.params.get("arch"))
    if match == "dtw":
        return DEFAULT_MATCH, (None, None)
    if not p.per_file:
        return "pooled", (None, None)
    archive = find_windows(e)
    with open_file(p.query, "embeddings") as q:
        query = find_windows(q)
    if archive is None or query is None:
        progress.note("--match auto: pooled, not fused (the windows file the "
                      f"{'archive' if archive is None else 'query'} embeddings were made "
                      "from is not found)")
        return "pooled", (None, None)
    return "fused", (str(archive), str(query))


#: Stretch starts pooled at a time (--match pooled against stretches).
STRETCH_BLOCK = 4096
#: Rows read at a time for the archive's per-dimension statistics.
STATS_BLOCK = 1 << 16


def _archive_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std of the archive's embeddings (a block at a time): queries
    and candidates are z-scored with them, as ``wsd cluster --normalize zscore``."""
    n = x.shape[0]
    s1 = np.zeros(x.shape[1])
    s2 = np.zeros(x.shape[1])
    for a in range(0, n, STATS_BLOCK):
        b = np.asarray(x[a:a + STATS_BLOCK], np.float64)
        s1 += b.sum(0)
        s2 += (b * b).sum(0)
    mu = s1 / max(n, 1)
    sd = np.sqrt(np.maximum(s2 / max(n, 1) - mu * mu, 0)) + 1e-6
    return mu.astype(np.float32), sd.astype(np.float32)


def _per_file_search(e, queries, groups, match, p, mu, sd, progress, windows) -> Hits:
    """Every query against every archive recording as a whole, in one matrix (``windows``:
    the archive's and the queries' windows files for fused, None for the recorded ones),
    re-ranked by the archive's neighbourhoods unless ``--rerank none``."""
    from wsd.discovery import search as S
    from wsd.discovery.dtw import dtw_cross
    from wsd.discovery.frames import fuse, fuse_scales

    x = e.f["embeddings"]
    seqs = [(np.asarray(x[int(r.min()):int(r.max()) + 1], np.float32)[r - r.min()] - mu) / sd
            for _, r in groups]
    st, en = e.read("start_s"), e.read("end_s")
    sid = np.array([g for g, _ in groups])
    a = np.array([st[r].min() for _, r in groups])
    b = np.array([en[r].max() for _, r in groups])
    n = len(groups)
    from wsd.discovery.rerank import MIN_ITEMS

    rerank = p.resolved_rerank() if n >= MIN_ITEMS else "none"
    sample = _stats_sample(n) if rerank != "none" else np.zeros(0, np.int64)
    pa = pb = frames = qframes = None
    if match in ("pooled", "fused"):
        parts = p.parts(whole=True)
        w = S.pool_weights(seqs[0].shape[1], parts)
        pa = S.normalise(np.stack([S.pool(q, parts) for q in queries.vectors]) * w)
        pb = S.normalise(np.stack([S.pool(s_, parts) for s_ in seqs]) * w)
    if match == "fused":
        from wsd.discovery.frames import sequence_frames
        from wsd.io.store import open_file

        frames = sequence_frames(e, sid, a, b, windows[0])
        with open_file(p.query, "embeddings") as f:
            qframes = sequence_frames(f, np.unique(f.read("source_id")), queries.start_s,
                                      queries.end_s, windows[1])

    def parts_of(left_vectors, left_pooled, left_frames):
        """Raw distances of some sequences to the whole archive: (main, frames), main the
        pooled cosine distance (pooled, fused) or the DTW (dtw), frames the frames' DTW
        (fused) or None."""
        if match == "pooled":
            return np.clip(1.0 - left_pooled @ pb.T, 0.0, None), None
        if match == "dtw":
            return dtw_cross(left_vectors, seqs, length_norm="sqrt"), None
        return (np.clip(1.0 - left_pooled @ pb.T, 0.0, None),
                dtw_cross(left_frames, frames, length_norm="sqrt"))

    def pick(idx):
        idx = list(idx)
        return ([seqs[i] for i in idx], None if pb is None else pb[idx],
                None if frames is None else [frames[i] for i in idx])

    if len(sample) > len(queries):
        progress.note(f"re-ranking ({rerank}): the distances of {len(sample)} archive "
                      f"recordings to the archive too, {len(sample) / len(queries):.0f}x the "
                      "queries' own (--rerank none skips them)")
    total = (len(queries) + len(sample)) * n
    with progress.task("searching", total, "pairs") as advance:
        q_main, q_frames = parts_of(queries.vectors, pa, qframes)
        advance(len(queries) * n)
        if rerank == "none":  # the scores as before re-ranking: cosine, -DTW, -fused
            score = (-fuse(q_main, q_frames) if match == "fused" else
                     pa @ pb.T if match == "pooled" else -q_main)
        else:
            from wsd.discovery.rerank import rerank_cross, row_stats

            a_main, a_frames = parts_of(*pick(sample))
            advance(len(sample) * n)
            self_pairs = sample[:, None] == np.arange(n)[None, :]
            scales = fuse_scales(a_main, a_frames, ~self_pairs) if match == "fused" else None
            one = ((lambda c, d_: fuse(c, d_, scales=scales)) if match == "fused"
                   else (lambda c, d_: c))
            d_arch = one(a_main, a_frames)  # (sample, n): each archive recording's column
            mu_a, sd_a = row_stats(d_arch.T, ~self_pairs.T)
            in_sample = {int(j): k for k, j in enumerate(sample)}

            def row(j):
                if j in in_sample:
                    return d_arch[in_sample[j]]
                return one(*parts_of(*pick([j])))[0]

            paths = e.sources["path"]
            qpath = np.asarray(queries.path, dtype=object)[:, None]
            apath = np.asarray([str(paths[s_]) for s_ in sid], dtype=object)[None, :]
            same = ((qpath == apath) & (np.asarray(queries.start_s)[:, None] < b[None, :])
                    & (a[None, :] < np.asarray(queries.end_s)[:, None]))
            score = -rerank_cross(one(q_main, q_frames), mu_a, sd_a, rerank, row, same)
    hits = Hits(rerank=rerank)
    for qi in range(len(queries)):
        top = np.argsort(-score[qi], kind="stable")[:p.k]
        hits.add(qi, sid[top], a[top], b[top], score[qi][top].astype(np.float32))
    return hits


def _stats_sample(n: int) -> np.ndarray:
    """Archive recordings whose distances give each archive recording's mean and spread for
    the re-ranking: all of them up to STATS_SAMPLE, else a sample (seed 0), ascending."""
    from wsd.discovery.rerank import STATS_SAMPLE

    if n <= STATS_SAMPLE:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(0).choice(n, STATS_SAMPLE, replace=False))


def _recordings(e) -> list[tuple[int, np.ndarray]]:
    """(source id, row indices in time order) of every recording of the archive."""
    sid, st = e.read("source_id"), e.read("start_s")
    order = np.lexsort((st, sid))
    ids, first = np.unique(sid[order], return_index=True)
    return list(zip(ids.tolist(), np.split(order, first[1:])))


def _candidates(e, q, sid: int, rows: np.ndarray, match: str, p: SearchParams, x, mu, sd):
    """The best matches of query ``q`` ``(L, D)`` (z-scored) inside one recording: (sid,
    start_s, end_s, score) arrays."""
    from wsd.discovery import search as S

    lo, hi = int(rows.min()), int(rows.max()) + 1
    seq = (np.asarray(x[lo:hi], np.float32)[rows - lo] - mu) / sd
    st, en = e.read("start_s", slice(lo, hi))[rows - lo], e.read("end_s", slice(lo, hi))[rows - lo]
    L, k = len(q), p.k
    if match == "pooled":
        L = min(L, len(seq))
        parts = p.parts(whole=False)
        w = S.pool_weights(seq.shape[1], parts)
        qv = S.normalise(S.pool(q, parts)[None] * w)[0]
        n_starts = len(seq) - L + 1
        score = np.empty(n_starts, np.float32)
        for a in range(0, n_starts, STRETCH_BLOCK):  # bounded memory on long recordings
            b = min(n_starts, a + STRETCH_BLOCK)
            score[a:b] = S.normalise(S.sliding_pooled(seq[a:b + L - 1], L, parts) * w) @ qv
        starts, vals = S.best_segments(score, L, k)
        stops = starts + L
    else:
        starts, stops, vals = S.subsequence_dtw(q, seq, k)
    return (np.full(len(starts), sid), st[starts], en[np.maximum(stops - 1, starts)], vals)


def _window_search(e, queries: Queries, p: SearchParams, progress: Progress) -> Hits:
    """Every query window against every archive window (cosine), exact or by the index."""
    from wsd.discovery.search import cosine_topk

    qx = np.concatenate(queries.vectors)
    hits = Hits()
    with progress.task("searching", len(qx), "queries") as advance:
        if p.index:
            from wsd.io.index import open_index

            idx = open_index(p.index, e)
            index, score = idx.search(qx, p.k, nprobe=p.nprobe)
        else:
            index, score = cosine_topk(qx, e.f["embeddings"], p.k)
        advance(len(qx))
    sid, st, en = e.read("source_id"), e.read("start_s"), e.read("end_s")
    for qi in range(len(qx)):
        ok = index[qi] >= 0
        i = index[qi][ok]
        hits.add(qi, sid[i], st[i], en[i], score[qi][ok])
    return hits


def _file_queries(e, p: SearchParams) -> Queries:
    """Windows (or, with ``--per-file``, recordings) of the query embeddings file."""
    from wsd.io.store import open_file

    qs = Queries()
    with open_file(p.query, "embeddings") as f:
        z = f.read("embeddings")
        sid, st, en = f.read("source_id"), f.read("start_s"), f.read("end_s")
        lab = f.read("label") if f.has("label") else np.full(len(z), "", object)
        paths = f.sources["path"]
        if not p.per_file:
            for i in range(len(z)):
                qs.add(paths[sid[i]], st[i], en[i], lab[i], z[i:i + 1])
            return qs
        for s in np.unique(sid):
            rows = np.flatnonzero(sid == s)
            rows = rows[np.argsort(st[rows], kind="stable")]
            labs = [x for x in lab[rows] if x]
            common = max(set(labs), key=labs.count) if labs else ""
            qs.add(paths[s], st[rows[0]], en[rows[-1]], common, z[rows])
    return qs


def _table_queries(e, table: str) -> Queries:
    """Time ranges in the archive's recordings: each range's windows form one query (the
    windows overlapping it by at least half their length, else the one overlapping most)."""
    from wsd.io.labels import read_labels

    t = read_labels(table, n_inputs=e.n_sources, need_label=False)
    paths = e.sources["path"]
    sid, st, en = e.read("source_id"), e.read("start_s"), e.read("end_s")
    qs = Queries()
    x = e.f["embeddings"]
    for s, path in enumerate(paths):
        rows = np.flatnonzero(sid == s)
        for a, b, lab in t.for_file(path):
            b = min(b, en[rows].max()) if len(rows) else b
            if not len(rows) or not math.isfinite(b):
                continue
            ov = np.minimum(en[rows], b) - np.maximum(st[rows], a)
            pick = rows[ov >= 0.5 * (en[rows] - st[rows])]
            if not len(pick) and ov.max() > 0:
                pick = rows[[int(np.argmax(ov))]]
            if len(pick):
                pick = pick[np.argsort(st[pick], kind="stable")]
                qs.add(path, a, b, lab, np.asarray(x[pick.min():pick.max() + 1])[pick - pick.min()])
    if t.unused():
        raise BadInputError(f"{len(t.unused())} range path(s) name no recording of the archive,"
                            f" e.g. {t.unused()[0]}", table)
    return qs


def _uncertain(e, p: SearchParams, progress: Progress) -> tuple[Hits, Queries, str]:
    """Archive windows ranked by how near a linear probe's decision boundary they are."""
    from wsd.discovery.search import uncertainty_topk
    from wsd.models.probe import load_probe

    probe = load_probe(p.uncertain, e.shape("embeddings")[1])
    with progress.task("scoring", e.n, "windows") as advance:
        prob = probe.predict_rows(e.f["embeddings"], advance, source_id=e.read("source_id"))
    sid, st, en = e.read("source_id"), e.read("start_s"), e.read("end_s")
    skip = _reviewed(e, p.exclude, sid, st, en) if p.exclude else None
    idx, score = uncertainty_topk(prob, p.k, sid, st, en, skip)
    hits = Hits()
    hits.add(0, sid[idx], st[idx], en[idx], score)
    qs = Queries()
    qs.add(f"uncertain: {p.uncertain}", math.nan, math.nan, probe.positive,
           np.zeros((0, e.shape("embeddings")[1]), np.float32))
    return hits, qs, ("uncertainty: 1 - 2|p - 0.5| of the probe, no two picks overlapping"
                      + (f", {int(skip.sum())} reviewed windows left out" if skip is not None
                         else ""))


def _reviewed(e, table: str, sid, st, en) -> np.ndarray:
    """Windows overlapping a time range of ``table`` (what was reviewed already)."""
    from wsd.io.labels import read_labels

    t = read_labels(table, n_inputs=e.n_sources, need_label=False)
    out = np.zeros(len(sid), bool)
    for s, path in enumerate(e.sources["path"]):
        rows = np.flatnonzero(sid == s)
        for a, b, _ in t.for_file(path):
            out[rows[(st[rows] < b) & (en[rows] > a)]] = True
    if t.unused():
        raise BadInputError(f"{len(t.unused())} range path(s) name no recording of the archive,"
                            f" e.g. {t.unused()[0]}", table)
    return out


def _hit_labels(e, h: dict) -> np.ndarray:
    """Each hit's label: the most common label of the archive windows it covers."""
    sid, st, en = e.read("source_id"), e.read("start_s"), e.read("end_s")
    lab = e.read("label")
    out = np.full(len(h["score"]), "", object)
    for i, (s, a, b) in enumerate(zip(h["source_id"], h["start_s"], h["end_s"])):
        rows = np.flatnonzero((sid == s) & (st < b) & (en > a))
        labs = [x for x in lab[rows] if x]
        if labs:
            out[i] = max(set(labs), key=labs.count)
    return out
