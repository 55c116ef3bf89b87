"""``wsd report``: figures, ``metrics.json`` and a self-contained ``index.html`` from any wsd
files, choosing what fits their kinds.

- windows (given alone): timeline players of the recordings with their labels.
- model: training curves, first-layer filters, a GAN's generated windows.
- embeddings: the embedding map (PCA or t-SNE) coloured by cluster, label and detector
  decision with zoomed dense regions; reconstructions; generated windows.
- detections: ROC and precision-recall curves, confusion matrices, score distribution,
  timeline players (spectrogram, score coloured by decision, events), an event table with
  clips and a review block to mark the events.
- hits (``wsd search``): a review page, the hits grouped by query (the query's clip first,
  then its hits, best rank first), each with a thumbnail spectrogram, a play button and
  yes / no / unsure marks that the browser saves as a labels CSV (:mod:`wsd.report.review`).
- clusters: sizes, dendrogram, density/novelty view, a gallery per cluster with clips, and
  the most novel sequences.

Files the inputs were made from (an embeddings file's windows and model, a clusters file's
embeddings) are opened too, so ``wsd report clusters.h5 -o DIR`` reports the whole chain.
The report is built in a hidden folder beside ``DIR`` and renamed when complete.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Callable

from wsd.errors import OutputError
from wsd.report.context import ReportOptions

__all__ = ["ReportOptions", "build_report"]

MANIFEST = ".wsd-report"
PAGE_ORDER = ("hits", "detections", "clusters", "embeddings", "model", "windows")


def check_report_dir(outdir: Path, force: bool, inputs=()) -> None:
    """Refuse (exit 73) an output that is a file, holds one of the ``inputs``, is a
    non-empty folder without ``force``, or a non-empty folder that is not an earlier report
    (never deleted, even with ``force``)."""
    from wsd.io.store import check_output

    outdir = Path(outdir)
    check_output(outdir, force, inputs, folder=True)
    if outdir.is_dir() and any(outdir.iterdir()) and not (outdir / MANIFEST).is_file():
        raise OutputError("is not empty and holds no earlier wsd report; refusing to "
                          "replace it, even with --force", outdir)


def _resolve_clips(sections, written: dict) -> None:
    """Replace the clip keys of galleries, clip tables and review blocks by the clips
    written (or None)."""
    from wsd.report.page import ClipTable, Gallery
    from wsd.report.review import Review

    for s in sections:
        for b in s.blocks:
            if isinstance(b, Review):
                b.resolve(written)
            elif isinstance(b, Gallery):
                b.entries = [(x, written.get(k), tip) for x, k, tip in b.entries]
            elif isinstance(b, ClipTable):
                b.rows = [(cells, written.get(k) if k else None) for cells, k in b.rows]


def _sections(ctx, col, progress) -> tuple[list, dict]:
    """Every item's section, in page order, and its results for metrics.json; the progress
    bar advances at every figure saved (and counts the seconds of a long computation)."""
    from wsd.io.store.kinds import get as kind_of

    built: dict[str, list] = {k: [] for k in PAGE_ORDER}
    results: dict[str, dict] = {}
    with progress.task("report: figures", None, "figures") as advance:
        ctx.advance = advance
        for item in col.items:
            advance(0, status=f"{item.kind} {item.path.name[:40]}")
            section = kind_of(item.kind).resolve("section")
            out = section(ctx, item) if section is not None else None
            if out is None:
                continue
            sec, res = out
            built[item.kind].append(sec)
            results[item.name] = {"file": str(item.path), **res}
        ctx.advance = lambda n=1, status=None, **_: None
    return [s for k in PAGE_ORDER for s in built[k]], results


def _clip_note(options: ReportOptions, speeds, clips: bool) -> str:
    """The page's sentences on what a clip holds and how audio is played."""
    from wsd.report.playback import speed_text

    faster = sorted({speed_text(v) for v in speeds} - {""})
    return ((f" A clip holds up to {options.clip_context:g} s of sound before and after its "
             "window, sequence or event; the bar beside its play button shows the clip, the "
             "event darker, and where the sound is while it plays." if clips else "")
            + (f" Low-rate audio is sped up to be heard: {', '.join(faster)}; times on the "
               "page are the recording's." if faster else ""))


def build_report(inputs: list, outdir, options: ReportOptions | None = None, *,
                 force: bool = False,
                 warn: Callable[[str, str | None], None] | None = None,
                 progress=None) -> dict:
    """Write a report of the wsd files ``inputs`` into the folder ``outdir``.

    Parameters
    ----------
    inputs : paths of wsd files of any kind.
    outdir : report folder to create (replacing an earlier report there with ``force``).
    options : :class:`ReportOptions`.
    warn : ``warn(message, path)`` called for problems that leave parts out (a missing
        recording or referenced file); they are listed on the page too.
    progress : a :class:`wsd.pipeline.progress.Progress`; two tasks advance: the figures
        (one step per figure, the status counting the seconds of a t-SNE) and the clips.

    Returns
    -------
    dict: ``outdir``, ``page`` (index.html path), ``figures`` (PNG names), ``clips`` (WAV
    names), ``clips_left_out`` (requests over ``max_clips``), ``metrics`` (as in
    metrics.json) and ``warnings``.
    """
    from wsd.io.store import atomic_output, output_lock
    from wsd.io.store.atomic import remove_stale_temps
    from wsd.pipeline.progress import Progress
    from wsd.report.collect import collect
    from wsd.report.context import Ctx

    progress = progress or Progress()
    options = options or ReportOptions()
    outdir = Path(outdir)
    inputs = [str(p) for p in inputs]
    check_report_dir(outdir, force, inputs)
    warnings: list[str] = []

    def _warn(msg: str, path: str | None = None) -> None:
        warnings.append(f"{path}: {msg}" if path else msg)
        if warn is not None:
            warn(msg, path)

    remove_stale_temps(outdir.parent if str(outdir.parent) else ".",
                       lambda n: n == outdir.name)
    with output_lock(outdir), atomic_output(outdir, force, folder=True, inputs=inputs) as tmp:
        with collect(inputs, options.follow, _warn) as col:
            ctx = Ctx(tmp, options, col, _warn)
            sections, results = _sections(ctx, col, progress)
            with progress.task("report: clips", ctx.clips.to_write(), "clips") as advance:
                written = ctx.clips.write_all(advance)
            _resolve_clips(sections, written)
            out = _write_page(tmp, inputs, col, ctx, sections, results, written, warnings)
    return {"outdir": str(outdir), "page": str(outdir / "index.html"), "figures": list(ctx.files),
            "clips": out["clips"], "clips_left_out": ctx.clips.left_out,
            "metrics": out["metrics"], "warnings": warnings}


def _write_page(tmp: Path, inputs: list[str], col, ctx, sections, results, written,
                warnings) -> dict:
    """Write metrics.json, index.html and the manifest into ``tmp``; ``{"clips", "metrics"}``.
    """
    from wsd import __version__
    from wsd.report.page import render

    options = ctx.opts
    inputs_rows = [[str(it.path), it.kind, it.f.n if it.kind != "model" else "",
                    "given" if it.given else "followed",
                    (it.f.history[-1] if it.f is not None and it.f.history else "")]
                   for it in col.items]
    clip_files = sorted({c.src for c in written.values()}
                        | {b.audio for s in sections for b in s.blocks
                           if getattr(b, "audio", None)})
    now = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    metrics = {"wsd_version": __version__, "created": now,
               "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
               "inputs": [{"path": r[0], "kind": r[1], "role": r[3]} for r in inputs_rows],
               "results": results,
               "figures": list(ctx.files),
               "review_thumbnails": len(ctx.thumbs),
               "clips": {"written": len(written), "left_out": ctx.clips.left_out,
                         "timelines": len(clip_files) - len(written),
                         "context_s": options.clip_context,
                         "playback_speeds": sorted(ctx.clips.speeds)}}
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    subtitle = (f"wsd {__version__} report of {len(col.items)} file(s), made {now}. "
                f"{len(written)} clips"
                + (f" ({ctx.clips.left_out} more left out by --max-clips)"
                   if ctx.clips.left_out else "") + "."
                + _clip_note(options, ctx.clips.speeds, bool(written)))
    title = "wsd report: " + ", ".join(Path(p).name for p in inputs)
    page = render(title, subtitle, inputs_rows, metrics, sections, warnings)
    (tmp / "index.html").write_text(page, encoding="utf-8")
    files = ["index.html", "metrics.json", *ctx.files, *ctx.thumbs, *clip_files]
    (tmp / MANIFEST).write_text(json.dumps({"wsd_version": __version__, "files": files}))
    return {"clips": clip_files, "metrics": metrics}
