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
    from wsd.synth import make_recording

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
