"""Embedding sequences to DTW distances: preprocessing, distance matrices, nearest medoids,
novelty, and the memory and time a clustering will take.

A sequence is a ``(length, D)`` array of window embeddings, time going down. The distance is
dtaidistance's dependent multivariate DTW (DTW_D): the square root of the summed squared
Euclidean distances between rows matched along the best warping path; ``window=w`` keeps
matches within ``w - 1`` rows of the length-stretched diagonal (None: no band).

Only dtaidistance's compiled C library is used: its pure-Python DTW is ~1000x slower, so a
missing C library raises :class:`DtwUnavailableError` rather than falling back. C built
without OpenMP runs serially, with a ``RuntimeWarning``. dtaidistance, scipy and sklearn are
imported inside the functions.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Sequence

import numpy as np

from wsd.errors import BadInputError, UsageError, WsdError

NORMALIZE = ("none", "zscore", "l2")

# Rate model, calibrated to the rates measured for the issue and on this project's 2-core
# machine when quiet (dtaidistance's OpenMP matrix, 2 threads, equal lengths 50): 128-D about
# 4,600-4,900 pairs/s without a band and 24,000-26,000 with window=5; 1-D about 20x faster than
# 128-D. Wall ns per DP cell on 2 threads ~ 3.5 + 0.63 * D, plus ~0.5 us per pair; stored per
# core (x2), and divided by the threads used, assuming OpenMP scales linearly. Checked on
# lengths 20..50: 10,600 pairs/s measured vs 9,700 predicted without a band, 26,700 vs 20,300
# with window=5.
_CELL_NS_BASE = 2 * 3.5
_CELL_NS_PER_DIM = 2 * 0.63
_PAIR_NS = 2 * 0.5e3
# Peak bytes per n^2 of a full clustering of n sequences: the condensed matrix (4 n^2) with
# scipy linkage's working copy (4 n^2), then with the square matrix (8 n^2) made from it: 12,
# as measured with ru_maxrss (medoids, silhouette, novelty and metrics work in row chunks).
BYTES_PER_ENTRY = 12
# Plus row chunks of 1024 rows (medoids, novelty, 1-NN): 8 KiB per sequence, twice.
BYTES_PER_SEQUENCE = 16 * 1024


def matrix_bytes(n_sequences: int) -> int:
    """Peak bytes of the distance matrices of a full clustering of ``n_sequences``."""
    n = int(n_sequences)
    return BYTES_PER_ENTRY * n * n + BYTES_PER_SEQUENCE * n


class DtwUnavailableError(WsdError):
    """dtaidistance's compiled C library cannot be imported."""


class MatrixTooLargeError(UsageError):
    """The DTW distance matrix of a full clustering would not fit the memory limit."""


def c_available() -> bool:
    """True when dtaidistance's compiled DTW library (``dtaidistance.dtw_cc``) is importable."""
    from dtaidistance import dtw

    return dtw.dtw_cc is not None


def openmp_available() -> bool:
    """True when dtaidistance's ``dtw_cc_omp`` is importable and was built with OpenMP."""
    from dtaidistance import dtw

    omp = dtw.dtw_cc_omp
    return omp is not None and bool(omp.is_openmp_supported())


def _require_c(parallel: bool) -> bool:
    """Raise when the C library is missing; return whether OpenMP can be used."""
    if not c_available():
        raise DtwUnavailableError(
            "dtaidistance's C library is not available (the pure-Python DTW is ~1000x slower); "
            "reinstall it with 'pip install --force-reinstall dtaidistance' and check "
            "'python -c \"from dtaidistance import dtw; dtw.try_import_c(verbose=True)\"'")
    if parallel and not openmp_available():
        warnings.warn("dtaidistance was built without OpenMP: DTW runs on one core",
                      RuntimeWarning, stacklevel=3)
        return False
    return parallel


def _check_window(window: int | None) -> int | None:
    if window is None or window == 0:
        return None
    if int(window) != window or window < 1:
        raise UsageError(f"DTW window must be a positive whole number of windows, got {window!r}")
    return int(window)


LENGTH_NORMS = ("none", "sqrt")


def _check_length_norm(length_norm: str) -> str:
    if length_norm not in LENGTH_NORMS:
        raise UsageError(f"length normalisation must be none or sqrt, got {length_norm!r}")
    return length_norm


def _lengths(arrays: list[np.ndarray]) -> np.ndarray:
    return np.array([len(a) for a in arrays], dtype=np.float64)


def _normalise_condensed(d: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Divide each condensed entry (i, j) by sqrt(len_i + len_j), in place, row by row."""
    m, at = len(lengths), 0
    for i in range(m - 1):
        n = m - i - 1
        d[at:at + n] /= np.sqrt(lengths[i] + lengths[i + 1:])
        at += n
    return d


def as_dtw_inputs(seqs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Validate sequences and convert them to what dtaidistance's C code reads without copying.

    Parameters
    ----------
    seqs : sequences, each ``(len_i, D)`` (or ``(len_i,)`` for D == 1), len_i >= 1, finite.

    Returns
    -------
    arrays : C-contiguous float64 arrays, ``(len_i, D)`` when D > 1, ``(len_i,)`` when D == 1
        (inputs already in that form are passed through, not copied).
    D : the common number of dimensions.
    """
    out: list[np.ndarray] = []
    dim = None
    for i, s in enumerate(seqs):
        a = np.asarray(s)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[0] < 1:
            raise BadInputError(f"sequence {i} has shape {a.shape}; expected (length >= 1, D)")
        if dim is None:
            dim = a.shape[1]
        elif a.shape[1] != dim:
            raise BadInputError(f"sequence {i} has {a.shape[1]} dimensions, the first has {dim}")
        a = np.ascontiguousarray(a, dtype=np.float64)
        if not np.isfinite(a).all():
            raise BadInputError(f"sequence {i} holds NaN or infinite values")
        out.append(a.reshape(-1) if dim == 1 else a)
    if dim is None:
        raise BadInputError("no sequences given")
    return out, dim


def preprocess(emb: np.ndarray, normalize: str = "none", pca_dim: int | None = None,
               seed: int = 0, fit_rows: np.ndarray | None = None) -> np.ndarray:
    """Normalise window embeddings, then optionally reduce them with PCA.

    Parameters
    ----------
    emb : ``(n, D)`` window embeddings.
    normalize : "none"; "zscore": per dimension, mean and standard deviation over the fit rows
        (a constant dimension is only centred); "l2": each window scaled to unit norm (all-zero
        windows stay zero).
    pca_dim : number of principal components kept (None: no PCA); sklearn's PCA fitted on the
        normalised fit rows with ``random_state=seed``.
    fit_rows : index array or boolean mask of the windows the statistics and PCA are fitted
        on, e.g. the windows inside sequences (None: all windows).

    Returns
    -------
    ``(n, D')`` C-contiguous float64, ``D' = pca_dim or D``.
    """
    x = np.array(emb, dtype=np.float64, order="C")
    if x.ndim != 2 or x.shape[0] == 0:
        raise BadInputError(f"embeddings have shape {x.shape}; expected (n_windows >= 1, D)")
    if normalize not in NORMALIZE:
        raise UsageError(f"unknown normalize {normalize!r}; choose from {', '.join(NORMALIZE)}")
    fit = x if fit_rows is None else x[fit_rows]
    if len(fit) == 0:
        raise BadInputError("no windows to fit the normalisation on")
    if normalize == "zscore":
        mean, std = fit.mean(axis=0), fit.std(axis=0)
        x -= mean
        x /= np.where(std > 0, std, 1.0)
    elif normalize == "l2":
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        x /= np.where(norm > 0, norm, 1.0)
    if pca_dim is None:
        return x
    if int(pca_dim) != pca_dim or not 1 <= pca_dim <= min(fit.shape):
        raise UsageError(f"PCA dimension must be between 1 and {min(fit.shape)} (the number "
                         f"of fit windows and of embedding dimensions), got {pca_dim!r}")
    from sklearn.decomposition import PCA

    fit = x if fit_rows is None else x[fit_rows]
    pca = PCA(n_components=int(pca_dim), random_state=seed).fit(fit)
    return np.ascontiguousarray(pca.transform(x), dtype=np.float64)


def _matrix_call(arrays: list[np.ndarray], dim: int, window: int | None, parallel: bool,
                 block=None) -> np.ndarray:
    from dtaidistance import dtw, dtw_ndim

    if dim == 1:
        d = dtw.distance_matrix_fast(arrays, window=window, block=block, compact=True,
                                     parallel=parallel)
    else:
        d = dtw_ndim.distance_matrix_fast(arrays, ndim=dim, window=window, block=block,
                                          compact=True, parallel=parallel)
    # compact=True gives an array.array of doubles. Copy it into an array that owns its data
    # (the array.array is freed on return): a view would make scipy's squareform copy it later,
    # raising the clustering's peak from 12 to 16 bytes per matrix entry.
    return np.array(d, dtype=np.float64)


def dtw_condensed(seqs: Sequence[np.ndarray], window: int | None = None,
                  parallel: bool = True, length_norm: str = "none") -> np.ndarray:
    """All pairwise DTW distances in scipy's condensed form.

    Parameters
    ----------
    seqs : m sequences, each ``(len_i, D)`` float (converted to float64), m >= 1.
    window : Sakoe-Chiba band in windows (None: no band).
    parallel : use dtaidistance's OpenMP code (all cores, or ``OMP_NUM_THREADS``).
    length_norm : "none", or "sqrt": each distance divided by ``sqrt(len_a + len_b)``. The DTW
        distance is the square root of a sum of squared differences along the warping path
        (between max(len_a, len_b) and len_a + len_b - 1 steps), so it grows with the
        sequences' lengths; divided, it is a root-mean-square difference per step, and
        sequences of different lengths compare on one scale.

    Returns
    -------
    ``(m * (m - 1) / 2,)`` float64, the upper triangle row by row (``scipy.spatial.distance``'s
    order: entry for (i, j), i < j, at ``m*i - i*(i+1)/2 + j - i - 1``).
    """
    window = _check_window(window)
    _check_length_norm(length_norm)
    arrays, dim = as_dtw_inputs(seqs)
    parallel = _require_c(parallel)
    if len(arrays) < 2:
        return np.zeros(0)
    d = _matrix_call(arrays, dim, window, parallel)
    return _normalise_condensed(d, _lengths(arrays)) if length_norm == "sqrt" else d


def dtw_matrix(seqs: Sequence[np.ndarray], window: int | None = None,
               parallel: bool = True, length_norm: str = "none") -> np.ndarray:
    """All pairwise DTW distances as a full symmetric ``(m, m)`` float64 matrix, zero diagonal.

    See :func:`dtw_condensed` for the parameters.
    """
    from scipy.spatial.distance import squareform

    d = dtw_condensed(seqs, window=window, parallel=parallel, length_norm=length_norm)
    if len(d) == 0:
        return np.zeros((len(seqs), len(seqs)))
    return squareform(d, checks=False)


def dtw_cross(seqs_a: Sequence[np.ndarray], seqs_b: Sequence[np.ndarray],
              window: int | None = None, parallel: bool = True,
              length_norm: str = "none") -> np.ndarray:
    """DTW distances between every sequence of ``seqs_a`` and every one of ``seqs_b``.

    One dtaidistance call on the concatenated list with ``block=((0, a), (a, a + b))``: the
    OpenMP code then spreads the ``a * b`` pairs over the cores (measured 1.3 to 1.7 times the
    rate of a Python loop over ``dtw_ndim.distance_fast``, see benchmarks/cluster_core.py).

    Returns
    -------
    ``(len(seqs_a), len(seqs_b))`` float64.
    """
    window = _check_window(window)
    _check_length_norm(length_norm)
    na, nb = len(seqs_a), len(seqs_b)
    if na == 0 or nb == 0:
        return np.zeros((na, nb))
    arrays, dim = as_dtw_inputs(list(seqs_a) + list(seqs_b))
    parallel = _require_c(parallel)
    d = _matrix_call(arrays, dim, window, parallel, block=((0, na), (na, na + nb)))
    d = d.reshape(na, nb)
    if length_norm == "sqrt":
        n = _lengths(arrays)
        d /= np.sqrt(n[:na, None] + n[None, na:])
    return d


def assign(seqs: Sequence[np.ndarray], medoid_seqs: Sequence[np.ndarray],
           window: int | None = None, parallel: bool = True,
           length_norm: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """Nearest medoid of each sequence by DTW: ``len(seqs) * len(medoid_seqs)`` pairs.

    Independent per sequence, so it can run on any chunk of sequences (one worker per chunk)
    and the results concatenated.

    Parameters
    ----------
    seqs : m sequences ``(len_i, D)``.
    medoid_seqs : K >= 1 medoid sequences ``(len_k, D)``, in cluster order.

    Returns
    -------
    index : ``(m,)`` int64, position in ``medoid_seqs`` of the nearest (the first on ties).
    distance : ``(m,)`` float64 DTW distance to it.
    """
    if len(medoid_seqs) == 0:
        raise UsageError("assign needs at least one medoid")
    d = dtw_cross(seqs, medoid_seqs, window=window, parallel=parallel, length_norm=length_norm)
    index = d.argmin(axis=1) if len(d) else np.zeros(0, dtype=np.int64)
    return index.astype(np.int64), d[np.arange(len(d)), index]


def knn_novelty(distance: np.ndarray, k: int = 5, chunk: int = 1024) -> np.ndarray:
    """Mean DTW distance of each sequence to its ``k`` nearest other sequences.

    Parameters
    ----------
    distance : ``(m, m)`` symmetric DTW matrix (the diagonal is ignored).
    k : neighbours, >= 1; lowered to ``m - 1`` when fewer sequences exist.

    Returns
    -------
    ``(m,)`` float64; NaN when m < 2. Higher is more unusual.
    """
    distance = np.asarray(distance)
    m = len(distance)
    if int(k) != k or k < 1:
        raise UsageError(f"novelty k must be a whole number >= 1, got {k!r}")
    if m < 2:
        return np.full(m, np.nan)
    k = min(int(k), m - 1)
    out = np.empty(m)
    for a in range(0, m, chunk):
        rows = np.array(distance[a:a + chunk], dtype=np.float64)
        rows[np.arange(len(rows)), np.arange(a, a + len(rows))] = np.inf
        out[a:a + len(rows)] = knn_from_cross(rows, k)
    return out


def knn_from_cross(cross: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean of the ``k`` smallest distances per row of ``cross`` ``(m, N)`` (k lowered to N).

    Returns ``(m,)`` float64. Used for novelty against a reference set (the clustered sample).
    """
    cross = np.asarray(cross, dtype=np.float64)
    k = min(int(k), cross.shape[1])
    if k < 1:
        return np.full(len(cross), np.nan)
    return np.partition(cross, k - 1, axis=1)[:, :k].mean(axis=1)


def total_memory_bytes() -> int:
    """Physical memory in bytes (psutil when installed, else ``os.sysconf``), lowered to a
    cgroup v2 memory limit when one is set."""
    try:
        import psutil

        total = int(psutil.virtual_memory().total)
    except ImportError:
        total = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def default_memory_limit() -> int:
    """The default limit for the distance matrices: a quarter of :func:`total_memory_bytes`."""
    return total_memory_bytes() // 4


def _n_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    from wsd.runtime.executor import cpu_count

    return cpu_count()


def mean_cells(mean_len, window: int | None = None, n_pairs: int = 4096, seed: int = 0) -> float:
    """Mean DTW cells per pair, ``min(la, lb) * min(max(la, lb), 2 * window + |la - lb|)``
    (dtaidistance's band widens with the length difference; fitted to timings), for one mean
    length or averaged over ``n_pairs`` seeded random pairs of ``(m,)`` lengths."""
    window = _check_window(window)
    lengths = np.atleast_1d(np.asarray(mean_len, dtype=np.float64))
    if lengths.size == 1:
        la = lb = lengths
    else:
        rng = np.random.default_rng(seed)
        la, lb = rng.choice(lengths, n_pairs), rng.choice(lengths, n_pairs)
    lo, hi = np.minimum(la, lb), np.maximum(la, lb)
    band = hi if window is None else np.minimum(hi, 2 * window + hi - lo)
    return float(np.mean(lo * band))


def pair_seconds(mean_len, D: int, window: int | None = None,
                 n_threads: int | None = None) -> float:
    """Estimated wall seconds per DTW pair of sequences of ``D`` dimensions.

    Model: :func:`mean_cells` cells per pair at ``(7 + 1.26 * D)`` core-ns each, plus 1 core-us
    per pair, divided over ``n_threads`` (default: ``OMP_NUM_THREADS``, else the cores this
    process may use). Calibrated on 2 cores; expect +-50% on other machines and under load.

    ``mean_len``: the mean sequence length in windows, or the ``(m,)`` lengths (better when
    they vary: length differences widen the band).
    """
    cells = mean_cells(mean_len, window)
    core_ns = _PAIR_NS + cells * (_CELL_NS_BASE + _CELL_NS_PER_DIM * D)
    return core_ns * 1e-9 / (n_threads or _n_threads())


def estimate_cost(n_sequences: int, mean_len, D: int, window: int | None = None,
                  n_threads: int | None = None) -> tuple[int, float]:
    """Peak memory and wall time of a full DTW clustering of ``n_sequences`` sequences.

    ``mean_len``: mean length or ``(m,)`` lengths (see :func:`pair_seconds`); ``D``: dimensions
    after PCA. Returns ``(bytes, seconds)``: :func:`matrix_bytes` and ``n (n - 1) / 2`` pairs
    times :func:`pair_seconds`.
    """
    n = int(n_sequences)
    pairs = n * (n - 1) / 2
    return matrix_bytes(n), pairs * pair_seconds(mean_len, D, window, n_threads)


def max_sequences(limit_bytes: int) -> int:
    """The largest number of sequences whose full clustering fits ``limit_bytes``."""
    a, b, lim = BYTES_PER_ENTRY, BYTES_PER_SEQUENCE, max(int(limit_bytes), 0)
    n = (math.isqrt(b * b + 4 * a * lim) - b) // (2 * a)
    return int(n - 1 if matrix_bytes(n) > lim else n)


def check_memory(n_sequences: int, limit_bytes: int | None = None) -> None:
    """Raise :class:`MatrixTooLargeError` (naming the size, the limit and a ``--sample N``
    that fits) when clustering ``n_sequences`` (all, or the sample) would need more than
    ``limit_bytes`` (None: :func:`default_memory_limit`, a quarter of RAM)."""
    limit = default_memory_limit() if limit_bytes is None else int(limit_bytes)
    need = matrix_bytes(n_sequences)
    if need > limit:
        raise MatrixTooLargeError(
            f"clustering {n_sequences:,} sequences needs a {n_sequences:,} x {n_sequences:,} DTW "
            f"distance matrix, about {need / 1e9:.1f} GB with its working copies, over the limit "
            f"of {limit / 1e9:.1f} GB; use --sample N (N <= {max_sequences(limit):,}) to cluster a "
            f"random sample and assign the other sequences to the nearest medoid")
