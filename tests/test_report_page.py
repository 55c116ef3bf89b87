"""The report page from its jinja2 templates: one self-contained file, escaped, every kind
of block, the clip controls (speed, context) and the gallery layout (titles never
overlap)."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest


def _render(sections, title="t", warnings=()):
    from wsd.report.page import render

    return render(title, "sub", [["a.h5", "windows", 3, "given", "wsd slice"]],
                  {"results": {"a": {"file": "a.h5", "n": 3, "auc": 0.91234567}}}, sections,
                  list(warnings))


def test_css_and_js_are_inline_and_nothing_is_fetched():
    from wsd.report.page import Note, Section

    html = _render([Section("S", [Note("n")], "s")])
    tpl = resources.files("wsd.report") / "templates"
    assert (tpl / "page.css").read_text().strip() in html
    assert (tpl / "page.js").read_text().strip() in html
    assert "http://" not in html and "https://" not in html
    assert not re.search(r'<(link|script)[^>]+(href|src)=', html)
    assert '<a href="#s">S</a>' in html and '<section id="s"><h2>S</h2>' in html
    assert "<td>auc</td><td>0.9123</td>" in html and "<td>wsd slice</td>" in html


def test_everything_shown_is_escaped():
    from wsd.report.page import ClipTable, Figure, Note, Section, Timeline

    bad = '<script>alert("x")</script> & \'q\''
    html = _render([Section(bad, [Note(bad), Figure("f.png", bad),
                                  ClipTable(bad, [bad], [([bad], None)]),
                                  Timeline("t.png", bad, 0.0, 1.0, {"left": 0.1, "k": bad},
                                           audio="a.wav")], "x")],
                   title=bad, warnings=[bad])
    assert "<script>alert" not in html
    assert html.count("&lt;script&gt;alert(") >= 7
    box = re.search(r'data-box="([^"]+)"', html).group(1)
    assert "&quot;left&quot;: 0.1" in box and "&lt;script&gt;" in box


def test_unknown_block_is_refused():
    from wsd.report.page import Section

    with pytest.raises(TypeError, match="unknown block dict"):
        _render([Section("S", [{"text": "x"}])])


def test_clip_controls_show_speed_and_where_the_event_lies():
    from wsd.report.clips import Clip
    from wsd.report.page import ClipTable, Gallery, Section

    slow = Clip("audio/a.wav", 10.0, 30.0, 8.0, (1.0, 7.0))
    plain = Clip("audio/b.wav", 1.0, 2.0, 4.0, (1.0, 3.0))
    html = _render([Section("S", [
        ClipTable("events", ["rank"], [([1], slow), ([2], plain), ([3], "audio/c.wav"),
                                       ([4], None)]),
        Gallery("g.png", "gallery", [(0.2, slow, "medoid"), (0.6, None, "member")])], "s")])
    assert re.findall(r'data-src="([^"]+)"', html) == ["audio/a.wav", "audio/b.wav",
                                                       "audio/c.wav", "audio/a.wav"]
    assert html.count('<span class="speed">played 10x faster</span>') == 2
    assert "played 1x" not in html
    assert 'class="cev" style="left:12.50%;width:75.00%"' in html  # 1-7 s of 8 s
    assert 'class="cev" style="left:25.00%;width:50.00%"' in html
    assert "clip 30.00-38.00 s of the recording, the event from 1.00 to 7.00 s" in html
    assert html.count('<button class="play" disabled') == 2
    assert 'class="gbar slow"' in html  # room for the speed under the buttons


def test_timeline_carries_its_speed():
    from wsd.report.page import Section, Timeline

    box = {"left": 0.1, "right": 0.9, "top": 0.1, "bottom": 0.9}
    fast = _render([Section("S", [Timeline("t.png", "c", 5.0, 65.0, box, "a.wav",
                                           speed=10.0)])])
    assert 'data-speed="10"' in fast
    assert "played 10x faster; the time shown is the recording" in fast
    normal = _render([Section("S", [Timeline("t.png", "c", 5.0, 65.0, box, "a.wav")])])
    assert 'data-speed="1"' in normal and "played" not in normal
    gone = _render([Section("S", [Timeline("t.png", "c", 5.0, 65.0, box)])])
    assert "No audio for this recording" in gone and "<audio class" not in gone


def test_fit_text_wraps_and_keeps_both_ends():
    from wsd.report.figures.plotting import ELLIPSIS, fit_text

    assert fit_text("short one", 20, len) == "short one"
    assert fit_text("alpha beta gamma", 11, len) == "alpha beta\ngamma"
    assert fit_text("a_very_long_file_name.wav", 13, len) == "a_very_long_\nfile_name.wav"
    out = fit_text("#3: humpback_song_2019-03-04_hydrophoneB.wav 12.3 s [upcall]", 24, len)
    lines = out.split("\n")
    assert len(lines) == 2 and all(len(s) <= 24 for s in lines)
    assert ELLIPSIS in out and out.startswith("#3: ") and out.endswith("12.3 s [upcall]")


@pytest.mark.parametrize("n", [1, 3, 8, 16])
def test_gallery_titles_do_not_overlap(n):
    """The title boxes (as matplotlib's renderer draws them) of a gallery with long file
    names and labels overlap neither each other nor the figure's title, and stay over their
    panels."""
    from wsd.report.figures.cluster import gallery

    rng = np.random.default_rng(0)
    panels = [(rng.random((40, 16)).astype(np.float32),
               ("medoid: " if i == 0 else f"#{i + 1}: ")
               + f"2019-03-04T05_06_07_hydrophone_{i}_longer_than_any_panel_of_a_gallery.wav "
               f"{123.4 + i:.1f} s [song unit {i}]") for i in range(n)]
    fig, axes = gallery(panels, 0.01, 0.005, np.linspace(0, 1000, 16), 0.0, 1.0,
                        "cluster 3 (125 sequences)", 0.4)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(r) for ax in axes] + [fig._suptitle.get_window_extent(r)]
    for i, a in enumerate(boxes):
        assert a.width > 0
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    for ax, b in zip(axes, boxes):
        panel = ax.get_window_extent(r)
        assert panel.x0 - 1 <= b.x0 and b.x1 <= panel.x1 + 1
        assert b.y0 >= panel.y1 and b.y1 <= fig.bbox.height
        assert ax.title.get_text().count("\n") <= 1
