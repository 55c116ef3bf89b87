"""Helpers of :mod:`wsd.io.audio.decode` that decode nothing themselves: what container headers
promise, a view of a tag-less mp3 that lifts libsndfile's length clamp, and the capture of
what C decoders print on file descriptor 2.

Why they exist (each was seen with libsndfile 1.2):

* libsndfile shortens a truncated wav/aiff to the bytes present, so its frame count never
  shows the truncation; the RIFF ``data`` / RF64 ``ds64`` / AIFF ``COMM`` chunks do.
* For an mp3 without a Xing/Info/VBRI tag, libsndfile estimates the length from the file size
  and the *first* frame's bitrate, and then stops decoding at that estimate: a VBR stream
  whose first frame is 256 kbit/s and the rest 64 kbit/s silently loses two thirds of its
  audio. :class:`UnclampedMp3` reports a length 16 times the real one (so the estimate can
  not be reached) and ends the data at the real end, where decoding then stops by itself.
* libmpg123 prints notes ("Illegal Audio-MPEG-Header", "Trying to resync...") straight to
  fd 2; :class:`DecoderMessages` collects them so wsd can report them once per file.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import tempfile
import threading

PCM_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE",
                "ULAW", "ALAW"}


class DecoderMessages:
    """Capture what C libraries write to file descriptor 2 during a decoder call.

    ``with msgs: ...`` points fd 2 at a temporary file (Python's own ``sys.stderr`` is pointed
    at the real stderr meanwhile, so progress bars keep drawing) and afterwards appends the
    captured lines, without libmpg123's ``[src/...] error:`` prefixes, to ``msgs.lines``.
    Capture happens only in the main thread (fd 2 is shared by all threads); elsewhere the
    messages pass through.
    """

    def __init__(self):
        self.lines: list[str] = []
        self._tmp = None

    def __enter__(self):
        self._active = threading.current_thread() is threading.main_thread()
        if not self._active:
            return self
        if self._tmp is None:
            try:
                self._real = os.dup(2)
            except OSError:  # no fd 2 at all (a daemon): nothing to protect
                self._active = False
                return self
            self._tmp = tempfile.TemporaryFile()
            self._writer = open(self._real, "w", buffering=1, closefd=False,
                                encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                                errors="backslashreplace")
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        self._py = sys.stderr
        sys.stderr = self._writer
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if not self._active:
            return
        os.dup2(self._real, 2)
        with contextlib.suppress(Exception):
            self._writer.flush()
        sys.stderr = self._py
        if os.fstat(self._tmp.fileno()).st_size:
            self._tmp.seek(0)
            text = self._tmp.read().decode("utf-8", "replace")
            self._tmp.seek(0)
            self._tmp.truncate()
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("[") and "] " in line:
                    line = line.split("] ", 1)[1]
                for pre in ("error: ", "warning: ", "Warning: ", "Note: "):
                    line = line.removeprefix(pre)
                if line:
                    self.lines.append(line)

    def close(self):
        if self._tmp is not None:
            self._tmp.close()
            self._writer.close()
            os.close(self._real)
            self._tmp = None

    def summary(self) -> str:
        """The distinct messages, most frequent first, as one line ('' if none)."""
        if not self.lines:
            return ""
        counts: dict[str, int] = {}
        for line in self.lines:
            counts[line] = counts.get(line, 0) + 1
        top = sorted(counts, key=lambda k: -counts[k])[:2]
        return "; ".join(k + (f" (x{counts[k]})" if counts[k] > 1 else "") for k in top) \
            + (f"; and {len(counts) - 2} other message(s)" if len(counts) > 2 else "")


def _chunks(f, end: int, order: str):
    """Yield (id, size, body offset) of the RIFF/AIFF chunks from the current position."""
    pos = f.tell()
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return
        cid, size = head[:4], struct.unpack(order + "I", head[4:])[0]
        yield cid, size, pos + 8
        pos += 8 + size + (size & 1)


def container_frames(path, subtype: str) -> int | None:
    """Frames promised by a wav (RIFF/RIFX/RF64) or aiff header; None when unknown.

    libsndfile clamps these to the bytes present, which hides truncation."""
    if subtype not in PCM_SUBTYPES:
        return None
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12:
            return None
        size = os.fstat(f.fileno()).st_size
        if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
            order = ">" if head[:4] == b"RIFX" else "<"
            align, data, ds64 = 0, None, None
            for cid, n, off in _chunks(f, size, order):
                if cid == b"ds64" and n >= 16:
                    f.seek(off)
                    ds64 = struct.unpack("<QQ", f.read(16))[1]
                elif cid == b"fmt " and n >= 14:
                    f.seek(off + 12)
                    align = struct.unpack(order + "H", f.read(2))[0]
                elif cid == b"data":
                    data = ds64 if n == 0xFFFFFFFF and ds64 is not None else n
                    break
            if not align or data in (None, 0, 0xFFFFFFFF):
                return None  # streaming writers leave these as placeholders
            return data // align
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            for cid, n, off in _chunks(f, size, ">"):
                if cid == b"COMM" and n >= 6:
                    f.seek(off + 2)
                    return struct.unpack(">I", f.read(4))[0]
    return None


def mp3_has_length_tag(path) -> bool:
    with open(path, "rb") as f:
        head = f.read(10)
        skip = 0
        if head[:3] == b"ID3" and len(head) == 10:
            skip = 10 + ((head[6] & 127) << 21 | (head[7] & 127) << 14 | (head[8] & 127) << 7
                         | (head[9] & 127))
        f.seek(skip)
        first = f.read(4096)
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


def mp3_audio_end(path) -> int:
    """Byte offset where an mp3's frames end: before a trailing ID3v1 and/or APEv2 tag."""
    with open(path, "rb") as f:
        end = os.fstat(f.fileno()).st_size
        if end >= 128:
            f.seek(end - 128)
            if f.read(3) == b"TAG":
                end -= 128
        if end >= 32:
            f.seek(end - 32)
            foot = f.read(32)
            if foot[:8] == b"APETAGEX":
                size, flags = struct.unpack("<II", foot[12:20])
                end -= size + (32 if flags & (1 << 31) else 0)
    return max(end, 0)


class UnclampedMp3:
    """A read-only file object over an mp3 for ``soundfile.SoundFile`` (virtual I/O).

    It claims to be ``factor`` times longer than it is, so libsndfile's size-based length
    estimate does not cut decoding short; reads past the real audio end return nothing (the
    decoder stops there), except near the claimed end, where the decoder looks for ID3v1/APE
    tags and finds zeros.
    """

    def __init__(self, path, factor: int = 16):
        self.name = str(path)
        self._f = open(path, "rb")
        self._end = mp3_audio_end(path)
        self._claimed = max(self._end, 1) * factor
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._claimed)[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if self._pos >= self._end:
            if self._pos < self._claimed - 4096:
                return b""
            data = bytes(max(0, min(n if n >= 0 else 4096, self._claimed - self._pos)))
        else:
            self._f.seek(self._pos)
            data = self._f.read(min(n, self._end - self._pos) if n >= 0 else
                                self._end - self._pos)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
