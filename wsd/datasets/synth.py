"""Synthetic underwater recordings with ground truth, for demos and tests.

Pure generators (arrays in, arrays out, all randomness from a ``numpy.random.Generator``):

- :func:`ocean_noise`: coloured background noise (pink or brown) over a white sensor floor.
- :func:`make_call`: one call of a known type (:data:`CALL_TYPES`) with random parameters.
- :func:`make_recording`: calls separated by noise-only gaps, with the event and gap lists.

:func:`write_dataset` writes a whole example set (wav, flac and mp3 at several sample rates,
``labels.csv``, ``truth.json`` and a ``clips/`` call catalogue); it is the one function here
that touches files. Calls are scaled to a target SNR, defined as the call's RMS over its extent
against the broadband RMS of the file's noise, capped so no sample exceeds :data:`MAX_PEAK`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import interpolate, signal

from wsd.errors import OutputError, UsageError

CALL_TYPES = ("whistle", "upcall", "clicks", "burst", "pulsed")
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
SAMPLE_RATES = (22050, 44100, 48000)
FORMATS = (("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("mp3", "MP3", "MPEG_LAYER_III"))
MAX_PEAK = 0.8


def ocean_noise(n: int, sr: int, rng: np.random.Generator, colour: str = "pink",
                floor_db: float = -30.0) -> np.ndarray:
    """Coloured Gaussian noise of unit RMS, shape ``(n,)`` float64.

    The power spectrum falls as ``f**-k`` (k = 0 white, 1 pink, 2 brown), flat below 20 Hz
    and zero at DC; a white floor ``floor_db`` dB below the coloured part stands for sensor
    self-noise so the high bands are never empty.
    """
    if colour not in NOISE_COLOURS:
        raise UsageError(f"unknown noise colour {colour!r}; choose from {', '.join(NOISE_COLOURS)}")
    if n <= 0:
        return np.zeros(0)
    m = sfft.next_fast_len(n, real=True)
    spec = rng.standard_normal(m // 2 + 1) + 1j * rng.standard_normal(m // 2 + 1)
    freqs = np.fft.rfftfreq(m, 1.0 / sr)
    shape = np.maximum(freqs, 20.0) ** (-NOISE_COLOURS[colour] / 2.0)
    shape[0] = 0.0
    x = sfft.irfft(spec * shape, m)[:n]
    x /= np.sqrt(np.mean(x**2)) + 1e-30
    x += 10.0 ** (floor_db / 20.0) * rng.standard_normal(n)
    return x / np.sqrt(np.mean(x**2))


def _tonal(freqs_hz: np.ndarray, sr: int, amps: list[float], rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics ``k * f(t)`` (k = 1..len(amps)) of an instantaneous frequency track.

    ``freqs_hz`` has shape ``(n,)`` in Hz; harmonics above 0.45 * sr are left out.
    """
    phase = 2.0 * np.pi * np.cumsum(freqs_hz) / sr
    out = np.zeros_like(freqs_hz)
    for k, a in enumerate(amps, start=1):
        if k * freqs_hz.max() < 0.45 * sr:
            out += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def _click_train(sr: int, n: int, rate_hz: np.ndarray, fc_hz: float, rng: np.random.Generator,
                 jitter: float) -> tuple[np.ndarray, float]:
    """Broadband Gaussian-pulse clicks at a time-varying repetition rate.

    ``rate_hz`` is shape ``(n,)`` clicks per second at each sample; a click falls where the
    integrated rate crosses an integer, moved by ``jitter`` (fraction of the local interval).
    Returns the train (shape ``(n + click_len,)``) and the median inter-click interval in s.
    """
    fc = min(fc_hz, 0.3 * sr)
    half = float(signal.gausspulse("cutoff", fc=fc, bw=1.0, bwr=-6, tpr=-40))
    t = np.arange(-int(np.ceil(half * sr)), int(np.ceil(half * sr)) + 1) / sr
    click = signal.gausspulse(t, fc=fc, bw=1.0)
    cycles = np.floor(np.cumsum(rate_hz) / sr)
    starts = np.flatnonzero(np.diff(cycles, prepend=-1.0) > 0)
    starts = starts + np.round(rng.normal(0, jitter, starts.size) * sr / rate_hz[starts]).astype(int)
    starts = np.clip(starts, 0, n - 1)
    amps = rng.uniform(0.7, 1.0, starts.size) * (0.5 + 0.5 * np.sin(np.pi * starts / n))
    out = np.zeros(n + click.size)
    np.add.at(out, starts[:, None] + np.arange(click.size)[None, :], amps[:, None] * click[None, :])
    ici = float(np.median(np.diff(starts)) / sr) if starts.size > 1 else float("nan")
    return out, ici


def call_with_params(kind: str, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One call of type ``kind`` at sample rate ``sr`` (Hz), and the parameters drawn for it.

    Returns samples of shape ``(n,)`` float64 with peak 1 (the call's whole extent, starting
    and ending at or near zero), and a JSON-ready dict of parameters (frequencies in Hz,
    durations in s). Types:

    - ``whistle``: tonal whistle, smooth random FM contour around 2-4.5 kHz, 2-3 harmonics,
      0.5-1.5 s.
    - ``upcall``: up-call, rising sweep about 300 -> 900 Hz with a second harmonic, 0.7-1.2 s.
    - ``clicks``: echolocation click train, broadband clicks 5-20 ms apart, 0.5-1.5 s.
    - ``burst``: burst pulse, clicks 300-900 per second (a buzzy harmonic texture), 0.3-1 s.
    - ``pulsed``: pulsed call, harmonic stack on 500-1000 Hz with an abrupt step in pitch,
      0.6-1.4 s.
    """
    if kind not in CALL_TYPES:
        raise UsageError(f"unknown call type {kind!r}; choose from {', '.join(CALL_TYPES)}")
    if sr < 8000:
        raise UsageError(f"sample rate {sr} Hz too low for synthetic calls (need >= 8000)")
    if kind == "whistle":
        dur = rng.uniform(0.5, 1.5)
        n = int(dur * sr)
        centre, depth = rng.uniform(2000, 4500), rng.uniform(300, 1500)
        knots = centre + depth * rng.uniform(-1, 1, 5)
        contour = interpolate.CubicSpline(np.linspace(0, 1, 5), knots, bc_type="natural")
        f = np.clip(contour(np.linspace(0, 1, n)), 1000.0, 0.4 * sr)
        amps = [1.0, rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3)][: int(rng.integers(2, 4))]
        x = _tonal(f, sr, amps, rng) * signal.windows.tukey(n, 0.25)
        params = {"f_min_hz": float(f.min()), "f_max_hz": float(f.max()),
                  "n_harmonics": int(sum(k * f.max() < 0.45 * sr for k in range(1, len(amps) + 1)))}
    elif kind == "upcall":
        dur = rng.uniform(0.7, 1.2)
        n = int(dur * sr)
        f0, f1, p = rng.uniform(250, 400), rng.uniform(750, 1000), rng.uniform(1.0, 1.8)
        f = f0 + (f1 - f0) * np.linspace(0, 1, n) ** p
        x = _tonal(f, sr, [1.0, rng.uniform(0.3, 0.6)], rng) * signal.windows.tukey(n, 0.3)
        params = {"f_start_hz": float(f0), "f_end_hz": float(f1)}
    elif kind in ("clicks", "burst"):
        lo, hi, d_lo, d_hi, fc = ((50.0, 200.0, 0.5, 1.5, rng.uniform(6000, 9000)) if kind == "clicks"
                                  else (300.0, 900.0, 0.3, 1.0, rng.uniform(3000, 6000)))
        dur = rng.uniform(d_lo, d_hi)
        n = int(dur * sr)
        r0 = rng.uniform(lo, hi)
        r1 = np.clip(r0 * rng.uniform(0.75, 1.33), lo, hi)
        x, ici = _click_train(sr, n, np.linspace(r0, r1, n), fc, rng, 0.03 if kind == "clicks" else 0.01)
        params = {"rate_start_hz": float(r0), "rate_end_hz": float(r1), "median_ici_s": ici,
                  "click_fc_hz": float(min(fc, 0.3 * sr))}
    else:  # pulsed
        dur = rng.uniform(0.6, 1.4)
        n = int(dur * sr)
        f0 = rng.uniform(500, 1000)
        step = rng.uniform(1.3, 1.7) ** rng.choice([-1.0, 1.0])
        t_step = rng.uniform(0.35, 0.65)
        u = np.linspace(0, 1, n)
        f = np.where(u < t_step, f0, f0 * step) * (1.0 + 0.05 * (u - 0.5))
        amps = [float(k) ** -0.8 for k in range(1, 9)]
        x = _tonal(f, sr, amps, rng) * signal.windows.tukey(n, 0.15)
        params = {"f0_before_hz": float(f0), "f0_after_hz": float(f0 * step), "step_s": float(t_step * dur)}
    return x / np.max(np.abs(x)), params


def make_call(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One call of type ``kind`` (see :func:`call_with_params`): shape ``(n,)`` float64, peak 1."""
    return call_with_params(kind, sr, rng)[0]


def _scaled(call: np.ndarray, noise_rms: float, snr_db: float) -> tuple[np.ndarray, float]:
    """Scale a call to ``snr_db`` against ``noise_rms``, peak capped at MAX_PEAK; actual SNR."""
    rms = float(np.sqrt(np.mean(call**2)))
    gain = min(noise_rms * 10.0 ** (snr_db / 20.0) / rms, MAX_PEAK / float(np.max(np.abs(call))))
    return gain * call, 20.0 * np.log10(gain * rms / noise_rms)


def make_recording(sr: int, duration_s: float, rng: np.random.Generator, *,
                   kinds: tuple[str, ...] = CALL_TYPES, snr_db: tuple[float, float] = (10.0, 25.0),
                   gap_s: tuple[float, float] = (0.8, 4.0), colour: str = "pink",
                   noise_dbfs: float = -45.0, digital_silence_s: float = 0.0,
                   ) -> tuple[np.ndarray, list[dict], list[tuple[float, float]], list[tuple[float, float]]]:
    """A recording of calls separated by noise-only gaps.

    Parameters
    ----------
    sr : sample rate in Hz.
    duration_s : length in seconds (>= 2 s, and >= digital_silence_s + 3 s).
    kinds : call types to use, cycled in shuffled rounds so each appears about equally.
    snr_db : (low, high) range of per-call SNR in dB (see module docstring).
    gap_s : (low, high) range of noise-only gaps between calls in s; at least 0.5 s of noise
        leads and trails the recording.
    colour, noise_dbfs : background noise colour and its RMS level in dB re full scale.
    digital_silence_s : if > 0, one stretch this long (placed at random, with at least 0.5 s
        of noise either side before any call) is replaced by near-digital silence (RMS
        -100 dBFS, 5 ms fades), as after a recorder drop-out.

    Returns
    -------
    samples : shape ``(round(duration_s * sr),)`` float32, within [-1, 1].
    events : one dict per call, in time order: ``label``, ``start_s``, ``end_s`` (the call's
        extent in s), ``snr_db`` (actual), ``params`` (from :func:`call_with_params`).
    gaps : ``(start_s, end_s)`` of every stretch with no call (noise or digital silence),
        in time order; events and gaps tile ``[0, duration_s]`` without overlap.
    digital_silence : ``(start_s, end_s)`` of the near-digital-silence stretch (empty list
        when ``digital_silence_s`` is 0); it lies inside one gap.
    """
    if not kinds or any(k not in CALL_TYPES for k in kinds):
        raise UsageError(f"call types must be a non-empty subset of {', '.join(CALL_TYPES)}")
    if duration_s < max(2.0, digital_silence_s + 3.0):
        raise UsageError(f"recording of {duration_s} s too short for its content")
    n = int(round(duration_s * sr))
    margin = int(0.5 * sr)
    noise_rms = 10.0 ** (noise_dbfs / 20.0)
    x = noise_rms * ocean_noise(n, sr, rng, colour)
    silent: list[tuple[float, float]] = []
    hole = (n, n)  # samples [a, b) reserved for digital silence, calls kept `margin` away
    if digital_silence_s > 0:
        a = int(rng.uniform(margin, n - margin - digital_silence_s * sr))
        b = a + int(digital_silence_s * sr)
        fade = int(0.005 * sr)
        keep = np.zeros(b - a)  # weight of the noise: fades out, stays 0, fades back in
        keep[:fade], keep[keep.size - fade:] = np.linspace(1, 0, fade), np.linspace(0, 1, fade)
        x[a:b] = x[a:b] * keep + (1.0 - keep) * 1e-5 * rng.standard_normal(b - a)
        hole, silent = (a, b), [(a / sr, b / sr)]
    events: list[dict] = []
    order: list[str] = []
    pos = int(rng.uniform(0.5, gap_s[1]) * sr)
    while True:
        if not order:
            order = list(rng.permutation(kinds))
        kind = str(order.pop())
        call, params = call_with_params(kind, sr, rng)
        if pos < hole[1] + margin and pos + call.size > hole[0] - margin:
            pos = hole[1] + margin + int(rng.uniform(0.0, gap_s[0]) * sr)
        if pos + call.size + margin > n:
            break
        scaled, snr = _scaled(call, noise_rms, rng.uniform(*snr_db))
        x[pos:pos + call.size] += scaled
        events.append({"label": kind, "start_s": pos / sr, "end_s": (pos + call.size) / sr,
                       "snr_db": snr, "params": params})
        pos += call.size + int(rng.uniform(*gap_s) * sr)
    bounds = [0.0] + [v for e in events for v in (e["start_s"], e["end_s"])] + [n / sr]
    gaps = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2) if bounds[i + 1] > bounds[i]]
    return np.clip(x, -1.0, 1.0).astype(np.float32), events, gaps, silent


def _file_plan(i: int) -> tuple[int, tuple[str, str, str]]:
    """Sample rate and (extension, format, subtype) of recording ``i``; 9 files cover all pairs."""
    return SAMPLE_RATES[i % 3], FORMATS[(i + i // 3) % 3]


def _old_outputs(outdir: Path) -> list[Path]:
    """Files a previous :func:`write_dataset` listed in ``outdir/truth.json``."""
    try:
        truth = json.loads((outdir / "truth.json").read_text())
        names = [f["path"] for f in truth["files"]] + [c["path"] for c in truth["clips"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [outdir / p for p in names] + [outdir / "labels.csv", outdir / "clips" / "labels.csv",
                                          outdir / "truth.json"]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_dataset(outdir: str | os.PathLike, seed: int = 0, minutes: float = 5.0, n_files: int = 6,
                  clips_per_type: int = 6, force: bool = False) -> dict:
    """Write a synthetic example set with ground truth into ``outdir``; return a summary.

    Layout (paths in CSV and JSON files are relative to the folder holding that file):

    - ``recordings/rec_NN.{wav,flac,mp3}``: ``n_files`` mono recordings, together about
      ``minutes`` long (each 0.8-1.2 times the mean), sample rates cycling through
      :data:`SAMPLE_RATES` and formats through wav/flac (16-bit) and mp3 (libsndfile writes it
      gapless: decoded length and timing match the truth), every other file with a 2-4 s
      stretch (at most a quarter of the file) of near-digital silence; noise pink or brown at
      -50 to -40 dBFS.
    - ``labels.csv``: ``path,start_s,end_s,label``, one row per call.
    - ``clips/clip_NNN.wav`` and ``clips/labels.csv`` (``path,label``): ``clips_per_type``
      single-call clips (0.6-2 s, 44.1 kHz) per call type, in shuffled order: a call catalogue.
    - ``truth.json``: per file its sample rate, duration, noise, events (with SNR and call
      parameters), gaps and digital-silence stretches; per clip its label and call extent.
      Written last, so its presence means the set is complete.

    The same ``seed`` gives byte-identical files. Refuses a non-empty ``outdir`` unless
    ``force``; then it replaces the files a previous run listed in its ``truth.json``.
    """
    import soundfile as sf

    if n_files < 1 or minutes <= 0 or clips_per_type < 0:
        raise UsageError("need n_files >= 1, minutes > 0 and clips_per_type >= 0")
    mean_s = 60.0 * minutes / n_files
    if mean_s < 6.0:
        raise UsageError(f"{minutes} min over {n_files} files leaves {mean_s:.1f} s each (need >= 6 s)")
    out = Path(outdir)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise OutputError("folder is not empty (use force to overwrite a previous example set)", out)
        for p in _old_outputs(out):
            p.unlink(missing_ok=True)
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    (out / "clips").mkdir(exist_ok=True)
    files, label_rows = [], []
    for i in range(n_files):
        rng = np.random.default_rng([seed, 0, i])
        sr, (ext, fmt, subtype) = _file_plan(i)
        colour = str(rng.choice(["pink", "brown"]))
        dbfs = float(rng.uniform(-50.0, -40.0))
        dur = round(mean_s * rng.uniform(0.8, 1.2), 3)
        ds = min(float(rng.uniform(2.0, 4.0)), dur / 4) if i % 2 == 0 else 0.0
        x, events, gaps, silent = make_recording(sr, dur, rng, colour=colour, noise_dbfs=dbfs,
                                                 digital_silence_s=ds)
        rel = f"recordings/rec_{i:02d}.{ext}"
        sf.write(out / rel, x, sr, format=fmt, subtype=subtype)
        label_rows += [[rel, f"{e['start_s']:.6f}", f"{e['end_s']:.6f}", e["label"]] for e in events]
        files.append({"path": rel, "format": fmt, "subtype": subtype, "sample_rate": sr,
                      "n_samples": int(x.size), "duration_s": x.size / sr,
                      "noise": {"colour": colour, "dbfs": dbfs}, "events": events,
                      "gaps": gaps, "digital_silence": silent})
    _write_csv(out / "labels.csv", ["path", "start_s", "end_s", "label"], label_rows)
    rng = np.random.default_rng([seed, 1])
    kinds = rng.permutation(np.repeat(CALL_TYPES, clips_per_type))
    clips, clip_rows = [], []
    for j, kind in enumerate(kinds):
        crng = np.random.default_rng([seed, 2, j])
        sr = 44100
        call, _ = call_with_params(str(kind), sr, crng)
        total = int(np.clip(call.size / sr + crng.uniform(0.2, 0.6), 0.6, 2.0) * sr)
        pre = int(crng.uniform(0.3, 0.7) * max(total - call.size, 0))
        call = call[: total - pre]
        noise_rms = 10.0 ** (crng.uniform(-50.0, -40.0) / 20.0)
        y = noise_rms * ocean_noise(total, sr, crng, str(crng.choice(["pink", "brown"])))
        scaled, snr = _scaled(call, noise_rms, crng.uniform(10.0, 25.0))
        y[pre:pre + call.size] += scaled
        name = f"clip_{j:03d}.wav"
        sf.write(out / "clips" / name, np.clip(y, -1, 1).astype(np.float32), sr, subtype="PCM_16")
        clip_rows.append([name, str(kind)])
        clips.append({"path": f"clips/{name}", "label": str(kind), "sample_rate": sr,
                      "duration_s": total / sr, "start_s": pre / sr,
                      "end_s": (pre + call.size) / sr, "snr_db": snr})
    _write_csv(out / "clips" / "labels.csv", ["path", "label"], clip_rows)
    truth = {"generator": "wsd.datasets.synth", "seed": seed, "minutes": minutes, "n_files": n_files,
             "call_types": list(CALL_TYPES),
             "files": files, "clips": clips}
    tmp = out / "truth.json.tmp"
    tmp.write_text(json.dumps(truth, indent=1))
    os.replace(tmp, out / "truth.json")
    per_label = {k: sum(e["label"] == k for f in files for e in f["events"]) for k in CALL_TYPES}
    return {"outdir": str(out), "files": [f["path"] for f in files], "n_events": len(label_rows),
            "events_per_label": per_label, "audio_s": sum(f["duration_s"] for f in files),
            "n_clips": len(clips), "labels_csv": "labels.csv", "clips_csv": "clips/labels.csv",
            "truth_json": "truth.json"}
