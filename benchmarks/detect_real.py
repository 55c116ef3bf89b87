"""wsd detect on the real recordings of ../shared/data/real: what the silence detector keeps,
and a cross-validated call-type result of the seeds' AutoEncoder + readout design.

    .venv/bin/python benchmarks/detect_real.py [--skip-silence] [--skip-calltype] [--epochs 8]

Silence (``wsd slice`` then ``wsd detect --silence``, default thresholds): per recording the
share of windows kept (not silence), the events and the noise floor. The blue-whale files are
50 Hz ocean-bottom seismometer data: sliced with ``--n-fft 64 --hop-length 16`` (1.28 s
frames, 0.78 Hz bins, windows of 32 frames = 11 s, about one B call), over the whole band and
over the B call's band (``--fmin 10 --fmax 25``). The hydrophone recordings are sliced at their
own rates with the default 512/256/32.

Call types: the Southern Resident killer whale types with two clips or more (S06 x4, S33 x4
once the duplicate S_33b.wav of S_33_b.wav is dropped, S45 x2: 10 clips), leave-one-clip-out.
An encoder (convae, light preset) is trained once without labels on all the orca audio; then
per held-out clip, one binary readout head per type (``wsd train --arch readout --encoder
... --positive TYPE``) is trained on the other 9 clips' windows and ``wsd detect --model``
scores the held-out clip's windows; the clip gets the type whose detector scores its windows
highest on average. Chance: 0.4 (always S06 or S33). Windows: 16 frames x 256 bins, step 4.
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

from _common import REAL, footer, passive_threads, wsd


BLUE = ["rosehilmo-blue-whale-B/strongCalls.wav", "rosehilmo-blue-whale-B/weakCalls.wav",
        "rosehilmo-blue-whale-B/Test_data.wav"]
HYDROPHONE = ["orcasound-orca-autoencoder/210825-1925_L-highlight.wav",
              "orcasound-orca-autoencoder/someCalls.wav",
              "orcasound-orcadata/snippets/j_pod.wav",
              "orcasound-hls-humpback-notebook/orcasound_lab_humpback_candidate_70s.wav",
              "orcasound-hls-humpback-notebook/orcasound_lab_2020-01-08_live218.mp3",
              "whaledr-whalebooks-ooi/OO_HYEA2_YDH_2018_11_15-05_00.mp3",
              "whaledr-whalebooks-ooi/chunk52.wav",
              "ketos-test-assets/2min.wav"]
ORCA_UNLABELLED = HYDROPHONE[:3]
SLICE = ["--frames", "16", "--step", "4"]




def silence_table(tmp: Path) -> list[tuple]:
    import h5py

    from wsd.io.store import open_file

    runs = [(p, ["--n-fft", 64, "--hop-length", 16], [], "whole band") for p in BLUE]
    runs += [(p, ["--n-fft", 64, "--hop-length", 16], ["--fmin", 10, "--fmax", 25],
              "10-25 Hz") for p in BLUE]
    runs += [(p, [], [], "whole band") for p in HYDROPHONE]
    rows = []
    for i, (rel, sl, det, band) in enumerate(runs):
        win, out = tmp / f"s{i}.h5", tmp / f"d{i}.h5"
        if not win.exists():
            wsd("slice", REAL / rel, "-o", win, "-q", *sl)
        t = time.perf_counter()
        wsd("detect", win, "--silence", "-o", out, "-q", "--force", *det)
        dt = time.perf_counter() - t
        with open_file(out, "detections") as f:
            pos = f.read("positive").astype(bool)
            floor = float(np.nanmean(f.read("floor_db")))
            dur = float(f.sources["duration_s"][0])
        with h5py.File(out) as h:
            n_ev = len(h["events/start_s"])
        rows.append((rel.split("/")[-1], band, dur, len(pos), pos.mean(), n_ev, floor, dt))
    return rows


def srkw_clips() -> dict[str, str]:
    with open(REAL / "index.csv", newline="") as f:
        lab = {r["path"]: r["label"] for r in csv.DictReader(f)
               if r["task"] == "srkw_call_type"}
    return {p: t for p, t in lab.items() if not p.endswith("S_33b.wav")}


def calltype(tmp: Path, epochs: int) -> dict:
    from wsd.io.store import open_file

    clips = srkw_clips()
    folder = REAL / "orcasound-orcadata"
    counts: dict[str, int] = {}
    for t in clips.values():
        counts[t] = counts.get(t, 0) + 1
    multi = {p: t for p, t in clips.items() if counts[t] >= 2}
    types = sorted(set(multi.values()))
    # the encoder: every orca recording, no labels (44.1 kHz; the 48 kHz one resampled)
    allwin = tmp / "orca-all.h5"
    enc = tmp / "encoder.h5"
    wsd("slice", *[folder / p for p in clips], *[REAL / p for p in ORCA_UNLABELLED],
        "--sample-rate", 44100, *SLICE, "-o", allwin, "-q")
    wsd("train", allwin, "--arch", "convae", "--arch-param", "width=0.5", "--epochs", 10,
        "--batch-size", 32, "--seed", 0, "-o", enc, "-q")
    predictions, per_clip = {}, []
    for held in multi:
        train = [p for p in multi if p != held]
        labels = tmp / "labels.csv"
        with open(labels, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for p in train:
                w.writerow([folder / p, multi[p]])
        tw, hw = tmp / "fold-train.h5", tmp / "fold-held.h5"
        wsd("slice", *[folder / p for p in train], "--labels", labels, *SLICE, "-o", tw, "-q",
            "--force")
        wsd("slice", folder / held, *SLICE, "-o", hw, "-q", "--force")
        scores = {}
        for t in types:
            m, d = tmp / f"ro-{t}.h5", tmp / f"det-{t}.h5"
            wsd("train", tw, "--arch", "readout", "--encoder", enc, "--positive", t,
                "--epochs", epochs, "--batch-size", 16, "--val-fraction", 0, "--seed", 0,
                "-o", m, "-q", "--force")
            wsd("detect", hw, "--model", m, "-o", d, "-q", "--force")
            with open_file(d, "detections") as f:
                scores[t] = float(np.mean(f.read("score")))
        pred = max(scores, key=scores.get)
        predictions[held] = pred
        per_clip.append((held, multi[held], pred, scores))
        print(f"  {held}: {multi[held]} -> {pred}  "
              + " ".join(f"{t} {s:.2f}" for t, s in scores.items()), file=sys.stderr)
    acc = float(np.mean([predictions[p] == multi[p] for p in multi]))
    majority = max(counts[t] for t in types) / len(multi)
    return {"accuracy": acc, "n": len(multi), "types": types, "chance": majority,
            "per_clip": per_clip}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-silence", action="store_true")
    ap.add_argument("--skip-calltype", action="store_true")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of each readout head")
    ap.add_argument("--workdir", type=Path, help="keep the intermediate files in this "
                    "existing folder (default: a temporary folder, removed at the end)")
    args = ap.parse_args(argv)
    if not (REAL / "index.csv").is_file():
        print(f"skipped: real recordings not found at {REAL}")
        return 0
    passive_threads()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wsd-detreal-") as d:
        tmp = args.workdir or Path(d)
        if not args.skip_silence:
            rows = silence_table(tmp)
            print("silence detector (wsd detect --silence, default thresholds)")
            print(f"{'recording':48s}{'band':>12s}{'length s':>10s}{'windows':>9s}"
                  f"{'kept':>8s}{'events':>8s}{'floor dB':>10s}{'detect s':>10s}")
            for name, band, dur, n, kept, ev, floor, dt in rows:
                print(f"{name:48s}{band:>12s}{dur:>10.0f}{n:>9d}{kept:>8.1%}{ev:>8d}"
                      f"{floor:>10.1f}{dt:>10.1f}")
        if not args.skip_calltype:
            r = calltype(tmp, args.epochs)
            print(f"\nSRKW call types, leave-one-clip-out over {r['n']} clips of "
                  f"{', '.join(r['types'])} (convae encoder without labels + one readout "
                  f"detector per type, {args.epochs} epochs): accuracy {r['accuracy']:.2f} "
                  f"(majority class {r['chance']:.2f})")
            print(json.dumps([(h, t, p) for h, t, p, _ in r["per_clip"]]))
    print(footer(t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
