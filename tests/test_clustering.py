"""Tests for wsd.discovery (sequences, dtw, cost, agglomerative, sampled, novelty) and wsd.metrics.clustering: call sequences, DTW matrices, clustering, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from dtaidistance import dtw as dd_dtw
from dtaidistance import dtw_ndim
from sklearn.metrics import adjusted_rand_score, silhouette_score

from wsd.discovery import cost, dtw, novelty
from wsd.discovery.agglomerative import ClusterResult, cluster_sequences, medoids_of
from wsd.discovery.sampled import cluster_sampled
from wsd.discovery.sequences import (Sequences, sequence_labels, sequences_from_mask,
                                     sequences_per_file)
from wsd.metrics.clustering import label_metrics
from wsd.errors import BadInputError, UsageError, WsdError


def call_types(n_per_type=20, n_types=4, dim=8, seed=0):
    """Sequences of ``n_types`` smooth multivariate shapes, each drawn with a random length
    (15..30 rows), a random monotone time warp t -> t**g, g in [0.6, 1.7], and Gaussian noise
    of standard deviation 0.6 (single linkage already fails at this level; complete does not).
    Returns (seqs, types)."""
    rng = np.random.default_rng(seed)
    freq = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])[:n_types]
    phase = rng.uniform(0, 2 * np.pi, size=(n_types, dim))
    seqs, types = [], []
    for k in range(n_types):
        for _ in range(n_per_type):
            t = np.linspace(0, 1, int(rng.integers(15, 31))) ** rng.uniform(0.6, 1.7)
            x = np.sin(2 * np.pi * freq[k] * t[:, None] + phase[k]) + 0.5 * (k % 2)
            seqs.append((x + rng.normal(0, 0.6, x.shape)).astype(np.float32))
            types.append(k)
    return seqs, np.array(types)


# -- sequences ------------------------------------------------------------------------------


def test_sequences_from_mask_hand_made():
    #            0  1  2  3  4  5  6  7  8  9  10 11 12 13
    source = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    start = np.array([0, 1, 2, 3, 4, 5, 9, 10, 0, 1, 2, 3, 4, 5], dtype=float)
    end = start + 1.0
    silent = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    # no gap limit: runs [1,4) [5,8) (gap 5->9 allowed) [8,14) (new source)
    s = sequences_from_mask(source, start, end, silent)
    assert s.start.tolist() == [1, 5, 8] and s.stop.tolist() == [4, 8, 14]
    assert s.source_id.tolist() == [0, 0, 1]
    assert s.start_s.tolist() == [1, 5, 0] and s.end_s.tolist() == [4, 11, 6]
    # a gap of 3 s between windows 5 and 6 over max_gap_s ends the run; min_windows drops [5,6)
    s = sequences_from_mask(source, start, end, silent, min_windows=2, max_gap_s=0.5)
    assert list(zip(s.start, s.stop)) == [(1, 4), (6, 8), (8, 14)]
    # the 6-window run is cut into 2 near-equal pieces, not 4 + 2
    s = sequences_from_mask(source, start, end, silent, min_windows=2, max_windows=4,
                            max_gap_s=0.5)
    assert list(zip(s.start, s.stop)) == [(1, 4), (6, 8), (8, 11), (11, 14)]
    assert s.lengths.tolist() == [3, 2, 3, 3]
    # 7 windows with max 3 -> 3 pieces of 2, 2, 3
    s = sequences_from_mask(np.zeros(7), np.arange(7.0), np.arange(7.0) + 1, max_windows=3)
    assert s.lengths.tolist() == [2, 2, 3] and s.stop[-1] == 7
    # all silent: nothing
    assert len(sequences_from_mask(source, start, end, np.ones(14, bool))) == 0


def test_sequences_from_mask_overlapping_windows_and_bad_input():
    start = np.arange(6) * 0.5  # 1 s windows, 0.5 s hop: negative gaps always continue
    s = sequences_from_mask(np.zeros(6), start, start + 1.0, max_gap_s=0.0)
    assert list(zip(s.start, s.stop)) == [(0, 6)]
    with pytest.raises(BadInputError, match="end_s"):
        sequences_from_mask(np.zeros(6), start, start[:5])
    with pytest.raises(UsageError, match="max_windows"):
        sequences_from_mask(np.zeros(6), start, start + 1, min_windows=3, max_windows=2)


def test_sequences_per_file_and_arrays():
    source = np.array([3, 3, 3, 1, 1, 7])
    start = np.array([0, 1, 2, 0, 1, 0], dtype=float)
    s = sequences_per_file(source, start, start + 1)
    assert s.source_id.tolist() == [3, 1, 7] and s.lengths.tolist() == [3, 2, 1]
    assert s.end_s.tolist() == [3, 2, 1]
    x = np.arange(12.0).reshape(6, 2)
    parts = s.arrays(x)
    assert [p.shape for p in parts] == [(3, 2), (2, 2), (1, 2)]
    assert np.shares_memory(parts[0], x)
    assert s.subset([2]).source_id.tolist() == [7]
    with pytest.raises(BadInputError, match="contiguous"):
        sequences_per_file(np.array([1, 2, 1]), np.zeros(3), np.ones(3))


def test_sequence_labels_majority():
    labels = np.array(["a", "b", "b", "", "", "", "c", "a", "x"])
    s = Sequences(np.array([0, 3, 5, 7]), np.array([3, 5, 7, 9]), np.zeros(4, int),
                  np.zeros(4), np.ones(4))
    # [a b b] -> b; [ "" "" ] -> ""; ["" c] -> c; [a x] tie -> a (alphabetical)
    assert sequence_labels(labels, s).tolist() == ["b", "", "c", "a"]


# -- preprocessing --------------------------------------------------------------------------


def test_preprocess_normalize_and_pca():
    rng = np.random.default_rng(1)
    emb = (rng.normal(3, 2, size=(200, 16)) * np.arange(1, 17)).astype(np.float32)
    emb[:, 5] = 7.0  # a constant dimension
    z = dtw.preprocess(emb, "zscore")
    assert z.dtype == np.float64 and z.flags.c_contiguous
    assert np.allclose(z.mean(0), 0) and np.allclose(np.delete(z.std(0), 5), 1)
    assert np.allclose(z[:, 5], 0)
    z_fit = dtw.preprocess(emb, "zscore", fit_rows=np.arange(100))
    assert np.allclose(z_fit[:100].mean(0), 0) and not np.allclose(z_fit[100:].mean(0), 0)
    l2 = dtw.preprocess(emb, "l2")
    assert np.allclose(np.linalg.norm(l2, axis=1), 1)
    p1 = dtw.preprocess(emb, "zscore", pca_dim=4, seed=3)
    p2 = dtw.preprocess(emb, "zscore", pca_dim=4, seed=3)
    assert p1.shape == (200, 4) and np.array_equal(p1, p2)
    assert np.all(np.diff(p1.var(0)) <= 1e-9)  # components by decreasing variance
    with pytest.raises(UsageError, match="PCA"):
        dtw.preprocess(emb, pca_dim=17)
    with pytest.raises(UsageError, match="normalize"):
        dtw.preprocess(emb, "minmax")


# -- DTW ------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [None, 3])
def test_dtw_matrix_matches_direct_calls(window):
    seqs, _ = call_types(n_per_type=3, dim=5)
    m = dtw.dtw_matrix(seqs, window=window)
    n = len(seqs)
    assert m.shape == (n, n) and m.dtype == np.float64
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 0) and np.all(np.isfinite(m))
    for i in range(n):
        for j in range(i + 1, n):
            ref = dtw_ndim.distance(seqs[i].astype(np.float64), seqs[j].astype(np.float64),
                                    window=window)
            assert m[i, j] == pytest.approx(ref, rel=1e-12)
    c = dtw.dtw_condensed(seqs, window=window)
    assert c.shape == (n * (n - 1) // 2,)
    from scipy.spatial.distance import squareform

    assert np.array_equal(squareform(c, checks=False), m)


def test_dtw_one_dimension_uses_1d_code_and_agrees():
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=int(rng.integers(5, 20))) for _ in range(8)]
    m = dtw.dtw_matrix(seqs)
    m2 = dtw.dtw_matrix([s[:, None] for s in seqs])
    assert np.array_equal(m, m2)
    assert m[1, 6] == pytest.approx(dd_dtw.distance(seqs[1], seqs[6]), rel=1e-12)


def test_dtw_cross_and_assign():
    seqs, _ = call_types(n_per_type=4, dim=3, seed=5)
    a, b = seqs[:7], seqs[7:10]
    cross = dtw.dtw_cross(a, b, window=4)
    assert cross.shape == (7, 3)
    for i in range(7):
        for j in range(3):
            ref = dtw_ndim.distance(a[i].astype(float), b[j].astype(float), window=4)
            assert cross[i, j] == pytest.approx(ref, rel=1e-12)
    index, dist = dtw.assign(a, b, window=4)
    assert index.tolist() == cross.argmin(1).tolist()
    assert np.array_equal(dist, cross.min(1))


def test_length_norm_divides_by_sqrt_of_summed_lengths():
    seqs, _ = call_types(n_per_type=3, dim=4, seed=7)
    raw = dtw.dtw_matrix(seqs, window=6)
    norm = dtw.dtw_matrix(seqs, window=6, length_norm="sqrt")
    n = np.array([len(s) for s in seqs], dtype=float)
    ref = raw / np.sqrt(n[:, None] + n[None, :])
    np.fill_diagonal(ref, 0)
    assert np.allclose(norm, ref, rtol=1e-12, atol=0) and np.array_equal(norm, norm.T)
    i, j = 2, 9
    direct = dtw_ndim.distance(seqs[i].astype(float), seqs[j].astype(float), window=6)
    assert norm[i, j] == pytest.approx(direct / math.sqrt(n[i] + n[j]), rel=1e-12)
    cross = dtw.dtw_cross(seqs[:5], seqs[5:], window=6, length_norm="sqrt")
    assert np.allclose(cross, norm[:5, 5:], rtol=1e-12)
    index, dist = dtw.assign(seqs[:5], seqs[5:8], window=6, length_norm="sqrt")
    assert np.array_equal(dist, cross[:, :3].min(1))
    # the sampled path uses the same distances as the full one
    full = cluster_sequences(seqs, n_clusters=3, window=6, length_norm="sqrt")
    assert np.allclose(full.distance, norm, rtol=1e-12)
    samp = cluster_sampled(seqs, 6, seed=0, n_clusters=3, window=6, length_norm="sqrt")
    rows = np.setdiff1d(np.arange(len(seqs)), samp.clustered)
    med = samp.medoids[samp.labels[rows]]
    assert np.allclose(samp.medoid_distance[rows], norm[rows, med], rtol=1e-12)
    with pytest.raises(UsageError, match="none or sqrt"):
        dtw.dtw_condensed(seqs, length_norm="mean")


def test_dtw_input_errors():
    with pytest.raises(BadInputError, match="dimensions"):
        dtw.dtw_matrix([np.zeros((3, 2)), np.zeros((3, 4))])
    with pytest.raises(BadInputError, match="NaN"):
        dtw.dtw_matrix([np.zeros((3, 2)), np.full((3, 2), np.nan)])
    with pytest.raises(UsageError, match="window"):
        dtw.dtw_matrix([np.zeros((3, 2))] * 2, window=-1)


def test_missing_c_library_raises_clearly(monkeypatch):
    assert dtw.c_available()
    monkeypatch.setattr(dd_dtw, "dtw_cc", None)
    assert not dtw.c_available()
    with pytest.raises(dtw.DtwUnavailableError, match="C library") as info:
        dtw.dtw_matrix([np.zeros((3, 2)), np.ones((3, 2))])
    assert isinstance(info.value, WsdError)


def test_missing_openmp_falls_back_to_serial_c_with_a_warning(monkeypatch):
    seqs, _ = call_types(n_per_type=2, dim=3)
    expected = dtw.dtw_matrix(seqs)
    monkeypatch.setattr(dd_dtw, "dtw_cc_omp", None)
    assert not dtw.openmp_available()
    with pytest.warns(RuntimeWarning, match="OpenMP"):
        got = dtw.dtw_matrix(seqs)
    assert np.array_equal(got, expected)


def test_cost_model_and_memory_guard():
    b, s = cost.estimate_cost(10_000, 50, 128, n_threads=2)
    assert b == cost.matrix_bytes(10_000) and b >= 12 * 10_000**2
    assert 10_000**2 / 2 / s == pytest.approx(4_600, rel=0.3)  # the 128-D rate
    _, s_band = cost.estimate_cost(10_000, 50, 128, window=5, n_threads=2)
    assert 10_000**2 / 2 / s_band == pytest.approx(25_000, rel=0.3)
    _, s_1d = cost.estimate_cost(10_000, 50, 1, n_threads=2)
    assert 10 < s / s_1d < 40
    assert cost.estimate_cost(200, 30, 8)[1] < cost.estimate_cost(400, 30, 8)[1]
    cost.check_memory(100, limit_bytes=cost.matrix_bytes(100))
    with pytest.raises(cost.MatrixTooLargeError, match=r"--sample N \(N <= 99\)") as info:
        cost.check_memory(100, limit_bytes=cost.matrix_bytes(100) - 1)
    assert isinstance(info.value, UsageError)
    assert cost.default_memory_limit() > 0


def test_memory_guard_stops_clustering_before_any_dtw(monkeypatch):
    seqs, _ = call_types(n_per_type=5)

    def boom(*a, **k):
        raise AssertionError("DTW computed despite the memory guard")

    monkeypatch.setattr("wsd.discovery.agglomerative.dtw_condensed", boom)
    with pytest.raises(cost.MatrixTooLargeError, match="--sample"):
        cluster_sequences(seqs, n_clusters=4, memory_limit=1000)
    with pytest.raises(cost.MatrixTooLargeError, match="--sample"):
        cluster_sampled(seqs, 15, n_clusters=4, memory_limit=1000)


# -- clustering -----------------------------------------------------------------------------


def test_complete_linkage_recovers_known_types():
    seqs, types = call_types(n_per_type=20)
    r = cluster_sequences(seqs, method="complete", n_clusters=4)
    assert isinstance(r, ClusterResult)
    assert adjusted_rand_score(types, r.labels) >= 0.9
    assert r.linkage.shape == (79, 4) and r.distance.shape == (80, 80)
    assert np.all(r.sampled) and r.clustered.tolist() == list(range(80))
    sizes = np.bincount(r.labels)
    assert len(sizes) == 4 and np.all(np.diff(sizes) <= 0)
    # medoids: members of their cluster with the least summed distance (brute force)
    for c, med in enumerate(r.medoids):
        idx = np.flatnonzero(r.labels == c)
        assert r.labels[med] == c
        assert med == idx[np.argmin(r.distance[np.ix_(idx, idx)].sum(1))]
    assert np.array_equal(r.medoid_distance, r.distance[r.medoids[r.labels], np.arange(80)])
    assert r.silhouette == pytest.approx(
        silhouette_score(r.distance, r.labels, metric="precomputed"))
    shuffled = np.random.default_rng(0).permutation(r.labels)
    assert r.silhouette > 0.2 > silhouette_score(r.distance, shuffled, metric="precomputed")


def test_distance_threshold_and_undefined_silhouette():
    seqs, _ = call_types(n_per_type=6)
    by_k = cluster_sequences(seqs, n_clusters=4, method="average")
    h = by_k.linkage[:, 2]
    cut = (h[-4] + h[-3]) / 2  # between the 4th-last and 3rd-last merge: 4 clusters
    by_t = cluster_sequences(seqs, distance_threshold=cut, method="average")
    assert np.array_equal(by_t.labels, by_k.labels)
    one = cluster_sequences(seqs, n_clusters=1, method="single")
    assert one.silhouette is None and set(one.labels) == {0} and len(one.medoids) == 1
    each = cluster_sequences(seqs, distance_threshold=0.0)
    assert each.silhouette is None and len(each.medoids) == len(seqs)
    with pytest.raises(UsageError, match="exactly one"):
        cluster_sequences(seqs, n_clusters=3, distance_threshold=1.0)
    with pytest.raises(UsageError, match="linkage"):
        cluster_sequences(seqs, n_clusters=3, method="median")


def test_medoids_of_hand_case():
    x = np.array([0.0, 1.0, 2.0, 10.0, 13.0])
    d = np.abs(x[:, None] - x[None, :])
    assert medoids_of(d, np.array([0, 0, 0, 1, 1])).tolist() == [1, 3]


def test_sampled_assignment_agrees_with_full_clustering():
    seqs, types = call_types(n_per_type=15, seed=3)
    full = cluster_sequences(seqs, n_clusters=4)
    samp = cluster_sampled(seqs, 24, seed=1, n_clusters=4, chunk_size=10)
    assert samp.sampled.sum() == 24 and len(samp.clustered) == 24
    assert samp.distance.shape == (24, 24) and samp.linkage.shape == (23, 4)
    assert adjusted_rand_score(full.labels, samp.labels) >= 0.95
    assert adjusted_rand_score(types, samp.labels) >= 0.9
    # the cheap path (distances to medoids only) gives the same labels
    cheap = cluster_sampled(seqs, 24, seed=1, n_clusters=4, novelty_k=None)
    assert cheap.novelty is None and np.array_equal(cheap.labels, samp.labels)
    assert np.allclose(cheap.medoid_distance, samp.medoid_distance)
    # labels renumbered by final size, medoids follow them
    assert np.all(np.diff(np.bincount(samp.labels)) <= 0)
    assert np.array_equal(samp.labels[samp.medoids], np.arange(4))
    assert np.all(np.isin(samp.medoids, samp.clustered))
    # a sample as large as the set is the full clustering
    same = cluster_sampled(seqs, 1000, n_clusters=4)
    assert np.array_equal(same.labels, full.labels)


def test_novelty_ranks_injected_outlier_first():
    seqs, _ = call_types(n_per_type=8, seed=4)
    rng = np.random.default_rng(9)
    outlier = rng.normal(0, 1.5, size=(25, 8)).astype(np.float32)
    seqs = seqs[:13] + [outlier] + seqs[13:]
    r = cluster_sequences(seqs, n_clusters=4, novelty_k=5)
    assert int(np.argmax(r.novelty)) == 13
    s = cluster_sampled(seqs, 16, seed=2, n_clusters=4, novelty_k=5)
    assert not s.sampled[13]  # the outlier is scored against the sample
    assert int(np.argmax(s.novelty)) == 13


def test_knn_novelty_hand_case():
    x = np.array([0.0, 1.0, 3.0, 10.0])
    d = np.abs(x[:, None] - x[None, :])
    assert novelty.knn_novelty(d, k=2).tolist() == [2.0, 1.5, 2.5, 8.0]
    assert novelty.knn_novelty(d, k=10).tolist() == pytest.approx([14 / 3, 12 / 3, 12 / 3, 26 / 3])
    assert np.isnan(novelty.knn_novelty(np.zeros((1, 1)))).all()


# -- metrics --------------------------------------------------------------------------------


def test_label_metrics_against_hand_computation():
    true = np.array(["a", "a", "b", "b", ""])
    pred = np.array([0, 0, 1, 0, 1])
    x = np.array([0.0, 3.0, 4.0, 10.0, 3.5])
    d = np.abs(x[:, None] - x[None, :])
    out = label_metrics(true, pred, distance=d)
    # labelled: true a a b b, clusters 0 0 1 0. Contingency c0: a2 b1, c1: b1.
    # ARI: sum C(nij,2)=1, clusters C(3,2)+C(1,2)=3, classes 1+1=2, C(4,2)=6, expected 1
    assert out["ari"] == pytest.approx((1 - 3 * 2 / 6) / ((3 + 2) / 2 - 3 * 2 / 6))
    h_true = math.log(2)
    h_pred = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mi = 0.5 * math.log(0.5 / (0.75 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5)) \
        + 0.25 * math.log(0.25 / (0.25 * 0.5))
    assert out["nmi"] == pytest.approx(mi / ((h_true + h_pred) / 2))
    assert out["purity"] == pytest.approx(3 / 4)
    # 1-NN among labelled only (the unlabelled x=3.5 is nearest to x=3 and x=4 but ignored):
    # 0->1 a ok, 1->2 b wrong, 2->1 a wrong, 3->2 b ok
    assert out["knn1_accuracy"] == pytest.approx(0.5) and out["knn1_n"] == 4
    assert out["n_labelled"] == 4 and out["n_classes"] == 2


def test_label_metrics_perfect_partial_and_empty():
    true = np.array(["x", "x", "y", "y", "z"])
    out = label_metrics(true, np.array([2, 2, 0, 0, 1]))
    assert out["ari"] == pytest.approx(1) and out["nmi"] == pytest.approx(1)
    assert out["purity"] == 1 and out["knn1_accuracy"] is None
    # 1-NN over a clustered subset: rows of distance are sequences 1, 2, 3
    d = np.array([[0, 5, 6], [5, 0, 1], [6, 1, 0]], dtype=float)
    out = label_metrics(true, np.zeros(5, int), distance=d, clustered=np.array([1, 2, 3]))
    assert out["knn1_n"] == 3 and out["knn1_accuracy"] == pytest.approx(2 / 3)
    assert out["purity"] == pytest.approx(2 / 5) and out["ari"] == pytest.approx(0)
    none = label_metrics(np.array(["", ""]), np.array([0, 1]), distance=np.eye(2))
    assert none["n_labelled"] == 0 and none["ari"] is None and none["knn1_accuracy"] is None
