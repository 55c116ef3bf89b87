"""Outputs written whole or not at all: the one atomic-write helper, the output lock and the
checks made before any work.

Every file or folder wsd writes (an output, a shard, a checkpoint, a report) is first written
to a hidden temporary name beside it, ``.NAME.PID.tmp``, and renamed into place when
complete. A killed run leaves no half output that Make would take as up to date; a failed
one removes its temporary. Without ``force`` the rename refuses to replace an output that
appeared meanwhile (another process won the race: exit 73), and :func:`output_lock` keeps
two wsd processes from writing the same output (and its shard folder) at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from wsd.errors import OutputError, WsdIOError

#: ``.NAME.PID.tmp``: what a temporary of NAME is called (PID: the writing process).
TEMP_NAME = re.compile(r"^\.(.+)\.(\d+)\.tmp$")
#: errno values that mean the disk (or a quota, or a file-size limit) is full.
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def temp_path(path) -> Path:
    """The hidden temporary beside ``path`` that this process writes it to."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


class _Same:
    """Whether an input is the output ``path``: the same file (device and inode) when both
    exist, else the same real path. Made for many inputs (thousands are checked in
    milliseconds): the output is looked at once, and an input's path is resolved only where
    it could name the output (a symlink, or the output's real file name)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            st = os.stat(path)
            self.key = (st.st_dev, st.st_ino)
        except OSError:
            self.key = None
        self.real = os.path.realpath(path)
        self.name = os.path.basename(self.real)

    def __call__(self, i: Path) -> bool:
        if self.key is not None:
            try:
                st = os.stat(i)
                return (st.st_dev, st.st_ino) == self.key
            except OSError:
                pass
        name = os.path.basename(i)
        if name == self.name or name in ("", ".", "..") or os.path.islink(i):
            return os.path.realpath(i) == self.real
        return False


def check_output(path, force: bool, inputs: Iterable = (), folder: bool = False) -> Path:
    """Refuse (exit 73) before any work: an output that exists without ``force``, that is
    (or, for a ``folder`` output, holds) one of ``inputs``, or whose folder is missing or not
    writable."""
    path = Path(path)
    same = _Same(path)
    for i in inputs:
        if i is None:
            continue
        i = Path(i)
        if same(i):
            raise OutputError(f"is also an input ({i}): it would be overwritten", path)
        if folder and os.path.realpath(i).startswith(os.path.realpath(path) + os.sep):
            raise OutputError(f"holds an input ({i}): replacing the folder would delete it",
                              path)
    if not folder and path.is_dir():
        raise OutputError("is a folder", path)
    if folder and path.exists() and not path.is_dir():
        raise OutputError("exists and is not a folder", path)
    if path.exists() and not force and not (folder and not any(path.iterdir())):
        raise OutputError("exists (use --force to overwrite)", path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"folder {parent} does not exist", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"folder {parent} is not writable", path)
    return path


#: Set when a write failed: HDF5 may still hold dirty buffers for the file, which it would
#: try (and fail, sometimes crashing) to flush when the process ends; the CLI then leaves
#: with ``os._exit`` after cleaning up (:func:`wsd.cli.main.main`).
write_failed = False
_FULL_TEXT = re.compile(r"errno = (28|27|122)\b|No space left|File too large|Disk quota")


def write_failure(e: BaseException) -> bool:
    """Whether ``e`` (an OSError, or the RuntimeError h5py raises closing a file whose
    writes failed) means the disk, a quota or a file-size limit is full."""
    return getattr(e, "errno", None) in FULL or (
        isinstance(e, (OSError, RuntimeError)) and bool(_FULL_TEXT.search(str(e))))


def io_error(e: BaseException, path, doing: str = "cannot write") -> WsdIOError:
    """A one-line :class:`WsdIOError` (exit 74) for an OSError met writing ``path``."""
    global write_failed
    write_failed = True
    if write_failure(e):
        return WsdIOError(f"{doing}: no space left on the device (or a quota or file-size "
                          f"limit reached)", path)
    reason = getattr(e, "strerror", None) or str(e).split("\n")[0][:200]
    return WsdIOError(f"{doing}: {reason}", path)


@contextlib.contextmanager
def in_memory_h5(path) -> Iterator:
    """An HDF5 file built in memory and written to ``path`` in one go when the block ends:
    for small files (models, checkpoints, shards of task results), so that a full disk is
    an OSError from a plain write and HDF5 never holds a half-written file."""
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        yield f
    with open(path, "wb") as out:
        out.write(buf.getbuffer())


def ensure_space(path, nbytes: int) -> None:
    """Refuse (exit 74) before writing about ``nbytes`` to ``path`` when the disk (or the
    process's file-size limit) has clearly not room for them."""
    import resource

    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    room = free if soft == resource.RLIM_INFINITY else min(free, soft)
    need = int(nbytes * 1.05) + (1 << 20)
    if need > room:
        raise WsdIOError(f"cannot write: no space left on the device (needs about "
                         f"{need / 1e6:.1f} MB, {room / 1e6:.1f} MB free)", path)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


def _commit(tmp: Path, path: Path, force: bool) -> None:
    """Rename ``tmp`` to ``path``; without ``force`` never replace what another process put
    there since the check (a file: a hard link fails if the name exists; a folder: rename
    fails on a non-empty folder)."""
    if tmp.is_dir():
        if path.is_dir() and any(path.iterdir()):
            if not force:
                raise OutputError("was created by another process meanwhile", path)
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
            return
        with contextlib.suppress(OSError):
            path.rmdir()  # an empty folder (ours to fill)
        try:
            os.rename(tmp, path)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise OutputError("was created by another process meanwhile", path) from None
            raise
        return
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError("was created by another process meanwhile (use --force to "
                          "overwrite)", path) from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise OutputError("was created by another process meanwhile", path) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


class AtomicOutput:
    """An output being written: ``tmp`` (a hidden temporary beside ``path``; an empty folder
    with ``folder``), then :meth:`commit` (rename into place) or :meth:`abort` (remove).

    For writers that outlive one block (a shard filled while a recording decodes);
    :func:`atomic_output` is the same as a context manager."""

    def __init__(self, path, force: bool = False, *, folder: bool = False,
                 inputs: Iterable = ()):
        self.path = check_output(path, force, inputs, folder)
        self.force = force
        self.tmp = temp_path(self.path)
        _remove(self.tmp)
        if folder:
            try:
                self.tmp.mkdir()
            except OSError as e:
                raise io_error(e, self.path, "cannot create") from None

    def commit(self) -> None:
        """Rename the temporary into place (not interrupted by Ctrl-C: the signal is
        raised after it, :func:`wsd.runtime.signals.critical`)."""
        from wsd.runtime.signals import check, critical

        try:
            check()  # an interruption swallowed on the way: nothing is committed
            with critical():
                _commit(self.tmp, self.path, self.force)
        except OSError as e:
            self.abort()
            raise io_error(e, self.path) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        _remove(self.tmp)


@contextlib.contextmanager
def atomic_output(path, force: bool = False, *, folder: bool = False,
                  inputs: Iterable = ()) -> Iterator[Path]:
    """Yield a temporary path (a new empty folder with ``folder``) beside ``path``; rename it
    to ``path`` when the block succeeds. On any failure, interruption included, the
    temporary is removed and the error raised; an OSError met writing becomes a one-line
    :class:`WsdIOError` naming ``path`` (exit 74)."""
    out = AtomicOutput(path, force, folder=folder, inputs=inputs)
    with writing(out):
        yield out.tmp
    out.commit()


@contextlib.contextmanager
def writing(out: AtomicOutput) -> Iterator[None]:
    """A block that writes ``out``'s temporary: on any failure the temporary is removed and
    the error raised, an OSError met writing as a one-line :class:`WsdIOError` naming the
    output (exit 74), as in :func:`atomic_output`. For an output written in several blocks
    (between which other work runs), committed by the caller."""
    try:
        yield
    except RuntimeError as e:
        out.abort()
        if write_failure(e):
            raise io_error(e, out.path) from None
        raise
    except OSError as e:
        out.abort()
        name = getattr(e, "filename", None)
        if isinstance(e, (FileNotFoundError, PermissionError)) and name and \
                Path(name).name != out.tmp.name:
            from wsd.errors import InputMissingError
            raise InputMissingError(e.strerror or str(e), name) from None
        raise io_error(e, out.path) from None
    except BaseException:
        out.abort()
        raise


def remove_stale_temps(folder, owner=lambda name: True) -> None:
    """Delete temporaries ``.NAME.PID.tmp`` in ``folder`` whose NAME satisfies ``owner``
    and whose process is gone (or is this one): what killed runs left behind."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for n in names:
        m = TEMP_NAME.match(n)
        if m and owner(m.group(1)):
            pid = int(m.group(2))
            if pid == os.getpid() or not pid_alive(pid):
                _remove(Path(folder) / n)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def output_lock(path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (``.NAME.lock`` beside it) for the block: a second
    wsd process writing the same output gets exit 73 at once instead of racing the first one
    for the output and its shard folder. The lock dies with the process; the lock file is
    removed on exit."""
    import fcntl

    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"cannot create the lock file {lock.name} ({e.strerror})",
                          path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise OutputError(f"is being written by another wsd process (pid {holder}); "
                              "wait for it or choose another output", path) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()
    finally:
        os.close(fd)
