"""The files a report is made of: the ones given, and the ones they were made from.

An embeddings file names its windows file and model in its parameters, a detections file its
windows, a clusters file its embeddings; :func:`collect` opens what is given and, with
``follow``, the files they point to (paths as written, tried relative to the working folder,
then to the folder of the file that names them). Everything is read through ``wsd.io.store``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from wsd.errors import BadInputError, UsageError
from wsd.io.store.kinds import KINDS

@dataclass
class Item:
    """One wsd file in the report: its path, kind, unique short ``name`` (for figure file
    names), whether it was ``given`` on the command line, and its open handle."""

    path: Path
    kind: str
    name: str
    given: bool
    f: object = None  # wsd.io.store.WsdFile, or None for models (read with load_model)
    params: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)  # "windows"/"model"/"embeddings" -> Item

    @property
    def display(self) -> str:
        """The file's name, for titles."""
        return self.path.name

    def attr(self, key: str, default=None):
        """A root attribute (as written by ``set_attrs``), else the parameter, else default."""
        if self.f is not None:
            root = self.f.attrs("/")
            if key in root:
                return root[key]
        return self.params.get(key, default)


def resolve_reference(value: str, referrer: Path) -> Path | None:
    """The existing file a parameter ``value`` names: as written (from the working folder),
    else relative to the referring file's folder, else its bare name there; None if none."""
    p = Path(value)
    for cand in (p, referrer.parent / p, referrer.parent / p.name):
        if cand.is_file():
            return cand
    return None


class Collection(contextlib.AbstractContextManager):
    """Open files of a report, by kind; closes them on exit."""

    def __init__(self):
        self.items: list[Item] = []
        self._by_path: dict[Path, Item] = {}

    def __exit__(self, *exc):
        for it in self.items:
            if it.f is not None:
                it.f.close()

    def discard(self, item: Item) -> None:
        """Close and forget an item that turned out not to belong to the report."""
        self.items.remove(item)
        self._by_path.pop(item.path.resolve(), None)
        if item.f is not None:
            item.f.close()

    def of_kind(self, kind: str) -> list[Item]:
        return [it for it in self.items if it.kind == kind]

    def _unique_name(self, path: Path) -> str:
        base = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem) or "input"
        names = {it.name for it in self.items}
        name, i = base, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        return name

    def add(self, path: Path, given: bool) -> Item:
        from wsd.io.store import open_file

        key = path.resolve()
        if key in self._by_path:
            it = self._by_path[key]
            it.given = it.given or given
            return it
        f = open_file(path)
        it = Item(path=path, kind=f.kind, name=self._unique_name(path), given=given, f=f,
                  params=f.params)
        self.items.append(it)
        self._by_path[key] = it
        return it


def collect(paths: list, follow: bool = True,
            warn: Callable[[str, str | None], None] = lambda msg, path=None: None) -> Collection:
    """Open every input (any wsd kind) and, with ``follow``, the files they were made from.

    Raises InputMissingError / BadInputError for a given file that is missing or not a wsd
    file; a referenced file that cannot be found is only warned about (its figures are left
    out).
    """
    if not paths:
        raise UsageError("give at least one wsd file to report on")
    col = Collection()
    try:
        todo = [col.add(Path(p), True) for p in paths]
        done: set[str] = set()
        while todo:
            it = todo.pop(0)
            if it.name in done:
                continue
            done.add(it.name)
            for param, kind in KINDS[it.kind].references.items():
                value = it.params.get(param)
                if not value:
                    continue
                found = resolve_reference(str(value), it.path)
                if found is None:
                    if follow:
                        warn(f"its {param} file {value} was not found; figures that need it "
                             "are left out", str(it.path))
                    continue
                if not follow and found.resolve() not in col._by_path:
                    continue
                new = found.resolve() not in col._by_path
                try:
                    ref = col.add(found, False)
                except BadInputError as e:
                    warn(f"its {param} file: {e}", str(it.path))
                    continue
                if ref.kind != kind:
                    warn(f"its {param} file {found} is a {ref.kind} file, not {kind}",
                         str(it.path))
                    continue
                want = it.params.get(f"{param}_id")
                have = ref.f.file_id if ref.f is not None else None
                if want and have and want != have:
                    warn(f"its {param} file {found} is not the file it was made from (another "
                         f"file of that name: its wsd_id differs); figures that need it are "
                         "left out", str(it.path))
                    if new:
                        col.discard(ref)
                    continue
                it.refs[param] = ref
                todo.append(ref)
    except BaseException:
        col.__exit__(None, None, None)
        raise
    return col


def label_mask(f, positive: str | None, block: int = 1 << 18
               ) -> tuple[np.ndarray, dict[str, int]]:
    """``(n,)`` bool of a file's ``label`` dataset (== ``positive``; non-empty when
    ``positive`` is None, "" or "*", wsd.models.targets's "any label") and the count of every
    non-empty label, read ``block`` rows at a time."""
    from wsd.models.targets import ANY

    if positive in ("", ANY):
        positive = None
    n = f.n
    out = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}
    for a in range(0, n, block):
        lab = np.asarray(f.read("label", slice(a, min(n, a + block))), dtype=object).astype(str)
        out[a:a + len(lab)] = (lab == positive) if positive is not None else (lab != "")
        names, c = np.unique(lab[lab != ""], return_counts=True)
        for k, v in zip(names.tolist(), c.tolist()):
            counts[k] = counts.get(k, 0) + v
    return out, counts


class WindowsData:
    """Per-window columns of a windows file and spectrogram reads from it.

    ``source_id`` ``(n,)`` int, ``start_s``/``end_s`` ``(n,)`` s, ``label`` ``(n,)`` str ("" =
    none) or None, ``freqs`` ``(bins,)`` Hz, ``hop_s`` frame hop in s, ``offset_s`` from a
    frame's start to its centre in s, ``paths`` and ``durations`` per source.
    """

    def __init__(self, item: Item):
        f = item.f
        self.item = item
        self.f = f
        self.n = f.n
        self.source_id = np.asarray(f.read("source_id"), dtype=np.int64)
        self.start_s = np.asarray(f.read("start_s"), dtype=np.float64)
        self.end_s = np.asarray(f.read("end_s"), dtype=np.float64)
        self.has_label = f.has("label")
        spec = f.spectrogram or {}
        sr = float(spec.get("sample_rate") or 0)
        if sr <= 0:
            raise BadInputError("its spectrogram settings give no sample rate", item.path)
        self.sample_rate = sr
        self.hop_s = float(spec.get("hop_length", 256)) / sr
        self.offset_s = float(spec.get("n_fft", 512)) / (2 * sr)
        self.frames, self.bins = f.shape("windows")[1:]
        self.freqs = (np.asarray(f.read("freqs"), dtype=np.float64) if f.has("freqs")
                      else np.arange(self.bins) * sr / float(spec.get("n_fft", 512)))
        src = f.sources
        self.paths = [str(p) for p in src.get("path", [])]
        self.durations = np.asarray(src.get("duration_s", []), dtype=np.float64)

    def rows(self, idx) -> np.ndarray:
        """Windows at indices ``idx`` (any order) -> ``(k, frames, bins)`` float32 dB."""
        idx = np.asarray(idx, dtype=np.int64)
        if not idx.size:
            return np.zeros((0, self.frames, self.bins), np.float32)
        uniq, inv = np.unique(idx, return_inverse=True)
        if uniq[-1] - uniq[0] + 1 <= 4 * len(uniq):  # nearly contiguous: one slice read
            block = self.f.read("windows", slice(int(uniq[0]), int(uniq[-1]) + 1))
            got = block[uniq - uniq[0]]
        else:
            got = self.f.read("windows", uniq)
        return np.asarray(got, dtype=np.float32)[inv.reshape(-1)]

    def labels_at(self, idx) -> np.ndarray | None:
        """Labels ``(k,)`` str ("" = none) of the windows at indices ``idx`` (any order, read
        as one block from the lowest to the highest), or None without labels."""
        if not self.has_label:
            return None
        idx = np.asarray(idx, dtype=np.int64)
        if not idx.size:
            return np.zeros(0, dtype=str)
        block = self.f.read("label", slice(int(idx.min()), int(idx.max()) + 1))
        return np.asarray(block, dtype=object)[idx - idx.min()].astype(str)

    def labelled(self) -> tuple[np.ndarray, dict[str, int]]:
        """``(n,)`` bool: windows with a label, and the count of each label (read in
        blocks, so an archive's labels are never all held as strings)."""
        return label_mask(self.f, None)

    def source_rows(self, sid: int, t0: float, t1: float) -> np.ndarray:
        """Indices of the windows of source ``sid`` overlapping ``[t0, t1)``, in time order."""
        sel = np.flatnonzero((self.source_id == sid) & (self.end_s > t0) & (self.start_s < t1))
        return sel[np.argsort(self.start_s[sel], kind="stable")]

    def duration(self, sid: int) -> float:
        """Duration of source ``sid`` (s): the sources table's, else its last window's end."""
        if 0 <= sid < len(self.durations) and self.durations[sid] > 0:
            return float(self.durations[sid])
        ends = self.end_s[self.source_id == sid]
        return float(ends.max()) if ends.size else 0.0

    def source_name(self, sid: int) -> str:
        return Path(self.paths[sid]).name if 0 <= sid < len(self.paths) else f"source {sid}"
