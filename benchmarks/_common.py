"""Shared helpers of the benchmarks: synthetic audio and timing wsd as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
WSD = [sys.executable, "-m", "wsd"]


def write_audio(folder: Path, n_files: int, seconds: float, sr: int = 44100,
                fmt: str = "wav", seed: int = 0) -> list[Path]:
    """Noise with tonal sweeps, ``n_files`` files of ``seconds`` each."""
    from wsd.datasets.synth import make_recording

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_files):
        x, *_ = make_recording(sr, seconds, rng)
        p = folder / f"bench_{i:03d}.{fmt}"
        sf.write(p, x, sr)
        out.append(p)
    return out


def timed(args: list[str], env: dict | None = None) -> float:
    """Wall seconds of one wsd run (raises on failure)."""
    t0 = time.perf_counter()
    p = subprocess.run(WSD + [str(a) for a in args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, cwd=ROOT)
    dt = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"wsd {' '.join(map(str, args))} failed: {p.stderr.strip()}")
    return dt


def synthetic_sources(paths: list[str], durations_s, n_windows, rate: int = 44100,
                      fmt: str = "WAV/PCM_16") -> dict:
    """A sources table for embeddings files the benchmarks make up (no audio behind them)."""
    from wsd.io.store import concat_sources

    return concat_sources([{"path": p, "size": 1, "mtime": 0.0, "format": fmt,
                            "native_sample_rate": rate, "channels": 1, "frames_header": 1,
                            "frames_decoded": 1, "duration_s": float(d), "n_windows": int(n),
                            "status": "ok", "message": ""}
                           for p, d, n in zip(paths, durations_s, n_windows)])


REAL = Path(os.environ.get("WSD_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


def wsd(*args) -> str:
    """Run ``wsd ARGS`` as a child process in the project root; return its stderr, raise on
    failure (with the command and its stderr)."""
    cmd = WSD + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"wsd {' '.join(cmd[3:])} failed ({r.returncode}): "
                           f"{r.stderr.strip()}")
    return r.stderr


def passive_threads() -> None:
    """OMP_WAIT_POLICY=PASSIVE for the wsd children unless set: on shared cores, spinning
    OpenMP threads slow torch by 10-20x (see README); it changes speed, not results."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def mean_sd(values, spread: bool = False) -> str:
    """``0.123`` for one value, else ``mean±sd`` (with ``spread``: ``[min,max]`` too). Values
    that are None or NaN (a metric undefined for that seed) are left out and counted, never
    printed as nan: ``0.123±0.010 (1 of 3 undefined)``, or ``undefined``."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.all():
        return "undefined"
    note = f" ({int(bad.sum())} of {len(v)} undefined)" if bad.any() else ""
    v = v[~bad]
    if len(v) == 1:
        return f"{v[0]:.3f}{note}"
    out = f"{v.mean():.3f}±{v.std(ddof=1):.3f}"
    return out + (f" [{v.min():.2f},{v.max():.2f}]" if spread else "") + note


def footer(t0: float) -> str:
    """The closing line of a quality benchmark: total time, thread policy, load."""
    return (f"\ntotal {time.perf_counter() - t0:.0f} s (OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average now "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})")
