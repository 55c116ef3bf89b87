"""Tests of the synthetic recording generator (wsd.datasets.synth) and its script examples/synth.py."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from wsd.datasets import synth
from wsd.errors import OutputError, UsageError

SEEDS = range(3)  # random draws per call-type check
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _call(kind: str, sr: int, seed: int) -> tuple[np.ndarray, dict]:
    return synth.call_with_params(kind, sr, np.random.default_rng(seed))


def _mean_spectrum(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and time-averaged power of a 512-point spectrogram, as wsd slices."""
    f, _, s = signal.spectrogram(x, sr, nperseg=512, noverlap=256)
    return f, s.mean(axis=1)


def _peak_intervals(x: np.ndarray, sr: int, min_gap_s: float) -> np.ndarray:
    """Seconds between successive envelope peaks above a third of the maximum."""
    env = np.abs(signal.hilbert(x))
    peaks, _ = signal.find_peaks(env, height=env.max() / 3, distance=max(1, int(min_gap_s * sr)))
    return np.diff(peaks) / sr


def _dominant_hz(x: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the strongest component of a Hann-windowed segment (8x zero padding)."""
    n = 8 * x.size
    return float(np.fft.rfftfreq(n, 1 / sr)[np.argmax(np.abs(np.fft.rfft(x * np.hanning(x.size), n)))])


# ---------------------------------------------------------------- single calls


@pytest.mark.parametrize("kind", synth.CALL_TYPES)
def test_call_is_deterministic_finite_and_sized(kind):
    a, pa = _call(kind, 44100, 3)
    b, pb = _call(kind, 44100, 3)
    c, _ = _call(kind, 44100, 4)
    np.testing.assert_array_equal(a, b)
    assert pa == pb
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert a.ndim == 1 and np.all(np.isfinite(a))
    assert np.max(np.abs(a)) == pytest.approx(1.0)
    assert 0.3 <= a.size / 44100 <= 1.6
    json.dumps(pa)  # parameters go into truth.json


@pytest.mark.parametrize("sr", synth.SAMPLE_RATES)
def test_whistle_energy_lies_in_its_contour_band(sr):
    for seed in SEEDS:
        x, p = _call("whistle", sr, seed)
        f, power = _mean_spectrum(x, sr)
        peak = f[np.argmax(power)]
        assert p["f_min_hz"] - 100 <= peak <= p["f_max_hz"] + 100
        assert 1000 <= p["f_min_hz"] < p["f_max_hz"] <= 0.4 * sr
        assert power[f < 800].sum() < 0.01 * power.sum()  # tonal, not low-frequency


@pytest.mark.parametrize("sr", synth.SAMPLE_RATES)
def test_upcall_rises_between_300_and_1000_hz(sr):
    for seed in SEEDS:
        x, p = _call("upcall", sr, seed)
        f, _, s = signal.spectrogram(x, sr, nperseg=512, noverlap=256)
        track = f[np.argmax(s, axis=0)]
        q = track.size // 4
        assert np.median(track[-q:]) > np.median(track[:q]) + 150  # bins are 43-94 Hz wide
        assert 150 < np.median(track[:q]) < 500 and 600 < np.median(track[-q:]) < 1100
        assert p["f_start_hz"] < p["f_end_hz"]


@pytest.mark.parametrize("sr", synth.SAMPLE_RATES)
def test_click_train_is_impulsive_broadband_and_sparse(sr):
    for seed in SEEDS:
        x, p = _call("clicks", sr, seed)
        crest = np.max(np.abs(x)) / np.sqrt(np.mean(x**2))
        assert crest > 6
        f, power = _mean_spectrum(x, sr)
        band = f[power > power.max() / 10]  # 10 dB bandwidth
        assert band.max() - band.min() > 3000
        ici = np.median(_peak_intervals(x, sr, 0.003))
        assert 0.0045 <= ici <= 0.021
        assert ici == pytest.approx(p["median_ici_s"], rel=0.1)


@pytest.mark.parametrize("sr", synth.SAMPLE_RATES)
def test_burst_pulse_is_a_dense_click_train(sr):
    for seed in SEEDS:
        x, p = _call("burst", sr, seed)
        ici = np.median(_peak_intervals(x, sr, 0.0008))
        assert 1 / 900 * 0.95 <= ici <= 1 / 300 * 1.05
        assert ici == pytest.approx(p["median_ici_s"], rel=0.1)
        f, power = _mean_spectrum(x, sr)
        fc = p["click_fc_hz"]
        assert power[(f > fc / 2) & (f < 2 * fc)].sum() > 0.8 * power.sum()  # the clicks' band


@pytest.mark.parametrize("sr", synth.SAMPLE_RATES)
def test_pulsed_call_steps_in_pitch(sr):
    for seed in SEEDS:
        x, p = _call("pulsed", sr, seed)
        step = int(p["step_s"] * sr)
        before = _dominant_hz(x[step // 4: step - step // 8], sr)  # the fundamental is strongest
        after = _dominant_hz(x[step + (x.size - step) // 8:], sr)
        assert before == pytest.approx(p["f0_before_hz"], rel=0.04)  # 5 % drift over the call
        assert after == pytest.approx(p["f0_after_hz"], rel=0.04)
        assert max(before, after) / min(before, after) > 1.25
        assert np.max(np.abs(x)) / np.sqrt(np.mean(x**2)) < 6  # tonal stack, not clicks


def test_unknown_call_type_and_colour_are_refused():
    with pytest.raises(UsageError, match="whistle"):
        synth.make_call("moan", 44100, np.random.default_rng(0))
    with pytest.raises(UsageError, match="pink"):
        synth.ocean_noise(100, 44100, np.random.default_rng(0), colour="green")


@pytest.mark.parametrize("colour,expected_slope", [("pink", -3.0), ("brown", -6.0)])
def test_ocean_noise_has_unit_rms_and_its_colour(colour, expected_slope):
    x = synth.ocean_noise(2**18, 44100, np.random.default_rng(1), colour, floor_db=-80)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0)
    f, p = signal.welch(x, 44100, nperseg=4096)
    sel = (f > 200) & (f < 6400)
    slope = np.polyfit(np.log2(f[sel]), 10 * np.log10(p[sel]), 1)[0]  # dB per octave
    assert slope == pytest.approx(expected_slope, abs=0.5)


# ---------------------------------------------------------------- recordings


def _check_tiling(events, gaps, duration_s):
    spans = sorted([(e["start_s"], e["end_s"], "e") for e in events] + [(a, b, "g") for a, b in gaps])
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(duration_s)
    for (a0, b0, k0), (a1, b1, k1) in zip(spans, spans[1:]):
        assert a0 < b0 and b0 == pytest.approx(a1) and not (k0 == k1 == "e")


def test_recording_events_tile_with_gaps_and_stand_out():
    sr, dur, dbfs = 22050, 60.0, -45.0
    x, events, gaps, silent = synth.make_recording(sr, dur, np.random.default_rng(7), colour="brown",
                                                   noise_dbfs=dbfs, digital_silence_s=3.0)
    x2, events2, _, _ = synth.make_recording(sr, dur, np.random.default_rng(7), colour="brown",
                                             noise_dbfs=dbfs, digital_silence_s=3.0)
    np.testing.assert_array_equal(x, x2)
    assert events == events2
    assert x.dtype == np.float32 and x.shape == (int(dur * sr),) and np.max(np.abs(x)) <= 1.0
    _check_tiling(events, gaps, dur)
    assert {e["label"] for e in events} == set(synth.CALL_TYPES)
    assert gaps[0][1] - gaps[0][0] >= 0.5 and gaps[-1][1] - gaps[-1][0] >= 0.5
    assert min(b - a for a, b in gaps[1:-1]) >= 0.8
    assert all(10.0 - 1e-9 <= e["snr_db"] <= 25.0 + 1e-9 for e in events)
    # digital silence lies inside a gap, 0.5 s from any call, and is near-silent
    (s0, s1), = silent
    assert any(a + 0.5 - 1e-6 <= s0 and s1 <= b - 0.5 + 1e-6 for a, b in gaps)
    assert np.sqrt(np.mean(x[int((s0 + 0.01) * sr): int((s1 - 0.01) * sr)] ** 2)) < 3e-5
    # every wsd-sized window (32 frames of 256) inside a call is louder than any inside noise
    win = 32 * 256 + 256

    def windows_within(spans):
        return [x[i:i + win] for a, b in spans for i in range(int(a * sr), int(b * sr) - win + 1, win)]
    noise_spans = [(a, b) for a, b in gaps if not (a <= s0 and s1 <= b)]
    rms_call = [np.sqrt(np.mean(w**2)) for w in windows_within([(e["start_s"], e["end_s"]) for e in events])]
    rms_noise = [np.sqrt(np.mean(w**2)) for w in windows_within(noise_spans)]
    assert len(rms_call) > 10 and len(rms_noise) > 30
    assert min(rms_call) > 1.5 * max(rms_noise)
    assert np.median(rms_noise) == pytest.approx(10 ** (dbfs / 20), rel=0.3)


def test_recording_refuses_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(UsageError):
        synth.make_recording(44100, 1.0, rng)
    with pytest.raises(UsageError):
        synth.make_recording(44100, 10.0, rng, kinds=("song",))


# ---------------------------------------------------------------- written data set


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    summary = synth.write_dataset(out, seed=11, minutes=0.6, n_files=3, clips_per_type=2)
    return out, summary


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dataset_files_read_back_as_declared(dataset):
    out, summary = dataset
    truth = json.loads((out / "truth.json").read_text())
    assert [f["path"] for f in truth["files"]] == summary["files"]
    assert {f["format"] for f in truth["files"]} == {"WAV", "FLAC", "MP3"}
    assert {f["sample_rate"] for f in truth["files"]} == set(synth.SAMPLE_RATES)
    assert sum(f["digital_silence"] != [] for f in truth["files"]) == 2
    for f in truth["files"]:
        x, sr = sf.read(out / f["path"], dtype="float32")
        info = sf.info(out / f["path"])
        assert sr == f["sample_rate"] and info.channels == 1 and info.format == f["format"]
        assert x.size == f["n_samples"]  # mp3 too: libsndfile writes it gapless
        _check_tiling(f["events"], [tuple(g) for g in f["gaps"]], f["duration_s"])
        # calls are where truth says, also after mp3 coding: louder than the noise beside them
        for e in f["events"]:
            a, b = int(e["start_s"] * sr), int(e["end_s"] * sr)
            call = np.sqrt(np.mean(x[a:b] ** 2))
            around = np.concatenate([x[max(0, a - sr // 4): a], x[b: b + sr // 4]])
            assert call > 2.0 * np.sqrt(np.mean(around**2)), (f["path"], e["label"], e["start_s"])


def test_labels_csv_matches_truth_and_points_to_files(dataset):
    out, summary = dataset
    truth = json.loads((out / "truth.json").read_text())
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["path", "start_s", "end_s", "label"]
    assert len(rows) == summary["n_events"] == sum(len(f["events"]) for f in truth["files"])
    dur = {f["path"]: f["duration_s"] for f in truth["files"]}
    for r in rows:
        assert (out / r["path"]).is_file()
        assert 0 <= float(r["start_s"]) < float(r["end_s"]) <= dur[r["path"]]
        assert r["label"] in synth.CALL_TYPES
    with open(out / "clips" / "labels.csv", newline="") as fh:
        clips = list(csv.DictReader(fh))
    assert list(clips[0]) == ["path", "label"]
    assert sorted(c["label"] for c in clips) == sorted(list(synth.CALL_TYPES) * 2)
    for c in clips:
        x, sr = sf.read(out / "clips" / c["path"])
        assert x.ndim == 1 and 0.6 <= x.size / sr <= 2.0


def test_dataset_is_byte_identical_for_a_seed_and_guards_its_folder(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    synth.write_dataset(again, seed=11, minutes=0.6, n_files=3, clips_per_type=2)
    assert _digest(again) == _digest(out)
    with pytest.raises(OutputError):
        synth.write_dataset(again, seed=11, minutes=0.6, n_files=3, clips_per_type=2)
    (again / "notes.txt").write_text("mine")
    synth.write_dataset(again, seed=12, minutes=0.2, n_files=1, clips_per_type=1, force=True)
    names = set(_digest(again))
    assert "recordings/rec_02.mp3" not in names and "notes.txt" in names  # stale files go, others stay
    assert _digest(again)["recordings/rec_00.wav"] != _digest(out)["recordings/rec_00.wav"]


def test_example_script_writes_a_set_and_reports_status(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("synth_example", EXAMPLES / "synth.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "demo"
    argv = [str(out), "--seed", "1", "--minutes", "0.2", "--n-files", "2", "--clips-per-type", "1"]
    assert script.main(argv) == 0
    assert "2 recordings" in capsys.readouterr().err
    assert (out / "truth.json").is_file() and len(list((out / "recordings").iterdir())) == 2
    assert script.main(argv) == int(OutputError.status)
    assert "not empty" in capsys.readouterr().err
