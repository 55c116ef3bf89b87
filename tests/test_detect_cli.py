"""wsd detect end to end: the silence detector on generated recordings with known gaps."""

import dataclasses
import inspect
import json

import numpy as np
import pytest
import soundfile as sf

from wsd.io.store import open_file
from wsd.datasets.synth import make_call, ocean_noise

SR = 16000


@pytest.fixture
def wsd(wsd):
    """These tests check the seeds' spectrogram conventions: slice with the seeds' flags."""
    from conftest import with_seed_slice

    return with_seed_slice(wsd)


@pytest.fixture
def gapped(tmp_path):
    """One recording: noise, then calls at known times separated by silent gaps."""
    rng = np.random.default_rng(0)
    x = 0.003 * ocean_noise(SR * 20, SR, rng, colour="pink")
    events = []
    for k, (t0, kind) in enumerate([(2.0, "whistle"), (7.0, "clicks"), (12.0, "pulsed"),
                                    (16.0, "whistle")]):
        c = make_call(kind, SR, rng) * 0.1
        a = int(t0 * SR)
        x[a : a + len(c)] += c
        events.append((t0, t0 + len(c) / SR, kind))
    d = tmp_path / "rec"
    d.mkdir()
    sf.write(d / "gapped.wav", x.astype(np.float32), SR)
    lab = tmp_path / "labels.csv"
    lab.write_text("path,start_s,end_s,label\n" + "".join(
        f"gapped.wav,{a},{b},{k}\n" for a, b, k in events))
    return d, lab, events


def test_silence_finds_gaps_within_one_window(gapped, tmp_path, wsd):
    d, lab, events = gapped
    win = tmp_path / "w.h5"
    assert wsd("slice", d, "-o", win, "--labels", lab, "-q").code == 0
    det = tmp_path / "sil.h5"
    r = wsd("detect", win, "--silence", "-o", det)
    assert r.code == 0, r.err
    assert "roc_auc" in r.err and r.out == ""
    with open_file(det, "detections") as f:
        st, en, pos = f.read("start_s"), f.read("end_s"), f.read("positive")
        ev_s, ev_e = f.read("events/start_s"), f.read("events/end_s")
        m = json.loads(f.attrs("/")["metrics_json"])
        assert f.params["on_db"] == 10.0
    w = en[0] - st[0]
    # every call is covered by an event starting and ending within one window of it
    for a, b, _ in events:
        hit = [(s, e) for s, e in zip(ev_s, ev_e) if s < b and e > a]
        assert hit, (a, b)
        assert min(s for s, _ in hit) >= a - w - 1e-6
        assert max(e for _, e in hit) <= b + w + 1e-6
    # windows wholly inside a gap (one window away from any call) are silent
    for s, e, p in zip(st, en, pos):
        if all(e < a - w or s > b + w for a, b, _ in events):
            assert not p, (s, e)
    assert m["window"]["recall"] >= 0.9 and m["window"]["roc_auc"] >= 0.9


def test_export_raven_reimports_as_labels(gapped, tmp_path, wsd):
    d, lab, _ = gapped
    win, det = tmp_path / "w.h5", tmp_path / "d.h5"
    assert wsd("slice", d, "-o", win, "-q").code == 0
    assert wsd("detect", win, "--silence", "-o", det, "-q").code == 0
    csv = wsd("export", det).out.strip().split("\n")
    assert csv[0] == "path,start_s,end_s,score,detected"
    raven = tmp_path / "sel.txt"
    raven.write_text(wsd("export", det, "--format", "raven").out)
    with open_file(det) as f:
        n_events = len(f.read("events/start_s"))
        detected = f.read("positive")
    assert len(raven.read_text().strip().split("\n")) == n_events + 1
    again = tmp_path / "again.h5"
    r = wsd("slice", d, "-o", again, "--labels", raven, "-q")
    assert r.code == 0, r.err
    with open_file(again) as f:
        relabelled = f.read("label") == "sound"
    # every detected window lies in an event, so it comes back labelled
    assert relabelled[detected].all()


def test_cli_defaults_match_silence_params():
    from wsd.cli.detect import detect_cmd
    from wsd.dsp.silence import SilenceParams

    sig = inspect.signature(detect_cmd).parameters
    for field in dataclasses.fields(SilenceParams):
        assert sig[field.name].default.default == field.default, field.name


def test_silence_events_are_as_long_as_the_calls(gapped, tmp_path, wsd):
    """--events auto (frames, for --silence): each call is one event from its first active
    frame to its last, found one-to-one by --truth; --events merge gives whole windows."""
    d, lab, events = gapped
    win = tmp_path / "w.h5"
    assert wsd("slice", d, "-o", win, "-q").code == 0
    got = {}
    for how in ("auto", "merge"):
        det = tmp_path / f"{how}.h5"
        r = wsd("detect", win, "--silence", "--events", how, "--truth", lab, "-o", det)
        assert r.code == 0, r.err
        with open_file(det) as f:
            got[how] = (f.read("events/start_s"), f.read("events/end_s"),
                        json.loads(f.attrs("/")["metrics_json"])["events"], f.params["events"])
    s, e, m, how = got["auto"]
    assert how == "frames" and got["merge"][3] == "merge"
    assert len(s) == len(events) and m["f1"] == 1.0, (s, e, m)
    for (a, b, _), s_, e_ in zip(events, s, e):
        assert abs(s_ - a) < 0.1 and abs(e_ - b) < 0.1, (a, b, s_, e_)
    assert (got["merge"][1] - got["merge"][0]).mean() > (e - s).mean() + 0.2


def test_detect_usage_errors(gapped, tmp_path, wsd):
    d, _, _ = gapped
    win = tmp_path / "w.h5"
    assert wsd("slice", d, "-o", win, "-q").code == 0
    assert wsd("detect", win, "-o", tmp_path / "x.h5").code == 2
    r = wsd("detect", win, "--silence", "-o", tmp_path / "x.h5", "--on-db", "3",
            "--off-db", "5")
    assert r.code == 2 and "off_db" in r.err
    r = wsd("detect", win, "--model", win, "-o", tmp_path / "x.h5")
    assert r.code == 65
    r = wsd("detect", win, "--silence", "--clip-score", "mode", "-o", tmp_path / "x.h5")
    assert r.code == 2 and "--clip-score" in r.err and len(r.err.strip().splitlines()) == 1
    r = wsd("detect", win, "--silence", "--events", "frames", "--threshold", "5", "-o",
            tmp_path / "x.h5")
    assert r.code == 2 and "--events merge" in r.err
    r = wsd("detect", win, "--model", win, "--events", "frames", "-o", tmp_path / "x.h5")
    assert r.code == 2 and "with --silence" in r.err
    r = wsd("detect", win, "--silence", "--events", "steps", "-o", tmp_path / "x.h5")
    assert r.code == 2 and "--events must be auto, merge, peaks or frames" in r.err
    assert not (tmp_path / "x.h5").exists()


def test_clip_score_sets_the_recording_metrics(gapped, tmp_path, wsd):
    """--clip-score is stored, printed, and decides the per-recording score: the 20 s
    recording is a clip (auto: median of its windows), --clip-score max its loudest one."""
    d, lab, _ = gapped
    win = tmp_path / "w.h5"
    assert wsd("slice", d, "-o", win, "--labels", lab, "-q").code == 0
    seen = {}
    for how in ("auto", "max", "mean"):
        out = tmp_path / f"{how}.h5"
        r = wsd("detect", win, "--silence", "--clip-score", how, "-o", out)
        assert r.code == 0, r.err
        with open_file(out, "detections") as f:
            stored = f.attrs("/")["clip_score"]
            m = json.loads(f.attrs("/")["metrics_json"])
            score, sid = f.read("score").astype(float), f.read("source_id")
        assert stored == {"auto": "median"}.get(how, how)
        assert f"recording ({stored} of its windows)" in r.err
        assert m["recording_score"] == stored
        seen[stored] = score
    assert np.median(seen["median"]) < np.max(seen["max"])


def test_trained_call_detector_end_to_end(gapped, tmp_path, wsd):
    """train --positive '*' (call against no call) -> detect --model: scores, threshold
    from validation, metrics, and a readout head on a frozen encoder."""
    d, lab, events = gapped
    # more recordings (the same calls in fresh noise) so validation holds out whole ones
    x, sr = sf.read(d / "gapped.wav", dtype="float32")
    rng = np.random.default_rng(1)
    for i in range(3):
        sf.write(d / f"copy{i}.wav", x + 0.003 * ocean_noise(len(x), sr, rng, colour="pink"),
                 sr)
        lab.write_text(lab.read_text() + "".join(f"copy{i}.wav,{a},{b},{k}\n"
                                                 for a, b, k in events))
    win = tmp_path / "w.h5"
    assert wsd("slice", d, "-o", win, "--labels", lab, "--sample-rate", "8000", "-q").code == 0
    det_model = tmp_path / "cnn.h5"
    r = wsd("train", win, "--arch", "vanillacnn", "--positive", "*", "--epochs", "6",
            "--batch-size", "16", "--lr", "3e-3", "--val-fraction", "0.25", "-o", det_model)
    assert r.code == 0, r.err
    out = tmp_path / "calls.h5"
    r = wsd("detect", win, "--model", det_model, "-o", out)
    assert r.code == 0, r.err
    with open_file(out, "detections") as f:
        m = json.loads(f.attrs("/")["metrics_json"])
        score = f.read("score")
        assert f.attrs("/")["detector"] == "model" and 0 < f.attrs("/")["threshold"] < 1
    assert ((score >= 0) & (score <= 1)).all()
    assert m["window"]["roc_auc"] >= 0.9, m["window"]
    ae = tmp_path / "ae.h5"
    assert wsd("train", win, "--arch", "convae", "-p", "width=0.125", "--epochs", "2",
               "--batch-size", "16", "-o", ae, "-q").code == 0
    ro = tmp_path / "readout.h5"
    r = wsd("train", win, "--arch", "readout", "--encoder", ae, "--positive", "*",
            "--epochs", "3", "--batch-size", "16", "-o", ro, "-q")
    assert r.code == 0, r.err
    assert wsd("detect", win, "--model", ro, "-o", tmp_path / "ro.h5", "-q").code == 0
    # an autoencoder is not a detector
    r = wsd("detect", win, "--model", ae, "-o", tmp_path / "bad.h5")
    assert r.code == 2 and "--positive" in r.err


def test_slice_drop_silence_keeps_what_detect_finds_active(gapped, tmp_path, wsd):
    d, lab, _ = gapped
    full, dropped = tmp_path / "w.h5", tmp_path / "drop.h5"
    assert wsd("slice", d, "-o", full, "--labels", lab, "-q").code == 0
    assert wsd("slice", d, "-o", dropped, "--labels", lab, "--drop-silence", "-q").code == 0
    det = tmp_path / "sil.h5"  # slice's activity: the kept windows, merged (not frames)
    assert wsd("detect", full, "--silence", "--events", "merge", "-o", det, "-q").code == 0
    with open_file(full) as f, open_file(dropped) as g, open_file(det) as s:
        keep = s.read("positive")
        assert g.n == keep.sum() < f.n
        np.testing.assert_array_equal(g.read("windows"), f.read("windows")[keep])
        np.testing.assert_array_equal(g.read("label"), f.read("label")[keep])
        np.testing.assert_array_equal(g.read("activity/start_s"), s.read("events/start_s"))
        assert g.read("activity/windows_sliced").tolist() == [f.n]
        assert g.sources["n_windows"].tolist() == [g.n]
