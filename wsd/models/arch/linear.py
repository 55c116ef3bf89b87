"""Linear probe: a logistic-regression classifier on stored embeddings (few-shot detectors).

``wsd train EMB.h5 --arch linear --labels LABELS.csv --positive X`` fits it in seconds on the
rows of an embeddings file, with no re-embedding: each embedding is standardised with the
training rows' mean and standard deviation, then mapped to class logits by one linear layer
whose weights come from scikit-learn's L2-regularised logistic regression (balanced class
weights, :mod:`wsd.models.probe`). Its input is an embedding, seen as a window of one frame
of ``dim`` bins, so the same model file scores an embeddings file with ``wsd detect`` and
ranks uncertain windows with ``wsd search --uncertain``.

With ``--arch-param norm=recording`` every embedding is first standardised by the mean and
standard deviation of its own recording's rows (each feature; :func:`wsd.models.probe.
recording_standardised`), at training and at scoring: a site's or a day's noise shifts
every window of its recordings alike, and what is left is what stands out in the
recording. On the MERIDIAN up-calls (trained in one basin, scored in another) this lifted
event F1 and AP (benchmarks/README.md).

With ``norm=unit`` (the default) every row is first scaled to unit length (cosine
geometry: a row's overall level drops out), and ``scale=shared`` divides every centred
feature by one shared deviation instead of its own: with few rows (one pooled row per clip,
``embed --rows files``) a sparse code that barely varies in the training rows would
otherwise be blown up by its own tiny deviation in a new row. The default ``scale=auto`` is
``shared``, except after ``norm=recording``, whose rows are already standardised feature by
feature. Measured (benchmarks/README.md): orca clips against noise with ``--rows files``,
ROC AUC 0.889±0.097 with the old ``norm=global scale=feature`` against 0.960±0.019; the
previous up-call recipe's probe (``norm=recording``) 0.680 with ``feature`` against 0.652
with ``shared``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.classifier import ClassifierModel


#: How a probe standardises its input (``norm``).
NORMS = ("global", "recording", "unit")
#: What a probe divides its centred input by (``scale``): each feature's own standard
#: deviation, or one shared by all features; ``auto`` is ``feature`` after ``norm=recording``
#: (the input is already standardised feature by feature) and ``shared`` otherwise (both
#: measured best there: benchmarks/README.md).
SCALES = ("auto", "feature", "shared")


def resolve_scale(scale: str, norm: str) -> str:
    """``scale`` with ``auto`` resolved for a probe of ``norm``."""
    if scale == "auto":
        return "feature" if norm == "recording" else "shared"
    return scale


@register("linear")
class LinearProbe(ClassifierModel):
    """Logistic-regression probe on embeddings; embedding = the standardised input."""

    input_kind = "embeddings"
    defaults = {"n_classes": 2, "c": 1.0, "norm": "unit", "blocks": 1, "scale": "auto"}
    #: what a model file written before ``scale`` existed did
    file_defaults = {"scale": "feature"}
    param_docs = {
        "n_classes": "number of classes (set from the labels)",
        "c": "inverse L2 regularisation strength of the logistic regression (sklearn's C)",
        "blocks": "fit one logistic regression per equal block of the features and average "
                  "them [default: the members of the kmeans -p members=N encoder that made "
                  "the embeddings, one block per copy; 1 for embed --rows files]",
        "norm": "what is done to each row before it is centred on the training rows' mean "
                "and divided by the scale (see scale). global: nothing; recording: "
                "standardise it by its own recording's rows (mean and sd per feature); "
                "unit: scale it to unit length (cosine geometry: a row's overall level drops "
                "out)",
        "scale": "feature: divide each centred feature by its own sd over the training rows; "
                 "shared: divide all by one sd (their root mean square), so that a feature "
                 "nearly constant in few training rows is not blown up; auto: feature with "
                 "norm=recording, shared otherwise",
    }
    test_config = {"frames": 1, "bins": 8}

    def __init__(self, frames: int = 1, bins: int = 128, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        self._require(self.frames == 1, f"takes one embedding per row (frames=1), got "
                                        f"{self.frames}")
        self._require(self.config["blocks"] >= 1, "blocks must be >= 1")
        self._require(self.config["norm"] in NORMS,
                      f"norm must be one of {', '.join(NORMS)} (got {self.config['norm']!r})")
        self._require(self.config["scale"] in SCALES,
                      f"scale must be one of {', '.join(SCALES)} (got {self.config['scale']!r})")
        self.register_buffer("mean", torch.zeros(self.bins))
        self.register_buffer("scale", torch.ones(self.bins))
        self.out = nn.Linear(self.bins, self.n_classes)
        self.embedding_dim = self.bins

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = x[:, 0, :]
        if self.config["norm"] == "unit":  # as wsd.discovery.search.normalise (fit_probe)
            x = nn.functional.normalize(x, dim=-1, eps=1e-12)
        return (x - self.mean) / self.scale

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.encode(x))
