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
