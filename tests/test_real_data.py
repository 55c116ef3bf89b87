"""Every real recording in ../shared/data/real slices, and its duration matches index.csv.

The recordings (wav, mp3, 16/32-bit PCM and float, mono and stereo, 50 Hz to 96 kHz, 0.4 s to
5.5 h) are not shipped with wsd; the tests skip with the reason when the folder is absent.
"""

import csv
from collections import defaultdict

import numpy as np
import pytest

from conftest import real_or_skip
from wsd.io.store import open_file


@pytest.fixture(scope="module")
def index():
    root = real_or_skip()
    path = real_or_skip("index.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["file"] = root / r["source"] / r["path"]
    return rows


def by_rate(index):
    groups = defaultdict(list)
    for r in index:
        groups[int(r["samplerate"])].append(r)
    return groups


def check(out, rows, sample_rate):
    with open_file(out, "windows") as f:
        src = f.sources
        assert f.spectrogram["sample_rate"] == sample_rate
        n_win = np.bincount(f.read("source_id"), minlength=len(rows))
        padded = f.read("padded")
        sid = f.read("source_id")
    assert list(src["path"]) == [str(r["file"]) for r in rows]
    for i, r in enumerate(rows):
        sr = int(r["samplerate"])
        assert src["native_sample_rate"][i] == sr and src["channels"][i] == int(r["channels"])
        assert src["frames_decoded"][i] / sr == pytest.approx(float(r["duration_s"]), abs=2e-3)
        assert src["frames_decoded"][i] == src["frames_header"][i], r["path"]
        assert src["status"][i] in ("ok", "short"), (r["path"], src["message"][i])
        assert n_win[i] == src["n_windows"][i] >= 1
        assert padded[sid == i].any() == (src["status"][i] == "short")


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 2000, 96000, 64000])
def test_every_file_slices_at_its_native_rate(wsd, index, tmp_path, rate):
    rows = by_rate(index)[rate]
    if not rows:
        pytest.skip(f"no real recording at {rate} Hz in index.csv")
    out = tmp_path / "w.h5"
    r = wsd("slice", *[x["file"] for x in rows], "-o", out, "-q")
    assert r.code == 0, r.err
    check(out, rows, rate)


def test_the_50_hz_seismometer_files_including_5_5_hours(wsd, index, tmp_path):
    rows = by_rate(index)[50]
    if not rows:
        pytest.skip("no 50 Hz recording in index.csv")
    assert max(float(r["duration_s"]) for r in rows) > 5 * 3600
    from conftest import SEED_SLICE

    for extra, window_s in ([], 168.96), (["--n-fft", "64", "--hop-length", "32"], 21.12):
        out = tmp_path / f"w{len(extra)}.h5"
        r = wsd("slice", *[x["file"] for x in rows], "-o", out, "-q", *SEED_SLICE, *extra)
        assert r.code == 0, r.err
        check(out, rows, 50)
        with open_file(out) as f:
            long = f.read("source_id") == 0
            assert f.read("end_s")[long][0] - f.read("start_s")[long][0] == \
                pytest.approx(window_s)


def test_everything_resampled_to_one_rate(wsd, index, tmp_path):
    rows = [r for r in index if int(r["samplerate"]) > 50 and float(r["duration_s"]) < 100]
    out = tmp_path / "w.h5"
    r = wsd("slice", *[x["file"] for x in rows], "-o", out, "-q", "--sample-rate", "16000")
    assert r.code == 0, r.err
    with open_file(out) as f:
        src = f.sources
        assert f.spectrogram["sample_rate"] == 16000
    want = np.array([float(x["duration_s"]) for x in rows])
    np.testing.assert_allclose(src["duration_s"], want, atol=2e-3)
    assert len(set(src["native_sample_rate"])) >= 5
