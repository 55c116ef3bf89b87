"""Report section for a clusters file: sizes, dendrogram, density/novelty view, a gallery per
cluster with a play button under each spectrogram, and the most novel sequences to listen to
first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsd.report.figures import cluster as FC
from wsd.report.analysis import db_range, stitch
from wsd.report.context import Ctx
from wsd.report.collect import Item, WindowsData
from wsd.report.page import ClipTable, Figure, Gallery, Note, Section
from wsd.report.figures.plotting import axes_box

_BLOCK = 65536


def sequence_means_file(f, start: np.ndarray, stop: np.ndarray,
                        tick=lambda status: None) -> np.ndarray:
    """Mean embedding of each sequence ``[start_i, stop_i)`` of an embeddings file, read in
    blocks of rows (memory: one block plus ``(m, D)``) -> ``(m, D)`` float64;
    ``tick(status)`` after each block."""
    n, dim = f.shape("embeddings")
    owner = np.full(n, -1, dtype=np.int64)
    for i, (a, b) in enumerate(zip(start.tolist(), stop.tolist())):
        owner[a:b] = i
    sums = np.zeros((len(start), dim))
    for a in range(0, n, _BLOCK):
        o = owner[a:a + _BLOCK]
        ok = o >= 0
        if ok.any():
            x = np.asarray(f.read("embeddings", slice(a, min(n, a + _BLOCK))), np.float64)
            np.add.at(sums, o[ok], x[ok])
        tick(f"sequence means: {min(n, a + _BLOCK):,} of {n:,} rows")
    return sums / np.maximum(stop - start, 1)[:, None]


@dataclass
class Sequences:
    """The per-sequence columns of a clusters file (each ``(m,)``) and its recordings."""

    cluster: np.ndarray
    seq_start: np.ndarray
    seq_stop: np.ndarray
    source_id: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    truth: np.ndarray | None  # known labels ("" = none); None when no sequence has one
    paths: list

    @classmethod
    def read(cls, f) -> "Sequences":
        truth = np.asarray(f.read("label")).astype(str) if f.has("label") else None
        if truth is not None and not (truth != "").any():
            truth = None  # a label column with no label in it
        return cls(*(np.asarray(f.read(k), t) for k, t in (
            ("cluster", np.int64), ("seq_start", np.int64), ("seq_stop", np.int64),
            ("source_id", np.int64), ("start_s", np.float64), ("end_s", np.float64))),
            truth, [str(p) for p in f.sources.get("path", [])])

    def caption(self, i: int, label: bool = True) -> str:
        """"file.wav 12.3 s [label]" of sequence ``i``."""
        sid = int(self.source_id[i])
        name = Path(self.paths[sid]).name if sid < len(self.paths) else f"source {sid}"
        lab = self.truth[i] if label and self.truth is not None else ""
        return f"{name} {self.start_s[i]:.1f} s" + (f" [{lab}]" if lab else "")

    def request(self, ctx: Ctx, cl: Item, i: int, key: str, priority: tuple) -> None:
        """Ask for the clip ``key`` of sequence ``i``."""
        sid = int(self.source_id[i])
        if sid < len(self.paths):
            ctx.clips.request(key, self.paths[sid], self.start_s[i], self.end_s[i], priority,
                              near=cl.path, **ctx.band(cl))

    def duration(self, i: int) -> float:
        return round(float(self.end_s[i] - self.start_s[i]), 3)


def clusters_section(ctx: Ctx, cl: Item) -> tuple[Section, dict]:
    f = cl.f
    sec = Section(f"Clusters: {cl.display}", anchor=f"cl-{cl.name}")
    sq = Sequences.read(f)
    m = len(sq.cluster)
    k = int(sq.cluster.max()) + 1 if m else 0
    novelty = np.asarray(f.read("novelty"), np.float64) if f.has("novelty") else None
    what = FC.distance_name(f.params.get("distance"), f.params.get("rerank"))
    sizes = np.bincount(sq.cluster, minlength=k)
    sil = cl.attr("silhouette")
    metrics: dict = {"kind": "clusters", "n_sequences": m, "n_clusters": k,
                     "sizes": sizes.tolist(),
                     "silhouette": None if sil is None or sil != sil else float(sil)}
    stored = cl.attr("metrics_json")
    if stored:
        metrics["stored"] = json.loads(stored) if isinstance(stored, str) else stored
    if sq.truth is not None:
        from wsd.metrics.clustering import label_metrics

        lm = label_metrics(sq.truth, sq.cluster)
        metrics["computed"] = {key: lm[key] for key in ("n_labelled", "n_classes", "ari", "nmi",
                                                         "purity")}
    sec.blocks.append(Figure(ctx.save(FC.cluster_sizes(sq.cluster, sq.truth),
                                      f"{cl.name}_sizes"),
                             "Sequences per cluster" + (", split by their known label."
                                                        if sq.truth is not None else ".")))
    if f.has("linkage") and len(f.read("linkage")):
        z = np.asarray(f.read("linkage"), np.float64)
        li = (np.asarray(f.read("linkage_index"), np.int64) if f.has("linkage_index")
              else np.arange(len(z) + 1))
        sec.blocks.append(Figure(ctx.save(FC.dendrogram(z, sq.cluster[li], what=what),
                                          f"{cl.name}_dendrogram"),
                                 f"Dendrogram of the {len(li):,} clustered sequences; the "
                                 "dashed line is where the tree was cut."))
    emb = cl.refs.get("embeddings")
    top = np.argsort(-novelty, kind="stable")[: ctx.opts.novel] if novelty is not None else []
    if novelty is not None and emb is not None and emb.f.has("embeddings"):
        sec.blocks.append(_novelty_figure(ctx, cl, emb, sq.seq_start, sq.seq_stop, novelty, top,
                                          [sq.caption(i) for i in top], what))
    elif novelty is not None:
        sec.blocks.append(Note("The embeddings file was not found: no novelty map."))
    sec.blocks += _galleries(ctx, cl, sq, sizes, emb)
    if len(top):
        sec.blocks.append(_novel_table(ctx, cl, sq, novelty, top))
    return sec, metrics


def _galleries(ctx: Ctx, cl: Item, sq: Sequences, sizes: np.ndarray, emb: Item | None) -> list:
    """A gallery per cluster (the largest ``--galleries``), its medoid first, with clips;
    a table of the medoids instead when the windows file is missing."""
    blocks = []
    wd = ctx.windows(emb.refs.get("windows")) if emb is not None else None
    if wd is not None and len(sq.seq_stop) and sq.seq_stop.max() > wd.n:
        wd = None
    if wd is None:
        blocks.append(Note("The windows file was not found: galleries show no spectrograms; "
                           "medoids are listed below."))
    medoids = np.asarray(cl.f.read("medoids"), np.int64) if cl.f.has("medoids") else None
    order = np.arange(min(len(sizes), ctx.opts.galleries))
    rng = ctx.rng(3)
    medoid_rows = []
    for c in order.tolist():
        members = np.flatnonzero(sq.cluster == c)
        med = int(medoids[c]) if medoids is not None and c < len(medoids) else int(members[0])
        others = members[members != med]
        pick = np.sort(rng.choice(others, size=min(len(others), ctx.opts.gallery_size - 1),
                                  replace=False)) if len(others) else others
        rows = [med, *pick[np.lexsort((sq.start_s[pick], sq.source_id[pick]))].tolist()]
        keys = [f"{cl.name}_c{c:03d}_{j:02d}" for j in range(len(rows))]
        for j, (r, key) in enumerate(zip(rows, keys)):
            sq.request(ctx, cl, r, key, (0, c) if j == 0 else (2, j, 0, c))
        if wd is None:
            medoid_rows.append(([c, int(sizes[c]), sq.caption(med), sq.duration(med)], keys[0]))
            continue
        blocks.append(_gallery(ctx, cl, wd, c, int(sizes[c]), rows, keys, sq.seq_start,
                               sq.seq_stop, [sq.caption(r) for r in rows]))
    if medoid_rows:
        blocks.append(ClipTable("Cluster medoids", ["cluster", "size", "medoid",
                                                    "duration (s)"], medoid_rows))
    if len(sizes) > len(order):
        blocks.append(Note(f"Galleries of the {len(order)} largest of {len(sizes)} clusters "
                           "(--galleries)."))
    return blocks


def _novel_table(ctx: Ctx, cl: Item, sq: Sequences, novelty: np.ndarray,
                 top: np.ndarray) -> ClipTable:
    """The most novel sequences with clips (a label column only when there are labels)."""
    rows = []
    for rank, i in enumerate(top.tolist()):
        key = f"{cl.name}_novel_{rank + 1:03d}"
        sq.request(ctx, cl, i, key, (1, rank))
        cells = [rank + 1, int(sq.cluster[i]), sq.caption(i, label=False), sq.duration(i),
                 float(novelty[i])]
        rows.append((cells + ([sq.truth[i]] if sq.truth is not None else []), key))
    return ClipTable("Most novel sequences: listen to these first",
                     ["rank", "cluster", "sequence", "duration (s)", "novelty"]
                     + (["label"] if sq.truth is not None else []), rows)


def _novelty_figure(ctx, cl, emb, seq_start, seq_stop, novelty, top, names,
                    what: str = "DTW distance") -> Figure:
    m = len(novelty)
    keep = np.arange(m)
    if m > ctx.opts.max_points:
        rest = np.setdiff1d(keep, top)
        pick = ctx.rng(4).choice(rest, size=ctx.opts.max_points - len(top), replace=False)
        keep = np.sort(np.concatenate([pick, top]))
    means = sequence_means_file(emb.f, seq_start[keep], seq_stop[keep],
                                lambda status: ctx.advance(0, status=status))
    xy, info = ctx.project(means)
    full = np.full((m, 2), np.nan)
    full[keep] = xy
    name = info["method"].upper() if info["method"] != "none" else "raw"
    fig = FC.novelty_view(full[keep], novelty[keep], np.searchsorted(keep, top),
                          (f"{name} 1 of sequence means", f"{name} 2 of sequence means"), names,
                          what)
    return Figure(ctx.save(fig, f"{cl.name}_novelty"),
                  "Density and novelty: each call sequence (its mean embedding, projected) "
                  f"over the density of all sequences, coloured by novelty (mean {what} "
                  "to its nearest neighbours); ringed numbers are the most novel, listed "
                  "below with play buttons.")


def _gallery(ctx: Ctx, cl: Item, wd: WindowsData, c: int, size: int, rows: list, keys: list,
             seq_start, seq_stop, captions) -> Gallery:
    panels, longest = [], 0.0
    for j, r in enumerate(rows):
        a, b = int(seq_start[r]), int(seq_stop[r])
        t0 = float(wd.start_s[a])
        t1 = min(float(wd.end_s[b - 1]), t0 + ctx.opts.clip_seconds)
        idx = np.arange(a, b)
        idx = idx[wd.start_s[idx] < t1]
        img = stitch(wd.rows(idx), wd.start_s[idx], wd.hop_s, t0, t1)
        longest = max(longest, t1 - t0)
        panels.append((img, ("medoid: " if j == 0 else f"#{j + 1}: ") + captions[j]))
    vmin, vmax = db_range(np.concatenate([p[0].ravel() for p in panels]))
    fig, axes = FC.gallery(panels, wd.hop_s, wd.offset_s, wd.freqs, vmin, vmax,
                           f"cluster {c} ({size} sequence{'s' if size != 1 else ''})", longest)
    entries = []
    for ax, key, cap in zip(axes, keys, captions):
        box = axes_box(fig, ax)
        entries.append(((box["left"] + box["right"]) / 2, key, cap))
    src = ctx.save(fig, f"{cl.name}_cluster_{c:03d}")
    rest = (f", then {len(rows) - 1} member(s) chosen at random" if len(rows) > 1 else
            " (its only member)")
    return Gallery(src, f"Cluster {c} ({size} sequence{'s' if size != 1 else ''}): its medoid "
                        f"(red title){rest}; play each with the button under it.", entries)
