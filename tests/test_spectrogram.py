"""wsd.dsp.spectrogram: frame and window arithmetic, streaming, bins, dB scale and floor."""

import numpy as np
import pytest

from wsd.errors import UsageError
from wsd.dsp.spectrogram import SpectrogramParams, Spectrogrammer, spectrogram_windows


def hand_frames_db(x, p: SpectrogramParams) -> np.ndarray:
    """Frame by frame with an explicit loop: the definition the docs give."""
    n = p.n_fft
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    out = []
    for start in range(0, len(x) - n + 1, p.hop_length):
        mag = np.abs(np.fft.rfft(x[start : start + n] * w))[p.bin_indices()] * 2 / w.sum()
        out.append(20 * np.log10(np.maximum(mag, 10 ** (p.floor_db / 20))))
    return np.array(out).reshape(-1, p.bins)


def stream(x, p, sizes):
    s = Spectrogrammer(p)
    outs, nums, i, k = [], [], 0, 0
    while i < len(x):
        w, ws = s.push(x[i : i + sizes[k % len(sizes)]])
        outs.append(w)
        nums.append(ws)
        i, k = i + sizes[k % len(sizes)], k + 1
    w, ws, padded = s.finish(pad=True)
    outs.append(w)
    nums.append(ws)
    return np.concatenate(outs), np.concatenate(nums), padded


@pytest.mark.parametrize("n,n_fft,hop,frames,step", [
    (44100, 512, 256, 32, 32), (44100, 512, 256, 32, 16), (10000, 256, 128, 8, 11),
    (10000, 64, 100, 4, 2), (5000, 64, 32, 1, 1), (8192, 512, 256, 31, 31)])
def test_window_counts_and_times_by_hand(n, n_fft, hop, frames, step):
    sr = 8000
    p = SpectrogramParams(sample_rate=sr, n_fft=n_fft, hop_length=hop, frames=frames, step=step)
    n_frames = 1 + (n - n_fft) // hop
    n_windows = 1 + (n_frames - frames) // step
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    ref = hand_frames_db(x.astype(np.float64), p)
    assert len(ref) == n_frames
    for sizes in ([n], [1000], [1, 700, 64], [4096]):
        w, ws, padded = stream(x, p, sizes)
        assert not padded and w.shape == (n_windows, frames, n_fft // 2)
        np.testing.assert_array_equal(ws, np.arange(n_windows))
        for k in (0, n_windows // 2, n_windows - 1):
            np.testing.assert_allclose(w[k], ref[k * step : k * step + frames], atol=2e-3)
    start, end = p.window_times(ws)
    np.testing.assert_allclose(start, np.arange(n_windows) * step * hop / sr)
    np.testing.assert_allclose(end - start, ((frames - 1) * hop + n_fft) / sr)
    assert p.window_samples == (frames - 1) * hop + n_fft


def test_default_settings_are_the_convnet_v1_input():
    p = SpectrogramParams(sample_rate=22050)
    assert (p.n_fft, p.hop_length, p.frames, p.step, p.bins) == (512, 256, 32, 32, 256)
    f = p.freqs()
    assert f[0] == 0 and f[-1] == pytest.approx(22050 / 2 - 22050 / 512)  # Nyquist dropped


def test_nyquist_bin_is_dropped():
    sr, n_fft = 8000, 64
    p = SpectrogramParams(sample_rate=sr, n_fft=n_fft, hop_length=32, frames=4)
    x = np.tile([1.0, -1.0], 2000).astype(np.float32)  # exactly sr/2: only the Nyquist bin
    w = spectrogram_windows(x, p)
    assert w.shape[2] == n_fft // 2
    assert w[..., : n_fft // 2 - 1].max() < -60  # nothing below the last kept bin
    # Hann leakage puts |X| = sum(w)/2 into the last kept bin: reads 0 dB
    assert w[..., -1].max() == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("k", [1, 37, 100, 255])
def test_full_scale_sine_reads_zero_db(k):
    sr = 22050
    f = k * sr / 512  # a bin centre
    t = np.arange(sr) / sr
    w = spectrogram_windows(np.sin(2 * np.pi * f * t).astype(np.float32),
                            SpectrogramParams(sample_rate=sr))
    peak = w.max(axis=2)
    np.testing.assert_allclose(peak, 0.0, atol=0.02)
    assert (w.argmax(axis=2) == k).all()
    half = spectrogram_windows(0.5 * np.sin(2 * np.pi * f * t).astype(np.float32),
                               SpectrogramParams(sample_rate=sr))
    np.testing.assert_allclose(half.max(axis=2), 20 * np.log10(0.5), atol=0.02)


@pytest.mark.parametrize("floor", [-100.0, -80.0, -140.0])
def test_silence_reads_exactly_the_floor(floor):
    p = SpectrogramParams(sample_rate=8000, floor_db=floor)
    w = spectrogram_windows(np.zeros(20000, np.float32), p)
    assert len(w) and (w == np.float32(floor)).all()
    quiet = spectrogram_windows(np.full(20000, 1e-9, np.float32), p)
    assert quiet.min() >= np.float32(floor)


def test_fmin_fmax_crop_the_bins():
    p = SpectrogramParams(sample_rate=16000, n_fft=512, fmin=1000, fmax=4000)
    f = p.freqs()
    assert f.min() >= 1000 and f.max() <= 4000 and len(f) == p.bins == 97
    x = np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    full = spectrogram_windows(x, SpectrogramParams(sample_rate=16000))
    np.testing.assert_array_equal(spectrogram_windows(x, p), full[..., p.bin_indices()])


def test_short_stream_is_padded_into_one_window():
    p = SpectrogramParams(sample_rate=8000)
    x = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    w, ws, padded = stream(x, p, [30])
    assert padded and w.shape == (1, 32, 256) and list(ws) == [0]
    ref = spectrogram_windows(np.concatenate([x, np.zeros(p.window_samples - 100,
                                                          np.float32)]), p)
    np.testing.assert_array_equal(w, ref)
    s = Spectrogrammer(p)
    assert s.finish(pad=True)[2] is False  # nothing pushed: nothing to pad


@pytest.mark.parametrize("kw,msg", [
    ({"n_fft": 2}, "--n-fft"), ({"hop_length": 0}, "--hop-length"), ({"frames": 0}, "--frames"),
    ({"step": 0}, "--step"), ({"fmin": -1}, "--fmin"), ({"fmin": 500, "fmax": 400}, "--fmax"),
    ({"fmin": 3999.9}, "no frequency bin"), ({"channel": "left"}, "--channel"),
    ({"sample_rate": 0}, "--sample-rate")])
def test_bad_settings_are_usage_errors(kw, msg):
    with pytest.raises(UsageError, match=msg):
        SpectrogramParams(**{"sample_rate": 8000, **kw})


def test_params_round_trip_through_a_dict():
    p = SpectrogramParams(sample_rate=2000, n_fft=64, hop_length=32, fmax=500.0, channel="1")
    assert SpectrogramParams.from_dict({**p.as_dict(), "unrelated": 1}) == p
    assert SpectrogramParams.from_dict({**p.as_dict(), "fmax": float("nan")}).fmax is None
