"""benchmarks/upcall_calibration.py: its robust z is detect's, and it runs end to end on a
folder laid out as quality.py --keep leaves it (synthetic calls, so the result is known)."""

import csv
import importlib.util
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WIN, STEP, DUR, CALL = 2.048, 0.256, 120.0, 1.3


@pytest.fixture(scope="module")
def cal():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # for its _common
    try:
        spec = importlib.util.spec_from_file_location(
            "upcall_calibration", ROOT / "benchmarks" / "upcall_calibration.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_mad_scale_is_detects_recording_z(cal):
    from wsd.dsp.events import recording_z

    rng = np.random.default_rng(0)
    sid = np.repeat([0, 1, 2], 300)
    x = rng.standard_normal(900) * np.repeat([1.0, 3.0, 0.5], 300) + np.repeat([0, 5, -2], 300)
    np.testing.assert_allclose(cal.scaled_per_recording(sid, x, cal.mad), recording_z(sid, x))
    # the peaks scale measured here is detect --calibrate peaks
    np.testing.assert_allclose(cal.scaled_per_recording(sid, x, cal.peaks),
                               recording_z(sid, x, "peaks"), rtol=1e-9, atol=1e-9)
    # the block-maxima scale puts a recording's typical block maximum at 0, whatever its
    # level and spread
    z = cal.scaled_per_recording(sid, x, cal.blockmax(15))
    for s in range(3):
        bm = z[sid == s][:300 // 15 * 15].reshape(-1, 15).max(1)
        assert abs(np.median(bm)) < 1e-9


def _recordings(folder: Path, name: str, calls_per: list[int], rng) -> tuple[list, list]:
    """An embeddings file of len(calls_per) recordings: windows covering a call move by +3
    in two of their 8 dimensions; and the calls' rows of a label table."""
    starts = np.arange(0.0, DUR - WIN + 1e-9, STEP)
    emb, sid, st, rows, paths = [], [], [], [], []
    for r, n in enumerate(calls_per):
        path = folder / "audio" / f"{name}{r}.wav"
        paths.append(str(path))
        at = 5 + 11.0 * np.arange(n) + rng.uniform(0, 3, n)
        e = rng.standard_normal((len(starts), 8)).astype(np.float32)
        for a in at:
            inside = (starts <= a) & (starts + WIN >= a + CALL)
            e[inside, :2] += 3.0
            rows.append([path.name, f"{a:.3f}", f"{a + CALL:.3f}", "upcall"])
        emb.append(e)
        sid.append(np.full(len(starts), r))
        st.append(starts)
    st = np.concatenate(st)
    kind = "etr" if name == "tr" else "eva"
    with h5py.File(folder / f"{kind}band-kmeans0.h5", "w") as h:
        h["embeddings"] = np.concatenate(emb)
        h["source_id"] = np.concatenate(sid)
        h["start_s"], h["end_s"] = st, st + WIN
        h["sources/path"] = np.array(paths, dtype=object).astype("S")
        h["sources/duration_s"] = np.full(len(calls_per), DUR)
    return rows, paths


@pytest.mark.parametrize("extra, scales", [
    ([], None),  # every scale, the recipe's previous probe (rows per recording)
    (["--norm", "unit", "--scales", "mad", "peaks"], {"mad", "peaks"}),
])
def test_runs_on_a_quality_folder_and_prints_every_scale(cal, tmp_path, capsys, extra,
                                                         scales):
    rng = np.random.default_rng(1)
    tr_rows, _ = _recordings(tmp_path, "tr", [6, 6, 6, 0, 0, 0], rng)
    va_rows, _ = _recordings(tmp_path, "va", [6, 0], rng)
    for fname, rows in (("train-labels.csv", tr_rows), ("val-truth.csv", va_rows)):
        with open(tmp_path / fname, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "start_s", "end_s", "label"])
            w.writerows(rows)
    assert cal.main([str(tmp_path), *extra]) == 0
    out = capsys.readouterr().out
    assert f"probe norm={'unit' if extra else 'recording'}" in out
    table = {line.split("|")[1].strip(): line for line in out.splitlines()
             if line.startswith("| ") and "scale" not in line}
    assert set(table) == (scales or set(cal.SCALES))
    # calls this clear are all found at the threshold chosen on train
    val_f1 = float(table["mad"].split("|")[3].strip())
    assert val_f1 >= 0.9


def test_an_empty_folder_says_what_to_run(cal, tmp_path, capsys):
    for fname in ("train-labels.csv", "val-truth.csv"):
        (tmp_path / fname).write_text("path,start_s,end_s,label\n")
    assert cal.main([str(tmp_path)]) == 1
    assert "quality.py --tasks upcalls --keep" in capsys.readouterr().out


def test_benchmark_tables_never_print_nan(cal):
    """A metric undefined for a seed (an AP without events) is left out and counted."""
    from _common import mean_sd

    assert mean_sd([0.1, 0.3]) == "0.200±0.141"
    assert mean_sd([0.1, None, float("nan"), 0.3]) == "0.200±0.141 (2 of 4 undefined)"
    assert mean_sd([0.5, None]) == "0.500 (1 of 2 undefined)"
    assert mean_sd([None, None]) == "undefined"
