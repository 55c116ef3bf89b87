"""Base class of the supervised architectures (detectors and call-type/species classifiers).

A classifier maps an input batch to class logits ``(batch, n_classes)``; its embedding is
the layer before the output (``encode``). The training loop passes integer class targets
``y (batch,)`` to ``train_step``/``eval_loss`` and sets per-class loss weights against class
imbalance with :meth:`set_class_weights` (a buffer, so it is saved with the weights).

``input_kind`` says what the loop feeds the model:

* ``"spectrogram"``: normalised log-spectrogram windows ``(batch, frames, bins)``;
* ``"information"``: per-frame information features ``(batch, frames, 4)`` = [H, C_JSD, C_TV,
  C_SQ] from :func:`wsd.dsp.features.information_series` (values in [0, 1], not normalised);
  such models are built with ``bins=4``.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from wsd.models.base import WsdModel


class ClassifierModel(WsdModel):
    kind: ClassVar[str] = "classifier"
    input_kind: ClassVar[str] = "spectrogram"

    def __init__(self, frames: int, bins: int, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        n = int(self.config.get("n_classes", 2))
        self._require(n >= 2, f"n_classes must be at least 2 (got {n})")
        self.n_classes = n
        self.register_buffer("class_weight", torch.ones(n))

    def set_class_weights(self, w) -> None:
        """Per-class loss weights ``(n_classes,)`` (e.g. inverse class frequency)."""
        self.class_weight.copy_(torch.as_tensor(w, dtype=torch.float32))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, n_classes)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Class-weighted cross entropy (float32 scalar)."""
        if y is None:
            raise ValueError(f"{self.name}: a classifier needs class targets y")
        return F.cross_entropy(self.logits(x).float(), y.long(),
                               weight=self.class_weight.to(x.device))

    def train_step(self, x, optimizers, autocast=contextlib.nullcontext, y=None):
        self.train()
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = self.loss(x, y)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    def eval_loss(self, x, y=None) -> float:
        with self._evaluating():
            return float(self.loss(x, y))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(batch, n_classes)`` in eval mode, without grad."""
        with self._evaluating():
            return torch.softmax(self.logits(x).float(), dim=1)

    def _summary_forward(self, x: torch.Tensor) -> None:
        self.logits(x)
