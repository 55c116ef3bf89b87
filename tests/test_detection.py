"""Tests of wsd.dsp.silence and wsd.dsp.events: silence detector, event merging, detector
metrics."""

import dataclasses

import numpy as np
import pytest

from wsd.dsp.events import events_from_decisions
from wsd.dsp.silence import (SilenceParams, active_runs, decide, detect_silence,
                             frame_energy)
from wsd.metrics.detection import best_threshold, binary_metrics, per_recording
from wsd.errors import BadInputError, UsageError

F, BINS, SR, HOP = 32, 256, 2000.0, 256
HOP_S = HOP / SR
FREQS = np.arange(BINS) * SR / (2 * BINS)


def noise(n_frames, floor_db, rng):
    """Noise spectrogram ``(n_frames, BINS)`` in dB around ``floor_db``."""
    return (floor_db + rng.normal(0.0, 3.0, size=(n_frames, BINS))).astype(np.float32)


def add_whistle(spec, lo, hi, floor_db, rng, level_db=20.0):
    """A narrow frequency sweep (3 bins wide) over frames ``lo..hi``, ``level_db`` above noise."""
    for t in range(lo, hi):
        centre = 40 + (t - lo) % 60
        spec[t, centre - 1 : centre + 2] = floor_db + level_db + rng.normal(0, 1.0, 3)


def add_clicks(spec, lo, hi, every, floor_db, level_db=25.0):
    """Single-frame broadband clicks every ``every`` frames in ``lo..hi``."""
    spec[lo:hi:every] = floor_db + level_db


def as_windows(spec):
    n = spec.shape[0] // F
    return spec[: n * F].reshape(n, F, BINS)


# Layout in frames: silence, whistle (starting mid-window), silence, click train, silence.
EVENTS = [(4 * F + 10, 10 * F + 5), (15 * F + 3, 19 * F - 2)]
N_WIN = 24


def recording(floor_db, seed):
    rng = np.random.default_rng(seed)
    spec = noise(N_WIN * F, floor_db, rng)
    add_whistle(spec, *EVENTS[0], floor_db, rng)
    add_clicks(spec, *EVENTS[1], every=7, floor_db=floor_db)
    return as_windows(spec)


def expected_activity():
    """Per window: 1 if it overlaps an event, 0 if it is at least one window away, -1 otherwise."""
    out = np.zeros(N_WIN, dtype=int)
    for lo, hi in EVENTS:
        first, last = lo // F, (hi - 1) // F
        out[max(first - 1, 0) : last + 2] = -1
        out[first : last + 1] = 1
    return out


def check_against_layout(silent):
    exp = expected_activity()
    np.testing.assert_array_equal(silent[exp == 1], False)
    np.testing.assert_array_equal(silent[exp == 0], True)


def test_finds_silent_gaps_calls_and_clicks():
    w = recording(-80.0, seed=1)
    starts = np.arange(N_WIN) * F * HOP_S
    d = detect_silence(w, FREQS, np.zeros(N_WIN, int), starts, RAW, hop_s=HOP_S)
    check_against_layout(d.silent)
    assert d.silent.shape == d.score.shape == d.active_frac.shape == (N_WIN,)
    assert d.active.shape == (N_WIN, F)
    # Floor is the 20th percentile of frame levels: the noise tail, a few dB above -80.
    assert d.recordings.tolist() == [0] and -80 < d.floor_db[0] < -70
    assert d.score[6] > 8 and d.score[0] < 8
    # The clicks are single frames yet count as activity.
    click_frames = np.arange(*EVENTS[1], 7)
    assert d.active.reshape(-1)[click_frames].all()


def test_nothing_silent_inside_a_continuous_varying_call():
    rng = np.random.default_rng(2)
    spec = noise(20 * F, -80.0, rng)
    # Call from window 4 to 16, its level wandering between 12 and 20 dB above the noise.
    for t in range(4 * F, 16 * F):
        level = 16 + 4 * np.sin(t / 9.0)
        c = 30 + (t // 3) % 150
        spec[t, c - 1 : c + 2] = -80 + level
    d = detect_silence(as_windows(spec), FREQS, np.zeros(20, int), np.arange(20) * F * HOP_S, RAW)
    assert not d.silent[4:16].any()
    assert d.active.reshape(-1)[4 * F : 16 * F].all()
    assert d.silent[:3].all() and d.silent[17:].all()


def test_recordings_with_different_floors_are_independent():
    quiet, loud = recording(-80.0, seed=3), recording(-40.0, seed=4)
    starts = np.arange(N_WIN) * F * HOP_S
    w = np.concatenate([quiet, loud])
    sid = np.repeat([7, 3], N_WIN)
    st = np.concatenate([starts, starts])
    perm = np.random.default_rng(5).permutation(2 * N_WIN)  # rows in any order
    d = detect_silence(w[perm], FREQS, sid[perm], st[perm], RAW, hop_s=HOP_S)
    silent = np.empty(2 * N_WIN, dtype=bool)
    silent[perm] = d.silent
    check_against_layout(silent[:N_WIN])
    check_against_layout(silent[N_WIN:])
    assert d.recordings.tolist() == [3, 7]
    assert -40 < d.floor_db[0] < -30 and -80 < d.floor_db[1] < -70
    # The quiet recording's whistle (-60 dB) sits below the loud one's noise, yet is found.
    alone = detect_silence(quiet, FREQS, np.zeros(N_WIN, int), starts, RAW, hop_s=HOP_S)
    np.testing.assert_array_equal(alone.silent, silent[:N_WIN])


def levels(excess, floor=-60.0):
    """Frame energies ``(1, len)`` with excesses over a floor given by mostly-zero padding."""
    return (floor + np.asarray(excess, dtype=np.float32))[None, :]


#: Gaussian dB noise as made here has no colour to whiten: these tests exercise the level,
#: floor and hysteresis mechanism on unwhitened levels (whitening: test_detect_cli.py).
RAW = SilenceParams(on_db=8.0, off_db=4.0, click_db=14.0, whiten=False, band_spread=False)
#: The thresholds the hand-computed cases below were worked out for (not the defaults).
HAND = RAW


def frames_active(excess, params=HAND, pad=40):
    """Activity of the given frames, preceded and followed by ``pad`` frames at the floor."""
    seq = np.concatenate([np.zeros(pad), excess, np.zeros(pad)])
    e = levels(seq)
    d = decide(e, np.zeros(1, int), np.zeros(1), params)
    assert d.floor_db[0] == pytest.approx(-60.0)
    return d.active[0, pad : pad + len(excess)]


def test_hysteresis_turns_on_above_on_db_and_off_below_off_db():
    ex = [0, 7, 9, 6, 5, 7, 3, 7, 0]
    # 7 alone does not switch on; 9 does; 6, 5, 7 hold it; 3 ends it; the last 7 is too low.
    assert frames_active(ex).tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0]
    p = SilenceParams(on_db=8.0, off_db=8.0, min_run_frames=1)
    assert frames_active(ex, p).tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0]


def test_short_runs_are_dropped_unless_impulsive():
    assert not frames_active([0, 9, 9, 0]).any()  # 2 frames < min_run_frames=3
    assert frames_active([0, 9, 9, 9, 0]).tolist() == [0, 1, 1, 1, 0]
    assert frames_active([0, 15, 0]).tolist() == [0, 1, 0]  # a click: >= click_db
    p = dataclasses.replace(HAND, min_run_frames=1)
    assert frames_active([0, 9, 0], p).tolist() == [0, 1, 0]


def test_min_active_frac_sets_how_many_frames_a_window_needs():
    e = np.full((2, F), -60.0, dtype=np.float32)
    e[:, 0] = -60.0  # keep a floor
    e[1, 10:14] = -50.0  # 4 active frames in window 1
    pad = np.full((8, F), -60.0, dtype=np.float32)
    energy = np.concatenate([e, pad])
    st = np.arange(10) * F * HOP_S
    sid = np.zeros(10, int)
    assert decide(energy, sid, st, HAND).silent[:2].tolist() == [True, False]
    strict = dataclasses.replace(HAND, min_active_frac=0.25)  # needs 8 of 32 frames
    assert decide(energy, sid, st, strict).silent[:2].tolist() == [True, True]
    d = decide(energy, sid, st, HAND)
    assert d.active_frac[1] == pytest.approx(4 / F)
    assert d.score[1] == pytest.approx(10.0)


def gap_case(gap_frames):
    """Window 0 ends loud; window 1 follows after ``gap_frames`` at a level between off and on."""
    e0 = np.full(F, -60.0, dtype=np.float32)
    e0[-5:] = -50.0
    e1 = np.full(F, -54.0, dtype=np.float32)  # 6 dB above the floor
    tail = np.full((6, F), -60.0, dtype=np.float32)
    energy = np.concatenate([e0[None], e1[None], tail])
    st = np.array([0.0, F + gap_frames] + [2 * F + gap_frames + i * F for i in range(6)]) * HOP_S
    return decide(energy, np.zeros(8, int), st, HAND, hop_s=HOP_S)


def test_hysteresis_carries_over_short_gaps_and_resets_over_long_ones():
    assert gap_case(0).active[1].all()  # contiguous: the call goes on
    assert gap_case(F // 4).active[1].all()  # a gap shorter than a window: still carried
    assert gap_case(F).active[1].all()  # exactly one window: carried
    assert not gap_case(F + 1).active[1].any()  # longer than a window: reset
    assert not gap_case(40 * F).active[1].any()


def test_overlapping_windows_agree_with_contiguous_ones():
    rng = np.random.default_rng(6)
    spec = noise(30 * F, -70.0, rng)
    add_whistle(spec, 5 * F + 7, 9 * F, -70.0, rng)
    add_clicks(spec, 15 * F, 17 * F, 9, -70.0)
    # Contiguous windows: the reference frame-level activity.
    ref = detect_silence(as_windows(spec), FREQS, np.zeros(30, int), np.arange(30) * F * HOP_S, RAW)
    ref_frames = ref.active.reshape(-1)
    # Windows every half window, frames shared between neighbours.
    first = np.arange(0, 29 * F + 1, F // 2)
    w = np.stack([spec[s : s + F] for s in first])
    d = detect_silence(w, FREQS, np.zeros(len(first), int), first * HOP_S, RAW, hop_s=HOP_S)
    for i, s in enumerate(first):
        np.testing.assert_array_equal(d.active[i], ref_frames[s : s + F])
    assert d.floor_db[0] == pytest.approx(ref.floor_db[0])


def test_active_runs_are_the_sound_itself_not_whole_windows():
    """detect --events frames: the whistle is one run from its first to its last frame,
    to the frame, though it starts and ends mid-window; the clicks (one frame every 7,
    kept as impulsive) are runs of a frame each; overlapping windows give the same runs
    as contiguous ones; the run's score is its loudest frame."""
    w = recording(-80.0, seed=3)
    st = np.arange(N_WIN) * F * HOP_S
    d = detect_silence(w, FREQS, np.zeros(N_WIN, int), st, RAW, hop_s=HOP_S, keep_level=True)
    r = active_runs(d.active, d.level, np.zeros(N_WIN, int), st, HOP_S)
    assert detect_silence(w, FREQS, np.zeros(N_WIN, int), st, RAW).level is None  # not kept
    lo, hi = EVENTS[0]
    first = np.argmin(np.abs(r["start_s"] - lo * HOP_S))
    assert r["start_s"][first] == pytest.approx(lo * HOP_S)
    assert r["end_s"][first] == pytest.approx(hi * HOP_S)
    assert r["n_frames"][first] == hi - lo
    clicks = (r["start_s"] >= EVENTS[1][0] * HOP_S - 1e-9) & (r["end_s"] <= EVENTS[1][1] * HOP_S)
    assert clicks.sum() == len(range(*EVENTS[1], 7)) and (r["n_frames"][clicks] == 1).all()
    assert len(r["start_s"]) == 1 + clicks.sum()  # nothing in the silence
    levels = d.level.reshape(-1)[lo:hi]
    assert r["score"][first] == pytest.approx(float(levels.max()))
    # windows every half window: frames shared, the same runs
    spec = w.reshape(-1, BINS)
    starts = np.arange(0, (N_WIN - 1) * F + 1, F // 2)
    half = np.stack([spec[a:a + F] for a in starts])
    d2 = detect_silence(half, FREQS, np.zeros(len(starts), int), starts * HOP_S, RAW,
                        hop_s=HOP_S, keep_level=True)
    r2 = active_runs(d2.active, d2.level, np.zeros(len(starts), int), starts * HOP_S, HOP_S)
    for k in ("start_s", "end_s", "n_frames"):
        np.testing.assert_allclose(r2[k], r[k])
    # merged into events like windows: runs closer than min_gap join
    ev = events_from_decisions(r["source_id"], r["start_s"], r["end_s"],
                               np.ones(len(r["start_s"]), bool), r["score"], 7 * HOP_S)
    assert len(ev["start_s"]) == 2
    empty = active_runs(np.zeros((3, F), bool), np.zeros((3, F)), np.zeros(3, int),
                        np.arange(3) * F * HOP_S, HOP_S)
    assert all(len(v) == 0 for v in empty.values())
    with pytest.raises(UsageError):
        active_runs(d.active, d.level, np.zeros(N_WIN, int), st, 0.0)


def test_dropped_windows_without_hop_match_explicit_hop():
    w = recording(-80.0, seed=8)
    keep = np.r_[0:3, 4:12, 14:N_WIN]  # windows 3, 12 and 13 were dropped
    st = keep * F * HOP_S
    sid = np.zeros(keep.size, int)
    with_hop = detect_silence(w[keep], FREQS, sid, st, RAW, hop_s=HOP_S)
    inferred = detect_silence(w[keep], FREQS, sid, st, RAW)
    np.testing.assert_array_equal(with_hop.active, inferred.active)
    full = detect_silence(w, FREQS, np.zeros(N_WIN, int), np.arange(N_WIN) * F * HOP_S, RAW)
    assert with_hop.silent[keep < 12].tolist() == full.silent[keep[keep < 12]].tolist()


def test_frame_energy_streams_block_by_block_and_counts_narrow_whistles():
    w = recording(-80.0, seed=9)
    p = SilenceParams()
    whole = frame_energy(w, FREQS, p)
    blocks = np.concatenate([frame_energy(w[a : a + 5], FREQS, p) for a in range(0, N_WIN, 5)])
    np.testing.assert_array_equal(whole, blocks)
    assert whole.shape == (N_WIN, F) and whole.dtype == np.float32

    class Sliceable:  # only shape and slicing, like an HDF5 dataset
        shape = w.shape

        def __getitem__(self, key):
            return w[key]

    np.testing.assert_array_equal(frame_energy(Sliceable(), FREQS, p), whole)
    # A tone 3 bins wide (a Hann window's main lobe), 20 dB above the noise, out of 256 bins,
    # raises the level (mean of the loudest 3 bins) by more than on_db.
    rng = np.random.default_rng(10)
    spec = noise(F, -80.0, rng)
    spec[:, 99:102] = -60.0
    quiet = frame_energy(noise(F, -80.0, rng)[None], FREQS, p)
    assert (frame_energy(spec[None], FREQS, p) - quiet).min() > 8


def test_band_limits_what_is_heard():
    w = recording(-80.0, seed=11)  # whistle between bins 39 and 101 (about 150-400 Hz)
    st = np.arange(N_WIN) * F * HOP_S
    sid = np.zeros(N_WIN, int)
    high = SilenceParams(fmin=600.0, on_db=8.0, off_db=4.0, click_db=14.0, whiten=False)
    d = detect_silence(w, FREQS, sid, st, high, hop_s=HOP_S)
    assert d.silent[5:10].all()  # whistle out of band
    assert not d.silent[16:18].any()  # broadband clicks still heard
    with pytest.raises(UsageError, match="no frequency bin"):
        frame_energy(w, FREQS, SilenceParams(fmin=1500.0, fmax=1600.0))


def test_params_are_validated_frozen_and_named_like_flags():
    with pytest.raises(UsageError, match="off_db"):
        SilenceParams(on_db=4.0, off_db=6.0)
    with pytest.raises(UsageError, match="click_db"):
        SilenceParams(click_db=5.0)
    with pytest.raises(UsageError, match="fmax"):
        SilenceParams(fmin=500.0, fmax=100.0)
    with pytest.raises(UsageError, match="min_run_frames"):
        SilenceParams(min_run_frames=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        SilenceParams().on_db = 3.0
    for f in dataclasses.fields(SilenceParams):
        assert f.name == f.name.lower() and f.name.isidentifier()


def test_decide_rejects_mismatched_rows():
    with pytest.raises(BadInputError):
        decide(np.zeros((3, F)), np.zeros(2, int), np.zeros(3), SilenceParams())
    with pytest.raises(BadInputError):
        frame_energy(np.zeros((3, F, BINS)), FREQS[:-1], SilenceParams())


# ---- events ---------------------------------------------------------------------------------

WIN = {  # source, start, end, positive, score
    "source_id": np.array([0, 0, 0, 0, 0, 1, 1]),
    "start_s": np.array([0.0, 1.0, 2.0, 3.0, 6.0, 0.0, 1.5]),
    "end_s": np.array([1.0, 2.0, 3.0, 4.0, 7.0, 1.0, 2.5]),
    "positive": np.array([1, 1, 0, 1, 1, 1, 1], dtype=bool),
    "score": np.array([0.6, 0.9, 0.1, 0.7, 0.8, 0.5, 0.4]),
}


def events(order=None, **kw):
    a = {k: v if order is None else v[order] for k, v in WIN.items()}
    return events_from_decisions(**a, **kw)


def test_events_merge_touching_windows_only_by_default():
    ev = events()
    assert ev["source_id"].tolist() == [0, 0, 0, 1, 1]
    assert ev["start_s"].tolist() == [0.0, 3.0, 6.0, 0.0, 1.5]
    assert ev["end_s"].tolist() == [2.0, 4.0, 7.0, 1.0, 2.5]
    assert ev["score"].tolist() == [0.9, 0.7, 0.8, 0.5, 0.4]
    assert ev["n_windows"].tolist() == [2, 1, 1, 1, 1]


def test_events_merge_across_gaps_up_to_min_gap():
    ev = events(min_gap_s=1.0)  # 3.0 - 2.0 = 1 joins; 6 - 4 = 2 does not; 1.5 - 1.0 joins
    assert ev["source_id"].tolist() == [0, 0, 1]
    assert ev["start_s"].tolist() == [0.0, 6.0, 0.0]
    assert ev["end_s"].tolist() == [4.0, 7.0, 2.5]
    assert ev["score"].tolist() == [0.9, 0.8, 0.5]
    assert ev["n_windows"].tolist() == [3, 1, 2]


def test_events_shorter_than_min_duration_are_dropped_and_order_does_not_matter():
    ev = events(min_duration_s=1.5)
    assert ev["start_s"].tolist() == [0.0] and ev["end_s"].tolist() == [2.0]
    shuffled = events(order=np.array([6, 2, 4, 0, 5, 3, 1]), min_gap_s=1.0)
    for k, v in events(min_gap_s=1.0).items():
        np.testing.assert_array_equal(shuffled[k], v)


def test_overlapping_windows_form_one_event_and_empty_input_gives_empty_arrays():
    ev = events_from_decisions([4, 4, 4], [0.0, 1.0, 2.5], [2.0, 3.0, 4.5], [1, 1, 1],
                               [0.2, 0.3, 0.1], min_gap_s=0.0)
    assert ev["start_s"].tolist() == [0.0] and ev["end_s"].tolist() == [4.5]
    assert ev["n_windows"].tolist() == [3]
    # A long window followed by a short one inside it: the event ends at the latest end.
    ev = events_from_decisions([0, 0, 0], [0.0, 1.0, 5.5], [5.0, 2.0, 6.0], [1, 1, 1],
                               [0, 0, 0], min_gap_s=0.5)
    assert ev["end_s"].tolist() == [6.0]
    empty = events_from_decisions([0, 1], [0.0, 1.0], [1.0, 2.0], [0, 0], [0.1, 0.2])
    assert all(v.shape == (0,) for v in empty.values())
    assert empty["source_id"].dtype == np.int64 and empty["end_s"].dtype == np.float64
    with pytest.raises(UsageError):
        events(min_gap_s=-1.0)


# ---- metrics --------------------------------------------------------------------------------

Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])


def test_binary_metrics_by_hand():
    m = binary_metrics(Y, S, threshold=0.5)
    # Positive-negative pairs ranked right: (0.35>0.1), (0.8>0.1), (0.8>0.4); wrong: 0.35<0.4.
    assert m["roc_auc"] == pytest.approx(3 / 4)
    # Ranked 0.8(+), 0.4(-), 0.35(+), 0.1(-): AP = 0.5 * 1 + 0.5 * 2/3.
    assert m["average_precision"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # Predicted positive: only 0.8. tn=2, fp=0, fn=1, tp=1.
    assert m["confusion"] == [[2, 0], [1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert m["precision"] == pytest.approx(1.0)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert m["rates"] == {"tpr": 0.5, "fpr": 0.0, "tnr": 1.0, "fnr": 0.5}
    assert m["n"] == 4 and m["n_positive"] == 2 and m["notes"] == []


def test_score_equal_to_threshold_counts_as_positive():
    assert binary_metrics(Y, S, threshold=0.35)["confusion"] == [[1, 1], [0, 2]]


def test_one_class_gives_none_with_a_reason_not_a_crash():
    m = binary_metrics([0, 0, 0], [0.2, 0.7, 0.1], threshold=0.5)
    assert m["roc_auc"] is None and m["average_precision"] is None and m["recall"] is None
    assert m["confusion"] == [[2, 1], [0, 0]]
    assert m["accuracy"] == pytest.approx(2 / 3) and m["precision"] == 0.0
    assert any("roc_auc undefined" in n for n in m["notes"])
    m = binary_metrics([1, 1], [0.2, 0.3], threshold=0.5)
    assert m["roc_auc"] is None and m["precision"] is None and m["recall"] == 0.0
    assert m["average_precision"] == pytest.approx(1.0)
    assert any("precision undefined" in n for n in m["notes"])


def test_metrics_reject_bad_labels():
    with pytest.raises(BadInputError):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(BadInputError):
        binary_metrics([0, 1], [0.1])


def test_per_recording_takes_any_positive_and_max_score():
    recs, y, s = per_recording([0, 1, 0, 0, 0], [0.1, 0.2, 0.9, 0.3, 0.4], [5, 5, 7, 7, 2])
    assert recs.tolist() == [2, 5, 7]
    assert y.tolist() == [False, True, False]
    assert s.tolist() == [0.4, 0.2, 0.9]


def test_per_recording_aggregates_by_mean_median_or_top_quarter():
    from wsd.metrics.detection import clip_score_for, detector_metrics

    # recording 3: one loud window among quiet ones (a transient in a noise clip);
    # recording 1: a call over most of the clip
    sid = [3] * 8 + [1] * 8
    score = [0.95, .1, .1, .1, .1, .1, .1, .2] + [.7, .8, .6, .9, .7, .1, .2, .8]
    y = [0] * 8 + [1] * 8
    expect = {"max": [0.9, 0.95], "mean": [4.8 / 8, 1.75 / 8], "median": [0.7, 0.1],
              "top": [0.85, 0.575]}  # the mean of the highest 2 of 8
    for how, want in expect.items():
        recs, yr, s = per_recording(y, score, sid, how)
        assert recs.tolist() == [1, 3] and yr.tolist() == [True, False]
        assert s == pytest.approx(want), how
    # by max the transient outranks the call; by median it does not
    assert detector_metrics(np.array(y), np.array(score), np.array(score) >= 0.5,
                            np.array(sid), "max")["recording"]["roc_auc"] == 0.0
    m = detector_metrics(np.array(y), np.array(score), np.array(score) >= 0.5,
                         np.array(sid), "median")
    assert m["recording"]["roc_auc"] == 1.0 and m["recording_score"] == "median"
    # decided: by max any window (both clips); by median at least half the windows (the call)
    assert m["recording"]["confusion"] == [[1, 0], [0, 1]]
    assert clip_score_for("auto", [3.0, 10.0, 200.0]) == "median"
    assert clip_score_for("auto", [900.0, 900.0]) == "max"
    assert clip_score_for("top", [3.0]) == "top"
    with pytest.raises(BadInputError):
        per_recording(y, score, sid, "mode")


def test_best_threshold_maximises_f1():
    # Thresholds 0.8: F1 2/3; 0.4: 1/2; 0.35: p=2/3, r=1, F1=0.8; 0.1: 2/3.
    t, f1 = best_threshold(Y, S)
    assert t == pytest.approx(0.35) and f1 == pytest.approx(0.8)
    with pytest.raises(BadInputError):
        best_threshold([0, 0], [0.1, 0.2])


# ------------------------------------------------------------------ band spread
def _swinging_band(n_frames, rng, lo=180, hi=220, db=14.0):
    """Bins lo..hi switching on and off (+db) in runs of 3-20 frames: surf, flow noise or a
    codec's top band, no call."""
    on = np.zeros(n_frames, bool)
    t, state = 0, False
    while t < n_frames:
        run = int(rng.integers(3, 21))
        on[t:t + run] = state
        t, state = t + run, not state
    return on, (lo, hi, db)


def test_band_spread_quietens_a_swinging_band_and_keeps_a_whistle():
    """Without --band-spread a band whose noise swings by 14 dB is active in every window;
    divided by its spread (about twice a steady bin's) it stays below --on-db, while a
    whistle 20 dB up in steady bins is still found, to the window."""
    rng = np.random.default_rng(11)
    n = N_WIN * F
    spec = noise(n, -80.0, rng)
    on, (lo, hi, db) = _swinging_band(n, rng)
    spec[on, lo:hi] += db
    add_whistle(spec, *EVENTS[0], -80.0, rng)
    w = as_windows(spec)
    st = np.arange(N_WIN) * F * HOP_S
    plain = detect_silence(w, FREQS, np.zeros(N_WIN, int), st,
                           SilenceParams(band_spread=False), hop_s=HOP_S)
    spread = detect_silence(w, FREQS, np.zeros(N_WIN, int), st, SilenceParams(), hop_s=HOP_S)
    exp = expected_activity()
    assert not plain.silent[exp == 0].any()  # the swinging band: active everywhere
    first, last = EVENTS[0][0] // F, (EVENTS[0][1] - 1) // F
    assert not spread.silent[first:last + 1].any()
    assert spread.silent[:first - 1].all() and spread.silent[last + 2:].all()


def test_band_spread_does_not_amplify_an_empty_band():
    """Bins with no noise at all (above a recorder's bandwidth: spread 0) are divided by
    min_spread_db, not by their spread: a 2 dB leak there stays silence."""
    rng = np.random.default_rng(12)
    spec = noise(N_WIN * F, -80.0, rng)
    spec[:, 200:] = -100.0  # empty
    spec[5 * F:7 * F, 200:210] += 2.0  # a leak
    w = as_windows(spec)
    st = np.arange(N_WIN) * F * HOP_S
    d = detect_silence(w, FREQS, np.zeros(N_WIN, int), st, SilenceParams(), hop_s=HOP_S)
    assert d.silent.all()
    tiny = SilenceParams(min_spread_db=0.01)
    assert not detect_silence(w, FREQS, np.zeros(N_WIN, int), st, tiny,
                              hop_s=HOP_S).silent[5:7].all()
    with pytest.raises(UsageError, match="min_spread_db"):
        SilenceParams(min_spread_db=0)


def test_band_spread_overlapping_windows_agree_with_contiguous_ones():
    """The spread is taken over windows that tile the recording without overlapping, so
    windows every half window give the frames' activity of contiguous ones."""
    rng = np.random.default_rng(13)
    spec = noise(30 * F, -70.0, rng)
    on, (lo, hi, db) = _swinging_band(30 * F, rng)
    spec[on, lo:hi] += db
    add_whistle(spec, 5 * F + 7, 9 * F, -70.0, rng)
    p = SilenceParams(whiten=False)
    ref = detect_silence(as_windows(spec), FREQS, np.zeros(30, int),
                         np.arange(30) * F * HOP_S, p, hop_s=HOP_S)
    first = np.arange(0, 29 * F + 1, F // 2)
    w = np.stack([spec[s:s + F] for s in first])
    for hop in (HOP_S, None):
        d = detect_silence(w, FREQS, np.zeros(len(first), int), first * HOP_S, p, hop_s=hop)
        for i, s in enumerate(first):
            np.testing.assert_array_equal(d.active[i], ref.active.reshape(-1)[s:s + F])


def _tone_in(share, seed=14):
    """Windows of noise with a steady 3-bin tone 50 dB up in ``share`` of the frames (runs
    of a window each), and the tone's frames."""
    rng = np.random.default_rng(seed)
    n = N_WIN * F
    spec = noise(n, -80.0, rng)
    tone = np.zeros(n, bool)
    for a in range(F, n - 2 * F, int(F / share)):
        tone[a:a + F] = True
    spec[tone, 99:102] = -30.0
    return as_windows(spec), tone


def test_band_spread_and_a_sound_that_fills_its_band():
    """A tone in 8 % of the frames leaves its bins' spread alone and is found as with
    --no-band-spread; in 30 % it widens its own bins' spread (about 50 dB against a
    typical 8) and is scaled down, by MAX_ATTENUATION at most: it drops below --on-db there,
    and --no-band-spread (documented for such recordings) finds it."""
    from wsd.dsp.silence import MAX_ATTENUATION, band_scale, bin_floor, window_floor

    st = np.arange(N_WIN) * F * HOP_S
    sid = np.zeros(N_WIN, int)
    w, tone = _tone_in(0.08)
    assert 0.05 < tone.mean() < 0.1
    d = detect_silence(w, FREQS, sid, st, SilenceParams(), hop_s=HOP_S)
    assert d.active.reshape(-1)[tone].all()
    w, tone = _tone_in(0.3)
    assert 0.25 < tone.mean() < 0.35
    floor = bin_floor(window_floor(w), sid, st, 30.0)
    scale = band_scale(w, FREQS, floor, sid, st, SilenceParams(), HOP_S)
    assert scale[0, 99:102] == pytest.approx(1 / MAX_ATTENUATION)
    assert np.median(scale[0]) == pytest.approx(1.0, abs=0.05)
    d = detect_silence(w, FREQS, sid, st, SilenceParams(), hop_s=HOP_S)
    plain = detect_silence(w, FREQS, sid, st, SilenceParams(band_spread=False), hop_s=HOP_S)
    assert not d.active.reshape(-1)[tone].any()
    assert plain.active.reshape(-1)[tone].all()


def test_band_scale_of_a_sample_of_windows(monkeypatch):
    """band_scale by hand: the 90th minus the 10th percentile of each bin's excess over its
    floor, over evenly spaced non-overlapping windows (here 2 of 24, read one by one as a
    long recording's sample is), every 4th frame; the typical (median) spread over it."""
    from wsd.dsp import silence as S

    monkeypatch.setattr(S, "SPREAD_WINDOWS", 2)
    rng = np.random.default_rng(15)
    spec = noise(N_WIN * F, -80.0, rng)
    spec[:, 10:20] += 6.0 * rng.standard_normal((N_WIN * F, 10))  # a swinging band
    w = as_windows(spec)
    st = np.arange(N_WIN) * F * HOP_S
    sid = np.zeros(N_WIN, int)
    floor = S.bin_floor(S.window_floor(w), sid, st, 30.0)
    got = S.band_scale(w, FREQS, floor, sid, st, SilenceParams(), HOP_S)
    picked = [0, 23]
    x = np.concatenate([(w[i] - floor[i])[::4] for i in picked])
    spread = np.percentile(x, 90, axis=0) - np.percentile(x, 10, axis=0)
    want = np.median(spread) / np.maximum(spread, 3.0)
    np.testing.assert_allclose(got, np.broadcast_to(np.maximum(want, 1 / 3), got.shape),
                               rtol=1e-5)
    assert got[0, 10:20].mean() < 0.8 < np.median(got[0])


@pytest.mark.parametrize("chunk", [4096, 5])
def test_band_spread_per_recording_in_any_row_order(chunk, monkeypatch):
    """Each recording's spread is its own, whatever the order of the rows and however the
    rows are read (chunks of 5 windows: recordings finished as the chunks pass them)."""
    from wsd.dsp import silence as S

    monkeypatch.setattr(S, "_CHUNK_WINDOWS", chunk)
    rng = np.random.default_rng(16)
    recs = []
    for k in range(3):
        spec = noise(N_WIN * F, -80.0 + 10 * k, rng)
        on, (lo, hi, db) = _swinging_band(N_WIN * F, rng)
        spec[on, lo:hi] += db * (k + 1) / 2
        recs.append(as_windows(spec))
    st = np.arange(N_WIN) * F * HOP_S
    alone = [detect_silence(w, FREQS, np.zeros(N_WIN, int), st, SilenceParams(),
                            hop_s=HOP_S).active for w in recs]
    w = np.concatenate(recs)
    sid = np.repeat([0, 1, 2], N_WIN)
    for order in (np.arange(3 * N_WIN), np.random.default_rng(17).permutation(3 * N_WIN)):
        d = detect_silence(w[order], FREQS, sid[order], np.tile(st, 3)[order],
                           SilenceParams(), hop_s=HOP_S)
        active = np.empty_like(d.active)
        active[order] = d.active
        for k in range(3):
            np.testing.assert_array_equal(active[sid == k], alone[k])
