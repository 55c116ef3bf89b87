"""Embedding sequences to DTW distances: preprocessing, distance matrices (all pairs, or
between two sets) and nearest medoids. Costs are estimated in :mod:`wsd.discovery.cost`,
novelty in :mod:`wsd.discovery.novelty`.

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

import warnings
from typing import Sequence

import numpy as np

from wsd.errors import BadInputError, UsageError, WsdError

NORMALIZE = ("none", "zscore", "l2")


class DtwUnavailableError(WsdError):
    """dtaidistance's compiled C library cannot be imported."""


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


