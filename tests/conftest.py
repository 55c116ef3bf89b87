"""Shared fixtures: generated audio, running the CLI in-process, the real-data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def _threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"Result(code={self.code}, err={self.err!r})"


@pytest.fixture
def wsd(capsys):
    """Run ``wsd ARGS`` in-process; return Result(code, stdout, stderr)."""
    from wsd.cli.main import main

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)
    return run


def tone(sr, seconds, freq=1000.0, amp=0.3, channels=1, seed=0):
    """A sine plus a little noise, (n,) or (n, channels) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(sr * seconds))) / sr
    x = amp * np.sin(2 * np.pi * freq * t) + 0.001 * rng.standard_normal(len(t))
    if channels > 1:
        x = np.stack([x * (c + 1) / channels for c in range(channels)], axis=1)
    return x.astype(np.float32)


@pytest.fixture
def audio_dir(tmp_path):
    """Three short files at 22050 Hz: wav, flac and mp3."""
    d = tmp_path / "audio"
    d.mkdir()
    sf.write(d / "a.wav", tone(22050, 2.0, 1000), 22050)
    sf.write(d / "b.flac", tone(22050, 1.5, 3000, seed=1), 22050)
    sf.write(d / "c.mp3", tone(22050, 1.0, 2000, seed=2), 22050)
    return d


def real_or_skip(*parts) -> Path:
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real recordings not found at {p} (they live in ../shared/data/real)")
    return p


#: The seeds' front end (Convnet V1: 32 x 256 dB windows, no whitening): what the tests of
#: the spectrogram conventions were written for. wsd's defaults are the measured-best front
#: end (mel bands, log1p, whitening; benchmarks/quality.py).
SEED_SLICE = ["--n-fft", "512", "--hop-length", "256", "--frames", "32", "--step", "32",
              "--freq-scale", "linear", "--scale", "db", "--no-whiten"]


def with_seed_slice(run):
    """``wsd`` runner whose ``slice`` calls get :data:`SEED_SLICE` first (flags given by the
    test come after them, so they win)."""
    def wrapped(*args):
        if args and args[0] == "slice":
            args = ("slice", *SEED_SLICE, *args[1:])
        return run(*args)
    return wrapped


def rerank_by_hand(d, how="mp+qe"):
    """``wsd cluster --rerank`` written out with scipy.stats and loops (the tests' reference):
    Gaussian mutual proximity 1 - P(X_i > d_ij) P(X_j > d_ij), X_i ~ N(mean, std of row i's
    off-diagonal entries); then (mp+qe) each row averaged with its nearest other item's row,
    symmetrised."""
    from scipy.stats import norm

    d = np.asarray(d, np.float64)
    n = len(d)
    mp = np.zeros_like(d)
    others = [np.delete(d[i], i) for i in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j:
                pi = norm.sf(d[i, j], others[i].mean(), others[i].std())
                pj = norm.sf(d[i, j], others[j].mean(), others[j].std())
                mp[i, j] = 1 - pi * pj
    if how == "mp":
        return mp
    rows = np.zeros_like(mp)
    for i in range(n):
        nearest = min((j for j in range(n) if j != i), key=lambda j: mp[i, j])
        rows[i] = (mp[i] + mp[nearest]) / 2
    out = (rows + rows.T) / 2
    np.fill_diagonal(out, 0)
    return out
