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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wsd.models import register
from wsd.models.classifier import ClassifierModel


#: How a probe standardises its input (``norm``).
NORMS = ("global", "recording")


@register("linear")
class LinearProbe(ClassifierModel):
    """Logistic-regression probe on embeddings; embedding = the standardised input."""

    input_kind = "embeddings"
    defaults = {"n_classes": 2, "c": 1.0, "norm": "global", "blocks": 1}
    param_docs = {
        "n_classes": "number of classes (set from the labels)",
        "c": "inverse L2 regularisation strength of the logistic regression (sklearn's C)",
        "blocks": "fit one logistic regression per equal block of the features and average "
                  "them (the members of a kmeans -p members=N encoder: give N)",
        "norm": "global: standardise with the training rows' statistics; recording: first "
                "standardise each row by its own recording's rows (mean and sd per feature)",
    }
    test_config = {"frames": 1, "bins": 8}

    def __init__(self, frames: int = 1, bins: int = 128, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        self._require(self.frames == 1, f"takes one embedding per row (frames=1), got "
                                        f"{self.frames}")
        self._require(self.config["blocks"] >= 1, "blocks must be >= 1")
        self._require(self.config["norm"] in NORMS,
                      f"norm must be one of {', '.join(NORMS)} (got {self.config['norm']!r})")
        self.register_buffer("mean", torch.zeros(self.bins))
        self.register_buffer("scale", torch.ones(self.bins))
        self.out = nn.Linear(self.bins, self.n_classes)
        self.embedding_dim = self.bins

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return (x[:, 0, :] - self.mean) / self.scale

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.encode(x))
