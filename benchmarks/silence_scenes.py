"""Event detection by the untrained silence detector (``wsd detect --silence``) on killer
whale calls in 5-minute scenes built from real pieces, and which of its own flags do best.

    .venv/bin/python benchmarks/silence_scenes.py [--workdir DIR] [--scenes 4] [--quick]
        [--few-labels]

There is no labelled 5-minute hydrophone recording of killer whale calls in
``../shared/data/real``, so scenes are assembled from real pieces (written to ``--workdir``, a
temporary folder by default, never inside the project: the licences forbid shipping the
audio):

* Background: one real site per scene. The hydrophone noise clips of
  ``ZER-0-NE-OrcaCNN-Demo/orca_neg`` (index.csv task ``detect``, label ``noise``) recorded at
  44.1 kHz and at least 10 s long (8 clips of 11-20 s), mixed to mono; scene *i* of a set
  uses the set's clip *i* (mod their number). Its background is random stretches of that clip
  (5 s up to all of it, random polarity) joined with 50 ms equal-power crossfades, set to
  -40 dBFS in the 500 Hz-12 kHz band (the joins are listed in ``NAME_background.csv``). The
  clips keep their own transients (clicks, knocks, ship noise), which are the false alarms
  an untrained detector meets. Most of them were recorded at 16 kHz (nothing above 7.7 kHz;
  one, neg_07, has codec drop-outs above 17 kHz): the calls added to a site are low-passed
  (8th order) at its bandwidth (the highest frequency within 30 dB of its 1-4 kHz level), as
  that recorder would have heard them. (A first version cut the background from all the
  clips of a set in turn, short ones and 22.05 kHz ones included: every few seconds a new
  site with its own spectrum, which the per-bin floor flagged whole; the defaults scored
  event F1 0.08 with events 6.5 s long. A real 5-minute recording is one site.)
* Calls: the 136 Southern Resident single calls of ``coastal-science-call-catalog-viewer``
  (31 types, 22-44.1 kHz, resampled to 44.1 kHz, mono). A call's extent inside its clip is
  found by energy: the clip's 500 Hz-12 kHz level (capped at 0.45 x its rate) in 20 ms frames
  every 10 ms, smoothed over 50 ms; frames at least 6 dB above the clip's 10th percentile and
  within 30 dB of its peak (within 3 dB of it in a clip whose level varies less); the extent
  runs from the first such frame to the last (median 0.8 s). The clip is high-passed at 300 Hz
  (its low-frequency rumble is the catalogue recording's, not the call's, and would dominate
  the waveform once scaled), and the extent plus 0.1 s either side is cut out, faded in and
  out over 25 ms, scaled and added.
  8-15 calls a scene (uniform), at random times, at least 2 s between the inserted pieces.
* SNR: per call, drawn uniformly from ``--snr`` (0-20 dB): the call's power over its extent
  in the 500 Hz-12 kHz band (capped at the site's and the clip's bandwidth; 4th-order
  Butterworth, zero phase; the clip's own background included) over the scene background's
  power in the same band and span.
* Truth: one event per call, its extent (not the whole clip), as a ``path,start_s,end_s,label``
  CSV (``wsd detect --truth`` reads it; also with the SNR, call type and clip).
* Two scene sets, ``tune`` and ``check``: different seeds, disjoint sites (noise clips
  alternating down the clips sorted by length) and disjoint call clips (whole call types,
  alternating down the types shuffled with a fixed seed), so a setting chosen on ``tune`` is
  confirmed on ``check``.

Then per set: ``wsd slice SCENES -o win.h5`` (the defaults; also ``--frames 32 --step 4``,
shorter windows, which mattered while events were made of whole windows) and ``wsd detect
win.h5 --silence --truth TRUTH [flags]``; its default events are the runs of active frames
(``--events frames``), the sweep also tries the windows merged (``--events merge``, the
previous default). Event scores (one-to-one at IoU >= 0.3, DCASE style) are read from the
detections' stored metrics (pooled over the set's scenes) and computed per scene with the same
function (``wsd.metrics.events.event_metrics``) for mean +- sd over scenes.

The sweep on ``tune``: every flag of detect --silence alone around the defaults (--events,
--on-db, --off-db, --min-gap, --min-duration, --floor-percentile, --top-frac,
--min-run-frames, --floor-span-s, --min-active-frac, --fmin/--fmax), then a greedy coordinate pass from the
best of those; the defaults, the best setting, CANDIDATES and the best one-flag changes are
then run on ``check`` too.
Prints per-set tables (pooled F1, precision, recall, false positives per hour, AP, and
mean +- sd of F1 over scenes), recall by SNR, an error breakdown, and the total time.

``--few-labels`` adds a few-label detector across sites (:func:`few_labels`): the default
encoder trained on tune's windows without labels, a linear probe on tune's calls, ``wsd
detect`` on check with its defaults and with windows merged.

Skips with a message when ``../shared/data/real`` is absent (or set ``WSD_REAL_DATA``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REAL, footer, mean_sd, passive_threads, wsd

SR = 44100
SCENE_S = 300.0
BAND = (500.0, 12000.0)
NOISE_DBFS = -40.0      # background level in BAND
XFADE_S = 0.05
SITE_MIN_S = 10.0       # noise clips long enough to stand for a site
MARGIN_S = 0.1          # audio kept either side of a call's extent
FADE_S = 0.025
HIGHPASS_HZ = 300.0     # call clips, before insertion
GAP_S = 2.0             # between inserted pieces
N_CALLS = (8, 15)
SEEDS = {"tune": 1, "check": 2}

NOISE_DIR = "ZER-0-NE-OrcaCNN-Demo"
CATALOGUE = "coastal-science-call-catalog-viewer"

#: Front ends: the slice defaults, and windows half as long every 4 frames (46 ms).
FRONT_ENDS = {"default": [], "frames32": ["--frames", "32", "--step", "4"]}

#: The sweep, one flag at a time around the defaults (detect --silence defaults:
#: events of the active frames (--events auto = frames), on 10, off 4, min-gap 0,
#: min-duration 0, floor-percentile 20, top-frac 0.01, min-run-frames 3, floor-span-s 30,
#: min-active-frac 0.03 (which decides windows, not frame events), the whole band).
SWEEP = {
    "--events": ["merge"],
    "--on-db": ["6", "8", "12", "14", "16", "20"],
    "--off-db": ["2", "6", "8"],
    "--min-gap": ["0.2", "0.5", "1.0"],
    "--min-duration": ["0.5", "1.0", "1.5"],
    "--floor-percentile": ["10", "30", "50"],
    "--top-frac": ["0.03", "0.1"],
    "--min-run-frames": ["1", "6", "10"],
    "--floor-span-s": ["10", "60"],
    "--min-active-frac": ["0.1", "0.25", "0.5"],
    "band": ["500-12000", "1000-12000", "500-8000"],
    "--no-band-spread": [None],
    "--min-spread-db": ["1", "6"],
}


#: Settings always scored on both sets beside the sweep's choice: with windows merged (the
#: previous default events), the two flags that won alone on both sets and both front ends
#: then (whole windows mostly active, the floor at the median frame level), with --on-db 14
#: (found by hand on the first run of this script); with frame events, the floor and on-db;
#: and the default without --band-spread (the default before stop 28).
CANDIDATES = [{"--no-band-spread": None},
              {"--events": "merge", "--min-active-frac": "0.5", "--floor-percentile": "50"},
              {"--events": "merge", "--min-active-frac": "0.5", "--floor-percentile": "50",
               "--on-db": "14"},
              {"--floor-percentile": "50"}, {"--floor-percentile": "50", "--on-db": "14"}]


# ----------------------------------------------------------------------------- audio
def _index() -> list[dict]:
    with open(REAL / "index.csv") as fh:
        return list(csv.DictReader(fh))


def _load(path: Path) -> np.ndarray:
    """Mono (channel mean) float64 at SR."""
    import soundfile as sf
    from scipy.signal import resample_poly

    x, sr = sf.read(path, always_2d=True, dtype="float64")
    x = x.mean(axis=1)
    if sr != SR:
        g = np.gcd(int(sr), SR)
        x = resample_poly(x, SR // g, int(sr) // g)
    return x


def _band_sos(sr: int = SR, top: float | None = None):
    from scipy.signal import butter

    hi = min(BAND[1], top or BAND[1], 0.45 * sr)
    return butter(4, [BAND[0], hi], btype="bandpass", fs=sr, output="sos")


def _band(x: np.ndarray, sos) -> np.ndarray:
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(sos, x)


def _power(x: np.ndarray) -> float:
    return float(np.mean(x * x)) + 1e-20


def call_extent(x: np.ndarray, native_sr: int) -> tuple[float, float]:
    """(start, end) s of the call in a clip at SR: see the module docstring."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import stft

    n = int(0.02 * SR)
    hop = int(0.01 * SR)
    f, _, z = stft(x, SR, nperseg=n, noverlap=n - hop, boundary=None, padded=False)
    band = (f >= BAND[0]) & (f <= min(BAND[1], 0.45 * native_sr))
    lv = 10 * np.log10(np.sum(np.abs(z[band]) ** 2, axis=0) + 1e-20)
    lv = uniform_filter1d(lv, 5, mode="nearest")
    # (a clip with under 9 dB of dynamics, one call from end to end: within 3 dB of the peak)
    thr = min(max(np.percentile(lv, 10) + 6.0, lv.max() - 30.0), lv.max() - 3.0)
    on = np.flatnonzero(lv >= thr)
    start, end = on[0] * hop / SR, (on[-1] * hop + n) / SR
    return start, min(end, len(x) / SR)


def site_bandwidth(x: np.ndarray) -> float:
    """Highest frequency (Hz) where a noise clip's spectrum (Welch, smoothed over 450 Hz)
    is within 30 dB of its 1-4 kHz median: most of the clips were recorded at 16 kHz and hold
    nothing above 7.7 kHz."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import welch

    f, p = welch(x, SR, nperseg=2048)
    lv = uniform_filter1d(10 * np.log10(p + 1e-30), 21)
    ref = np.median(lv[(f >= 1000) & (f <= 4000)])
    return float(f[np.flatnonzero(lv >= ref - 30)[-1]])


def _fade(n_total: int, n_fade: int) -> np.ndarray:
    w = np.ones(n_total)
    r = np.linspace(0.0, 1.0, n_fade, endpoint=False)
    w[:n_fade], w[n_total - n_fade:] = r, r[::-1]
    return w


def _background(rng, clip: np.ndarray, seconds: float, sos
                ) -> tuple[np.ndarray, list[float]]:
    """``seconds`` of one site: random stretches of ``clip`` (5 s up to all of it, random
    polarity) joined by equal-power crossfades, set to NOISE_DBFS in BAND; and the joins (s)."""
    n_out = int(seconds * SR)
    nx = int(XFADE_S * SR)
    t = np.linspace(0, np.pi / 2, nx)
    fin, fout = np.sin(t), np.cos(t)        # equal power for uncorrelated noise
    out, joins = np.zeros(0), []
    while len(out) < n_out + nx:
        n = int(rng.uniform(min(5 * SR, len(clip)), len(clip)))
        a = int(rng.integers(0, len(clip) - n + 1))
        x = clip[a:a + n] * rng.choice([-1.0, 1.0])
        if len(out) == 0:
            out = x.copy()
        else:
            joins.append((len(out) - nx) / SR)
            out = np.concatenate([out[:-nx], out[-nx:] * fout + x[:nx] * fin, x[nx:]])
    out = out[:n_out]
    return out * (10 ** (NOISE_DBFS / 20) / np.sqrt(_power(_band(out, sos)))), \
        [j for j in joins if j < seconds]


def _place(rng, lengths: list[int], n_total: int) -> list[int] | None:
    """Random starts (samples) of pieces of ``lengths``, >= GAP_S apart and 1 s from the
    ends; None when the draw fails."""
    gap, edge = int(GAP_S * SR), SR
    for _ in range(200):
        starts = []
        for n in lengths:
            for _ in range(200):
                s = int(rng.integers(edge, n_total - edge - n))
                if all(s + n + gap <= a or b + gap <= s for a, b in starts):
                    starts.append((s, s + n))
                    break
            else:
                break
        if len(starts) == len(lengths):
            return [a for a, _ in starts]
    return None


def make_set(name: str, noise_rows: list[dict], call_rows: list[dict], n_scenes: int,
             snr: tuple[float, float], folder: Path) -> tuple[list[Path], Path, list[dict]]:
    """Write ``n_scenes`` scenes and their truth table under ``folder``; returns the scene
    paths, the truth CSV and the truth rows (with SNR and type)."""
    import soundfile as sf
    from scipy.signal import butter

    rng = np.random.default_rng(SEEDS[name])
    folder.mkdir(parents=True, exist_ok=True)
    sos = _band_sos()
    hp = butter(4, HIGHPASS_HZ, btype="highpass", fs=SR, output="sos")
    sites = [_load(REAL / NOISE_DIR / r["path"]) for r in noise_rows]
    tops = [site_bandwidth(x) for x in sites]
    calls = []
    for r in call_rows:
        x = _band(_load(REAL / CATALOGUE / r["path"]), hp)
        a, b = call_extent(x, int(r["samplerate"]))
        lo, hi = max(0.0, a - MARGIN_S), min(len(x) / SR, b + MARGIN_S)
        piece = x[int(lo * SR):int(hi * SR)]
        piece = piece * _fade(len(piece), int(FADE_S * SR))
        calls.append({"piece": piece, "on": a - lo, "off": b - lo, "type": r["label"],
                      "clip": Path(r["path"]).name,
                      "top": 0.45 * int(r["samplerate"])})
    order = rng.permutation(len(calls))
    used = 0
    paths, truth, joins = [], [], []
    for i in range(n_scenes):
        site = i % len(sites)
        bg, pieces = _background(rng, sites[site], SCENE_S, sos)
        k = int(rng.integers(N_CALLS[0], N_CALLS[1] + 1))
        if used + k > len(order):  # more calls than clips: reuse, reshuffled
            order, used = np.concatenate([order[used:], rng.permutation(len(calls))]), 0
        chosen = [calls[j] for j in order[used:used + k]]
        used += k
        starts = _place(rng, [len(c["piece"]) for c in chosen], len(bg))
        if starts is None:
            raise SystemExit("could not place the calls; fewer calls or longer scenes")
        x = bg.copy()
        path = folder / f"{name}_scene{i:02d}.wav"
        lowpass = (butter(8, tops[site], btype="lowpass", fs=SR, output="sos")
                   if tops[site] < 0.45 * SR else None)
        for c, s in zip(chosen, starts):
            a, b = s + int(c["on"] * SR), s + int(c["off"] * SR)
            piece = c["piece"] if lowpass is None else _band(c["piece"], lowpass)
            bsos = _band_sos(top=min(c["top"], tops[site]))
            p_call = _power(_band(piece, bsos)[int(c["on"] * SR):int(c["off"] * SR)])
            p_bg = _power(_band(bg[s:s + len(piece)], bsos)[a - s:b - s])
            want = rng.uniform(*snr)
            x[s:s + len(piece)] += piece * np.sqrt(p_bg / p_call * 10 ** (want / 10))
            truth.append({"path": str(path), "start_s": f"{a / SR:.4f}",
                          "end_s": f"{b / SR:.4f}", "label": "call", "snr_db": f"{want:.2f}",
                          "type": c["type"], "clip": c["clip"],
                          "site": Path(noise_rows[site]["path"]).stem})
        peak = np.max(np.abs(x))
        if peak > 0.99:  # a loud call: the whole scene down, SNRs unchanged
            x *= 0.99 / peak
            print(f"{path.name}: scaled by {20 * np.log10(0.99 / peak):.1f} dB to fit "
                  "full scale", file=sys.stderr)
        sf.write(path, x.astype(np.float32), SR, subtype="FLOAT")
        paths.append(path)
        joins += [{"path": str(path), "join_s": f"{a:.3f}",
                   "clip": Path(noise_rows[site]["path"]).name} for a in pieces]
    table = folder / f"{name}_truth.csv"
    with open(table, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(truth[0]))
        w.writeheader()
        w.writerows(truth)
    with open(folder / f"{name}_background.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(joins[0]))
        w.writeheader()
        w.writerows(joins)
    return paths, table, truth


def split_sources(rows: list[dict]) -> dict[str, tuple[list[dict], list[dict]]]:
    """Disjoint (noise clips, call clips) for ``tune`` and ``check``."""
    noise = sorted((r for r in rows if r["source"] == NOISE_DIR and r["task"] == "detect"
                    and r["label"] == "noise" and r["path"].startswith("orca_neg/")
                    and int(r["samplerate"]) == SR and float(r["duration_s"]) >= SITE_MIN_S),
                   key=lambda r: (-float(r["duration_s"]), r["path"]))
    cat = [r for r in rows if r["source"] == CATALOGUE]
    types = sorted({r["label"] for r in cat})
    types = [types[i] for i in np.random.default_rng(0).permutation(len(types))]
    half = {t: ("tune", "check")[i % 2] for i, t in enumerate(types)}
    return {name: ([r for i, r in enumerate(noise) if i % 2 == k],
                   [r for r in cat if half[r["label"]] == name])
            for k, name in enumerate(("tune", "check"))}


# ----------------------------------------------------------------------------- scoring
def _flags(setting: dict) -> list[str]:
    out = []
    for k, v in setting.items():
        if k == "band":
            lo, hi = v.split("-")
            out += ["--fmin", lo, "--fmax", hi]
        elif v is None:  # a switch
            out.append(k)
        else:
            out += [k, v]
    if "--on-db" in setting and "--click-db" not in setting:  # detect needs click >= on
        out += ["--click-db", str(max(15.0, float(setting["--on-db"])))]
    return out


def _name(setting: dict) -> str:
    return " ".join(k if v is None else f"{k} {v}" for k, v in setting.items()) or "defaults"


def _matches(det: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matched flags of detections and references, as wsd.metrics.events.match_count pairs
    them (maximum one-to-one matching at IoU >= 0.3)."""
    from scipy.optimize import linear_sum_assignment

    from wsd.metrics.events import IOU, iou_matrix

    dm, rm = np.zeros(len(det), bool), np.zeros(len(ref), bool)
    m = iou_matrix(det, ref)
    ok = m >= IOU
    if ok.any():
        r, c = linear_sum_assignment(-(ok * (1.0 + m)))
        good = ok[r, c]
        dm[r[good]], rm[c[good]] = True, True
    return dm, rm


def score(det: Path, truth: list[dict]) -> dict:
    """Pooled event scores (as stored by wsd detect), per-scene scores and error counts."""
    import h5py

    from wsd.io.store import open_file
    from wsd.metrics.events import event_metrics, iou_matrix

    with open_file(det) as f:
        pooled = json.loads(f.attrs("/")["metrics_json"])["events"]
        paths = [str(p) for p in f.sources["path"]]
        dur = np.asarray(f.sources["duration_s"], np.float64)
    with h5py.File(det) as h:
        ev = {k: h[f"events/{k}"][()] for k in ("source_id", "start_s", "end_s", "score")}
    per_scene, err = [], dict(fp_clear=0, fp_touch=0, fn_unseen=0, fn_touch=0, split=0,
                              merged=0)
    snr_hit: list[tuple[float, bool]] = []
    for s, p in enumerate(paths):
        rows = [t for t in truth if Path(t["path"]).name == Path(p).name]
        ref = np.array([(float(t["start_s"]), float(t["end_s"])) for t in rows]).reshape(-1, 2)
        m = ev["source_id"] == s
        d = np.stack([ev["start_s"][m], ev["end_s"][m], ev["score"][m]], axis=1)
        per_scene.append({**event_metrics({0: d}, {0: ref}, dur[s] / 3600),
                          "site": rows[0]["site"] if rows else "?"})
        dm, rm = _matches(d, ref)
        inter = iou_matrix(d, ref) > 0
        err["fp_clear"] += int((~dm & ~inter.any(1)).sum())
        err["fp_touch"] += int((~dm & inter.any(1)).sum())
        err["fn_unseen"] += int((~rm & ~inter.any(0)).sum())
        err["fn_touch"] += int((~rm & inter.any(0)).sum())
        err["split"] += int((inter.sum(0) > 1).sum())    # a call overlapped by 2+ events
        err["merged"] += int((inter.sum(1) > 1).sum())   # an event over 2+ calls
        snr_hit += [(float(t["snr_db"]), bool(h)) for t, h in zip(rows, rm)]
    return {"pooled": pooled, "scenes": per_scene, "errors": err, "snr": snr_hit,
            "n_events": int(len(ev["start_s"])),
            "mean_len": float(np.mean(ev["end_s"] - ev["start_s"])) if len(ev["start_s"])
            else float("nan")}


def run_setting(win: Path, table: Path, truth: list[dict], setting: dict, work: Path,
                tag: str) -> dict:
    det = work / f"det-{tag}.h5"
    wsd("detect", win, "--silence", *_flags(setting), "--truth", table, "-o", det,
        "--force", "-q")
    r = score(det, truth)
    det.unlink()
    return r


# ----------------------------------------------------------------------------- tables
HEAD = ("| setting | event F1 | precision | recall | FP / h | AP | F1 per scene (mean±sd) "
        "| events | mean length (s) |\n|---|---|---|---|---|---|---|---|---|")


def _row(name: str, r: dict) -> str:
    p = r["pooled"]
    ap = p["average_precision"]
    return (f"| {name} | {p['f1']:.3f} | {p['precision']:.3f} | {p['recall']:.3f} | "
            f"{p['fp_per_hour']:.1f} | {'-' if ap is None else f'{ap:.3f}'} | "
            f"{mean_sd([s['f1'] for s in r['scenes']])} | {r['n_events']} | "
            f"{r['mean_len']:.2f} |")


def _snr_line(r: dict) -> str:
    a = np.array(r["snr"], dtype=np.float64)
    bins = [(0, 5), (5, 10), (10, 15), (15, 20.01)]
    parts = []
    for lo, hi in bins:
        m = (a[:, 0] >= lo) & (a[:, 0] < hi)
        if m.any():
            parts.append(f"{lo:g}-{min(hi, 20):g} dB {a[m, 1].mean():.2f} ({int(m.sum())})")
    return "recall by SNR: " + ", ".join(parts)


def _site_line(r: dict) -> str:
    return "F1 (FP/h) per scene: " + ", ".join(
        f"{s['site']} {s['f1']:.2f} ({s['fp_per_hour']:.0f})" for s in r["scenes"])


def _err_line(r: dict) -> str:
    e = r["errors"]
    return (f"errors: FP clear of any call {e['fp_clear']}, FP overlapping a call (IoU < 0.3)"
            f" {e['fp_touch']}; missed calls with no event on them {e['fn_unseen']}, "
            f"overlapped but IoU < 0.3 {e['fn_touch']}; calls split over 2+ events "
            f"{e['split']}, events spanning 2+ calls {e['merged']}")


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where scenes, windows and detections go [a temporary folder]")
    ap.add_argument("--scenes", type=int, default=4, help="scenes per set (tune, check)")
    ap.add_argument("--snr", type=float, nargs=2, default=(0.0, 20.0),
                    help="per-call SNR range (dB, in 500 Hz-12 kHz)")
    ap.add_argument("--quick", action="store_true",
                    help="defaults and the one-flag sweep's best only, default front end")
    ap.add_argument("--few-labels", action="store_true",
                    help="also: the default encoder trained on tune (no labels), a probe on "
                         "tune's calls, detect on check (defaults, and merged windows)")
    args = ap.parse_args()
    if not (REAL / "index.csv").exists():
        print(f"skipped: {REAL} is absent (the real recordings; set WSD_REAL_DATA)")
        return
    passive_threads()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wsd-silence-scenes-") as tmp:
        work = (args.workdir or Path(tmp)).resolve()  # wsd runs in the project root
        if work.resolve().is_relative_to(Path(__file__).resolve().parent.parent):
            raise SystemExit("--workdir must lie outside the project (audio licences)")
        work.mkdir(parents=True, exist_ok=True)
        _run(args, work, t0)
    print(footer(t0))


def _run(args, work: Path, t0: float) -> None:
    sets = {}
    for name, (noise_rows, call_rows) in split_sources(_index()).items():
        paths, table, truth = make_set(name, noise_rows, call_rows, args.scenes, tuple(args.snr),
                                       work / name)
        sets[name] = (paths, table, truth)
        print(f"{name}: {len(paths)} scenes x {SCENE_S:.0f} s, {len(truth)} calls "
              f"(types {len({t['type'] for t in truth})}, from {len(call_rows)} clips), noise "
              f"clips {', '.join(Path(r['path']).stem for r in noise_rows)}; median call "
              f"{np.median([float(t['end_s']) - float(t['start_s']) for t in truth]):.2f} s",
              file=sys.stderr)
    fronts = {"default": []} if args.quick else FRONT_ENDS
    wins = {}
    for name, (paths, _, _) in sets.items():
        for fe, flags in fronts.items():
            wins[name, fe] = work / f"{name}-{fe}.h5"
            wsd("slice", *paths, "-o", wins[name, fe], *flags, "--force", "-q")
    print(f"sliced in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    def run(name, fe, setting):
        paths, table, truth = sets[name]
        return run_setting(wins[name, fe], table, truth, setting, work, f"{name}-{fe}")

    def f1(r):
        return r["pooled"]["f1"]

    lines = []
    for fe in fronts:
        tune: dict[str, dict] = {}
        base = run("tune", fe, {})
        tune["defaults"] = base
        single = []
        for flag, values in SWEEP.items():
            for v in values:
                s = {flag: v}
                tune[_name(s)] = r = run("tune", fe, s)
                single.append((f1(r), flag, v))
        print(f"[{fe}] one-flag sweep done at {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        # greedy coordinate pass from the defaults, flags in order of their best one-flag gain
        best: dict[str, str] = {}
        best_f1 = f1(base)
        gain = {}
        for g, flag, v in single:
            gain[flag] = max(gain.get(flag, -1.0), g)
        if not args.quick:
            for flag in sorted(SWEEP, key=lambda k: -gain[k]):
                for v in SWEEP[flag]:
                    s = {**best, flag: v}
                    if float(s.get("--off-db", 4)) > float(s.get("--on-db", 10)):
                        continue  # detect refuses --off-db above --on-db
                    key = _name(s)
                    if key not in tune:
                        tune[key] = run("tune", fe, s)
                    if f1(tune[key]) > best_f1 + 1e-9:
                        best_f1, best = f1(tune[key]), s
        else:
            g, flag, v = max(single)
            if g > best_f1:
                best = {flag: v}
        print(f"[{fe}] coordinate pass done at {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        lines += [f"\n### front end `{fe}` {' '.join(FRONT_ENDS[fe])}: tune set, every "
                  "setting tried (pooled over scenes)", "", HEAD]
        lines += [_row(k, r) for k, r in sorted(tune.items(), key=lambda kv: -f1(kv[1]))]
        # check: defaults, the best, and the best one-flag changes that helped on tune
        helped = sorted(((g, f, v) for g, f, v in single if g > f1(base)), reverse=True)[:4]
        to_check = {"defaults": {}, _name(best): best}
        for s in CANDIDATES:
            to_check.setdefault(_name(s), s)
        for _, flag, v in helped:
            to_check.setdefault(_name({flag: v}), {flag: v})
        lines += [f"\n### front end `{fe}`: defaults and the settings chosen on tune, on "
                  "both sets", "", HEAD.replace("| setting |", "| set | setting |")
                  .replace("|---|", "|---|---|", 1)]
        detail = []
        for label, s in to_check.items():
            for name in ("tune", "check"):
                r = tune[label] if name == "tune" and label in tune else run(name, fe, s)
                lines.append(_row(f"{name} | {label}", r))
                detail.append(f"* {name}, {label}: {_site_line(r)}; {_snr_line(r)}; "
                              f"{_err_line(r)}")
        lines += [""] + detail
    print("\n".join(lines))
    if args.few_labels:
        print("\n".join(few_labels(wins, sets, work)))


def few_labels(wins: dict, sets: dict, work: Path) -> list[str]:
    """A few-label detector across sites: ``wsd train`` (the default encoder, no labels) on
    tune's windows, ``wsd embed`` both sets (a row a window), ``wsd train --arch linear`` on
    tune's calls (``--labels`` the truth table, ``--label-cover 0.7``), ``wsd detect`` check
    with its defaults (the recipe, on these 5-minute scenes) and with windows merged
    (``--events merge --calibrate none``, the defaults before stop 28)."""
    enc, clf = work / "fl-enc.h5", work / "fl-probe.h5"
    etr, eva = work / "fl-tune.h5", work / "fl-check.h5"
    t = time.perf_counter()
    wsd("train", wins["tune", "default"], "-o", enc, "--seed", "0", "--force", "-q")
    wsd("embed", wins["tune", "default"], "--model", enc, "--rows", "windows", "-o", etr,
        "--force", "-q")
    wsd("embed", wins["check", "default"], "--model", enc, "--rows", "windows", "-o", eva,
        "--force", "-q")
    wsd("train", etr, "--arch", "linear", "--positive", "call", "--labels", sets["tune"][1],
        "--label-cover", "0.7", "-o", clf, "--force", "-q")
    truth = sets["check"][2]
    lines = ["", "### few labels: a probe trained on tune's calls, detect on check", "",
             HEAD]
    for name, flags in (("detect defaults (the recipe)", []),
                        ("--events merge --calibrate none", ["--events", "merge",
                                                             "--calibrate", "none"]),
                        ("--events merge --calibrate none --min-gap 0.3",
                         ["--events", "merge", "--calibrate", "none", "--min-gap", "0.3"])):
        det = work / "fl-det.h5"
        wsd("detect", eva, "--model", clf, *flags, "--truth", sets["check"][1], "-o", det,
            "--force", "-q")
        lines.append(_row(name, score(det, truth)))
    lines.append(f"\n(seed 0; {time.perf_counter() - t:.0f} s)")
    return lines


if __name__ == "__main__":
    main()
