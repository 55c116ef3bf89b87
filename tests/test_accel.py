"""Numeric fast paths (wsd.runtime.device): when bfloat16 autocast is on, channels-last weights, exact
resume with them, and what embed records and computes with --amp/--no-amp."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import tone
from wsd import models
from wsd.runtime import device as accel
from wsd.io.store import open_file

TINY = ["--arch", "convae", "--arch-param", "width=0.125", "--batch-size", "8", "-q"]


@pytest.mark.parametrize("native", [True, False])
def test_use_amp_auto_follows_device_arch_and_cpu(monkeypatch, native):
    monkeypatch.setattr(accel, "cpu_has_bf16", lambda: native)
    conv, lstm = models.get("convae"), models.get("lstm")
    assert conv.cpu_bf16 and not lstm.cpu_bf16
    assert accel.use_amp(conv, "cpu", None) is native
    assert accel.use_amp(lstm, "cpu", None) is False
    assert accel.use_amp(lstm, "cuda", None) is True and accel.use_amp(conv, "cuda:1", None)
    assert accel.use_amp(conv, "cpu", False) is False and accel.use_amp(lstm, "cpu", True)


def test_autocast_factory():
    assert accel.autocast("cpu", False)().__class__.__name__ == "nullcontext"
    with accel.autocast("cpu", True)():
        y = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert y.dtype == torch.bfloat16


def test_channels_last_layout_and_optimiser_state():
    m = accel.to_layout(models.build("convae", 16, 32, width=0.125, latent=8))
    convs = [p for p in m.parameters() if p.dim() == 4 and p.shape[1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)
    lstm = accel.to_layout(models.build("lstm", **models.get("lstm").test_config))
    assert all(p.is_contiguous() for p in lstm.parameters())
    opt = m.configure_optimizers(1e-3)[0]
    m.train_step(torch.randn(4, 16, 32), [opt])
    sd = opt.state_dict()
    for st in sd["state"].values():  # as a checkpoint gives them back: contiguous
        for k, v in st.items():
            if torch.is_tensor(v) and v.dim() == 4:
                st[k] = v.contiguous()
    opt.load_state_dict(sd)
    accel.match_state_layout(opt)
    for p in convs:
        for v in opt.state[p].values():
            if torch.is_tensor(v) and v.dim() == 4:
                assert v.stride() == p.stride()


def test_decide_amp_keeps_float32_when_bfloat16_disagrees(monkeypatch):
    m = models.build("convae", 16, 32, width=0.125, latent=8)
    x = torch.randn(4, 16, 32)
    monkeypatch.setattr(accel, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(accel, "disagreement", lambda model, x: 0.9)
    ok, why = accel.decide_amp(m, "cpu", None, x)
    assert ok is False and "bfloat16 autocast is off" in why and "90%" in why
    monkeypatch.setattr(accel, "disagreement", lambda model, x: 0.004)
    assert accel.decide_amp(m, "cpu", None, x) == (True, None)
    assert accel.decide_amp(m, "cpu", False, x) == (False, None)


def test_amp_is_checked_on_finite_windows_only(monkeypatch):
    """Windows holding NaN or infinity are the data's fault (embed and train then stop with
    exit 65 naming the file): the bfloat16 check leaves them out instead of reporting a
    faulty kernel ("differs by inf%"), on every CPU."""
    import numpy as np

    from wsd.models.inference import choose_amp

    m = models.build("convae", 16, 32, width=0.125, latent=8)
    seen = []
    monkeypatch.setattr(accel, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(accel, "disagreement", lambda model, x: seen.append(x) or 0.0)
    monkeypatch.setattr(accel, "bf16_failure", lambda model, x, train=False: None)
    x = np.random.default_rng(0).standard_normal((5, 16, 32)).astype(np.float32) - 60
    x[1, 3, 4], x[3, 0, 0] = np.inf, np.nan
    assert choose_amp(m, lambda: x, {"mean": -60.0, "std": 1.0}, "cpu", None) == (True, None)
    assert len(seen) == 1 and seen[0].shape[0] == 3 and torch.isfinite(seen[0]).all()
    seen.clear()
    x[:] = np.nan  # nothing to check on: the data error comes next
    assert choose_amp(m, lambda: x, {"mean": -60.0, "std": 1.0}, "cpu", None) == (True, None)
    assert seen == []


def test_disagreement_is_rounding_sized_for_a_sound_model():
    torch.manual_seed(0)
    m = accel.to_layout(models.build("lstm", **models.get("lstm").test_config))
    assert 0 < accel.disagreement(m, torch.randn(4, 12, 16)) < accel.TOLERANCE
    assert m.training  # the check restores the module's mode


def _trained(tmp_path, wsd, width):
    d = tmp_path / "audio"
    d.mkdir(exist_ok=True)
    for i, f in enumerate([700, 2500, 5000]):
        sf.write(d / f"r{i}.wav", tone(8000, 6.0, f, seed=i), 8000)
    win, model = tmp_path / "win.h5", tmp_path / f"ae{width}.h5"
    if not win.exists():
        assert wsd("slice", d, "-o", win, "-q").code == 0
    args = ["--arch", "convae", "--arch-param", f"width={width}", "--batch-size", "8", "-q"]
    assert wsd("train", win, "-o", model, "--epochs", "1", *args).code == 0
    return win, model


@pytest.fixture
def wsd(wsd):
    """Tiny convae models on the seeds' windows."""
    from conftest import with_seed_slice

    return with_seed_slice(wsd)


def test_embed_no_amp_equals_float32_encoder(tmp_path, wsd):
    from wsd.models.inference import load_trained

    win, model = _trained(tmp_path, wsd, 0.125)
    out = tmp_path / "e32.h5"
    r = wsd("embed", win, "--model", model, "-o", out, "--no-amp", "-q")
    assert r.code == 0, r.err
    net, info = load_trained(model)
    with open_file(win) as w, open_file(out, "embeddings") as e:
        assert not e.params["amp"]
        x = (w.read("windows").astype(np.float32) - info["norm"]["mean"]) / info["norm"]["std"]
        with torch.inference_mode():
            want = net.encode(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(e.read("embeddings"), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("width", [0.125, 0.75])
def test_embed_by_default_stays_close_to_float32(tmp_path, wsd, monkeypatch, width):
    """Whatever the default picks (bfloat16 where it agrees with float32 on the model,
    float32 where a faulty kernel would corrupt it), embeddings stay float32's."""
    monkeypatch.setattr(accel, "cpu_has_bf16", lambda: True)
    win, model = _trained(tmp_path, wsd, width)
    a, b = tmp_path / "auto.h5", tmp_path / "f32.h5"
    r = wsd("embed", win, "--model", model, "-o", a)
    assert r.code == 0, r.err
    assert wsd("embed", win, "--model", model, "-o", b, "--no-amp", "-q").code == 0
    with open_file(a, "embeddings") as ea, open_file(b, "embeddings") as eb:
        za, zb = ea.read("embeddings"), eb.read("embeddings")
        used = bool(ea.params["amp"])
    assert used or "bfloat16 autocast is off" in r.err
    assert np.linalg.norm(za - zb) <= accel.TOLERANCE * np.linalg.norm(zb)


def test_reconstructions_span_quiet_to_loud(tmp_path, wsd):
    d = tmp_path / "audio"
    d.mkdir()
    sr = 8000
    x = np.zeros(sr * 20, np.float32)
    x[sr * 10 : sr * 12] = tone(sr, 2.0, 1000, amp=0.5)  # one loud call in near-silence
    x += 1e-4 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    sf.write(d / "r.wav", x, sr)
    win, model, emb = tmp_path / "w.h5", tmp_path / "m.h5", tmp_path / "e.h5"
    assert wsd("slice", d, "-o", win, "-q").code == 0
    assert wsd("train", win, "-o", model, "--epochs", "1", "--val-fraction", "0",
               *TINY).code == 0
    assert wsd("embed", win, "--model", model, "-o", emb, "--reconstruct", "3", "-q").code == 0
    with open_file(win) as w, open_file(emb, "embeddings") as e:
        levels = [np.percentile(w.read("windows", i).astype(np.float32), 99)
                  for i in range(w.n)]
        idx = e.read("recon_index")
    assert len(idx) == 3
    assert int(np.argmax(levels)) in idx and int(np.argmin(levels)) in idx


_NO_BF16_CPU = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  # oneDNN as on a CPU without native bfloat16


def _run_limited(code: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **_NO_BF16_CPU, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)


def test_bfloat16_that_cannot_run_falls_back_to_float32_with_a_note():
    """oneDNN limited to AVX2 has no bfloat16 LSTM: asked for bfloat16, the recurrent models
    fall back to float32 with a note instead of crashing, on any x86-64 CPU."""
    code = (
        "import torch\n"
        "from wsd import models\nfrom wsd.runtime import device as accel\n"
        "for name in ('attention', 'gan'):\n"
        "    torch.manual_seed(0)\n"
        "    m = models.build(name, **models.get(name).test_config)\n"
        "    x = (torch.rand if m.kind == 'classifier' else torch.randn)"
        "(m.test_batch, m.frames, m.bins)\n"
        "    ok, why = accel.decide_amp(m, 'cpu', True, x, train=True)\n"
        "    print(name, ok, why)\n"
        "    assert ok is False and 'running in float32' in why, why\n")
    r = _run_limited(code)
    assert r.returncode == 0, r.stdout + r.stderr


def test_train_with_amp_on_a_cpu_without_bfloat16_trains_in_float32(tmp_path, wsd):
    """``wsd train --amp`` where bfloat16 cannot run: exit 0, a note, and a model whose
    params record float32 (the CLI in a child process with oneDNN limited to AVX2)."""
    d = tmp_path / "audio"
    d.mkdir()
    for i, f in enumerate([700, 2500]):
        sf.write(d / f"r{i}.wav", tone(8000, 4.0, f, seed=i), 8000)
    win, out = tmp_path / "w.h5", tmp_path / "g.h5"
    assert wsd("slice", d, "-o", win, "--n-fft", "64", "--hop-length", "32", "--frames", "16",
               "-q").code == 0
    tiny = ("seq_len=2", "z_dim=4", "g_hidden=3", "channels=2", "features=6", "hidden=5")
    argv = ["train", str(win), "--arch", "gan", "--amp", "--epochs", "1", "--batch-size", "8",
            "--val-fraction", "0", "-o", str(out)]
    argv += [a for kv in tiny for a in ("--arch-param", kv)]
    r = _run_limited(f"import sys; from wsd.cli.main import main; sys.exit(main({argv!r}))")
    assert r.returncode == 0, r.stderr
    assert "bfloat16 autocast is off" in r.stderr and "running in float32" in r.stderr
    with open_file(out, "model") as m:
        assert m.params["amp_used"] is False
