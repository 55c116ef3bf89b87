"""Options through the CLI, end to end: detect --threshold/--min-gap/--min-duration on
windows with known scores, cluster --threshold/--pca/--window, train's early stopping
(--patience) and torchrun's gradient averaging against a single-process reference."""

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SEED_SLICE, tone
from test_cluster_cli import D, _sources
from wsd.io.store import open_file
from wsd.io.store.models import load_model
from wsd.io.store.rows import RowWriter

ROOT = Path(__file__).resolve().parent.parent


def _main(*args):
    """The CLI in-process, for module-scoped fixtures (the ``wsd`` fixture is per test)."""
    from wsd.cli.main import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train far faster on one thread, above all on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# =================================================================================== detect
SR = 16000
# SEED_SLICE at 16 kHz: windows of 32 frames x 256 samples, 0.512 s apart and 0.528 s long
#: (start_s, end_s, amplitude) of the tones in white noise of amplitude 0.001 (about -60 dB)
TONES = {"tiny1": (0.70, 0.80, 0.3),   # inside window 1 only: a one-window event
         "loud": (3.00, 4.50, 0.3),
         "quiet": (6.00, 7.50, 0.01),  # ~ 26 dB above the floor, the loud ones ~ 56 dB
         "c": (10.00, 11.00, 0.3),     # c and d: one silent window between their events
         "d": (12.30, 13.30, 0.3),
         "tiny2": (16.50, 16.60, 0.3)}  # inside window 32 only: a one-window event


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A windows file (one recording) whose silence scores are known: loud tones score
    ~56 dB above the floor, the quiet one ~26 dB, noise < 10 dB."""
    d = tmp_path_factory.mktemp("detect")
    rng = np.random.default_rng(0)
    x = 0.001 * rng.standard_normal(SR * 20)
    for a, b, amp in TONES.values():
        i, j = int(a * SR), int(b * SR)
        x[i:j] += amp * np.sin(2 * np.pi * 1000.0 * np.arange(j - i) / SR)
    (d / "rec").mkdir()
    sf.write(d / "rec" / "r.wav", x.astype(np.float32), SR)
    win = d / "w.h5"
    assert _main("slice", *SEED_SLICE, d / "rec", "-o", win, "-q") == 0
    return win


def _detect(wsd, win, out, *args):
    """detect --silence with scores in plain dB above the floor (--no-band-spread: the
    1 kHz tones fill a quarter of the recording, so band spread would scale their bin down
    by 4, tests/test_detection.py)."""
    r = wsd("detect", win, "--silence", "--no-band-spread", "-o", out, "-q", *args)
    assert r.code == 0, r.err
    with open_file(out, "detections") as f:
        rows = {k: f.read(k) for k in ("score", "positive", "start_s", "end_s")}
        ev = {k: f.read(f"events/{k}") for k in ("start_s", "end_s", "n_windows", "score")}
        return rows, ev, f.attrs("/"), f.params


def _overlaps(ev, a, b):
    return int(((ev["start_s"] < b) & (ev["end_s"] > a)).sum())


def _as_list(ev):
    return list(zip(ev["start_s"].tolist(), ev["end_s"].tolist(), ev["n_windows"].tolist(),
                    ev["score"].tolist()))


def test_detect_threshold_fewer_windows_and_events(scored, tmp_path, wsd):
    rows_lo, ev_lo, at_lo, par_lo = _detect(wsd, scored, tmp_path / "lo.h5", "--threshold", 10)
    rows_hi, ev_hi, at_hi, _ = _detect(wsd, scored, tmp_path / "hi.h5", "--threshold", 40)
    rows_top, ev_top, _, _ = _detect(wsd, scored, tmp_path / "top.h5", "--threshold", 1000)
    score = rows_lo["score"]
    # the threshold changes decisions, not scores; a window is detected at score >= it
    np.testing.assert_array_equal(rows_hi["score"], score)
    np.testing.assert_array_equal(rows_lo["positive"], score >= 10)
    np.testing.assert_array_equal(rows_hi["positive"], score >= 40)
    assert at_lo["threshold"] == 10 and at_hi["threshold"] == 40 and par_lo["threshold"] == 10
    # raising it keeps a subset of the windows: here strictly fewer windows and events
    assert not (rows_hi["positive"] & ~rows_lo["positive"]).any()
    assert rows_hi["positive"].sum() < rows_lo["positive"].sum()
    assert len(ev_hi["start_s"]) < len(ev_lo["start_s"])
    # every tone is found at 10 dB; at 40 dB the quiet tone (~26 dB) is gone, the loud stay
    for name, (a, b, _) in TONES.items():
        assert _overlaps(ev_lo, a, b) == 1, name
        assert _overlaps(ev_hi, a, b) == (0 if name == "quiet" else 1), name
    assert not rows_top["positive"].any() and len(ev_top["start_s"]) == 0
    assert at_lo["n_events"] == len(ev_lo["start_s"])


def _merge(events, gap):
    """Reference: merge time-ordered events (one recording) separated by <= gap seconds."""
    out = []
    for s, e, n, sc in events:
        if out and s - out[-1][1] <= gap:
            ps, pe, pn, psc = out[-1]
            out[-1] = (ps, max(pe, e), pn + n, max(psc, sc))
        else:
            out.append((s, e, n, sc))
    return out


def test_detect_min_gap_merges_events(scored, tmp_path, wsd):
    rows0, ev0, _, _ = _detect(wsd, scored, tmp_path / "g0.h5", "--threshold", 10)
    rows1, ev1, at1, par1 = _detect(wsd, scored, tmp_path / "g1.h5", "--threshold", 10,
                                    "--min-gap", 1.0)
    assert par1["min_gap"] == 1.0
    np.testing.assert_array_equal(rows1["positive"], rows0["positive"])  # windows unchanged
    base = _as_list(ev0)
    gaps = np.array([b[0] - a[1] for a, b in zip(base, base[1:])])
    assert (gaps > 0).all() and (gaps <= 1.0).sum() == 1  # only c -> d is that close
    assert _as_list(ev1) == _merge(base, 1.0)
    assert len(ev1["start_s"]) == len(ev0["start_s"]) - 1 == at1["n_events"]
    # c and d are one event now, spanning both and as long as the two and the gap between
    (c0,) = np.flatnonzero((ev0["start_s"] < 11.0) & (ev0["end_s"] > 10.0))
    (m,) = np.flatnonzero((ev1["start_s"] < 11.0) & (ev1["end_s"] > 10.0))
    assert ev1["start_s"][m] == ev0["start_s"][c0] and ev1["end_s"][m] == ev0["end_s"][c0 + 1]
    assert ev1["n_windows"][m] == ev0["n_windows"][c0] + ev0["n_windows"][c0 + 1]
    assert ev1["end_s"][m] - ev1["start_s"][m] > (ev0["end_s"] - ev0["start_s"])[c0:c0 + 2].sum()
    # every remaining gap is larger than --min-gap
    e = _as_list(ev1)
    assert all(b[0] - a[1] > 1.0 for a, b in zip(e, e[1:]))


def test_detect_min_duration_drops_short_events(scored, tmp_path, wsd):
    rows0, ev0, _, _ = _detect(wsd, scored, tmp_path / "d0.h5", "--threshold", 10)
    rows1, ev1, _, par1 = _detect(wsd, scored, tmp_path / "d1.h5", "--threshold", 10,
                                  "--min-duration", 0.6)
    assert par1["min_duration"] == 0.6
    np.testing.assert_array_equal(rows1["positive"], rows0["positive"])  # windows unchanged
    dur0 = ev0["end_s"] - ev0["start_s"]
    assert (dur0 < 0.6).sum() == 2  # the two one-window tones
    assert _as_list(ev1) == [e for e, d in zip(_as_list(ev0), dur0) if d >= 0.6]
    for name in ("tiny1", "tiny2"):
        a, b, _ = TONES[name]
        assert _overlaps(ev1, a, b) == 0 and _overlaps(ev0, a, b) == 1
        # its window is still a detection; only the event is dropped
        assert rows1["positive"][(rows1["start_s"] < b) & (rows1["end_s"] > a)].any()
    # events are merged first, then the short ones dropped: with a gap reaching tiny1 and
    # tiny2 from their neighbours (1.5 and 3.1 s), all is one event that keeps them both
    _, ev2, _, _ = _detect(wsd, scored, tmp_path / "d2.h5", "--threshold", 10, "--min-gap",
                           3.5, "--min-duration", 0.6)
    assert _as_list(ev2) == [e for e in _merge(_as_list(ev0), 3.5) if e[1] - e[0] >= 0.6]
    assert len(ev2["start_s"]) == 1
    assert ev2["start_s"][0] == ev0["start_s"][0] and ev2["end_s"][0] == ev0["end_s"][-1]


def test_detect_min_duration_equal_to_event_length_keeps_it(scored, tmp_path, wsd):
    # both tiny tones make one-window events, each exactly one window (0.528 s) long;
    # "drop events shorter than this" must keep both
    _, ev, _, _ = _detect(wsd, scored, tmp_path / "eq.h5", "--threshold", 10,
                          "--min-duration", 0.528)
    assert _overlaps(ev, *TONES["tiny1"][:2]) == 1
    assert _overlaps(ev, *TONES["tiny2"][:2]) == 1


# ================================================================================== cluster
SPEC = {"sample_rate": 8000, "n_fft": 512, "hop_length": 256, "frames": 32}


def _write_emb(path, emb, common, labels):
    w = RowWriter(path, "embeddings", {"windows": "w.h5"}, SPEC, ["test"], _sources(3))
    w.append(embeddings=np.asarray(emb, np.float32), label=labels, **common)
    w.close()


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """3 recordings; 24 calls of 3 types (distinct trajectories, 6-11 windows) between
    silent windows; labels on the call windows; a silence mask."""
    d = tmp_path_factory.mktemp("cluster")
    rng = np.random.default_rng(0)
    protos = [np.linspace(0, 1, 10)[:, None] * np.eye(D)[k] for k in range(3)]
    sid, start, emb, label, silent = [], [], [], [], []
    for src in range(3):
        t = 0.0
        for c in range(8):
            for _ in range(2):
                sid.append(src); start.append(t); emb.append(0.05 * rng.standard_normal(D))
                label.append(""); silent.append(True); t += 0.5
            k = (src + c) % 3
            idx = np.linspace(0, 9, int(rng.integers(6, 12))).round().astype(int)
            for v in protos[k][idx] * 3:
                sid.append(src); start.append(t); emb.append(v + 0.1 * rng.standard_normal(D))
                label.append(f"type{k}"); silent.append(False); t += 0.5
    st = np.array(start)
    common = {"source_id": np.array(sid, np.int32), "start_s": st, "end_s": st + 0.5}
    labels = np.array(label, dtype=object)
    emb = np.array(emb, np.float32)
    _write_emb(d / "emb.h5", emb, common, labels)
    det = d / "sil.h5"
    w = RowWriter(det, "detections", {"detector": "silence"}, SPEC, ["test"], _sources(3))
    w.append(score=np.zeros(len(st), np.float32), positive=~np.array(silent), **common)
    w.close()
    return types.SimpleNamespace(dir=d, emb=d / "emb.h5", mask=det, x=emb, common=common,
                                 labels=labels)


def _cluster(wsd, calls, out, *args, emb=None):
    r = wsd("cluster", emb or calls.emb, "--mask", calls.mask, "-o", out, *args)
    assert r.code == 0, r.err
    with open_file(out, "clusters") as f:
        return types.SimpleNamespace(
            cluster=f.read("cluster"), distance=f.read("distance").astype(np.float64),
            linkage=f.read("linkage"), start=f.read("seq_start"), stop=f.read("seq_stop"),
            k=int(f.attrs("/")["n_clusters"]), params=f.params, err=r.err,
            metrics=json.loads(f.attrs("/").get("metrics_json") or "null"))


def test_cluster_threshold_cuts_the_tree(calls, tmp_path, wsd):
    base = _cluster(wsd, calls, tmp_path / "k3.h5", "-k", "3", "-q")
    h = base.linkage[:, 2]
    m = len(base.cluster)
    assert m == 24 and (np.diff(h) >= 0).all()  # ward: merge heights only grow
    mid3 = (h[-3] + h[-2]) / 2  # between the last merge inside a type and the first across
    found = []
    for t in (h[0] / 2, float(np.median(h)), mid3, h[-1] * 2):
        # --threshold overrides -k (given here too)
        c = _cluster(wsd, calls, tmp_path / f"t{t:.3f}.h5", "-k", "3", "--threshold", t, "-q")
        assert c.params["threshold"] == pytest.approx(t) and c.params["n_clusters"] is None
        np.testing.assert_allclose(c.distance, base.distance)
        # every merge up to the threshold is made, none above it
        assert c.k == m - int((h <= t).sum()) == len(set(c.cluster.tolist()))
        found.append(c)
    ks = [c.k for c in found]
    assert ks[0] == m and ks[-1] == 1 and ks == sorted(ks, reverse=True)
    assert len(set(ks)) == 4  # a smaller threshold, more clusters
    assert found[2].k == 3 and found[2].metrics["ari"] == pytest.approx(1.0)
    r = wsd("cluster", calls.emb, "--mask", calls.mask, "-o", tmp_path / "x.h5",
            "--threshold", "-1")
    assert r.code == 2 and "--threshold" in r.err


def test_cluster_pca(calls, tmp_path, wsd):
    from sklearn.decomposition import PCA

    none = _cluster(wsd, calls, tmp_path / "none.h5", "-k", "3", "-q")
    full = _cluster(wsd, calls, tmp_path / "p6.h5", "-k", "3", "--pca", D, "-q")
    three = _cluster(wsd, calls, tmp_path / "p3.h5", "-k", "3", "--pca", "3")
    assert none.params["pca"] is None and full.params["pca"] == D and three.params["pca"] == 3
    assert "3-d" in three.err and f"{D}-d" not in three.err
    # all D components: a rotation of the (z-scored) embeddings, distances unchanged
    np.testing.assert_allclose(full.distance, none.distance, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(full.cluster, none.cluster)
    # 3 components: other distances, those of the z-scored embeddings projected by PCA
    assert np.abs(three.distance - none.distance).max() > 0.1
    z = calls.x.astype(np.float64)
    z = (z - z.mean(0)) / z.std(0)
    _write_emb(tmp_path / "proj.h5", PCA(3, random_state=0).fit(z).transform(z),
               calls.common, calls.labels)
    proj = _cluster(wsd, calls, tmp_path / "proj_cl.h5", "-k", "3", "--normalize", "none",
                    "-q", emb=tmp_path / "proj.h5")
    np.testing.assert_allclose(three.distance, proj.distance, rtol=1e-4, atol=1e-5)
    assert three.metrics["ari"] == pytest.approx(1.0)  # the types live in 3 dimensions
    r = wsd("cluster", calls.emb, "--mask", calls.mask, "-o", tmp_path / "x.h5", "--pca",
            D + 1)
    assert r.code == 2 and "PCA" in r.err and not (tmp_path / "x.h5").exists()


def test_cluster_window_is_a_dtw_band(calls, tmp_path, wsd):
    raw = ["-k", "3", "--normalize", "none", "--length-norm", "none", "--rerank", "none", "-q"]
    free = _cluster(wsd, calls, tmp_path / "free.h5", *raw)
    band1 = _cluster(wsd, calls, tmp_path / "w1.h5", *raw, "--window", "1")
    band2 = _cluster(wsd, calls, tmp_path / "w2.h5", *raw, "--window", "2")
    wide = _cluster(wsd, calls, tmp_path / "w99.h5", *raw, "--window", "99")
    zero = _cluster(wsd, calls, tmp_path / "w0.h5", *raw, "--window", "0")
    assert free.params["window"] is None and band1.params["window"] == 1
    n = free.stop - free.start
    # a band only removes warping paths: distances never shrink, and narrower is farther
    tol = 1e-4
    assert (band2.distance >= free.distance - tol).all()
    assert (band1.distance >= band2.distance - tol).all()
    assert (band1.distance > free.distance + 1e-3).any()
    # --window 1 on equal lengths: no warping at all, the lock-step Euclidean distance
    x = calls.x.astype(np.float64)
    pairs = [(i, j) for i in range(len(n)) for j in range(i + 1, len(n)) if n[i] == n[j]]
    assert len(pairs) >= 10
    for i, j in pairs:
        a, b = x[free.start[i]:free.stop[i]], x[free.start[j]:free.stop[j]]
        assert band1.distance[i, j] == pytest.approx(np.sqrt(((a - b) ** 2).sum()), rel=1e-5)
        assert free.distance[i, j] <= band1.distance[i, j] + tol
    # a band wider than every sequence constrains nothing; 0 is dtaidistance's "no band"
    # (what wsd passes through; --help does not say so)
    np.testing.assert_allclose(wide.distance, free.distance, rtol=1e-6)
    np.testing.assert_allclose(zero.distance, free.distance, rtol=1e-6)
    r = wsd("cluster", calls.emb, "--mask", calls.mask, "-o", tmp_path / "x.h5",
            "--window", "-1")
    assert r.code == 2 and "--window" in r.err


# ==================================================================================== train
#: Small windows (16 frames x 32 mel bands) and a tiny autoencoder: ~0.1 s an epoch.
SMALL_SLICE = ["--frames", "16", "--step", "16", "--n-mels", "32", "--hop-length", "256"]
TINY = ["--arch", "convae", "-p", "width=0.125", "-p", "latent=8", "--batch-size", "8",
        "--loader-workers", "0", "--no-amp", "--device", "cpu"]


@pytest.fixture(scope="module")
def small_windows(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    (d / "audio").mkdir()
    for i, f in enumerate([500, 1500, 3000, 6000]):
        sf.write(d / "audio" / f"r{i}.wav", tone(8000, 8.0, f, seed=i), 8000)
    assert _main("slice", *SMALL_SLICE, d / "audio", "-o", d / "w.h5", "-q") == 0
    return d / "w.h5"


def _same_weights(a, b):
    return all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_train_patience_stops_early_and_keeps_best_epoch(small_windows, tmp_path, wsd,
                                                        one_torch_thread):
    limit = 12
    # a high learning rate: the validation loss soon fails to improve
    common = [*TINY, "--lr", "3e-2", "--val-fraction", "0.25", "--seed", "1"]
    a = tmp_path / "a.h5"
    r = wsd("train", small_windows, "-o", a, "--epochs", limit, "--patience", 1, *common)
    assert r.code == 0, r.err
    assert "(early stop)" in r.err
    info = load_model(a)
    val = np.array(info["loss_history"]["val_loss"])
    ran = len(val)
    best = int(np.argmin(val))
    assert np.isfinite(val).all() and len(info["loss_history"]["loss"]) == ran
    assert ran < limit and info["params"]["epochs"] == limit and info["params"]["patience"] == 1
    # the file says which epoch's weights it holds and why training ended
    assert info["params"]["stopped_early"] is True and info["params"]["epochs_run"] == ran
    # patience 1: improving every epoch up to the best one, then one epoch without
    assert ran == best + 2 and val[-1] >= val[best]
    assert (np.diff(val[:best + 1]) < 0).all()
    assert f"{ran} epochs, best validation loss {val[best]:.4f} at epoch {best + 1}" in r.err
    assert info["params"]["best_epoch"] == best + 1
    # wsd info --json exposes the same record
    j = json.loads(wsd("info", a, "--json").out)
    assert j["loss_history"]["val_loss"] == pytest.approx(val.tolist())
    assert j["params"]["patience"] == 1 and j["params"]["epochs"] == limit
    # the saved weights are the best epoch's: training stopped there gives the same ones ...
    b = tmp_path / "b.h5"
    assert wsd("train", small_windows, "-o", b, "--epochs", best + 1, "--patience", 0,
               *common, "-q").code == 0
    assert _same_weights(info["state_dict"], load_model(b)["state_dict"])
    # ... and not the last epoch's (patience 0 never stops and keeps the last)
    c = tmp_path / "c.h5"
    assert wsd("train", small_windows, "-o", c, "--epochs", ran, "--patience", 0, *common,
               "-q").code == 0
    last = load_model(c)
    assert last["loss_history"]["val_loss"] == info["loss_history"]["val_loss"]
    assert not _same_weights(info["state_dict"], last["state_dict"])


def test_train_patience_needs_validation(small_windows, tmp_path, wsd, one_torch_thread):
    out = tmp_path / "noval.h5"
    r = wsd("train", small_windows, "-o", out, "--epochs", 3, "--patience", 1, *TINY,
            "--lr", "3e-2", "--val-fraction", "0")
    assert r.code == 0, r.err
    h = load_model(out)["loss_history"]
    assert len(h["loss"]) == 3 and np.isnan(h["val_loss"]).all()
    assert "early stop" not in r.err


# ================================================================================= torchrun
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed beside this Python")
def test_torchrun_step_equals_averaged_gradients(tmp_path, one_torch_thread):
    """Two ranks, one step each: the model rank 0 writes equals one optimiser step of a
    single process on the mean of the two ranks' gradients (computed here from the same
    setup: the same initial weights, normalisation and each rank's share of the batches)."""
    import torch

    from wsd.pipeline.progress import Progress
    from wsd.pipeline.train import TrainParams, _setup

    (tmp_path / "audio").mkdir()
    for i, f in enumerate([500, 3000]):  # two recordings: one run of 5 windows per rank
        sf.write(tmp_path / "audio" / f"r{i}.wav", tone(8000, 3.0, f, seed=i), 8000)
    win = tmp_path / "w.h5"
    assert _main("slice", *SMALL_SLICE, tmp_path / "audio", "-o", win, "-q") == 0
    lr = 1e-2
    out = tmp_path / "ddp.h5"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    p = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", str(_free_port()),
                        "-m", "wsd", "train", str(win), "-o", str(out), *TINY, "--epochs", "1",
                        "--val-fraction", "0", "--lr", str(lr)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.count("-> ") == 1  # rank 0 alone reports and writes
    got = load_model(out)

    with open_file(win) as f:
        meta = {"source_id": f.read("source_id"), "spectrogram": f.spectrogram,
                "bins": f.shape("windows")[2], "sources": f.sources, "label": None}
    params = TrainParams(arch="convae", arch_params={"width": "0.125", "latent": "8"},
                         epochs=1, batch_size=8, lr=lr, device="cpu", val_fraction=0.0,
                         loader_workers=0, amp=False)
    ranks = []
    for rank in range(2):
        # rank's share of the data, but no process group (not "active")
        dd = types.SimpleNamespace(rank=rank, world=2, local_rank=0, active=False,
                                   main=rank == 0)
        run, _ = _setup(str(win), meta, params, dd, [], Progress())
        batches = list(run.train_dl)
        assert len(batches) == 1  # one step per rank
        ranks.append((run, batches[0]))
    init = copy.deepcopy(ranks[1][0].model)
    grads, losses = [], []
    for run, x in ranks:
        run.model.train()
        run.opts[0].zero_grad(set_to_none=True)
        loss = run.model.loss(x)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append([q.grad.clone() for q in run.model.parameters()])
    run0 = ranks[0][0]
    for q, g0, g1 in zip(run0.model.parameters(), *grads):
        q.grad = (g0 + g1) / 2
    run0.opts[0].step()
    want = run0.model.state_dict()  # BatchNorm statistics: rank 0's batch, as rank 0 saves
    for k, v in want.items():
        np.testing.assert_allclose(got["state_dict"][k].numpy(), v.numpy(), rtol=1e-5,
                                   atol=1e-7, err_msg=k)
    assert got["loss_history"]["loss"] == pytest.approx([losses[0]], rel=1e-5)
    # the check can fail: a step on rank 0's gradient alone lands elsewhere
    alone = copy.deepcopy(init)
    for q, g0 in zip(alone.parameters(), grads[0]):
        q.grad = g0.clone()
    torch.optim.Adam(alone.parameters(), lr=lr).step()
    gap = max(float((got["state_dict"][k] - q.detach()).abs().max())
              for k, q in alone.named_parameters())
    assert gap > lr / 2
    assert any(not torch.equal(got["state_dict"][k], v)
               for k, v in init.state_dict().items() if v.is_floating_point())
