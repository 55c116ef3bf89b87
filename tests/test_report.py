"""wsd report: every figure from small real outputs of the other commands (slice, train,
embed, detect, cluster on generated recordings with known calls), metrics.json against values
computed here, the page's blocks and clips, and the output-folder rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wsd.io.store import open_file


# ------------------------------------------------------------------ the pipeline, once

def _recordings(folder: Path) -> Path:
    """Two 9 s recordings at 22050 Hz with calls of known type, and their labels.csv."""
    from wsd.datasets.synth import make_recording

    folder.mkdir()
    rows = ["path,start_s,end_s,label"]
    for i in range(2):
        x, events, _, _ = make_recording(22050, 9.0, np.random.default_rng([7, i]),
                                         gap_s=(0.6, 1.5))
        sf.write(folder / f"rec_{i}.wav", x, 22050)
        rows += [f"{folder / f'rec_{i}.wav'},{e['start_s']:.4f},{e['end_s']:.4f},{e['label']}"
                 for e in events]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def run_wsd(*args) -> int:
    """``wsd ARGS`` in-process; returns the exit status."""
    from conftest import SEED_SLICE
    from wsd.cli import main as cli_main

    if args and args[0] == "slice":  # the seeds' front end, which these figures assume
        args = ("slice", *SEED_SLICE, *args[1:])
    return cli_main.main([str(a) for a in args])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """windows, convae model, embeddings (with reconstructions), a small GAN and its
    embeddings (with generated windows), silence detections and DTW clusters."""
    d = tmp_path_factory.mktemp("pipeline")
    audio = _recordings(d / "audio")
    p = {k: d / f"{k}.h5" for k in ("win", "ae", "emb", "gan", "gemb", "det", "cl")}
    assert run_wsd("slice", audio, "--labels", audio / "labels.csv", "-o", p["win"], "-q") == 0
    assert run_wsd("train", p["win"], "--arch", "convae", "--arch-param", "width=0.25",
                   "--epochs", "2", "--batch-size", "16", "-o", p["ae"], "-q") == 0
    assert run_wsd("embed", p["win"], "--model", p["ae"], "--reconstruct", "4", "-o", p["emb"],
                   "-q") == 0
    assert run_wsd("train", p["win"], "--arch", "gan", "-p", "channels=4", "-p", "features=8",
                   "-p", "z_dim=8", "-p", "g_hidden=8", "-p", "hidden=8", "-p", "seq_len=2",
                   "--epochs", "1", "--batch-size", "8", "-o", p["gan"], "-q") == 0
    assert run_wsd("embed", p["win"], "--model", p["gan"], "--reconstruct", "6", "-o",
                   p["gemb"], "-q") == 0
    assert run_wsd("detect", p["win"], "--silence", "-o", p["det"], "-q") == 0
    assert run_wsd("cluster", p["emb"], "--mask", p["det"], "--n-clusters", "4", "-o", p["cl"],
                   "-q") == 0
    p["audio"] = audio
    return p


@pytest.fixture(scope="module")
def full_report(pipeline, tmp_path_factory):
    """One report of every kind of file (the GAN's embeddings too)."""
    out = tmp_path_factory.mktemp("rep") / "report"
    code = run_wsd("report", pipeline["cl"], pipeline["det"], pipeline["gemb"], "-o", out,
                   "--max-clips", "12", "--gallery-size", "4", "-q")
    assert code == 0
    return out


# ------------------------------------------------------------------ helpers

def _image_ok(path: Path) -> tuple[int, int]:
    """The PNG opens, is at least 300 x 200 px and is not blank (many colours, contrast)."""
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG", path
        w, h = im.size
        px = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert w >= 300 and h >= 200, (path, w, h)
    assert px.std() > 10, path
    assert len(np.unique(px.reshape(-1, 3)[::7], axis=0)) > 50, path
    return w, h


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


# ------------------------------------------------------------------ figures and metrics

def test_every_figure_is_written_and_non_trivial(full_report, pipeline):
    from wsd.io.store import open_file

    m = _metrics(full_report)
    expected = {"cl_sizes", "cl_dendrogram", "cl_novelty", "cl_cluster_000", "det_roc_pr",
                "det_confusion", "det_scores", "det_timeline_0", "emb_map",
                "emb_reconstructions", "gemb_map", "gemb_gan", "ae_training", "ae_filters",
                "gan_training", "gan_filters"}
    names = {Path(f).stem for f in m["figures"]}
    assert expected <= names, expected - names
    assert len(names) == len(m["figures"])
    for f in m["figures"]:
        _image_ok(full_report / f)
    with open_file(pipeline["cl"]) as f:
        k = len(np.unique(f.read("cluster")))
    assert sum(n.startswith("cl_cluster_") for n in names) == k >= 2


def test_metrics_json_matches_values_computed_here(full_report, pipeline):
    from sklearn.decomposition import PCA
    from sklearn.metrics import (adjusted_rand_score, average_precision_score,
                                 normalized_mutual_info_score, roc_auc_score)

    from wsd.io.store import open_file
    from wsd.io.store.models import load_model

    res = _metrics(full_report)["results"]
    with open_file(pipeline["det"]) as f:
        y = f.read("label").astype(str) != ""  # the silence detector: any label is a call
        score, positive = f.read("score").astype(np.float64), f.read("positive")
        sid = f.read("source_id")
        stored = json.loads(f.attrs("/")["metrics_json"])
        n_events = len(f.read("events/source_id"))
        how = f.attrs("/")["clip_score"]
        durations = f.sources["duration_s"]
    # --clip-score auto: the median of the windows for clips, the max for longer recordings
    assert how == ("median" if np.median(durations) <= 60 else "max")
    agg = {"median": np.median, "max": np.max}[how]
    det = res["det"]
    assert det["stored"] == json.loads(json.dumps(stored))
    assert det["n_events"] == n_events and det["n_detected_windows"] == int(positive.sum())
    w = det["computed"]["window"]
    assert w["roc_auc"] == pytest.approx(roc_auc_score(y, score))
    assert w["average_precision"] == pytest.approx(average_precision_score(y, score))
    tn, fp = int((~y & ~positive).sum()), int((~y & positive).sum())
    fn, tp = int((y & ~positive).sum()), int((y & positive).sum())
    assert w["confusion"] == [[tn, fp], [fn, tp]]
    assert w["recall"] == pytest.approx(tp / (tp + fn))
    rec = det["computed"]["recording"]
    assert rec["n"] == len(np.unique(sid))
    rec_pos = [bool(agg(positive[sid == s].astype(float)) >= 0.5) for s in np.unique(sid)]
    rec_true = [bool(y[sid == s].any()) for s in np.unique(sid)]
    assert sum(rec["confusion"][1]) + sum(rec["confusion"][0]) == len(rec_pos)
    assert rec["confusion"][1][1] == sum(a and b for a, b in zip(rec_pos, rec_true))

    with open_file(pipeline["cl"]) as f:
        cluster, truth = f.read("cluster"), f.read("label").astype(str)
    cl = res["cl"]
    assert cl["n_sequences"] == len(cluster) and cl["n_clusters"] == len(np.unique(cluster))
    assert cl["sizes"] == np.bincount(cluster).tolist()
    has = truth != ""
    assert cl["computed"]["ari"] == pytest.approx(adjusted_rand_score(truth[has], cluster[has]))
    assert cl["computed"]["nmi"] == pytest.approx(
        normalized_mutual_info_score(truth[has], cluster[has]))
    assert cl["stored"]["ari"] == pytest.approx(cl["computed"]["ari"])

    with open_file(pipeline["emb"]) as f:
        x, labels = f.read("embeddings"), f.read("label").astype(str)
    emb = res["emb"]
    ev = PCA(n_components=2, random_state=0).fit(x.astype(np.float64)).explained_variance_ratio_
    assert emb["projection"]["explained_variance_ratio"] == pytest.approx(ev.tolist())
    assert emb["n_windows"] == len(x) and emb["dim"] == x.shape[1]
    assert emb["knn5_label_accuracy"]["accuracy"] == pytest.approx(
        _knn_loo_brute_force(x, labels, 5))

    hist = load_model(pipeline["ae"])["loss_history"]
    assert res["ae"]["final_loss"] == pytest.approx(hist["loss"][-1])
    assert res["ae"]["epochs"] == 2 and res["gan"]["arch"] == "gan"


def _knn_loo_brute_force(x, labels, k):
    """Leave-one-out k-NN accuracy over the labelled rows by a full distance matrix (majority
    vote, ties to the nearest of the tied labels)."""
    from scipy.spatial.distance import cdist

    keep = labels != ""
    x, lab = x[keep].astype(np.float64), labels[keep]
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    hits = 0
    for i in range(len(x)):
        nb = np.argsort(d[i], kind="stable")[:k]
        names, counts = np.unique(lab[nb], return_counts=True)
        tied = set(names[counts == counts.max()])
        hits += next(lab[j] for j in nb if lab[j] in tied) == lab[i]
    return hits / len(x)


def test_page_links_clips_and_timeline_bounds(full_report):
    import re

    html = (full_report / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # works offline: no CDN
    srcs = re.findall(r'data-src="([^"]+)"', html)
    assert srcs and all((full_report / s).is_file() for s in srcs)
    clips = sorted(p.name for p in (full_report / "audio").glob("*.wav"))
    timelines = [c for c in clips if "_timeline_" in c]
    assert len(clips) - len(timelines) == len(set(srcs)) <= 12  # --max-clips 12
    m = _metrics(full_report)
    assert m["clips"]["written"] == len(set(srcs)) and m["clips"]["left_out"] > 0
    for s in set(srcs):
        x, sr = sf.read(full_report / s)
        assert sr > 0 and 0 < len(x) <= sr * 10.0 + 1
    imgs = re.findall(r'<img src="([^"]+)"', html)
    assert set(imgs) == set(m["figures"])
    boxes = re.findall(r'data-box="([^"]+)"', html)
    assert len(boxes) == len(timelines) >= 1
    for b in boxes:
        box = json.loads(b.replace("&quot;", '"'))
        assert 0 < box["left"] < box["right"] < 1 and 0 < box["top"] < box["bottom"] < 1
    for name in ("det.h5", "cl.h5", "gemb.h5", "emb.h5", "win.h5", "ae.h5", "gan.h5"):
        assert name in html
    assert (full_report / ".wsd-report").is_file()


def test_timeline_axes_map_time_to_pixels_exactly(tmp_path):
    """A bright column drawn at a known time lands where the page puts the cursor for it."""
    from PIL import Image

    from wsd.report.figures.detect import timeline
    from wsd.report.figures.plotting import axes_box, save

    hop, t0, t1 = 0.01, 3.0, 13.0
    img = np.full((1000, 64), -90.0, np.float32)
    for t in (5.0, 11.5):
        img[int(round((t - t0) / hop))] = 0.0  # the frame starting at t
    start = np.arange(t0, t1, 0.5)
    fig, ax, sx = timeline(img, t0, t1, hop, 0.0, np.linspace(0, 1000, 64), -90, 0, "test",
                           windows=(start, start + 0.5, np.linspace(0, 1, len(start)),
                                    np.arange(len(start)) % 2 == 0), threshold=0.5)
    box = axes_box(fig, ax)
    save(fig, tmp_path / "t.png")
    px = np.asarray(Image.open(tmp_path / "t.png").convert("L"), dtype=np.float64)
    h, w = px.shape
    row = px[int((box["top"] + 0.5 * (box["bottom"] - box["top"])) * h)]
    for t in (5.0, 11.5):
        expect = (box["left"] + (t + hop / 2 - t0) / (t1 - t0) * (box["right"] - box["left"])) * w
        lo, hi = int(expect) - 15, int(expect) + 15
        found = lo + int(np.argmax(row[lo:hi]))
        assert abs(found - expect) <= 1.5, (t, found, expect)


# ------------------------------------------------------------------ options and refusals

def test_tsne_map_of_embeddings_alone(pipeline, tmp_path):
    out = tmp_path / "r"
    assert run_wsd("report", pipeline["emb"], "-o", out, "--projection", "tsne",
                   "--no-follow", "-q") == 0
    m = _metrics(out)
    assert [i["role"] for i in m["inputs"]] == ["given"]
    assert m["results"]["emb"]["projection"]["method"] == "tsne"
    assert sorted(m["figures"]) == ["emb_map.png", "emb_reconstructions.png"]
    _image_ok(out / "emb_map.png")


def test_output_folder_rules(pipeline, tmp_path, capsys):
    out = tmp_path / "r"
    args = ("report", pipeline["det"], "--no-follow", "--timelines", "0", "--events", "3")
    assert run_wsd(*args, "-o", out, "-q") == 0
    first = sorted(p.name for p in out.iterdir())
    assert run_wsd(*args, "-o", out, "-q") == 73  # exists
    assert "--force" in capsys.readouterr().err
    assert run_wsd(*args, "-o", out, "-q", "--force") == 0
    assert sorted(p.name for p in out.iterdir()) == first
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    assert run_wsd(*args, "-o", other, "-q", "--force") == 73
    assert (other / "mine.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".*tmp"))
    assert run_wsd(*args, "-o", tmp_path / "x", "--projection", "umap") == 2
    assert run_wsd("report", tmp_path / "missing.h5", "-o", tmp_path / "y") == 66


def test_missing_recordings_leave_clips_out_with_a_warning(tmp_path, capsys):
    from wsd.datasets.synth import make_recording

    audio = tmp_path / "gone"
    audio.mkdir()
    x, events, _, _ = make_recording(22050, 6.0, np.random.default_rng(3))
    sf.write(audio / "r.wav", x, 22050)
    (audio / "labels.csv").write_text("path,start_s,end_s,label\n" + "".join(
        f"{audio / 'r.wav'},{e['start_s']},{e['end_s']},{e['label']}\n" for e in events))
    win = tmp_path / "w.h5"
    assert run_wsd("slice", audio / "r.wav", "--labels", audio / "labels.csv", "-o", win,
                   "-q") == 0
    (audio / "r.wav").unlink()
    out = tmp_path / "r"
    assert run_wsd("report", win, "-o", out) == 0
    err = capsys.readouterr().err
    assert "recording not found" in err and "r.wav" in err
    html = (out / "index.html").read_text()
    assert "No audio for this recording" in html and "recording not found" in html
    assert _metrics(out)["results"]["w"]["labels"] == {
        k: v for k, v in _labels_of(win).items()}
    _image_ok(out / "w_timeline_0.png")


def _labels_of(win):
    from wsd.io.store import open_file

    with open_file(win) as f:
        names, counts = np.unique([s for s in f.read("label").astype(str) if s],
                                  return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts)}


def test_command_module_imports_no_heavy_libraries():
    import subprocess
    import sys

    code = ("import sys, wsd.cli.report, wsd.report; "
            "bad = [m for m in ('matplotlib', 'torch', 'sklearn', 'scipy') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ the numbers behind figures

def test_stitch_lays_frames_on_the_time_grid():
    from wsd.report.analysis import stitch

    w = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    img = stitch(w, np.array([1.0, 1.8]), 0.1, 0.9, 2.4)
    assert img.shape == (15, 3)
    assert np.isnan(img[0]).all()
    np.testing.assert_array_equal(img[1:5], w[0])
    assert np.isnan(img[5:9]).all()  # the gap between the windows
    np.testing.assert_array_equal(img[9:13], w[1])
    assert np.isnan(img[13:]).all()


def test_busiest_span_and_dense_regions():
    from wsd.report.analysis import busiest_span, dense_regions

    assert busiest_span(np.array([5.0]), np.array([6.0]), 30.0, 60.0) == (0.0, 30.0)
    t0, t1 = busiest_span(np.array([10.0, 100.0, 104.0]), np.array([12.0, 103.0, 108.0]),
                          300.0, 20.0)
    assert t0 == pytest.approx(99.0) and t1 == pytest.approx(119.0)
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.normal(0, 10, (200, 2)), rng.normal((5, 5), 0.3, (300, 2)),
                         rng.normal((-20, 8), 0.5, (150, 2))])
    boxes = dense_regions(xy, k=2)
    assert len(boxes) == 2
    (a0, a1, b0, b1), (c0, c1, d0, d1) = boxes
    assert a0 < 5 < a1 and b0 < 5 < b1 and a1 - a0 < 5
    assert c0 < -20 < c1 and d0 < 8 < d1
    assert a1 < c0 or c1 < a0 or b1 < d0 or d1 < b0  # no overlap
    assert dense_regions(xy[:10]) == []


def test_knn_accuracy_on_separated_classes():
    from wsd.report.analysis import knn_accuracy

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (30, 4)), rng.normal(20, 1, (30, 4))])
    lab = np.array(["a"] * 30 + ["b"] * 30)
    lab[::7] = ""
    out = knn_accuracy(x, lab, k=5)
    assert out == {"k": 5, "n": int((lab != "").sum()), "accuracy": 1.0}
    assert out["accuracy"] == _knn_loo_brute_force(x, lab, 5)
    assert knn_accuracy(x[:4], lab[:4], k=5)["accuracy"] is None


def test_step_row_embeddings_beside_detections_of_their_windows(pipeline, tmp_path):
    """The contrastive encoder embeds one row a step (more rows than windows); a detections
    file of the same windows has one decision a window and cannot colour those rows: the
    page is built without that colouring (it was an IndexError in make demo)."""
    enc, emb, out = tmp_path / "c.h5", tmp_path / "s.h5", tmp_path / "r"
    assert run_wsd("train", pipeline["win"], "--arch", "contrastive", "--epochs", "1",
                   "--batch-size", "16", "-o", enc, "-q") == 0
    assert run_wsd("embed", pipeline["win"], "--model", enc, "-o", emb, "-q") == 0
    with open_file(emb) as e, open_file(pipeline["win"]) as w:
        assert e.n > w.n  # step rows
    assert run_wsd("report", emb, pipeline["det"], "-o", out, "-q") == 0
    m = _metrics(out)
    assert "s_map.png" in m["figures"]
