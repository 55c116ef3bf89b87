"""``wsd report``: figures, ``metrics.json`` and a self-contained ``index.html`` from any wsd
files, choosing what fits their kinds.

- windows (given alone): timeline players of the recordings with their labels.
- model: training curves, first-layer filters, a GAN's generated windows.
- embeddings: the embedding map (PCA or t-SNE) coloured by cluster, label and detector
  decision with zoomed dense regions; reconstructions; generated windows.
- detections: ROC and precision-recall curves, confusion matrices, score distribution,
  timeline players (spectrogram, score coloured by decision, events) and an event table with
  clips.
- clusters: sizes, dendrogram, density/novelty view, a gallery per cluster with clips, and
  the most novel sequences.

Files the inputs were made from (an embeddings file's windows and model, a clusters file's
embeddings) are opened too, so ``wsd report clusters.h5 -o DIR`` reports the whole chain.
The report is built in a hidden folder beside ``DIR`` and renamed when complete.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from wsd.errors import OutputError
from wsd.report.context import ReportOptions

__all__ = ["ReportOptions", "build_report"]

MANIFEST = ".wsd-report"
PAGE_ORDER = ("detections", "clusters", "embeddings", "model", "windows")


def check_report_dir(outdir: Path, force: bool) -> None:
    """Refuse (exit 73) an output that is a file, a non-empty folder without ``force``, or a
    non-empty folder that is not an earlier report (never deleted, even with ``force``)."""
    outdir = Path(outdir)
    parent = outdir.parent if str(outdir.parent) else Path(".")
    if outdir.exists() and not outdir.is_dir():
        raise OutputError("exists and is not a folder", outdir)
    if outdir.is_dir() and any(outdir.iterdir()):
        if not force:
            raise OutputError("exists and is not empty (use --force to replace an earlier "
                              "report)", outdir)
        if not (outdir / MANIFEST).is_file():
            raise OutputError("is not empty and holds no earlier wsd report; refusing to "
                              "replace it, even with --force", outdir)
    if not parent.is_dir():
        raise OutputError(f"folder {parent} does not exist", outdir)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"folder {parent} is not writable", outdir)


def _swap_in(tmp: Path, outdir: Path) -> None:
    if outdir.is_dir():
        if not any(outdir.iterdir()):
            outdir.rmdir()
        else:
            old = outdir.with_name(f".{outdir.name}.{os.getpid()}.old")
            os.replace(outdir, old)
            os.replace(tmp, outdir)
            shutil.rmtree(old, ignore_errors=True)
            return
    os.replace(tmp, outdir)


def _resolve_clips(sections, written: dict[str, str]) -> None:
    from wsd.report.page import ClipTable, Gallery

    for s in sections:
        for b in s.blocks:
            if isinstance(b, Gallery):
                b.entries = [(x, written.get(k), tip) for x, k, tip in b.entries]
            elif isinstance(b, ClipTable):
                b.rows = [(cells, written.get(k) if k else None) for cells, k in b.rows]


def build_report(inputs: list, outdir, options: ReportOptions | None = None, *,
                 force: bool = False,
                 warn: Callable[[str, str | None], None] | None = None) -> dict:
    """Write a report of the wsd files ``inputs`` into the folder ``outdir``.

    Parameters
    ----------
    inputs : paths of wsd files of any kind.
    outdir : report folder to create (replacing an earlier report there with ``force``).
    options : :class:`ReportOptions`.
    warn : ``warn(message, path)`` called for problems that leave parts out (a missing
        recording or referenced file); they are listed on the page too.

    Returns
    -------
    dict: ``outdir``, ``page`` (index.html path), ``figures`` (PNG names), ``clips`` (WAV
    names), ``clips_left_out`` (requests over ``max_clips``), ``metrics`` (as in
    metrics.json) and ``warnings``.
    """
    from wsd import __version__
    from wsd.report.sections.cluster import clusters_section
    from wsd.report.sections.detect import detections_section, windows_section
    from wsd.report.sections.embed import embeddings_section, model_section
    from wsd.report.context import Ctx
    from wsd.report.collect import collect
    from wsd.report.page import render

    options = options or ReportOptions()
    outdir = Path(outdir)
    check_report_dir(outdir, force)
    warnings: list[str] = []

    def _warn(msg: str, path: str | None = None) -> None:
        warnings.append(f"{path}: {msg}" if path else msg)
        if warn is not None:
            warn(msg, path)

    tmp = outdir.with_name(f".{outdir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with collect(inputs, options.follow, _warn) as col:
            ctx = Ctx(tmp, options, col, _warn)
            built: dict[str, list] = {k: [] for k in PAGE_ORDER}
            results: dict[str, dict] = {}
            referenced_windows = {id(d.refs.get("windows")) for d in col.of_kind("detections")}
            for item in col.items:
                if item.kind == "embeddings":
                    sec, res = embeddings_section(ctx, item)
                elif item.kind == "model":
                    gen = any(e.refs.get("model") is item and e.f.has("generated")
                              for e in col.of_kind("embeddings"))
                    sec, res = model_section(ctx, item, gen)
                elif item.kind == "detections":
                    sec, res = detections_section(ctx, item)
                elif item.kind == "clusters":
                    sec, res = clusters_section(ctx, item)
                elif item.kind == "windows" and item.given and id(item) not in referenced_windows:
                    sec, res = windows_section(ctx, item)
                else:
                    continue
                res = {"file": str(item.path), **res}
                built[item.kind].append(sec)
                results[item.name] = res
            written = ctx.clips.write_all()
            sections = [s for k in PAGE_ORDER for s in built[k]]
            _resolve_clips(sections, written)
            inputs_rows = [[str(it.path), it.kind, it.f.n if it.kind != "model" else "",
                            "given" if it.given else "followed",
                            (it.f.history[-1] if it.f is not None and it.f.history else "")]
                           for it in col.items]
            clip_files = sorted(set(written.values())
                                | {b.audio for s in sections for b in s.blocks
                                   if getattr(b, "audio", None)})
            now = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
            metrics = {"wsd_version": __version__, "created": now,
                       "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
                       "inputs": [{"path": r[0], "kind": r[1], "role": r[3]} for r in inputs_rows],
                       "results": results,
                       "figures": list(ctx.files),
                       "clips": {"written": len(written), "left_out": ctx.clips.left_out,
                                 "timelines": len(clip_files) - len(written)}}
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
            subtitle = (f"wsd {__version__} report of {len(col.items)} file(s), made {now}. "
                        f"{len(written)} clips"
                        + (f" ({ctx.clips.left_out} more left out by --max-clips)"
                           if ctx.clips.left_out else "") + ".")
            title = "wsd report: " + ", ".join(Path(p).name for p in inputs)
            page = render(title, subtitle, inputs_rows, metrics, sections, warnings)
            (tmp / "index.html").write_text(page, encoding="utf-8")
            files = ["index.html", "metrics.json", *ctx.files, *clip_files]
            (tmp / MANIFEST).write_text(json.dumps({"wsd_version": __version__,
                                                    "files": files}))
        _swap_in(tmp, outdir)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return {"outdir": str(outdir), "page": str(outdir / "index.html"), "figures": list(ctx.files),
            "clips": clip_files, "clips_left_out": ctx.clips.left_out, "metrics": metrics,
            "warnings": warnings}
