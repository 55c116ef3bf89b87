"""Silence detection without training.

Silence detector
----------------
Per frame, a *level*: the mean dB of the loudest ``top_frac`` of the bins in ``fmin..fmax``
(3 of 256 bins by default), each bin taken as its excess over its own noise floor
(``whiten``) times a per-recording factor that evens out how much each bin's noise swings
(``band_spread``, :func:`band_scale`). A whistle a few bins wide raises it as much as a broadband sound of
the same level, where a mean over the whole band would dilute it (3 bins of 256).
Per recording (``source_id``), a *noise floor*: the ``floor_percentile`` of its frame levels.
A frame becomes active when its level rises ``on_db`` above the floor and stays active until
it falls below ``off_db`` (hysteresis, run causally over the recording's frames in time order).
Runs shorter than ``min_run_frames`` are dropped as noise blips unless their peak reaches
``click_db`` above the floor: that keeps clicks, impulsive broadband energy lasting one or two
frames, which lift the loudest bins of their frames like any other bin. (A spectral-flux term
would also catch clicks, but needs the previous frame across window and block boundaries; the
level plus this rule needs one float per frame.)
A window is active ("not silence") when at least ``min_active_frac`` of its frames (and at
least one) are active.

Limits: the floor is taken from the recording itself, so a clip that is one call from end to
end has no silence to measure and may come out silent; a stationary tonal line (a ship's or
a mooring's hum) louder than the calls sets the level in every frame and masks them: exclude
it with ``fmin``/``fmax``.

Windows of one recording may overlap, leave gaps or have been dropped: frames are placed on the
recording's frame grid from ``start_s`` and the frame hop ``hop_s``, overlapping frames are
counted once, and the hysteresis state carries across gaps of up to one window and resets
across longer ones. Recordings are independent.

Two passes, so ``wsd slice --drop-silence`` can stream a file block by block: call
:func:`frame_energy` on each block (one float per frame), then :func:`decide` once on all of
them. :func:`detect_silence` does both.

Events are made from window decisions by :mod:`wsd.dsp.events`; :mod:`wsd.metrics.detection`
scores a detector against labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from wsd.errors import BadInputError, UsageError

_CHUNK_WINDOWS = 4096


@dataclass(frozen=True)
class SilenceParams:
    """Settings of the silence detector; each field is the CLI flag (``on_db`` -> ``--on-db``).

    fmin, fmax : band in Hz whose bins are looked at (``fmax=None``: up to the top bin).
    top_frac : fraction of the band's bins, the loudest, averaged (in dB) into a frame's level;
        at least one bin.
    floor_percentile : percentile of a recording's frame levels taken as its noise floor.
    on_db : dB above the floor at which a frame becomes active.
    off_db : dB above the floor below which an active frame stops being active (<= on_db).
    min_run_frames : shortest run of active frames kept ...
    click_db : ... unless its peak is at least this many dB above the floor (>= on_db).
    min_active_frac : fraction of a window's frames that must be active for it to be active.
    whiten : subtract a per-frequency-bin noise floor before taking the loudest bins, so that
        coloured noise (loud low bins) does not hide calls in quiet bins (clicks, whistles).
    floor_span_s : the per-bin floor of a window is the lowest of its neighbours' (within
        this many seconds either side, same recording) per-bin 20th percentiles over frames:
        it follows slow changes of the noise along a long recording.
    band_spread : divide each bin's excess over its floor by that bin's spread in the
        recording (:func:`band_scale`), so a band whose noise fluctuates (surf, flow noise,
        a codec switching its top band on and off, a modulated engine) must rise further
        than a steady one; levels stay in dB of a typical bin.
    min_spread_db : the smallest spread a bin is divided by: a band that is empty in the
        recording (above a recorder's bandwidth) is not amplified without bound.
    """

    fmin: float = 0.0
    fmax: float | None = None
    top_frac: float = 0.01
    floor_percentile: float = 20.0
    on_db: float = 10.0
    off_db: float = 4.0
    min_run_frames: int = 3
    click_db: float = 15.0
    min_active_frac: float = 0.03
    whiten: bool = True
    floor_span_s: float = 30.0
    band_spread: bool = True
    min_spread_db: float = 3.0

    def __post_init__(self):
        problems = []
        if not (math.isfinite(self.fmin) and self.fmin >= 0):
            problems.append(f"fmin must be >= 0 Hz, got {self.fmin}")
        if self.fmax is not None and not (self.fmax > self.fmin):
            problems.append(f"fmax ({self.fmax}) must be above fmin ({self.fmin})")
        if not 0 < self.top_frac <= 1:
            problems.append(f"top_frac must be in (0, 1], got {self.top_frac}")
        if not 0 <= self.floor_percentile <= 100:
            problems.append(f"floor_percentile must be in [0, 100], got {self.floor_percentile}")
        if not (math.isfinite(self.on_db) and self.on_db > 0):
            problems.append(f"on_db must be > 0 dB, got {self.on_db}")
        if not 0 <= self.off_db <= self.on_db:
            problems.append(f"off_db must be in [0, on_db={self.on_db}] dB, got {self.off_db}")
        if int(self.min_run_frames) != self.min_run_frames or self.min_run_frames < 1:
            problems.append(f"min_run_frames must be an integer >= 1, got {self.min_run_frames}")
        if not (math.isfinite(self.click_db) and self.click_db >= self.on_db):
            problems.append(f"click_db must be >= on_db={self.on_db} dB, got {self.click_db}")
        if not (math.isfinite(self.min_spread_db) and self.min_spread_db > 0):
            problems.append(f"min_spread_db must be > 0 dB, got {self.min_spread_db}")
        if not (math.isfinite(self.floor_span_s) and self.floor_span_s >= 0):
            problems.append(f"floor_span_s must be >= 0 s, got {self.floor_span_s}")
        if not 0 <= self.min_active_frac <= 1:
            problems.append(f"min_active_frac must be in [0, 1], got {self.min_active_frac}")
        if problems:
            raise UsageError("; ".join(problems))


@dataclass(frozen=True)
class SilenceDecision:
    """What :func:`decide` returns.

    silent : bool ``(n,)``, True for windows with too little activity.
    score : float32 ``(n,)``, dB above the recording's floor of the window's loudest frame.
    active_frac : float32 ``(n,)``, fraction of the window's frames that are active.
    active : bool ``(n, frames)``, per-frame activity after hysteresis and run filtering.
    recordings : int64 ``(r,)``, the distinct source ids, ascending.
    floor_db : float32 ``(r,)``, each recording's noise floor (frame level, dB).
    level : float32 ``(n, frames)``, each frame's level, dB above its recording's floor
        (None unless :func:`decide` was asked to keep it).
    """

    silent: np.ndarray
    score: np.ndarray
    active_frac: np.ndarray
    active: np.ndarray
    recordings: np.ndarray
    floor_db: np.ndarray
    level: np.ndarray | None = None


def window_floor(windows_db: np.ndarray) -> np.ndarray:
    """Per-window, per-bin 20th percentile over the window's frames: ``(n, bins)`` float32 dB
    (reads ``windows_db`` a chunk at a time)."""
    n, frames = windows_db.shape[:2]
    k = int(0.2 * (frames - 1))
    out = np.empty((n, windows_db.shape[2]), np.float32)
    for lo in range(0, n, _CHUNK_WINDOWS):
        x = np.asarray(windows_db[lo : lo + _CHUNK_WINDOWS], dtype=np.float32)
        out[lo : lo + len(x)] = np.partition(x, k, axis=1)[:, k, :]
    return out


def bin_floor(wfloor: np.ndarray, source_id: np.ndarray, start_s: np.ndarray,
              span_s: float) -> np.ndarray:
    """Noise floor per window and bin ``(n, bins)``: the minimum of :func:`window_floor` over
    the windows of the same recording starting within ``span_s`` seconds (either side)."""
    from scipy.ndimage import minimum_filter1d

    out = np.empty_like(wfloor)
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, np.float64)
    for _, idx in _recording_groups(source_id, start_s):
        if len(idx) > 1:
            step = float(np.median(np.diff(start_s[idx]))) or 1.0
            half = int(min(len(idx), max(0, round(span_s / step))))
            out[idx] = minimum_filter1d(wfloor[idx], size=2 * half + 1, axis=0, mode="nearest")
        else:
            out[idx] = wfloor[idx]
    return out


#: Percentiles whose difference is a bin's spread (:func:`band_scale`).
SPREAD_PERCENTILES = (10.0, 90.0)
#: Windows of a recording (evenly spaced) and frames of each (every 4th) that the spread is
#: taken over: bounded memory on recordings of any length.
SPREAD_WINDOWS = 1024
SPREAD_FRAME_STEP = 4
#: The most a bin is scaled down (:func:`band_scale`). A sound that fills one narrow band
#: for more than about a tenth of a recording (a steady tonal call, repeated) widens that
#: band's spread itself and is scaled down with it, up to this factor: for such recordings,
#: ``--no-band-spread`` (tested both ways). On the scenes any factor from 3 up scored the same.
MAX_ATTENUATION = 3.0


def _window_step(start: np.ndarray) -> float:
    """The smallest positive step between a recording's window starts (s), taken as one
    window when the frame hop is not known (1.0 when every start is the same)."""
    steps = np.diff(start)
    positive = steps[steps > 0]
    return float(positive.min()) if positive.size else 1.0


def _tiling(start: np.ndarray, length: float | None) -> np.ndarray:
    """Positions (into ``start``, ascending times) of windows that tile a recording without
    overlapping: the first, then each next one starting at least a window ``length`` (s)
    after the last chosen (without it, the smallest step between starts is taken as one
    window, as :func:`decide` does). Overlapping windows cut from the same audio as
    contiguous ones thus give the same frames."""
    if start.size == 1:
        return np.zeros(1, np.int64)
    if length is None:
        length = _window_step(start)
    out, i = [], 0
    eps = 1e-6 * length
    while i < start.size:
        out.append(i)
        i = int(np.searchsorted(start, start[i] + length - eps, side="left"))
    return np.asarray(out, np.int64)


def band_scale(windows_db: np.ndarray, freqs: np.ndarray, floor: np.ndarray | None,
               source_id: np.ndarray, start_s: np.ndarray, params: SilenceParams,
               hop_s: float | np.ndarray | None = None) -> np.ndarray:
    """Per window and bin ``(n, bins)`` float32, the factor :func:`frame_energy` multiplies a
    bin's excess over its floor by (``params.band_spread``): ``ref / max(spread_b,
    min_spread_db)``, where ``spread_b`` is the difference of the 90th and 10th percentiles
    of bin b's excess over its floor (``floor``; raw dB when None) in the window's recording,
    and ``ref`` the median ``spread_b`` over the band's bins (``fmin..fmax``); at least
    ``1 / MAX_ATTENUATION``. A bin whose noise swings widely is scaled down, a steady one
    up, and a typical one stays in dB.

    The spread is taken over up to :data:`SPREAD_WINDOWS` evenly spaced windows of each
    recording that do not overlap (:func:`_tiling`; ``hop_s``: the frame hop, as for
    :func:`decide`), every :data:`SPREAD_FRAME_STEP`-th frame (read a chunk at a time; a
    recording's samples are let go once the chunks have passed its last window).
    """
    n, frames, bins = windows_db.shape
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, np.float64)
    picked = np.zeros(n, bool)
    groups = list(_recording_groups(source_id, start_s))
    hop = None if hop_s is None else np.broadcast_to(np.asarray(hop_s, np.float64), (n,))
    for _, idx in groups:
        tiles = _tiling(start_s[idx], None if hop is None else frames * float(hop[idx[0]]))
        take = np.unique(np.linspace(0, len(tiles) - 1, min(len(tiles), SPREAD_WINDOWS))
                         .round().astype(np.int64))
        picked[idx[tiles[take]]] = True
    band = _band(np.asarray(freqs, np.float64), params)
    out = np.ones((n, bins), np.float32)
    rows = {int(rec): idx for rec, idx in groups}
    last = sorted((int(idx.max()), int(rec)) for rec, idx in groups)
    values: dict[int, list] = {}

    def finish(rec: int) -> None:  # the recording's factors, and its samples freed
        v = np.concatenate(values.pop(rec))
        lo_p, hi_p = np.percentile(v, SPREAD_PERCENTILES, axis=0)
        spread = hi_p - lo_p
        ref = float(np.median(spread[band]))
        factor = max(ref, params.min_spread_db) / np.maximum(spread, params.min_spread_db)
        out[rows[rec]] = np.maximum(factor, 1.0 / MAX_ATTENUATION).astype(np.float32)

    done = 0
    for lo in range(0, n, _CHUNK_WINDOWS):
        # recordings whose windows all lie before this chunk: done (bounded memory when, as
        # wsd slice writes them, each recording's windows are together)
        while done < len(last) and last[done][0] < lo:
            finish(last[done][1])
            done += 1
        sel = np.flatnonzero(picked[lo:lo + _CHUNK_WINDOWS])
        if not sel.size:
            continue
        if sel.size * 8 >= min(_CHUNK_WINDOWS, n - lo):  # many: read the chunk once
            x = np.asarray(windows_db[lo:lo + _CHUNK_WINDOWS], np.float32)[sel]
        else:  # few (a long recording's sample): read those windows alone
            x = np.concatenate([np.asarray(windows_db[lo + i:lo + i + 1], np.float32)
                                for i in sel])
        x = x[:, ::SPREAD_FRAME_STEP]
        if floor is not None:
            x = x - np.asarray(floor[lo + sel], np.float32)[:, None, :]
        for rec in np.unique(source_id[lo + sel]):
            values.setdefault(int(rec), []).append(
                x[source_id[lo + sel] == rec].reshape(-1, bins))
    for _, rec in last[done:]:
        finish(rec)
    return out


def _band(freqs: np.ndarray, params: SilenceParams) -> np.ndarray:
    """Indices of the bins in ``fmin..fmax``; refuses an empty band."""
    fmax = np.inf if params.fmax is None else params.fmax
    band = np.flatnonzero((freqs >= params.fmin) & (freqs <= fmax))
    if band.size == 0:
        raise UsageError(
            f"no frequency bin lies in {params.fmin:g}..{fmax:g} Hz "
            f"(bins span {freqs[0]:g}..{freqs[-1]:g} Hz)"
        )
    return band


def frame_energy(windows_db: np.ndarray, freqs: np.ndarray, params: SilenceParams,
                 floor: np.ndarray | None = None, scale: np.ndarray | None = None
                 ) -> np.ndarray:
    """Per-frame level: mean dB of the loudest ``params.top_frac`` of the band's bins (of the
    excess over ``floor`` ``(n, bins)`` when given, see :func:`bin_floor`; each bin times
    ``scale`` ``(n, bins)`` when given, see :func:`band_scale`).

    Parameters
    ----------
    windows_db : float array ``(n, frames, bins)``, log-magnitude spectrograms in dB; anything
        sliceable with a ``shape`` (a memory map, an HDF5 dataset) is read a chunk at a time.
    freqs : float array ``(bins,)``, centre frequency of each bin in Hz, ascending.
    params : :class:`SilenceParams` (uses ``fmin``, ``fmax``, ``top_frac``).

    Returns
    -------
    level : float32 ``(n, frames)`` in dB.
    """
    if not hasattr(windows_db, "shape"):
        windows_db = np.asarray(windows_db)
    freqs = np.asarray(freqs, dtype=np.float64)
    if len(windows_db.shape) != 3:
        raise BadInputError(f"expected windows (n, frames, bins), got shape {windows_db.shape}")
    if freqs.shape != windows_db.shape[2:]:
        raise BadInputError(
            f"freqs has shape {freqs.shape} but windows have {windows_db.shape[2]} bins"
        )
    band = _band(freqs, params)
    nb = band.size
    k = max(1, math.ceil(params.top_frac * nb - 1e-9))
    sel = slice(band[0], band[-1] + 1) if band[-1] - band[0] + 1 == nb else band
    out = np.empty(windows_db.shape[:2], dtype=np.float32)
    for lo in range(0, windows_db.shape[0], _CHUNK_WINDOWS):
        x = np.asarray(windows_db[lo : lo + _CHUNK_WINDOWS, :, sel], dtype=np.float32)
        if floor is not None:
            x = x - np.asarray(floor[lo : lo + _CHUNK_WINDOWS, sel], np.float32)[:, None, :]
        if scale is not None:
            x = x * np.asarray(scale[lo : lo + _CHUNK_WINDOWS, sel], np.float32)[:, None, :]
        top = np.partition(x, nb - k, axis=-1)[..., nb - k :] if k < nb else x
        out[lo : lo + _CHUNK_WINDOWS] = top.mean(axis=-1)
    if not np.all(np.isfinite(out)):
        raise BadInputError("spectrogram holds NaN or infinite dB values")
    return out


def _recording_groups(source_id: np.ndarray, start_s: np.ndarray):
    """Yield ``(id, window indices in time order)`` per recording, ids ascending."""
    order = np.lexsort((start_s, source_id))
    ids, first = np.unique(source_id[order], return_index=True)
    return zip(ids, np.split(order, first[1:]))


def _check_rows(n: int, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if a.shape != (n,):
            raise BadInputError(f"{name} has shape {a.shape}, expected ({n},)")


def _grid_positions(start: np.ndarray, hop: float | None, frames: int) -> np.ndarray:
    """First-frame grid index ``(m,)`` of each window; gaps over a window shrink to frames+1."""
    if start.size == 1:
        return np.zeros(1, dtype=np.int64)
    if hop is None:  # assume windows were cut every `frames` frames (the default step)
        hop = _window_step(start) / frames
    k = np.rint((start - start[0]) / hop).astype(np.int64)
    dk = np.minimum(np.diff(k), 2 * frames + 1)
    return np.concatenate([[0], np.cumsum(dk)])


def _hysteresis(x: np.ndarray, present: np.ndarray, frames: int, p: SilenceParams) -> np.ndarray:
    """Causal hysteresis plus run filtering over one recording's frame grid; bool ``(G,)``."""
    mark = np.full(x.shape, -1, dtype=np.int8)  # -1: keep the previous state
    mark[present & (x >= p.on_db)] = 1
    mark[present & (x < p.off_db)] = 0
    if not present.all():
        gaps, _ = ndimage.label(~present)
        gap_len = np.bincount(gaps)[1:]
        mark[(gaps > 0) & (gap_len[gaps - 1] > frames)] = 0  # reset across long gaps
    idx = np.arange(x.size)
    last = np.maximum.accumulate(np.where(mark >= 0, idx, -1))
    state = np.where(last >= 0, mark[np.maximum(last, 0)], 0).astype(bool)
    runs, n_runs = ndimage.label(state)
    if n_runs == 0:
        return state
    labels = np.arange(1, n_runs + 1)
    length = ndimage.sum_labels(present, runs, labels)
    peak = ndimage.maximum(np.where(present, x, -np.inf), runs, labels)
    keep = (length >= p.min_run_frames) | (peak >= p.click_db)
    return np.concatenate([[False], keep])[runs] & present


def decide(
    frame_energy: np.ndarray,
    source_id: np.ndarray,
    start_s: np.ndarray,
    params: SilenceParams,
    *,
    hop_s: float | np.ndarray | None = None,
    keep_level: bool = False,
) -> SilenceDecision:
    """Decide silence per window from per-frame levels.

    Parameters
    ----------
    frame_energy : float ``(n, frames)``, dB, from :func:`frame_energy`.
    source_id : int ``(n,)``, recording of each window.
    start_s : float ``(n,)``, start time of each window's first frame in seconds.
    params : :class:`SilenceParams`.
    hop_s : frame hop in seconds (``hop_length / sample_rate``), one float or one per window
        ``(n,)`` (constant within a recording). Without it, each recording's smallest step
        between window starts is taken as one window of ``frames`` frames, which is exact for
        windows cut every ``frames`` frames (with or without dropped windows) and otherwise
        treats the windows as if they were contiguous.
    keep_level : also return each frame's level above the floor (``level``, for
        :func:`active_runs`; as large as ``frame_energy``, so only when asked).

    Returns
    -------
    :class:`SilenceDecision`.
    """
    energy = np.asarray(frame_energy, dtype=np.float32)
    if energy.ndim != 2:
        raise BadInputError(f"frame_energy must be (n, frames), got shape {energy.shape}")
    n, frames = energy.shape
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, dtype=np.float64)
    _check_rows(n, source_id=source_id, start_s=start_s)
    hop = None if hop_s is None else np.broadcast_to(np.asarray(hop_s, dtype=np.float64), (n,))
    if hop is not None and not np.all(hop > 0):
        raise UsageError("hop_s must be > 0 seconds")
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(start_s))):
        raise BadInputError("frame energies and start times must be finite")

    active = np.zeros((n, frames), dtype=bool)
    level = np.zeros((n, frames), dtype=np.float32) if keep_level else None
    score = np.zeros(n, dtype=np.float32)
    recordings, floors = [], []
    offs = np.arange(frames)
    for rec, idx in _recording_groups(source_id, start_s):
        k = _grid_positions(start_s[idx], None if hop is None else hop[idx[0]], frames)
        pos = k[:, None] + offs  # (m, frames) grid slot of every frame
        grid = np.zeros(k[-1] + frames, dtype=np.float32)
        present = np.zeros(grid.size, dtype=bool)
        grid[pos] = energy[idx]
        present[pos] = True
        floor = np.percentile(grid[present], params.floor_percentile)
        x = grid - np.float32(floor)
        active[idx] = _hysteresis(x, present, frames, params)[pos]
        if level is not None:
            level[idx] = x[pos]
        score[idx] = x[pos].max(axis=1)
        recordings.append(rec)
        floors.append(floor)

    need = max(1, math.ceil(params.min_active_frac * frames - 1e-9))
    count = active.sum(axis=1)
    return SilenceDecision(
        silent=count < need,
        score=score,
        active_frac=(count / frames).astype(np.float32),
        active=active,
        recordings=np.asarray(recordings, dtype=np.int64),
        floor_db=np.asarray(floors, dtype=np.float32),
        level=level,
    )


def active_runs(active: np.ndarray, level: np.ndarray, source_id: np.ndarray,
                start_s: np.ndarray, hop_s: float) -> dict[str, np.ndarray]:
    """The runs of consecutive active frames of each recording, as rows for
    :func:`wsd.dsp.events.events_from_decisions` (``detect --silence --events frames``):
    events as long as the sound itself rather than whole windows.

    Frame ``j`` of window ``i`` sits at frame ``round((start_s[i] - t0) / hop_s) + j`` of its
    recording's grid (``t0``: the recording's first window); frames that several windows
    share count once (active in any). A run of frames ``a..b`` spans
    ``[t0 + a hop, t0 + (b + 1) hop)``; its score is the highest level (dB above the floor)
    of its frames.

    active, level : ``(n, frames)`` from :class:`SilenceDecision`; source_id, start_s ``(n,)``.
    Returns ``source_id`` int64, ``start_s``, ``end_s``, ``score`` float64 and ``n_frames``
    int64 arrays, by recording then time.
    """
    active = np.asarray(active, bool)
    level = np.asarray(level, np.float32)
    n, frames = active.shape
    source_id = np.asarray(source_id)
    start_s = np.asarray(start_s, np.float64)
    _check_rows(n, source_id=source_id, start_s=start_s)
    if not (math.isfinite(hop_s) and hop_s > 0):
        raise UsageError("hop_s must be > 0 seconds")
    out: dict[str, list] = {"source_id": [], "start_s": [], "end_s": [], "score": [],
                            "n_frames": []}
    for rec, idx in _recording_groups(source_id, start_s):
        t0 = start_s[idx[0]]
        k = np.rint((start_s[idx] - t0) / hop_s).astype(np.int64)[:, None] + np.arange(frames)
        on = active[idx]
        kk, lv = k[on], level[idx][on]
        if not kk.size:
            continue
        order = np.argsort(kk, kind="stable")
        kk, lv = kk[order], lv[order]
        uniq, first = np.unique(kk, return_index=True)
        lv = np.maximum.reduceat(lv, first)
        brk = np.flatnonzero(np.diff(uniq) > 1) + 1
        a, b = np.r_[0, brk], np.r_[brk, uniq.size]
        out["source_id"].append(np.full(a.size, rec, np.int64))
        out["start_s"].append(t0 + uniq[a] * hop_s)
        out["end_s"].append(t0 + (uniq[b - 1] + 1) * hop_s)
        out["score"].append(np.maximum.reduceat(lv, a).astype(np.float64))
        out["n_frames"].append((b - a).astype(np.int64))
    dtypes = {"source_id": np.int64, "n_frames": np.int64}
    return {key: (np.concatenate(v) if v else np.zeros(0, dtypes.get(key, np.float64)))
            for key, v in out.items()}


def detect_silence(
    windows_db: np.ndarray,
    freqs: np.ndarray,
    source_id: np.ndarray,
    start_s: np.ndarray,
    params: SilenceParams = SilenceParams(),
    *,
    hop_s: float | np.ndarray | None = None,
    keep_level: bool = False,
) -> SilenceDecision:
    """(:func:`bin_floor` when ``params.whiten``, :func:`band_scale` when
    ``params.band_spread``), :func:`frame_energy` then :func:`decide`;
    shapes as there (windows ``(n, frames, bins)``)."""
    floor = scale = None
    if params.whiten:
        floor = bin_floor(window_floor(windows_db), source_id, start_s, params.floor_span_s)
    if params.band_spread:
        scale = band_scale(windows_db, freqs, floor, source_id, start_s, params, hop_s)
    energy = frame_energy(windows_db, freqs, params, floor, scale)
    return decide(energy, source_id, start_s, params, hop_s=hop_s, keep_level=keep_level)
