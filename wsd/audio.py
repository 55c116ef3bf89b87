"""The only module that decodes sound: block-wise reading through soundfile, channel
selection, streamed resampling with scipy.signal.resample_poly.

Nothing here loads a whole file: :class:`AudioStream` yields float32 mono blocks of a bounded
size, counts the frames actually decoded (headers lie: soundfile silently returns short reads
on truncated wav and mp3) and rejects files containing NaN or infinite samples.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from wsd.errors import BadInputError, InputMissingError, WsdIOError

#: Frames read per block from the decoder (at the native rate). 2**16 frames of 6-channel
#: float32 is 1.5 MB: memory stays bounded whatever the file's length.
BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says (lengths may be wrong; see AudioStream)."""

    path: str
    sample_rate: int
    channels: int
    frames_header: int
    format: str
    subtype: str
    size: int
    mtime: float


def _decoder_error(path, exc: Exception) -> BadInputError:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if msg.lower().startswith("error opening"):
        msg = msg.split(":", 1)[-1].strip() or msg
    return BadInputError(f"cannot decode audio ({msg})", path)


def probe(path) -> AudioInfo:
    """Read an audio file's header. Raises InputMissingError / BadInputError."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputMissingError("no such file", path) from None
    except OSError as e:
        raise InputMissingError(f"cannot access ({e.strerror})", path) from None
    if path.is_dir():
        raise InputMissingError("is a folder, not an audio file", path)
    if st.st_size == 0:
        raise BadInputError("file is empty", path)
    if not os.access(path, os.R_OK):
        raise InputMissingError("permission denied", path)
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise _decoder_error(path, e) from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise BadInputError("header gives no sample rate or channels", path)
    return AudioInfo(str(path), int(info.samplerate), int(info.channels), int(info.frames),
                     info.format, info.subtype, int(st.st_size), float(st.st_mtime))


def resample_ratio(native: int, target: int) -> tuple[int, int]:
    """(up, down) in lowest terms such that target = native * up / down."""
    r = Fraction(int(target), int(native))
    return r.numerator, r.denominator


class StreamResampler:
    """Streamed ``scipy.signal.resample_poly`` that equals the whole-signal call.

    Input is cut into segments whose boundaries are multiples of ``down``; each segment is
    resampled with enough real input on both sides for the polyphase filter (10 * max(up,
    down) taps each side, scipy's default), and only the segment's own outputs are kept, so
    the concatenated output matches ``resample_poly(x, up, down)`` of the whole signal (the
    signal's true ends are zero-padded exactly as scipy does). Memory: one block plus the
    context.
    """

    def __init__(self, up: int, down: int):
        g = math.gcd(up, down)
        self.up, self.down = up // g, down // g
        half_len = 10 * max(self.up, self.down)
        ctx = math.ceil(half_len / self.up) + 1
        self.ctx = math.ceil(ctx / self.down) * self.down
        self._buf = np.zeros(0, np.float32)
        self._left = 0  # samples of left context at the head of _buf
        self._n_in = 0  # total input samples pushed
        self._n_out = 0  # total output samples emitted

    def _resample(self, xs: np.ndarray) -> np.ndarray:
        return resample_poly(xs, self.up, self.down).astype(np.float32, copy=False)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed input samples (1-D); return the outputs that are now final."""
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)])
        self._n_in += len(x)
        avail = len(self._buf) - self._left - self.ctx  # segment samples with right context
        seg = (avail // self.down) * self.down
        if seg <= 0:
            return np.zeros(0, np.float32)
        y = self._resample(self._buf[: self._left + seg + self.ctx])
        k0 = self._left * self.up // self.down
        out = y[k0 : k0 + seg * self.up // self.down]
        # keep up to ctx samples of left context (a multiple of down, so segments stay aligned)
        keep_from = max(0, self._left + seg - self.ctx)
        self._left = self._left + seg - keep_from
        self._buf = self._buf[keep_from:]
        self._n_out += len(out)
        return out

    def finish(self) -> np.ndarray:
        """Return the remaining outputs (the signal's end is zero-padded as scipy does)."""
        total = -(-self._n_in * self.up // self.down)  # ceil
        need = total - self._n_out
        if need <= 0:
            return np.zeros(0, np.float32)
        y = self._resample(self._buf)
        k0 = self._left * self.up // self.down
        out = y[k0 : k0 + need]
        self._n_out += len(out)
        self._buf = np.zeros(0, np.float32)
        return out


@dataclass
class DecodeStats:
    """Filled in while an AudioStream is read."""

    frames_decoded: int = 0  # at the native rate, per channel
    samples_out: int = 0  # at the output rate
    warnings: list[str] = field(default_factory=list)


class AudioStream:
    """Iterate over an audio file as float32 mono blocks at ``target_rate``.

    Parameters
    ----------
    path : audio file (anything libsndfile reads: wav, flac, mp3, ogg, aiff, ...).
    target_rate : output sample rate in Hz; None keeps the native rate.
    channel : "mix" (mean of all channels) or a 0-based channel index.
    block_frames : frames read from the decoder per block.

    Iterating yields 1-D float32 arrays; afterwards ``stats`` holds the decoded frame count
    and warnings (short read against the header). Raises BadInputError naming the file when
    decoding fails, the channel does not exist, or a sample is NaN/infinite.
    """

    def __init__(self, path, target_rate: int | None = None, channel="mix",
                 block_frames: int = BLOCK_FRAMES, info: AudioInfo | None = None):
        self.path = str(path)
        self.info = info or probe(path)
        self.target_rate = int(target_rate or self.info.sample_rate)
        self.channel = channel
        if channel != "mix":
            c = int(channel)
            if not 0 <= c < self.info.channels:
                raise BadInputError(
                    f"has {self.info.channels} channel(s); --channel {c} does not exist "
                    f"(channels count from 0, or use --channel mix)", self.path)
        self.block_frames = block_frames
        self.stats = DecodeStats()

    def _mono(self, data: np.ndarray) -> np.ndarray:
        if self.channel == "mix":
            return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
        return np.ascontiguousarray(data[:, int(self.channel)])

    def __iter__(self) -> Iterator[np.ndarray]:
        native = self.info.sample_rate
        rs = None
        if self.target_rate != native:
            rs = StreamResampler(*resample_ratio(native, self.target_rate))
        try:
            f = sf.SoundFile(self.path)
        except Exception as e:
            raise _decoder_error(self.path, e) from None
        with f:
            while True:
                try:
                    data = f.read(self.block_frames, dtype="float32", always_2d=True)
                except Exception as e:
                    raise _decoder_error(self.path, e) from None
                if len(data) == 0:
                    break
                if not np.isfinite(data).all():
                    bad = int((~np.isfinite(data)).sum())
                    raise BadInputError(
                        f"contains {bad} NaN or infinite sample(s) near "
                        f"{self.stats.frames_decoded / native:.2f} s", self.path)
                self.stats.frames_decoded += len(data)
                mono = self._mono(data)
                out = rs.push(mono) if rs else mono
                if len(out):
                    self.stats.samples_out += len(out)
                    yield out
        if rs:
            out = rs.finish()
            if len(out):
                self.stats.samples_out += len(out)
                yield out
        promised = self.info.frames_header
        if 0 < promised and self.stats.frames_decoded < promised:
            self.stats.warnings.append(
                f"header promised {promised} frames ({promised / native:.2f} s) but only "
                f"{self.stats.frames_decoded} decoded ({self.stats.frames_decoded / native:.2f} s):"
                " file is truncated")
        if self.stats.frames_decoded == 0:
            raise BadInputError("no audio could be decoded (0 frames)", self.path)


def read_excerpt(path, start_s: float, end_s: float, channel="mix") -> tuple[np.ndarray, int]:
    """Decode the native-rate mono excerpt [start_s, end_s) of a file (for playback clips)."""
    info = probe(path)
    sr = info.sample_rate
    a, b = max(0, int(start_s * sr)), max(0, int(math.ceil(end_s * sr)))
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(min(a, max(info.frames_header - 1, 0)) if info.frames_header else a)
            data = f.read(max(b - a, 0), dtype="float32", always_2d=True)
    except Exception as e:
        raise _decoder_error(path, e) from None
    if channel == "mix":
        return data.mean(axis=1).astype(np.float32), sr
    return data[:, int(channel)].copy(), sr


def write_wav(path, samples: np.ndarray, sample_rate: int) -> None:
    """Write a 16-bit PCM wav (used for short playback excerpts in reports)."""
    try:
        sf.write(str(path), np.clip(samples, -1, 1), int(sample_rate), subtype="PCM_16")
    except Exception as e:
        raise WsdIOError(f"cannot write audio ({e})", path) from None
