"""The spectrogram frames behind sequences of windows, and the fused distance.

``wsd cluster --distance fused`` and ``wsd search --match fused`` compare two sequences by
two distances at once: the cosine distance of their pooled embeddings (what the encoder
learned: timbre, texture, the rough contour) and the DTW distance of the front end's own
frames (the exact shape of the call in time, which pooling loses). Each distance is divided
by its standard deviation over the pairs, and the two are averaged (:func:`fuse`), so
neither dominates by its units. Measured on both call-type sets (benchmarks/README.md).

The frames are those of the windows file the embeddings were made from: each recording's
frames are rebuilt from its overlapping windows (:func:`recording_frames`), every
``FRAME_STRIDE``-th kept, and each sequence is whitened on its own (:func:`whiten`): each
band's ``FLOOR_Q``-th percentile over the sequence subtracted, then the sequence
standardised, so a call is compared by its shape above its own noise floor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsd.errors import BadInputError, InputMissingError

#: Every this many spectrogram frames are kept for the frame DTW (halves its cost; measured
#: no worse than every frame on the call-type sets).
FRAME_STRIDE = 2
#: The percentile per band subtracted from each sequence's frames.
FLOOR_Q = 20.0
#: Weight of the pooled-embedding distance in the fused distance (the frames' is 1 - it).
FUSE_WEIGHT = 0.5


def recording_frames(windows: np.ndarray, step: int) -> np.ndarray:
    """One recording's frames ``(T, bands)`` from its windows ``(n, frames, bands)`` in time
    order, cut every ``step`` frames: the first ``step`` frames of every window but the
    last, then the whole last window."""
    w = np.asarray(windows)
    if len(w) == 0:
        return np.zeros((0, w.shape[2] if w.ndim == 3 else 0), np.float32)
    step = min(int(step), w.shape[1])
    return np.concatenate([w[:-1, :step].reshape(-1, w.shape[2]), w[-1]]).astype(np.float32)


def whiten(frames: np.ndarray, q: float = FLOOR_Q) -> np.ndarray:
    """``frames`` ``(T, bands)`` less each band's ``q``-th percentile over the frames, then
    standardised as a whole (float64; a constant sequence becomes zeros)."""
    x = np.asarray(frames, np.float64)
    x = x - np.percentile(x, q, axis=0, keepdims=True)
    return (x - x.mean()) / (x.std() + 1e-9)


def _recorded(emb) -> list[Path]:
    """Where the windows file ``wsd embed`` recorded in embeddings ``emb`` may be: as
    written, then beside the embeddings (empty when none was recorded)."""
    rec = emb.params.get("windows")
    return [Path(rec), Path(emb.path).parent / Path(rec).name] if rec else []


def recorded_windows(path) -> list[Path]:
    """:func:`_recorded` of the embeddings file at ``path`` (none when it cannot be read:
    the command reading it will say why): inputs an output must not overwrite."""
    from wsd.io.store import open_file

    try:
        with open_file(path) as e:
            return _recorded(e)
    except Exception:  # noqa: BLE001 - reported by the command itself
        return []


def find_windows(emb) -> Path | None:
    """The windows file ``wsd embed`` recorded in embeddings ``emb`` (an open WsdFile), as
    written or beside the embeddings, when it is there and still the same file (its file
    id); else None."""
    from wsd.io.store import open_file

    for p in _recorded(emb):
        if p.is_file():
            try:
                with open_file(p, "windows") as w:
                    same = w.file_id == emb.params.get("windows_id")
            except Exception:  # noqa: BLE001 - not a readable windows file: not found
                continue
            if same:
                return p
    return None


def _resolve(windows: str | None, emb) -> Path:
    """The windows file behind embeddings ``emb`` (an open embeddings WsdFile): ``windows``
    when given, else the path ``wsd embed`` recorded, as written or beside the embeddings."""
    if windows:
        return Path(windows)
    places = _recorded(emb)
    if not places:
        raise BadInputError("records no windows file; give --windows WIN.h5", emb.path)
    for p in places:
        if p.exists():
            return p
    raise InputMissingError(f"not found (neither as written nor beside {emb.path}); it is "
                            f"the windows file {emb.path} was embedded from: give --windows "
                            "WIN.h5", places[0])


def sequence_frames(emb, source_id, start_s, end_s, windows: str | None = None,
                    stride: int = FRAME_STRIDE) -> list[np.ndarray]:
    """The whitened frames (:func:`whiten`) of each sequence (``source_id``, ``start_s``,
    ``end_s`` arrays, times in seconds of the recordings of embeddings ``emb``), read from
    the windows file behind ``emb`` (or ``windows``), one recording at a time. The windows
    file must be the one the embeddings were made from (its file id is checked)."""
    from wsd.io.store import open_file

    path = _resolve(windows, emb)
    want_id = emb.params.get("windows_id")
    source_id = np.asarray(source_id)
    out: list[np.ndarray | None] = [None] * len(source_id)
    with open_file(path, "windows") as w:
        if want_id and w.file_id and w.file_id != want_id:
            raise BadInputError(f"is not the windows file {emb.path} was embedded from "
                                "(its file id differs)", path)
        if list(w.sources["path"]) != list(emb.sources["path"]):
            raise BadInputError(f"holds other recordings than {emb.path}", path)
        spec = w.spectrogram
        frame_s = spec["hop_length"] / spec["sample_rate"]
        wsid, wst = w.read("source_id"), w.read("start_s")
        for s in np.unique(source_id):
            rows = np.flatnonzero(wsid == s)
            if not len(rows):
                raise BadInputError(f"has no window of recording {s}", path)
            rows = rows[np.argsort(wst[rows], kind="stable")]
            lo, hi = int(rows.min()), int(rows.max()) + 1
            win = np.asarray(w.read("windows", slice(lo, hi)))[rows - lo]
            frames = recording_frames(win, spec["step"])
            t0 = float(wst[rows[0]])
            for i in np.flatnonzero(source_id == s):
                a = max(0, int(round((float(start_s[i]) - t0) / frame_s)))
                b = min(len(frames), max(a + 1, int(round((float(end_s[i]) - t0) / frame_s))))
                out[i] = whiten(frames[a:b:stride])
    return out


def fuse(pooled: np.ndarray, frames: np.ndarray, weight: float = FUSE_WEIGHT,
         pairs: np.ndarray | None = None,
         scales: tuple[float, float] | None = None) -> np.ndarray:
    """``weight * pooled / sd(pooled) + (1 - weight) * frames / sd(frames)``: two distance
    arrays of the same shape (a condensed or a cross matrix), each divided by its standard
    deviation over ``pairs`` (a boolean mask; all entries when None), or by ``scales`` (the
    two deviations, taken elsewhere), then averaged. Both are >= 0, so the result is too; a
    distance without spread counts as zero."""
    pooled = np.asarray(pooled, np.float64)
    frames = np.asarray(frames, np.float64)
    if scales is None:
        scales = fuse_scales(pooled, frames, pairs)
    sp, sf = scales
    out = np.zeros(pooled.shape)
    if sp > 0:
        out += weight * pooled / sp
    if sf > 0:
        out += (1 - weight) * frames / sf
    return out


def fuse_scales(pooled: np.ndarray, frames: np.ndarray,
                pairs: np.ndarray | None = None) -> tuple[float, float]:
    """The standard deviations :func:`fuse` divides by: of each array over ``pairs``."""
    pooled, frames = np.asarray(pooled, np.float64), np.asarray(frames, np.float64)
    sel = np.ones(pooled.shape, bool) if pairs is None else pairs
    return float(pooled[sel].std()), float(frames[sel].std())
