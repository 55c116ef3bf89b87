"""The fused distance: pooled embeddings and the DTW of the windows' own frames
(wsd cluster --distance fused, wsd search --match fused), on generated clips of calls whose
pooled statistics are alike but whose shapes in time differ (up-sweeps and down-sweeps)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import rerank_by_hand
from wsd.discovery import frames as F
from wsd.io.store import open_file

SR = 8000


def _sweep(f0, f1, seconds):
    t = np.arange(int(SR * seconds)) / SR
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Nine clips, one call each in noise: up-sweeps, down-sweeps and steady tones of
    different lengths; windows, and 'embeddings' that are each window's mean spectrum
    (an encoder without any sense of time within the clip's sequence but the order)."""
    from wsd.cli.main import main
    from wsd.io.store.rows import RowWriter

    d = tmp_path_factory.mktemp("fused")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(9):
        kind = ("up", "down", "tone")[i % 3]
        secs = 0.8 + 0.15 * (i // 3)
        c = {"up": _sweep(600, 2600, secs), "down": _sweep(2600, 600, secs),
             "tone": _sweep(1500, 1500, secs)}[kind]
        x = 0.03 * rng.standard_normal(int(SR * (secs + 0.4)))
        x[int(0.2 * SR):int(0.2 * SR) + len(c)] += 0.5 * c
        sf.write(d / f"c{i}.wav", x.astype(np.float32), SR)
        rows.append((f"c{i}.wav", kind))
    with open(d / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label"), *rows])
    win, emb = d / "win.h5", d / "emb.h5"
    assert main([str(a) for a in ["slice", *(d / f"c{i}.wav" for i in range(9)), "-o", win,
                                  "--n-fft", "256", "--hop-length", "64", "--frames", "16",
                                  "--step", "4", "--n-mels", "32", "--labels",
                                  d / "labels.csv", "-q"]]) == 0
    with open_file(win) as f:
        z = f.read("windows").astype(np.float32).mean(1)  # (n, bands)
        w = RowWriter(emb, "embeddings", {"windows": str(win), "windows_id": f.file_id},
                      f.spectrogram, f.history, f.sources)
        w.append(embeddings=z, source_id=f.read("source_id"), start_s=f.read("start_s"),
                 end_s=f.read("end_s"), label=f.read("label"))
        w.set_attrs(embedding_dim=z.shape[1])
        w.close()
    return {"dir": d, "win": win, "emb": emb}


def _by_hand(win: str, emb: str, segments: int = 3, search: bool = False,
             spread_over_all: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The fused matrix and the clip labels, computed here without wsd's functions:
    frames rebuilt from the windows, every 2nd, each clip less its 20th percentile per band
    and standardised; DTW by dtaidistance, divided by sqrt(len_a + len_b); the pooled
    vectors (mean, std, three parts) of the standardised windows, standardised across
    clips (not by search, which compares a query with recordings one by one), parts
    weighted 1/sqrt(3), cosine distance; each matrix divided by its spread over pairs (by
    search: over all entries of its query x recording matrix, unless it re-ranks:
    ``spread_over_all`` False); averaged."""
    from dtaidistance import dtw_ndim

    with open_file(win) as f:
        w = f.read("windows").astype(np.float64)
        sid, st, step = f.read("source_id"), f.read("start_s"), f.spectrogram["step"]
    with open_file(emb) as e:
        x = e.read("embeddings").astype(np.float64)
        lab = e.read("label")
    x = (x - x.mean(0)) / x.std(0)
    seqs, pooled, y = [], [], []
    for s in np.unique(sid):
        r = np.flatnonzero(sid == s)
        r = r[np.argsort(st[r])]
        fr = np.concatenate([w[i, :step] for i in r[:-1]] + [w[r[-1]]])[::2]
        fr = fr - np.percentile(fr, 20, axis=0)
        seqs.append((fr - fr.mean()) / fr.std())
        e_ = x[r]
        n = len(e_)
        cuts = [(k * n // segments, max(k * n // segments + 1, -(-(k + 1) * n // segments)))
                for k in range(segments)]
        pooled.append(np.r_[e_.mean(0), e_.std(0), *[e_[a:b].mean(0) for a, b in cuts]])
        y.append(lab[r[0]])
    m = len(seqs)
    dtw = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            dtw[i, j] = dtw[j, i] = dtw_ndim.distance(seqs[i], seqs[j]) / np.sqrt(
                len(seqs[i]) + len(seqs[j]))
    p = np.stack(pooled)
    if not search:
        p = (p - p.mean(0)) / p.std(0)
    p[:, 2 * x.shape[1]:] /= np.sqrt(segments)
    u = p / np.linalg.norm(p, axis=1, keepdims=True)
    cos = np.clip(1 - u @ u.T, 0, None)
    everything = search if spread_over_all is None else spread_over_all
    off = np.ones((m, m), bool) if everything else ~np.eye(m, dtype=bool)
    fused = 0.5 * cos / cos[off].std() + 0.5 * dtw / dtw[off].std()
    np.fill_diagonal(fused, 0)
    return fused, np.asarray(y, str)


# ------------------------------------------------------------------ pure functions
def test_recording_frames_undo_the_windowing():
    t = np.arange(30 * 3, dtype=np.float32).reshape(30, 3)  # 30 frames, 3 bands
    wins = np.stack([t[a:a + 8] for a in range(0, 30 - 8 + 1, 2)])  # 8 frames, step 2
    np.testing.assert_array_equal(F.recording_frames(wins, 2), t)
    np.testing.assert_array_equal(F.recording_frames(wins[:1], 2), t[:8])
    assert F.recording_frames(np.zeros((0, 8, 3)), 2).shape == (0, 3)


def test_whiten_and_fuse():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5)) + np.arange(5) * 10  # a level per band
    w = F.whiten(x)
    assert abs(w.mean()) < 1e-9 and abs(w.std() - 1) < 1e-6
    np.testing.assert_allclose(F.whiten(x + 7.0), w, atol=1e-9)  # a band offset is gone
    np.testing.assert_allclose(F.whiten(3 * x), w, atol=1e-9)  # and a gain
    assert np.array_equal(F.whiten(np.ones((4, 2))), np.zeros((4, 2)))
    a, b = rng.random(10), 100 * rng.random(10)
    np.testing.assert_allclose(F.fuse(a, b), 0.5 * a / a.std() + 0.5 * b / b.std())
    np.testing.assert_allclose(F.fuse(a, b, weight=1.0), a / a.std())
    np.testing.assert_allclose(F.fuse(a, np.zeros(10)), 0.5 * a / a.std())


# ------------------------------------------------------------------ commands
def test_cluster_fused_matches_the_definition_and_finds_the_shapes(clips, tmp_path, wsd):
    """Pooled alone (mean spectra) cannot tell an up-sweep from a down-sweep of the same
    band; the fused distance can. The stored matrix is the definition, computed by hand,
    and by default that re-ranked (mutual proximity, then query expansion)."""
    want, y = _by_hand(clips["win"], clips["emb"])
    for extra, expect in ((["--rerank", "none"], want), ([], rerank_by_hand(want))):
        out = tmp_path / "f.h5"
        r = wsd("cluster", clips["emb"], "--per-file", "--distance", "fused", "-k", "3",
                "-o", out, "--force", *extra)
        assert r.code == 0, r.err
        assert "fused (pooled cosine + DTW of the frames)" in r.err, r.err
        assert "ARI 1.000" in r.err, r.err
        with open_file(out) as f:
            np.testing.assert_allclose(f.read("distance"), expect, rtol=1e-4, atol=1e-4)
            assert list(np.asarray(f.read("label"), str)) == list(y)
            assert f.params["distance"] == "fused" and f.params["segments"] == 3
            assert f.params["rerank"] == (extra[1] if extra else "mp+qe")
    r = wsd("cluster", clips["emb"], "--per-file", "--distance", "cosine", "--segments", "0",
            "-k", "3", "-o", tmp_path / "c.h5")
    assert r.code == 0 and "ARI 1.000" not in r.err, r.err


def _search_rerank_by_hand(d):
    """``search --per-file --rerank mp+qe`` of an archive against itself, by hand: mutual
    proximity of the archive's matrix ``d`` (each recording's statistics over the others);
    a query's distance to itself 1 - P(X_q > 0)^2; every other distance averaged with the
    query's nearest other recording's (one-sided query expansion)."""
    from scipy.stats import norm

    mp = rerank_by_hand(d, "mp")
    n = len(d)
    out = np.zeros_like(mp)
    for i in range(n):
        others = np.delete(d[i], i)
        nearest = min((j for j in range(n) if j != i), key=lambda j: mp[i, j])
        out[i] = (mp[i] + mp[nearest]) / 2
        out[i, i] = 1 - norm.sf(0.0, others.mean(), others.std()) ** 2
    return out


def test_search_fused_ranks_the_same_shape_first(clips, tmp_path, wsd):
    """Raw (--rerank none): minus the fused cross distance, by hand; re-ranked (the
    default): minus that re-ranking of the archive's fused matrix, by hand. Either way each
    recording finds itself first, then one of its own shape."""
    raw, y = _by_hand(clips["win"], clips["emb"], search=True)
    square, _ = _by_hand(clips["win"], clips["emb"], search=True, spread_over_all=False)
    for extra, want in ((["--rerank", "none"], raw), ([], _search_rerank_by_hand(square))):
        out = tmp_path / "h.h5"
        r = wsd("search", clips["emb"], "--query", clips["emb"], "--per-file", "--match",
                "fused", "-k", "3", "-o", out, "--force", *extra)
        assert r.code == 0 and "fused against recordings" in r.err, r.err
        assert ("re-ranked (mp+qe)" in r.err) == (not extra), r.err
        with open_file(out) as h:
            q, s, score = h.read("query_id"), h.read("source_id"), h.read("score")
            rank = h.read("rank")
            assert h.params["rerank"] == ("none" if extra else "mp+qe")
        for i in range(len(y)):
            mine = q == i
            assert s[mine & (rank == 1)][0] == i  # itself first
            second = int(s[mine & (rank == 2)][0])
            assert y[second] == y[i]  # then a call of the same shape
            np.testing.assert_allclose(score[mine], -want[i, s[mine]], rtol=1e-4, atol=1e-4)


def _recording(src, dst, windows_path: str, **params):
    """A copy of embeddings ``src`` that records ``windows_path`` as its windows file (and
    ``params``)."""
    from wsd.io.store.rows import RowWriter

    with open_file(src) as e:
        w = RowWriter(dst, "embeddings", {**e.params, "windows": windows_path, **params},
                      e.spectrogram, e.history, e.sources)
        w.append(**{k: e.read(k) for k in ("embeddings", "source_id", "start_s", "end_s",
                                           "label")})
        w.set_attrs(embedding_dim=e.read("embeddings").shape[1])
        w.close()


def test_fused_finds_its_windows_beside_the_embeddings_or_says_what_to_give(clips, tmp_path,
                                                                            wsd):
    d = tmp_path / "moved"
    d.mkdir()
    emb = d / "emb.h5"
    _recording(clips["emb"], emb, str(tmp_path / "elsewhere" / "win.h5"))
    out = tmp_path / "x.h5"
    r = wsd("cluster", emb, "--per-file", "--distance", "fused", "-k", "3", "-o", out)
    assert r.code == 66 and "give --windows" in r.err and "elsewhere" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and not out.exists()
    shutil.copy(clips["win"], d / "win.h5")  # beside the embeddings: found there
    assert wsd("cluster", emb, "--per-file", "--distance", "fused", "-o", out).code == 0
    ref = tmp_path / "ref.h5"
    assert wsd("cluster", clips["emb"], "--per-file", "--distance", "fused", "-o", ref,
               "--windows", clips["win"]).code == 0
    with open_file(out) as a, open_file(ref) as b:
        np.testing.assert_array_equal(a.read("distance"), b.read("distance"))


def test_an_output_never_overwrites_the_windows_behind_the_embeddings(clips, tmp_path, wsd):
    d = tmp_path / "w"
    d.mkdir()
    shutil.copy(clips["win"], d / "win.h5")
    emb = d / "emb.h5"
    _recording(clips["emb"], emb, str(d / "win.h5"))
    before = (d / "win.h5").read_bytes()
    for args in (("cluster", emb, "--per-file", "--distance", "fused"),
                 ("search", emb, "--query", emb, "--per-file")):
        r = wsd(*args, "-o", d / "win.h5", "--force")
        assert r.code == 73 and "is also an input" in r.err, r.err
    assert (d / "win.h5").read_bytes() == before


def test_fused_refuses_other_windows_and_bad_combinations(clips, tmp_path, wsd):
    from wsd.cli.main import main

    other = tmp_path / "other.h5"
    assert main([str(a) for a in ["slice", *(clips["dir"] / f"c{i}.wav" for i in range(9)),
                                  "-o", other, "--n-fft", "256", "--hop-length", "64",
                                  "--frames", "16", "--step", "4", "--n-mels", "32",
                                  "-q"]]) == 0
    out = tmp_path / "x.h5"
    r = wsd("cluster", clips["emb"], "--per-file", "--distance", "fused", "--windows", other,
            "-o", out)
    assert r.code == 65 and "is not the windows file" in r.err and not out.exists(), r.err
    r = wsd("cluster", clips["emb"], "--per-file", "--distance", "fused", "--sample", "4",
            "-o", out)
    assert r.code == 2 and "leave out --sample" in r.err
    r = wsd("cluster", clips["emb"], "--per-file", "--windows", clips["win"], "-o", out)
    assert r.code == 2 and "--windows gives the frames of --distance fused" in r.err
    r = wsd("search", clips["emb"], "--query", clips["emb"], "--match", "fused", "-o", out)
    assert r.code == 2 and "--per-file" in r.err and not out.exists()
    r = wsd("search", clips["emb"], "--query", clips["emb"], "--per-file", "--windows",
            clips["win"], "-o", out)
    assert r.code == 2 and "--match fused" in r.err


def test_auto_is_fused_for_kmeans_embeddings_when_the_windows_are_there(clips, tmp_path, wsd):
    """cluster --distance auto and search --match auto (--per-file): fused for embeddings of
    the kmeans encoder when the windows file is found, pooled cosine (with a note) when it
    is not or with --sample; other encoders keep DTW."""
    km = tmp_path / "km.h5"
    _recording(clips["emb"], km, str(clips["win"]), arch="kmeans")
    out = tmp_path / "a.h5"
    r = wsd("cluster", km, "--per-file", "-k", "3", "-o", out)
    assert r.code == 0 and "fused (pooled cosine" in r.err and "ARI 1.000" in r.err, r.err
    with open_file(out) as f:
        assert f.params["distance"] == "fused" and f.params["windows"] == str(clips["win"])
    r = wsd("cluster", km, "--per-file", "-k", "3", "--sample", "5", "-o", tmp_path / "s.h5")
    assert r.code == 0 and "pooled cosine, not fused (--sample)" in r.err, r.err
    hits = tmp_path / "h.h5"
    r = wsd("search", km, "--query", km, "--per-file", "-k", "2", "-o", hits)
    assert r.code == 0 and "fused against recordings" in r.err, r.err
    lost = tmp_path / "lost.h5"
    _recording(clips["emb"], lost, str(tmp_path / "nowhere" / "win.h5"), arch="kmeans")
    r = wsd("cluster", lost, "--per-file", "-k", "3", "-o", tmp_path / "b.h5")
    assert r.code == 0 and "pooled cosine, not fused (the windows file" in r.err, r.err
    with open_file(tmp_path / "b.h5") as f:
        assert f.params["distance"] == "cosine"
    r = wsd("search", lost, "--query", km, "--per-file", "-k", "2", "-o", tmp_path / "g.h5")
    assert r.code == 0 and "pooled against recordings" in r.err and "archive" in r.err, r.err
    other = tmp_path / "other.h5"
    _recording(clips["emb"], other, str(clips["win"]), arch="convae")
    r = wsd("cluster", other, "--per-file", "-k", "3", "-o", tmp_path / "c.h5")
    assert r.code == 0 and "DTW matrix" in r.err, r.err


def test_the_report_names_the_fused_distance(clips, tmp_path, wsd):
    out = tmp_path / "f.h5"
    assert wsd("cluster", clips["emb"], "--per-file", "--distance", "fused", "-k", "3",
               "-o", out).code == 0
    r = wsd("report", out, "-o", tmp_path / "rep", "-q")
    assert r.code == 0, r.err
    page = (tmp_path / "rep" / "index.html").read_text()
    assert ("novelty (mean mutual proximity (expanded) of the fused distance (pooled + frame "
            "DTW)") in page


def test_search_rerank_with_a_sample_of_the_archive(clips, tmp_path, wsd, monkeypatch):
    """An archive larger than the statistics sample (here 4 of 9 recordings): each
    recording's statistics come from the sample, neighbours outside it are computed on
    demand; each recording still finds itself first, then one of its own shape."""
    from wsd.discovery import rerank

    monkeypatch.setattr(rerank, "STATS_SAMPLE", 4)
    out = tmp_path / "h.h5"
    r = wsd("search", clips["emb"], "--query", clips["emb"], "--per-file", "--match", "fused",
            "-k", "2", "-o", out)
    assert r.code == 0 and "fused against recordings, re-ranked (mp+qe)" in r.err, r.err
    _, y = _by_hand(clips["win"], clips["emb"])
    with open_file(out) as h:
        q, s, rank = h.read("query_id"), h.read("source_id"), h.read("rank")
        score = h.read("score")
    assert np.all(np.isfinite(score)) and np.all((score <= 0) & (score >= -1))
    for i in range(len(y)):
        assert s[(q == i) & (rank == 1)][0] == i
        assert y[int(s[(q == i) & (rank == 2)][0])] == y[i]
