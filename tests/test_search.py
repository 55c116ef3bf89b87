"""Query by example, the index, few-shot probes and active learning (wsd search, wsd index,
wsd train --arch linear, wsd detect on embeddings), on generated calls and unit arrays."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import soundfile as sf

from wsd.discovery import search as S
from wsd.io.store import open_file

SR = 8000


def _chirp(f0, f1, seconds, sr=SR):
    t = np.arange(int(sr * seconds)) / sr
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three recordings of noise with up-sweeps and down-sweeps at known times, sliced into
    short windows and 'embedded' by a fixed random projection of the windows (a stand-in
    encoder: the search code must work on any embeddings), with the labels of the calls."""
    from wsd.cli.main import main

    d = tmp_path_factory.mktemp("search")
    rng = np.random.default_rng(0)
    rows = []
    for r in range(3):
        x = 0.02 * rng.standard_normal(SR * 20)
        for i, t0 in enumerate(np.arange(1.0, 19.0, 3.0)):
            kind = "up" if (i + r) % 2 == 0 else "down"
            c = _chirp(500, 2500, 1.0) if kind == "up" else _chirp(2500, 500, 1.0)
            a = int(t0 * SR)
            x[a:a + len(c)] += 0.5 * c
            rows.append((f"r{r}.wav", t0, t0 + 1.0, kind))
        sf.write(d / f"r{r}.wav", x.astype(np.float32), SR)
    with open(d / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "start_s", "end_s", "label"])
        w.writerows(rows)
    win, emb = d / "win.h5", d / "emb.h5"
    assert main([str(a) for a in ["slice", *(d / f"r{r}.wav" for r in range(3)), "-o", win,
                                  "--n-fft", "256", "--hop-length", "128", "--frames", "8",
                                  "--step", "4", "--labels", d / "labels.csv", "-q"]]) == 0
    _fake_embed(win, emb)
    return {"dir": d, "win": win, "emb": emb, "labels": d / "labels.csv"}


def _fake_embed(win, emb):
    """An embeddings file whose vectors are a fixed random projection of each window's log
    spectrogram (stands in for an encoder; keeps the direction of a sweep)."""
    from wsd.io.store.rows import RowWriter

    with open_file(win) as f:
        x = f.read("windows").astype(np.float32)
        z = x.reshape(len(x), -1)
        z = (z - z.mean(0)) @ np.random.default_rng(1).standard_normal((z.shape[1], 16))
        w = RowWriter(emb, "embeddings", {"windows": str(win), "windows_id": f.file_id},
                      f.spectrogram, f.history, f.sources)
        w.append(embeddings=z.astype(np.float32), source_id=f.read("source_id"),
                 start_s=f.read("start_s"), end_s=f.read("end_s"), label=f.read("label"))
        w.set_attrs(embedding_dim=16)
        w.close()


# ------------------------------------------------------------------ pure functions
def test_cosine_topk_matches_brute_force_in_blocks():
    rng = np.random.default_rng(0)
    x, q = rng.standard_normal((1000, 8)), rng.standard_normal((5, 8))
    i, s = S.cosine_topk(q, x, 7, block=96)
    full = S.normalise(q) @ S.normalise(x).T
    want = np.argsort(-full, axis=1)[:, :7]
    np.testing.assert_array_equal(i, want)
    np.testing.assert_allclose(s, np.take_along_axis(full, want, 1), rtol=1e-5)


def test_sliding_pooled_equals_pooling_each_stretch():
    x = np.random.default_rng(0).standard_normal((50, 4))
    sp = S.sliding_pooled(x, 6)
    assert sp.shape == (45, 8)
    for a in (0, 17, 44):
        np.testing.assert_allclose(sp[a], S.pool(x[a:a + 6]), atol=1e-5)


def test_pooling_with_parts_in_time():
    """pool(x, 3): the mean, the std, then the means of the start, middle and end; a
    sequence shorter than its parts repeats rows; sliding_pooled agrees stretch by stretch;
    the parts weigh 1/sqrt(parts) each."""
    assert S.segment_bounds(7, 3) == [(0, 3), (2, 5), (4, 7)]
    assert S.segment_bounds(6, 3) == [(0, 2), (2, 4), (4, 6)]
    assert S.segment_bounds(1, 3) == [(0, 1)] * 3
    assert S.segment_bounds(5, 0) == []
    x = np.random.default_rng(0).standard_normal((50, 4))
    v = S.pool(x[:6], 3)
    np.testing.assert_allclose(v, np.r_[x[:6].mean(0), x[:6].std(0), x[0:2].mean(0),
                                        x[2:4].mean(0), x[4:6].mean(0)], atol=1e-6)
    np.testing.assert_allclose(S.pool(x[:1], 3), np.r_[x[0], 0 * x[0], x[0], x[0], x[0]],
                               atol=1e-6)
    sp = S.sliding_pooled(x, 7, 3)
    assert sp.shape == (44, 20)
    for a in (0, 17, 43):
        np.testing.assert_allclose(sp[a], S.pool(x[a:a + 7], 3), atol=1e-5)
    np.testing.assert_allclose(S.pool_weights(4, 3), [1] * 8 + [3 ** -0.5] * 12, rtol=1e-6)
    np.testing.assert_array_equal(S.pool_weights(4, 0), np.ones(8))


def test_best_segments_do_not_overlap():
    starts, vals = S.best_segments(np.array([1, 5, 3, 9, 2, 0, 4.0]), 2, 3)
    assert starts.tolist() == [3, 1, 6] and vals.tolist() == [9, 5, 4]


def test_subsequence_dtw_finds_a_time_stretched_copy():
    rng = np.random.default_rng(0)
    series = rng.standard_normal((400, 6))
    q = series[200:210]
    stretched = np.repeat(q, 2, axis=0)  # the same call, twice as slow
    series2 = np.vstack([series[:100], stretched, series[100:]])
    a, b, s = S.subsequence_dtw(q, series2, 3)
    top = sorted(zip(a[:2].tolist(), b[:2].tolist()))
    assert abs(top[0][0] - 100) <= 1 and abs(top[0][1] - 120) <= 1, (a, b, s)
    assert top[1] == (220, 230) and s[1] > 10 * s[2], (a, b, s)


def test_uncertainty_ranks_the_boundary_first():
    i, s = S.uncertainty_topk(np.array([0.9, 0.52, 0.1, 0.45, 0.5]), 3)
    assert i.tolist() == [4, 1, 3] and s[0] == 1.0


def test_uncertain_picks_do_not_overlap_and_skip_what_was_reviewed():
    """Windows of 1 s every 0.5 s: the second best overlaps the best and is passed over;
    another recording's window at the same time is not; skipped rows are never picked."""
    p = np.array([0.5, 0.51, 0.55, 0.6, 0.5, 0.9])
    sid = np.array([0, 0, 0, 0, 1, 1])
    st = np.array([0.0, 0.5, 1.0, 1.5, 0.5, 2.0])
    i, s = S.uncertainty_topk(p, 4, sid, st, st + 1.0)
    assert i.tolist() == [0, 4, 2, 5]  # 1 overlaps 0, 3 overlaps 2
    i, _ = S.uncertainty_topk(p, 4, sid, st, st + 1.0, skip=np.array([1, 0, 0, 0, 1, 0], bool))
    assert i.tolist() == [1, 3, 5]  # all that is left without overlaps


# ------------------------------------------------------------------ the command
def _hits_csv(wsd, hits):
    r = wsd("export", hits)
    assert r.code == 0, r.err
    return list(csv.DictReader(io.StringIO(r.out)))


def test_window_queries_report_self_hits_first(archive, tmp_path, wsd):
    hits = tmp_path / "h.h5"
    r = wsd("search", archive["emb"], "--query", archive["emb"], "-k", "5", "-o", hits, "-q")
    assert r.code == 0, r.err
    rows = _hits_csv(wsd, hits)
    assert list(rows[0]) == ["query_path", "query_start_s", "query_end_s", "path", "start_s",
                             "end_s", "rank", "score", "label"]
    with open_file(archive["emb"]) as e:
        n = e.n
    assert len(rows) == 5 * n
    firsts = [r for r in rows if r["rank"] == "1"]
    assert all(r["path"] == r["query_path"] and r["start_s"] == r["query_start_s"]
               for r in firsts)
    assert all(float(a["score"]) >= float(b["score"]) for a, b in zip(rows, rows[1:])
               if a["query_start_s"] == b["query_start_s"] and a["query_path"] == b["query_path"])


@pytest.mark.parametrize("match", ["pooled", "dtw"])
def test_a_table_query_finds_the_same_kind_of_call(archive, tmp_path, wsd, match):
    """One up-sweep given by its time range finds other up-sweeps before down-sweeps."""
    q = tmp_path / "q.csv"
    q.write_text("path,start_s,end_s\nr0.wav,1.0,2.0\n")
    hits = tmp_path / f"h-{match}.h5"
    r = wsd("search", archive["emb"], "--query-table", q, "--match", match, "-k", "6",
            "-o", hits, "-q")
    assert r.code == 0, r.err
    rows = _hits_csv(wsd, hits)
    labels = [r["label"] for r in rows]
    assert labels[0] == "up" and labels[:4].count("up") >= 3, labels
    with open_file(hits) as h:
        assert h.kind == "hits" and h.params["how"].startswith(match)
        assert h.read("queries/n_windows")[0] >= 2
    if match == "pooled":  # stretches pool without parts by default; --segments 3 adds them
        for parts, same in (("0", True), ("3", False)):
            other = tmp_path / f"h-{parts}.h5"
            assert wsd("search", archive["emb"], "--query-table", q, "--match", match, "-k",
                       "6", "--segments", parts, "-o", other, "-q").code == 0
            got = [r["score"] for r in _hits_csv(wsd, other)]
            assert (got == [r["score"] for r in rows]) is same


def test_per_file_queries_rank_recordings(archive, tmp_path, wsd):
    hits = tmp_path / "h.h5"
    assert wsd("search", archive["emb"], "--query", archive["emb"], "--per-file", "-k", "3",
               "-o", hits, "-q").code == 0
    rows = _hits_csv(wsd, hits)
    assert len(rows) == 9 and all(r["path"] == r["query_path"] for r in rows if r["rank"] == "1")
    # --match pooled: with the start, middle and end (the default --segments 3) or without
    got = {}
    for parts in ("3", "0"):
        out = tmp_path / f"p{parts}.h5"
        assert wsd("search", archive["emb"], "--query", archive["emb"], "--per-file", "-k",
                   "3", "--match", "pooled", "--segments", parts, "-o", out, "-q").code == 0
        got[parts] = _hits_csv(wsd, out)
        assert all(r["path"] == r["query_path"] for r in got[parts] if r["rank"] == "1")
        assert all(float(r["score"]) <= 1.0001 for r in got[parts])
    assert [r["score"] for r in got["3"] if r["rank"] != "1"] != \
        [r["score"] for r in got["0"] if r["rank"] != "1"]


def test_search_usage_errors(archive, tmp_path, wsd):
    out = tmp_path / "h.h5"
    assert wsd("search", archive["emb"], "-o", out).code == 2
    assert wsd("search", archive["emb"], "--query", archive["emb"], "--match", "x",
               "-o", out).code == 2
    bad = tmp_path / "q.csv"
    bad.write_text("path,start_s,end_s\nnot-there.wav,1,2\n")
    r = wsd("search", archive["emb"], "--query-table", bad, "-o", out)
    assert r.code == 65 and "name no recording" in r.err and not out.exists()
    r = wsd("search", archive["emb"], "--query", archive["emb"], "--per-file", "--segments",
            "-1", "-o", out)
    assert r.code == 2 and "--segments must be 0 to 16" in r.err and not out.exists()


def test_raven_export_of_hits_reimports_as_labels(archive, tmp_path, wsd):
    hits = tmp_path / "h.h5"
    assert wsd("search", archive["emb"], "--query", archive["emb"], "-k", "2", "-o", hits,
               "-q").code == 0
    r = wsd("export", hits, "--format", "raven")
    head = r.out.splitlines()[0].split("\t")
    assert head[:9][-2:] == ["Begin Path", "File Offset (s)"] and "Rank" in head
    table = tmp_path / "hits.txt"
    table.write_text(r.out)
    assert wsd("slice", archive["dir"] / "r0.wav", "-o", tmp_path / "w.h5", "--labels", table,
               "--n-fft", "256", "--hop-length", "128", "--frames", "8", "-q").code == 0


def test_index_recall_and_search_through_it(archive, tmp_path, wsd):
    pytest.importorskip("faiss")
    idx = tmp_path / "idx"
    r = wsd("index", archive["emb"], "-o", idx)
    assert r.code == 0 and "recall@10" in r.err, r.err
    exact, approx = tmp_path / "e.h5", tmp_path / "a.h5"
    for out, extra in ((exact, []), (approx, ["--index", idx])):
        assert wsd("search", archive["emb"], "--query", archive["emb"], "-k", "10", "-o",
                   out, "-q", *extra).code == 0
    with open_file(exact) as a, open_file(approx) as b:
        ka = list(zip(a.read("query_id"), a.read("start_s"), a.read("source_id")))
        kb = set(zip(b.read("query_id"), b.read("start_s"), b.read("source_id")))
    assert sum(k in kb for k in ka) / len(ka) >= 0.95
    assert wsd("index", archive["emb"], "-o", idx).code == 73  # exists, no --force


def test_probe_detect_and_uncertain_loop(archive, tmp_path, wsd):
    """A probe from a labels CSV (as the review page saves it), then detection on the
    embeddings with events, then the windows to review next."""
    clf, det, unc = tmp_path / "clf.h5", tmp_path / "d.h5", tmp_path / "u.h5"
    r = wsd("train", archive["emb"], "--arch", "linear", "--labels", archive["labels"],
            "--positive", "up", "-o", clf)
    assert r.code == 0 and "linear probe" in r.err, r.err
    r = wsd("detect", archive["emb"], "--model", clf, "-o", det)
    assert r.code == 0, r.err
    with open_file(det) as d:
        m = d.attrs("/")
        import json
        metrics = json.loads(m["metrics_json"])
        assert metrics["window"]["roc_auc"] > 0.7, metrics["window"]
        assert d.has("events/start_s") and len(d.read("events/start_s")) >= 3
    r = wsd("search", archive["emb"], "--uncertain", clf, "-k", "7", "-o", unc, "-q")
    assert r.code == 0, r.err
    rows = _hits_csv(wsd, unc)
    assert len(rows) == 7 and rows[0]["query_path"].startswith("uncertain")
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows),
                                                       reverse=True)
    spans = [(r["path"], float(r["start_s"]), float(r["end_s"])) for r in rows]
    assert not any(p == q and a < d and c < b for i, (p, a, b) in enumerate(spans)
                   for q, c, d in spans[i + 1:])  # no two picks overlap
    # the picks marked (as the review page saves them), then the next round leaves them out
    marks = tmp_path / "marks.csv"
    marks.write_text("path,start_s,end_s,label\n" + "".join(
        f"{r['path']},{r['start_s']},{r['end_s']},noise\n" for r in rows))
    nxt = tmp_path / "u2.h5"
    r = wsd("search", archive["emb"], "--uncertain", clf, "--exclude", marks, "-k", "7",
            "-o", nxt)
    assert r.code == 0 and "reviewed windows left out" in r.err, r.err
    again = [(r["path"], float(r["start_s"]), float(r["end_s"])) for r in _hits_csv(wsd, nxt)]
    assert len(again) == 7 and not any(
        p == q and a < d and c < b for p, a, b in again for q, c, d in spans)
    r = wsd("search", archive["emb"], "--query", archive["emb"], "--exclude", marks, "-o", nxt,
            "--force")
    assert r.code == 2 and "--exclude" in r.err


def test_probe_refuses_what_it_cannot_learn(archive, tmp_path, wsd):
    out = tmp_path / "c.h5"
    r = wsd("train", archive["emb"], "--arch", "linear", "--positive", "whistle", "-o", out)
    assert r.code == 2 and "no row has that label" in r.err
    r = wsd("train", archive["emb"], "--arch", "convae", "-o", out)
    assert r.code == 2 and "--arch linear" in r.err


def test_large_indexes_use_an_hnsw_quantizer_and_calibration_reaches_the_target(
        monkeypatch):
    """Above HNSW_QUANTIZER_ABOVE lists the coarse quantizer is a graph (a flat one is too
    slow to assign archive-sized data), and nprobe is raised until recall@10 reaches the
    target, up to every list, even on random vectors that have no neighbourhood structure."""
    faiss = pytest.importorskip("faiss")
    from wsd.io import index as ix

    monkeypatch.setattr(ix, "HNSW_QUANTIZER_ABOVE", 16)
    x = np.random.default_rng(0).standard_normal((4000, 32)).astype(np.float32)
    idx = ix.train_index(x, 32, 32)
    assert isinstance(faiss.downcast_index(idx.quantizer), faiss.IndexHNSWFlat)
    ix.add_rows(idx, x, 0, len(x))
    nprobe, recall = ix.calibrate(idx, x, len(x))
    assert recall >= ix.TARGET and 4 <= nprobe <= 32
