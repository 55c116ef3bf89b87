"""Report audio that browsers play: the playback speed chosen for a recording's rate, the
rate clips are written at, the context kept around an event, and the options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def blue_whale_recording(folder: Path, seconds: float = 600.0) -> Path:
    """A 50 Hz recording (as from an ocean-bottom seismometer) with five blue-whale-like
    calls, 15 s downsweeps from 18 to 14 Hz, in faint noise; and its labels.csv."""
    sr = 50
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = 0.01 * rng.standard_normal(int(seconds * sr))
    rows = ["path,start_s,end_s,label"]
    for s0 in (40, 150, 260, 380, 500):
        tt = np.arange(15 * sr) / sr
        phase = 2 * np.pi * np.cumsum(18 - 4 * tt / 15) / sr
        x[s0 * sr:(s0 + 15) * sr] += 0.3 * np.sin(np.pi * tt / 15) ** 0.5 * np.sin(phase)
        rows.append(f"{folder / 'blue.wav'},{s0},{s0 + 15},blueB")
    sf.write(folder / "blue.wav", x.astype(np.float32), sr, subtype="PCM_16")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder / "blue.wav"


def _tone(path: Path, sr: int, freq: float, seconds: float) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr,
             subtype="PCM_16")
    return path


def _peak_hz(path: Path) -> float:
    x, sr = sf.read(path)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


# ------------------------------------------------------------------ the choice

@pytest.mark.parametrize("rate, fmax, speed", [
    (50, None, 10),       # blue whales: 10-25 Hz heard at 100-250 Hz
    (100, None, 5),
    (200, None, 5),
    (400, None, 2),
    (500, None, 1),
    (2000, None, 1),      # right whales: audible, only resampled to play
    (22050, None, 1),
    (192000, None, 1),
    (1000, 40.0, 10),     # a band cropped to infrasound (--fmax 40) is sped up too
    (1000, float("nan"), 1),
    (2, None, 500),
])
def test_auto_speed(rate, fmax, speed):
    from wsd.report.playback import auto_speed

    assert auto_speed(rate, fmax) == speed


@pytest.mark.parametrize("rate, speed, out_rate, up, down", [
    (50, 10, 8000, 16, 1),      # 500 Hz played: upsampled x16 to 8 kHz
    (2000, 1, 8000, 4, 1),      # Chromium refuses 2 kHz
    (3000, 1, 9000, 3, 1),
    (22050, 1, 22050, 1, 1),    # left as it is
    (22050, 2, 44100, 1, 1),
    (22050, 0.1, 8820, 4, 1),   # slowed down (ultrasound), still playable
    (48000, 10, 240000, 1, 2),  # past 384 kHz: downsampled by 2
])
def test_plan_gives_a_playable_rate_and_keeps_the_speed(rate, speed, out_rate, up, down):
    from wsd.report.playback import CHROMIUM_RATES, PLAYABLE_MAX, PLAYABLE_MIN, plan

    p = plan(rate, speed)
    assert (p.out_rate, p.up, p.down) == (out_rate, up, down)
    assert p.speed == pytest.approx(speed)
    assert PLAYABLE_MIN <= p.out_rate <= PLAYABLE_MAX
    assert CHROMIUM_RATES[0] <= p.out_rate <= CHROMIUM_RATES[1]
    assert p.out_rate * p.down / p.up == pytest.approx(rate * speed)


def test_speed_text():
    from wsd.report.playback import speed_text

    assert speed_text(1.0) == "" and speed_text(1.0002) == ""
    assert speed_text(10.0) == "played 10x faster"
    assert speed_text(0.25) == "played 4x slower"


def test_playback_rate_and_clip_context_options():
    from wsd.errors import UsageError
    from wsd.report import ReportOptions

    assert ReportOptions().playback_rate == "auto" and ReportOptions().clip_context == 1.0
    assert ReportOptions(playback_rate="AUTO").playback_rate == "auto"
    assert ReportOptions(playback_rate="10").playback_rate == 10.0
    assert ReportOptions(playback_rate=0.5).playback_rate == 0.5
    for bad in ("fast", 0, -2, float("inf"), "nan"):
        with pytest.raises(UsageError, match="--playback-rate"):
            ReportOptions(playback_rate=bad)
    for bad in (-1.0, float("nan")):
        with pytest.raises(UsageError, match="--clip-context"):
            ReportOptions(clip_context=bad)


# ------------------------------------------------------------------ the written WAV

def _writer(tmp_path, **kw):
    from wsd.report.clips import ClipWriter

    warnings = []
    w = ClipWriter(tmp_path, kw.pop("max_clips", 10), kw.pop("max_seconds", 10.0),
                   lambda m, p=None: warnings.append(m), **kw)
    return w, warnings


def test_50hz_clip_is_sped_up_ten_times_with_context(tmp_path):
    src = _tone(tmp_path / "low.wav", 50, 20.0, 60.0)
    w, warnings = _writer(tmp_path, context=1.0)
    w.request("ev", str(src), 32.0, 36.0, (0,), rate=50)
    clip = w.write_all()["ev"]
    assert not warnings
    assert clip.speed == 10 and clip.start_s == 31.0
    assert clip.duration_s == pytest.approx(6.0) and clip.event == pytest.approx((1.0, 5.0))
    info = sf.info(tmp_path / clip.src)
    assert info.samplerate == 8000
    assert info.frames == pytest.approx(6.0 / 10 * 8000, abs=16)  # 6 s heard in 0.6 s
    assert _peak_hz(tmp_path / clip.src) == pytest.approx(200.0, abs=3)  # 20 Hz -> 200 Hz
    assert w.speeds == {10.0}


def test_2khz_clip_keeps_its_speed_and_is_resampled_to_play(tmp_path):
    src = _tone(tmp_path / "rw.wav", 2000, 150.0, 10.0)
    w, _ = _writer(tmp_path, context=0.5)
    w.request("up", str(src), 4.0, 5.0, (0,), rate=2000)
    clip = w.write_all()["up"]
    info = sf.info(tmp_path / clip.src)
    assert clip.speed == 1 and info.samplerate == 8000
    assert info.duration == pytest.approx(2.0, abs=0.01)
    assert _peak_hz(tmp_path / clip.src) == pytest.approx(150.0, abs=2)


def test_forced_speed_and_analysis_rate_cap(tmp_path):
    src = _tone(tmp_path / "hi.wav", 44100, 1000.0, 4.0)
    w, _ = _writer(tmp_path, context=0.0, playback=2.0)
    w.request("a", str(src), 1.0, 2.0, (0,), rate=22050)
    clip = w.write_all()["a"]
    info = sf.info(tmp_path / clip.src)
    assert clip.speed == 2 and info.samplerate == 44100  # cut to 22050 Hz, then x2
    assert info.duration == pytest.approx(0.5, abs=0.01)
    assert _peak_hz(tmp_path / clip.src) == pytest.approx(2000.0, abs=5)


def test_context_stops_at_the_recording_and_the_clip_length_includes_it(tmp_path):
    src = _tone(tmp_path / "r.wav", 8000, 440.0, 5.0)
    w, _ = _writer(tmp_path, context=1.0, max_seconds=3.0)
    w.request("start", str(src), 0.3, 1.0, (0,))
    w.request("end", str(src), 4.5, 5.0, (1,))
    w.request("long", str(src), 2.0, 4.9, (2,))
    got = w.write_all()
    assert got["start"].start_s == 0 and got["start"].event == pytest.approx((0.3, 1.0))
    assert got["start"].duration_s == pytest.approx(2.0)
    assert got["end"].start_s == 3.5 and got["end"].duration_s == pytest.approx(1.5)
    assert got["end"].event == pytest.approx((1.0, 1.5))
    assert got["long"].duration_s == pytest.approx(3.0)  # --clip-seconds caps the whole
    assert got["long"].event == pytest.approx((1.0, 3.0))  # the event's end is cut


def test_timeline_excerpt_has_no_context_and_no_cap(tmp_path):
    src = _tone(tmp_path / "low.wav", 50, 20.0, 120.0)
    w, _ = _writer(tmp_path, context=1.0, max_seconds=10.0)
    clip = w.timeline("tl", str(src), 30.0, 90.0)
    assert clip.event is None and clip.start_s == 30.0 and clip.speed == 10
    assert clip.duration_s == pytest.approx(60.0)
    assert sf.info(tmp_path / clip.src).duration == pytest.approx(6.0, abs=0.01)
    assert not w.requests  # timelines do not count against --max-clips
