"""The report page in headless Chromium (Debian's ``chromium`` package driven by Python
playwright): no console errors, a clip's play button plays, and the timeline player's cursor
follows the sound at the right place over the spectrogram.

Needs /usr/bin/chromium (``apt-get install chromium``) and playwright (the ``test`` extra);
never downloads a browser. Skipped, saying why, when either is missing.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from test_report import _recordings, run_wsd

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory):
    """A report of detections over labelled recordings: event clips and timeline players."""
    d = tmp_path_factory.mktemp("browser")
    audio = _recordings(d / "audio")
    win, det, out = d / "win.h5", d / "det.h5", d / "report"
    assert run_wsd("slice", audio, "--labels", audio / "labels.csv", "-o", win, "-q") == 0
    assert run_wsd("detect", win, "--silence", "-o", det, "-q") == 0
    assert run_wsd("report", det, "-o", out, "--timelines", "1", "-q") == 0
    return out


def _wait(page, js: str, timeout: float = 8.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if page.evaluate(js):
            return True
        time.sleep(0.1)
    return False


def test_page_plays_clips_and_moves_the_cursor(browser, page_dir, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((page_dir / "index.html").resolve().as_uri())
    page.wait_for_load_state("load")

    # a clip: the first event's play button
    btn = page.locator("button.play[data-src]").first
    btn.scroll_into_view_if_needed()
    btn.click()
    assert _wait(page, "document.getElementById('clip-player').currentTime > 0.2"), \
        "the clip did not play"
    assert "playing" in (btn.get_attribute("class") or "")
    src = page.evaluate("document.getElementById('clip-player').src")
    assert src.endswith(btn.get_attribute("data-src"))

    # the timeline: play, the cursor moves and sits where the time says
    tl = page.locator("figure.timeline").first
    tl.scroll_into_view_if_needed()
    tl.locator(".tl-play").click()
    assert _wait(page, "document.querySelector('figure.timeline audio').currentTime > 0.3"), \
        "the timeline audio did not play"
    assert page.evaluate("document.getElementById('clip-player').paused"), \
        "the clip kept playing over the timeline"
    probe = """() => {
        const tl = document.querySelector('figure.timeline');
        const a = tl.querySelector('audio'), img = tl.querySelector('img');
        const box = JSON.parse(tl.dataset.box);
        const t0 = +tl.dataset.t0, t1 = +tl.dataset.t1;
        const left = parseFloat(tl.querySelector('.cursor').style.left);
        return {t: a.currentTime, left: left, w: img.clientWidth, box: box, span: t1 - t0,
                square: tl.querySelector('.indicator').className};
    }"""
    first = page.evaluate(probe)
    time.sleep(0.8)
    page.evaluate("document.querySelector('figure.timeline audio').pause()")
    second = page.evaluate(probe)
    assert second["t"] > first["t"] + 0.3
    assert second["left"] > first["left"] + 1, (first, second)
    b = second["box"]
    expect = (b["left"] + second["t"] / second["span"] * (b["right"] - b["left"])) * second["w"] - 1
    assert abs(second["left"] - expect) < 1.0, (second, expect)
    assert second["square"] in ("indicator pos", "indicator neg")

    # clicking the spectrogram seeks there
    box = tl.locator("img").bounding_box()
    frac = b["left"] + 0.5 * (b["right"] - b["left"])
    page.mouse.click(box["x"] + frac * box["width"], box["y"] + 0.3 * box["height"])
    t = page.evaluate("document.querySelector('figure.timeline audio').currentTime")
    assert t == pytest.approx(0.5 * second["span"], abs=0.05)

    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert not errors, errors
    meta = json.loads((page_dir / "metrics.json").read_text())
    assert meta["clips"]["written"] >= 1 and meta["clips"]["timelines"] == 1
    page.close()


@pytest.fixture(scope="module")
def lowrate_dir(tmp_path_factory):
    """A report of detections over a 50 Hz recording of blue-whale-like calls (which
    Chromium does not play at its own rate), with default playback: x10."""
    from test_report_playback import blue_whale_recording

    d = tmp_path_factory.mktemp("lowrate")
    wav = blue_whale_recording(d / "audio")
    win, det, out = d / "win.h5", d / "det.h5", d / "report"
    assert run_wsd("slice", wav, "--labels", wav.parent / "labels.csv", "--n-fft", "64",
                   "--hop-length", "16", "--frames", "16", "-o", win, "-q") == 0
    assert run_wsd("detect", win, "--silence", "-o", det, "-q") == 0
    assert run_wsd("report", det, "-o", out, "--timelines", "1", "-q") == 0
    return out


def test_50hz_recording_plays_sped_up_and_the_cursor_keeps_recording_time(browser,
                                                                         lowrate_dir):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((lowrate_dir / "index.html").resolve().as_uri())
    page.wait_for_load_state("load")

    # an event clip: it plays (Chromium refuses a 50 Hz WAV), and says it is sped up
    btn = page.locator("button.play[data-src]").first
    btn.scroll_into_view_if_needed()
    assert "played 10x faster" in btn.locator("xpath=..").inner_text()
    btn.click()
    assert _wait(page, "document.getElementById('clip-player').currentTime > 0.2"), \
        page.evaluate("String(document.getElementById('clip-player').error && "
                      "document.getElementById('clip-player').error.code)")
    assert page.evaluate("document.getElementById('clip-player').error") is None
    assert page.evaluate("document.querySelector('.clip .cpos').style.display") == "block"

    # the timeline: its audio lasts a tenth of the span, the clock and cursor show
    # recording time (t0 + 10 x the audio's time)
    tl = page.locator("figure.timeline").first
    tl.scroll_into_view_if_needed()
    assert "played 10x faster" in tl.locator(".tlbar").inner_text()
    assert _wait(page, "document.querySelector('figure.timeline audio').duration > 0")
    probe = """() => {
        const tl = document.querySelector('figure.timeline');
        const a = tl.querySelector('audio'), img = tl.querySelector('img');
        return {t: a.currentTime, dur: a.duration, speed: +tl.dataset.speed,
                t0: +tl.dataset.t0, span: +tl.dataset.t1 - +tl.dataset.t0,
                box: JSON.parse(tl.dataset.box), w: img.clientWidth,
                left: parseFloat(tl.querySelector('.cursor').style.left),
                clock: tl.querySelector('.time').textContent};
    }"""
    before = page.evaluate(probe)
    assert before["speed"] == 10
    assert before["dur"] == pytest.approx(before["span"] / 10, abs=0.01)
    tl.locator(".tl-play").click()
    assert _wait(page, "document.querySelector('figure.timeline audio').currentTime > 0.5"), \
        "the timeline audio did not play"
    page.evaluate("document.querySelector('figure.timeline audio').pause()")
    s = page.evaluate(probe)
    rec_t = s["t0"] + 10 * s["t"]
    assert s["clock"] == f"{rec_t:.2f} s"
    b = s["box"]
    expect = (b["left"] + 10 * s["t"] / s["span"] * (b["right"] - b["left"])) * s["w"] - 1
    assert abs(s["left"] - expect) < 1.0, (s, expect)

    # clicking the middle of the spectrogram seeks to the middle of the recording's span
    box = tl.locator("img").bounding_box()
    page.mouse.click(box["x"] + (b["left"] + 0.5 * (b["right"] - b["left"])) * box["width"],
                     box["y"] + 0.3 * box["height"])
    t = page.evaluate("document.querySelector('figure.timeline audio').currentTime")
    assert t == pytest.approx(0.5 * s["span"] / 10, abs=0.01)
    assert not errors, errors
    page.close()


@pytest.fixture(scope="module")
def review_dir(tmp_path_factory):
    """A review page of the hits of two table queries, 3 hits each (test_report_review)."""
    from test_report_review import make_archive

    a = make_archive(tmp_path_factory.mktemp("review"))
    assert run_wsd("report", a["hits"], "-o", a["dir"] / "report", "-q") == 0
    return a


def _expected_review(rows, ops, yes_labels):
    """What the page should hold after ``ops`` ((item, mark) in order; items of one span
    share its mark, yes meaning the label of the group it was last marked in): the mark of
    every item, the label it saves, the count line and the CSV's text."""
    keys = [(r["path"], r["start"], r["end"]) for r in rows]
    marks = {}
    for i, m in ops:
        if m:
            marks[keys[i]] = (m, rows[i]["query"])
        else:
            marks.pop(keys[i], None)
    n = {m: sum(v[0] == m for v in marks.values()) for m in ("yes", "no", "unsure")}
    count = (f"{len(marks)} of {len(set(keys))} marked: {n['yes']} yes, {n['no']} no, "
             f"{n['unsure']} unsure")
    label = {k: {"yes": yes_labels[g], "no": "noise", "unsure": "unsure"}[m]
             for k, (m, g) in marks.items()}
    lines, seen = ["path,start_s,end_s,label"], set()
    for r, k in zip(rows, keys):
        if k in marks and k not in seen:
            seen.add(k)
            lines.append(f"{r['path']},{r['start']},{r['end']},{label[k]}")
    return ([marks.get(k, ("",))[0] for k in keys], [label.get(k, "") for k in keys], count,
            "\n".join(lines) + "\n")


def test_review_page_marks_by_click_and_key_downloads_labels_and_trains(browser, review_dir,
                                                                        tmp_path):
    """Mark hits with the buttons and the keys, play one with space, reload (the marks
    stay), download the labels CSV (exact rows), train a probe on it, clear the marks."""
    from test_report_review import hit_rows

    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((review_dir["dir"] / "report" / "index.html").resolve().as_uri())
    page.wait_for_load_state("load")
    rows = hit_rows(review_dir["hits"])
    items = page.locator(".ritem")
    assert items.count() == len(rows) == 6 and [r["query"] for r in rows] == [0] * 3 + [1] * 3
    marks = lambda: [items.nth(i).get_attribute("data-mark") for i in range(6)]  # noqa: E731

    # the second query's "yes" label, typed: its letters are not shortcuts there
    field = page.locator(".rgroup").nth(1).locator("input.ryes")
    assert field.input_value() == "call"
    field.click()
    field.press("Control+a")
    field.press_sequentially("down")
    assert field.input_value() == "down" and marks() == [""] * 6

    # buttons, then keys: the clicked item is the current one; a mark moves to the next
    for i, m in ((0, "yes"), (1, "no"), (2, "unsure")):
        items.nth(i).locator(f"button.rmark[data-mark='{m}']").click()
    for key in ("j", "y", "ArrowDown", "n", "x", "u", "k", "k", "ArrowUp"):
        page.keyboard.press(key)
    ops = [(0, "yes"), (1, "no"), (2, "unsure"), (3, "yes"), (5, "no"), (5, ""),
           (5, "unsure")]
    want, saves, count, text = _expected_review(rows, ops, ["call", "down"])
    assert marks() == want and want[3] == "yes"
    assert [items.nth(i).locator(".rstate").inner_text() for i in range(6)] == \
        [f"\u2192 {s}" if s else "" for s in saves]
    assert saves[3] == "down"  # the label of the group it was marked in
    assert "active" in items.nth(2).get_attribute("class")
    assert page.locator(".rcount").inner_text() == count

    # space plays the current item's clip, and stops it
    page.keyboard.press(" ")
    assert _wait(page, "document.getElementById('clip-player').currentTime > 0.2"), \
        "space did not play the item"
    src = items.nth(2).locator("button.play").get_attribute("data-src")
    assert page.evaluate("document.getElementById('clip-player').src").endswith(src)
    assert items.nth(2).locator(".rcur").evaluate("c => c.style.display") == "block"
    page.keyboard.press(" ")
    assert _wait(page, "document.getElementById('clip-player').paused")

    # a reload keeps the marks and the label
    page.reload()
    page.wait_for_load_state("load")
    assert marks() == want and page.locator(".rcount").inner_text() == count
    assert page.locator(".rgroup").nth(1).locator("input.ryes").input_value() == "down"

    # the download: one row per marked span, in page order; a probe trains on it
    with page.expect_download() as dl:
        page.locator(".rdownload").click()
    assert dl.value.suggested_filename == "hits-labels.csv"
    labels = tmp_path / "labels.csv"
    dl.value.save_as(labels)
    assert labels.read_text() == text and ",call\n" in text
    clf = tmp_path / "clf.h5"
    assert run_wsd("train", review_dir["emb"], "--arch", "linear", "--labels", labels,
                   "--positive", "call", "-o", clf, "-q") == 0
    from test_report_review import SLICE

    d = review_dir["dir"]
    assert run_wsd("slice", d / "r0.wav", d / "r1.wav", "--labels", labels, *SLICE, "-o",
                   tmp_path / "w.h5", "-q") == 0

    # clearing (confirmed) forgets the marks, after a reload too
    page.once("dialog", lambda d: d.accept())
    page.locator(".rclear").click()
    assert marks() == [""] * 6 and page.locator(".rdownload").is_disabled()
    page.reload()
    page.wait_for_load_state("load")
    assert marks() == [""] * 6
    assert not errors, errors
    ctx.close()
