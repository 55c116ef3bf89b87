"""Report sections for embeddings and models: the embedding map coloured by cluster, label or
detector decision, reconstructions, generated windows, training curves and filters."""

from __future__ import annotations

import numpy as np

from wsd.report.figures import embed as FE
from wsd.report.analysis import dense_regions, knn_accuracy
from wsd.report.context import Ctx, spectrogram_axes
from wsd.report.collect import Item
from wsd.report.page import Figure, Note, Section


def _sample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= k else np.sort(rng.choice(n, size=k, replace=False))


def window_clusters(cl: Item, n: int) -> np.ndarray:
    """``(n,)`` str cluster of every window of a clusters file's embeddings ("" outside any
    sequence)."""
    out = np.full(n, "", dtype=object)
    start = np.asarray(cl.f.read("seq_start"), np.int64)
    stop = np.asarray(cl.f.read("seq_stop"), np.int64)
    for a, b, c in zip(start, stop, np.asarray(cl.f.read("cluster"), np.int64)):
        out[a:b] = str(c)
    return out.astype(str)


def _same_rows(a: Item, b: Item) -> bool:
    """Whether two per-window files have the same rows (same sources and times)."""
    if a.f.n != b.f.n:
        return False
    return bool(np.array_equal(a.f.read("source_id"), b.f.read("source_id"))
                and np.allclose(a.f.read("start_s"), b.f.read("start_s")))


def _informative(colourings: list) -> tuple[list, list]:
    """The colourings that tell windows apart (two categories or more), and a note for each
    of the others (every window shown in one category: one colour, nothing to see)."""
    keep, notes = [], []
    for cname, values, empty in colourings:
        kinds = np.unique(np.asarray(values).astype(str))
        if len(kinds) > 1:
            keep.append((cname, values, empty))
        else:
            notes.append(Note(f"The map is not coloured by {cname}: every window shown is "
                              f"{str(kinds[0]) if len(kinds) and kinds[0] else empty!r}."))
    return keep, notes


def embeddings_section(ctx: Ctx, emb: Item) -> tuple[Section, dict]:
    """Map, reconstructions and generated windows of one embeddings file."""
    f = emb.f
    n, dim = f.shape("embeddings")
    sec = Section(f"Embeddings: {emb.display}", anchor=f"emb-{emb.name}")
    metrics: dict = {"kind": "embeddings", "n_windows": int(n), "dim": int(dim)}
    idx = _sample(n, ctx.opts.max_points, ctx.rng(1))
    x = np.asarray(f.read("embeddings", slice(None) if len(idx) == n else idx), np.float64)
    colourings = []
    for cl in ctx.col.of_kind("clusters"):
        if cl.refs.get("embeddings") is emb:
            colourings.append((f"cluster ({cl.display})", window_clusters(cl, n)[idx],
                               "not in a sequence"))
    whole = slice(None) if len(idx) == n else idx
    labels = (np.asarray(f.read("label", whole), dtype=object).astype(str) if f.has("label")
              else None)
    if labels is not None and (labels != "").any():
        colourings.append(("label", labels, "unlabelled"))
    for det in ctx.col.of_kind("detections"):
        # one decision a window: only embeddings with one row a window can show it (step
        # rows of the same windows are more rows than the detections have)
        same = det.f.n == n and ((det.refs.get("windows") is not None
                                  and det.refs.get("windows") is emb.refs.get("windows"))
                                 or _same_rows(det, emb))
        if same:
            silence = str(det.attr("detector", ""))
            pos = np.asarray(det.f.read("positive"), bool)[idx]
            on, off = (("active", "silent") if silence == "silence"
                       else ("detected", "not detected"))
            colourings.append((f"{silence or 'detector'} decision ({det.display})",
                               np.where(pos, on, ""), off))
    colourings, dropped = _informative(colourings)
    xy, info = ctx.project(x)
    if info["method"] == "pca":
        ev = info["explained_variance_ratio"]
        axis_names = (f"PC 1 ({ev[0]:.0%} of variance)", f"PC 2 ({ev[1]:.0%} of variance)")
    else:
        axis_names = (f"{info['method']} 1", f"{info['method']} 2")
    ctx.maps[emb.name] = {"index": idx, "xy": xy, "axis_names": axis_names, "info": info}
    boxes = dense_regions(xy, k=2)
    fig = FE.embedding_map(xy, colourings, boxes, axis_names, emb.display)
    shown = f"{len(idx):,} of {n:,} windows (seeded sample)" if len(idx) < n else f"{n:,} windows"
    sec.blocks.append(Figure(ctx.save(fig, f"{emb.name}_map"),
                             f"Embedding map ({info['method'].upper()}) of {shown}, {dim}-d "
                             f"vectors; dashed boxes are the densest regions, enlarged on the "
                             f"right."))
    sec.blocks += dropped
    metrics["projection"] = info
    if labels is not None and (labels != "").any():
        metrics["knn5_label_accuracy"] = knn_accuracy(x, labels, k=5)
    axes = spectrogram_axes(emb)
    if f.has("recon_input") and f.has("recon_output") and axes is not None:
        inp = np.asarray(f.read("recon_input"), np.float32)
        out = np.asarray(f.read("recon_output"), np.float32)
        fig = FE.reconstructions(inp, out, *axes)
        rmse = np.sqrt(np.mean((inp.astype(np.float64) - out) ** 2, axis=(1, 2)))
        metrics["reconstruction_rmse_db"] = {"mean": float(rmse.mean()), "n": int(len(rmse))}
        sec.blocks.append(Figure(ctx.save(fig, f"{emb.name}_reconstructions"),
                                 "Reconstructions: stored input windows (left) and the "
                                 "decoder's output (right), same colour scale."))
    if f.has("generated") and axes is not None:
        g = np.asarray(f.read("generated"), np.float32)
        sec.blocks.append(Figure(ctx.save(FE.gan_grid(g, *axes), f"{emb.name}_gan"),
                                 "Windows generated by the GAN's generator (stored by "
                                 "wsd embed --reconstruct)."))
    return sec, metrics


def _network(ctx: Ctx, model: Item):
    """The model's network (for its filters and generator), or None with a warning."""
    from wsd.models.inference import load_trained
    from wsd.errors import WsdError

    try:
        return load_trained(model.path)[0]
    except (WsdError, RuntimeError, KeyError, TypeError, ValueError) as e:
        ctx.warn(f"cannot rebuild the network ({e}); no filters or generated windows",
                 str(model.path))
        return None


def model_section(ctx: Ctx, model: Item) -> tuple[Section, dict]:
    """Training curves, first-layer filters and (GAN) generated windows of a model file
    (generated here unless an embeddings file of the report stores them)."""
    generated_elsewhere = any(e.refs.get("model") is model and e.f.has("generated")
                              for e in ctx.col.of_kind("embeddings"))
    from wsd.io.store.models import load_model

    sec = Section(f"Model: {model.display}", anchor=f"model-{model.name}")
    info = load_model(model.path)
    hist = info["loss_history"]
    metrics: dict = {"kind": "model", "arch": info["arch"],
                     "epochs": len(hist.get("loss", []))}
    for k in ("loss", "val_loss"):
        v = [x for x in hist.get(k, []) if x == x]
        if v:
            metrics[f"final_{k}"] = float(v[-1])
            metrics[f"best_{k}"] = float(min(v))
    if any(len(v) for v in hist.values()):
        sec.blocks.append(Figure(ctx.save(FE.training_curves(hist, info["arch"]),
                                          f"{model.name}_training"),
                                 "Training history: loss per epoch on the training windows "
                                 "and, when a validation split was held out, on it."))
    net = _network(ctx, model)
    axes = spectrogram_axes(model)
    if net is not None and axes is not None:
        _model_figures(ctx, sec, model, net, info, axes, generated_elsewhere)
    if not sec.blocks:
        sec.blocks.append(Note("This model has no training history or convolution layer to "
                               "show."))
    return sec, metrics


def _model_figures(ctx: Ctx, sec: Section, model: Item, net, info: dict, axes,
                   generated_elsewhere: bool) -> None:
    """Filters of the first convolution layer and, for a GAN, generated windows."""
    w = net.first_conv_weights()
    freqs, hop_s, _ = axes
    if w is not None:
        bin_hz = float(np.median(np.diff(freqs))) if len(freqs) > 1 else 0.0
        sec.blocks.append(Figure(ctx.save(FE.filters(w, hop_s, bin_hz), f"{model.name}_filters"),
                                 "Kernels of the first convolution layer (red positive, blue "
                                 "negative weights), time to the right, frequency up."))
    gen = getattr(net, "generate", None)
    if gen is None or generated_elsewhere:
        return
    import torch

    with torch.inference_mode():
        g = gen(16, ctx.opts.seed)
    if g is not None:
        norm = info["norm"]
        g = g.float().cpu().numpy() * float(norm["std"]) + float(norm["mean"])
        sec.blocks.append(Figure(ctx.save(FE.gan_grid(g, *axes), f"{model.name}_gan"),
                                 f"Windows generated by the GAN's generator (seed "
                                 f"{ctx.opts.seed})."))
