"""wsd slice / info / export end to end on generated audio."""

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from wsd.dsp.spectrogram import SpectrogramParams, spectrogram_windows
from wsd.io.store import open_file


@pytest.fixture
def wsd(wsd):
    """These tests check the seeds' spectrogram conventions: slice with the seeds' flags."""
    from conftest import with_seed_slice

    return with_seed_slice(wsd)


def test_slice_folder_windows_times_and_values(wsd, audio_dir, tmp_path):
    out = tmp_path / "win.h5"
    r = wsd("slice", audio_dir, "-o", out)
    assert r.code == 0, r.err
    assert r.out == ""
    with open_file(out, "windows") as f:
        src = f.sources
        assert [p.split("/")[-1] for p in src["path"]] == ["a.wav", "b.flac", "c.mp3"]
        w = f.read("windows")
        assert w.dtype == np.float16 and w.shape[1:] == (32, 256)
        sid, st, en = f.read("source_id"), f.read("start_s"), f.read("end_s")
        # a.wav: 44100 samples -> 1 + (44100-512)//256 = 171 frames -> 5 windows of 32
        assert (sid == 0).sum() == 5
        np.testing.assert_allclose(st[sid == 0], np.arange(5) * 32 * 256 / 22050)
        np.testing.assert_allclose(en[sid == 0] - st[sid == 0], (31 * 256 + 512) / 22050)
        # values equal the whole-signal computation
        x = sf.read(audio_dir / "a.wav", dtype="float32")[0]
        ref = spectrogram_windows(x, SpectrogramParams(sample_rate=22050))
        np.testing.assert_allclose(w[sid == 0].astype(np.float32), ref, atol=0.07)
        assert f.spectrogram["n_fft"] == 512 and f.params["dtype"] == "float16"
        assert "slice" in f.history[0]


def test_slice_step_fmin_fmax_float32(wsd, audio_dir, tmp_path):
    out = tmp_path / "w.h5"
    r = wsd("slice", audio_dir / "a.wav", "-o", out, "--step", "16", "--fmin", "500",
            "--fmax", "4000", "--dtype", "float32")
    assert r.code == 0, r.err
    with open_file(out) as f:
        freqs = f.read("freqs")
        assert freqs.min() >= 500 and freqs.max() <= 4000
        assert f.shape("windows") == (1 + (171 - 32) // 16, 32, len(freqs))
        assert f.dtype("windows") == np.float32


def test_info_and_export(wsd, audio_dir, tmp_path):
    out = tmp_path / "win.h5"
    assert wsd("slice", audio_dir, "-o", out, "-q").code == 0
    r = wsd("info", out, "--json")
    d = json.loads(r.out)
    assert d["kind"] == "windows" and d["sources"]["count"] == 3
    assert d["datasets"]["windows"]["shape"][1:] == [32, 256]
    r = wsd("info", out)
    assert "windows file" in r.out and "history:" in r.out
    r = wsd("export", out)
    lines = r.out.strip().split("\n")
    assert lines[0] == "path,start_s,end_s,label"
    with open_file(out) as f:
        assert len(lines) == f.n + 1


def test_labels_events_and_raven_roundtrip(wsd, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    sf.write(d / "rec one.wav", tone(22050, 3.0), 22050)
    lab = tmp_path / "labels.csv"
    lab.write_text("path,start_s,end_s,label\nrec one.wav,0.4,1.2,whistle\n"
                   "rec one.wav,2.0,2.9,clicks\n")
    out = tmp_path / "w.h5"
    r = wsd("slice", d, "-o", out, "--labels", lab)
    assert r.code == 0, r.err
    with open_file(out) as f:
        st, en, lab_ = f.read("start_s"), f.read("end_s"), f.read("label")
    # windows of 0.3715 s every 0.3715 s: label = event covering most of the window
    for a, b, l in zip(st, en, lab_):
        ov_w = max(0, min(b, 1.2) - max(a, 0.4))
        ov_c = max(0, min(b, 2.9) - max(a, 2.0))
        want = "" if max(ov_w, ov_c) == 0 else ("whistle" if ov_w >= ov_c else "clicks")
        assert l == want
    raven = tmp_path / "sel.txt"
    raven.write_text(wsd("export", out, "--format", "raven").out)
    out2 = tmp_path / "w2.h5"
    assert wsd("slice", d, "-o", out2, "--labels", raven).code == 0
    with open_file(out2) as f:
        assert list(f.read("label")) == list(lab_)


def test_clip_labels(wsd, audio_dir, tmp_path):
    lab = tmp_path / "clips.csv"
    lab.write_text("path,label\naudio/a.wav,A\nb.flac,B\n")
    out = tmp_path / "w.h5"
    r = wsd("slice", audio_dir, "-o", out, "--labels", lab)
    assert r.code == 0, r.err
    with open_file(out) as f:
        sid, labs = f.read("source_id"), f.read("label")
    assert set(labs[sid == 0]) == {"A"} and set(labs[sid == 1]) == {"B"}
    assert set(labs[sid == 2]) == {""}


def test_resample_and_rate_mismatch(wsd, tmp_path):
    d = tmp_path / "mix"
    d.mkdir()
    sf.write(d / "x.wav", tone(44100, 1.0), 44100)
    sf.write(d / "y.wav", tone(48000, 1.0), 48000)
    r = wsd("slice", d, "-o", tmp_path / "w.h5")
    assert r.code == 2 and "--sample-rate" in r.err and "44100" in r.err
    r = wsd("slice", d, "-o", tmp_path / "w.h5", "--sample-rate", "22050")
    assert r.code == 0, r.err
    with open_file(tmp_path / "w.h5") as f:
        assert f.spectrogram["sample_rate"] == 22050
        assert list(f.sources["native_sample_rate"]) == [44100, 48000]
        np.testing.assert_allclose(f.sources["duration_s"], [1.0, 1.0], atol=1e-3)


def test_short_file_padded_with_warning(wsd, tmp_path):
    sf.write(tmp_path / "tiny.wav", tone(22050, 100 / 22050), 22050)
    r = wsd("slice", tmp_path / "tiny.wav", "-o", tmp_path / "w.h5")
    assert r.code == 0 and "padded" in r.err
    with open_file(tmp_path / "w.h5") as f:
        assert f.n == 1 and bool(f.read("padded")[0])
        assert f.read("end_s")[0] == pytest.approx(100 / 22050)
        assert f.sources["status"][0] == "short"


def test_existing_output_needs_force(wsd, audio_dir, tmp_path):
    out = tmp_path / "w.h5"
    out.write_bytes(b"precious")
    r = wsd("slice", audio_dir, "-o", out)
    assert r.code == 73 and "--force" in r.err
    assert out.read_bytes() == b"precious"
    assert wsd("slice", audio_dir, "-o", out, "--force").code == 0


def test_virtual_join_and_missing_shards(wsd, audio_dir, tmp_path):
    out = tmp_path / "v.h5"
    merged = tmp_path / "m.h5"
    assert wsd("slice", audio_dir, "-o", out, "--join", "virtual").code == 0
    assert wsd("slice", audio_dir, "-o", merged, "--join", "merge").code == 0
    assert (tmp_path / "v.h5.shards").is_dir() and not (tmp_path / "m.h5.shards").exists()
    with open_file(out) as a, open_file(merged) as b:
        np.testing.assert_array_equal(a.read("windows"), b.read("windows"))
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "v.h5").write_bytes(out.read_bytes())
    r = wsd("info", moved / "v.h5")
    assert r.code == 65 and "shard" in r.err and "missing" in r.err


def test_workers_equal_single(wsd, audio_dir, tmp_path, monkeypatch):
    import wsd.pipeline.slice as sl

    monkeypatch.setattr(sl, "GROUP_FILES", 1)  # three tasks, so that the pool runs
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert wsd("slice", audio_dir, "-o", a).code == 0
    assert wsd("slice", audio_dir, "-o", b, "--workers", "2").code == 0
    with open_file(a) as x, open_file(b) as y:
        np.testing.assert_array_equal(x.read("windows"), y.read("windows"))
        np.testing.assert_array_equal(x.read("start_s"), y.read("start_s"))


def test_usage_errors_exit_2_without_traceback(wsd, audio_dir):
    for args in (["slice", audio_dir], ["slice", audio_dir, "-o", "x.h5", "--bogus"],
                 ["nosuchcommand"]):
        r = wsd(*args)
        assert r.code == 2, (args, r.err)
        assert "Traceback" not in r.err


def test_start_up_imports_nothing_heavy(tmp_path):
    """``wsd --help`` starts without scipy.fft, torch or matplotlib, and ``wsd slice``
    without torch or matplotlib (imports are most of a short run's cost: issue 13)."""
    import subprocess
    import sys

    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(8000, np.float32), 8000)
    code = ("import sys, contextlib, io\n"
            "from wsd.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    rc = main(sys.argv[1:])\n"
            "heavy = [m for m in ('torch', 'matplotlib', 'scipy.fft') if m in sys.modules]\n"
            "print(rc, ' '.join(heavy))\n")
    help_ = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True,
                           text=True, check=True).stdout.split()
    assert help_ == ["0"], help_
    sl = subprocess.run([sys.executable, "-c", code, "slice", str(audio), "-o",
                         str(tmp_path / "w.h5"), "-q"], capture_output=True, text=True,
                        check=True).stdout.split()
    assert sl[0] == "0" and "torch" not in sl and "matplotlib" not in sl, sl


def test_workers_fork_server_starts_from_the_raw_arguments(tmp_path, monkeypatch):
    """`slice --workers N` with several inputs starts the fork server before parsing (its
    imports overlap with the coordinator's); not for one worker, one file, --scheduler,
    --help or a --workers the parser will refuse."""
    import wsd.runtime.executor as ex
    from wsd.cli.early import start_early
    from wsd.pipeline.slice import PRELOAD

    started = []
    monkeypatch.setattr(ex, "start_workers", lambda n, preload: started.append((n, preload)))
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for p in (a, b):
        p.write_bytes(b"x")
    cases = [(["--workers", "2", a, b], 2), (["-j3", a, b], 3), (["--workers=2", tmp_path], 2),
             (["-j", "2", "@list.txt"], 2), (["-j", "2", "--", a, b], 2),
             (["--workers", "2", a], None), (["-j", "1", a, b], None),
             (["-j", "2", a, b, "--scheduler", "tcp://h:1"], None),
             (["-j", "2", a, b, "--help"], None), (["-j", "two", a, b], None), ([a, b], None)]
    for args, want in cases:
        started.clear()
        start_early(["slice", *map(str, args), "-o", str(tmp_path / "o.h5")])
        assert started == ([(want, PRELOAD)] if want else []), args


def test_workers_start_with_their_share_of_the_blas_threads(tmp_path, monkeypatch):
    """Before the coordinator or the fork server imports numpy, `slice --workers N` limits
    the BLAS/OpenMP thread pools to the workers' share of the cores (numpy's idle BLAS
    threads spin while both processes import), unless the user set them."""
    import os

    import wsd.runtime.executor as ex
    from wsd.cli import early

    monkeypatch.setattr(ex, "start_workers", lambda n, preload: None)
    monkeypatch.setattr(ex, "cpu_count", lambda: 8)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for p in (a, b):
        p.write_bytes(b"x")
    env = {"MKL_NUM_THREADS": "3"}
    monkeypatch.setattr(os, "environ", env)
    early.start_early(["slice", str(a), str(b), "--workers", "2", "-o", "o.h5"])
    assert env == {"OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "3"}
    env.clear()
    early.start_early(["slice", str(a), str(b), "--workers", "16", "-o", "o.h5"])
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    env.clear()
    early.start_early(["slice", str(a), "--workers", "2", "-o", "o.h5"])  # one task
    assert env == {}
