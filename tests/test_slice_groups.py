"""wsd slice slices short recordings in groups, one task and one shard per group (issue 13):
the output is the same as with one task per file, whatever the front end, labels, silence
dropping, bad files or join; a group is the unit of resumption; a bad file inside a group is
reported as before and does not take the rest of the group with it under --skip-bad."""

import h5py
import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from wsd.io.store import open_file
from wsd.runtime.shards import ShardFolder

SR = 22050


@pytest.fixture
def groups(monkeypatch):
    """Set the files per group (``wsd.pipeline.slice.GROUP_FILES``) for in-process runs."""
    import wsd.pipeline.slice as sl

    def set_(n):
        monkeypatch.setattr(sl, "GROUP_FILES", n)
    return set_


@pytest.fixture
def many(tmp_path):
    """Seven short recordings of different lengths and sounds (one shorter than a window)."""
    d = tmp_path / "many"
    d.mkdir()
    lengths = [1.0, 2.5, 0.2, 1.7, 3.1, 0.01, 1.2]
    for i, s in enumerate(lengths):
        x = tone(SR, s, freq=400 + 350 * i, seed=i)
        x[: len(x) // 3] *= 0.01  # a quiet start: something for --drop-silence to drop
        sf.write(d / f"r{i}.{('wav', 'flac')[i % 2]}", x, SR)
    return d


def contents(path):
    """Every dataset and attribute of an HDF5 file but the history (it holds the time)."""
    out = {}

    def visit(name, obj):
        for k, v in obj.attrs.items():
            if k in ("DIMENSION_LIST", "REFERENCE_LIST"):  # dimension scales, by name
                v = str([[f[r].name for r in rs] for rs in v] if k == "DIMENSION_LIST"
                        else [(f[r].name, i) for r, i in v])
            if k != "history":
                out[f"{name}@{k}"] = v
        if isinstance(obj, h5py.Dataset):
            out[name] = obj.asstr()[()] if obj.dtype.kind == "O" else obj[()]
    with h5py.File(path) as f:
        visit("/", f)
        f.visititems(visit)
    return out


def assert_same_file(a, b, ignore=()):
    ca, cb = contents(a), contents(b)
    assert sorted(ca) == sorted(cb)
    for k in ca:
        x, y = np.asarray(ca[k]), np.asarray(cb[k])
        if k in ("/@wsd_id", *ignore):  # a random id per file
            continue
        assert x.shape == y.shape and x.dtype == y.dtype, k
        np.testing.assert_array_equal(x, y, err_msg=k)


@pytest.mark.parametrize("extra", [
    [],  # the seeds' linear dB front end
    ["--freq-scale", "mel", "--scale", "log1p", "--whiten", "20"],  # wsd's default, whitened
    ["--drop-silence", "--whiten", "20", "--scale", "db"],
    ["--join", "virtual", "--step", "8"],
])
def test_grouped_output_is_identical_to_one_file_per_task(wsd, many, tmp_path, groups, extra):
    lab = tmp_path / "labels.csv"
    lab.write_text("path,start_s,end_s,label\nr1.flac,0.4,1.2,a\nr4.wav,2.0,2.9,b\n"
                   "r3.flac,0.0,0.5,c\n")
    files = sorted(many.iterdir())
    bad = many / "bad.wav"
    bad.write_text("not audio\n" * 50)
    args = [*files[:3], bad, *files[3:], "--labels", lab, "--skip-bad",
            "--sample-rate", SR, *extra]
    outs = []
    for n, name in ((1, "one"), (3, "three"), (64, "all")):
        groups(n)
        out = tmp_path / name / "w.h5"
        out.parent.mkdir()
        r = wsd("slice", *args, "-o", out)
        assert r.code == 0, r.err
        assert "skipped: cannot decode audio" in r.err and "1 skipped as bad" in r.err
        outs.append(out)
    n_shards = [len(list(ShardFolder(o).path.glob("*.h5"))) if ShardFolder(o).path.exists()
                else 0 for o in outs]
    if "virtual" in extra:  # one shard per group with windows (a group may hold only bad)
        assert n_shards == [7, 3, 1]
    for o in outs[1:]:
        assert_same_file(outs[0], o)
    with open_file(outs[-1]) as f:
        assert list(f.sources["status"])[3] == "bad" and f.sources["n_windows"][3] == 0
        assert 3 not in set(f.read("source_id"))
    if "--drop-silence" in extra:
        with h5py.File(outs[-1]) as f:
            assert 0 < len(f["windows"]) < f["activity/windows_sliced"][:].sum()


def test_rollback_of_a_recording_that_fails_part_way(tmp_path):
    """A recording that turns bad after some of its windows were written (to the buffer
    or already to the dataset) leaves none of them in the group's shard."""
    from wsd.io.store.windows import ShardWriter, read_shard

    w = ShardWriter(tmp_path / "s.h5", 4, 3, "float32")
    assert w.chunk > 10
    rows = []
    for k, (n, keep) in enumerate([(5, True), (w.chunk * 2 + 3, False), (7, True),
                                   (3, False), (w.chunk + 1, True)]):
        mark = w.mark()
        x = np.full((n, 4, 3), k, np.float32)
        t = k + np.arange(n) / (2.0 * n)  # times whose integer part is k
        for a in range(0, n, 4):  # appended in pieces, as blocks decode
            w.append(x[a : a + 4], t[a : a + 4], t[a : a + 4] + 0.1)
        if not keep:
            w.rollback(mark)
        rows.append({"n_windows": n if keep else 0, "k": k})
    w.commit(rows, {}, {"x": 1})
    info = read_shard(tmp_path / "s.h5")
    assert list(info.counts) == [5, 0, 7, 0, w.chunk + 1]
    with h5py.File(tmp_path / "s.h5") as f:
        win = f["windows"][:, 0, 0]
    np.testing.assert_array_equal(win, np.repeat([0, 2, 4], [5, 7, w.chunk + 1]))
    np.testing.assert_array_equal(info.rows["start_s"] // 1, win)
    np.testing.assert_array_equal(info.member, np.repeat([0, 2, 4], [5, 7, w.chunk + 1]))


@pytest.mark.parametrize("per_group,seen_before,resumed", [(1, [0, 1, 2], 2),
                                                            (2, [0, 2, 4], 4)])
def test_resume_after_an_interrupted_grouped_run(wsd, many, tmp_path, groups, monkeypatch,
                                                 per_group, seen_before, resumed):
    """Killed at the third task (one file a task, or groups of two starting at files 0, 2,
    4, 6): the two finished shards stay, and the re-run resumes them and ends identical."""
    import wsd.pipeline.slice_file as jobs

    groups(per_group)
    full = tmp_path / "full.h5"
    assert wsd("slice", many, "-o", full).code == 0
    out = tmp_path / "w.h5"
    real = jobs.slice_group
    seen = []

    def dying(task):
        seen.append(task.index)
        if task.index == seen_before[-1]:
            raise KeyboardInterrupt
        return real(task)
    monkeypatch.setattr(jobs, "slice_group", dying)
    r = wsd("slice", many, "-o", out)
    assert r.code == 130 and not out.exists() and seen == seen_before
    assert len(list(ShardFolder(out).path.glob("*.h5"))) == 2
    monkeypatch.setattr(jobs, "slice_group", real)
    r = wsd("slice", many, "-o", out)
    assert r.code == 0 and f"{resumed} resumed" in r.err, r.err
    assert_same_file(full, out)


def test_bad_file_inside_a_group(wsd, many, tmp_path, groups):
    """Without --skip-bad: one error line naming the file, exit 65, no output; the groups
    finished before it stay for the re-run. With it: the rest of the group is kept."""
    groups(3)  # [r0 r1 r2] [r3 nan r4] [r5 r6]
    x = tone(SR, 9.0, seed=9)
    x[int(8.5 * SR)] = np.nan  # found after whole blocks of its windows were written
    sf.write(many / "nan.wav", x, SR, subtype="FLOAT")
    files = sorted(p for p in many.iterdir() if p.name != "nan.wav")
    args = [*files[:4], many / "nan.wav", *files[4:]]
    out = tmp_path / "w.h5"
    r = wsd("slice", *args, "-o", out, "--sample-rate", SR)
    assert r.code == 65, r.err
    lines = [ln for ln in r.err.splitlines() if not ln.startswith("wsd slice: warning: ")]
    reason = "contains NaN or infinite samples (first at 8.500 s, 1 frame(s) in that block)"
    assert lines == [f"wsd: error: {many / 'nan.wav'}: {reason}"], r.err
    assert not out.exists() and len(list(ShardFolder(out).path.glob("*.h5"))) == 1
    r = wsd("slice", *args, "-o", out, "--sample-rate", SR, "--skip-bad")
    assert r.code == 0 and "3 resumed" in r.err and "1 skipped as bad" in r.err, r.err
    assert [ln for ln in r.err.splitlines() if "skipped:" in ln] == [
        f"wsd slice: warning: {many / 'nan.wav'}: skipped: {reason}"], r.err
    good = tmp_path / "good.h5"
    assert wsd("slice", *files, "-o", good, "--sample-rate", SR).code == 0
    with open_file(out) as a, open_file(good) as b:
        assert list(a.sources["status"]) == ["short", "ok", "short", "ok", "bad", "ok",
                                             "short", "short"]
        assert a.sources["n_windows"][4] == 0 and "NaN" in a.sources["message"][4]
        np.testing.assert_array_equal(a.read("windows"), b.read("windows"))
        sid = a.read("source_id")
        np.testing.assert_array_equal(np.where(sid > 4, sid - 1, sid), b.read("source_id"))
        np.testing.assert_array_equal(a.read("start_s"), b.read("start_s"))


@pytest.mark.parametrize("per_group", [2, 3])  # 3: 3 groups, cut again into 4 for 2 workers
def test_workers_with_groups_equal_single(wsd, many, tmp_path, groups, per_group):
    groups(per_group)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert wsd("slice", many, "-o", a).code == 0
    assert wsd("slice", many, "-o", b, "--workers", "2").code == 0
    assert_same_file(a, b, ignore=("/@params_json", "/@workers"))


def test_grouping_by_size_and_count(tmp_path):
    from wsd.pipeline.slice import group_files

    sizes = [10, 10, 100, 10, 10, 10, 10, 60, 0, 10]
    files = []
    for i, n in enumerate(sizes):
        files.append(tmp_path / f"f{i}")
        files[-1].write_bytes(b"x" * n)
    files.insert(3, tmp_path / "missing")
    g = group_files(files, limit_bytes=50, most_files=3)
    assert [list(r) for r in g] == [[0, 1], [2], [3, 4, 5], [6, 7], [8], [9, 10]]
    assert [list(r) for r in group_files(files[:1])] == [[0]] and group_files([]) == []
    lossy = []
    for name, n in (("a.wav", 10), ("b.flac", 10), ("c.mp3", 5), ("d.ogg", 1)):
        lossy.append(tmp_path / name)
        lossy[-1].write_bytes(b"x" * n)
    # c.mp3 counts 40 bytes (8 times): over 50 with the two before it, under with d.ogg (8)
    assert [list(r) for r in group_files(lossy, limit_bytes=50)] == [[0, 1], [2, 3]]


def test_groups_come_in_a_multiple_of_the_workers(tmp_path):
    """Short files only: a number of groups that two (or more) workers cannot share evenly
    is raised to the next multiple, cut at equal shares of the bytes; a file as large as
    the limit, a number that is already a multiple, or a share left without files keep the
    plain grouping."""
    from wsd.pipeline.slice import group_files

    def make(sizes, name="f"):
        out = []
        for i, n in enumerate(sizes):
            out.append(tmp_path / f"{name}{i}")
            out[-1].write_bytes(b"x" * n)
        return out

    nine = make([10] * 9)
    assert [len(r) for r in group_files(nine, limit_bytes=30)] == [3, 3, 3]
    assert [len(r) for r in group_files(nine, limit_bytes=30, workers=3)] == [3, 3, 3]
    two = group_files(nine, limit_bytes=30, workers=2)
    assert [len(r) for r in two] == [2, 2, 3, 2] and two[0].start == 0 and two[-1].stop == 9
    assert [r.start for r in two[1:]] == [r.stop for r in two[:-1]]  # consecutive, all
    # 55 bytes in 3 groups, then 4 shares of 13.75: a file goes where its middle byte falls
    uneven = make([5, 5, 5, 5, 20, 5, 5, 5], "u")
    assert [list(r) for r in group_files(uneven, limit_bytes=25, workers=2)] == \
        [[0, 1, 2], [3], [4], [5, 6, 7]]
    big = make([10, 10, 30, 10], "b")  # a file as large as the limit stays as it was
    assert group_files(big, limit_bytes=30, workers=2) == group_files(big, limit_bytes=30)
    # the cap on files per group holds
    assert all(len(r) <= 2 for r in group_files(nine, limit_bytes=30, most_files=2,
                                                 workers=2))


def test_a_shard_made_under_skip_bad_is_not_reused_without_it(wsd, many, tmp_path, groups):
    groups(3)
    bad = many / "r3.flac"
    bad.write_bytes(b"not audio" * 100)
    out = tmp_path / "w.h5"
    args = (many, "-o", out, "--sample-rate", SR, "--join", "virtual")
    assert wsd("slice", *args, "--skip-bad").code == 0  # [r0 r1 r2] [r3 r4 r5] [r6]
    r = wsd("slice", *args, "--force")
    assert r.code == 65 and f"wsd: error: {bad}: cannot decode audio" in r.err, r.err
    r = wsd("slice", *args, "--force", "--skip-bad")
    assert r.code == 0 and "6 resumed" in r.err and f"{bad}: skipped: cannot decode" in r.err
