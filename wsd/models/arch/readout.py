"""Readout: a small classifier head on a frozen encoder's embedding (seed 004).

The Audio-Classification seed trains an autoencoder without labels, then a readout layer
mapping its bottleneck to the classes, so that few labelled windows are needed.  Here the
encoder is any registered architecture (``encoder_arch``, with its config as the JSON
string ``encoder_config``), built through the registry for the same windows and frozen:
no gradients, and kept in eval mode even while the head trains (BatchNorm statistics and
dropout of the encoder do not change).  The head::

    encoder.encode(x)                        (B, encoder.embedding_dim)   frozen
    Linear -> hidden, ReLU = embedding       (B, hidden)
    Dropout, Linear hidden -> n_classes      (B, n_classes)

With the defaults (a seed-sized ``convae`` encoder, 128-d bottleneck, ``hidden=64``) the
head has 8,386 trainable parameters for two classes; the seed's readout was a single layer
(``hidden=0`` gives that: Linear straight to the logits, embedding = the encoder's).

The training loop builds the model, then copies the trained encoder's weights in with
:meth:`Readout.load_encoder_state`; the readout's own state dict holds the encoder's weights
too, so a saved readout model is self-contained.  The windows are normalised with the
encoder's statistics, and ``input_kind`` is the encoder's.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Mapping

import torch
from torch import nn

from wsd.models import build, register
from wsd.models.classifier import ClassifierModel


@register("readout")
class Readout(ClassifierModel):
    """MLP head on a frozen encoder; embedding = the head's hidden layer."""

    #: The training loop loads ``--encoder`` and hands its weights to
    #: :meth:`load_encoder_state` (the model declares it; the loop does not know names).
    needs_encoder = True

    input_kind = "spectrogram"
    defaults = {"n_classes": 2, "hidden": 64, "dropout": 0.1, "encoder_arch": "convae",
                "encoder_config": "{}"}
    param_docs = {
        "n_classes": "number of classes (set by the training loop from the labels)",
        "hidden": "units of the head's hidden layer = embedding size; 0 = a single linear "
                  "readout on the encoder's embedding (the seed's)",
        "dropout": "dropout before the output layer",
        "encoder_arch": "registered architecture of the frozen encoder (set by the training "
                        "loop from --encoder)",
        "encoder_config": "the encoder's arch params as a JSON object (frames and bins come "
                          "from the windows)",
    }
    test_config = {"frames": 16, "bins": 64, "hidden": 32, "encoder_arch": "convae",
                   "encoder_config": '{"width": 0.125, "latent": 64}'}

    def __init__(self, frames: int = 32, bins: int = 256, **arch_params: Any) -> None:
        super().__init__(frames, bins, **arch_params)
        c = self.config
        self._require(c["hidden"] >= 0, f"hidden must be >= 0, got {c['hidden']}")
        self._require(0 <= c["dropout"] < 1, f"dropout must be in [0, 1), got {c['dropout']}")
        self._require(c["encoder_arch"] != self.name, "the encoder cannot be a readout")
        try:
            enc_config = json.loads(c["encoder_config"])
        except json.JSONDecodeError as e:
            enc_config = None
            self._require(False, f"encoder_config is not valid JSON ({e})")
        self._require(isinstance(enc_config, dict),
                      f"encoder_config must be a JSON object, got {c['encoder_config']!r}")
        for key, value in (("frames", self.frames), ("bins", self.bins)):
            given = enc_config.pop(key, value)
            self._require(int(given) == value,
                          f"the encoder was made for {key}={given}, the windows have {value}")
        self.encoder = build(c["encoder_arch"], self.frames, self.bins, **enc_config)
        self.input_kind = getattr(self.encoder, "input_kind", "spectrogram")
        self._freeze_encoder()
        dim = self.encoder.embedding_dim
        if c["hidden"]:
            self.features: nn.Module = nn.Sequential(OrderedDict([
                ("dense", nn.Linear(dim, c["hidden"])), ("act", nn.ReLU())]))
            dim = c["hidden"]
        else:
            self.features = nn.Identity()
        self.head = nn.Sequential(OrderedDict([
            ("drop", nn.Dropout(c["dropout"])),
            ("out", nn.Linear(dim, self.n_classes)),
        ]))
        self.embedding_dim = dim

    def _freeze_encoder(self) -> None:
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def load_encoder_state(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Copy a trained encoder's weights (its whole state dict, strictly) into
        ``self.encoder``; it stays frozen."""
        self.encoder.load_state_dict(state_dict)
        self._freeze_encoder()

    def train(self, mode: bool = True) -> Readout:
        """Set the head's mode; the encoder always stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        """Adam over the head's parameters only."""
        return [torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=lr)]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> head features ``(batch, embedding_dim)``."""
        self._check_input(x)
        with torch.no_grad():
            z = self.encoder.encode(x)
        return self.features(z.float())

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, frames, bins)`` -> logits ``(batch, n_classes)``."""
        return self.head(self.encode(x))
