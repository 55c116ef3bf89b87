"""Scale-out: a real distributed.LocalCluster on loopback gives the same files as one
process, survives a killed worker and resumes; torchrun trains a model with 2 processes."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from wsd.io.store import open_file

pytest.importorskip("distributed")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None, silence_logs=50)
    yield c
    c.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("scale")
    audio = d / "audio"
    audio.mkdir()
    for i in range(6):
        sf.write(audio / f"r{i}.wav", tone(8000, 12.0, 300 + 400 * i, seed=i), 8000)
    return d


def _same(a, b, names):
    with open_file(a) as x, open_file(b) as y:
        for n in names:
            np.testing.assert_array_equal(x.read(n), y.read(n), err_msg=n)


def _train_tiny(wsd, win, out):
    r = wsd("train", win, "-o", out, "--arch", "convae", "-p", "width=0.125", "--epochs", "1",
            "--batch-size", "8", "-q")
    assert r.code == 0, r.err


def test_distributed_equals_single_process(cluster, data, wsd, monkeypatch):
    import wsd.pipeline.slice as sl

    addr = cluster.scheduler_address
    one, dist = data / "one.h5", data / "dist.h5"
    assert wsd("slice", data / "audio", "-o", one, "-q").code == 0  # one group of 6 files
    with monkeypatch.context() as m:
        m.setattr(sl, "GROUP_FILES", 2)  # three groups, three Dask tasks
        r = wsd("slice", data / "audio", "-o", dist, "--scheduler", addr, "-q")
    assert r.code == 0, r.err
    _same(one, dist, ["windows", "source_id", "start_s", "end_s"])
    model = data / "ae.h5"
    _train_tiny(wsd, one, model)
    e1, e2 = data / "e1.h5", data / "e2.h5"
    assert wsd("embed", one, "--model", model, "-o", e1, "-q").code == 0
    assert wsd("embed", one, "--model", model, "-o", e2, "--scheduler", addr, "-q").code == 0
    _same(e1, e2, ["embeddings", "start_s"])
    e3 = data / "e3.h5"
    assert wsd("embed", one, "--model", model, "-o", e3, "--workers", "2", "-q").code == 0
    _same(e1, e3, ["embeddings"])
    d1, d2 = data / "d1.h5", data / "d2.h5"
    assert wsd("detect", one, "--silence", "-o", d1, "-q").code == 0
    assert wsd("detect", one, "--silence", "-o", d2, "--scheduler", addr, "-q").code == 0
    _same(d1, d2, ["score", "positive", "events/start_s", "floor_db"])
    c1, c2 = data / "c1.h5", data / "c2.h5"
    args = ["--max-windows", "2", "--sample", "10", "-k", "3", "-q"]
    assert wsd("cluster", e1, "-o", c1, *args).code == 0
    r = wsd("cluster", e1, "-o", c2, *args, "--scheduler", addr)
    assert r.code == 0, r.err
    _same(c1, c2, ["cluster", "medoid_distance", "novelty", "medoids", "in_sample"])


def test_killed_worker_still_completes(cluster, data, wsd):
    from distributed import Client

    addr = cluster.scheduler_address
    ref = data / "ref.h5"
    if not ref.exists():
        assert wsd("slice", data / "audio", "-o", ref, "-q").code == 0
    with Client(addr) as client:
        pids = client.run(os.getpid)
    out = data / "killed.h5"
    result = {}

    def run():
        result["r"] = wsd("slice", data / "audio", "-o", out, "--scheduler", addr, "-q",
                          "--force")
    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    t.join(timeout=120)
    assert result["r"].code == 0, result["r"].err
    _same(ref, out, ["windows", "start_s", "source_id"])
    with Client(addr) as client:
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_embed_resumes_after_interruption(data, wsd, monkeypatch):
    import wsd.pipeline.chunks as chunks

    win = data / "one.h5"
    if not win.exists():
        assert wsd("slice", data / "audio", "-o", win, "-q").code == 0
    model = data / "ae.h5"
    if not model.exists():
        _train_tiny(wsd, win, model)
    monkeypatch.setattr(chunks, "CHUNK", 16)  # several chunks on tiny data
    full, out = data / "full.h5", data / "resumed.h5"
    assert wsd("embed", win, "--model", model, "-o", full, "--batch-size", "8", "-q").code == 0
    real, calls = chunks.run_rows, []

    def dying(task, **kw):
        calls.append(task.a)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task, **kw)
    monkeypatch.setattr(chunks, "run_rows", dying)
    r = wsd("embed", win, "--model", model, "-o", out, "--batch-size", "8", "-q")
    assert r.code == 130 and not out.exists()
    done = list((data / "resumed.h5.shards").glob("*.h5"))
    assert len(done) == 2
    monkeypatch.setattr(chunks, "run_rows", real)
    assert wsd("embed", win, "--model", model, "-o", out, "--batch-size", "8", "-q").code == 0
    assert not (data / "resumed.h5.shards").exists()
    _same(full, out, ["embeddings"])


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this Python")
def test_torchrun_two_processes_train_and_embed(data, wsd):
    win = data / "one.h5"
    if not win.exists():
        assert wsd("slice", data / "audio", "-o", win, "-q").code == 0
    out = data / "ddp.h5"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29517", "-m",
                        "wsd", "train", str(win), "-o", str(out), "--arch", "convae", "-p",
                        "width=0.125", "--epochs", "1", "--batch-size", "8", "--device", "cpu"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.count("-> ") == 1  # only rank 0 reports and writes
    emb = data / "ddp_emb.h5"
    r = wsd("embed", win, "--model", out, "-o", emb, "-q")
    assert r.code == 0, r.err
    with open_file(emb) as f:
        assert np.isfinite(f.read("embeddings")).all()
