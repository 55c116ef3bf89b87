"""Review pages: the hits of ``wsd search`` grouped by query (the query first, then its
hits, best rank first) and the events of a detections file, each with a thumbnail
spectrogram, a play button and yes / no / unsure marks saved as a labels CSV
(:mod:`wsd.report.review`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsd.report.context import Ctx
from wsd.report.collect import Item
from wsd.report.page import Note, Section
from wsd.report.review import (YES_DEFAULT, ItemMaker, Review, ReviewGroup, missing_note,
                               store_key)


def pick_hits(query_id: np.ndarray, rank: np.ndarray, cap: int) -> np.ndarray:
    """Indices of the hits shown: at most ``cap``, every query's best ranks first (all rank
    1s, then rank 2s, ...), returned grouped by query and by rank within a query."""
    order = np.lexsort((query_id, rank))[:max(0, cap)]
    return order[np.lexsort((rank[order], query_id[order]))]


def _text(f, name: str, n: int) -> np.ndarray:
    return (np.asarray(f.read(name), dtype=object).astype(str) if f.has(name)
            else np.full(n, "", dtype=object).astype(str))


def _queries(f) -> dict:
    """The queries table: ``path``, ``label`` ``(q,)`` str, ``start_s``, ``end_s`` ``(q,)``
    float (NaN for the pseudo-query of ``--uncertain``), ``n_windows`` ``(q,)`` int."""
    n = len(f.read("queries/path")) if f.has("queries/path") else 0
    q = {"path": _text(f, "queries/path", n), "label": _text(f, "queries/label", n)}
    for k in ("start_s", "end_s"):
        q[k] = (np.asarray(f.read(f"queries/{k}"), np.float64) if f.has(f"queries/{k}")
                else np.full(n, np.nan))
    q["n_windows"] = (np.asarray(f.read("queries/n_windows"), np.int64)
                      if f.has("queries/n_windows") else np.zeros(n, np.int64))
    return q


def _windows_of(ctx: Ctx, item: Item):
    """The windows data a hits or detections file can draw thumbnails from (its own
    windows file, or its embeddings' windows), and the sentence saying what is missing."""
    wins = item.refs.get("windows")
    emb = item.refs.get("embeddings")
    if wins is None and emb is not None:
        wins = emb.refs.get("windows")
    wd = ctx.windows(wins)
    if wd is not None:
        return wd, ""
    if not ctx.opts.follow:
        what = "The files these were made from are not opened (--no-follow)"
    elif "embeddings" in item.params and emb is None:
        what = f"The embeddings file {item.params['embeddings']} was not found"
    elif emb is not None:
        what = f"The windows file of {emb.display} was not found"
    else:
        what = "The windows file was not found"
    return None, missing_note(what, None)


def _group_title(q: dict, qi: int) -> tuple[str, str]:
    """Title and default yes label of query ``qi`` (-1: hits without a query)."""
    if qi < 0:
        return "Hits without a query", YES_DEFAULT
    label = q["label"][qi]
    a, b = q["start_s"][qi], q["end_s"][qi]
    if not (np.isfinite(a) and np.isfinite(b)):  # --uncertain: no example, a probe
        return (f"{q['path'][qi]}: the windows it is least sure of"
                + (f" (positive: {label})" if label else ""), label or YES_DEFAULT)
    nw = int(q["n_windows"][qi])
    return (f"Query {qi + 1}: {Path(q['path'][qi]).name} {a:.2f}-{b:.2f} s"
            + (f" [{label}]" if label else "")
            + (f", {nw} window{'s' if nw != 1 else ''}" if nw else ""), label or YES_DEFAULT)


def hits_section(ctx: Ctx, hits: Item) -> tuple[Section, dict] | None:
    """The review page of a hits file: a group per query, its hits best first."""
    f = hits.f
    n = f.n
    qid = np.asarray(f.read("query_id"), np.int64)
    rank = np.asarray(f.read("rank"), np.int64)
    sid = np.asarray(f.read("source_id"), np.int64)
    start, end = (np.asarray(f.read(k), np.float64) for k in ("start_s", "end_s"))
    score = np.asarray(f.read("score"), np.float64)
    label = _text(f, "label", n)
    q = _queries(f)
    sec = Section(f"Review: {hits.display}", anchor=f"hits-{hits.name}")
    shown = pick_hits(qid, rank, ctx.opts.review_items)
    metrics = {"kind": "hits", "n_hits": int(n), "n_queries": int(len(q["path"])),
               "how": hits.attr("how"), "k": hits.attr("k"),
               "review": {"items": int(len(shown)), "left_out": int(n - len(shown))}}
    wd, missing = _windows_of(ctx, hits)
    if missing:
        sec.blocks.append(Note(missing))
    make = ItemMaker(ctx, hits, wd, hits.name)
    paths = make.paths
    by_query: dict[int, ReviewGroup] = {}
    for i in shown.tolist():
        qi = int(qid[i])
        if qi not in by_query:
            by_query[qi] = _query_group(make, q, qi)
        s, r = int(sid[i]), int(rank[i])
        path = paths[s] if s < len(paths) else f"source {s}"
        facts = [f"rank {r}", f"score {score[i]:.4g}"] + (
            [f"archive label: {label[i]}"] if label[i] else [])
        by_query[qi].items.append(make.make(
            f"hit_{i + 1:05d}", path, start[i], end[i],
            f"#{r} {Path(path).name} {start[i]:.2f}-{end[i]:.2f} s", facts, (1, r, qi)))
    groups = list(by_query.values())
    metrics["review"]["thumbnails"] = make.thumbs
    if not len(shown):
        sec.blocks.append(Note("No hits in this file."))
        return sec, metrics
    more = (f" Showing {len(shown)} of {n} hits: every query's best ranks first "
            "(--review-items)." if len(shown) < n else "")
    sec.blocks.append(Review(
        f"Hits of {len(groups)} quer{'ies' if len(groups) != 1 else 'y'} (search: "
        f"{hits.attr('how')}; score: higher is more similar), each query first, then its "
        "hits, best first."
        + more, store_key(hits), f"{Path(hits.path).stem}-labels.csv", groups))
    return sec, metrics


def _query_group(make: ItemMaker, q: dict, qi: int) -> ReviewGroup:
    """A new group for query ``qi``, its query shown first when it has a time span."""
    title, yes = _group_title(q, qi)
    g = ReviewGroup(title, [], yes)
    if qi >= 0 and np.isfinite(q["start_s"][qi]) and np.isfinite(q["end_s"][qi]):
        path, a, b = str(q["path"][qi]), q["start_s"][qi], q["end_s"][qi]
        g.query = make.make(f"query_{qi + 1:05d}", path, a, b,
                            f"query {qi + 1}: {Path(path).name} {a:.2f}-{b:.2f} s",
                            [f"label {q['label'][qi]}"] if q["label"][qi] else [], (0, qi))
    return g


def events_review(ctx: Ctx, det: Item, ev: dict, order: np.ndarray,
                  keys: list[str]) -> list:
    """Review blocks for the events ``order`` (indices into ``ev``, best first) of a
    detections file, whose clips are already asked for under ``keys``
    (``<det.name>_<key>``): one group marked under the detector's positive label."""
    order = order[: ctx.opts.review_items]
    if not len(order):
        return []
    wd, missing = _windows_of(ctx, det)
    make = ItemMaker(ctx, det, wd, det.name)
    pos = det.attr("positive_label")
    yes = str(pos) if pos and pos != "*" else YES_DEFAULT
    items = []
    for rank, i in enumerate(order.tolist()):
        s = int(ev["source_id"][i])
        path = make.paths[s] if s < len(make.paths) else f"source {s}"
        a, b = float(ev["start_s"][i]), float(ev["end_s"][i])
        facts = [f"score {float(ev['score'][i]):.4g}"] if "score" in ev else []
        items.append(make.make(keys[rank], path, a, b,
                               f"#{rank + 1} {Path(path).name} {a:.2f}-{b:.2f} s", facts,
                               (2, rank, 1)))
    blocks = [Note(missing)] if missing else []
    blocks.append(Review(f"Review the {len(items)} events above: mark each yes, no or unsure "
                         "and download the marks as a labels CSV.", store_key(det),
                         f"{Path(det.path).stem}-labels.csv",
                         [ReviewGroup(f"Events of {det.display}", items, yes)]))
    return blocks
