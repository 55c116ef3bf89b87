"""Stream windows from a windows file for training: runs of consecutive windows are read
(about 15,000 windows/s, against 2,000/s for single random reads) and shuffled through a
buffer, so files much larger than memory train with bounded memory.
"""

from __future__ import annotations

import numpy as np

from wsd.errors import BadInputError
from wsd.models.targets import prepare


def make_runs(source_id: np.ndarray, index: np.ndarray, run: int) -> np.ndarray:
    """Cut sorted window indices into runs ``(k, 2)`` of [start, stop) of at most ``run``
    consecutive windows, never crossing a recording."""
    if len(index) == 0:
        return np.zeros((0, 2), np.int64)
    index = np.sort(index)
    brk = np.flatnonzero((np.diff(index) != 1) | (np.diff(source_id[index]) != 0)) + 1
    runs = []
    for seg in np.split(index, brk):
        for a in range(0, len(seg), run):
            part = seg[a : a + run]
            runs.append((part[0], part[-1] + 1))
    return np.asarray(runs, np.int64)


def split_by_source(source_id: np.ndarray, val_fraction: float, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, str]:
    """Train and validation window indices, split by recording (never by window).

    Recordings are drawn in a seeded order into validation until it holds ``val_fraction``
    of the windows. With a single recording, its last ``val_fraction`` (a contiguous block)
    is held out instead, and the returned note says so.
    """
    n = len(source_id)
    idx = np.arange(n)
    if val_fraction <= 0:
        return idx, idx[:0], "no validation split (--val-fraction 0)"
    sources, counts = np.unique(source_id, return_counts=True)
    if len(sources) < 2:
        k = max(1, int(round(n * val_fraction)))
        if n - k < 1:
            raise BadInputError(f"only {n} window(s): too few to hold out a validation part")
        return idx[: n - k], idx[n - k :], ("one recording only: validation is its last "
                                            f"{k} windows (a contiguous block)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sources))
    target = val_fraction * n
    val_src, total = [], 0
    for i in order[:-1]:  # keep at least one recording for training
        if total >= target:
            break
        val_src.append(sources[i])
        total += counts[i]
    is_val = np.isin(source_id, val_src)
    note = f"validation: {len(val_src)} of {len(sources)} recordings, {int(is_val.sum())} windows"
    return idx[~is_val], idx[is_val], note


def subsample_runs(runs: np.ndarray, max_windows: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of runs holding at most ``max_windows`` windows."""
    if not max_windows or (runs[:, 1] - runs[:, 0]).sum() <= max_windows:
        return runs
    rng = np.random.default_rng([seed, 7])
    picked, total = [], 0
    for i in rng.permutation(len(runs)):
        a, b = runs[i]
        take = min(b - a, max_windows - total)
        picked.append((a, a + take))
        total += take
        if total >= max_windows:
            break
    return np.asarray(sorted(picked), np.int64)


def norm_stats(path: str, runs: np.ndarray, limit: int = 20000) -> tuple[float, float]:
    """Mean and standard deviation (dB) over up to ``limit`` windows of ``runs``."""
    from wsd.io.store.reader import read_rows

    s = s2 = cnt = 0.0
    step = max(1, len(runs) // max(1, limit // 64))
    for a, b in runs[::step]:
        x = read_rows(path, "windows", int(a), int(min(b, a + 64))).astype(np.float64)
        s += x.sum()
        s2 += (x * x).sum()
        cnt += x.size
        if cnt >= limit * x[0].size:
            break
    mean = s / cnt
    std = float(np.sqrt(max(s2 / cnt - mean * mean, 1e-12)))
    return float(mean), std


def _torch_dataset():
    import torch

    class WindowBatches(torch.utils.data.IterableDataset):
        """Yields normalised float32 batches ``(batch, frames, bins)``.

        Runs are dealt to DataLoader workers in a per-epoch seeded order; within a worker,
        units of ``seq`` consecutive windows pass through a shuffle buffer of ``buffer``
        units. The order depends only on (seed, epoch, number of workers), so a resumed run
        sees the same batches as an uninterrupted one.
        """

        def __init__(self, path, runs, batch_size, mean, std, *, seed=0, shuffle=True,
                     buffer=4096, seq=1, epoch=0, targets=None, input_kind="spectrogram",
                     rank=0, world=1):
            self.path, self.runs = str(path), np.asarray(runs)
            self.targets, self.input_kind = targets, input_kind
            self.rank, self.world = rank, world
            self.batch_size, self.mean, self.std = batch_size, mean, std
            self.seed, self.shuffle, self.buffer, self.seq = seed, shuffle, buffer, seq
            self.epoch = epoch

        def __iter__(self):
            from wsd.io.store.reader import read_rows

            info = torch.utils.data.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info else (0, 1)
            epoch = self.epoch
            self.epoch += 1  # persistent workers: the next __iter__ is the next epoch
            order = (np.random.default_rng([self.seed, epoch]).permutation(len(self.runs))
                     if self.shuffle else np.arange(len(self.runs)))
            rng = np.random.default_rng([self.seed, epoch, self.rank, wid, 1])
            order = order[self.rank :: self.world]  # torchrun: this rank's share
            per = max(1, self.batch_size // self.seq)
            pool: list[np.ndarray] = []
            out: list[np.ndarray] = []

            def batch(units):
                x = torch.from_numpy(np.concatenate([u[0] for u in units]))
                if self.targets is None:
                    return x
                return x, torch.from_numpy(np.concatenate([u[1] for u in units]))

            def emit(unit):
                out.append(unit)
                if len(out) == per:
                    t = batch(out)
                    out.clear()
                    return t
                return None

            for r in order[wid::nw]:
                a, b = self.runs[r]
                x = read_rows(self.path, "windows", int(a), int(b))
                y = None
                if self.targets is not None:  # classifiers: windows without a class left out
                    y = self.targets[a:b]
                    keep = y >= 0
                    x, y = x[keep], y[keep]
                x = prepare(x, self.input_kind, self.mean, self.std)
                units = [(x[i : i + self.seq], None if y is None else y[i : i + self.seq])
                         for i in range(0, len(x) - self.seq + 1, self.seq)]
                if not self.shuffle:
                    for u in units:
                        t = emit(u)
                        if t is not None:
                            yield t
                    continue
                pool.extend(units)
                while len(pool) > self.buffer:
                    j = int(rng.integers(len(pool)))
                    pool[j], pool[-1] = pool[-1], pool[j]
                    t = emit(pool.pop())
                    if t is not None:
                        yield t
            if self.shuffle:
                for j in rng.permutation(len(pool)):
                    t = emit(pool[j])
                    if t is not None:
                        yield t
            # a last batch of one window is dropped in training (BatchNorm needs two)
            if out and (not self.shuffle or sum(len(u[0]) for u in out) > 1):
                yield batch(out)

    return WindowBatches


def loader(path, runs, batch_size, mean, std, *, seed=0, shuffle=True, seq=1, workers=0,
           buffer=4096, epoch=0, targets=None, input_kind="spectrogram", rank=0, world=1):
    """A torch DataLoader over :class:`WindowBatches` (batches formed in the dataset)."""
    import torch

    ds = _torch_dataset()(path, runs, batch_size, mean, std, seed=seed, shuffle=shuffle,
                          buffer=buffer, seq=seq, epoch=epoch, targets=targets,
                          input_kind=input_kind, rank=rank, world=world)
    kw = {}
    if workers > 0:
        kw = {"num_workers": workers, "persistent_workers": True, "prefetch_factor": 4}
    return torch.utils.data.DataLoader(ds, batch_size=None,
                                       generator=torch.Generator().manual_seed(seed), **kw)
