"""wsd slice joins each finished shard into the output while later ones are sliced (in input
order, a merge copying its windows at once, whole chunks as stored where it can): the
output is the same as a join after every task, with one worker or two, merged or mapped;
a failure part way leaves no output and no temporary, and the finished shards resume."""

import h5py
import numpy as np
import pytest
import soundfile as sf

from conftest import SEED_SLICE, tone
from test_slice_groups import assert_same_file
from wsd.runtime.shards import ShardFolder

SR = 22050
#: What the join needs of a header to write a windows file.
HEADER = {"params": {}, "spectrogram": {"sample_rate": SR, "hop_length": 256}, "history": []}


def _shard(path, n, seed, frames=3, bins=5):
    """A finished shard of ``n`` windows (one recording) of random values."""
    from wsd.io.store.windows import ShardWriter
    from wsd.pipeline.slice_file import bad_row

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, frames, bins)).astype(np.float16)
    w = ShardWriter(path, frames, bins, "float16")
    for a in range(0, n, 2):  # appended a few windows at a time, as a recording decodes
        w.append(x[a : a + 2], np.arange(a, min(n, a + 2)) * 1.0,
                 np.arange(a, min(n, a + 2)) + 1.0)
    row = {**bad_row(str(path), ""), "status": "ok", "n_windows": n}
    w.commit([row], {}, {"fingerprint": path.name})
    return x


@pytest.mark.parametrize("mode,limit", [("merge", None), ("auto", None), ("auto", 1000),
                                        ("virtual", None)])
def test_join_shard_by_shard_equals_the_concatenation(tmp_path, monkeypatch, mode, limit):
    """Shards of 0 to 9 windows around chunks of 4 (some whole chunks, some straddling two
    output chunks; one shard chunked otherwise, copied by slices), joined one by one: the
    windows and rows are the shards' in order. ``auto`` with a 1000-byte limit starts
    merging, then maps the shards once they pass it."""
    import wsd.io.store.windows as W

    monkeypatch.setattr(W, "CHUNK_BYTES", 4 * 3 * 5 * 2)  # 4 windows a chunk
    folder = tmp_path / "out.h5.shards"
    folder.mkdir()
    sizes = [3, 0, 9, 4, 1, 8, 2, 6, 5]
    want, shards = [], []
    for k, n in enumerate(sizes):
        if k == 7:
            monkeypatch.setattr(W, "CHUNK_BYTES", 3 * 3 * 5 * 2)  # chunks of 3: not raw
        shards.append(folder / f"{k:07d}-{k:016x}.h5")
        want.append(_shard(shards[-1], n, seed=k))
        monkeypatch.setattr(W, "CHUNK_BYTES", 4 * 3 * 5 * 2)
    want = np.concatenate(want)
    tmp = tmp_path / "out.h5"
    j = W.Join(tmp, "out.h5", frames=3, bins=5, dtype="float16", mode=mode,
               row_names=["start_s", "end_s", "padded"], limit_bytes=limit)
    for s in shards:
        j.add(s)
    seen, pending = [], j.pending
    n, used = j.finish(freqs=np.arange(5.0), progress=seen.append,
                       header=HEADER)
    assert n == len(want) == sum(sizes)
    assert used == ("virtual" if mode == "virtual" or limit else "merge")
    with h5py.File(tmp) as f:
        got = f["windows"][:]
        assert got.view(np.uint16).tolist() == want.view(np.uint16).tolist()  # bit for bit
        sid = f["source_id"][:]
        assert sid.tolist() == np.repeat(np.arange(len(sizes)), sizes).tolist()
        assert f["start_s"][:].tolist() == [float(a) for n in sizes for a in range(n)]
        assert f["sources/n_windows"][:].tolist() == sizes
        assert f.attrs["layout"] == used
        if used == "merge":
            assert f["windows"].chunks == (4, 3, 5) and f["windows"].maxshape[0] is None
            assert "window" in f and len(f["window"]) == n and f["window"].maxshape == (n,)
    if used == "merge":
        assert pending == 0 and seen == []  # every shard was copied as it came


def test_join_of_fewer_windows_than_a_chunk_is_fixed_size(tmp_path):
    """A join that never filled a chunk is written at the end as before: fixed size, one
    chunk of exactly its windows."""
    from wsd.io.store.windows import Join

    folder = tmp_path / "out.h5.shards"
    folder.mkdir()
    a = _shard(folder / "0000000-0000000000000000.h5", 3, 0)
    b = _shard(folder / "0000001-0000000000000001.h5", 2, 1)
    j = Join(tmp_path / "out.h5", "out.h5", frames=3, bins=5, dtype="float16", mode="merge",
             row_names=["start_s", "end_s", "padded"])
    j.add(folder / "0000000-0000000000000000.h5")
    j.add(folder / "0000001-0000000000000001.h5")
    assert j.pending == 5
    j.finish(freqs=np.arange(5.0), header=HEADER)
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["windows"].maxshape == (5, 3, 5) and f["windows"].chunks == (5, 3, 5)
        np.testing.assert_array_equal(f["windows"][:], np.concatenate([a, b]))


@pytest.fixture
def mixed(tmp_path):
    """Short and long recordings (groups of short ones, a long one alone), together several
    chunks of windows."""
    d = tmp_path / "mixed"
    d.mkdir()
    for i, s in enumerate([2.0, 0.3, 3.0, 30.0, 1.5, 2.5, 20.0, 0.9, 4.0]):
        sf.write(d / f"r{i}.{('wav', 'flac')[i % 2]}", tone(SR, s, freq=300 + 400 * i, seed=i),
                 SR)
    return d


def test_workers_and_joins_agree_on_short_and_long_files(wsd, mixed, tmp_path, monkeypatch):
    """--workers 2 against 1 (groups of at most 3 files, so the tasks finish out of order
    and the join waits for the earlier ones), merged and mapped: the same file."""
    import wsd.pipeline.slice as sl

    monkeypatch.setattr(sl, "GROUP_FILES", 3)
    outs = {}
    for name, extra in (("one", []), ("two", ["--workers", "2"]),
                        ("virtual", ["--join", "virtual"])):
        outs[name] = tmp_path / name / "w.h5"
        outs[name].parent.mkdir()
        r = wsd("slice", *SEED_SLICE, "--step", "4", mixed, "-o", outs[name], *extra)
        assert r.code == 0, r.err
    with h5py.File(outs["one"]) as f:
        assert f["windows"].maxshape[0] is None  # joined shard by shard
        assert len(f["windows"]) > 3 * f["windows"].chunks[0]
    assert_same_file(outs["one"], outs["two"], ignore=("/@params_json", "/@workers"))
    assert_same_file(outs["one"], outs["virtual"],
                     ignore=("/@params_json", "/@join", "/@layout"))
    with h5py.File(outs["virtual"]) as f:
        assert f["windows"].is_virtual


def test_a_failure_part_way_leaves_no_output_and_keeps_the_shards(wsd, mixed, tmp_path,
                                                                  monkeypatch):
    """The third task fails while the output already holds the first two shards' windows:
    exit 65, no output and no temporary left, the two finished shards kept; the re-run
    resumes them and ends identical to an uninterrupted run."""
    import wsd.pipeline.slice as sl
    import wsd.pipeline.slice_file as jobs
    from wsd.errors import BadInputError

    monkeypatch.setattr(sl, "GROUP_FILES", 3)
    full = tmp_path / "full.h5"
    assert wsd("slice", *SEED_SLICE, mixed, "-o", full).code == 0
    out = tmp_path / "w.h5"
    real = jobs.slice_group
    temps = []

    def failing(task):
        if task.index == 6:  # the third task (r6 r7 r8)
            temps.extend(p for p in tmp_path.iterdir() if p.name.startswith(".w.h5.")
                         and p.name.endswith(".tmp"))
            raise BadInputError("cannot decode audio (test)", task.names[0])
        return real(task)
    monkeypatch.setattr(jobs, "slice_group", failing)
    r = wsd("slice", *SEED_SLICE, mixed, "-o", out)
    assert r.code == 65 and "cannot decode audio (test)" in r.err, r.err
    assert len(temps) == 1  # the output was being written
    assert not out.exists() and not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))
    assert len(list(ShardFolder(out).path.glob("*.h5"))) == 2
    monkeypatch.setattr(jobs, "slice_group", real)
    r = wsd("slice", *SEED_SLICE, mixed, "-o", out)
    assert r.code == 0 and "6 resumed" in r.err, r.err  # the files of the first two tasks
    assert_same_file(full, out)
