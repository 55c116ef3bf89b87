"""Files outside wsd: every kind opens in xarray (h5netcdf) with named dimensions and units,
tables go to pandas via Parquet, and labels make round trips through Audacity, Raven and
cluster exports. Also the validation split on few recordings."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import soundfile as sf

from conftest import SEED_SLICE, tone
from wsd.io.store import open_file

TINY = ["--arch", "convae", "--arch-param", "width=0.125", "--batch-size", "8", "-q"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from wsd.cli.main import main

    d = tmp_path_factory.mktemp("formats")
    (d / "a").mkdir()
    for i, f in enumerate([700, 2500, 5000]):
        x = tone(8000, 6.0, f, seed=i)
        x[: 8000 * 2] *= 0.01
        sf.write(d / "a" / f"r{i}.wav", x, 8000)
    (d / "labels.csv").write_text("path,start_s,end_s,label\nr0.wav,2,6,call\n"
                                  "r1.wav,2,6,call\n")
    p = {k: d / f"{k}.h5" for k in ("win", "ae", "emb", "det", "cl", "hits")}
    for argv in (["slice", d / "a", "-o", p["win"], "--labels", d / "labels.csv", "-q"],
                 ["train", p["win"], "-o", p["ae"], "--epochs", "1", *TINY],
                 ["embed", p["win"], "--model", p["ae"], "-o", p["emb"], "-q"],
                 ["detect", p["win"], "--silence", "-o", p["det"], "-q"],
                 ["cluster", p["emb"], "--per-file", "-o", p["cl"], "-q"],
                 ["search", p["emb"], "--query", p["emb"], "-k", "3", "-o", p["hits"], "-q"]):
        assert main([str(a) for a in argv]) == 0, argv
    p["dir"] = d
    return p


# ------------------------------------------------------------------ xarray and pandas
DIMS = {"win": {"windows": ("window", "frame", "freq"), "start_s": ("window",)},
        "emb": {"embeddings": ("window", "dim"), "label": ("window",)},
        "det": {"score": ("window",), "positive": ("window",)},
        "cl": {"cluster": ("sequence",), "distance": ("clustered", "clustered_2"),
               "medoids": ("cluster_id",)},
        "hits": {"score": ("hit",), "rank": ("hit",), "query_id": ("hit",)}}


@pytest.mark.parametrize("kind", sorted(DIMS))
def test_every_kind_opens_in_xarray_with_names_and_units(files, kind):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    with xr.open_dataset(files[kind], engine="h5netcdf") as ds:
        assert not [d for d in ds.dims if str(d).startswith("phony_dim")], ds.dims
        for var, dims in DIMS[kind].items():
            assert ds[var].dims == dims, (var, ds[var].dims)
        if "start_s" in ds.variables:
            assert ds["start_s"].attrs["units"] == "s"
        assert ds.attrs["wsd_kind"] == {"win": "windows", "emb": "embeddings",
                                        "det": "detections", "cl": "clusters",
                                        "hits": "hits"}[kind]
        assert "history" in ds.attrs and "source" in ds.attrs
    with xr.open_dataset(files[kind], engine="h5netcdf", group="sources") as src:
        assert src["path"].dims == ("source",) and src["duration_s"].attrs["units"] == "s"


def test_xarray_frequency_selection_is_the_spectrogram_slice(files):
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(files["win"], engine="h5netcdf") as ds, open_file(files["win"]) as f:
        sel = ds.windows.sel(freq=slice(500, 2000))
        freqs = f.read("freqs")
        keep = (freqs >= 500) & (freqs <= 2000)
        np.testing.assert_array_equal(sel.values, f.read("windows")[:, :, keep])
        assert "noise floor" in ds.windows.attrs["units"] and ds.freq.attrs["units"] == "Hz"
        df = ds[["start_s", "end_s", "label"]].to_dataframe()
        assert len(df) == f.n


def test_model_files_open_too(files):
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(files["ae"], engine="h5netcdf") as ds:
        assert ds.attrs["wsd_kind"] == "model"
    with xr.open_dataset(files["ae"], engine="h5netcdf", group="loss_history") as lh:
        assert lh["loss"].dims == ("epoch",)


def test_files_without_dimension_scales_still_open_in_wsd(files, tmp_path, wsd):
    """Files written before the labels (no scales) read as before: the change is additive."""
    import h5py

    old = tmp_path / "old.h5"
    with h5py.File(files["det"]) as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for name in ("source_id", "start_s", "end_s", "score", "positive"):
            dst.create_dataset(name, data=src[name][()])
        src.copy("sources", dst)
        src.copy("spectrogram", dst)
        src.copy("events", dst)
    assert wsd("export", old).code == 0 and wsd("info", old).code == 0


def test_parquet_has_the_csv_columns_typed(files, tmp_path, wsd):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    out = tmp_path / "d.parquet"
    assert wsd("export", files["det"], "--format", "parquet", "-o", out).code == 0
    df = pd.read_parquet(out)
    csv_head = wsd("export", files["det"]).out.splitlines()[0].split(",")
    assert list(df.columns) == csv_head and df["score"].dtype == np.float64
    assert wsd("export", files["det"], "--format", "parquet").code == 2


# ------------------------------------------------------------------ labels round trips
def test_audacity_labels_in_and_out(files, tmp_path, wsd):
    track = tmp_path / "r0.txt"
    track.write_text("1.0\t3.5\tcall\n\\\t500\t1500\n4.3\t5.1\tclick\n")
    out = tmp_path / "w.h5"
    r = wsd("slice", files["dir"] / "a" / "r0.wav", "-o", out, "--labels", track,
            *SEED_SLICE, "-q")
    assert r.code == 0, r.err
    with open_file(out) as f:
        labels = set(f.read("label")) - {""}
    assert labels == {"call", "click"}
    r = wsd("export", files["det"], "--format", "audacity", "--source", "r0.wav")
    rows = [line.split("\t") for line in r.out.splitlines()]
    assert r.code == 0 and rows and all(len(x) == 3 and float(x[1]) > float(x[0])
                                        for x in rows)
    again = tmp_path / "again.txt"
    again.write_text(r.out)
    assert wsd("slice", files["dir"] / "a" / "r0.wav", "-o", tmp_path / "w2.h5", "--labels",
               again, "-q").code == 0
    r = wsd("slice", files["dir"] / "a", "-o", tmp_path / "w3.h5", "--labels", track)
    assert r.code == 65 and "can label only one input" in r.err
    r = wsd("export", files["det"], "--format", "audacity")
    assert r.code == 2 and "--source" in r.err


def test_raven_table_without_a_file_column_labels_one_input(files, tmp_path, wsd):
    t = tmp_path / "sel.txt"
    t.write_text("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tAnnotation\n"
                 "1\tSpectrogram 1\t1\t2.0\t5.0\tcall\n")
    out = tmp_path / "w.h5"
    assert wsd("slice", files["dir"] / "a" / "r1.wav", "-o", out, "--labels", t,
               "-q").code == 0
    with open_file(out) as f:
        assert "call" in set(f.read("label"))


def test_clusters_round_trip_as_labels(files, tmp_path, wsd):
    r = wsd("export", files["cl"], "--label-from", "cluster")
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert all(row["label"] == row["cluster"] for row in rows)
    table = tmp_path / "cl.csv"
    table.write_text(r.out)
    out = tmp_path / "w.h5"
    assert wsd("slice", files["dir"] / "a", "-o", out, "--labels", table, "-q").code == 0
    with open_file(out) as f, open_file(files["cl"]) as c:
        got = set(f.read("label")) - {""}
        assert got == {str(x) for x in c.read("cluster")}


def test_raven_band_follows_the_detector_band(files, tmp_path, wsd):
    det = tmp_path / "d.h5"
    assert wsd("detect", files["win"], "--silence", "--fmin", "500", "--fmax", "3000",
               "-o", det, "-q").code == 0
    r = wsd("export", det, "--format", "raven")
    row = r.out.splitlines()[1].split("\t")
    assert (row[5], row[6]) == ("500", "3000")


# ------------------------------------------------------------------ validation split
def test_split_keeps_every_recording_in_training_when_they_are_few(tmp_path, wsd):
    """Four recordings, one of them long: validation takes the end of each, never three
    of the four recordings (the encoder would learn one recording only)."""
    from wsd.models.data import split_by_source

    sid = np.repeat([0, 1, 2, 3], [1000, 50, 60, 40])
    s = split_by_source(sid, 0.1, 0)
    assert set(sid[s.train]) == {0, 1, 2, 3} and len(s.train) >= 0.85 * len(sid)
    assert not s.warnings


def test_split_is_stratified_with_one_negative_recording():
    """34 clips, one of them the only negative: both sides see both classes."""
    from wsd.models.data import split_by_source

    sid = np.repeat(np.arange(34), 20)
    y = (sid != 5).astype(np.int64)
    s = split_by_source(sid, 0.1, 0, labels=y)
    assert set(y[s.train]) == {0, 1} and set(y[s.val]) == {0, 1}
    assert len(s.train) >= 0.8 * len(sid)


def test_training_on_four_recordings_reports_the_split(tmp_path, wsd):
    d = tmp_path / "a"
    d.mkdir()
    for i, (f, sec) in enumerate([(500, 40.0), (1500, 4.0), (3000, 4.0), (6000, 4.0)]):
        sf.write(d / f"r{i}.wav", tone(8000, sec, f, seed=i), 8000)
    win = tmp_path / "w.h5"
    assert wsd("slice", d, "-o", win, "-q").code == 0
    r = wsd("train", win, "-o", tmp_path / "m.h5", "--epochs", "1",
            *[a for a in TINY if a != "-q"])
    assert r.code == 0 and "last 10% of each of the 4 recordings" in r.err, r.err
