"""The review page of wsd report: hits of wsd search grouped by query and detected events,
each a thumbnail, a play button and yes / no / unsure marks (the browser side is in
test_report_browser.py)."""

from __future__ import annotations

import csv
import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 8000
SLICE = ["--n-fft", "256", "--hop-length", "128", "--frames", "16", "--step", "8",
         "--freq-scale", "linear", "--scale", "db", "--no-whiten"]


def run(*args) -> int:
    from wsd.cli.main import main

    return main([str(a) for a in args])


def _chirp(f0, f1, seconds):
    t = np.arange(int(SR * seconds)) / SR
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))


def fake_embed(win: Path, emb: Path, windows_param: str | None = None) -> None:
    """An embeddings file of ``win``: each window's per-band means over the first and the
    second half of its frames (a stand-in encoder that tells an up-sweep from a down-sweep);
    ``windows_param`` overrides the windows file it names."""
    from wsd.io.store import open_file
    from wsd.io.store.rows import RowWriter

    with open_file(win) as f:
        x = f.read("windows").astype(np.float32)
        half = x.shape[1] // 2
        z = np.concatenate([x[:, :half].mean(1), x[:, half:].mean(1)], axis=1)
        w = RowWriter(emb, "embeddings", {"windows": windows_param or str(win),
                                          "windows_id": f.file_id},
                      f.spectrogram, f.history, f.sources)
        w.append(embeddings=z.astype(np.float32), source_id=f.read("source_id"),
                 start_s=f.read("start_s"), end_s=f.read("end_s"))
        w.close()


def make_archive(d: Path) -> dict:
    """Two 8 s recordings of noise with up- and down-sweeps, windows, embeddings and a hits
    file of two table queries (an up-sweep, a down-sweep), 3 hits each."""
    rng = np.random.default_rng(0)
    for r in range(2):
        x = 0.02 * rng.standard_normal(SR * 8)
        for i, t0 in enumerate((1.0, 3.0, 5.0)):
            c = _chirp(500, 2500, 1.0) if (i + r) % 2 == 0 else _chirp(2500, 500, 1.0)
            x[int(t0 * SR):int(t0 * SR) + len(c)] += 0.5 * c
        sf.write(d / f"r{r}.wav", x.astype(np.float32), SR)
    p = {k: d / f"{k}.h5" for k in ("win", "emb", "hits")}
    assert run("slice", d / "r0.wav", d / "r1.wav", "-o", p["win"], *SLICE, "-q") == 0
    fake_embed(p["win"], p["emb"])
    (d / "q.csv").write_text("path,start_s,end_s\nr0.wav,1.0,2.0\nr0.wav,3.0,4.0\n")
    assert run("search", p["emb"], "--query-table", d / "q.csv", "-k", "3", "-o", p["hits"],
               "-q") == 0
    return {**p, "dir": d}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_archive(tmp_path_factory.mktemp("review"))


def hit_rows(hits: Path) -> list[dict]:
    """The hits in page order (by query, then rank) with their CSV path and times."""
    from wsd.io.store import open_file

    with open_file(hits) as f:
        cols = {k: f.read(k) for k in ("query_id", "rank", "source_id", "start_s", "end_s")}
        paths = list(f.sources["path"])
    order = np.lexsort((cols["rank"], cols["query_id"]))
    return [{"query": int(cols["query_id"][i]), "rank": int(cols["rank"][i]),
             "path": paths[cols["source_id"][i]],
             "start": repr(round(float(cols["start_s"][i]), 6)),
             "end": repr(round(float(cols["end_s"][i]), 6))} for i in order]


def items_of(html: str, cls: str = "ritem") -> list[dict]:
    """The data attributes of every review item of the page, in order."""
    out = []
    for m in re.finditer(rf'<div class="{cls}"([^>]*)>', html):
        out.append({k: unescape(v) for k, v in re.findall(r'data-(\w+)="([^"]*)"', m.group(1))})
    return out


def test_one_item_per_hit_grouped_by_query(archive, tmp_path):
    out = tmp_path / "rep"
    assert run("report", archive["hits"], "-o", out, "-q") == 0
    html = (out / "index.html").read_text()
    want = hit_rows(archive["hits"])
    got = items_of(html)
    assert len(got) == len(want) == 6
    assert [(g["path"], g["start"], g["end"]) for g in got] == \
        [(w["path"], w["start"], w["end"]) for w in want]
    assert all(g["key"] == f"{g['path']}|{g['start']}|{g['end']}" for g in got)
    # two groups, each led by its query (a clip, not markable), in query order
    assert html.count('<div class="rgroup">') == 2 and len(items_of(html, "rquery")) == 2
    assert html.index("Query 1: r0.wav 1.00-2.00 s") < html.index("Query 2: r0.wav 3.00-4.00 s")
    assert html.count('class="ryes" value="call"') == 2  # the queries have no label
    block = re.search(r'<div class="review"([^>]*)>', html).group(1)
    from wsd.io.store import open_file

    with open_file(archive["hits"]) as f:
        assert f'data-store="wsd-review:{f.file_id}"' in block
    assert 'data-file="hits-labels.csv"' in block and 'data-no="noise"' in block
    assert 'data-unsure="unsure"' in block
    # every item and query has a clip and a thumbnail of its clip's span
    srcs = re.findall(r'data-src="([^"]+)"', html)
    thumbs = re.findall(r'<img class="rthumb" src="([^"]+)"', html)
    assert len(srcs) == len(thumbs) == 8
    assert all((out / s).is_file() for s in srcs + thumbs)
    m = json.loads((out / "metrics.json").read_text())
    res = m["results"]["hits"]
    assert res["n_hits"] == 6 and res["n_queries"] == 2
    assert res["review"] == {"items": 6, "left_out": 0, "thumbnails": 8}
    assert m["review_thumbnails"] == 8
    assert set(json.loads((out / ".wsd-report").read_text())["files"]) >= set(thumbs)
    # the event mark lies inside the thumbnail, where the hit is in its clip's span
    ev = re.findall(r'data-t0="([\d.]+)" data-t1="([\d.]+)"[^>]*><img[^>]*><span class="rev" '
                    r'style="left:([\d.]+)%;width:([\d.]+)%"', html)
    assert len(ev) == 8
    for t0, t1, left, width in ev:
        assert 0 <= float(left) and float(left) + float(width) <= 100.01


def test_the_cap_keeps_every_querys_best_ranks(archive, tmp_path):
    from wsd.report import ReportOptions, build_report

    out = tmp_path / "rep"
    build_report([archive["hits"]], out, ReportOptions(review_items=3))
    got = items_of((out / "index.html").read_text())
    want = [w for w in hit_rows(archive["hits"]) if w["rank"] == 1 or
            (w["rank"] == 2 and w["query"] == 0)]
    assert [(g["path"], g["start"]) for g in got] == [(w["path"], w["start"]) for w in want]
    assert "Showing 3 of 6 hits" in (out / "index.html").read_text()


def test_pick_hits_orders_by_query_then_rank():
    from wsd.report.sections.review import pick_hits

    qid = np.array([1, 1, 1, 0, 0, 0])
    rank = np.array([1, 2, 3, 1, 2, 3])
    assert pick_hits(qid, rank, 4).tolist() == [3, 4, 0, 1]
    assert pick_hits(qid, rank, 0).tolist() == []


def test_without_the_windows_file_hits_keep_their_play_buttons(archive, tmp_path):
    emb, hits = tmp_path / "emb.h5", tmp_path / "hits.h5"
    fake_embed(archive["win"], emb, windows_param=str(tmp_path / "gone" / "win.h5"))
    assert run("search", emb, "--query-table", archive["dir"] / "q.csv", "-k", "2", "-o",
               hits, "-q") == 0
    out = tmp_path / "rep"
    assert run("report", hits, "-o", out, "-q") == 0
    html = (out / "index.html").read_text()
    assert len(items_of(html)) == 4
    assert "The windows file of emb.h5 was not found: no spectrograms here" in html
    assert html.count("no spectrogram</div>") == 6 and "rthumb" not in html
    assert len(re.findall(r'data-src="([^"]+)"', html)) == 6


def test_a_detections_file_gets_a_review_of_its_events(archive, tmp_path):
    det, out = tmp_path / "det.h5", tmp_path / "rep"
    assert run("detect", archive["win"], "--silence", "-o", det, "-q") == 0
    assert run("report", det, "-o", out, "--events", "4", "--timelines", "0", "-q") == 0
    html = (out / "index.html").read_text()
    got = items_of(html)
    from wsd.io.store import open_file

    with open_file(det) as f:
        n_ev = len(f.read("events/source_id"))
    assert len(got) == min(4, n_ev) >= 2
    assert 'class="ryes" value="call"' in html  # the silence detector: any sound
    # the review and the events table play the same clips
    srcs = re.findall(r'data-src="([^"]+)"', html)
    assert len(srcs) == 2 * len(got) and len(set(srcs)) == len(got)


def test_uncertain_hits_review_under_the_probes_label(archive, tmp_path):
    labels = tmp_path / "l.csv"
    with open(labels, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "start_s", "end_s", "label"])
        w.writerows([("r0.wav", 1.0, 2.0, "up"), ("r1.wav", 3.0, 4.0, "up"),
                     ("r0.wav", 3.0, 4.0, "down")])
    clf, unc, out = tmp_path / "clf.h5", tmp_path / "u.h5", tmp_path / "rep"
    assert run("train", archive["emb"], "--arch", "linear", "--labels", labels, "--positive",
               "up", "-o", clf, "-q") == 0
    assert run("search", archive["emb"], "--uncertain", clf, "-k", "4", "-o", unc, "-q") == 0
    assert run("report", unc, "-o", out, "-q") == 0
    html = (out / "index.html").read_text()
    assert len(items_of(html)) == 4 and not items_of(html, "rquery")
    assert "the windows it is least sure of (positive: up)" in html
    assert 'class="ryes" value="up"' in html


def test_review_block_escapes_what_it_shows(tmp_path):
    from wsd.report.page import Section, render
    from wsd.report.review import Review, ReviewGroup, ReviewItem, Thumb

    bad = '<script>alert("x")</script>&\''
    it = ReviewItem(f"a{bad}.wav", 1.0, 2.0, bad, [bad], "audio/a.wav",
                    Thumb("review/a.png", 0.0, 3.0, 0.0, 4000.0))
    grp = ReviewGroup(bad, [it], bad, query=ReviewItem("q.wav", 0.5, 1.5, bad))
    html = render("t", "s", [], {}, [Section("S", [Review(bad, bad, bad, [grp])], "s")], [])
    assert "<script>alert" not in html
    assert html.count("&lt;script&gt;alert(") >= 7
    (item,) = items_of(html)
    assert item["path"] == f"a{bad}.wav" and item["start"] == "1.0" and item["end"] == "2.0"
    assert 'style="left:33.33%;width:33.33%"' in html  # 1-2 s of a 0-3 s thumbnail
    assert "0-4 kHz" in html


def test_review_items_option_is_checked():
    from wsd.errors import UsageError
    from wsd.report import ReportOptions

    with pytest.raises(UsageError, match="--review-items must be >= 0"):
        ReportOptions(review_items=-1)


def test_no_follow_says_why_there_are_no_spectrograms(archive, tmp_path):
    out = tmp_path / "rep"
    assert run("report", archive["hits"], "-o", out, "--no-follow", "-q") == 0
    html = (out / "index.html").read_text()
    assert "not opened (--no-follow): no spectrograms here" in html
    assert len(items_of(html)) == 6 and "rthumb" not in html


def test_review_script_is_inline():
    from importlib import resources

    from wsd.report.page import Note, Section, render

    html = render("t", "s", [], {}, [Section("S", [Note("n")], "s")], [])
    js = (resources.files("wsd.report") / "templates" / "review.js").read_text().strip()
    assert js in html and "localStorage" in js and "new Blob(" in js
