"""Re-ranking a distance matrix (wsd.discovery.rerank, wsd cluster --rerank): the definition
against a hand-written reference, what it is for (hubs), its edges, and the command."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import rerank_by_hand
from wsd.discovery import rerank as R
from wsd.errors import BadInputError, UsageError
from wsd.io.store import open_file


def _random_distances(n, seed=0, dim=5):
    x = np.random.default_rng(seed).standard_normal((n, dim))
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


@pytest.mark.parametrize("how", ["mp", "mp+qe"])
def test_rerank_matches_the_definition(how):
    d = _random_distances(12)
    got = R.rerank(d, how)
    np.testing.assert_allclose(got, rerank_by_hand(d, how), rtol=1e-6, atol=1e-9)  # float32 inside
    assert np.allclose(got, got.T) and np.all(np.diag(got) == 0)
    assert got.min() >= 0 and got.max() <= 1
    none = R.rerank(d, "none")
    assert np.array_equal(none, d) and none is not d


def test_mutual_proximity_undoes_a_hub():
    """Three tight groups of four items far apart, and one item (the hub) at a middling
    distance from every item: by raw distance the hub is the nearest neighbour of items of
    all three groups; by mutual proximity of none, and every item's nearest neighbour is
    one of its own group."""
    g = np.repeat([0, 1, 2], 4)
    n = len(g) + 1
    rng = np.random.default_rng(1)
    d = np.where(g[:, None] == g[None], 1.0, 10.0) + 0.05 * rng.random((12, 12))
    d = (d + d.T) / 2
    hub = np.full(12, 0.98)  # nearer than each item's group mates, to all alike
    full = np.zeros((n, n))
    full[:12, :12], full[12, :12], full[:12, 12] = d, hub, hub
    np.fill_diagonal(full, 0)

    def nearest(m):
        m = m.copy()
        np.fill_diagonal(m, np.inf)
        return m.argmin(axis=1)[:12]

    raw = nearest(full)
    assert np.all(raw == 12)  # the hub is everyone's nearest neighbour
    for how in ("mp", "mp+qe"):
        nn = nearest(R.rerank(full, how))
        assert not np.any(nn == 12)
        assert np.array_equal(g[nn], g), how


def test_close_pairs_keep_their_order():
    """Pairs far below every row's typical distance (P(X > d) rounds to 1 in float64, so
    1 - P P would be 0 for both) still get distinct values: the computation is in log
    space."""
    from scipy.stats import norm

    n = 200
    d = np.full((n, n), 10.0) + np.random.default_rng(2).random((n, n))
    d = (d + d.T) / 2
    d[0, 1] = d[1, 0] = 1e-3
    d[2, 3] = d[3, 2] = 2e-3
    np.fill_diagonal(d, 0)
    off = np.delete(d[0], 0)
    assert norm.sf(d[0, 1], off.mean(), off.std()) == 1.0  # the naive product: 0
    mp = R.mutual_proximity(d)
    assert 0 < mp[0, 1] < 1e-12 and 0 < mp[2, 3] < 1e-12 and mp[0, 1] != mp[2, 3]


def test_edges():
    d = _random_distances(3)
    assert np.array_equal(R.rerank(d, "mp+qe"), d)  # too few items: left as they are
    assert np.array_equal(R.expand(_random_distances(6), k=0), _random_distances(6))
    same = np.ones((5, 5)) - np.eye(5)  # all pairs equal: no spread to divide by
    for how in ("mp", "mp+qe"):
        out = R.rerank(same, how)
        assert np.all(np.isfinite(out)) and np.allclose(out, out.T)
        assert out.min() >= 0 and out.max() <= 1
    bad = _random_distances(5)
    bad[1, 2] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        R.rerank(bad, "mp")
    with pytest.raises(BadInputError, match="square"):
        R.rerank(np.zeros((3, 4)), "mp")
    with pytest.raises(UsageError, match="mp"):
        R.rerank(d, "auto")
    with pytest.raises(UsageError, match="k >= 0"):
        R.expand(_random_distances(6), k=-1)


# ------------------------------------------------------------------ the command
def test_cluster_rerank_option(tmp_path, wsd):
    from test_cluster_cli import emb_and_mask as fixture

    emb, det = fixture.__wrapped__(tmp_path)
    outs = {}
    for how in ("none", "mp", "mp+qe", "auto"):
        out = outs[how] = tmp_path / f"{how}.h5"
        r = wsd("cluster", emb, "--mask", det, "-o", out, "-k", "3", "--rerank", how)
        assert r.code == 0 and "ARI 1.000" in r.err, (how, r.err)
        with open_file(out) as f:
            assert f.params["rerank"] == ("mp+qe" if how == "auto" else how)
    with open_file(outs["none"]) as a, open_file(outs["mp"]) as b, \
            open_file(outs["mp+qe"]) as c:
        raw = a.read("distance").astype(np.float64)
        np.testing.assert_allclose(b.read("distance"), rerank_by_hand(raw, "mp"), atol=1e-5)
        np.testing.assert_allclose(c.read("distance"), rerank_by_hand(raw), atol=1e-5)
        # novelty is the mean distance, as clustered, to the 5 nearest others
        d = c.read("distance").astype(np.float64)
        np.fill_diagonal(d, np.inf)
        np.testing.assert_allclose(c.read("novelty"), np.sort(d, 1)[:, :5].mean(1),
                                   atol=1e-5)
    # --sample: auto does not re-rank (the assignment compares raw distances); asking is
    # refused, as is an unknown value
    out = tmp_path / "s.h5"
    r = wsd("cluster", emb, "--mask", det, "-o", out, "-k", "3", "--sample", "10")
    assert r.code == 0, r.err
    with open_file(out) as f:
        assert f.params["rerank"] == "none"
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "x.h5", "--sample", "10",
            "--rerank", "mp")
    assert r.code == 2 and "--rerank mp needs the full matrix" in r.err, r.err
    r = wsd("cluster", emb, "--mask", det, "-o", tmp_path / "x.h5", "--rerank", "snn")
    assert r.code == 2 and "--rerank must be" in r.err, r.err
    assert not (tmp_path / "x.h5").exists()


def test_rerank_cross_matches_the_definition():
    """Queries against an archive, with the archive's statistics over a sample of it: by
    hand with scipy.stats; a query's own recording is left out of its statistics and of
    its expansion, and its distance to itself is not expanded."""
    from scipy.stats import norm

    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 4))
    full = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))  # the archive, 9 recordings
    sample = np.array([0, 2, 3, 5, 7])
    blk = full[sample]  # (5, 9)
    mu_a = np.array([np.mean([blk[k, j] for k, s in enumerate(sample) if s != j])
                     for j in range(9)])
    sd_a = np.array([np.std([blk[k, j] for k, s in enumerate(sample) if s != j])
                     for j in range(9)])
    dq = full[[1, 4]] + 0.01  # queries: recordings 1 and 4 again, slightly off
    dq[0, 1] = dq[1, 4] = 0.0
    same = np.zeros((2, 9), bool)
    same[0, 1] = same[1, 4] = True
    asked = []

    def row(j):
        asked.append(j)
        return full[j]

    got = R.rerank_cross(dq, mu_a, sd_a, "mp+qe", row, same)
    mp = np.zeros((2, 9))
    for q in range(2):
        others = dq[q][~same[q]]
        for j in range(9):
            mp[q, j] = 1 - (norm.sf(dq[q, j], others.mean(), others.std())
                            * norm.sf(dq[q, j], mu_a[j], sd_a[j]))
    want = np.zeros((2, 9))
    for q in range(2):
        nn = min((j for j in range(9) if not same[q, j]), key=lambda j: mp[q, j])
        arch = np.array([0.0 if j == nn else
                         1 - norm.sf(full[nn, j], mu_a[nn], sd_a[nn])
                         * norm.sf(full[nn, j], mu_a[j], sd_a[j]) for j in range(9)])
        want[q] = (mp[q] + arch) / 2
        want[q, same[q]] = mp[q, same[q]]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert len(asked) == len(set(asked)) <= 2  # each neighbour's row asked once
    np.testing.assert_allclose(R.rerank_cross(dq, mu_a, sd_a, "mp", row, same), mp,
                               atol=1e-12)
    assert np.array_equal(R.rerank_cross(dq, mu_a, sd_a, "none", row, same), dq)
    assert np.array_equal(got.argmin(axis=1), [1, 4])  # itself first


def test_search_rerank_usage(tmp_path, wsd):
    from test_cluster_cli import emb_and_mask as fixture

    emb, _ = fixture.__wrapped__(tmp_path)
    out = tmp_path / "h.h5"
    r = wsd("search", emb, "--query", emb, "--rerank", "mp", "-o", out)
    assert r.code == 2 and "--rerank re-ranks whole recordings" in r.err, r.err
    r = wsd("search", emb, "--query", emb, "--per-file", "--rerank", "x", "-o", out)
    assert r.code == 2 and "--rerank must be" in r.err, r.err
    assert not out.exists()
