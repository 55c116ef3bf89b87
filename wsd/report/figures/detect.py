"""Figures of a detector: ROC and precision-recall curves, the confusion matrix (counts and
rates), score distributions, and a recording's timeline (spectrogram, per-window score
coloured by decision, events and labels).

Each function takes arrays and returns a matplotlib Figure (the timeline also its axes, so
the page can place a play cursor over them).
"""

from __future__ import annotations

import numpy as np

from wsd.report.figures import plotting as P

POSITIVE = "#2ca02c"  # detected (the Audio-Classification seed's green square)
NEGATIVE = "#d62728"  # not detected (its red square)


def roc_pr(levels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], positive: str):
    """ROC and precision-recall curves, one line per level (e.g. "window", "recording").

    ``levels``: name -> ``(y (n,) bool truth, score (n,) float, decision (n,) bool)``; the
    detector's operating point (its decisions) is marked on each curve. Levels whose truth
    has a single class are listed in the title instead.
    """
    from sklearn.metrics import (average_precision_score, precision_recall_curve, roc_auc_score,
                                 roc_curve)

    fig = P.figure(11, 4.6)
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    skipped = []
    for i, (name, (y, s, d)) in enumerate(levels.items()):
        y, s, d = np.asarray(y, bool), np.asarray(s, np.float64), np.asarray(d, bool)
        if y.all() or not y.any():
            skipped.append(name)
            continue
        col = f"C{i}"
        fpr, tpr, _ = roc_curve(y, s)
        auc = roc_auc_score(y, s)
        ax.plot(fpr, tpr, color=col, label=f"per {name}: AUC {auc:.3f} (n={len(y)})")
        ax.plot([(d & ~y).sum() / (~y).sum()], [(d & y).sum() / y.sum()], "o", color=col,
                markersize=7, markeredgecolor="black")
        prec, rec, _ = precision_recall_curve(y, s)
        ap = average_precision_score(y, s)
        bx.step(rec, prec, where="post", color=col, label=f"per {name}: AP {ap:.3f}")
        if d.any():
            bx.plot([(d & y).sum() / y.sum()], [(d & y).sum() / d.sum()], "o", color=col,
                    markersize=7, markeredgecolor="black")
        bx.axhline(y.mean(), color=col, linestyle=":", linewidth=1,
                   label=f"chance per {name} ({y.mean():.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_title(f"ROC: '{positive}' against the rest (dot: decisions)", fontsize=10)
    bx.set_xlabel("recall")
    bx.set_ylabel("precision")
    bx.set_title("precision-recall (dot: decisions)", fontsize=10)
    for a in (ax, bx):
        a.set_xlim(-0.02, 1.02)
        a.set_ylim(-0.02, 1.02)
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8, loc="lower right" if a is ax else "lower left")
    if skipped:
        fig.suptitle("single class, no curve: per " + ", per ".join(skipped), fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.88, wspace=0.25)
    return fig


def confusion(matrices: dict[str, np.ndarray], positive: str, negative: str):
    """Confusion matrices ``[[tn, fp], [fn, tp]]`` per level: counts, and rates per true class.
    """
    rows = len(matrices)
    fig = P.figure(7.5, 3.0 * rows + 0.3)
    names = [negative, positive]
    for r, (level, cm) in enumerate(matrices.items()):
        cm = np.asarray(cm, dtype=np.int64)
        tot = cm.sum(axis=1, keepdims=True)
        rates = np.divide(cm, tot, out=np.zeros(cm.shape), where=tot > 0)
        for c, (arr, what) in enumerate(((cm, "counts"), (rates, "rate per true class"))):
            ax = fig.add_subplot(rows, 2, 2 * r + c + 1)
            ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
            for i in range(2):
                for j in range(2):
                    txt = (f"{arr[i, j]:,}" if c == 0 else
                           f"{arr[i, j]:.1%}" if tot[i, 0] else "n/a")
                    ax.text(j, i, txt, ha="center", va="center", fontsize=11,
                            color="white" if rates[i, j] > 0.6 else "black")
            ax.set_xticks([0, 1], [f"not {positive}" if negative == "rest" else negative,
                                   positive])
            ax.set_yticks([0, 1], names if negative != "rest" else [f"not {positive}", positive])
            ax.set_xlabel("decision")
            ax.set_ylabel("truth")
            ax.set_title(f"per {level}: {what}", fontsize=10)
    h = fig.get_figheight()
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.6 / h, top=1 - 0.35 / h, wspace=0.45,
                        hspace=0.45)
    return fig


def score_histogram(score: np.ndarray, y: np.ndarray | None, threshold: float | None,
                    positive: str, score_name: str):
    """Distribution of the per-window score, split by truth when ``y`` ``(n,)`` bool is
    given (it should hold both classes)."""
    s = np.asarray(score, dtype=np.float64)
    fig = P.figure(6.5, 3.6)
    ax = fig.add_subplot()
    bins = np.histogram_bin_edges(s[np.isfinite(s)], bins=40)
    if y is None:
        ax.hist(s, bins=bins, color="C0", alpha=0.8, label="all windows")
    else:
        y = np.asarray(y, bool)
        ax.hist(s[~y], bins=bins, color=NEGATIVE, alpha=0.6, label=f"not {positive} ({(~y).sum()})")
        ax.hist(s[y], bins=bins, color=POSITIVE, alpha=0.6, label=f"{positive} ({y.sum()})")
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel(score_name)
    ax.set_ylabel("windows")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("per-window score" + (" by true class" if y is not None else ""), fontsize=10)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    return fig


def timeline(img: np.ndarray, t0: float, t1: float, hop_s: float, offset_s: float,
             freqs: np.ndarray, vmin: float, vmax: float, title: str, *,
             windows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
             threshold: float | None = None, score_name: str = "score",
             events: list[tuple[float, float]] = (), labels: list[tuple[float, float, str]] = ()):
    """A recording from ``t0`` to ``t1`` s: spectrogram ``img`` ``(cols, bins)`` (column ``c``
    is the frame starting at ``t0 + c * hop_s``) and, with ``windows`` = ``(start_s, end_s,
    score, decision)``, the per-window score below it coloured by decision (green: detected,
    red: not). ``events`` are outlined on top of the spectrogram, ``labels`` (truth) marked
    along its bottom.

    Both axes span exactly ``[t0, t1]`` in x. Returns ``(fig, spectrogram_ax, score_ax or
    None)``.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    has_score = windows is not None
    fig = P.figure(14, 5.6 if has_score else 4.2)
    if has_score:
        gs = fig.add_gridspec(2, 1, height_ratios=[3, 1.3], hspace=0.08)
        ax = fig.add_subplot(gs[0])
        sx = fig.add_subplot(gs[1], sharex=ax)
    else:
        ax, sx = fig.add_subplot(), None
    im = P.spectrogram(ax, img, t0, hop_s, offset_s, freqs, vmin, vmax, xlabel=not has_score)
    P.colorbar(fig, im, ax)
    ax.set_xlim(t0, t1)
    ax.set_title(title, fontsize=10)
    handles = []
    for a, b in events:
        ax.axvspan(a, b, ymin=0.955, ymax=1.0, color="#17becf", alpha=0.95, linewidth=0)
        for x in (a, b):
            ax.axvline(x, color="white", linestyle=":", linewidth=0.8, alpha=0.8)
    if len(events):
        handles.append(Patch(color="#17becf", label="detected events (top bar)"))
    if len(labels):
        names = sorted({lab for _, _, lab in labels})
        cols = dict(zip(names, P.category_colours(len(names))))
        for a, b, lab in labels:
            ax.axvspan(a, b, ymin=0.0, ymax=0.045, color=cols[lab], alpha=0.95, linewidth=0)
            if a >= t0 and b - a > 0.01 * (t1 - t0):
                ax.text(max(a, t0), 0.055, lab, transform=ax.get_xaxis_transform(), fontsize=7,
                        color="white", va="bottom")
        handles += [Patch(color=cols[n], label=f"label: {n} (bottom bar)") for n in names]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.7,
                  bbox_to_anchor=(1.0, 0.94))
    if has_score:
        start, end, score, dec = (np.asarray(v) for v in windows)
        order = np.argsort(start, kind="stable")
        start, end, score, dec = start[order], end[order], score[order], dec[order].astype(bool)
        width = end - start
        if len(start) > 1:
            width[:-1] = np.minimum(width[:-1], np.diff(start))
        base = min(0.0, float(np.nanmin(score))) if len(score) else 0.0
        sx.bar(start, score, width=width, bottom=0.0, align="edge",
               color=np.where(dec, POSITIVE, NEGATIVE), linewidth=0)
        if base < 0:
            sx.axhline(0.0, color="#666666", linewidth=0.6)
        thr_ok = threshold is not None and bool(np.isfinite(threshold))
        if thr_ok:
            sx.axhline(threshold, color="black", linestyle="--", linewidth=0.8)
        top = float(np.nanmax(score)) if len(score) else 1.0
        top = max(top, threshold if thr_ok else top, 0.0)
        sx.set_ylim(base * 1.05, top * 1.08 + 1e-9)
        sx.set_xlim(t0, t1)
        sx.set_xlabel("time (s)")
        sx.set_ylabel(score_name, fontsize=8)
        keys = [Patch(color=POSITIVE, label="detected"),
                Patch(color=NEGATIVE, label="not detected")]
        if thr_ok:
            keys.append(Line2D([], [], color="black", linestyle="--",
                               label=f"threshold {threshold:.3g}"))
        sx.legend(handles=keys, loc="upper left", fontsize=7, bbox_to_anchor=(1.005, 1.0),
                  frameon=False)
        ax.tick_params(labelbottom=False)
    fig.subplots_adjust(left=0.055, right=0.9, top=0.93, bottom=0.1 if has_score else 0.13)
    return fig, ax, sx
