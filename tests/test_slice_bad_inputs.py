"""wsd slice against every bad input of issue 2: one error line, the right exit status, nothing
half-written; odd but valid files slice; SIGKILL at any moment leaves no output or a complete
one, and the re-run resumes to the same result."""

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from wsd.io.store import open_file
from wsd.runtime.shards import ShardFolder


def shard_folder(out):
    return ShardFolder(out).path


@pytest.fixture
def run(capfd, monkeypatch):
    """``wsd ARGS`` in-process with stdout/stderr captured at the file-descriptor level, so
    anything a C library prints is caught too."""
    from wsd.cli.main import main

    def go(*args, cwd=None, stdin=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capfd.readouterr()
        if args and args[0] == "slice":  # the seeds' conventions, which these tests check
            from conftest import SEED_SLICE

            args = ("slice", *SEED_SLICE, *args[1:])
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return type("R", (), {"code": code, "out": out, "err": err,
                              "__repr__": lambda s: f"R({s.code}, {s.err!r})"})()
    return go


def leftovers(folder):
    """Temporary files anywhere under folder."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def assert_clean_failure(r, code, name, out):
    assert r.code == code, r
    lines = r.err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("wsd: error: ") and name in lines[0], r
    assert "Traceback" not in r.err and r.out == ""
    assert not out.exists() and not shard_folder(out).exists()
    assert leftovers(out.parent) == []


def sources(out):
    with open_file(out) as f:
        return f.sources


SR = 22050


@pytest.fixture
def bad(tmp_path):
    """One file of each unusable kind, and one good file."""
    d = tmp_path / "in"
    d.mkdir()
    x = tone(SR, 2.0)
    sf.write(d / "good.wav", x, SR)
    (d / "empty.wav").write_bytes(b"")
    (d / "empty.mp3").write_bytes(b"")
    (d / "random.mp3").write_bytes(np.random.default_rng(0).bytes(80_000))
    (d / "text.wav").write_text("RIFF? no, just text\n" * 40)
    y = x.copy()
    y[30000] = np.nan
    sf.write(d / "nan.wav", y, SR, subtype="FLOAT")
    y[30000], y[100] = 0, np.inf
    sf.write(d / "inf.wav", y, SR, subtype="FLOAT")
    (d / "x.wav").mkdir()  # a folder named like a file, holding no audio
    return d


@pytest.mark.parametrize("name,code,reason", [
    ("empty.wav", 65, "file is empty"),
    ("empty.mp3", 65, "file is empty"),
    ("random.mp3", 65, "cannot decode audio (not a recognisable audio file; decoder said: "
                       "Giving up searching valid MPEG header"),
    ("text.wav", 65, "cannot decode audio (Format not recognised)"),
    ("nan.wav", 65, "contains NaN or infinite samples (first at 1.361 s"),
    ("inf.wav", 65, "contains NaN or infinite samples (first at 0.005 s"),
    ("x.wav", 66, "folder holds no audio files"),
    ("missing.wav", 66, "no such file or folder"),
])
def test_unusable_input_is_one_error_line_and_no_output(run, bad, tmp_path, name, code, reason):
    out = tmp_path / "w.h5"
    r = run("slice", f"in/{name}", "-o", out, cwd=tmp_path)
    assert_clean_failure(r, code, f"in/{name}: ", out)
    assert reason in r.err
    # the same file discovered while slicing (--sample-rate skips the header survey)
    if code == 65:
        r = run("slice", "in/good.wav", f"in/{name}", "-o", out, "--sample-rate", SR)
        assert r.code == 65 and f"wsd: error: in/{name}: " in r.err, r
        assert not out.exists() and leftovers(tmp_path) == []


def test_skip_bad_keeps_going_and_records_each_bad_file(run, bad, tmp_path):
    out = tmp_path / "w.h5"
    names = ["good.wav", "empty.wav", "random.mp3", "text.wav", "nan.wav", "inf.wav",
             "empty.mp3"]
    r = run("slice", *[f"in/{n}" for n in names], "-o", out, "--skip-bad", cwd=tmp_path)
    assert r.code == 0, r
    warned = [ln for ln in r.err.splitlines() if ": skipped: " in ln]
    assert len(warned) == 6 and all(ln.startswith("wsd slice: warning: in/") for ln in warned)
    assert "1/7 files -> 5 windows" in r.err and "6 skipped as bad" in r.err
    s = sources(out)
    assert [p.split("/")[-1] for p in s["path"]] == names
    assert list(s["status"]) == ["ok"] + ["bad"] * 6
    assert s["message"][0] == "" and all(s["message"][1:])
    assert "NaN" in s["message"][4] and s["n_windows"][4] == 0
    with open_file(out) as f:
        assert set(f.read("source_id")) == {0} and f.n == 5
    assert leftovers(tmp_path) == [] and not shard_folder(out).exists()
    r = run("slice", "in/empty.wav", "in/text.wav", "-o", tmp_path / "none.h5", "--skip-bad")
    assert r.code == 65 and "no input file could be sliced" in r.err
    assert not (tmp_path / "none.h5").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("per_group,shards", [(1, 2), (2, 1)])
def test_failure_late_in_a_run_keeps_finished_shards_for_the_rerun(run, bad, tmp_path,
                                                                   monkeypatch, per_group,
                                                                   shards):
    """Finished tasks' shards stay: one per file, or one per group ([ok0 ok1] [nan ok2])."""
    import wsd.pipeline.slice as sl

    monkeypatch.setattr(sl, "GROUP_FILES", per_group)
    d = bad
    for i in range(3):
        sf.write(d / f"ok{i}.wav", tone(SR, 1.0, seed=i), SR)
    out = tmp_path / "w.h5"
    args = ["in/ok0.wav", "in/ok1.wav", "in/nan.wav", "in/ok2.wav"]
    r = run("slice", *args, "-o", out, "--sample-rate", SR, cwd=tmp_path)
    assert r.code == 65 and "in/nan.wav" in r.err and not out.exists()
    assert len(list(shard_folder(out).glob("*.h5"))) == shards and leftovers(tmp_path) == []
    r = run("slice", *args, "-o", out, "--sample-rate", SR, "--skip-bad")
    assert r.code == 0 and "2 resumed" in r.err and "1 skipped as bad" in r.err, r
    assert list(sources(out)["status"]) == ["ok", "ok", "bad", "ok"]
    assert not shard_folder(out).exists()


def test_errors_from_worker_processes_name_the_file_as_given(run, bad, tmp_path, monkeypatch):
    import wsd.pipeline.slice as sl

    monkeypatch.setattr(sl, "GROUP_FILES", 1)  # three tasks, so that the pool runs
    sf.write(bad / "more.wav", tone(SR, 1.0), SR)
    out = tmp_path / "w.h5"
    r = run("slice", "in/good.wav", "in/more.wav", "in/nan.wav", "-o", out, "--workers", "2",
            "--sample-rate", SR, cwd=tmp_path)
    assert r.code == 65 and "wsd: error: in/nan.wav: contains NaN" in r.err, r
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_truncated_file_warns_and_is_marked_truncated(run, tmp_path, fmt):
    x = tone(SR, 4.0)
    sf.write(tmp_path / f"full.{fmt}", x, SR)
    b = (tmp_path / f"full.{fmt}").read_bytes()
    (tmp_path / f"cut.{fmt}").write_bytes(b[: len(b) // 2])
    out = tmp_path / "w.h5"
    r = run("slice", tmp_path / f"cut.{fmt}", "-o", out, "-q")
    assert r.code == 0, r
    (line,) = r.err.strip().split("\n")  # one warning; the decoder's own notes folded in
    assert line.startswith(f"wsd slice: warning: {tmp_path}/cut.{fmt}: ")
    assert "truncated" in line and str(len(x)) in line
    s = sources(out)
    assert s["status"][0] == "truncated" and s["frames_header"][0] == len(x)
    got = s["frames_decoded"][0]
    assert 0.3 * len(x) < got < 0.6 * len(x) and str(got) in line
    with open_file(out) as f:
        assert f.n == (1 + (got - 512) // 256) // 32  # windows from what was decoded


def test_damaged_mp3_is_decoded_past_the_damage_and_marked(run, tmp_path):
    x = tone(SR, 20.0)
    sf.write(tmp_path / "a.mp3", x, SR)
    b = bytearray((tmp_path / "a.mp3").read_bytes())
    b[len(b) // 2 : len(b) // 2 + 1500] = np.random.default_rng(0).bytes(1500)
    (tmp_path / "bad.mp3").write_bytes(bytes(b))
    r = run("slice", tmp_path / "bad.mp3", "-o", tmp_path / "w.h5")
    assert r.code == 0 and "(1 damaged)" in r.err, r
    (warning,) = [ln for ln in r.err.split("\n") if "warning" in ln]
    assert "bad.mp3: decoding errors at" in warning and "file is damaged" in warning
    s = sources(tmp_path / "w.h5")
    assert s["status"][0] == "damaged" and 0.95 * len(x) < s["frames_decoded"][0] < len(x)


def test_sample_formats_and_channels(run, tmp_path):
    x = tone(SR, 1.0)
    six = np.stack([x * (c + 1) / 6 for c in range(6)], axis=1)
    for sub in ("PCM_U8", "PCM_16", "PCM_24", "FLOAT"):
        sf.write(tmp_path / f"{sub}.wav", x, SR, subtype=sub)
    sf.write(tmp_path / "stereo.wav", six[:, [0, 5]], SR, subtype="FLOAT")
    sf.write(tmp_path / "six.wav", six, SR, subtype="FLOAT")
    from wsd.dsp.spectrogram import SpectrogramParams, spectrogram_windows
    p = SpectrogramParams(sample_rate=SR)
    for name, channel, ref, tol in [
            ("PCM_U8.wav", "mix", x, 1.0), ("PCM_16.wav", "mix", x, 0.1),
            ("PCM_24.wav", "mix", x, 0.05), ("FLOAT.wav", "mix", x, 0.05),
            ("stereo.wav", "mix", six[:, [0, 5]].mean(axis=1), 0.05),
            ("stereo.wav", "1", six[:, 5], 0.05), ("six.wav", "mix", six.mean(axis=1), 0.05),
            ("six.wav", "3", six[:, 3], 0.05)]:
        out = tmp_path / "w.h5"
        r = run("slice", tmp_path / name, "-o", out, "--channel", channel, "--force", "-q",
                "--dtype", "float32")
        assert r.code == 0 and r.err == "", r
        with open_file(out) as f:
            w = f.read("windows")
        want = spectrogram_windows(ref.astype(np.float32), p)
        loud = want > (-35 if "U8" in name else -60)  # 8-bit noise is near -50 dB
        np.testing.assert_allclose(w[loud], want[loud], atol=tol, err_msg=name)
    r = run("slice", tmp_path / "six.wav", "-o", tmp_path / "x.h5", "--channel", "6")
    assert_clean_failure(r, 65, "six.wav: has 6 channel(s); --channel 6 does not exist",
                         tmp_path / "x.h5")
    r = run("slice", tmp_path / "six.wav", "-o", tmp_path / "x.h5", "--channel", "left")
    assert r.code == 2 and "--channel must be 'mix' or a channel number" in r.err


@pytest.mark.parametrize("sr,seconds,extra,n_windows", [
    (50, 400.0, [], 2),  # a 512-sample window is 2.8 minutes long at 50 Hz
    (50, 400.0, ["--n-fft", "64", "--hop-length", "32"], 19),
    (2000, 3.0, [], 0), (8000, 2.0, [], 1), (96000, 0.5, [], 5), (192000, 0.5, [], 11),
    (44100, 100 / 44100, [], 0),  # a 100-sample file
])
def test_sample_rates_from_50_hz_to_192_khz(run, tmp_path, sr, seconds, extra, n_windows):
    x = tone(sr, seconds, freq=sr / 7)
    sf.write(tmp_path / "a.wav", x, sr)
    out = tmp_path / "w.h5"
    r = run("slice", tmp_path / "a.wav", "-o", out, "-q", *extra)
    assert r.code == 0, r
    s = sources(out)
    assert s["native_sample_rate"][0] == sr and s["frames_decoded"][0] == len(x)
    with open_file(out) as f:
        assert f.spectrogram["sample_rate"] == sr
        if n_windows and sr == 50 and not extra:  # a 10 s frame: warned about (issue 13)
            assert f.n == n_windows and "frame of 10.2 s" in r.err and "--n-fft 64" in r.err
        elif n_windows:
            assert f.n == n_windows and not f.read("padded").any() and r.err == ""
        else:  # shorter than one window: one padded window, a warning, status 'short'
            assert f.n == 1 and f.read("padded")[0] and s["status"][0] == "short"
            assert "zero-padded into one window" in r.err
            assert f.read("end_s")[0] == pytest.approx(len(x) / sr)


def test_mixed_rates_resampled_to_one(run, tmp_path):
    for sr in (50, 2000, 96000, 192000):
        sf.write(tmp_path / f"{sr}.wav", tone(sr, 1.0, freq=sr / 7), sr)
    out = tmp_path / "w.h5"
    r = run("slice", tmp_path, "-o", out, "-q", "--sample-rate", "8000")
    assert r.code == 0, r
    np.testing.assert_allclose(sources(out)["duration_s"], 1.0, atol=1e-3)


def test_digital_silence_is_all_floor(run, tmp_path):
    sf.write(tmp_path / "s.wav", np.zeros(SR * 3, np.float32), SR)
    r = run("slice", tmp_path / "s.wav", "-o", tmp_path / "w.h5", "-q")
    assert r.code == 0 and r.err == ""
    with open_file(tmp_path / "w.h5") as f:
        w = f.read("windows")
    assert w.shape[0] == 8 and (w == -100).all()


def test_odd_names_spaces_unicode_leading_dash(run, tmp_path):
    for n in ("with space.wav", "ünïcödé 鯨.wav", "-x.wav", "-y.wav"):
        sf.write(tmp_path / n, tone(SR, 1.0), SR)
    out = tmp_path / "out dir é" / "wïn.h5"
    out.parent.mkdir()
    r = run("slice", "-o", out, "-q", "with space.wav", "ünïcödé 鯨.wav", "./-x.wav", "--",
            "-y.wav", cwd=tmp_path)
    assert r.code == 0, r
    assert [p.split("/")[-1] for p in sources(out)["path"]] == ["with space.wav",
                                                                "ünïcödé 鯨.wav", "-x.wav",
                                                                "-y.wav"]
    r = run("export", out)
    assert "ünïcödé 鯨.wav" in r.out


def test_folder_named_like_a_file_is_searched(run, tmp_path):
    (tmp_path / "x.wav").mkdir()
    sf.write(tmp_path / "x.wav" / "inner.flac", tone(SR, 1.0), SR)
    r = run("slice", tmp_path / "x.wav", "-o", tmp_path / "w.h5", "-q")
    assert r.code == 0 and sources(tmp_path / "w.h5")["path"][0].endswith("x.wav/inner.flac")


def test_list_file_and_stdin(run, tmp_path):
    for n in ("a.wav", "b.wav"):
        sf.write(tmp_path / n, tone(SR, 1.0), SR)
    (tmp_path / "l.txt").write_text("# two files\na.wav\n\nb.wav\n")
    r = run("slice", "@l.txt", "-o", "w.h5", "-q", cwd=tmp_path)
    assert r.code == 0 and len(sources(tmp_path / "w.h5")["path"]) == 2
    r = run("slice", "-", "-o", "w2.h5", "-q", stdin="b.wav\na.wav\n")
    assert r.code == 0
    assert [p[-5:] for p in sources(tmp_path / "w2.h5")["path"]] == ["b.wav", "a.wav"]
    r = run("slice", "@nolist.txt", "-o", "w3.h5")
    assert_clean_failure(r, 66, "nolist.txt: list file not found", tmp_path / "w3.h5")


def test_existing_output_without_force_is_untouched(run, tmp_path):
    sf.write(tmp_path / "a.wav", tone(SR, 1.0), SR)
    out = tmp_path / "w.h5"
    out.write_bytes(b"precious")
    r = run("slice", tmp_path / "a.wav", "-o", out)
    assert r.code == 73 and "exists (use --force to overwrite)" in r.err
    assert out.read_bytes() == b"precious" and not shard_folder(out).exists()
    assert leftovers(tmp_path) == []


def test_output_that_is_an_input_is_refused_even_with_force(run, tmp_path):
    sf.write(tmp_path / "a.wav", tone(SR, 1.0), SR)
    before = (tmp_path / "a.wav").read_bytes()
    r = run("slice", tmp_path, "-o", tmp_path / "a.wav", "--force")
    assert r.code == 73 and "is also an input" in r.err
    assert (tmp_path / "a.wav").read_bytes() == before


def test_output_that_cannot_be_created(run, tmp_path):
    sf.write(tmp_path / "a.wav", tone(SR, 1.0), SR)
    for out, msg in [(tmp_path / "nodir" / "w.h5", "does not exist"),
                     (tmp_path, "is a folder")]:
        r = run("slice", tmp_path / "a.wav", "-o", out)
        assert r.code == 73 and msg in r.err and len(r.err.strip().split("\n")) == 1, r
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable")
        r = run("slice", tmp_path / "a.wav", "-o", ro / "w.h5")
        assert r.code == 73 and "is not writable" in r.err and list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_unwritable_output_even_for_root(run, tmp_path):
    if not os.path.isdir("/proc/1"):
        pytest.skip("no /proc")
    sf.write(tmp_path / "a.wav", tone(SR, 1.0), SR)
    r = run("slice", tmp_path / "a.wav", "-o", "/proc/1/w.h5")
    assert r.code == 73 and r.err.startswith("wsd: error: /proc/1/w.h5: ") and \
        len(r.err.strip().split("\n")) == 1, r


# ---------------------------------------------------------------- SIGKILL at any moment

def _kill_when(cmd, cond, timeout=60.0):
    """Start cmd; SIGKILL it as soon as cond() is true (or it ends). True if killed."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        while p.poll() is None and time.monotonic() - t0 < timeout:
            if cond(time.monotonic() - t0):
                p.send_signal(signal.SIGKILL)
                p.wait()
                return True
            time.sleep(0.0005)
        return False
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("join", ["merge", "virtual"])
def test_sigkill_at_any_moment_leaves_no_output_or_a_complete_one(run, tmp_path, join,
                                                                   monkeypatch):
    """Kill -9 a `wsd slice` subprocess at moments picked by watching its files: as slicing
    starts, after some shards, while the joined output is a temporary file, just after the
    rename; then re-run (in-process) and compare with an uninterrupted run. The files are
    sliced two to a task (a group), in the subprocess and in the re-runs."""
    import wsd.pipeline.slice as sl

    monkeypatch.setattr(sl, "GROUP_FILES", 2)
    code = ("import sys, wsd.pipeline.slice as s; s.GROUP_FILES = 2; "
            "from wsd.cli.main import main; sys.exit(main(sys.argv[1:]))")
    grouped = [sys.executable, "-c", code]
    d = tmp_path / "in"
    d.mkdir()
    for i in range(4):
        sf.write(d / f"r{i}.flac", tone(SR, 25.0, freq=500 + 300 * i, seed=i), SR)
    ref = tmp_path / "ref.h5"
    assert run("slice", d, "-o", ref, "-q", "--join", join).code == 0
    with open_file(ref) as f:
        want = {k: f.read(k) for k in ("windows", "start_s", "end_s", "source_id")}
        want_src = f.sources
    out = tmp_path / "w.h5"
    shards = shard_folder(out)

    def n_shards():
        return len(list(shards.glob("*.h5"))) if shards.is_dir() else 0

    def temp_out(t):
        return any(p.name.startswith(".w.h5.") and p.name.endswith(".tmp")
                   for p in tmp_path.iterdir())

    moments = {"merge": [lambda t: shards.is_dir(), lambda t: n_shards() >= 2, temp_out,
                         lambda t: out.exists()],
               "virtual": [lambda t: n_shards() >= 1, temp_out]}[join]
    killed = 0
    for moment in moments:
        from conftest import SEED_SLICE

        killed += _kill_when(grouped + ["slice", *SEED_SLICE, str(d), "-o", str(out), "-q",
                                        "--join", join, "--force"], moment)
        if out.exists():  # a complete file, never a half one
            with open_file(out) as f:
                assert f.n == len(want["start_s"])
                np.testing.assert_array_equal(f.read("windows"), want["windows"])
        r = run("slice", d, "-o", out, "-q", "--join", join, "--force")  # resume
        assert r.code == 0, r
        with open_file(out) as f:
            for k, v in want.items():
                np.testing.assert_array_equal(f.read(k), v, err_msg=k)
            for k in ("path", "frames_decoded", "status"):
                assert list(f.sources[k]) == list(want_src[k])
        assert leftovers(tmp_path) == []
        assert shards.exists() == (join == "virtual")
        out.unlink()
        if join == "virtual":
            for p in shards.iterdir():
                p.unlink()
            shards.rmdir()
    assert killed >= len(moments) - 1  # caught while the run was in flight
