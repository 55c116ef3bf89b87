"""The only module that decodes sound: block-wise reading through soundfile, channel
selection, streamed resampling with scipy.signal.resample_poly.

Nothing here loads a whole file: :class:`AudioStream` yields float32 mono blocks of a bounded
size and counts the frames actually decoded, because headers lie:

* libsndfile silently shortens a truncated wav/aiff to what the file holds, so the frame
  count the *header* promised is read from the RIFF ``data`` / ds64 / AIFF ``COMM`` chunk;
* truncated mp3s end early without an error; a damaged flac or mp3 raises part way. The
  block that failed is re-read in small pieces up to the damage and decoding goes on past it
  where the decoder can resync: reported as damaged (window times after the damage may be
  early by the audio lost, at most promised minus decoded), or as truncated when nothing
  decodes after it;
* an mp3 length is only a promise when it carries a Xing/Info/VBRI tag; without one
  libsndfile's figure is an estimate from the file size, no truncation is claimed, and the
  file is read through :class:`wsd.io.audio.containers.UnclampedMp3` because libsndfile would
  otherwise stop decoding at its estimate.

Files containing NaN or infinite samples are rejected. Random bytes are refused by libsndfile
itself (its mpg123 gives up after 64 KiB without two consistent MPEG frame headers; 2,000
random files of 10 B-70 kB, with and without an ID3 tag, were all refused), so no
extension-based sniffing is added. What the C decoders print on file descriptor 2 (libmpg123's
"Illegal Audio-MPEG-Header", "Trying to resync...") is captured and turned into one warning per
file, or into the reason of a decoding error, instead of spilling onto the terminal.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from wsd.io.audio.resample import StreamResampler, resample_ratio
from wsd.io.audio.containers import (DecoderMessages, UnclampedMp3, container_frames,
                               mp3_has_length_tag)
from wsd.errors import BadInputError, InputMissingError, WsdIOError

#: Frames read per block from the decoder (at the native rate). 2**16 frames of 6-channel
#: float32 is 1.5 MB: memory stays bounded whatever the file's length.
BLOCK_FRAMES = 1 << 16
#: Frames per read when salvaging the decodable part of a block that failed.
SALVAGE_FRAMES = 256
#: Decoding errors tolerated in one file before the rest of it is given up.
MAX_DECODE_ERRORS = 100
#: Failed reads in a row, without a frame decoded between them, that end decoding.
MAX_STUCK = 20


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says (lengths may be wrong; see AudioStream).

    ``frames_header`` is the frame count the header promises (0: unknown);
    ``length_exact`` is False when it is only libsndfile's estimate (mp3 without a length tag).
    """

    path: str
    sample_rate: int
    channels: int
    frames_header: int
    format: str
    subtype: str
    size: int
    mtime: float
    length_exact: bool = True


def _decoder_error(path, exc: Exception, msgs: DecoderMessages | None = None) -> BadInputError:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if msg.lower().startswith("error opening"):
        msg = msg.split(":", 1)[-1].strip() or msg
    if "does not exist or is not a regular file" in msg and Path(path).is_file():
        msg = "not a recognisable audio file"  # libsndfile's mpg123 wording for junk
    said = msgs.summary() if msgs else ""
    return BadInputError(f"cannot decode audio ({msg.rstrip('.')}"
                         + (f"; decoder said: {said}" if said else "") + ")", path)


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
    msgs = DecoderMessages()
    try:
        with msgs:
            info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise _decoder_error(path, e, msgs) from None
    finally:
        msgs.close()
    if info.samplerate <= 0 or info.channels <= 0:
        raise BadInputError("header gives no sample rate or channels", path)
    frames, exact = max(int(info.frames), 0), True
    try:
        promised = container_frames(path, info.subtype)
        if promised is not None:
            frames = promised
        elif info.format == "MP3":
            exact = mp3_has_length_tag(path)
    except OSError as e:
        raise WsdIOError(f"read error ({e.strerror})", path) from None
    return AudioInfo(str(path), int(info.samplerate), int(info.channels), frames,
                     info.format, info.subtype, int(st.st_size), float(st.st_mtime), exact)


@dataclass
class DecodeStats:
    """Filled in while an AudioStream is read."""

    frames_decoded: int = 0  # at the native rate, per channel
    samples_out: int = 0  # at the output rate
    truncated: bool = False  # fewer frames than the header promised, or decoding stopped
    damaged: bool = False  # decoding errors part way, decoding resumed after them
    warnings: list[str] = field(default_factory=list)


class AudioStream:
    """Iterate over an audio file as float32 mono blocks at ``target_rate``.

    Parameters
    ----------
    path : audio file (anything libsndfile reads: wav, flac, mp3, ogg, aiff, ...).
    target_rate : output sample rate in Hz; None keeps the native rate.
    channel : "mix" (mean of all channels) or a 0-based channel index.
    block_frames : frames read from the decoder per block.

    Iterating yields 1-D float32 arrays (each at most about ``block_frames * target_rate /
    native_rate`` samples); afterwards ``stats`` holds the decoded frame count, whether the
    file was truncated, and warnings. A decoding error part way keeps what was decoded before
    it (``stats.truncated``). Raises BadInputError naming the file when nothing decodes, the
    channel does not exist, or a sample is NaN/infinite.
    """

    def __init__(self, path, target_rate: int | None = None, channel="mix",
                 block_frames: int = BLOCK_FRAMES, info: AudioInfo | None = None,
                 name: str | None = None):
        self.path = str(path)
        self.name = name or self.path  # how messages name the file
        self.info = info or probe(path)
        self.target_rate = int(target_rate or self.info.sample_rate)
        self.channel = channel
        if channel != "mix":
            c = int(channel)
            if not 0 <= c < self.info.channels:
                raise BadInputError(
                    f"has {self.info.channels} channel(s); --channel {c} does not exist "
                    f"(channels count from 0, or use --channel mix)", self.name)
        self.block_frames = block_frames
        self.stats = DecodeStats()
        self._vfiles: list[UnclampedMp3] = []

    def _mono(self, data: np.ndarray) -> np.ndarray:
        if self.channel == "mix":
            return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
        return np.ascontiguousarray(data[:, int(self.channel)])

    def _check(self, data: np.ndarray) -> None:
        if not np.isfinite(data).all():
            rows = np.flatnonzero(~np.isfinite(data).all(axis=1))
            first = (self.stats.frames_decoded + rows[0]) / self.info.sample_rate
            raise BadInputError(f"contains NaN or infinite samples (first at {first:.3f} s, "
                                f"{len(rows)} frame(s) in that block)", self.name)

    def _open(self) -> sf.SoundFile:
        if self.info.format == "MP3" and not self.info.length_exact:
            self._vfiles.append(UnclampedMp3(self.path))  # closed when iteration ends
            return sf.SoundFile(self._vfiles[-1])
        return sf.SoundFile(self.path)

    def _salvage(self, msgs: DecoderMessages):
        """After a failed block read: re-read that block in small pieces up to the damage.

        Returns (frames decoded before the damage, a handle positioned just past the failing
        piece, or None when the file cannot be re-read)."""
        got: list[np.ndarray] = []
        empty = np.zeros((0, self.info.channels), np.float32)
        try:
            with msgs:
                g = self._open()
        except Exception:
            return empty, None
        try:
            with msgs:
                pos = self.stats.frames_decoded
                if g.seekable() and self.info.format != "MP3":
                    g.seek(pos)
                else:  # mp3 seeking is not sample-exact: decode and discard instead
                    while pos > 0:
                        pos -= len(g.read(min(pos, self.block_frames), dtype="float32",
                                          always_2d=True))
                for _ in range(self.block_frames // SALVAGE_FRAMES):
                    d = g.read(SALVAGE_FRAMES, dtype="float32", always_2d=True)
                    if not len(d):
                        break
                    got.append(d)
        except Exception:
            pass  # reached the damaged piece: g now stands just after it
        return (np.concatenate(got) if got else empty), g

    def _blocks(self, msgs: DecoderMessages) -> Iterator[np.ndarray]:
        """(frames, channels) float32 blocks of the file as decoded, past damage if possible.

        A failed block is re-read in small pieces up to the damage; decoding then goes on in
        small pieces until a whole block's worth decodes cleanly. Gives up after
        MAX_STUCK failures in a row without progress, or MAX_DECODE_ERRORS in all."""
        try:
            with msgs:
                f = self._open()
        except Exception as e:
            raise _decoder_error(self.name, e, msgs) from None
        careful, stuck = 0, 0  # frames still to read in small pieces; failures in a row
        try:
            while f is not None:
                try:
                    with msgs:
                        data = f.read(SALVAGE_FRAMES if careful else self.block_frames,
                                      dtype="float32", always_2d=True)
                except Exception as e:
                    why = str(e).strip().splitlines()[0] if str(e).strip() else "error"
                    if careful:
                        data = np.zeros((0, self.info.channels), np.float32)
                    else:
                        f.close()
                        data, f = self._salvage(msgs)
                    pos = self.stats.frames_decoded + len(data)
                    stuck = stuck + 1 if self._errors and self._errors[-1][0] == pos else 0
                    if not stuck:
                        self._errors.append((pos, why.rstrip(".")))
                    careful = self.block_frames
                    if stuck >= MAX_STUCK or len(self._errors) >= MAX_DECODE_ERRORS:
                        f.close()
                        f = None  # the decodable part ends here
                    if len(data):
                        yield data
                    continue
                if len(data) == 0:
                    break
                careful = max(0, careful - len(data))
                stuck = 0
                yield data
        finally:
            if f is not None:
                f.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        native = self.info.sample_rate
        rs = None
        if self.target_rate != native:
            rs = StreamResampler(*resample_ratio(native, self.target_rate))
        msgs = DecoderMessages()
        self._errors: list[tuple[int, str]] = []  # (frames decoded before it, message)
        try:
            for data in self._blocks(msgs):
                self._check(data)
                self.stats.frames_decoded += len(data)
                out = rs.push(self._mono(data)) if rs else self._mono(data)
                if len(out):
                    self.stats.samples_out += len(out)
                    yield out
            if self.stats.frames_decoded == 0:
                if self._errors:
                    raise BadInputError(f"cannot decode audio ({self._errors[0][1]}"
                                        + (f"; decoder said: {msgs.summary()}"
                                           if msgs.lines else "") + ")", self.name)
                raise BadInputError("no audio could be decoded (0 frames)", self.name)
            if rs:
                out = rs.finish()
                if len(out):
                    self.stats.samples_out += len(out)
                    yield out
            self._report(msgs)
        finally:
            msgs.close()
            for vf in self._vfiles:
                vf.close()
            self._vfiles.clear()

    def _report(self, msgs: DecoderMessages) -> None:
        native, got = self.info.sample_rate, self.stats.frames_decoded
        promised = self.info.frames_header if self.info.length_exact else 0
        said = msgs.summary()
        if self._errors:
            notes = f"; decoder said: {said}" if said else ""
            at, why = self._errors[0]
            more = f" and {len(self._errors) - 1} more" if len(self._errors) > 1 else ""
            of = f" of {promised} the header promised" if promised else ""
            if self._errors[-1][0] == got:  # nothing decoded after the last error
                self.stats.truncated = True
                self.stats.warnings.append(
                    f"decoding failed at {at / native:.2f} s ({why}{more}{notes}); kept the "
                    f"{got} frames before it{of}: file is truncated")
            else:
                self.stats.damaged = True
                lost = (f"by up to {(promised - got) / native:.3f} s (the audio lost)"
                        if promised > got else "by the length of the audio lost")
                self.stats.warnings.append(
                    f"decoding errors at {at / native:.2f} s ({why}{more}{notes}); decoding "
                    f"resumed after them ({got} frames{of}), so window times after "
                    f"{at / native:.2f} s may be early {lost}: file is damaged")
            return
        if 0 < promised and got < promised:
            self.stats.truncated = True
            self.stats.warnings.append(
                f"header promised {promised} frames ({promised / native:.2f} s) but only "
                f"{got} decoded ({got / native:.2f} s): file is truncated"
                + (f" (decoder said: {said})" if said else ""))
        elif said:
            self.stats.warnings.append(f"decoder reported problems (the audio may contain "
                                       f"glitches): {said}")


def read_excerpt(path, start_s: float, end_s: float, channel="mix") -> tuple[np.ndarray, int]:
    """Decode the native-rate mono excerpt [start_s, end_s) of a file (for playback clips).

    Returns (samples (n,) float32, native sample rate in Hz); shorter (or empty) where the
    file ends before ``end_s``."""
    info = probe(path)
    sr = info.sample_rate
    a, b = max(0, int(start_s * sr)), max(0, int(math.ceil(end_s * sr)))
    msgs = DecoderMessages()
    vf = UnclampedMp3(path) if info.format == "MP3" and not info.length_exact else None
    try:
        with msgs, sf.SoundFile(vf or str(path)) as f:
            data = np.zeros((0, info.channels), np.float32)
            try:
                ok = a < f.frames and f.seek(a) == a
            except sf.LibsndfileError:  # past a truncated file's decodable end
                ok = False
            if ok:
                data = f.read(max(b - a, 0), dtype="float32", always_2d=True)
    except Exception as e:
        raise _decoder_error(path, e, msgs) from None
    finally:
        msgs.close()
        if vf is not None:
            vf.close()
    if channel == "mix":
        return data.mean(axis=1).astype(np.float32), sr
    return data[:, int(channel)].copy(), sr


def write_wav(path, samples: np.ndarray, sample_rate: int) -> None:
    """Write a 16-bit PCM wav (used for short playback excerpts in reports)."""
    try:
        sf.write(str(path), np.clip(samples, -1, 1), int(sample_rate), subtype="PCM_16")
    except Exception as e:
        raise WsdIOError(f"cannot write audio ({e})", path) from None
