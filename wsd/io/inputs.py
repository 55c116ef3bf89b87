"""Expand the AUDIO arguments users give into a list of audio files.

Accepts files, folders (searched recursively for audio extensions only), ``@list.txt`` (one
path a line; blank lines and ``#`` comments skipped; relative paths are relative to the list's
folder) and ``-`` (paths on stdin, one a line).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from wsd.errors import InputMissingError, UsageError

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc"}
)


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                found.append(Path(root) / name)
    return found


def _read_list(text: str, base: Path, source: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        out.append(str(p if p.is_absolute() else base / p))
    if not out:
        raise UsageError("the list names no files", source)
    return out


def expand_inputs(args: list[str], stdin=None) -> list[Path]:
    """Return the audio files named by ``args``, in order, without duplicates.

    A folder contributes its audio files sorted by path; a folder named like a file
    (``x.wav/``) is still a folder. Raises :class:`InputMissingError` naming the first path
    that does not exist, and :class:`UsageError` when nothing is left.
    """
    if not args:
        raise UsageError("no audio inputs given")
    names: list[str] = []
    for arg in args:
        if arg == "-":
            stream = stdin if stdin is not None else sys.stdin
            names.extend(_read_list(stream.read(), Path.cwd(), "<stdin>"))
        elif arg.startswith("@") and len(arg) > 1:
            lst = Path(arg[1:])
            try:
                text = lst.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InputMissingError("list file not found", lst) from None
            except (OSError, UnicodeDecodeError) as e:
                raise InputMissingError(f"cannot read list file ({e})", lst) from None
            names.extend(_read_list(text, lst.parent, str(lst)))
        else:
            names.append(arg)
    files: list[Path] = []
    seen: set[str] = set()
    for name in names:
        p = Path(name)
        if p.is_dir():
            found = _walk(p)
            if not found:
                raise InputMissingError("folder holds no audio files "
                                        f"({', '.join(sorted(AUDIO_EXTENSIONS))})", p)
        elif p.exists():
            found = [p]
        else:
            raise InputMissingError("no such file or folder", p)
        for f in found:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files
