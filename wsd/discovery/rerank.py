"""Re-ranking a full distance matrix by its own neighbourhoods, without labels
(``wsd cluster --rerank``).

In a space of many dimensions some items (hubs) come out near almost everything and others
(anti-hubs) near nothing, whatever their kind: a hub is the nearest neighbour of items of
many types, and pulls them into one cluster. Two standard, label-free corrections:

* **Mutual proximity** (Schnitzer, Flexer, Schedl & Widmer 2012, "Local and global scaling
  reduce hubs in space", JMLR 13), its Gaussian form: item i's distances to all the others
  are modelled as a normal N(mu_i, sd_i) (their mean and standard deviation), and

      MP(i, j) = 1 - P(X_i > d_ij) P(X_j > d_ij)

  is small only when j is unusually close *for i* and i unusually close *for j*. It is
  symmetric and in [0, 1]; a hub, close to everything, is unusually close to no one, so it
  stops being everyone's nearest neighbour. Computed in log space
  (``-expm1(log_ndtr + log_ndtr)``), so very close pairs keep distinct values.
* **Query expansion** (Chum, Philbin, Sivic, Isard & Zisserman 2007, "average query
  expansion"): each item's row of distances is averaged with the rows of its ``k`` nearest
  neighbours (equal weights), then the matrix symmetrised: an item is compared with the
  others as its neighbourhood is, which steadies the ranks of items of small types.

Measured (``benchmarks/quality.py --tasks calltypes``, see benchmarks/README.md): on the
fused distance of the default encoder, mutual proximity then expansion with one neighbour
(``mp+qe``) raised 1-NN, mAP and ARI on both call-type sets, and on nine representations
(learned and unlearned, DTW and pooled) it helped on average with few losses.

Both need the full matrix (every pair), so ``cluster --sample`` does not re-rank. Fewer than
:data:`MIN_ITEMS` items have no neighbourhood to speak of and are returned as they are.

``wsd search --per-file`` re-ranks queries against an archive (:func:`rerank_cross`): each
archive recording's mean and spread come from its distances to the archive (all of it, or a
seeded sample of :data:`STATS_SAMPLE` recordings), a query's from its distances to the
archive, and the expansion is one-sided (a query's row averaged with its nearest archive
recording's row of the archive), as query expansion is in retrieval.
"""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError, UsageError

#: ``--rerank`` values; ``auto`` is ``mp+qe`` on a full matrix, ``none`` under ``--sample``.
RERANKS = ("auto", "none", "mp", "mp+qe")
#: Neighbours whose rows join an item's row in the query expansion of ``mp+qe``.
EXPAND_K = 1
#: Fewer items than this are left as they are.
MIN_ITEMS = 4
#: ``search``: archive recordings each archive recording's statistics are taken over, at most
#: (a seeded sample beyond). Measured on the call-type sets (query by example, every clip a
#: query): 64 gave mAP 0.578 and 0.747 against 0.582 and 0.747 with all of them, 16 0.571
#: and 0.743; each costs its distances to the whole archive.
STATS_SAMPLE = 64


def _square(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise BadInputError(f"expected a square distance matrix, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise BadInputError("the distance matrix holds NaN or infinite values")
    return d


#: Rows at a time of the in-place passes (bounded temporaries).
_CHUNK = 1024


def mutual_proximity(distance: np.ndarray) -> np.ndarray:
    """Gaussian mutual proximity of a symmetric ``(n, n)`` distance matrix (diagonal 0):
    ``(n, n)`` float64 in [0, 1], diagonal 0. Each row's mean and standard deviation are
    over its ``n - 1`` off-diagonal entries; a row whose entries are all equal gets a tiny
    spread (its neighbours then tie). The log-probabilities are held in float32 (one
    ``(n, n)`` float32 array beside the matrix), so values agree with float64 to about 1e-7."""
    d = _square(distance).copy()
    if len(d) >= MIN_ITEMS:
        _mp_inplace(d)
    return d


def _mp_inplace(d: np.ndarray) -> None:
    """:func:`mutual_proximity` written over ``d`` (float64, square, n >= MIN_ITEMS)."""
    from scipy.special import log_ndtr

    n = len(d)
    mu = np.empty(n)
    sd = np.empty(n)
    for a in range(0, n, _CHUNK):
        blk = d[a:a + _CHUNK]
        keep = np.ones(blk.shape, bool)
        keep[np.arange(len(blk)), a + np.arange(len(blk))] = False
        mu[a:a + _CHUNK], sd[a:a + _CHUNK] = row_stats(blk, keep)
    la = np.empty((n, n), np.float32)  # log P(X_i > d_ij): how far below i's typical distance
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        la[a:b] = log_ndtr((mu[a:b, None] - d[a:b]) / sd[a:b, None])
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        d[a:b] = -np.expm1(la[a:b].astype(np.float64) + la[:, a:b].T)
    del la
    np.fill_diagonal(d, 0.0)


def row_stats(d: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each row of ``d`` over the entries ``keep`` marks
    (at least one per row); a spread of 0 becomes a tiny positive one."""
    cnt = np.maximum(keep.sum(axis=1), 1)
    mu = d.sum(axis=1, where=keep) / cnt
    sd = np.sqrt(np.square(d - mu[:, None]).sum(axis=1, where=keep) / cnt)
    return mu, np.maximum(sd, 1e-12 * np.maximum(1.0, np.abs(mu)))


def _mp_cross(d, mu_r, sd_r, mu_c, sd_c) -> np.ndarray:
    from scipy.special import log_ndtr

    return -np.expm1(log_ndtr((mu_r[:, None] - d) / sd_r[:, None])
                     + log_ndtr((mu_c[None, :] - d) / sd_c[None, :]))


def rerank_cross(dq: np.ndarray, mu_a: np.ndarray, sd_a: np.ndarray, how: str, row,
                 same: np.ndarray | None = None) -> np.ndarray:
    """Re-rank queries' distances to an archive, ``dq`` ``(Q, N)``, as :func:`rerank` does a
    square matrix: mutual proximity with each query's mean and spread over its row (leaving
    out ``same``, a ``(Q, N)`` mask of archive items that are the query itself) and the
    archive items' ``mu_a``, ``sd_a`` ``(N,)`` (:func:`row_stats` of the archive's own
    distances); with ``mp+qe`` each query's row is then averaged with the re-ranked archive
    row of its nearest archive item (not itself): ``row(j)`` returns archive item j's raw
    distances to the whole archive ``(N,)``, asked once per distinct neighbour; a query's
    distance to itself is not expanded, so a self-hit stays first. Fewer than
    :data:`MIN_ITEMS` archive items: ``dq`` as it is."""
    if how not in RERANKS[1:]:
        raise UsageError(f"re-ranking must be one of {', '.join(RERANKS[1:])} (got {how})")
    dq = np.asarray(dq, np.float64)
    if not np.all(np.isfinite(dq)):
        raise BadInputError("the distances hold NaN or infinite values")
    q, n = dq.shape
    same = np.zeros(dq.shape, bool) if same is None else np.asarray(same, bool)
    if how == "none" or n < MIN_ITEMS:
        return dq.copy()
    keep = ~same
    keep[keep.sum(axis=1) == 0] = True
    mu_q, sd_q = row_stats(dq, keep)
    mp = _mp_cross(dq, mu_q, sd_q, np.asarray(mu_a, np.float64), np.asarray(sd_a, np.float64))
    if how == "mp":
        return mp
    nn = np.where(same, np.inf, mp).argmin(axis=1)
    out = mp.copy()
    for j in np.unique(nn):
        r = np.asarray(row(int(j)), np.float64)[None, :]
        rj = _mp_cross(r, mu_a[j:j + 1], sd_a[j:j + 1], mu_a, sd_a)[0]
        rj[j] = 0.0
        sel = nn == j
        out[sel] = np.where(same[sel], mp[sel], (mp[sel] + rj) / 2)  # itself: not expanded
    return out


def expand(distance: np.ndarray, k: int = EXPAND_K) -> np.ndarray:
    """Average query expansion: row i becomes the mean of the rows of i and its ``k`` nearest
    other items, then the matrix is symmetrised ``(r + r.T) / 2``; diagonal 0. The averaged
    rows are held in float32 (one ``(n, n)`` float32 array beside the matrix)."""
    if k < 0:
        raise UsageError(f"query expansion needs k >= 0 neighbours (got {k})")
    d = _square(distance).copy()
    if len(d) >= MIN_ITEMS:
        _expand_inplace(d, k)
    return d


def _expand_inplace(d: np.ndarray, k: int) -> None:
    """:func:`expand` written over ``d`` (float64, square, n >= MIN_ITEMS)."""
    n = len(d)
    k = min(int(k), n - 1)
    if k == 0:
        return
    nn = np.empty((n, k), np.int64)
    for a in range(0, n, _CHUNK):
        blk = d[a:a + _CHUNK].copy()
        blk[np.arange(len(blk)), a + np.arange(len(blk))] = np.inf
        nn[a:a + _CHUNK] = np.argsort(blk, axis=1, kind="stable")[:, :k]
    r = np.empty((n, n), np.float32)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        acc = d[a:b].copy()
        for c in range(k):
            acc += d[nn[a:b, c]]
        r[a:b] = acc / (k + 1)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        d[a:b] = (r[a:b].astype(np.float64) + r[:, a:b].T) / 2
    del r
    np.fill_diagonal(d, 0.0)


def rerank(distance: np.ndarray, how: str) -> np.ndarray:
    """``how``: ``none`` (a float64 copy), ``mp`` (:func:`mutual_proximity`) or ``mp+qe``
    (:func:`mutual_proximity` then :func:`expand` with :data:`EXPAND_K` neighbours)."""
    if how not in RERANKS[1:]:
        raise UsageError(f"re-ranking must be one of {', '.join(RERANKS[1:])} (got {how})")
    d = _square(distance).copy()
    rerank_inplace(d, how)
    return d


def rerank_inplace(d: np.ndarray, how: str) -> None:
    """:func:`rerank` written over ``d`` (a float64 square matrix), for callers that hold
    the matrix anyway (``wsd cluster``): beside it, one ``(n, n)`` float32 array at a time,
    and row chunks."""
    if how not in RERANKS[1:]:
        raise UsageError(f"re-ranking must be one of {', '.join(RERANKS[1:])} (got {how})")
    if how == "none" or len(d) < MIN_ITEMS:
        return
    _mp_inplace(d)
    if how == "mp+qe":
        _expand_inplace(d, EXPAND_K)
