"""Targets for supervised training from window labels, and the input each model expects.

* ``--positive LABEL``: a binary detector; windows labelled LABEL are positives, every other
  window (other labels and unlabelled ones) a negative. The score is P(LABEL). ``--positive
  '*'`` makes every labelled window a positive (call against no call, whatever the type).
* without it: a classifier over the distinct non-empty labels; unlabelled windows are left
  out.
Class imbalance is met with loss weights ``n / (k * count_c)`` (balanced).
"""

from __future__ import annotations

import numpy as np

from wsd.errors import UsageError

NEGATIVE = "other"
ANY = "*"


def is_positive(labels: np.ndarray, positive: str) -> np.ndarray:
    """Boolean (n,): windows whose label counts as ``positive`` ('*': any label)."""
    labels = np.asarray(labels, dtype=object)
    return (labels != "") if positive == ANY else (labels == positive)


def class_targets(labels: np.ndarray, positive: str | None
                  ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(y (n,) int with -1 = unused, classes, class_weights (k,))`` from window labels."""
    labels = np.asarray(labels, dtype=object)
    if positive is not None:
        y = is_positive(labels, positive).astype(np.int64)
        if y.sum() == 0:
            found = sorted(set(labels) - {""})
            raise UsageError(f"--positive {positive!r}: no window has that label (labels: "
                             f"{', '.join(found) or 'none'})")
        if y.sum() == len(y):
            raise UsageError(f"--positive {positive!r}: every window has that label; there "
                             "are no negatives to learn from")
        classes = [NEGATIVE if positive != NEGATIVE else "not_" + positive, positive]
    else:
        classes = sorted(set(labels) - {""})
        if len(classes) < 2:
            raise UsageError("supervised training needs labelled windows of at least two "
                             f"classes (found: {', '.join(classes) or 'none'}); slice with "
                             "--labels, or name the detection class with --positive")
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index.get(x, -1) for x in labels], np.int64)
    counts = np.bincount(y[y >= 0], minlength=len(classes)).astype(np.float64)
    weights = counts.sum() / (len(classes) * np.maximum(counts, 1))
    return y, classes, weights


def prepare(x_db: np.ndarray, input_kind: str, mean: float, std: float) -> np.ndarray:
    """Model input from dB windows ``(b, frames, bins)``: normalised windows, or the per-frame
    information features ``(b, frames, 4)`` (already in [0, 1], not normalised)."""
    if input_kind == "information":
        from wsd.dsp.features import information_series

        return information_series(np.asarray(x_db, np.float32)).astype(np.float32)
    x = np.asarray(x_db, np.float32) - np.float32(mean)
    x /= np.float32(std)
    return x


def input_bins(input_kind: str, bins: int) -> int:
    return 4 if input_kind == "information" else bins
