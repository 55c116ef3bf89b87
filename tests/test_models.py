"""Contract tests run over every registered architecture, plus the registry and the exact
parameter counts of the seed-sized models (Keras layer tables in the seeds)."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from wsd import models as registry
from wsd.errors import BadInputError, UsageError
from wsd.models import ArchParamError, UnknownArchitecture
from wsd.models.base import WsdModel, format_layer_table

ARCHS = registry.names()


def _build(name: str, **overrides) -> WsdModel:
    torch.manual_seed(0)
    return registry.build(name, **{**registry.get(name).test_config, **overrides})


def _batch(model: WsdModel, seed: int = 1) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    return torch.randn(model.test_batch, model.frames, model.bins, generator=rng)


def _targets(model: WsdModel, x: torch.Tensor) -> dict:
    """Keyword arguments giving classifiers integer class targets ``y (batch,)``."""
    if model.kind != "classifier":
        return {}
    return {"y": torch.arange(x.shape[0]) % model.n_classes}


def _trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- registry
def test_registry_lists_seed_architectures():
    assert {"convae", "lstm", "gan"} <= set(ARCHS)
    assert ARCHS == sorted(ARCHS)


def test_registry_import_does_not_import_torch():
    code = "import sys, wsd.models; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_name_lists_choices():
    with pytest.raises(UnknownArchitecture, match="unknown architecture 'nope'") as info:
        registry.get("nope")
    for name in ARCHS:
        assert name in str(info.value)
    with pytest.raises(UsageError):
        registry.build("nope", frames=32, bins=256)


def test_duplicate_registration_refused(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    original = registry.get("convae")

    with pytest.raises(ValueError, match="'convae' is already registered"):
        @registry.register("convae")
        class Again(WsdModel):
            pass

    assert registry.get("convae") is original


def test_register_new_name(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register("extra_test_arch")
    class Extra(WsdModel):
        pass

    assert "extra_test_arch" in registry.names()
    assert registry.get("extra_test_arch") is Extra and Extra.name == "extra_test_arch"


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", ARCHS)
def test_class_attributes_and_config(name):
    cls = registry.get(name)
    assert cls.name == name
    assert cls.kind in {"autoencoder", "gan", "classifier", "contrastive", "kmeans"}
    assert set(cls.param_docs) == set(cls.defaults)
    assert all(isinstance(doc, str) and doc for doc in cls.param_docs.values())
    model = _build(name)
    expected = {"frames", "bins", *cls.defaults}
    assert set(model.config) == expected
    assert json.loads(json.dumps(model.config)) == model.config
    assert isinstance(model.embedding_dim, int) and model.embedding_dim > 0


@pytest.mark.parametrize("name", ARCHS)
def test_encode_shape(name):
    model = _build(name).eval()
    x = _batch(model)
    with torch.no_grad():
        z = model.encode(x)
    assert z.shape == (x.shape[0], model.embedding_dim)
    assert z.dtype == torch.float32 and torch.isfinite(z).all()


@pytest.mark.parametrize("name", ARCHS)
def test_encode_refuses_wrong_window_shape(name):
    model = _build(name).eval()
    with pytest.raises(BadInputError, match="expected windows of shape"):
        model.encode(torch.zeros(2, model.frames + 1, model.bins))


@pytest.mark.parametrize("name", ARCHS)
def test_train_step_finite_and_updates_every_optimizer(name):
    model = _build(name)
    x = _batch(model)
    optimizers = model.configure_optimizers(1e-3)
    assert optimizers and all(isinstance(o, torch.optim.Optimizer) for o in optimizers)
    before = [[p.detach().clone() for g in o.param_groups for p in g["params"]]
              for o in optimizers]
    stats = model.train_step(x, optimizers, contextlib.nullcontext, **_targets(model, x))
    assert math.isfinite(stats["loss"]) and all(isinstance(v, float) for v in stats.values())
    for opt, old in zip(optimizers, before):
        new = [p for g in opt.param_groups for p in g["params"]]
        assert any(not torch.equal(a, b) for a, b in zip(old, new))
    assert math.isfinite(model.eval_loss(x, **_targets(model, x)))
    assert model.training, "eval_loss must restore the training mode"


@pytest.mark.parametrize("name", ARCHS)
def test_train_step_under_bfloat16_autocast(name):
    """Where this CPU runs the model in bfloat16, a step keeps the loss finite; where it
    cannot (oneDNN has no bfloat16 LSTM without AVX512-BF16), wsd falls back to float32."""
    from wsd.runtime import device as accel

    model = _build(name)
    x = _batch(model)
    ok, why = accel.decide_amp(model, "cpu", True, x, train=True)
    if not ok:
        assert "running in float32" in why and name in why
        return
    autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
    stats = model.train_step(x, model.configure_optimizers(1e-3), autocast,
                             **_targets(model, x))
    assert math.isfinite(stats["loss"])


@pytest.mark.parametrize("name", ARCHS)
def test_state_dict_round_trip(name):
    model = _build(name)
    x = _batch(model)
    # one step moves the weights and BatchNorm statistics away from their initial values
    model.train_step(x, model.configure_optimizers(1e-3), **_targets(model, x))
    config = json.loads(json.dumps(model.config))
    torch.manual_seed(123)
    clone = type(model)(**config)
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    with torch.no_grad():
        assert torch.equal(model.encode(x), clone.encode(x))
    assert model.eval_loss(x, **_targets(model, x)) == clone.eval_loss(x, **_targets(model, x))


@pytest.mark.parametrize("name", ARCHS)
def test_seeded_runs_repeat_exactly(name):
    def run():
        model = _build(name)
        x = _batch(model)
        optimizers = model.configure_optimizers(1e-3)
        losses = [model.train_step(x, optimizers, **_targets(model, x))["loss"]
                  for _ in range(2)]
        with torch.no_grad():
            return losses, model.eval().encode(x)

    losses_a, z_a = run()
    losses_b, z_b = run()
    assert losses_a == losses_b
    assert torch.equal(z_a, z_b)


@pytest.mark.parametrize("name", ARCHS)
def test_unknown_arch_param_lists_valid_keys(name):
    cls = registry.get(name)
    with pytest.raises(ArchParamError, match="unknown arch param bogus") as info:
        _build(name, bogus="1")
    for key in cls.defaults:
        assert key in str(info.value)


@pytest.mark.parametrize("name", ARCHS)
def test_string_params_are_coerced(name):
    cls = registry.get(name)
    as_strings = {k: str(v) for k, v in cls.test_config.items()}
    model = registry.build(name, **as_strings)
    typed = _build(name)
    assert model.config == typed.config
    for key, default in cls.defaults.items():
        assert type(model.config[key]) is type(default)
    numeric = [k for k, v in cls.defaults.items() if isinstance(v, (int, float))]
    if numeric:
        with pytest.raises(ArchParamError, match=f"{numeric[0]}='abc' is not a valid"):
            _build(name, **{numeric[0]: "abc"})


@pytest.mark.parametrize("name", ARCHS)
def test_layer_table_covers_all_parameters(name):
    model = _build(name)
    rng_state = torch.get_rng_state()
    rows = model.layer_table()
    assert torch.equal(rng_state, torch.get_rng_state()), "layer_table used the global RNG"
    assert rows and all(len(r) == 5 for r in rows)
    assert sum(r[4] for r in rows) == _trainable(model)
    text = format_layer_table(rows)
    assert f"Trainable params: {_trainable(model):,}" in text
    assert model.training, "layer_table must restore the training mode"


@pytest.mark.parametrize("name", ARCHS)
def test_reconstruct_or_generate(name):
    model = _build(name)
    x = _batch(model)
    if model.kind == "autoencoder":
        assert model.reconstruct(x).shape == x.shape
        assert model.generate(2) is None
    if model.kind == "gan":
        assert model.reconstruct(x) is None
        a, b, c = model.generate(3, seed=1), model.generate(3, seed=1), model.generate(3, seed=2)
        assert a.shape == (3, model.frames, model.bins)
        assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", ARCHS)
def test_first_conv_weights(name):
    weights = _build(name).first_conv_weights()
    if weights is not None:
        assert isinstance(weights, np.ndarray) and weights.ndim == 4
        assert weights.dtype == np.float32


# ----------------------------------------------------------------------------- seed sizes
def test_convae_seed_size_matches_keras_table():
    model = registry.build("convae", frames=32, bins=256)
    assert _trainable(model.encoder) == 762_480
    rows = {r[0]: r for r in model.layer_table()}
    expected = {"encoder.conv1": ("(None, 128, 16, 128)", 8_320, 8_320),
                "encoder.conv2": ("(None, 64, 8, 64)", 524_352, 524_352),
                "encoder.conv3": ("(None, 32, 4, 32)", 131_104, 131_104),
                "encoder.conv4": ("(None, 16, 2, 16)", 32_784, 32_784),
                "encoder.flatten": ("(None, 512)", 0, 0),
                "encoder.dense": ("(None, 128)", 65_664, 65_664),
                "encoder.norm": ("(None, 128)", 512, 256)}
    for name, values in expected.items():
        assert rows[name][2:] == values
    text = format_layer_table(model.layer_table())
    assert "encoder: 762,736 params, 762,480 trainable" in text
    assert model.embedding_dim == 128
    assert model.first_conv_weights().shape == (128, 1, 8, 8)
    assert model.reconstruct(torch.zeros(2, 32, 256)).shape == (2, 32, 256)


def test_convae_other_shapes_and_width():
    model = registry.build("convae", frames=64, bins=128, width="0.25", latent="16")
    assert model.reconstruct(torch.zeros(2, 64, 128)).shape == (2, 64, 128)
    assert model.first_conv_weights().shape == (32, 1, 8, 8)
    with pytest.raises(ArchParamError, match="multiples of 16"):
        registry.build("convae", frames=30, bins=256)


def test_lstm_seed_size_encoder_parameters():
    model = registry.build("lstm", frames=128, bins=256)
    # Keras counts 608,512: one bias per LSTM gate; torch has two (3 directions x 512 more).
    assert _trainable(model.encoder) == 610_048 == 608_512 + 3 * 512
    rows = {r[0]: r for r in model.layer_table()}
    assert rows["encoder.conv"][2:] == ("(None, 256, 128, 256)", 16_640, 16_640)
    assert rows["encoder.norm"][3:] == (1_024, 512)
    assert rows["encoder.bilstm"][2:] == ("(None, 128, 256)", 395_264, 395_264)
    assert rows["encoder.lstm"][3:] == (197_632, 197_632)
    assert "encoder: 610,560 params, 610,048 trainable" in format_layer_table(list(rows.values()))
    assert model.embedding_dim == 128


def test_lstm_same_padding_keeps_frames_and_light_preset():
    model = registry.build("lstm", frames=20, bins=32, filters=4, freq_pool=4, hidden=3)
    x = torch.randn(2, 20, 32)
    assert model.reconstruct(x).shape == (2, 20, 32)
    with pytest.raises(ArchParamError, match="multiple of freq_pool"):
        registry.build("lstm", frames=20, bins=30, freq_pool=4)


def test_gan_sequences_and_encode_independent_of_batch():
    model = _build("gan", seq_len=3).eval()
    x = torch.randn(7, model.frames, model.bins)
    assert model._sequences(x).shape == (2, 3, model.frames, model.bins)
    assert model._sequences(x[:2]).shape == (1, 2, model.frames, model.bins)
    with torch.no_grad():
        assert torch.allclose(model.encode(x)[2:3], model.encode(x[2:3]), atol=1e-6)


def test_lstm_inference_split_to_bound_memory(monkeypatch):
    """The seed lstm's conv output is 32 MiB a window: inference takes batches in parts of at
    most max_inference_batch() windows, with the same result as one call."""
    from wsd.models.inference import embed_batches, reconstruct

    seed = registry.build("lstm", 128, 256)
    assert seed.max_inference_batch() == 16  # 256 filters x 128 frames x 256 bins x 4 bytes
    light = registry.build("lstm", 128, 256, filters=32, freq_pool=4)
    assert light.max_inference_batch() == 512
    model = _build("lstm").eval()
    x = np.random.default_rng(0).normal(size=(7, model.frames, model.bins)).astype(np.float32)
    whole = next(embed_batches(model, [x], 0.0, 1.0))
    whole_rec = reconstruct(model, x, 0.0, 1.0)
    calls = []
    monkeypatch.setattr(type(model), "INFERENCE_BYTES",
                        4 * model.config["filters"] * model.frames
                        * (model.bins // model.config["freq_pool"]) * 3)
    assert model.max_inference_batch() == 3
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda t: calls.append(len(t)) or real(t))
    parts = next(embed_batches(model, [x], 0.0, 1.0))
    assert calls == [3, 3, 1]
    np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reconstruct(model, x, 0.0, 1.0), whole_rec, rtol=1e-5,
                               atol=1e-5)
    assert _build("convae") \
        .max_inference_batch() is None


@pytest.mark.parametrize("name", ["kmeans", "linear", "convae"])
def test_arch_param_help_lists_every_key_with_its_meaning(name, wsd, tmp_path):
    """`wsd train --arch NAME -p help` prints every key, its default and its doc line and
    exits 0 without reading the input or writing the output."""
    cls = registry.get(name)
    out = tmp_path / "m.h5"
    r = wsd("train", tmp_path / "absent.h5", "--arch", name, "-p", "help", "-o", out)
    assert r.code == 0, r.err
    assert not out.exists()
    text = " ".join(r.out.split())
    for key, default in cls.defaults.items():
        assert f"{key} [default {default!r}]" in text
        assert " ".join(cls.param_docs[key].split()) in text


def test_arch_param_help_needs_no_files(wsd):
    """What the error for an unknown key tells users to run works as typed: `wsd train
    --arch linear -p help`, with no windows file and no -o; `-p help` alone lists the
    default architecture's keys; an unknown architecture is a usage error."""
    r = wsd("train", "--arch", "linear", "-p", "help")
    assert r.code == 0, r.err
    assert "norm" in r.out and "scale" in r.out and r.out.startswith("linear:")
    r = wsd("train", "-p", "help")
    assert r.code == 0 and r.out.startswith("kmeans:")
    r = wsd("train", "--arch=nope", "--arch-param=help")
    assert r.code == 2 and "unknown architecture 'nope'" in r.err
