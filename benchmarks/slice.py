"""Benchmark ``wsd slice`` against the raw libraries, and its memory on long files.

    .venv/bin/python benchmarks/slice.py [--minutes 10] [--long-minutes 120] [--rounds 3]

Prints one table:

* throughput: wall time of ``wsd slice FILES -o OUT.h5`` (a child process, start-up
  included) against a bare child process doing the same work with nothing but the libraries
  wsd uses: soundfile block decode, mono mix, periodic Hann + scipy.fft.rfft STFT (512/256),
  dB, 32-frame float16 windows without overlap appended to one chunked h5py dataset. wsd is
  given the flags of that work (``SAME_WORK``: its defaults are a mel/log1p/whitened front
  end with overlapping windows, more work). Three shapes: one 10-minute 44.1 kHz wav, the
  same as mp3, and ``--files`` 200 flac files of 10 s (an Orcasound-style archive, where
  per-file overhead counts); each round runs both, the best of ``--rounds`` counts (the
  machine may be shared). Ratio = bare time / wsd time (>= 0.9 is the target).
* workers: four 10-minute mp3s, four 30-minute ones (``--workers-minutes``) and the 200
  flac files, sliced with ``--workers 1`` and ``--workers 2`` into one merged file
  (speed-up; >= 1.7 is the target on a machine with two idle cores), with the cores kept
  busy on average (CPU time / wall time) and the cores other processes used meanwhile
  (``/proc/stat``, Linux): a speed-up can only show when the machine has them free. The
  worker processes fork from a server that imports the libraries once (about 0.7 s of CPU,
  started first thing, beside the coordinator's own start-up); each finished shard is
  copied into the output while later ones are sliced, so what stays serial is the
  start-up, the last shard's copy and the output's rows. Each timed run writes a new
  output (the previous round's is deleted first, untimed: replacing a 200 MB file written
  seconds before waits for its write-back, 0.1-0.7 s here, whatever the workers).
* memory: peak RSS (``os.wait4``'s ru_maxrss of the ``wsd slice`` child) for 30-minute and
  2-hour 44.1 kHz wav and mp3 files (target < 500 MB and independent of length).

wsd's modules are byte-compiled first (``compileall``), as an installed package's are: with
``PYTHONDONTWRITEBYTECODE`` set, an editable install would otherwise compile them from source
in every run.

Test audio is generated in a temporary folder (removed afterwards): chirps, tones and noise.
The 10-minute mp3 is encoded by libsndfile's LAME with its defaults (VBR, with an Info tag),
which takes a minute at about 15x real time. The 30-minute and 2-hour mp3s would take far
longer, so they repeat the MPEG frames of one minute encoded at a constant 160 kbit/s (the
Info frame dropped; libsndfile then estimates the length from the size, which is right for
constant bitrate); decoding cost per second of audio is the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SR = 44100


# ---------------------------------------------------------------- the bare loop (child)

def bare(srcs: list[str], dst: str) -> None:
    """soundfile blocks -> mono -> STFT -> dB -> 32-frame windows -> h5py, nothing else;
    the windows of every file in ``srcs`` appended to one dataset."""
    import h5py
    import numpy as np
    import scipy.fft
    import soundfile as sf

    n_fft, hop, frames, bins = 512, 256, 32, 256
    w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    scale = np.float32(20 * np.log10(2 / w.sum()))
    floor = np.float32(10 ** ((-100 - scale) / 20))
    with h5py.File(dst, "w") as h:
        ds = h.create_dataset("windows", (0, frames, bins), maxshape=(None, frames, bins),
                              dtype="f2", chunks=(64, frames, bins))
        n = 0
        for src in srcs:
            with sf.SoundFile(src) as f:
                tail = np.zeros(0, np.float32)
                for blk in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                    x = np.concatenate([tail, blk.mean(axis=1, dtype=np.float32)])
                    nf = ((len(x) - n_fft) // hop + 1) // frames * frames \
                        if len(x) >= n_fft else 0
                    if nf <= 0:
                        tail = x
                        continue
                    fr = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:nf]
                    mag = np.abs(scipy.fft.rfft(fr * w, axis=1)[:, :bins])
                    db = 20 * np.log10(np.maximum(mag, floor)) + scale
                    win = db.reshape(-1, frames, bins).astype(np.float16)
                    ds.resize(n + len(win), axis=0)
                    ds[n:] = win
                    n += len(win)
                    tail = x[nf * hop:]


# ---------------------------------------------------------------- test audio

def signal_block(start: int, n: int):
    """n samples from sample ``start`` of a deterministic test signal, float32 in [-1, 1]."""
    import numpy as np

    t = (start + np.arange(n)) / SR
    rng = np.random.default_rng(start)
    x = 0.2 * np.sin(2 * np.pi * (1500 + 700 * np.sin(2 * np.pi * 0.3 * t)) * t)
    x += 0.1 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.05 * t) > 0)
    x += 0.02 * rng.standard_normal(n)
    return x.astype(np.float32)


def write_wav(path: Path, minutes: float) -> None:
    import soundfile as sf

    total, block = int(minutes * 60 * SR), SR * 30
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for a in range(0, total, block):
            f.write(signal_block(a, min(block, total - a)))


def mp3_frames(path: Path) -> bytes:
    """The MPEG audio frames of an mp3 written by libsndfile, without ID3 tags and without
    the Xing/Info frame."""
    b = Path(path).read_bytes()
    i = 0
    if b[:3] == b"ID3":
        i = 10 + ((b[6] & 127) << 21 | (b[7] & 127) << 14 | (b[8] & 127) << 7 | (b[9] & 127))
    end = len(b) - (128 if b[-128:-125] == b"TAG" else 0)
    rates = {1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
             0: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]}
    srs = {1: [44100, 48000, 32000], 0: [22050, 24000, 16000]}
    h = b[i : i + 4]
    mpeg1 = (h[1] >> 3) & 1
    kbps, sr = rates[mpeg1][h[2] >> 4], srs[mpeg1][(h[2] >> 2) & 3]
    size = (144 if mpeg1 else 72) * kbps * 1000 // sr + ((h[2] >> 1) & 1)
    first = b[i : i + size]
    if b"Xing" in first or b"Info" in first:
        i += size
    return b[i:end]


def write_mp3(path: Path, minutes: float) -> None:
    """A real encode (LAME defaults: VBR with an Info tag)."""
    import soundfile as sf

    total, block = int(minutes * 60 * SR), SR * 30
    with sf.SoundFile(path, "w", SR, 1, format="MP3") as f:
        for a in range(0, total, block):
            f.write(signal_block(a, min(block, total - a)))


def write_long_mp3(path: Path, minutes: float, unit: Path) -> None:
    """``minutes`` one-minute repeats of the constant-bitrate ``unit``'s MPEG frames."""
    frames = mp3_frames(unit)
    with open(path, "wb") as f:
        for _ in range(max(1, round(minutes))):
            f.write(frames)


def make_unit_mp3(path: Path) -> None:
    import soundfile as sf

    with sf.SoundFile(path, "w", SR, 1, format="MP3", bitrate_mode="CONSTANT",
                      compression_level=0.5) as f:  # 160 kbit/s in every frame
        f.write(signal_block(0, 60 * SR))


# ---------------------------------------------------------------- measuring

def run_child(cmd: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in MB, CPU seconds) of a child process; raises if it fails.

    CPU time (user + system of the child and of the descendants it waited for, so worker
    processes count) is less disturbed than wall time when other jobs share the machine."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode()
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{err}")
    return wall, ru.ru_maxrss // 1024, ru.ru_utime + ru.ru_stime


def busy_cpu() -> float:
    """CPU seconds all processes have used since boot (``/proc/stat``; nan elsewhere)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def _subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux
    ``PR_SET_CHILD_SUBREAPER``), so that :func:`run_tree` can wait for every process of a
    run and read their CPU time exactly. False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def run_tree(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the child and all its descendants, cores that other
    processes kept busy meanwhile).

    Wall time runs until the child exits. Its descendants (the workers' fork server and the
    workers it forks, the resource tracker) are not all reaped by the child, so this
    process becomes their reaper (Linux) and waits for each: the rusage of a process
    reaped includes the descendants it reaped itself, so the sum is the whole tree's CPU
    time, read once at the end. Nothing polls the tree while it runs: a poller (psutil,
    every 50 ms) cost 6 % of a core here, taken from the workers when they use both cores.
    Elsewhere CPU is nan."""
    exact = _subreaper()
    busy0 = busy_cpu()
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    while exact:  # the orphans: the fork server (with its workers), the resource tracker
        try:
            _, _, r = os.wait4(-1, 0)
        except ChildProcessError:
            break
        cpu += r.ru_utime + r.ru_stime
    busy = busy_cpu() - busy0
    others = max(0.0, busy - cpu) / wall if exact else float("nan")
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return wall, cpu if exact else float("nan"), others


#: The bare loop's work, as wsd flags (the seed's front end: 512/256 linear dB, 32-frame
#: windows without overlap, no whitening), so that both do the same work.
SAME_WORK = ["--n-fft", "512", "--hop-length", "256", "--frames", "32", "--step", "32",
             "--freq-scale", "linear", "--scale", "db", "--no-whiten"]


def wsd_cmd(files, out, *extra) -> list[str]:
    exe = Path(sys.executable).with_name("wsd")
    return [str(exe), "slice", *map(str, files), "-o", str(out), "-q", "--force",
            *SAME_WORK, *extra]


def write_flacs(folder: Path, n: int, seconds: float) -> list[Path]:
    """``n`` short 44.1 kHz flac files (an Orcasound-style archive of 10 s segments)."""
    import soundfile as sf

    folder.mkdir()
    out = []
    for i in range(n):
        out.append(folder / f"seg{i:04d}.flac")
        sf.write(out[-1], signal_block(i * int(seconds * SR), int(seconds * SR)), SR,
                 subtype="PCM_16")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--long-minutes", type=float, default=120)
    ap.add_argument("--short-minutes", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-workers", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true",
                    help="only the workers and memory tests")
    ap.add_argument("--workers-minutes", type=float, default=30,
                    help="length of the 4 longer files of the workers test (default 30)")
    ap.add_argument("--files", type=int, default=200,
                    help="number of short flac files of the many-files shape (default 200)")
    ap.add_argument("--file-seconds", type=float, default=10)
    ap.add_argument("--bare", nargs="+", metavar="SRC... DST", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.bare:
        bare(a.bare[:-1], a.bare[-1])
        return 0
    rows = []
    load0 = os.getloadavg()[0]
    # wsd's own bytecode, as an installed package has it: where PYTHONDONTWRITEBYTECODE is
    # set (as on these machines) an editable install otherwise compiles its 117 modules from
    # source in every run, in the coordinator and again in the fork server (0.06-0.1 s of
    # start-up the bare loop, whose libraries pip compiled at install, does not pay)
    import compileall

    compileall.compile_dir(str(ROOT / "wsd"), quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="wsd-bench-", dir="/tmp"))
    try:
        wav, mp3 = tmp / "ten.wav", tmp / "ten.mp3"
        write_wav(wav, a.minutes)
        write_mp3(mp3, a.minutes)
        audio_s = a.minutes * 60
        flacs = write_flacs(tmp / "flac", a.files, a.file_seconds)
        shapes = [([wav], f"wav {a.minutes:g} min", audio_s),
                  ([mp3], f"mp3 {a.minutes:g} min", audio_s),
                  (flacs, f"{a.files} x {a.file_seconds:g} s flac", a.files * a.file_seconds)]
        for srcs, name, secs in ([] if a.skip_throughput else shapes):
            tb, tw = [], []
            for _ in range(a.rounds):
                tb.append(run_child([sys.executable, __file__, "--bare", *map(str, srcs),
                                     str(tmp / "bare.h5")]))
                tw.append(run_child(wsd_cmd(srcs, tmp / "wsd.h5")))
            b, w = min(t[0] for t in tb), min(t[0] for t in tw)
            bc, wc = min(t[2] for t in tb), min(t[2] for t in tw)
            rows.append((f"throughput {name}", f"bare {b:.2f} s "
                         f"({secs / b:.0f}x real time), wsd {w:.2f} s ({secs / w:.0f}x)",
                         f"ratio {b / w:.2f} (CPU time {bc / wc:.2f})", "target >= 0.9"))
        unit = tmp / "unit.mp3"
        make_unit_mp3(unit)
        if not a.skip_workers:
            long = tmp / "workers.mp3"
            write_long_mp3(long, a.workers_minutes, unit)
            for src, minutes in ((mp3, a.minutes), (long, a.workers_minutes), (None, 0)):
                many = []
                for i in range(4 if src else 0):
                    many.append(tmp / f"m{i}.mp3")
                    shutil.copyfile(src, many[-1])
                many = many or flacs
                t1, t2 = [], []
                for _ in range(max(1, a.rounds - 1)):
                    for ts, name, w in ((t1, "j1.h5", "1"), (t2, "j2.h5", "2")):
                        (tmp / name).unlink(missing_ok=True)  # no replace (see above)
                        ts.append(run_tree(wsd_cmd(many, tmp / name, "--workers", w)))
                b1, b2 = min(t1), min(t2)  # the best run of each
                # cores busy on average = CPU time (workers included) / wall time
                shape = f"4 x {minutes:g} min mp3" if src else \
                    f"{a.files} x {a.file_seconds:g} s flac"
                rows.append((f"workers, {shape}",
                             f"1: {b1[0]:.2f} s ({b1[1] / b1[0]:.1f} cores busy, others "
                             f"{b1[2]:.1f}), 2: {b2[0]:.2f} s ({b2[1] / b2[0]:.1f}, others "
                             f"{b2[2]:.1f})", f"speed-up {b1[0] / b2[0]:.2f}",
                             f"target >= 1.7 ({os.cpu_count()} cores)"))
            long.unlink()
        if not a.skip_memory:
            for kind in ("wav", "mp3"):
                peaks = []
                for minutes in (a.short_minutes, a.long_minutes):
                    src = tmp / f"long{minutes:g}.{kind}"
                    if kind == "wav":
                        write_wav(src, minutes)
                    else:
                        write_long_mp3(src, minutes, unit)
                    wall, rss, _ = run_child(wsd_cmd([src], tmp / "long.h5"))
                    peaks.append(rss)
                    rows.append((f"memory {kind} {minutes:g} min", f"peak RSS {rss} MB",
                                 f"{minutes * 60 / wall:.0f}x real time", "target < 500 MB"))
                    src.unlink()
                    (tmp / "long.h5").unlink()
                rows.append((f"memory {kind} growth", f"{peaks[1] - peaks[0]:+d} MB from "
                             f"{a.short_minutes:g} to {a.long_minutes:g} min", "",
                             "independent of length"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"wsd slice benchmark ({os.cpu_count()} cores, load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end)")
    for r in rows:
        print("  ".join(c.ljust(width[i]) for i, c in enumerate(r)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
