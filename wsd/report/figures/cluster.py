"""Figures of a clustering: cluster sizes (split by known label), the dendrogram of the
linkage, the density/novelty view of the LSTM V4 seed's discovery experiments, and a gallery
per cluster (its medoid first, then members' spectrograms).

Each function takes arrays and returns a matplotlib Figure (the gallery also its axes, so the
page can put a play button under each panel).
"""

from __future__ import annotations

import numpy as np

from wsd.report.figures import plotting as P


def cluster_sizes(clusters: np.ndarray, truth: np.ndarray | None = None, max_bars: int = 40):
    """Sequences per cluster (0 = largest), bars stacked by known label when ``truth`` (m,)
    str ("" = unlabelled) is given."""
    c = np.asarray(clusters, dtype=np.int64)
    k = int(c.max()) + 1 if c.size else 0
    shown = min(k, max_bars)
    fig = P.figure(max(6.0, 0.28 * shown + 3.5), 4.0)
    ax = fig.add_subplot()
    x = np.arange(shown)
    if truth is None or not (np.asarray(truth).astype(str) != "").any():
        counts = np.bincount(c, minlength=k)[:shown]
        ax.bar(x, counts, color="C0")
    else:
        t = np.asarray(truth).astype(str)
        names = sorted(set(t) - {""}) + ([""] if (t == "").any() else [])
        cols = P.category_colours(len(names) - ("" in names)) + [P.OTHER]
        bottom = np.zeros(shown)
        for i, name in enumerate(names):
            counts = np.bincount(c[t == name], minlength=k)[:shown]
            ax.bar(x, counts, bottom=bottom, color=cols[i] if name else P.OTHER,
                   label=name or "unlabelled")
            bottom += counts
        ax.legend(fontsize=8, title="label", title_fontsize=8, loc="upper right")
    ax.set_xticks(x, [str(i) for i in x], fontsize=7 if shown > 20 else 9)
    ax.set_xlabel("cluster (0 = largest)")
    ax.set_ylabel("sequences")
    more = f" (first {shown} of {k} shown)" if k > shown else ""
    ax.set_title(f"{k} clusters of {len(c)} sequences{more}", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.14, top=0.9)
    return fig


#: What the heights and novelty of a clusters file measure, by its ``distance`` param.
DISTANCE_NAMES = {"dtw": "DTW distance", "cosine": "chord distance of pooled embeddings",
                  "fused": "fused distance (pooled + frame DTW)"}


RERANK_NAMES = {"mp": "mutual proximity of the ", "mp+qe": "mutual proximity (expanded) of the "}


def distance_name(distance: str | None, rerank: str | None = None) -> str:
    """The axis name of a clusters file's distances (``distance``, ``rerank``: its params;
    files written before ``--rerank`` have none)."""
    name = DISTANCE_NAMES.get(distance or "dtw", "distance")
    prefix = RERANK_NAMES.get(rerank or "none")
    return prefix + name if prefix else name


def dendrogram(linkage: np.ndarray, leaf_clusters: np.ndarray, max_leaves: int = 60,
               what: str = "DTW distance"):
    """The linkage tree (heights: ``what``) cut where it gives the stored clusters.

    ``leaf_clusters`` ``(N,)``: cluster of each clustered sequence (the linkage's leaves, in
    order). Up to ``max_leaves`` leaves are drawn, labelled with their cluster; larger trees
    show their top ``max_leaves`` branches with member counts.
    """
    from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

    z = np.asarray(linkage, dtype=np.float64)
    leaves = np.asarray(leaf_clusters, dtype=np.int64)
    n = len(z) + 1
    k = len(np.unique(leaves))
    heights = np.sort(z[:, 2])
    cut = None
    if 1 < k < n:
        lo, hi = heights[n - k - 1], heights[n - k]
        cut = (lo + hi) / 2 if hi > lo else hi
    fig = P.figure(12, 4.6)
    ax = fig.add_subplot()
    kw = {"color_threshold": cut if cut is not None else 0, "above_threshold_color": "#555555"}
    if n <= max_leaves:
        scipy_dendrogram(z, ax=ax, labels=[str(v) for v in leaves], leaf_font_size=8, **kw)
        ax.set_xlabel("sequences, labelled by cluster")
    else:
        scipy_dendrogram(z, ax=ax, truncate_mode="lastp", p=max_leaves, show_contracted=True,
                         leaf_font_size=7, **kw)
        ax.set_xlabel(f"top {max_leaves} branches of {n} sequences (in brackets: how many)")
    if cut is not None:
        ax.axhline(cut, color="black", linestyle="--", linewidth=0.8)
        ax.text(1.0, cut, f" cut: {k} clusters", transform=ax.get_yaxis_transform(),
                fontsize=8, va="bottom", ha="right")
    ax.set_ylabel(f"merge height ({what})")
    ax.set_title("agglomerative clustering of call sequences", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.9)
    return fig


def _density(xy: np.ndarray, grid: int = 90):
    """Gaussian KDE of points ``xy`` ``(m, 2)`` on a grid: ``(X, Y, Z)`` or None."""
    from scipy.stats import gaussian_kde

    ok = np.all(np.isfinite(xy), axis=1)
    pts = xy[ok]
    if len(pts) < 5:
        return None
    try:
        kde = gaussian_kde(pts.T)
    except (np.linalg.LinAlgError, ValueError):
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid))
    z = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    return gx, gy, z


def novelty_view(xy: np.ndarray, novelty: np.ndarray, top: np.ndarray,
                 axis_names: tuple[str, str], names: list[str], what: str = "DTW distance"):
    """Discovery view of the LSTM V4 seed: sequences ``xy`` ``(m, 2)`` on a 2-D map over the
    density of all of them (grey contours, Gaussian KDE), coloured by ``novelty`` ``(m,)``
    (mean ``what`` to their nearest neighbours), the most novel (``top``: indices, most
    novel first; ``names``: their captions) ringed and numbered; and novelty against rank."""
    nov = np.asarray(novelty, dtype=np.float64)
    top = np.asarray(top, dtype=np.int64)
    fig = P.figure(13, 5.2)
    ax = fig.add_subplot(1, 2, 1)
    dens = _density(xy)
    if dens is not None:
        ax.contourf(*dens, levels=8, cmap="Greys", alpha=0.55)
    fin = nov[np.isfinite(nov)]
    lo, hi = (np.percentile(fin, [2, 98]) if fin.size else (0.0, 1.0))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=nov, cmap="plasma", s=22, edgecolors="black",
                    linewidths=0.3, zorder=2, vmin=lo, vmax=max(hi, lo + 1e-9))
    P.colorbar(fig, sc, ax, f"novelty ({what}; top 2% clipped)")
    for r, i in enumerate(top.tolist()):
        ax.scatter([xy[i, 0]], [xy[i, 1]], s=130, facecolors="none", edgecolors="red",
                   linewidths=1.3, zorder=3)
        ax.annotate(str(r + 1), xy[i], xytext=(5, 4), textcoords="offset points",
                    fontsize=8, color="red", fontweight="bold", zorder=4)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title("call sequences over their density (grey), coloured by novelty", fontsize=10)
    bx = fig.add_subplot(1, 2, 2)
    order = np.argsort(-nov, kind="stable")
    ranks = np.arange(1, len(nov) + 1)
    bx.plot(ranks, nov[order], color="C0", linewidth=1.2, marker="." if len(nov) < 80 else None)
    bx.scatter(np.arange(1, len(top) + 1), nov[top], color="red", s=20, zorder=3,
               label="most novel (numbered on the map)")
    if len(top):
        bx.text(0.98, 0.97, "\n".join(f"{r + 1}: {names[r]}" for r in range(min(10, len(top)))),
                transform=bx.transAxes, ha="right", va="top", multialignment="left", fontsize=7.5,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#cccccc"})
    if len(nov) > 50:
        bx.set_xscale("log")
    bx.set_xlabel("rank (1 = most novel)")
    bx.set_ylabel(f"novelty (mean {what} to nearest neighbours)")
    bx.set_title(f"novelty of {len(nov)} sequences, ranked", fontsize=10)
    bx.grid(alpha=0.3)
    bx.legend(fontsize=8, loc="lower left")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.11, top=0.92, wspace=0.32)
    return fig


def gallery(panels: list[tuple[np.ndarray, str]], hop_s: float, offset_s: float,
            freqs: np.ndarray, vmin: float, vmax: float, title: str, max_s: float):
    """One cluster's gallery: a row of spectrograms ``(cols, bins)`` dB each starting at 0 s
    (the medoid first), on one time scale of ``max_s`` seconds and one colour scale. Each
    panel's caption is wrapped to two lines of its width and shortened with an ellipsis
    beyond, so captions never overlap their neighbours.

    Returns ``(fig, axes)``."""
    n = len(panels)
    width = max(min(2.3 * n + 1.4, 22.0), 5.0)
    fig = P.figure(width, 3.0)
    axes = []
    im = None
    for i, (img, _) in enumerate(panels):
        ax = fig.add_subplot(1, n, i + 1, sharey=axes[0] if axes else None)
        im = P.spectrogram(ax, img, 0.0, hop_s, offset_s, freqs, vmin, vmax, xlabel=True,
                           ylabel=i == 0)
        ax.set_xlim(0, max_s)
        ax.tick_params(labelsize=7)
        if i:
            ax.tick_params(labelleft=False)
        axes.append(ax)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    right = min(1 - 0.9 / width, (0.6 + 2.3 * n - 0.2) / width)
    fig.subplots_adjust(left=0.6 / width, right=right, bottom=0.17, top=0.76, wspace=0.08)
    for i, (ax, (_, caption)) in enumerate(zip(axes, panels)):
        P.fitted_title(ax, caption, 7.5, color="black" if i else "#8b0000")
    P.colorbar(fig, im, axes[-1]).ax.tick_params(labelsize=7)
    return fig, axes
