"""Report section for a clusters file: sizes, dendrogram, density/novelty view, a gallery per
cluster with a play button under each spectrogram, and the most novel sequences to listen to
first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wsd.report.figures import cluster as FC
from wsd.report.analysis import db_range, project_2d, stitch
from wsd.report.context import Ctx
from wsd.report.collect import Item, WindowsData
from wsd.report.page import ClipTable, Figure, Gallery, Note, Section
from wsd.report.figures.plotting import axes_box

_BLOCK = 65536


def sequence_means_file(f, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mean embedding of each sequence ``[start_i, stop_i)`` of an embeddings file, read in
    blocks of rows (memory: one block plus ``(m, D)``) -> ``(m, D)`` float64."""
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
    return sums / np.maximum(stop - start, 1)[:, None]


def _caption(paths, sid, t, lab) -> str:
    name = Path(paths[sid]).name if sid < len(paths) else f"source {sid}"
    return f"{name} {t:.1f} s" + (f" [{lab}]" if lab else "")


def clusters_section(ctx: Ctx, cl: Item) -> tuple[Section, dict]:
    f = cl.f
    sec = Section(f"Clusters: {cl.display}", anchor=f"cl-{cl.name}")
    cluster = np.asarray(f.read("cluster"), np.int64)
    m = len(cluster)
    k = int(cluster.max()) + 1 if m else 0
    seq_start = np.asarray(f.read("seq_start"), np.int64)
    seq_stop = np.asarray(f.read("seq_stop"), np.int64)
    source_id = np.asarray(f.read("source_id"), np.int64)
    start_s = np.asarray(f.read("start_s"), np.float64)
    end_s = np.asarray(f.read("end_s"), np.float64)
    truth = np.asarray(f.read("label")).astype(str) if f.has("label") else None
    novelty = np.asarray(f.read("novelty"), np.float64) if f.has("novelty") else None
    medoids = np.asarray(f.read("medoids"), np.int64) if f.has("medoids") else None
    paths = [str(p) for p in f.sources.get("path", [])]
    rate = (f.spectrogram or {}).get("sample_rate")
    sizes = np.bincount(cluster, minlength=k)
    sil = cl.attr("silhouette")
    metrics: dict = {"kind": "clusters", "n_sequences": m, "n_clusters": k,
                     "sizes": sizes.tolist(),
                     "silhouette": None if sil is None or sil != sil else float(sil)}
    stored = cl.attr("metrics_json")
    if stored:
        metrics["stored"] = json.loads(stored) if isinstance(stored, str) else stored
    if truth is not None and (truth != "").any():
        from wsd.discovery.clustering import label_metrics

        lm = label_metrics(truth, cluster)
        metrics["computed"] = {key: lm[key] for key in ("n_labelled", "n_classes", "ari", "nmi",
                                                         "purity")}
    sec.blocks.append(Figure(ctx.save(FC.cluster_sizes(cluster, truth), f"{cl.name}_sizes"),
                             "Sequences per cluster" + (", split by their known label."
                                                        if truth is not None else ".")))
    if f.has("linkage") and len(f.read("linkage")):
        z = np.asarray(f.read("linkage"), np.float64)
        li = (np.asarray(f.read("linkage_index"), np.int64) if f.has("linkage_index")
              else np.arange(len(z) + 1))
        sec.blocks.append(Figure(ctx.save(FC.dendrogram(z, cluster[li]), f"{cl.name}_dendrogram"),
                                 f"Dendrogram of the {len(li):,} clustered sequences; the "
                                 "dashed line is where the tree was cut."))
    emb = cl.refs.get("embeddings")
    top = np.argsort(-novelty, kind="stable")[: ctx.opts.novel] if novelty is not None else []
    if novelty is not None and emb is not None and emb.f.has("embeddings"):
        sec.blocks.append(_novelty_figure(ctx, cl, emb, seq_start, seq_stop, novelty, top,
                                          [_caption(paths, source_id[i], start_s[i],
                                                    truth[i] if truth is not None else "")
                                           for i in top]))
    elif novelty is not None:
        sec.blocks.append(Note("The embeddings file was not found: no novelty map."))
    wd = ctx.windows(emb.refs.get("windows")) if emb is not None else None
    if wd is not None and len(seq_stop) and seq_stop.max() > wd.n:
        wd = None
    if wd is None:
        sec.blocks.append(Note("The windows file was not found: galleries show no "
                               "spectrograms; medoids are listed below."))
    order = np.arange(min(k, ctx.opts.galleries))
    rng = ctx.rng(3)
    medoid_rows = []
    for c in order.tolist():
        members = np.flatnonzero(cluster == c)
        med = int(medoids[c]) if medoids is not None and c < len(medoids) else int(members[0])
        others = members[members != med]
        pick = np.sort(rng.choice(others, size=min(len(others), ctx.opts.gallery_size - 1),
                                  replace=False)) if len(others) else others
        rows = [med, *pick[np.lexsort((start_s[pick], source_id[pick]))].tolist()]
        keys = []
        for j, r in enumerate(rows):
            key = f"{cl.name}_c{c:03d}_{j:02d}"
            if source_id[r] < len(paths):
                ctx.clips.request(key, paths[source_id[r]], start_s[r], end_s[r],
                                  (0, c) if j == 0 else (2, j, 0, c), near=cl.path, rate=rate)
            keys.append(key)
        if wd is None:
            medoid_rows.append(([c, int(sizes[c]), _caption(paths, source_id[med], start_s[med],
                                                             truth[med] if truth is not None
                                                             else ""),
                                 round(float(end_s[med] - start_s[med]), 3)], keys[0]))
            continue
        sec.blocks.append(_gallery(ctx, cl, wd, c, int(sizes[c]), rows, keys, seq_start,
                                   seq_stop, [_caption(paths, source_id[r], start_s[r],
                                                       truth[r] if truth is not None else "")
                                              for r in rows]))
    if medoid_rows:
        sec.blocks.append(ClipTable("Cluster medoids", ["cluster", "size", "medoid",
                                                        "duration (s)"], medoid_rows))
    if k > len(order):
        sec.blocks.append(Note(f"Galleries of the {len(order)} largest of {k} clusters "
                               "(--galleries)."))
    if len(top):
        rows = []
        for rank, i in enumerate(top.tolist()):
            key = f"{cl.name}_novel_{rank + 1:03d}"
            if source_id[i] < len(paths):
                ctx.clips.request(key, paths[source_id[i]], start_s[i], end_s[i], (1, rank),
                                  near=cl.path, rate=rate)
            rows.append(([rank + 1, int(cluster[i]), _caption(paths, source_id[i], start_s[i], ""),
                          round(float(end_s[i] - start_s[i]), 3), float(novelty[i]),
                          truth[i] if truth is not None else ""], key))
        sec.blocks.append(ClipTable("Most novel sequences: listen to these first",
                                    ["rank", "cluster", "sequence", "duration (s)", "novelty",
                                     "label"], rows))
    return sec, metrics


def _novelty_figure(ctx, cl, emb, seq_start, seq_stop, novelty, top, names) -> Figure:
    m = len(novelty)
    keep = np.arange(m)
    if m > ctx.opts.max_points:
        rest = np.setdiff1d(keep, top)
        pick = ctx.rng(4).choice(rest, size=ctx.opts.max_points - len(top), replace=False)
        keep = np.sort(np.concatenate([pick, top]))
    means = sequence_means_file(emb.f, seq_start[keep], seq_stop[keep])
    xy, info = project_2d(means, ctx.opts.projection, ctx.opts.seed)
    full = np.full((m, 2), np.nan)
    full[keep] = xy
    name = info["method"].upper() if info["method"] != "none" else "raw"
    fig = FC.novelty_view(full[keep], novelty[keep], np.searchsorted(keep, top),
                          (f"{name} 1 of sequence means", f"{name} 2 of sequence means"), names)
    return Figure(ctx.save(fig, f"{cl.name}_novelty"),
                  "Density and novelty: each call sequence (its mean embedding, projected) "
                  "over the density of all sequences, coloured by novelty (mean DTW distance "
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
