"""Figures of encoders and embeddings: the embedding map with zoomed dense regions, the first
convolution layer's kernels, reconstructions, training curves and a GAN's generated windows.

Each function takes arrays and returns a matplotlib Figure (see :mod:`wsd.report.figures.plotting`).
"""

from __future__ import annotations

import math

import numpy as np

from wsd.report.figures import plotting as P

MAX_CATEGORIES = 12  # more categories than this: the largest ones coloured, the rest grey


def _categories(values: np.ndarray, empty: str) -> tuple[list[str], np.ndarray]:
    """Category names (largest first, ``empty`` and overflow last) and ``(n,)`` codes."""
    vals = np.asarray(values).astype(str)
    names, inv, counts = np.unique(vals, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    if all(n.lstrip("-").isdigit() for n in names if n):  # cluster ids: in their own order
        key = np.array([int(n) if n else 0 for n in names])
        order = [i for i in np.argsort(key, kind="stable") if names[i] != ""]
    else:
        order = [i for i in np.lexsort((names, -counts)) if names[i] != ""]
    keep = order[:MAX_CATEGORIES]
    rest = order[MAX_CATEGORIES:]
    out = [str(names[i]) for i in keep]
    code = np.full(len(vals), -1, dtype=np.int64)
    for c, i in enumerate(keep):
        code[inv == i] = c
    if rest:
        out.append(f"{len(rest)} more")
        for i in rest:
            code[inv == i] = len(keep)
    if (vals == "").any():
        out.append(empty)
        code[vals == ""] = len(out) - 1
    return out, code


def _scatter(ax, xy, names, code, size, grey_names=()):
    colours = P.category_colours(sum(n not in grey_names for n in names))
    k = 0
    handles = []
    # grey categories first so coloured points lie on top
    order = sorted(range(len(names)), key=lambda c: names[c] not in grey_names)
    for c in order:
        sel = code == c
        if names[c] in grey_names:
            col = P.OTHER
        else:
            col = colours[min(k, len(colours) - 1)]
            k += 1
        h = ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=col, alpha=0.8, linewidths=0,
                       label=f"{names[c]} ({int(sel.sum())})")
        handles.append((c, h))
    return [h for _, h in sorted(handles)]


def embedding_map(xy: np.ndarray, colourings: list[tuple[str, np.ndarray, str]],
                  boxes: list[tuple[float, float, float, float]], axis_names: tuple[str, str],
                  title: str):
    """Scatter of a 2-D projection ``xy`` ``(n, 2)``, one row per colouring, each row a full
    map plus one zoomed panel per box of ``boxes`` (dense regions, outlined and lettered).

    ``colourings``: ``(name, values (n,), empty_name)``; values are categories (str/int),
    "" meaning none (drawn grey as ``empty_name``).
    """
    from matplotlib.ticker import MaxNLocator

    rows = max(1, len(colourings))
    cols = 1 + len(boxes)
    fig = P.figure(5.2 * cols + 1.8, 4.4 * rows + 0.5)
    size = float(np.clip(3000.0 / max(len(xy), 1), 2.0, 30.0))
    letters = "ABCDEFGH"
    for r, (cname, values, empty) in enumerate(colourings or [("windows", np.full(len(xy), "all"),
                                                               "")]):
        names, code = _categories(values, empty)
        grey = {empty, *(n for n in names if n.endswith(" more"))}
        ax = fig.add_subplot(rows, cols, r * cols + 1)
        handles = _scatter(ax, xy, names, code, size, grey)
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
        ax.set_title(f"{title}: coloured by {cname}", fontsize=10)
        for i, (x0, x1, y0, y1) in enumerate(boxes):
            ax.add_patch(_rect(x0, x1, y0, y1))
            ax.annotate(letters[i], (x1, y1), fontsize=10, fontweight="bold",
                        xytext=(2, 2), textcoords="offset points")
            zx = fig.add_subplot(rows, cols, r * cols + 2 + i)
            inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
            _scatter(zx, xy[inside], names, code[inside], size * 2.5, grey)
            zx.set_xlim(x0, x1)
            zx.set_ylim(y0, y1)
            zx.xaxis.set_major_locator(MaxNLocator(4))
            zx.yaxis.set_major_locator(MaxNLocator(5))
            zx.set_title(f"zoom {letters[i]}: {int(inside.sum())} windows", fontsize=10)
            zx.set_xlabel(axis_names[0])
        fig.legend(handles=handles, loc="upper left", fontsize=8, markerscale=1.5,
                   bbox_to_anchor=(1 - 1.75 / fig.get_figwidth(), 1 - r / rows - 0.01),
                   title=cname, title_fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.07 * 5.2 / fig.get_figwidth() * cols, right=1 - 1.9 /
                        fig.get_figwidth(), top=0.93, bottom=0.1, wspace=0.25, hspace=0.35)
    return fig


def _rect(x0, x1, y0, y1):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="black", linewidth=1.2,
                     linestyle="--")


def filters(weights: np.ndarray, hop_s: float, bin_hz: float, max_kernels: int = 64):
    """First convolution layer's kernels ``(out, in, kh, kw)`` (kh over time frames, kw over
    frequency bins) as one mosaic of tiles on a symmetric colour scale (time to the right,
    frequency up in each tile); kernels over several input channels are averaged."""
    w = np.asarray(weights, dtype=np.float64)
    k = w.mean(axis=1)[:max_kernels]
    n, kh, kw = k.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    mosaic = np.full((rows * (kw + 1) - 1, cols * (kh + 1) - 1), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        y0 = (rows - 1 - r) * (kw + 1)  # first kernel at the top left
        mosaic[y0:y0 + kw, c * (kh + 1):c * (kh + 1) + kh] = k[i].T
    lim = float(np.nanmax(np.abs(mosaic))) or 1.0
    aw = 5.0  # inches of mosaic width; tiles stay square
    ah = aw * mosaic.shape[0] / mosaic.shape[1]
    width, height = aw + 1.9, ah + 1.2
    fig = P.figure(width, height)
    ax = fig.add_axes([0.4 / width, 0.3 / height, aw / width, ah / height])
    im = ax.imshow(mosaic, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   interpolation="nearest", aspect="auto")
    ax.set_facecolor("white")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(f"first convolution layer: {n} of {len(w)} kernels\neach tile {kh} frames "
                 f"x {kw} bins = {kh * hop_s * 1e3:.0f} ms x {kw * bin_hz:.0f} Hz "
                 "(time to the right, frequency up)", fontsize=9, y=1 - 0.1 / height,
                 va="top")
    P.colorbar(fig, im, ax, "weight")
    return fig


def reconstructions(inputs: np.ndarray, outputs: np.ndarray, freqs: np.ndarray, hop_s: float,
                    offset_s: float, max_rows: int = 6):
    """Input windows beside the decoder's output, ``(k, frames, bins)`` dB each, on one colour
    scale; each pair titled with its RMS difference in dB."""
    k = min(len(inputs), max_rows)
    from wsd.report.analysis import db_range

    vmin, vmax = db_range(np.concatenate([inputs[:k].ravel(), outputs[:k].ravel()]))
    fig = P.figure(9.5, 2.3 * k + 0.8)
    im = None
    for r in range(k):
        rmse = float(np.sqrt(np.mean((inputs[r].astype(np.float64) - outputs[r]) ** 2)))
        for c, (arr, name) in enumerate(((inputs[r], "input"), (outputs[r], "reconstruction"))):
            ax = fig.add_subplot(k, 2, 2 * r + c + 1)
            im = P.window_image(ax, arr, hop_s, offset_s, freqs, vmin, vmax,
                                xlabel=r == k - 1, ylabel=c == 0)
            ax.set_title(f"window {r + 1}: {name}" + (f" (RMS error {rmse:.1f} dB)" if c else ""),
                         fontsize=9)
            if c:
                ax.tick_params(labelleft=False)
    fig.subplots_adjust(left=0.09, right=0.86, top=1 - 0.35 / fig.get_figheight(),
                        bottom=0.5 / fig.get_figheight(), hspace=0.45, wspace=0.12)
    cax = fig.add_axes([0.89, 0.2, 0.02, 0.6])
    fig.colorbar(im, cax=cax).set_label("level (dB re full scale)")
    return fig


def training_curves(history: dict, arch: str):
    """Loss per epoch from a model's ``loss_history`` (``loss``, ``val_loss``, GAN parts...);
    throughput (``windows_per_s``) in a second panel when present."""
    skip = {"seconds", "windows_per_s"}
    losses = {k: np.asarray(v, dtype=np.float64) for k, v in history.items()
              if k not in skip and len(v)}
    speed = np.asarray(history.get("windows_per_s", []), dtype=np.float64)
    panels = 2 if speed.size else 1
    fig = P.figure(5.5 * panels, 3.8)
    ax = fig.add_subplot(1, panels, 1)
    for name, v in sorted(losses.items()):
        ok = np.isfinite(v)
        if ok.any():
            ep = np.arange(1, len(v) + 1)
            ax.plot(ep[ok], v[ok], marker="o", markersize=3, label=name.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (on normalised dB)" if arch != "gan" else "loss")
    ax.set_title(f"{arch}: training history", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    n_epochs = max((len(v) for v in losses.values()), default=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, n_epochs + 0.5)
    ax.ticklabel_format(axis="y", useOffset=False)
    if speed.size:
        bx = fig.add_subplot(1, 2, 2)
        bx.plot(np.arange(1, len(speed) + 1), speed, marker="o", markersize=3, color="C2")
        bx.set_xlabel("epoch")
        bx.set_ylabel("training speed (windows/s)")
        bx.set_ylim(bottom=0)
        bx.grid(alpha=0.3)
        bx.xaxis.set_major_locator(MaxNLocator(integer=True))
        bx.set_xlim(0.5, len(speed) + 0.5)
    fig.subplots_adjust(left=0.12 / panels, right=0.97, bottom=0.15, top=0.9, wspace=0.3)
    return fig


def gan_grid(generated: np.ndarray, freqs: np.ndarray, hop_s: float, offset_s: float,
             max_windows: int = 16):
    """A grid of generated windows ``(k, frames, bins)`` dB on one colour scale."""
    from wsd.report.analysis import db_range

    g = np.asarray(generated, dtype=np.float32)[:max_windows]
    n = len(g)
    cols = min(4, n)
    rows = int(math.ceil(n / cols))
    vmin, vmax = db_range(g)
    fig = P.figure(3.0 * cols + 1.4, 2.4 * rows + 0.8)
    im = None
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        im = P.window_image(ax, g[i], hop_s, offset_s, freqs, vmin, vmax,
                            xlabel=i // cols == rows - 1, ylabel=i % cols == 0)
        ax.set_title(f"generated {i + 1}", fontsize=9)
    fig.suptitle(f"GAN generator: {n} windows from seeded noise", fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.87, top=1 - 0.6 / fig.get_figheight(),
                        bottom=0.5 / fig.get_figheight(), hspace=0.5, wspace=0.2)
    cax = fig.add_axes([0.9, 0.2, 0.015, 0.6])
    fig.colorbar(im, cax=cax).set_label("level (dB re full scale)")
    return fig
