"""Every command after slice under hostile input: nothing lost, nothing silent, nothing left
behind. One class of case per test (issue: hardening), on tiny generated files."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from conftest import tone

TINY = ["--arch", "convae", "--arch-param", "width=0.125", "--batch-size", "8", "-q"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """windows, model, embeddings, silence detections and clusters of three recordings."""
    from wsd.cli.main import main

    d = tmp_path_factory.mktemp("chain")
    (d / "audio").mkdir()
    for i, f in enumerate([700, 2500, 5000]):
        x = tone(8000, 6.0, f, seed=i)
        x[: 8000 * 2] *= 0.01  # quiet stretches, so silence is found
        sf.write(d / "audio" / f"r{i}.wav", x, 8000)
    p = {k: d / f"{k}.h5" for k in ("win", "ae", "emb", "det", "cl")}
    for argv in (["slice", d / "audio", "-o", p["win"], "-q"],
                 ["train", p["win"], "-o", p["ae"], "--epochs", "1", *TINY],
                 ["embed", p["win"], "--model", p["ae"], "-o", p["emb"], "-q"],
                 ["detect", p["win"], "--silence", "-o", p["det"], "-q"],
                 ["cluster", p["emb"], "--per-file", "-o", p["cl"], "-q"]):
        assert main([str(a) for a in argv]) == 0, argv
    return p


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(".") or n.endswith(".shards"))


# ------------------------------------------------------------- output equal to an input
@pytest.mark.parametrize("argv", [
    ["cluster", "{emb}", "--per-file", "-o", "{emb}"],
    ["cluster", "{emb}", "--mask", "{det}", "-o", "{det}"],
    ["embed", "{win}", "--model", "{ae}", "-o", "{win}"],
    ["embed", "{win}", "--model", "{ae}", "-o", "{ae}"],
    ["detect", "{win}", "--silence", "-o", "{win}"],
    ["train", "{win}", "-o", "{win}", *TINY],
    ["search", "{emb}", "--query", "{emb}", "-o", "{emb}"],
    ["export", "{det}", "-o", "{det}"],
])
def test_output_that_is_an_input_is_refused_before_any_work(chain, tmp_path, wsd, argv):
    files = {k: _copy(v, tmp_path / v.name) for k, v in chain.items()}
    before = {k: v.read_bytes() for k, v in files.items()}
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    r = wsd(*args, "--force")
    assert r.code == 73 and "is also an input" in r.err and r.err.count("\n") == 1, r
    assert {k: v.read_bytes() for k, v in files.items()} == before
    assert _leftovers(tmp_path) == []


def test_report_into_a_folder_holding_its_inputs_is_refused(chain, tmp_path, wsd):
    cl = _copy(chain["cl"], tmp_path / "cl.h5")
    r = wsd("report", cl, "--no-follow", "-o", tmp_path, "--force", "-q")
    assert r.code == 73 and "holds an input" in r.err and cl.exists()


# ------------------------------------------------------------- two writers, one output
def test_a_second_writer_of_the_same_output_gets_73(chain, tmp_path):
    """While one process holds the output's lock, another run writing it exits 73 at once,
    names the other process, and leaves the first one's work alone."""
    out = tmp_path / "d.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from wsd.io.store import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = subprocess.run([sys.executable, "-m", "wsd", "detect", str(chain["win"]),
                            "--silence", "-o", str(out)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 73, r.stderr
        assert f"pid {holder.pid}" in r.stderr and not out.exists()
        assert not (tmp_path / "d.h5.shards").exists()
    finally:
        holder.kill()
        holder.wait()


def test_no_clobber_rename_refuses_an_output_that_appeared_meanwhile(tmp_path):
    from wsd.errors import OutputError
    from wsd.io.store import atomic_output

    out = tmp_path / "o.h5"
    with pytest.raises(OutputError, match="created by another process"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"mine")
            out.write_bytes(b"theirs")  # another writer got there first
    assert out.read_bytes() == b"theirs" and _leftovers(tmp_path) == []


# ------------------------------------------------------------- NaN and Inf
def _poison_windows(src: Path, dst: Path) -> Path:
    _copy(src, dst)
    with h5py.File(dst, "r+") as f:
        w = f["windows"][()]
        w[3, 5, 7] = np.nan
        w[5, 1, 1] = np.inf
        del f["windows"]
        f.create_dataset("windows", data=w)
    return dst


def test_nan_windows_are_refused_by_train_embed_and_detect(chain, tmp_path, wsd):
    bad = _poison_windows(chain["win"], tmp_path / "bad.h5")
    r = wsd("train", bad, "-o", tmp_path / "m.h5", "--epochs", "1", *TINY)
    assert r.code == 65 and "NaN or infinite" in r.err and str(bad) in r.err
    assert not (tmp_path / "m.h5").exists() and not (tmp_path / "m.h5.ckpt").exists()
    r = wsd("embed", bad, "--model", chain["ae"], "-o", tmp_path / "e.h5", "-q")
    assert r.code == 65 and "2 windows hold NaN or infinite values (first: row 3)" in r.err
    assert not (tmp_path / "e.h5").exists() and _leftovers(tmp_path) == []
    r = wsd("detect", bad, "--silence", "-o", tmp_path / "d.h5", "-q")
    assert r.code == 65 and str(bad) in r.err and _leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["nan_weight", "zero_std"])
def test_a_model_that_would_embed_to_nan_is_refused(chain, tmp_path, wsd, damage):
    m = _copy(chain["ae"], tmp_path / "m.h5")
    with h5py.File(m, "r+") as f:
        if damage == "nan_weight":
            name = next(k for k in f["weights"] if f["weights"][k].dtype.kind == "f"
                        and f["weights"][k].ndim > 1)
            w = f["weights"][name][()]
            w.flat[0] = np.nan
            f["weights"][name][...] = w
        else:
            f["normalisation"].attrs["std"] = 0.0
    r = wsd("embed", chain["win"], "--model", m, "-o", tmp_path / "e.h5", "-q")
    assert r.code == 65 and str(m) in r.err and not (tmp_path / "e.h5").exists(), r


def test_constant_windows_do_not_train_a_nan_model(chain, tmp_path, wsd):
    flat = _copy(chain["win"], tmp_path / "flat.h5")
    with h5py.File(flat, "r+") as f:
        f["windows"][...] = -100.0
    r = wsd("train", flat, "-o", tmp_path / "m.h5", "--epochs", "1", *TINY)
    assert r.code == 65 and "constant" in r.err and not (tmp_path / "m.h5").exists()


# ------------------------------------------------------------- malformed wsd files
def _edit(src, dst, fn):
    _copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


MALFORMED = {
    "source id out of range": ("win", lambda f: f["source_id"].__setitem__(0, 99),
                               ["export", "{x}"], "source id 99"),
    "no sources table": ("emb", lambda f: f.__delitem__("sources"),
                         ["cluster", "{x}", "--per-file", "-o", "{out}"], "no sources table"),
    "lengths disagree": ("emb", lambda f: f["start_s"].resize((2,)) if f["start_s"].maxshape[0]
                         is None else (f.__delitem__("start_s"),
                                       f.create_dataset("start_s", data=np.zeros(2))),
                         ["cluster", "{x}", "--per-file", "-o", "{out}"], "rows where"),
    "no windows": ("win", lambda f: f.__delitem__("windows"),
                   ["embed", "{x}", "--model", "{ae}", "-o", "{out}"], "has no 'windows'"),
    "no spectrogram": ("win", lambda f: f.__delitem__("spectrogram"),
                       ["detect", "{x}", "--silence", "-o", "{out}"], "no spectrogram"),
    "2-D windows": ("win", lambda f: (f.__delitem__("windows"),
                                      f.create_dataset("windows", data=np.zeros((15, 8)))),
                    ["train", "{x}", "-o", "{out}", *TINY], "expected 3 dimension"),
    "bad JSON config": ("ae", lambda f: f.attrs.__setitem__("arch_config", "{oops"),
                        ["embed", "{win}", "--model", "{x}", "-o", "{out}"], "arch_config"),
    "no weights": ("ae", lambda f: f.__delitem__("weights"),
                   ["embed", "{win}", "--model", "{x}", "-o", "{out}"], "no weights"),
    "wrong weight shape": ("ae", lambda f: (
        lambda k: (f["weights"].__delitem__(k),
                   f["weights"].create_dataset(k, data=np.zeros((3, 3), np.float32))))(
        next(iter(f["weights"]))),
        ["embed", "{win}", "--model", "{x}", "-o", "{out}"], "do not fit"),
    "no normalisation": ("ae", lambda f: f.__delitem__("normalisation"),
                         ["embed", "{win}", "--model", "{x}", "-o", "{out}"],
                         "no normalisation"),
    "bad medoid": ("cl", lambda f: f["medoids"].__setitem__(0, 999),
                   ["report", "{x}", "-o", "{out}"], "medoid index out of range"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_one_line_naming_the_file(chain, tmp_path, wsd, case):
    key, damage, argv, reason = MALFORMED[case]
    x = _edit(chain[key], tmp_path / f"x-{key}.h5", damage)
    names = {k: str(v) for k, v in chain.items()}
    args = [a.format(x=x, out=tmp_path / "out.h5", **names) for a in argv]
    r = wsd(*args)
    assert r.code == 65, (case, r)
    assert r.err.startswith(f"wsd: error: {x}: ") and reason in r.err and \
        r.err.count("\n") == 1, (case, r.err)
    assert wsd("info", x).code == 65
    assert not (tmp_path / "out.h5").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("how", ["data", "metadata", "truncated"])
def test_corrupt_bytes_in_the_middle_of_a_file(chain, tmp_path, wsd, how):
    """Damaged data reads as garbage (refused as NaN, or used: HDF5 cannot know), damaged
    metadata or a cut file is exit 65 naming the file: never an internal error."""
    x = _copy(chain["win"], tmp_path / "x.h5")
    with h5py.File(x) as f:
        off = f["windows"].id.get_chunk_info(0).byte_offset
    data = bytearray(x.read_bytes())
    rng = np.random.default_rng(0)
    if how == "data":
        data[off: off + 4096] = rng.bytes(4096)
    elif how == "metadata":
        data[800: 800 + 3000] = rng.bytes(3000)
    else:
        data = data[: len(data) // 2]
    x.write_bytes(bytes(data))
    for args in (["info", x], ["export", x], ["detect", x, "--silence", "-o", tmp_path / "d.h5"],
                 ["embed", x, "--model", chain["ae"], "-o", tmp_path / "e.h5"]):
        r = wsd(*args)
        assert r.code in (0, 65) and "internal error" not in r.err, (args, r)
        if r.code == 65:
            assert str(x) in r.err and r.err.count("\n") == 1, r.err
    assert _leftovers(tmp_path) == []


def test_info_on_a_fifo_or_folder_does_not_hang(tmp_path, wsd):
    fifo = tmp_path / "f.h5"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    r = wsd("info", fifo)
    assert r.code == 65 and "not a regular file" in r.err and time.monotonic() - t0 < 10
    assert wsd("info", tmp_path).code == 65


# ------------------------------------------------------------- options
@pytest.mark.parametrize("argv,msg", [
    (["detect", "{win}", "--silence", "--threshold", "nan", "-o", "{out}"], "--threshold"),
    (["detect", "{win}", "--silence", "--min-gap", "-1", "-o", "{out}"], "--min-gap"),
    (["cluster", "{emb}", "--per-file", "--memory-gb", "0", "-o", "{out}"], "--memory-gb"),
    (["cluster", "{emb}", "--per-file", "--sample", "0", "-o", "{out}"], "--sample"),
    (["cluster", "{emb}", "--per-file", "-k", "0", "-o", "{out}"], "--n-clusters"),
    (["embed", "{win}", "--model", "{ae}", "--batch-size", "0", "-o", "{out}"], "--batch-size"),
    (["train", "{win}", "--epochs", "10000000000", "-o", "{out}", *TINY], "--epochs"),
    (["train", "{win}", "--lr", "inf", "-o", "{out}", *TINY], "--lr"),
    (["search", "{emb}", "--query", "{emb}", "-k", "0", "-o", "{out}"], "-k"),
])
def test_bad_option_values_are_usage_errors(chain, tmp_path, wsd, argv, msg):
    args = [a.format(out=tmp_path / "o.h5", **{k: str(v) for k, v in chain.items()})
            for a in argv]
    r = wsd(*args)
    assert r.code == 2 and msg in r.err and "internal error" not in r.err, r
    assert not (tmp_path / "o.h5").exists() and _leftovers(tmp_path) == []


def test_cluster_per_file_with_the_default_k_on_few_recordings(chain, tmp_path, wsd):
    r = wsd("cluster", chain["emb"], "--per-file", "-o", tmp_path / "c.h5")
    assert r.code == 0 and "at most 3 clusters" in r.err, r


# ------------------------------------------------------------- disk full
def _limited(args, limit_bytes, cwd):
    """``wsd ARGS`` in a child whose files may not grow past ``limit_bytes`` (EFBIG, as a
    full disk gives ENOSPC; no root or tmpfs needed)."""
    def cap():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return subprocess.run([sys.executable, "-m", "wsd", *map(str, args)], cwd=cwd,
                          preexec_fn=cap, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("cmd", ["embed", "detect", "cluster", "train", "report"])
def test_a_full_disk_is_exit_74_one_line_and_nothing_left(chain, tmp_path, cmd):
    out = tmp_path / ("r" if cmd == "report" else "o.h5")
    argv = {"embed": ["embed", chain["win"], "--model", chain["ae"], "-o", out],
            "detect": ["detect", chain["win"], "--silence", "-o", out],
            "cluster": ["cluster", chain["emb"], "--per-file", "-o", out],
            "train": ["train", chain["win"], "-o", out, "--epochs", "1", *TINY],
            "report": ["report", chain["det"], "-o", out]}[cmd]
    r = _limited(argv, 2048, tmp_path)
    assert r.returncode == 74, (r.returncode, r.stderr[-2000:])
    lines = [x for x in r.stderr.splitlines() if x.startswith("wsd: error")]
    assert len(lines) == 1 and "no space left" in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not out.exists() and _leftovers(tmp_path) == []


def test_export_to_a_full_device_is_74_and_to_a_closed_pipe_is_0(chain):
    r = subprocess.run(f"{sys.executable} -m wsd export {chain['emb']} > /dev/full",
                       shell=True, capture_output=True, text=True, timeout=120)
    assert r.returncode == 74 and "no space left" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(f"set -o pipefail; {sys.executable} -m wsd export {chain['emb']} | "
                       "head -1", shell=True, executable="/bin/bash", capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "" and r.stdout.startswith("path,start_s")


# ------------------------------------------------------------- signals
def _interrupt_during(args, cwd, wait_for, sig=signal.SIGINT):
    p = subprocess.Popen([sys.executable, "-m", "wsd", *map(str, args)], cwd=cwd,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not wait_for():
        time.sleep(0.02)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def test_ctrl_c_in_training_says_so_exits_130_and_keeps_only_the_checkpoint(chain, tmp_path):
    out = tmp_path / "m.h5"
    ckpt = tmp_path / "m.h5.ckpt"
    code, err = _interrupt_during(["train", chain["win"], "-o", out, "--epochs", "1000",
                                   "--patience", "0", *TINY], tmp_path, ckpt.exists)
    assert code == 130 and "wsd: interrupted" in err and "Traceback" not in err, err
    assert not out.exists() and ckpt.exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_commands_print_a_line_and_leave_nothing(chain, tmp_path, sig):
    out = tmp_path / "r"
    code, err = _interrupt_during(["report", chain["cl"], "-o", out], tmp_path,
                                  lambda: any(n.startswith(".r.") for n in os.listdir(tmp_path)),
                                  sig)
    assert code == 130 and "wsd: interrupted" in err, err
    assert not out.exists() and _leftovers(tmp_path) == []


# ------------------------------------------------------------- other
def test_report_warns_when_a_referenced_file_is_another_one(chain, tmp_path, wsd):
    """A clusters file names its embeddings by path: a different file of that name is
    noticed by its identity and not drawn."""
    cl = _copy(chain["cl"], tmp_path / "cl.h5")
    with h5py.File(cl, "r+") as f:
        params = json.loads(f.attrs["params_json"])
        params["embeddings"] = "emb.h5"
        f.attrs["params_json"] = json.dumps(params)
    other = _copy(chain["emb"], tmp_path / "emb.h5")
    with h5py.File(other, "r+") as f:
        f.attrs["wsd_id"] = "0" * 32
    r = wsd("report", cl, "-o", tmp_path / "r", "-q")
    assert r.code == 0 and "is not the file it was made from" in r.err, r


def test_stale_report_temporaries_of_killed_runs_are_cleaned(chain, tmp_path, wsd):
    stale = tmp_path / ".r.999999.tmp"
    stale.mkdir()
    (stale / "x.png").write_bytes(b"x")
    assert wsd("report", chain["det"], "-o", tmp_path / "r", "-q").code == 0
    assert not stale.exists()


def test_an_unreachable_scheduler_is_a_clear_error_and_leaves_nothing(chain, tmp_path, wsd):
    r = wsd("embed", chain["win"], "--model", chain["ae"], "-o", tmp_path / "e.h5",
            "--scheduler", "tcp://127.0.0.1:9", "-q")
    assert r.code == 1 and "cannot reach the Dask scheduler" in r.err, r
    assert _leftovers(tmp_path) == []


def test_history_records_the_arguments_main_received(chain, tmp_path, wsd):
    """In-process callers (the tests, scripts) get their own argv in the history line,
    not the test runner's."""
    from wsd.io.store import open_file

    out = tmp_path / "d.h5"
    assert wsd("detect", chain["win"], "--silence", "-o", out, "-q").code == 0
    with open_file(out) as f:
        last = f.history[-1]
    assert last.endswith(f"detect: {chain['win']} --silence -o {out} -q"), last


def test_an_interrupt_swallowed_on_the_way_commits_nothing(tmp_path):
    """Ctrl-C met inside a __del__ or weakref callback is printed as "Exception ignored"
    and lost by Python; the output it interrupted must still not be committed (this
    raced in the report's SIGTERM test: exit 0 and a complete report)."""
    code = ("import sys\n"
            "from wsd.runtime import signals\n"
            "from wsd.io.store import atomic_output\n"
            "signals.install()\n"
            "class D:\n"
            "    def __del__(self):\n"
            "        signals._handler(2, None)\n"
            "D()\n"
            "assert signals.swallowed() == 2\n"
            "try:\n"
            "    with atomic_output(sys.argv[1], False) as tmp:\n"
            "        open(tmp, 'w').write('x')\n"
            "except signals.Interrupted:\n"
            "    print('interrupted')\n")
    out = tmp_path / "o.txt"
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "Exception ignored" in r.stderr, r.stderr
    assert r.stdout.split() == ["interrupted"]
    assert os.listdir(tmp_path) == []
