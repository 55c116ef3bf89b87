"""Stream windows from a windows file for training: runs of consecutive windows are read
(about 15,000 windows/s, against 2,000/s for single random reads) and shuffled through a
buffer, so files much larger than memory train with bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


#: Below this variance (dB^2) the training windows are taken as constant.
MIN_VARIANCE_DB2 = 1e-6
#: With fewer recordings than this, validation takes the end of every recording instead
#: of whole recordings (holding out one of four recordings would drop a quarter of them).
MIN_RECORDINGS_WHOLE = 10
#: Validation never takes more than this multiple of --val-fraction of the windows.
MAX_VAL_OVERSHOOT = 1.5


@dataclass
class Split:
    """Training and validation window indices, what was done, and warnings for the user."""

    train: np.ndarray
    val: np.ndarray
    note: str
    warnings: list[str] = field(default_factory=list)


def split_by_source(source_id: np.ndarray, val_fraction: float, seed: int,
                    labels: np.ndarray | None = None) -> Split:
    """Hold out about ``val_fraction`` of the windows for validation, keeping most of the
    data, and every recording and class, for training.

    * With at least :data:`MIN_RECORDINGS_WHOLE` recordings, whole recordings are held out
      (neighbouring windows of one recording would otherwise leak), drawn in a seeded order,
      never more than half of them nor more than ``MAX_VAL_OVERSHOOT * val_fraction`` of the
      windows.
    * With fewer, the last ``val_fraction`` of every recording (a contiguous block) is held
      out instead: all recordings stay in training.
    * ``labels`` ``(n,)`` (class ids, -1 unused): the split is stratified: a class found in
      fewer than two recordings, or that the draw would leave out of either side, has the
      end of each of its recordings held out, so both sides see every class.
    A split that still leaves a class out of one side, or holds out much more than asked,
    comes with a warning."""
    n = len(source_id)
    idx = np.arange(n)
    if val_fraction <= 0:
        return Split(idx, idx[:0], "no validation split (--val-fraction 0)")
    source_id = np.asarray(source_id)
    sources, counts = np.unique(source_id, return_counts=True)
    if n < 2:
        raise BadInputError(f"only {n} window(s): too few to hold out a validation part")
    is_val = np.zeros(n, bool)
    if len(sources) >= MIN_RECORDINGS_WHOLE:
        rng = np.random.default_rng(seed)
        target, cap = val_fraction * n, MAX_VAL_OVERSHOOT * val_fraction * n
        chosen, total = [], 0
        for i in rng.permutation(len(sources)):
            if total >= target or len(chosen) >= len(sources) // 2:
                break
            if total + counts[i] <= cap:
                chosen.append(sources[i])
                total += counts[i]
        is_val = np.isin(source_id, chosen)
        how = f"{len(chosen)} of {len(sources)} recordings"
    else:
        is_val = _tails(source_id, np.ones(n, bool), val_fraction)
        how = f"the last {val_fraction:.0%} of each of the {len(sources)} recordings"
    if labels is not None:
        is_val = _stratify(source_id, np.asarray(labels), is_val, val_fraction)
    split = Split(idx[~is_val], idx[is_val], f"validation: {how}, {int(is_val.sum())} windows")
    if labels is not None:
        labels = np.asarray(labels)
        for c in np.unique(labels[labels >= 0]):
            where = labels == c
            if not (where & ~is_val).any() or not (where & is_val).any():
                side = "training" if not (where & ~is_val).any() else "validation"
                split.warnings.append(f"class {int(c)} has no window in {side} (it is in too "
                                      "few windows to split)")
    if is_val.sum() > MAX_VAL_OVERSHOOT * val_fraction * n + 1:
        split.warnings.append(f"validation holds {is_val.mean():.0%} of the windows (asked "
                              f"{val_fraction:.0%}): recordings are few or very unequal")
    if not (~is_val).any():
        raise BadInputError("no window left for training after the validation split")
    return split


def _tails(source_id: np.ndarray, among: np.ndarray, fraction: float) -> np.ndarray:
    """Mask of the last ``fraction`` of the windows of each recording (in row order) among
    the rows where ``among``; a recording with one such window keeps it for training."""
    out = np.zeros(len(source_id), bool)
    for s in np.unique(source_id[among]):
        rows = np.flatnonzero(among & (source_id == s))
        k = int(round(len(rows) * fraction))
        if len(rows) >= 2:
            out[rows[len(rows) - max(1, k):]] = True
    return out


def _stratify(source_id, labels, is_val, fraction) -> np.ndarray:
    """Move classes missing from one side: such a class's windows are split by their
    recordings' ends instead (its windows drawn whole go back to training first)."""
    is_val = is_val.copy()
    for c in np.unique(labels[labels >= 0]):
        where = labels == c
        if (where & is_val).any() and (where & ~is_val).any():
            continue
        recs = np.unique(source_id[where])
        rows = np.isin(source_id, recs) & where
        is_val[rows] = False
        is_val |= _tails(source_id, rows, fraction)
    return is_val


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
    var = s2 / cnt - mean * mean
    if not (np.isfinite(mean) and np.isfinite(var)):
        raise BadInputError("windows hold NaN or infinite values; nothing was written "
                            "(re-slice the audio)", path)
    if var < MIN_VARIANCE_DB2:
        raise BadInputError(f"the training windows are constant ({mean:.1f} dB): there is "
                            "nothing to learn (digital silence?)", path)
    return float(mean), float(np.sqrt(var))


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
        from wsd.runtime.signals import ignore_in_worker

        kw = {"num_workers": workers, "persistent_workers": True, "prefetch_factor": 4,
              "worker_init_fn": lambda _: ignore_in_worker()}
    return torch.utils.data.DataLoader(ds, batch_size=None,
                                       generator=torch.Generator().manual_seed(seed), **kw)
