"""Event scores as ``detect --truth`` reports them (wsd.metrics.events): one-to-one matching
at IoU >= 0.3, F1, false positives per hour, and average precision of the ranked events."""

import numpy as np
import pytest

from wsd.metrics.events import event_ap, event_metrics, match_count

REFS = {"a.wav": np.array([[10.0, 11.0], [20.0, 21.0]]), "b.wav": np.array([[5.0, 6.0]])}


def test_each_reference_matches_at_most_once():
    # two detections over one call: one match, the other a false positive
    det = np.array([[10.0, 11.0, 0.9], [10.1, 11.1, 0.8]])
    assert match_count(det, REFS["a.wav"]) == 1
    m = event_metrics({"a.wav": det}, REFS, hours=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 2)
    assert m["fp_per_hour"] == pytest.approx(2.0)
    assert m["f1"] == pytest.approx(2 / (2 + 1 + 2))


def test_average_precision_follows_the_ranking():
    hit_a, hit_b = [10.0, 11.0], [5.0, 6.0]
    noise = [40.0, 41.0]
    good = {"a.wav": np.array([hit_a + [0.9], noise + [0.1]]), "b.wav": np.array([hit_b + [0.8]])}
    bad = {"a.wav": np.array([hit_a + [0.1], noise + [0.9]]), "b.wav": np.array([hit_b + [0.2]])}
    # 2 of 3 calls found, ranked first: AP = (1 + 1) / 3; ranked below the noise: less
    assert event_ap(good, REFS) == pytest.approx(2 / 3)
    assert event_ap(bad, REFS) == pytest.approx((1 / 2 + 2 / 3) / 3)


def test_no_detection_scores_zero_and_no_reference_is_undefined():
    m = event_metrics({}, REFS, hours=1.0)
    assert m["f1"] == 0 and m["recall"] == 0 and m["average_precision"] == 0.0
    assert event_ap({"a.wav": np.array([[1.0, 2.0, 0.5]])}, {}) is None
