"""Per-frame information features of a spectrogram: spectral entropy and statistical complexity.

Each STFT frame's power spectrum is treated as a probability distribution ``p`` over its ``N``
frequency bins. From it we compute (Rosso et al. 2007, Lamberti et al. 2004, as used by the
"Whale Sound Detection" seed for its InceptionTime and attention detectors):

- ``H``: normalised Shannon entropy, ``-sum(p log p) / log N``, in [0, 1]; 1 for a flat
  (white-noise) spectrum, 0 for a pure tone in one bin.
- ``C = Q[p, u] * H``: statistical complexity, where ``Q`` is a disequilibrium, the distance
  between ``p`` and the uniform distribution ``u = 1/N`` divided by its largest possible value
  (reached when ``p`` is a delta), so ``Q`` and ``C`` lie in [0, 1]. ``C`` is 0 both for a flat
  spectrum (``Q = 0``) and for a single-bin tone (``H = 0``), and largest in between. Three
  distances, whose complexities peak on differently shaped spectra:

  - ``jsd``: Jensen-Shannon divergence ``S((p+u)/2) - S(p)/2 - S(u)/2`` (the Lamberti et al.
    ``Q_J`` with its ``Q0`` normalisation);
  - ``tv``: total variation ``sum|p - u| / 2``, maximum ``(N-1)/N``;
  - ``sq``: squared Euclidean distance ``sum (p - u)**2``, maximum ``(N-1)/N``
    (the Lopez-Ruiz, Mancini and Calbet disequilibrium).

The seed's own code differs in details (it drops empty bins, leaves ``C_SQ`` unnormalised and
squares the total variation); here every feature is normalised so all four share the [0, 1]
range and frames of different ``N`` are comparable.

Frames whose every bin sits at the dB floor are uniform: ``H = 1``, all ``C = 0``, no NaN.
"""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError, UsageError

#: Order of the last axis of :func:`information_series`.
FEATURE_NAMES = ("H", "C_JSD", "C_TV", "C_SQ")

#: Disequilibrium kinds accepted by :func:`complexity` and :func:`disequilibrium`.
COMPLEXITY_KINDS = ("jsd", "tv", "sq")

# Windows processed at once by information_series, bounding float64 temporaries
# (1024 windows x 32 frames x 256 bins x 8 bytes = 64 MiB per temporary).
_CHUNK_WINDOWS = 1024


def _check_bins(x: np.ndarray, name: str) -> int:
    if len(x.shape) < 1 or x.shape[-1] < 2:
        raise BadInputError(
            f"{name} needs at least 2 frequency bins on its last axis, got shape {x.shape}"
        )
    return x.shape[-1]


def power_distribution(db: np.ndarray) -> np.ndarray:
    """Turn log-magnitude spectra into per-frame probability distributions over bins.

    Parameters
    ----------
    db : float array ``(..., bins)``, magnitudes in dB (``20 log10``, so power is
        ``10 ** (db / 10)``). Must be finite.

    Returns
    -------
    p : float64 array ``(..., bins)``, non-negative, each frame summing to 1.

    The frame's maximum is subtracted before exponentiating, so very quiet frames neither
    underflow to an all-zero spectrum nor divide by zero; a frame with all bins equal (for
    example all at the -100 dB floor) becomes the uniform distribution.
    """
    db = np.asarray(db, dtype=np.float64)
    _check_bins(db, "power_distribution input")
    if not np.all(np.isfinite(db)):
        raise BadInputError("spectrogram holds NaN or infinite dB values")
    power = db - db.max(axis=-1, keepdims=True)
    np.exp(power * (np.log(10.0) / 10.0), out=power)  # 10 ** (dB / 10), in place
    power /= power.sum(axis=-1, keepdims=True)
    return power


def spectral_entropy(p: np.ndarray) -> np.ndarray:
    """Normalised Shannon entropy of distributions over the last axis.

    Parameters
    ----------
    p : float array ``(..., bins)``, non-negative, each frame summing to 1
        (see :func:`power_distribution`).

    Returns
    -------
    H : float64 array ``(...)``, ``-sum(p ln p) / ln(bins)`` in [0, 1] (``0 ln 0 = 0``).
    """
    p = np.asarray(p, dtype=np.float64)
    n = _check_bins(p, "spectral_entropy input")
    return np.clip(_shannon(p) / np.log(n), 0.0, 1.0)


def _shannon(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats over the last axis, ``0 ln 0 = 0`` (faster than scipy's entr)."""
    return -(p * np.log(np.maximum(p, np.finfo(p.dtype).tiny))).sum(axis=-1)


def _jsd_max(n: int) -> float:
    """Jensen-Shannon divergence (nats) between a delta and the uniform over ``n`` bins."""
    return -0.5 * ((n + 1) / n * np.log(n + 1) - 2.0 * np.log(2 * n) + np.log(n))


def disequilibrium(p: np.ndarray, kind: str) -> np.ndarray:
    """Normalised distance of each distribution from the uniform one.

    Parameters
    ----------
    p : float array ``(..., bins)``, distributions over the last axis.
    kind : ``"jsd"`` (Jensen-Shannon divergence), ``"tv"`` (total variation) or ``"sq"``
        (squared Euclidean distance).

    Returns
    -------
    Q : float64 array ``(...)`` in [0, 1]: 0 for the uniform distribution, 1 for a delta.
    """
    p = np.asarray(p, dtype=np.float64)
    n = _check_bins(p, "disequilibrium input")
    if kind == "jsd":
        # S((p + u) / 2) - S(p) / 2 - S(u) / 2, Shannon entropies S in nats.
        s_m = _shannon(0.5 * p + 0.5 / n)
        q = (s_m - 0.5 * _shannon(p) - 0.5 * np.log(n)) / _jsd_max(n)
    elif kind == "tv":
        q = 0.5 * np.abs(p - 1.0 / n).sum(axis=-1) / ((n - 1) / n)
    elif kind == "sq":
        q = np.square(p - 1.0 / n).sum(axis=-1) / ((n - 1) / n)
    else:
        raise UsageError(
            f"unknown complexity kind {kind!r}; choose one of {', '.join(COMPLEXITY_KINDS)}"
        )
    return np.clip(np.nan_to_num(q, nan=0.0), 0.0, 1.0)


def complexity(p: np.ndarray, kind: str = "jsd") -> np.ndarray:
    """Statistical complexity ``C = Q * H`` of distributions over the last axis.

    Parameters
    ----------
    p : float array ``(..., bins)``, distributions over the last axis.
    kind : disequilibrium, one of :data:`COMPLEXITY_KINDS` (see :func:`disequilibrium`).

    Returns
    -------
    C : float64 array ``(...)`` in [0, 1].
    """
    return disequilibrium(p, kind) * spectral_entropy(p)


def information_series(windows_db: np.ndarray) -> np.ndarray:
    """Per-frame ``[H, C_JSD, C_TV, C_SQ]`` of spectrogram windows.

    Parameters
    ----------
    windows_db : float array ``(n_windows, frames, bins)``, log-magnitude spectrograms in dB;
        anything sliceable with a ``shape`` (a memory map, an HDF5 dataset) is read a chunk at a
        time.

    Returns
    -------
    features : float32 array ``(n_windows, frames, 4)``, the last axis ordered as
        :data:`FEATURE_NAMES`, every value in [0, 1].

    Windows are processed in chunks, so memory stays bounded for large inputs.
    """
    if not hasattr(windows_db, "shape"):
        windows_db = np.asarray(windows_db)
    if len(windows_db.shape) != 3:
        raise BadInputError(
            f"expected windows of shape (n_windows, frames, bins), got shape {windows_db.shape}"
        )
    _check_bins(windows_db, "information_series input")
    out = np.empty(windows_db.shape[:2] + (len(FEATURE_NAMES),), dtype=np.float32)
    n = windows_db.shape[-1]
    log_n = np.log(n)
    for lo in range(0, windows_db.shape[0], _CHUNK_WINDOWS):
        chunk = out[lo : lo + _CHUNK_WINDOWS]
        p = power_distribution(windows_db[lo : lo + _CHUNK_WINDOWS])
        # The same formulas as spectral_entropy and disequilibrium, sharing intermediates.
        s_p = _shannon(p)
        h = np.clip(s_p / log_n, 0.0, 1.0)
        s_m = _shannon(0.5 * p + 0.5 / n)
        q_jsd = (s_m - 0.5 * s_p - 0.5 * log_n) / _jsd_max(n)
        p -= 1.0 / n  # p - u, in place
        q_tv = 0.5 * np.abs(p).sum(axis=-1) / ((n - 1) / n)
        q_sq = np.square(p).sum(axis=-1) / ((n - 1) / n)
        chunk[..., 0] = h
        for k, q in enumerate((q_jsd, q_tv, q_sq), start=1):
            chunk[..., k] = np.clip(q, 0.0, 1.0) * h
    return out
