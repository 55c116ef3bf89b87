"""wsd report's progress: the figures task advances at every figure, a long computation
(t-SNE) keeps the status moving every HEARTBEAT_S seconds, and the clips task counts clips."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest

from test_report import _recordings, run_wsd


class Recorder:
    """A Progress that records every event: (task, n, status, time)."""

    def __init__(self):
        self.warnings = 0
        self.tasks: dict[str, tuple] = {}
        self.events: list[tuple] = []

    def note(self, msg):
        pass

    def warn(self, msg, path=None):
        self.warnings += 1

    @contextlib.contextmanager
    def task(self, description, total, unit=""):
        self.tasks[description] = (total, unit)
        yield lambda n=1, status=None, **_: self.events.append(
            (description, n, status, time.monotonic()))


def _ctx(tmp_path, **opts):
    from wsd.report import ReportOptions
    from wsd.report.context import Ctx

    ctx = Ctx(tmp_path, ReportOptions(**opts), None, lambda m, p=None: None)
    rec = Recorder()
    ctx.advance = lambda n=1, status=None, **_: rec.events.append(("x", n, status,
                                                                   time.monotonic()))
    return ctx, rec


def test_a_long_call_keeps_the_status_moving(tmp_path, monkeypatch):
    from wsd.report import context

    monkeypatch.setattr(context, "HEARTBEAT_S", 0.05)
    ctx, rec = _ctx(tmp_path)
    assert ctx.run_slow(lambda: (time.sleep(0.5), 42)[1], "t-SNE of 9 points") == 42
    beats = [e for e in rec.events if e[1] == 0]
    assert len(beats) >= 4 and all(e[2].startswith("t-SNE of 9 points") for e in beats)
    assert max(np.diff([e[3] for e in beats])) < 0.3

    def fail():
        raise ValueError("no convergence")

    with pytest.raises(ValueError, match="no convergence"):
        ctx.run_slow(fail, "x")


def test_tsne_runs_with_a_heartbeat(tmp_path, monkeypatch):
    from wsd.report import analysis, context

    monkeypatch.setattr(context, "HEARTBEAT_S", 0.05)
    def slow(x, method, seed):  # stands for sklearn's t-SNE
        time.sleep(0.3)
        return np.zeros((len(x), 2)), {"method": method}

    monkeypatch.setattr(analysis, "project_2d", slow)
    x = np.random.default_rng(0).normal(size=(40, 5))
    ctx, rec = _ctx(tmp_path, projection="tsne")
    xy, info = ctx.project(x)
    assert xy.shape == (40, 2) and info["method"] == "tsne"
    assert sum(1 for e in rec.events if e[1] == 0 and "t-SNE of 40 points:" in e[2]) >= 3
    ctx, rec = _ctx(tmp_path, projection="pca")
    ctx.project(x)
    assert not rec.events  # a PCA is quick: no thread


def test_build_report_advances_per_figure_and_per_clip(tmp_path):
    from wsd.report import ReportOptions, build_report

    audio = _recordings(tmp_path / "audio")
    win, det = tmp_path / "win.h5", tmp_path / "det.h5"
    from conftest import SEED_SLICE

    assert run_wsd("slice", audio, "--labels", audio / "labels.csv", "-o", win, *SEED_SLICE,
                   "-q") == 0
    assert run_wsd("detect", win, "--silence", "-o", det, "-q") == 0
    rec = Recorder()
    out = build_report([det], tmp_path / "rep", ReportOptions(timelines=1, max_clips=5),
                       progress=rec)
    assert rec.tasks == {"report: figures": (None, "figures"), "report: clips": (5, "clips")}
    figs = [e for e in rec.events if e[0] == "report: figures" and e[1] == 1]
    assert [e[2] for e in figs] == out["figures"]
    clips = [e for e in rec.events if e[0] == "report: clips"]
    assert len(clips) == 5 and all(e[1] == 1 for e in clips)
    assert len(out["clips"]) == 5 + 1  # and the timeline's excerpt
