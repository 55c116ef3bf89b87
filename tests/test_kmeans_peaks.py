"""The call-detection recipe measured best on the right-whale up-calls: the k-means encoder
(wsd train --arch kmeans), a probe on labels that only count windows holding most of a call
(--label-cover), scores calibrated per recording and events around score peaks (wsd detect
--calibrate recording --events peaks). Pure functions, then the CLI on generated audio."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from wsd.errors import UsageError
from wsd.dsp.events import events_from_peaks, recording_z
from wsd.dsp.silence import SilenceParams
from wsd.io.labels import UNSURE, assign
from wsd.io.store import open_file

SR = 4000


# ------------------------------------------------------------------ pure functions
def test_peaks_give_one_fixed_length_event_per_separated_peak():
    t = np.arange(0, 20, 0.25)
    sid = np.zeros(len(t), int)
    score = np.zeros(len(t))
    score[t == 5.0], score[t == 5.5], score[t == 12.0] = 1.0, 0.7, 0.9
    score[t == 4.75] = 0.6  # a shoulder of the first peak
    ev = events_from_peaks(sid, t - 0.5, t + 0.5, score, 0.5, length_s=1.2,
                           min_separation_s=1.0)
    # the bump at 5.5 s and the shoulder lie within 1 s of the higher peak at 5 s
    centres = (ev["start_s"] + ev["end_s"]) / 2
    np.testing.assert_allclose(centres, [5.0, 12.0])
    np.testing.assert_allclose(ev["end_s"] - ev["start_s"], 1.2)
    assert list(ev["n_windows"]) == [1, 1] and (ev["score"] >= 0.5).all()
    # a lower separation keeps it; a higher threshold keeps nothing
    ev2 = events_from_peaks(sid, t - 0.5, t + 0.5, score, 0.5, 1.2, min_separation_s=0.5)
    assert len(ev2["start_s"]) == 3
    assert len(events_from_peaks(sid, t - 0.5, t + 0.5, score, 5.0, 1.2)["start_s"]) == 0


def test_peaks_stay_inside_their_recording_and_smooth_spikes():
    t = np.arange(0, 10, 0.5)
    sid = np.r_[np.zeros(10, int), np.ones(10, int)]
    start = np.r_[t[:10], t[:10]]
    score = np.zeros(20)
    score[0] = 1.0  # a peak at the very start of recording 0
    score[15] = 1.0  # one isolated spike in recording 1...
    score[16:18] = 0.9  # ...next to a sustained rise
    ev = events_from_peaks(sid, start, start + 1.0, score, 0.5, length_s=2.0,
                           min_separation_s=2.0)
    assert list(ev["source_id"]) == [0, 1]
    assert ev["start_s"][0] == 0.0  # clipped to the recording
    assert (ev["start_s"][1] + ev["end_s"][1]) / 2 == pytest.approx(start[15] + 0.5)
    sm = events_from_peaks(sid, start, start + 1.0, score, 0.5, length_s=2.0,
                           min_separation_s=2.0, smooth=1)
    # smoothing over 3 windows moves recording 1's peak onto the sustained rise
    assert list(sm["source_id"]) == [0, 1]  # the edges are padded with their own value
    assert (sm["start_s"][1] + sm["end_s"][1]) / 2 == pytest.approx(start[16] + 0.5)


def test_recording_z_maps_each_recordings_level_to_zero():
    rng = np.random.default_rng(0)
    sid = np.repeat([0, 1], 500)
    s = np.r_[rng.normal(-6, 1, 500), rng.normal(2, 3, 500)]
    z = recording_z(sid, s)
    for k in (0, 1):
        assert abs(np.median(z[sid == k])) < 1e-9
        mad = np.median(np.abs(z[sid == k])) * 1.4826
        assert mad == pytest.approx(1.0)


def test_recording_z_peaks_counts_in_spreads_of_the_background_peaks():
    from wsd.dsp.events import trace_peaks

    rng = np.random.default_rng(1)
    sid = np.repeat([0, 1], 400)
    s = np.r_[rng.normal(-6, 1, 400), rng.normal(2, 3, 400)]
    start = np.tile(np.arange(400) * 0.25, 2)
    z = recording_z(sid, s, "peaks", start)
    for k in (0, 1):
        pk = trace_peaks(s[sid == k])  # the trace averaged over 5 windows, its maxima
        assert len(pk) > 20
        zk = (trace_peaks(z[sid == k]))
        assert abs(np.median(zk)) < 1e-9  # the median background peak maps to 0 ...
        assert np.median(np.abs(zk)) * 1.4826 == pytest.approx(1.0)  # ... its spread to 1
        # the peaks sit above the bulk: the recording's usual level is below 0
        assert np.median(z[sid == k]) < -0.2
    # rows out of time order are put in order by start_s first
    perm = rng.permutation(800)
    np.testing.assert_allclose(recording_z(sid[perm], s[perm], "peaks", start[perm]), z[perm])
    # a short clip has too few maxima: it is scaled by all its scores
    short = np.array([0.0, 3.0, 1.0, 2.0])
    np.testing.assert_allclose(recording_z(np.zeros(4, int), short, "peaks"),
                               recording_z(np.zeros(4, int), short))
    with pytest.raises(UsageError, match="recording or peaks"):
        recording_z(sid, s, "mad")


def test_label_cover_leaves_out_windows_that_hold_little_of_a_call():
    ev = [(1.0, 2.0, "up"), (10.0, 30.0, "song")]
    start = np.array([0.5, 1.6, 5.0, 12.0, 29.5])
    end = start + 2.0
    plain = assign(ev, start, end)
    assert list(plain) == ["up", "up", "", "song", "song"]
    strict = assign(ev, start, end, min_cover=0.7)
    # [0.5, 2.5) holds all of the call; [1.6, 3.6) 40 % of it; a window inside a long event
    # is covered whole; [29.5, 31.5) touches the song's last 0.5 s (25 % of the window)
    assert list(strict) == ["up", UNSURE, "", "song", UNSURE]


# ------------------------------------------------------------------ end to end
def _sweep(seconds=0.8, f0=300.0, f1=900.0):
    t = np.arange(int(SR * seconds)) / SR
    return np.hanning(len(t)) * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t /
                                                   (2 * seconds)))


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """Four 30-s recordings: up-sweeps at known times in noise; the last recording is 10 dB
    noisier throughout (as a recording from another site), so a raw threshold set on the
    others over-fires there."""
    d = tmp_path_factory.mktemp("upcalls")
    rng = np.random.default_rng(3)
    rows = []
    for r in range(4):
        noise = 0.02 * (3.2 if r == 3 else 1.0)
        x = noise * rng.standard_normal(SR * 30)
        # down-sweeps as distractors, up-sweeps as the calls
        for t0 in np.arange(2.0, 28.0, 4.0) + rng.uniform(-0.3, 0.3, 7):
            c = 0.3 * _sweep()
            a = int(t0 * SR)
            x[a:a + len(c)] += c
            rows.append((f"r{r}.wav", round(t0, 3), round(t0 + 0.8, 3), "up"))
        for t0 in np.arange(4.0, 28.0, 8.0):
            c = 0.3 * _sweep(f0=900.0, f1=300.0)
            x[int(t0 * SR):int(t0 * SR) + len(c)] += c
        sf.write(d / f"r{r}.wav", x.astype(np.float32), SR)
    with open(d / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "start_s", "end_s", "label"])
        w.writerows(rows)
    return d


@pytest.mark.parametrize("encoder,probe,dim", [
    # the default: three copies of the encoder side by side, a probe fit per copy
    ([], [], 3 * 96),
    # the band recipe: patches of 8 of the 24 bands (3 positions), rows standardised per
    # recording by the probe; one copy
    (["-p", "fpatch=8", "-p", "fstride=8", "-p", "members=1"],
     ["-p", "norm=recording", "-p", "c=0.01"], 288),
    # ... with a second, full-band dictionary of 16 centroids beside it (saved and reloaded
    # by train and embed), three copies
    (["-p", "fpatch=8", "-p", "fstride=8", "-p", "full=16", "-p", "full_pca=32"],
     ["-p", "c=0.01"], 3 * (288 + 48)),
    # ... two members of it, a probe averaging one fit per member
    (["-p", "fpatch=8", "-p", "fstride=8", "-p", "full=16", "-p", "full_pca=32", "-p",
      "members=2"], ["-p", "norm=recording", "-p", "c=0.01", "-p", "blocks=2"], 2 * 336),
], ids=["full-band", "band-patches-recording-norm", "band-and-full-dictionaries-three-members",
        "two-members-blocks"])
def test_kmeans_probe_peaks_find_calls_across_noise(calls, tmp_path, wsd, encoder, probe,
                                                    dim):
    d = calls
    win, enc, emb, clf, det = (tmp_path / n for n in ("w.h5", "km.h5", "e.h5", "c.h5",
                                                       "d.h5"))
    wavs = [d / f"r{r}.wav" for r in range(4)]
    assert wsd("slice", *wavs, "-o", win, "--n-fft", "256", "--hop-length", "64",
               "--frames", "64", "--step", "8", "--fmin", "150", "--fmax", "1500",
               "--n-mels", "24", "-q").code == 0
    r = wsd("train", win, "--arch", "kmeans", "-p", "k=32", "-p", "pca=32", *encoder,
            "--epochs", "3", "-o", enc)
    assert r.code == 0, r.err
    assert "epoch 3/3" in r.err
    assert wsd("embed", win, "--model", enc, "-o", emb, "-q").code == 0
    with open_file(emb) as e:
        z = e.read("embeddings")
        assert z.shape[1] == dim and np.isfinite(z).all()
    # kmeans embeddings are compared fused by default (cluster --distance auto): pooled,
    # and the DTW of the frames of the windows file embed recorded
    r = wsd("cluster", emb, "--per-file", "-k", "2", "-o", tmp_path / "cl.h5")
    assert r.code == 0 and "fused (pooled cosine + DTW of the frames)" in r.err, r.err
    with open_file(tmp_path / "cl.h5") as f:
        assert f.attrs("/")["distance"] == "fused" and f.params["windows"] == str(win)
    r = wsd("train", emb, "--arch", "linear", "--labels", d / "labels.csv", "--label-cover",
            "0.7", "--positive", "up", *probe, "-o", clf)
    assert r.code == 0, r.err
    assert "left out as unsure" in r.err
    from wsd.io.store.models import load_model

    r = wsd("train", emb, "--arch", "linear", "--labels", d / "labels.csv", "--positive",
            "up", "-p", "nrom=recording", "-o", tmp_path / "typo.h5")
    assert r.code == 2 and "nrom" in r.err and "norm" in r.err, r.err
    assert "wsd train --arch linear -p help explains them" in " ".join(r.err.split())
    assert not (tmp_path / "typo.h5").exists()
    saved = load_model(clf)
    assert saved["config"]["norm"] == ("recording" if "norm=recording" in probe else "unit")
    # the probe fits one regression per copy of the encoder unless told otherwise
    members = 2 if "members=2" in encoder else 1 if "members=1" in encoder else 3
    assert saved["config"]["blocks"] == members
    thr_rec = saved["params"]["threshold_recording"]
    thr_peaks = saved["params"]["threshold_peaks"]
    assert np.isfinite(thr_rec) and np.isfinite(thr_peaks)
    r = wsd("detect", emb, "--model", clf, "--calibrate", "recording", "--events", "peaks",
            "--event-length", "0.8", "--smooth", "1", "--truth", d / "labels.csv", "-o", det)
    assert r.code == 0, r.err
    with open_file(det) as f:
        m = json.loads(f.attrs("/")["metrics_json"])["events"]
        length = f.read("events/end_s") - f.read("events/start_s")
        ev_sid, ev_a, ev_b = (f.read(f"events/{k}") for k in ("source_id", "start_s", "end_s"))
        for s in np.unique(ev_sid):
            a, b = ev_a[ev_sid == s], ev_b[ev_sid == s]
            assert (a[1:] >= b[:-1] - 1e-6).all()  # no two events of a recording overlap
        assert f.attrs("/")["threshold"] == pytest.approx(thr_rec)
        assert f.attrs("/")["event_length"] == pytest.approx(0.8)
        # peaks are at least an event length apart by default: events never overlap
        assert f.attrs("/")["min_separation"] == pytest.approx(0.8)
        assert f.attrs("/")["calibrate"] == "recording"
    assert m["f1"] >= 0.8, m
    assert np.allclose(length[(length > 0.79)], 0.8) and (length <= 0.8 + 1e-9).all()
    # the background peaks' scale, with the threshold the probe chose on it
    r = wsd("detect", emb, "--model", clf, "--calibrate", "peaks", "--events", "peaks",
            "--event-length", "0.8", "--smooth", "1", "--truth", d / "labels.csv", "-o", det,
            "--force")
    assert r.code == 0, r.err
    with open_file(det) as f:
        assert f.attrs("/")["calibrate"] == "peaks"
        assert f.attrs("/")["threshold"] == pytest.approx(thr_peaks)
        assert json.loads(f.attrs("/")["metrics_json"])["events"]["f1"] >= 0.8
    # the probe records its labelled events' median length for --events peaks; with the
    # defaults, 30-s recordings count as clips: no calibration, windows merged
    assert saved["params"]["event_length_s"] == pytest.approx(0.8)
    r = wsd("detect", emb, "--model", clf, "-o", det, "--force")
    assert r.code == 0, r.err
    with open_file(det) as f:
        assert f.attrs("/")["calibrate"] == "none" and f.attrs("/")["events"] == "merge"
        assert f.attrs("/")["threshold"] == pytest.approx(saved["params"]["threshold"])


def test_model_defaults_choose_the_recipe_for_long_recordings():
    """detect --calibrate auto / --events auto / --smooth / --event-length for a model:
    the recipe (peaks, peaks, 2, the probe's event length) on long recordings when nothing
    asks otherwise and the probe has a peaks threshold; otherwise none and merged windows."""
    from wsd.pipeline.detect import DetectParams, model_defaults

    probe = {"threshold": 0.5, "threshold_peaks": 2.4, "event_length_s": 0.9}
    base = DetectParams(model="p.h5")
    heard = []
    r = model_defaults(base, [900.0, 900.0, 30.0], probe, heard.append)
    assert (r.calibrate, r.events, r.smooth, r.event_length) == ("peaks", "peaks", 2, 0.9)
    assert r.how_events == "peaks" and not heard
    for durations, params, why in (([30.0, 45.0], probe, "clips"),
                                   ([900.0], {"threshold": 0.5}, "no peaks threshold")):
        r = model_defaults(base, durations, params, heard.append)
        assert (r.calibrate, r.events, r.smooth) == ("none", "merge", 0), why
    assert len(heard) == 1 and "no threshold on the peaks scale" in heard[0]
    for asked in ({"threshold": 0.7}, {"min_gap": 0.3}, {"min_duration": 1.0},
                  {"events": "merge"}, {"calibrate": "recording"}):
        r = model_defaults(DetectParams(model="p.h5", **asked), [900.0], probe)
        assert r.calibrate == asked.get("calibrate", "none"), asked
        assert r.events == asked.get("events", "merge") and r.smooth == 0, asked
    r = model_defaults(DetectParams(model="p.h5", events="peaks", smooth=1, event_length=2.0),
                       [900.0], probe)
    assert (r.calibrate, r.events, r.smooth, r.event_length) == ("none", "peaks", 1, 2.0)
    silence = DetectParams(silence=SilenceParams())
    assert model_defaults(silence, [900.0], probe) is silence


def test_detect_refuses_what_calibration_cannot_do(calls, tmp_path, wsd):
    win = tmp_path / "w.h5"
    assert wsd("slice", calls / "r0.wav", "-o", win, "--frames", "16", "-q").code == 0
    r = wsd("detect", win, "--silence", "--calibrate", "recording", "-o", tmp_path / "d.h5")
    assert r.code == 2 and "--calibrate applies to a trained detector" in r.err
    r = wsd("detect", win, "--silence", "--calibrate", "median", "-o", tmp_path / "d.h5")
    assert r.code == 2 and "--calibrate must be auto, none, recording or peaks" in r.err
    r = wsd("detect", win, "--silence", "--events", "sideways", "-o", tmp_path / "d.h5")
    assert r.code == 2 and "--events must be auto, merge, peaks or frames" in r.err
    r = wsd("detect", win, "--silence", "--events", "peaks", "--event-length", "0",
            "-o", tmp_path / "d.h5")
    assert r.code == 2 and "--event-length must be > 0" in r.err
    r = wsd("detect", win, "--silence", "--events", "peaks", "--min-gap", "0.3",
            "-o", tmp_path / "d.h5")
    assert r.code == 2 and "--min-gap and --min-duration shape merged events" in r.err
    assert not (tmp_path / "d.h5").exists()


def test_label_cover_needs_a_label_table(calls, tmp_path, wsd):
    win = tmp_path / "w.h5"
    assert wsd("slice", calls / "r0.wav", "-o", win, "--frames", "16", "-q").code == 0
    r = wsd("train", win, "--label-cover", "0.7", "-o", tmp_path / "m.h5")
    assert r.code == 2 and "--label-cover" in r.err


def test_kmeans_refuses_windows_shorter_than_a_patch(calls, tmp_path, wsd):
    win = tmp_path / "w.h5"
    assert wsd("slice", calls / "r0.wav", "-o", win, "--frames", "16", "-q").code == 0
    r = wsd("train", win, "--arch", "kmeans", "-o", tmp_path / "m.h5")
    assert r.code == 2 and "shorter than a patch" in r.err, r.err
    assert not (tmp_path / "m.h5").exists()


def test_peaks_match_a_brute_force_suppression_on_random_traces():
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0, 60, 400))
    sid = (t > 30).astype(int)
    score = rng.standard_normal(400)
    ev = events_from_peaks(sid, t - 0.5, t + 0.5, score, 0.5, length_s=1.0,
                           min_separation_s=1.3)
    want = []
    for s in (0, 1):
        m = np.flatnonzero(sid == s)
        taken = []
        for i in m[np.argsort(-score[m], kind="stable")]:
            if score[i] < 0.5:
                break
            if all(abs(t[i] - t[j]) >= 1.3 for j in taken):
                taken.append(i)
        want += sorted(t[taken].tolist())
    np.testing.assert_allclose((ev["start_s"] + ev["end_s"]) / 2, want)


def test_training_sample_draws_distinct_rows_inside_the_runs(tmp_path):
    """The sample that fixes kmeans' whitening: rows from every run, none outside them, never
    a list of all the archive's row numbers."""
    import h5py

    from wsd.pipeline.train import _sample_rows

    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f["windows"] = np.arange(1000, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3))
    runs = np.array([[0, 100], [300, 350], [900, 1000]])
    got = _sample_rows(str(path), runs, 120, seed=0)[:, 0, 0].astype(int)
    inside = np.r_[np.arange(0, 100), np.arange(300, 350), np.arange(900, 1000)]
    assert len(got) == 120 and len(set(got)) == len(got)
    assert np.isin(got, inside).all() and (np.diff(got) > 0).all()
    assert (got < 100).any() and ((got >= 300) & (got < 350)).any() and (got >= 900).any()
    np.testing.assert_array_equal(_sample_rows(str(path), runs, 1000, seed=0)[:, 0, 0], inside)
