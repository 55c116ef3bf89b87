"""wsd train / embed end to end on tiny generated data."""

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from wsd.io.store import open_file
from wsd.io.store.models import load_model

TINY = ["--arch", "convae", "--arch-param", "width=0.125", "--batch-size", "8", "-q"]
#: a kmeans encoder small enough to train in a second or two
SMALL_KMEANS = ["-p", "k=16", "-p", "pca=16", "--epochs", "2"]


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


def test_a_first_recording_of_one_window_trains(tmp_path, wsd):
    """The bfloat16 trial step before training takes its windows from as many recordings as
    it needs: a first clip of one window gave BatchNorm a batch of one (an internal error
    on machines that use bfloat16)."""
    d = tmp_path / "audio"
    d.mkdir()
    sf.write(d / "a-short.wav", tone(8000, 1.0, 800, seed=9), 8000)
    for i, f in enumerate([500, 1500, 3000]):
        sf.write(d / f"r{i}.wav", tone(8000, 8.0, f, seed=i), 8000)
    win = tmp_path / "win.h5"
    assert wsd("slice", d, "-o", win, "--frames", "16", "-q").code == 0
    with open_file(win) as f:
        sid = f.read("source_id")
        assert f.sources["path"][0].endswith("a-short.wav") and (sid == 0).sum() == 1
    r = wsd("train", win, "--arch", "convae", "--arch-param", "width=0.125", "--batch-size",
            "8", "--epochs", "1", "--amp", "-o", tmp_path / "ae.h5")
    assert r.code == 0, r.err
    assert (tmp_path / "ae.h5").exists()


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


def test_file_pool_is_each_recordings_mean_and_std_whatever_the_chunks():
    from wsd.errors import BadInputError
    from wsd.pipeline.embed import FilePool

    rng = np.random.default_rng(0)
    z = rng.standard_normal((30, 4)).astype(np.float32)
    sid = np.repeat([0, 2, 3], 10)  # recording 1 gave no window
    st = np.tile(np.arange(10.0), 3)
    lab = np.array(["", "call", "call", "", "", "", "", "", "", ""] * 2 + [""] * 10, object)
    lab[10:13] = ["noise", "noise", "call"]
    pool = FilePool(4, labelled=True)
    got = []
    for a, b in ((0, 7), (7, 8), (8, 25), (25, 30)):  # chunks cut inside recordings
        pool.add(z[a:b], sid[a:b], st[a:b], st[a:b] + 1.5, lab[a:b])
        ready = pool.take()
        # a recording's row is out as soon as the next one starts, not at the end
        got.append([] if ready is None else ready["source_id"].tolist())
    assert got == [[], [], [0, 2], []]
    rows = pool.take(final=True)
    assert rows["source_id"].tolist() == [3] and pool.take(final=True) is None
    pool = FilePool(4, labelled=True)
    pool.add(z, sid, st, st + 1.5, lab)
    rows = pool.take(final=True)
    assert rows["source_id"].tolist() == [0, 2, 3]
    for i, s in enumerate([0, 2, 3]):
        m = sid == s
        np.testing.assert_allclose(rows["embeddings"][i], np.r_[z[m].mean(0), z[m].std(0)],
                                   rtol=1e-5, atol=1e-6)
    assert rows["start_s"].tolist() == [0, 0, 0] and rows["end_s"].tolist() == [10.5] * 3
    # the most common label among the labelled windows; none: ""
    assert rows["label"].tolist() == ["call", "noise", ""]
    unlabelled = FilePool(4, labelled=False)
    unlabelled.add(z[:3], np.zeros(3, int), st[:3], st[:3] + 1)
    assert "label" not in unlabelled.take(final=True)
    # a recording's windows must come together: one that comes back is refused
    apart = FilePool(4, labelled=False, path="w.h5")
    with pytest.raises(BadInputError, match="w.h5.*together"):
        apart.add(z[:6], [0, 0, 1, 1, 0, 0], st[:6], st[:6] + 1)


def test_embed_rows_files_one_row_per_recording(windows, tmp_path, wsd):
    model = tmp_path / "km.h5"
    assert wsd("train", windows, "--arch", "kmeans", *SMALL_KMEANS, "-o", model,
               "-q").code == 0
    per_window, per_file = tmp_path / "w.h5", tmp_path / "f.h5"
    assert wsd("embed", windows, "--model", model, "--rows", "windows", "-o", per_window,
               "-q").code == 0
    r = wsd("embed", windows, "--model", model, "--rows", "files", "-o", per_file)
    assert r.code == 0, r.err
    assert "4 rows of" in r.err and "(one per recording)" in r.err
    with open_file(per_window, "embeddings") as w, open_file(per_file, "embeddings") as f:
        zw, sid = w.read("embeddings"), w.read("source_id")
        zf = f.read("embeddings")
        assert f.read("source_id").tolist() == [0, 1, 2, 3]
        assert f.attrs("/")["rows"] == "files" and f.attrs("/")["embedding_dim"] == 2 * zw.shape[1]
        # the default encoder's three copies make three equal blocks of a window row (a
        # probe's default -p blocks); a file row is all means then all deviations: one
        assert w.params["member_blocks"] == 3 and f.params["member_blocks"] == 1
        for s in range(4):
            np.testing.assert_allclose(zf[s], np.r_[zw[sid == s].mean(0), zw[sid == s].std(0)],
                                       rtol=1e-4, atol=1e-5)
    r = wsd("embed", windows, "--model", model, "--rows", "files", "--reconstruct", "2",
            "-o", tmp_path / "x.h5")
    assert r.code == 2 and "--rows files" in r.err
    assert not (tmp_path / "x.h5").exists()


def test_a_probe_on_whole_clips(windows, tmp_path, wsd):
    """Clip labels -> embed --rows files -> train --arch linear -> detect: one score per
    clip, and the clips' metrics."""
    labels = tmp_path / "clips.csv"
    labels.write_text("path,label\n" + "".join(f"r{i}.wav,{'high' if i >= 2 else 'low'}\n"
                                                for i in range(4)))
    win = tmp_path / "lab.h5"
    assert wsd("slice", windows.parent / "audio", "--labels", labels, "-o", win,
               "-q").code == 0
    model, emb = tmp_path / "km.h5", tmp_path / "f.h5"
    # one copy: each copy whitens 4,096-d patches of these 256-bin windows (an eigh of
    # seconds), and files rows take one probe block whatever the copies
    assert wsd("train", win, "--arch", "kmeans", *SMALL_KMEANS, "-p", "members=1", "-o",
               model, "-q").code == 0
    assert wsd("embed", win, "--model", model, "--rows", "files", "-o", emb, "-q").code == 0
    with open_file(emb, "embeddings") as f:
        assert f.read("label").tolist() == ["low", "low", "high", "high"]
    probe, det = tmp_path / "p.h5", tmp_path / "d.h5"
    r = wsd("train", emb, "--arch", "linear", "--positive", "high", "-o", probe)
    assert r.code == 0, r.err
    assert "2 positive and 2 negative rows of 4" in r.err
    # pooled rows of clips: one scale shared by the features (-p scale=auto)
    assert load_model(probe)["config"]["scale"] == "shared"
    r = wsd("train", emb, "--arch", "linear", "--positive", "high", "-p", "scale=robust",
            "-o", tmp_path / "bad.h5")
    assert r.code == 2 and "scale must be one of" in r.err
    assert not (tmp_path / "bad.h5").exists()
    r = wsd("detect", emb, "--model", probe, "-o", det)
    assert r.code == 0, r.err
    with open_file(det, "detections") as f:
        score = f.read("score")
        assert f.read("source_id").tolist() == [0, 1, 2, 3]
    assert min(score[2:]) > max(score[:2])  # each high clip above each low one
    # per-recording standardisation would zero every row of a one-row-per-recording file
    r = wsd("train", emb, "--arch", "linear", "--positive", "high", "-p", "norm=recording",
            "-o", tmp_path / "bad.h5")
    assert r.code == 2 and "one row per recording" in r.err
    assert not (tmp_path / "bad.h5").exists()
