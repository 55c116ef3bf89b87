"""Call sequences from windows: runs of consecutive non-silent windows of a recording
(:func:`sequences_from_mask`), or one per recording (:func:`sequences_per_file`), and the
label each sequence takes from its windows (:func:`sequence_labels`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsd.errors import BadInputError, UsageError


@dataclass(frozen=True)
class Sequences:
    """Call sequences as half-open window index ranges ``[start, stop)`` into the window arrays.

    Attributes (all ``(m,)``): ``start``, ``stop`` int64 window indices; ``source_id`` int64;
    ``start_s`` float64 start of the first window and ``end_s`` end of the last, in seconds
    from the start of the source.
    """

    start: np.ndarray
    stop: np.ndarray
    source_id: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    @property
    def lengths(self) -> np.ndarray:
        """``(m,)`` int64 number of windows per sequence."""
        return self.stop - self.start

    def subset(self, index) -> "Sequences":
        """The sequences at ``index`` (an index array or boolean mask)."""
        return Sequences(self.start[index], self.stop[index], self.source_id[index],
                         self.start_s[index], self.end_s[index])

    def arrays(self, x: np.ndarray) -> list[np.ndarray]:
        """Per-sequence row blocks of ``x`` ``(n_windows, D)``: views ``(len_i, D)``, no copies."""
        return [x[a:b] for a, b in zip(self.start.tolist(), self.stop.tolist())]


def _window_arrays(source_id, start_s, end_s, silent=None):
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, dtype=np.float64)
    end_s = np.asarray(end_s, dtype=np.float64)
    n = len(source_id)
    arrays = {"source_id": source_id, "start_s": start_s, "end_s": end_s}
    if silent is not None:
        arrays["silent"] = silent = np.asarray(silent, dtype=bool)
    for name, a in arrays.items():
        if a.shape != (n,):
            raise BadInputError(f"{name} has shape {a.shape}; expected ({n},) like source_id")
    return source_id, start_s, end_s, silent


def _make(start, stop, source_id, start_s, end_s) -> Sequences:
    start = np.asarray(start, dtype=np.int64)
    stop = np.asarray(stop, dtype=np.int64)
    return Sequences(start, stop, np.asarray(source_id[start], dtype=np.int64),
                     start_s[start].astype(np.float64), end_s[stop - 1].astype(np.float64))


def sequences_from_mask(source_id, start_s, end_s, silent=None, min_windows: int = 1,
                        max_windows: int | None = None,
                        max_gap_s: float | None = None) -> Sequences:
    """Runs of consecutive non-silent windows of one source, as call sequences.

    Window ``i`` continues the run of window ``i - 1`` when both are non-silent, they have the
    same source, ``start_s[i] > start_s[i-1]`` and, if ``max_gap_s`` is given,
    ``start_s[i] - end_s[i-1] <= max_gap_s``. So neighbours must be adjacent in the arrays
    (a silent window between them ends the run) *and* close in time (windows dropped from the
    arrays, e.g. by an earlier filter, end the run when they leave a gap over ``max_gap_s``).
    Overlapping windows have a negative gap and always continue.

    A run longer than ``max_windows`` is cut into ``ceil(len / max_windows)`` pieces of
    near-equal length (no short tail); then runs shorter than ``min_windows`` are dropped.

    Parameters
    ----------
    source_id, start_s, end_s : ``(n,)`` per window; windows in time order within a source.
    silent : ``(n,)`` bool, True for windows to leave out (None: no window is silent).
    min_windows : shortest sequence kept, >= 1.
    max_windows : longest sequence, >= min_windows (None: no limit).
    max_gap_s : largest silence in seconds between two windows of one run (None: no limit).

    Returns
    -------
    :class:`Sequences`, in window order.
    """
    source_id, start_s, end_s, silent = _window_arrays(source_id, start_s, end_s, silent)
    if int(min_windows) != min_windows or min_windows < 1:
        raise UsageError(f"min_windows must be a whole number >= 1, got {min_windows!r}")
    if max_windows is not None and (int(max_windows) != max_windows or max_windows < min_windows):
        raise UsageError(f"max_windows must be a whole number >= min_windows ({min_windows}), "
                         f"got {max_windows!r}")
    if max_gap_s is not None and not max_gap_s >= 0:
        raise UsageError(f"max_gap_s must be >= 0 seconds, got {max_gap_s!r}")
    n = len(source_id)
    keep = np.ones(n, dtype=bool) if silent is None else ~silent
    cont = np.zeros(n, dtype=bool)  # cont[i]: window i continues the run of window i - 1
    if n > 1:
        c = keep[1:] & keep[:-1] & (source_id[1:] == source_id[:-1]) & (start_s[1:] > start_s[:-1])
        if max_gap_s is not None:
            c &= (start_s[1:] - end_s[:-1]) <= max_gap_s
        cont[1:] = c
    starts = np.flatnonzero(keep & ~cont)
    ends = np.flatnonzero(keep & ~np.append(cont[1:], False)) + 1
    if max_windows is not None and len(starts):
        lengths = ends - starts
        pieces = -(-lengths // int(max_windows))
        run = np.repeat(np.arange(len(starts)), pieces)
        j = np.arange(len(run)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        p, L, s0 = pieces[run], lengths[run], starts[run]
        starts, ends = s0 + (j * L) // p, s0 + ((j + 1) * L) // p
    ok = (ends - starts) >= min_windows
    return _make(starts[ok], ends[ok], source_id, start_s, end_s)


def sequences_per_file(source_id, start_s, end_s) -> Sequences:
    """One sequence per source: all of its windows.

    Parameters
    ----------
    source_id, start_s, end_s : ``(n,)`` per window; each source's windows must be contiguous
        in the arrays and in time order.

    Returns
    -------
    :class:`Sequences`, one per source, in order of first appearance.
    """
    source_id, start_s, end_s, _ = _window_arrays(source_id, start_s, end_s)
    n = len(source_id)
    if n == 0:
        return _make(np.zeros(0, np.int64), np.zeros(0, np.int64), source_id, start_s, end_s)
    starts = np.flatnonzero(np.append(True, source_id[1:] != source_id[:-1]))
    if len(np.unique(source_id[starts])) != len(starts):
        raise BadInputError("a source's windows are not contiguous; sort the windows by source "
                            "and time first")
    ends = np.append(starts[1:], n)
    return _make(starts, ends, source_id, start_s, end_s)


def sequence_labels(window_labels, seqs: Sequences) -> np.ndarray:
    """Each sequence's label: the most common non-empty label of its windows.

    Parameters
    ----------
    window_labels : ``(n,)`` strings, "" for an unlabelled window.
    seqs : sequences over those windows (non-overlapping).

    Returns
    -------
    ``(m,)`` str array; "" when none of a sequence's windows is labelled; ties go to the
    alphabetically first label.
    """
    window_labels = np.asarray(window_labels).astype(str)
    if len(seqs) and seqs.stop.max() > len(window_labels):
        raise BadInputError(f"{len(window_labels)} window labels for sequences up to window "
                            f"{seqs.stop.max()}")
    lengths = seqs.lengths
    seq_of = np.repeat(np.arange(len(seqs)), lengths)
    rows = np.arange(lengths.sum()) + np.repeat(seqs.start - (np.cumsum(lengths) - lengths),
                                                 lengths)
    names, code = np.unique(window_labels[rows], return_inverse=True)
    out = np.full(len(seqs), "", dtype=names.dtype if len(names) else str)
    labelled = names[code] != ""
    pairs, counts = np.unique(np.stack([seq_of[labelled], code[labelled]]), axis=1,
                              return_counts=True)
    if pairs.size:
        best = np.lexsort((pairs[1], -counts, pairs[0]))
        first = np.append(True, pairs[0][best][1:] != pairs[0][best][:-1])
        out[pairs[0][best][first]] = names[pairs[1][best][first]]
    return out


#: Encoders whose window embeddings compare better pooled (mean, std and the means of the
#: start, middle and end of a sequence, cosine) than by DTW, and better still fused with
#: the DTW of the windows' own frames: measured on the Southern Resident catalogue
#: (benchmarks/quality.py, seeds 0-2): kmeans fused 1-NN 0.70, mAP 0.56, ARI 0.40; pooled
#: 0.69, 0.54, 0.34; DTW of the embeddings 0.48, 0.32, 0.17. Step embeddings (contrastive)
#: and the other encoders keep DTW.
POOLED_ENCODERS = frozenset({"kmeans"})


def default_distance(encoder_arch: str | None) -> str:
    """``fused`` or ``dtw``: what ``cluster --distance auto`` and ``search --match auto``
    (with ``--per-file``) use for embeddings made by ``encoder_arch``. Fused needs the
    windows file and the full matrix: the commands fall back to pooled cosine without
    them."""
    return "fused" if encoder_arch in POOLED_ENCODERS else "dtw"
