"""wsd train / embed end to end on tiny generated data."""

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from wsd.io.store import open_file
from wsd.io.store.models import load_model

TINY = ["--arch", "convae", "--arch-param", "width=0.125", "--batch-size", "8", "-q"]


@pytest.fixture
def wsd(wsd):
    """These tests check the seeds' spectrogram conventions: slice with the seeds' flags."""
    from conftest import with_seed_slice

    return with_seed_slice(wsd)


@pytest.fixture
def windows(tmp_path, wsd):
    d = tmp_path / "audio"
    d.mkdir()
    for i, f in enumerate([500, 1500, 3000, 6000]):
        sf.write(d / f"r{i}.wav", tone(8000, 8.0, f, seed=i), 8000)
    out = tmp_path / "win.h5"
    r = wsd("slice", d, "-o", out, "-q")
    assert r.code == 0, r.err
    return out


def test_train_embed_export(windows, tmp_path, wsd):
    model = tmp_path / "ae.h5"
    r = wsd("train", windows, "-o", model, "--epochs", "2", *TINY)
    assert r.code == 0, r.err
    info = load_model(model)
    assert info["arch"] == "convae" and len(info["loss_history"]["loss"]) == 2
    assert info["spectrogram"]["n_fft"] == 512 and info["norm"]["std"] > 0
    assert np.isfinite(info["loss_history"]["val_loss"]).all()
    emb = tmp_path / "emb.h5"
    r = wsd("embed", windows, "--model", model, "-o", emb, "--reconstruct", "3", "-q")
    assert r.code == 0, r.err
    with open_file(emb, "embeddings") as e, open_file(windows) as w:
        z = e.read("embeddings")
        assert z.shape == (w.n, 128) and np.isfinite(z).all()
        np.testing.assert_array_equal(e.read("start_s"), w.read("start_s"))
        assert e.sources["path"].tolist() == w.sources["path"].tolist()
        assert e.read("recon_output").shape == (3, 32, 256)
        assert any("train" in h for h in e.history) and "embed" in e.history[-1]
    r = wsd("export", emb)
    head = r.out.split("\n")[0].split(",")
    assert head[:4] == ["path", "start_s", "end_s", "e0"] and head[-1] == "e127"
    r = wsd("info", model)
    assert r.code == 0 and "Trainable params" in r.out and "encoder" in r.out


def test_seeded_training_repeats_exactly(windows, tmp_path, wsd):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for out in (a, b):
        assert wsd("train", windows, "-o", out, "--epochs", "2", "--seed", "3", *TINY).code == 0
    wa, wb = load_model(a)["state_dict"], load_model(b)["state_dict"]
    for k in wa:
        assert np.array_equal(wa[k].numpy(), wb[k].numpy()), k


def test_resume_after_interruption_equals_uninterrupted(windows, tmp_path, wsd, monkeypatch):
    from wsd import models

    full = tmp_path / "full.h5"
    args = ["--epochs", "3", "--patience", "0", *TINY]
    cls = models.get("convae")
    real = cls.train_step
    calls = {"n": 0, "stop": None}

    def counting(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == calls["stop"]:
            raise KeyboardInterrupt
        return real(self, *a, **k)
    monkeypatch.setattr(cls, "train_step", counting)
    assert wsd("train", windows, "-o", full, *args).code == 0
    per_epoch = calls["n"] // 3
    assert per_epoch >= 2
    calls.update(n=0, stop=per_epoch + 2)  # inside the second epoch
    out = tmp_path / "ae.h5"
    r = wsd("train", windows, "-o", out, *args)
    assert r.code == 130 and not out.exists()
    assert (tmp_path / "ae.h5.ckpt").exists()
    monkeypatch.setattr(cls, "train_step", real)
    r = wsd("train", windows, "-o", out, "--resume", *args)
    assert r.code == 0, r.err
    assert not (tmp_path / "ae.h5.ckpt").exists()
    wa, wb = load_model(full), load_model(out)
    assert wa["loss_history"]["loss"] == wb["loss_history"]["loss"]
    for k in wa["state_dict"]:
        assert np.array_equal(wa["state_dict"][k].numpy(), wb["state_dict"][k].numpy()), k


def test_mismatched_settings_refused(windows, tmp_path, wsd):
    model = tmp_path / "ae.h5"
    assert wsd("train", windows, "-o", model, "--epochs", "1", *TINY).code == 0
    other = tmp_path / "other.h5"
    d = tmp_path / "audio"
    assert wsd("slice", d, "-o", other, "--hop-length", "128", "-q").code == 0
    r = wsd("embed", other, "--model", model, "-o", tmp_path / "e.h5")
    assert r.code == 65
    assert "hop_length=256" in r.err and "hop_length=128" in r.err
    assert not (tmp_path / "e.h5").exists()
    # another sample rate: the message names the slice flags that reproduce the model's
    # front-end, and windows re-sliced (resampled) with them are accepted
    resampled = tmp_path / "resampled.h5"
    assert wsd("slice", d, "-o", resampled, "--sample-rate", "4000", "-q").code == 0
    r = wsd("embed", resampled, "--model", model, "-o", tmp_path / "e.h5")
    assert r.code == 65 and "sample_rate=4000" in r.err
    flags = r.err.split("wsd slice ... ")[1].split(";")[0].split()
    again = tmp_path / "again.h5"
    assert wsd("slice", d, "-o", again, *flags, "-q").code == 0
    assert wsd("embed", again, "--model", model, "-o", tmp_path / "e.h5", "-q").code == 0


def test_usage_errors(windows, tmp_path, wsd):
    r = wsd("train", windows, "-o", tmp_path / "m.h5", "--arch", "nope")
    assert r.code == 2 and "convae" in r.err and "lstm" in r.err
    r = wsd("train", windows, "-o", tmp_path / "m.h5", "--arch", "convae", "-p", "depth=3")
    assert r.code == 2 and "width" in r.err
    r = wsd("train", tmp_path / "missing.h5", "-o", tmp_path / "m.h5", "--arch", "convae")
    assert r.code == 66
    r = wsd("embed", windows, "--model", windows, "-o", tmp_path / "e.h5")
    assert r.code == 65 and "expected a model" in r.err


def test_val_split_by_recording():
    from wsd.models.data import make_runs, split_by_source

    sid = np.repeat(np.arange(10), 20)
    s = split_by_source(sid, 0.2, seed=1)
    tr, va = s.train, s.val
    assert set(sid[tr]).isdisjoint(set(sid[va]))
    assert len(va) == 40 and "2 of 10" in s.note and not s.warnings
    runs = make_runs(sid, tr, 8)
    assert all(sid[a] == sid[b - 1] and b - a <= 8 for a, b in runs)
    assert sum(b - a for a, b in runs) == len(tr)
    one = split_by_source(np.zeros(50, int), 0.2, 0)
    assert list(one.val) == list(range(40, 50)) and "last 20%" in one.note
