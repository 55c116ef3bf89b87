"""Supervised architectures: the classifier contract over every registered classifier, the
synthetic call/no-call bar (ROC AUC >= 0.95 after a test-sized run), pretrained weights and
the frozen-encoder readout.

The task: 136 ms windows (16 frames, 64 bins at 8 kHz) of pink ocean noise whose level
varies over 20 dB, half of them with a stretch of a synthetic call (all five types of
:mod:`wsd.datasets.synth`) at 10-25 dB SNR, the range of ``synth.make_recording``.  The level
spread keeps plain band energy a poor detector (ROC AUC about 0.67 on this set).
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from wsd import models as registry
from wsd.datasets import synth
from wsd.errors import BadInputError, InputMissingError
from wsd.dsp.features import information_series
from wsd.models import ArchParamError
from wsd.dsp.spectrogram import SpectrogramParams, spectrogram_windows

CLASSIFIERS = [n for n in registry.names() if registry.get(n).kind == "classifier"]

SR = 8000
PARAMS = SpectrogramParams(sample_rate=SR, n_fft=128, hop_length=64, frames=16, step=16)
N_TRAIN, N_TEST = 384, 256
EPOCHS, LR, BATCH = 6, 3e-3, 32  # every classifier; the readout's encoder: AE_EPOCHS
AE_EPOCHS = 6
AUC_BAR = 0.95


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread, above all on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- helpers
def _build(name: str, **overrides):
    torch.manual_seed(0)
    return registry.build(name, **{**registry.get(name).test_config, **overrides})


def _batch(model, seed: int = 1) -> torch.Tensor:
    """A batch the model accepts: information features in [0, 1], else normal windows."""
    g = torch.Generator().manual_seed(seed)
    shape = (model.test_batch, model.frames, model.bins)
    if model.input_kind == "information":
        return torch.rand(shape, generator=g)
    return torch.randn(shape, generator=g)


def _targets(model, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, model.n_classes, (model.test_batch,), generator=g)
    y[:2] = torch.tensor([0, 1])  # both classes present
    return y


def _fit(model, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float) -> list[float]:
    """Mini-batch training with the model's own train_step; mean loss per epoch."""
    opts = model.configure_optimizers(lr)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        batch_losses = []
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            kw = {} if y is None else {"y": y[idx]}
            batch_losses.append(model.train_step(x[idx], opts, **kw)["loss"])
        losses.append(float(np.mean(batch_losses)))
    return losses


def _windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` dB windows ``(n, 16, 64)`` and labels ``(n,)``, alternately noise and call."""
    rng = np.random.default_rng(seed)
    length = PARAMS.window_samples
    clips, labels = [], np.arange(n) % 2
    for i, label in enumerate(labels):
        x = synth.ocean_noise(length, SR, rng, colour="pink")  # unit RMS
        if label:
            call = synth.make_call(synth.CALL_TYPES[(i // 2) % len(synth.CALL_TYPES)], SR, rng)
            start = int(rng.integers(0, len(call) - length + 1))
            part = call[start:start + length]
            snr_db = rng.uniform(10.0, 25.0)
            x = x + part * 10.0 ** (snr_db / 20.0) / np.sqrt(np.mean(part**2))
        clips.append(x * 10.0 ** rng.uniform(-2.5, -0.5))
    windows = np.concatenate([spectrogram_windows(c.astype(np.float32), PARAMS)
                              for c in clips])
    assert windows.shape == (n, PARAMS.frames, PARAMS.bins)
    return windows, labels


@pytest.fixture(scope="module")
def task() -> dict:
    """Train and held-out sets as each input kind wants them (generated once)."""
    w_train, y_train = _windows(N_TRAIN, seed=0)
    w_test, y_test = _windows(N_TEST, seed=1)
    mean, std = float(w_train.mean()), float(w_train.std())
    return {
        "spectrogram": [torch.from_numpy((w - mean) / std).float() for w in (w_train, w_test)],
        "information": [torch.from_numpy(information_series(w)) for w in (w_train, w_test)],
        "y_train": torch.from_numpy(y_train), "y_test": y_test,
    }


@pytest.fixture(scope="module")
def trained_encoder(task):
    """``get(model)``: state dict of ``model``'s encoder architecture trained as an
    autoencoder (unlabelled) on the training windows; cached per encoder config."""
    cache: dict[tuple, dict] = {}

    def get(model) -> dict:
        key = (model.config["encoder_arch"], model.config["encoder_config"])
        if key not in cache:
            torch.manual_seed(0)
            enc = registry.build(key[0], model.frames, model.bins, **json.loads(key[1]))
            x_train = task[getattr(enc, "input_kind", "spectrogram")][0]
            _fit(enc, x_train, None, AE_EPOCHS, LR)
            cache[key] = enc.state_dict()
        return cache[key]

    return get


# ----------------------------------------------------------------------------- contract
def test_classifiers_registered():
    expected = {"vanillacnn", "inception", "inception-res", "attention", "xception", "vit",
                "readout"}
    assert expected <= set(CLASSIFIERS)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_declares_n_classes_and_input_kind(name):
    cls = registry.get(name)
    assert cls.defaults["n_classes"] == 2 and next(iter(cls.defaults)) == "n_classes"
    assert cls.input_kind in {"spectrogram", "information", "embeddings"}
    if cls.input_kind == "information":
        assert cls.test_config["bins"] == 4
    if cls.input_kind == "embeddings":  # one embedding per row, seen as a one-frame window
        assert cls.test_config["frames"] == 1


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_logits_and_encode_shapes(name):
    model = _build(name, n_classes=3).eval()
    x = _batch(model)
    with torch.no_grad():
        logits, z = model.logits(x), model.encode(x)
    assert logits.shape == (len(x), 3) and torch.isfinite(logits).all()
    assert z.shape == (len(x), model.embedding_dim) and torch.isfinite(z).all()
    probs = model.predict_proba(x)
    assert torch.allclose(probs.sum(dim=1), torch.ones(len(x)))
    with pytest.raises(ArchParamError, match="n_classes must be at least 2"):
        _build(name, n_classes=1)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_train_step_with_targets(name):
    model = _build(name)
    x, y = _batch(model), _targets(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    stats = model.train_step(x, model.configure_optimizers(1e-3), y=y)
    assert math.isfinite(stats["loss"])
    params = dict(model.named_parameters())
    trainable = [k for k, p in params.items() if p.requires_grad]
    frozen = [k for k, p in params.items() if not p.requires_grad]
    assert trainable
    assert any(not torch.equal(before[k], params[k]) for k in trainable)
    assert all(torch.equal(before[k], params[k]) for k in frozen)
    assert math.isfinite(model.eval_loss(x, y)) and model.training


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_train_step_under_bfloat16_autocast(name):
    """A finite bfloat16 step where this CPU runs the model in bfloat16, else the fallback
    to float32 (test_accel covers the fallback on every CPU)."""
    from wsd.runtime import device as accel

    model = _build(name)
    ok, why = accel.decide_amp(model, "cpu", True, _batch(model), train=True)
    if not ok:
        assert "running in float32" in why and name in why
        return
    autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
    stats = model.train_step(_batch(model), model.configure_optimizers(1e-3), autocast,
                             y=_targets(model))
    assert math.isfinite(stats["loss"])


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_state_dict_round_trip(name):
    model = _build(name)
    x = _batch(model)
    model.train_step(x, model.configure_optimizers(1e-3), y=_targets(model))
    config = json.loads(json.dumps(model.config))
    torch.manual_seed(123)
    clone = type(model)(**config)
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    with torch.no_grad():
        assert torch.equal(model.logits(x), clone.logits(x))
        assert torch.equal(model.encode(x), clone.encode(x))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_seeded_runs_repeat(name):
    def run():
        model = _build(name)
        x, y = _batch(model), _targets(model)
        opts = model.configure_optimizers(1e-3)
        losses = [model.train_step(x, opts, y=y)["loss"] for _ in range(2)]
        with torch.no_grad():
            return losses, model.eval().logits(x)

    (losses_a, out_a), (losses_b, out_b) = run(), run()
    assert losses_a == losses_b
    assert torch.equal(out_a, out_b)


@pytest.mark.parametrize("name", [n for n in CLASSIFIERS
                                  if registry.get(n).input_kind != "embeddings"])
def test_learns_synthetic_call_detection(name, task, trained_encoder):
    model = _build(name)
    if hasattr(model, "load_encoder_state"):
        model.load_encoder_state(trained_encoder(model))
    x_train, x_test = task[model.input_kind]
    losses = _fit(model, x_train, task["y_train"], EPOCHS, LR)
    assert losses[-1] < losses[0]
    score = model.predict_proba(x_test)[:, 1].numpy()
    auc = roc_auc_score(task["y_test"], score)
    assert auc >= AUC_BAR, f"{name}: ROC AUC {auc:.3f} on held-out windows"


# ----------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("name, frames, bins, params", [
    ("vanillacnn", 32, 256, 109_698),
    ("inception", 32, 4, 1_249_322),
    ("inception-res", 32, 4, 1_278_218),
    ("attention", 32, 4, 134_282),
    ("vit", 32, 256, 2_707_394),
])
def test_default_sizes(name, frames, bins, params):
    model = registry.build(name, frames, bins)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == params


def test_xception_default_is_seed_xception():
    model = registry.build("xception", 32, 256)
    assert sum(p.numel() for p in model.backbone.parameters()) == 20_806_376
    names = {k for k in model.state_dict()}
    # timm's xception names (under backbone.), middle flow block4..11, exit block12
    for key in ("conv1.weight", "bn1.running_mean", "block1.rep.0.conv1.weight",
                "block1.skipbn.weight", "block2.rep.1.pointwise.weight",
                "block11.rep.8.weight", "block12.rep.4.pointwise.weight",
                "conv3.conv1.weight", "conv4.pointwise.weight", "bn4.weight"):
        assert "backbone." + key in names
    assert model.embedding_dim == 100


def test_inception_residual_adds_projected_shortcut():
    plain, res = _build("inception"), _build("inception-res")
    extra = {k for k, _ in res.named_parameters()} - {k for k, _ in plain.named_parameters()}
    assert extra == {"blocks.0.shortcut.weight", "blocks.0.shortcut.bias"}
    with pytest.raises(ArchParamError, match="at least 3 frames"):
        registry.build("inception", 2, 4)


def test_vit_pads_windows_to_whole_patches():
    model = _build("vit", frames=13, bins=60).eval()
    assert model.grid == (2, 8)
    with torch.no_grad():
        assert model.logits(torch.randn(2, 13, 60)).shape == (2, 2)
    with pytest.raises(ArchParamError, match="multiple of heads"):
        _build("vit", hidden=30)


# ----------------------------------------------------------------------------- weights
@pytest.mark.parametrize("name", ["xception", "vit"])
def test_weights_from_torch_save_and_wsd_model(name, tmp_path):
    from wsd.io.store.models import save_model

    source = _build(name, n_classes=3)
    source.train_step(_batch(source), source.configure_optimizers(1e-2), y=_targets(source))
    source.eval()
    x = _batch(source, seed=5)
    pth = tmp_path / "weights.pt"
    torch.save(source.state_dict(), pth)
    h5 = tmp_path / "model.h5"
    save_model(h5, arch=name, config=source.config, state_dict=source.state_dict(),
               spectrogram=PARAMS.as_dict(), norm={"mean": 0.0, "std": 1.0}, params={},
               history=["test"], loss_history={})
    for path in (pth, h5):
        torch.manual_seed(7)
        model = _build(name, n_classes=3, weights=str(path)).eval()
        report = model.pretrained_report
        assert not report["missing"] and not report["unexpected"] and not report["mismatched"]
        with torch.no_grad():
            assert torch.allclose(model.logits(x), source.logits(x), atol=1e-6)


def test_xception_takes_timm_style_keys_and_colour_first_conv(tmp_path):
    model = _build("xception")
    bare = {k: v.clone() for k, v in model.backbone.state_dict().items()}  # timm's names
    colour = torch.randn(model.backbone.conv1.weight.shape[0], 3, 3, 3)
    bare["conv1.weight"] = colour
    bare["fc.weight"] = torch.zeros(1000, 256)  # an ImageNet head: left out
    path = tmp_path / "timm.pth"
    torch.save({"state_dict": bare}, path)
    loaded = _build("xception", weights=str(path))
    report = loaded.pretrained_report
    assert report["adapted"] == ["backbone.conv1.weight"]
    assert report["unexpected"] == ["fc.weight"]
    assert torch.allclose(loaded.backbone.conv1.weight, colour.sum(dim=1, keepdim=True))
    assert set(report["missing"]) == {k for k in loaded.state_dict()
                                      if not k.startswith("backbone.")}


def test_vit_resizes_square_position_grid(tmp_path):
    model = _build("vit")  # 16 x 64 windows, patch 8: a 2 x 8 grid
    hidden = model.config["hidden"]
    pos = torch.randn(1, 1 + 3 * 3, hidden)
    path = tmp_path / "vit.pth"
    torch.save({"encoder.pos_embedding": pos, "class_token": torch.ones(1, 1, hidden)}, path)
    loaded = _build("vit", weights=str(path))
    assert loaded.pretrained_report["adapted"] == ["backbone.encoder.pos_embedding"]
    assert loaded.backbone.encoder.pos_embedding.shape == (1, 1 + 2 * 8, hidden)
    assert torch.equal(loaded.backbone.encoder.pos_embedding[0, 0], pos[0, 0])
    assert torch.equal(loaded.backbone.class_token, torch.ones(1, 1, hidden))


@pytest.mark.parametrize("name", ["xception", "vit"])
def test_unusable_weights_are_errors(name, tmp_path):
    with pytest.raises(InputMissingError):
        _build(name, weights=str(tmp_path / "absent.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(BadInputError, match="cannot read weights"):
        _build(name, weights=str(junk))
    other = tmp_path / "other.pt"
    torch.save({"something.else": torch.zeros(3)}, other)
    with pytest.raises(BadInputError, match="no tensor .* fits.*missing: .*unexpected: "
                                            "something.else"):
        _build(name, weights=str(other))


@pytest.mark.parametrize("name", ["xception", "vit"])
def test_freeze_trains_only_the_head(name, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_build(name).state_dict(), path)
    model = _build(name, weights=str(path), freeze=True)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    model.train_step(_batch(model), model.configure_optimizers(1e-2), y=_targets(model))
    assert model.training and not model.backbone.training
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone.items())
    assert any(not torch.equal(v, model.head.state_dict()[k]) for k, v in head.items())


# ----------------------------------------------------------------------------- readout
def test_readout_encoder_frozen_and_loaded():
    model = _build("readout")
    assert not model.encoder.training
    model.train()
    assert model.training and not model.encoder.training
    assert all(not p.requires_grad for p in model.encoder.parameters())
    torch.manual_seed(3)
    enc = registry.build("convae", 16, 64, width=0.125, latent=64)
    model.load_encoder_state(enc.state_dict())
    for k, v in enc.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[k], v)
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert model.embedding_dim == 32 and model.input_kind == "spectrogram"
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model.train_step(_batch(model), model.configure_optimizers(1e-2), y=_targets(model))
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in frozen.items())
    single = _build("readout", hidden=0)
    assert single.embedding_dim == 64  # the seed's single readout layer


def test_readout_refuses_bad_encoder_config():
    with pytest.raises(ArchParamError, match="not valid JSON"):
        _build("readout", encoder_config="{width")
    with pytest.raises(ArchParamError, match="must be a JSON object"):
        _build("readout", encoder_config="[1]")
    with pytest.raises(ArchParamError, match="made for frames=32"):
        _build("readout", encoder_config='{"frames": 32, "bins": 64, "width": 0.125}')
    with pytest.raises(ArchParamError, match="cannot be a readout"):
        _build("readout", encoder_arch="readout")
