"""What a DTW distance matrix will cost before it is computed: memory (the matrix and its
linkage) and time (cells of the warping paths at a measured rate), and the guard that
refuses a matrix past the memory limit, suggesting ``--sample``."""

from __future__ import annotations

import math
import os

import numpy as np

from wsd.discovery.dtw import _check_window
from wsd.errors import UsageError


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


class MatrixTooLargeError(UsageError):
    """The DTW distance matrix of a full clustering would not fit the memory limit."""


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


def _n_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    from wsd.runtime.executor import cpu_count

    return cpu_count()
