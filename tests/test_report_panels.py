"""No empty panels: without labels, or with labels of a single class, the report draws no
ROC/PR curves, no confusion matrix and no score histogram by true class, and says why; an
embedding map is not coloured by something every window shares."""

from __future__ import annotations

import json

import numpy as np

from test_report import _recordings, run_wsd


def _report(tmp_path, labels: str | None):
    """Silence detections of two 9 s recordings (labels: "events", "all" = one event over
    each whole recording, None) and their report; (metrics, html)."""
    audio = _recordings(tmp_path / "audio")
    args = []
    if labels == "all":
        (audio / "all.csv").write_text("path,start_s,end_s,label\n" + "".join(
            f"{audio / f'rec_{i}.wav'},0,9,song\n" for i in range(2)))
        args = ["--labels", audio / "all.csv"]
    elif labels == "events":
        args = ["--labels", audio / "labels.csv"]
    win, det, out = (tmp_path / k for k in ("win.h5", "det.h5", "rep"))
    assert run_wsd("slice", audio, *args, "-o", win, "-q") == 0
    assert run_wsd("detect", win, "--silence", "-o", det, "-q") == 0
    assert run_wsd("report", det, "-o", out, "--timelines", "0", "--events", "2", "-q") == 0
    return json.loads((out / "metrics.json").read_text()), (out / "index.html").read_text()


def test_no_labels_no_curves_and_an_unsplit_histogram(tmp_path):
    m, html = _report(tmp_path, None)
    assert m["figures"] == ["det_scores.png"]
    assert "No labels in this file" in html and "not split by true class" in html
    assert "by true class." not in html
    assert "computed" not in m["results"]["det"]


def test_one_class_no_curves_no_confusion_but_metrics(tmp_path):
    m, html = _report(tmp_path, "all")
    assert m["figures"] == ["det_scores.png"]
    assert ("The labels hold a single class per window (every window is &#39;call&#39;) and "
            "per recording (every recording is &#39;call&#39;)") in html
    assert "the score distribution is not split by true class" in html
    comp = m["results"]["det"]["computed"]
    assert comp["window"]["roc_auc"] is None and comp["window"]["n_positive"] > 0


def test_a_level_with_one_class_is_left_out_of_the_curves(tmp_path):
    m, html = _report(tmp_path, "events")
    assert {"det_roc_pr.png", "det_confusion.png", "det_scores.png"} <= set(m["figures"])
    assert "single class per recording (every recording is &#39;call&#39;)" in html
    assert "per window (" not in html
    assert "Distribution of the per-window score (log scale), by true class." in html


def test_score_histogram_title_says_what_it_shows():
    from wsd.report.figures.detect import score_histogram

    s = np.linspace(0, 1, 50)
    assert score_histogram(s, None, 0.5, "", "score").axes[0].get_title() == "per-window score"
    fig = score_histogram(s, s > 0.5, 0.5, "call", "score")
    assert fig.axes[0].get_title() == "per-window score by true class"


def test_embedding_map_leaves_out_colourings_with_one_category():
    from wsd.report.sections.embed import _informative

    n = 10
    keep, notes = _informative([
        ("label", np.full(n, "song"), "unlabelled"),
        ("cluster (c.h5)", np.array(["0"] * 5 + [""] * 5), "not in a sequence"),
        ("silence decision (d.h5)", np.full(n, ""), "silent"),
    ])
    assert [k[0] for k in keep] == ["cluster (c.h5)"]
    assert [x.text for x in notes] == [
        "The map is not coloured by label: every window shown is 'song'.",
        "The map is not coloured by silence decision (d.h5): every window shown is 'silent'."]


def test_cluster_labels_that_are_all_empty_count_as_none():
    from wsd.report.sections.cluster import Sequences

    class F:  # the reads of a clusters file without known labels
        sources = {"path": ["/x/a.wav"]}
        data = {"cluster": [0, 1], "seq_start": [0, 2], "seq_stop": [2, 4], "source_id": [0, 0],
                "start_s": [0.0, 1.5], "end_s": [1.5, 3.0], "label": np.array(["", ""])}

        def has(self, k):
            return k in self.data

        def read(self, k):
            return np.asarray(self.data[k])

    sq = Sequences.read(F())
    assert sq.truth is None and sq.caption(1) == "a.wav 1.5 s"
    F.data["label"] = np.array(["up", ""])
    sq = Sequences.read(F())
    assert sq.caption(0) == "a.wav 0.0 s [up]" and sq.caption(0, label=False) == "a.wav 0.0 s"
