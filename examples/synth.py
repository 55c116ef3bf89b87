#!/usr/bin/env python
"""Write synthetic underwater recordings with ground truth, for trying wsd end to end.

    python examples/synth.py OUTDIR [--seed 0] [--minutes 5] [--n-files 6] [--clips-per-type 6]

Writes OUTDIR/recordings/ (wav, flac and mp3 at 22.05, 44.1 and 48 kHz), OUTDIR/labels.csv
(path,start_s,end_s,label), OUTDIR/clips/ (single-call clips with clips/labels.csv) and
OUTDIR/truth.json (events, silent gaps, noise per file). Call types: whistle, upcall, clicks,
burst, pulsed. The generator itself is wsd.datasets.synth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

from wsd.errors import WsdError  # noqa: E402
from wsd.datasets.synth import write_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the set, print a one-line summary on stderr; exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", help="folder to write (created; must be empty unless --force)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    ap.add_argument("--minutes", type=float, default=5.0, help="total recording length in minutes")
    ap.add_argument("--n-files", type=int, default=6, help="number of recordings")
    ap.add_argument("--clips-per-type", type=int, default=6, help="catalogue clips per call type")
    ap.add_argument("--force", action="store_true", help="overwrite a previous example set in OUTDIR")
    args = ap.parse_args(argv)
    try:
        s = write_dataset(args.outdir, seed=args.seed, minutes=args.minutes, n_files=args.n_files,
                          clips_per_type=args.clips_per_type, force=args.force)
    except WsdError as err:
        print(f"synth: {err}", file=sys.stderr)
        return int(err.status)
    counts = ", ".join(f"{k} {v}" for k, v in s["events_per_label"].items())
    print(f"synth: wrote {len(s['files'])} recordings ({s['audio_s'] / 60:.1f} min, {s['n_events']} calls: "
          f"{counts}) and {s['n_clips']} clips to {s['outdir']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
