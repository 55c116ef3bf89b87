"""wsd cluster end to end on an embeddings file with sequences of known types."""

import json

import numpy as np
import pytest

from wsd.io.store import open_file
from wsd.io.store.rows import RowWriter
from wsd.io.store import concat_sources

D = 6


def _sources(n):
    return concat_sources([{"path": f"/data/rec{i}.wav", "size": 1, "mtime": 0.0,
                            "format": "WAV/PCM_16", "native_sample_rate": 8000,
                            "channels": 1, "frames_header": 8000, "frames_decoded": 8000,
                            "duration_s": 60.0, "n_windows": 0, "status": "ok",
                            "message": ""} for i in range(n)])


@pytest.fixture
def emb_and_mask(tmp_path):
    """3 recordings; calls of 3 types (distinct trajectories, varying length) between
    silent windows; labels on the call windows."""
    rng = np.random.default_rng(0)
    protos = [np.linspace(0, 1, 10)[:, None] * np.eye(D)[k] for k in range(3)]
    rows = {"source_id": [], "start_s": [], "emb": [], "label": [], "silent": []}
    for src in range(3):
        t = 0.0
        for c in range(8):
            for _ in range(2):  # silence
                rows["source_id"].append(src); rows["start_s"].append(t)
                rows["emb"].append(0.05 * rng.standard_normal(D)); rows["label"].append("")
                rows["silent"].append(True); t += 0.5
            k = (src + c) % 3
            n = int(rng.integers(6, 12))
            idx = np.linspace(0, 9, n).round().astype(int)
            for v in protos[k][idx] * 3:
                rows["source_id"].append(src); rows["start_s"].append(t)
                rows["emb"].append(v + 0.1 * rng.standard_normal(D))
                rows["label"].append(f"type{k}"); rows["silent"].append(False); t += 0.5
    n = len(rows["start_s"])
    st = np.array(rows["start_s"])
    common = {"source_id": np.array(rows["source_id"], np.int32), "start_s": st,
              "end_s": st + 0.5}
    spec = {"sample_rate": 8000, "n_fft": 512, "hop_length": 256, "frames": 32}
    emb = tmp_path / "emb.h5"
    w = RowWriter(emb, "embeddings", {"windows": "w.h5"}, spec, ["test"], _sources(3))
    w.append(embeddings=np.array(rows["emb"], np.float32),
             label=np.array(rows["label"], dtype=object), **common)
    w.close()
    det = tmp_path / "sil.h5"
    w = RowWriter(det, "detections", {"detector": "silence"}, spec, ["test"], _sources(3))
    w.append(score=np.zeros(n, np.float32), positive=~np.array(rows["silent"]), **common)
    w.close()
    return emb, det


def test_cluster_recovers_types(emb_and_mask, tmp_path, wsd):
    emb, det = emb_and_mask
    out = tmp_path / "cl.h5"
    r = wsd("cluster", emb, "--mask", det, "-o", out, "-k", "3")
    assert r.code == 0, r.err
    assert "ARI 1.000" in r.err and "dtaidistance C" in r.err
    with open_file(out, "clusters") as f:
        m = json.loads(f.attrs("/")["metrics_json"])
        assert m["ari"] == pytest.approx(1.0) and m["knn1_accuracy"] == pytest.approx(1.0)
        assert f.n == 24 and set(f.read("cluster")) == {0, 1, 2}
        assert f.shape("linkage") == (23, 4) and f.shape("medoids") == (3,)
        d = f.read("distance")
        assert np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
        assert (f.read("seq_stop") - f.read("seq_start") >= 6).all()
    lines = wsd("export", out).out.strip().split("\n")
    assert lines[0] == "path,start_s,end_s,cluster,novelty,label" and len(lines) == 25
    raven = wsd("export", out, "--format", "raven").out.strip().split("\n")
    assert "Cluster" in raven[0].split("\t") and len(raven) == 25


def test_sample_assignment_agrees(emb_and_mask, tmp_path, wsd):
    emb, det = emb_and_mask
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "s.h5", "-k", "3", "--sample",
            "12", "--seed", "1")
    assert r.code == 0, r.err
    with open_file(tmp_path / "s.h5") as f:
        assert f.read("in_sample").sum() == 12
        assert json.loads(f.attrs("/")["metrics_json"])["ari"] == pytest.approx(1.0)


def test_memory_guard_suggests_sample(emb_and_mask, tmp_path, wsd):
    emb, det = emb_and_mask
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "x.h5", "--memory-gb", "0.000001")
    assert r.code == 2 and "--sample" in r.err
    assert not (tmp_path / "x.h5").exists()


def test_per_file_and_bad_mask(emb_and_mask, tmp_path, wsd):
    emb, det = emb_and_mask
    r = wsd("cluster", emb, "--per-file", "-o", tmp_path / "p.h5", "-k", "2")
    assert r.code == 0, r.err
    with open_file(tmp_path / "p.h5") as f:
        assert f.n == 3
    r = wsd("cluster", emb, "--mask", emb, "-o", tmp_path / "q.h5")
    assert r.code == 65 and "detections" in r.err


def test_sample_assignment_in_worker_processes(emb_and_mask, tmp_path, wsd):
    """--workers spreads the --sample assignment over processes: same file contents."""
    emb, det = emb_and_mask
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    args = ["--mask", det, "-k", "3", "--sample", "8", "--seed", "2", "-q"]
    assert wsd("cluster", emb, "-o", one, *args).code == 0
    r = wsd("cluster", emb, "-o", two, *args, "--workers", "2")
    assert r.code == 0, r.err
    with open_file(one) as a, open_file(two) as b:
        for name in ("cluster", "medoid_distance", "novelty", "in_sample", "medoids"):
            np.testing.assert_array_equal(a.read(name), b.read(name), err_msg=name)
    assert not list(tmp_path.glob(".wsd-assign-*"))  # the scratch folder is removed
    r = wsd("cluster", emb, "-o", tmp_path / "x.h5", "--mask", det, "--workers", "2")
    assert r.code == 2 and "--sample" in r.err


def test_length_norm_option(emb_and_mask, tmp_path, wsd):
    emb, det = emb_and_mask
    raw, norm = tmp_path / "raw.h5", tmp_path / "norm.h5"
    assert wsd("cluster", emb, "--mask", det, "-o", raw, "-k", "3", "--length-norm", "none",
               "--rerank", "none", "-q").code == 0
    r = wsd("cluster", emb, "--mask", det, "-o", norm, "-k", "3", "--length-norm", "sqrt",
            "--rerank", "none")
    assert r.code == 0 and "ARI 1.000" in r.err, r.err
    with open_file(raw) as a, open_file(norm) as b:
        n = b.read("seq_stop") - b.read("seq_start")
        ref = a.read("distance").astype(np.float64) / np.sqrt(n[:, None] + n[None, :])
        np.fill_diagonal(ref, 0)
        np.testing.assert_allclose(b.read("distance"), ref, rtol=1e-6)
        assert b.attrs("/")["length_norm"] == "sqrt"
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "x.h5", "--length-norm", "mean")
    assert r.code == 2 and "--length-norm" in r.err


def _pooled_by_hand(x, a, b, parts):
    """The mean, std and the means of ``parts`` equal parts in time of each sequence,
    standardised across sequences, the parts weighted 1/sqrt(parts), unit length."""
    rows = []
    for i, j in zip(a, b):
        s, n = x[i:j], j - i
        cut = [(k * n // parts, max(k * n // parts + 1, -(-(k + 1) * n // parts)))
               for k in range(parts)]
        rows.append(np.r_[s.mean(0), s.std(0), *[s[c:d].mean(0) for c, d in cut]])
    p = np.stack(rows)
    p = (p - p.mean(0)) / p.std(0)
    d = x.shape[1]
    if parts:
        p[:, 2 * d:] /= np.sqrt(parts)
    u = p / np.linalg.norm(p, axis=1, keepdims=True)
    want = np.sqrt(np.clip(2 * (1 - u @ u.T), 0, None))
    np.fill_diagonal(want, 0)
    return want


def test_cosine_distance_of_pooled_sequences(emb_and_mask, tmp_path, wsd):
    """--distance cosine: each call pooled to mean and std and the means of its start,
    middle and end (--segments 3, the default; 0 leaves them out), standardised, the parts
    weighted 1/sqrt(3), compared by cosine; the stored matrix is the chord distance
    sqrt(2 (1 - cos)) of those vectors; the types are recovered, and --sample works on it
    too."""
    emb, det = emb_and_mask
    with open_file(emb) as e:
        x = e.read("embeddings").astype(np.float64)
        x = (x - x.mean(0)) / x.std(0)  # --normalize zscore, per dimension
    for extra, parts in (([], 3), (["--segments", "0"], 0), (["--segments", "2"], 2)):
        out = tmp_path / f"cos{parts}.h5"
        r = wsd("cluster", emb, "--mask", det, "-o", out, "-k", "3", "--distance", "cosine",
                "--rerank", "none", *extra)
        assert r.code == 0, r.err
        assert "cosine (pooled)" in r.err and "ARI 1.000" in r.err, r.err
        with open_file(out) as f:
            a, b = f.read("seq_start"), f.read("seq_stop")
            np.testing.assert_allclose(f.read("distance"), _pooled_by_hand(x, a, b, parts),
                                       atol=2e-5)
            assert f.attrs("/")["distance"] == "cosine"
            assert f.params["segments"] == parts
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "s.h5", "-k", "3", "--distance",
            "cosine", "--sample", "12")
    assert r.code == 0 and "ARI 1.000" in r.err, r.err
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "x.h5", "--distance", "euclid")
    assert r.code == 2 and "--distance must be auto, dtw, cosine or fused" in r.err
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "x.h5", "--distance", "cosine",
            "--segments", "17")
    assert r.code == 2 and "--segments must be 0 to 16" in r.err
