"""Base classes shared by every architecture, and the Keras-like layer table.

Every model takes windows of log spectrograms as float32 tensors of shape
``(batch, frames, bins)`` (already normalised) and maps each window to a vector of
``embedding_dim`` floats.  The training loop, ``wsd embed`` and ``wsd info`` only use the
interface defined here:

- ``config`` (JSON-able dict; ``type(m)(**m.config)`` rebuilds the model), ``embedding_dim``;
- ``encode``, ``configure_optimizers``, ``train_step``, ``eval_loss``;
- ``reconstruct`` (autoencoders) or ``generate`` (GANs), ``layer_table``,
  ``first_conv_weights``.

Architecture options (``--arch-param key=value``) are declared per class in ``defaults``
with one line of help each in ``param_docs``; values given as strings are coerced to the
type of the default.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ClassVar, ContextManager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsd.errors import BadInputError
from wsd.models import ArchParamError

__all__ = ["WsdModel", "AutoencoderModel", "format_layer_table", "LayerRow", "summary_forward"]

LayerRow = tuple[str, str, str, int, int]
AutocastFactory = Callable[[], ContextManager[Any]]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(arch: str, key: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (bool, int, float or str)."""
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ArchParamError(
            f"{arch}: arch param {key}={value!r} is not a valid {kind.__name__}"
        ) from None


def _positive_int(arch: str, key: str, value: Any) -> int:
    """``value`` as an int > 0 (strings accepted), else :class:`ArchParamError`."""
    number = _coerce(arch, key, value, 0)
    if number <= 0:
        raise ArchParamError(f"{arch}: {key} must be a positive integer, got {value!r}")
    return number


def _shape_text(output: Any) -> str:
    """Keras-style shape of a module output, batch dimension shown as ``None``."""
    while isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        return "?"
    dims = ["None"] + [str(d) for d in output.shape[1:]]
    return "(" + ", ".join(dims) + ")"


def _own_counts(module: nn.Module) -> tuple[int, int]:
    """(params, trainable) of ``module`` itself, counting floating buffers (BatchNorm's
    running mean and variance) as non-trainable parameters the way Keras does."""
    params = list(module.parameters(recurse=False))
    total = sum(p.numel() for p in params)
    total += sum(b.numel() for b in module.buffers(recurse=False) if b.is_floating_point())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return total, trainable


class WsdModel(nn.Module):
    """Base class of all architectures; see the module docstring for the contract.

    Subclasses set the class attributes and build their layers in ``__init__`` after
    calling ``super().__init__(frames, bins, **arch_params)``, which validates and coerces
    the parameters and stores ``self.config``.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""  # "autoencoder" | "gan" | "classifier"
    defaults: ClassVar[dict[str, Any]] = {}
    #: Settings added to the architecture since its first model files: the value that
    #: reproduces what a file written without them did (read back by load_trained).
    file_defaults: ClassVar[dict[str, Any]] = {}
    param_docs: ClassVar[dict[str, str]] = {}
    # Small shapes and params for the CPU contract tests: build(name, **test_config).
    test_config: ClassVar[dict[str, Any]] = {}
    test_batch: ClassVar[int] = 4
    # Numeric fast paths (wsd.runtime.device): bfloat16 autocast by default on CPUs with native
    # bfloat16, and channels-last 4-D weights; set where benchmarks/models_probe.py measured
    # them faster than eager float32.
    cpu_bf16: ClassVar[bool] = False
    channels_last: ClassVar[bool] = False
    #: Inference memory budget per forward call, for :meth:`max_inference_batch`.
    INFERENCE_BYTES: ClassVar[int] = 512 * 2**20

    embedding_dim: int

    def max_inference_batch(self) -> int | None:
        """Most windows one inference forward call should take (None: no limit). Models
        whose activations are large per window (the seed lstm's conv output is 32 MiB a
        window) return a limit so that ``wsd embed --batch-size 256`` stays within
        :attr:`INFERENCE_BYTES`; inference splits larger batches."""
        return None

    def __init__(self, frames: int, bins: int, **arch_params: Any) -> None:
        super().__init__()
        frames = _positive_int(self.name, "frames", frames)
        bins = _positive_int(self.name, "bins", bins)
        params = self.coerce_params(arch_params)
        self.frames = frames
        self.bins = bins
        self.config: dict[str, Any] = {"frames": frames, "bins": bins, **params}

    # ---------------------------------------------------------------- parameters
    @classmethod
    def coerce_params(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """All arch params: the defaults updated with ``raw`` coerced to the defaults'
        types.  Raises :class:`ArchParamError` on an unknown key, listing the valid ones."""
        unknown = sorted(set(raw) - set(cls.defaults))
        if unknown:
            valid = ", ".join(f"{k} (default {v!r})" for k, v in cls.defaults.items())
            raise ArchParamError(
                f"{cls.name}: unknown arch param {', '.join(unknown)}; "
                f"valid keys: {valid or 'none'} (wsd train --arch {cls.name} -p help "
                f"explains them)"
            )
        params = dict(cls.defaults)
        for key, value in raw.items():
            params[key] = _coerce(cls.name, key, value, cls.defaults[key])
        return params

    def _require(self, ok: bool, message: str) -> None:
        """Raise :class:`ArchParamError` prefixed with the architecture name unless ``ok``."""
        if not ok:
            raise ArchParamError(f"{self.name}: {message}")

    def _check_input(self, x: torch.Tensor) -> None:
        """Refuse anything but ``(batch, frames, bins)`` with this model's frames and bins
        (:class:`wsd.errors.BadInputError`)."""
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.frames, self.bins):
            raise BadInputError(
                f"{self.name}: expected windows of shape (batch, {self.frames}, {self.bins}),"
                f" got {tuple(x.shape)}"
            )

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.parameters()).device

    # ---------------------------------------------------------------- interface
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Embed windows ``(batch, frames, bins)`` -> ``(batch, embedding_dim)``.

        Runs in the module's current mode (call ``.eval()`` for inference) with grad
        tracking as set by the caller."""
        raise NotImplementedError

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Scalar float32 training loss on windows ``(batch, frames, bins)``."""
        raise NotImplementedError

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        """One Adam optimiser over the trainable parameters (GANs override this); the fused
        implementation, measured 3x faster per step than the default on CPU."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [torch.optim.Adam(params, lr=lr, fused=True)]

    def train_step(
        self,
        x: torch.Tensor,
        optimizers: list[torch.optim.Optimizer],
        autocast: AutocastFactory = contextlib.nullcontext,
    ) -> dict[str, float]:
        """One optimisation step on windows ``x`` ``(batch, frames, bins)``.

        ``autocast()`` must return a context manager wrapping the forward pass (e.g.
        ``functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16)``, or
        ``contextlib.nullcontext``); no gradient scaler is used, so prefer bfloat16 over
        float16.  Puts the model in training mode.  Returns ``{"loss": float}``.
        """
        self.train()
        (optimizer,) = optimizers
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = self.loss(x)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}

    def eval_loss(self, x: torch.Tensor) -> float:
        """Validation loss on ``x`` in evaluation mode without gradients (mode restored)."""
        with self._evaluating():
            return float(self.loss(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor | None:
        """Reconstruction ``(batch, frames, bins)`` for autoencoders; None otherwise."""
        return None

    def generate(self, n: int, seed: int = 0) -> torch.Tensor | None:
        """``n`` generated windows ``(n, frames, bins)`` for GANs; None otherwise."""
        return None

    def first_conv_weights(self) -> np.ndarray | None:
        """Weights ``(out, in, kh, kw)`` of the first ``Conv2d`` (float32), or None."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                return module.weight.detach().float().cpu().numpy()
        return None

    # ---------------------------------------------------------------- summary
    def _summary_forward(self, x: torch.Tensor) -> None:
        """Forward pass run by :meth:`layer_table` on a dummy batch of one window."""
        self.encode(x)

    def layer_table(self) -> list[LayerRow]:
        """Rows ``(name, type, output shape, params, trainable params)`` in call order,
        one per leaf module (and per module holding parameters of its own), found with
        forward hooks on a zero batch of one window in eval mode.  Params count floating
        buffers (BatchNorm running statistics) as non-trainable, like Keras."""
        rows: list[LayerRow] = []
        seen: set[str] = set()

        def hook_for(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
                if name not in seen:
                    seen.add(name)
                    total, trainable = _own_counts(module)
                    rows.append((name, type(module).__name__, _shape_text(output),
                                 total, trainable))
            return hook

        handles = []
        for name, module in self.named_modules():
            leaf = next(module.children(), None) is None
            if name and (leaf or _own_counts(module)[0] > 0):
                handles.append(module.register_forward_hook(hook_for(name)))
        try:
            with self._evaluating():
                dummy = torch.zeros(1, self.frames, self.bins, device=self.device)
                self._summary_forward(dummy)
        finally:
            for handle in handles:
                handle.remove()
        return rows

    @contextlib.contextmanager
    def _evaluating(self):
        """Eval mode and no grad for the duration; the previous mode is restored."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)


class AutoencoderModel(WsdModel):
    """Autoencoder: ``decode(encode(x))`` trained with the mean squared error."""

    kind: ClassVar[str] = "autoencoder"

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(batch, embedding_dim)`` -> windows ``(batch, frames, bins)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error (float32 scalar)."""
        return F.mse_loss(self(x).float(), x.float())

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(batch, frames, bins)`` float32, in eval mode without grad."""
        with self._evaluating():
            return self(x).float()

    def _summary_forward(self, x: torch.Tensor) -> None:
        self(x)


def summary_forward(model: nn.Module, run: Callable[[], Any]) -> None:
    """Call ``run()`` (a forward pass) with a hook that also calls every
    ``nn.MultiheadAttention``'s ``out_proj`` on the attention output, so forward hooks
    (:meth:`wsd.models.base.WsdModel.layer_table`) see it and count its parameters.  Only
    for the summary pass: the extra call's result is discarded."""

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        module.out_proj(output[0])

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.MultiheadAttention)]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()


def format_layer_table(rows: list[LayerRow]) -> str:
    """Keras-summary-like text for :meth:`WsdModel.layer_table` rows, with totals and, when
    the model has several top-level parts (encoder, decoder, ...), a subtotal per part."""
    header = ("Layer", "Type", "Output shape", "Params", "Trainable")
    body = [(n, t, s, f"{p:,}", f"{tr:,}") for n, t, s, p, tr in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(5)]

    def line(cells: tuple[str, ...]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3])]
        right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:])]
        return "  ".join(left + right).rstrip()

    rule = "=" * len(line(header))
    total = sum(r[3] for r in rows)
    trainable = sum(r[4] for r in rows)
    out = [line(header), rule, *(line(r) for r in body), rule,
           f"Total params: {total:,}",
           f"Trainable params: {trainable:,}",
           f"Non-trainable params: {total - trainable:,}"]
    parts: dict[str, list[int]] = {}
    for name, _t, _s, params, train in rows:
        sums = parts.setdefault(name.split(".")[0], [0, 0])
        sums[0] += params
        sums[1] += train
    if len(parts) > 1:
        out += [f"{part}: {p:,} params, {t:,} trainable" for part, (p, t) in parts.items()]
    return "\n".join(out)
