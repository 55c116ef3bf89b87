"""Shard folders: where a command's tasks put their finished parts until it completes.

``OUT.h5.shards/`` holds one file per task (a recording sliced, a chunk of windows
embedded or scored), each written atomically and named by a fingerprint of its inputs and
settings, so a re-run skips the parts already done and a killed worker's task is simply run
again. :class:`ShardFolder` is the one helper that makes, names, lists and removes them; it
only ever deletes files named like shards (and stale temporaries), never a folder that merely
has the name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from wsd.errors import OutputError

#: What a shard is called: ``[op-]NUMBER-FINGERPRINT.h5`` (slice: ``0000003-<hex>.h5``;
#: embed/detect: ``embed-000000016384-<hex>.h5``).
SHARD_NAME = re.compile(r"^(?:[a-z]+-)?\d+-[0-9a-f]{16}\.h5$")


def file_key(path) -> list:
    """What identifies a file's content cheaply: its real path, size and mtime (ns)."""
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


def fingerprint(*parts) -> str:
    """16 hex digits of the SHA-256 of ``parts`` as JSON (str() for other objects)."""
    key = json.dumps(parts, default=str, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class ShardFolder:
    """The shard folder of output ``out``: ``OUT.shards/`` beside it."""

    def __init__(self, out):
        out = Path(out)
        self.out = out
        self.path = out.with_name(out.name + ".shards")

    @classmethod
    def at(cls, folder) -> "ShardFolder":
        """The shard folder ``folder`` itself (as a task sees it: by its path)."""
        folder = Path(folder)
        self = cls.__new__(cls)
        self.path = folder
        name = folder.name[: -len(".shards")] if folder.name.endswith(".shards") else ""
        self.out = folder.with_name(name) if name else folder / "_"
        return self

    def create(self) -> Path:
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create shard folder {self.path} ({e.strerror})",
                              self.out) from None
        return self.path

    def name(self, number: int, key: str, op: str = "", digits: int = 7) -> Path:
        """The shard for task ``number`` with fingerprint ``key``."""
        return self.path / f"{op + '-' if op else ''}{number:0{digits}d}-{key}.h5"

    def remove_stale_temps(self) -> None:
        """Temporaries of killed runs: ``.OUT.PID.tmp`` beside the output and
        ``.SHARD.PID.tmp`` inside the folder (whose process is gone); the folder goes when
        that leaves it empty."""
        from wsd.io.store.atomic import remove_stale_temps

        remove_stale_temps(self.out.parent if str(self.out.parent) else ".",
                           lambda n: n == self.out.name)
        if self.path.is_dir():
            remove_stale_temps(self.path, lambda n: SHARD_NAME.match(n) is not None)
        with contextlib.suppress(OSError):
            self.path.rmdir()  # only when empty

    @contextlib.contextmanager
    def working(self):
        """The folder for the block: created (stale temporaries cleaned), removed when the
        block ends, except after an interruption, when the finished shards stay so that a
        re-run resumes (a failure removes them: they would not help)."""
        self.remove_stale_temps()
        self.create()
        from wsd.runtime.signals import Interrupted

        try:
            yield self
        except (KeyboardInterrupt, Interrupted):
            self.remove_stale_temps()
            raise
        except BaseException:
            self.remove()
            raise
        self.remove()

    def remove(self, keep: set[str] | None = None) -> None:
        """Delete the shards (all, or all but the names in ``keep``) and stale temporaries;
        the folder goes when that leaves it empty."""
        if self.path.is_dir():
            for p in self.path.iterdir():
                if SHARD_NAME.match(p.name) and (keep is None or p.name not in keep):
                    with contextlib.suppress(OSError):
                        p.unlink()
        self.remove_stale_temps()
