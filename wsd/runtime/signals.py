"""Ctrl-C and SIGTERM: interrupt anywhere except inside a critical section.

Python raises KeyboardInterrupt at whatever bytecode runs when the signal arrives; inside
h5py's or torch's C code it can be printed as "Exception ignored" and lost, and in the
middle of a rename it could leave a temporary behind. :func:`install` (called by the CLI)
makes SIGINT and SIGTERM raise :class:`Interrupted` (a BaseException) in the main thread,
except within :func:`critical` blocks (a checkpoint write, an output's rename), where the
signal is remembered and raised when the block ends. A signal raised where Python
swallows exceptions (a weakref callback, ``__del__``: "Exception ignored in ...") is not
lost either: :func:`check` raises it again before an output is committed, and the CLI
exits 130 if a command returns after one. Worker processes call
:func:`ignore_in_worker`: the coordinator alone decides, cancels and cleans up.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_depth = 0
_pending: list[int] = []
_raised: list[int] = []  # signals raised as Interrupted in this process


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) or SIGTERM; ``signum`` says which. Not a KeyboardInterrupt, which
    the CLI framework would turn into a silent exit 130 before wsd could say so; like it,
    not an Exception, so ``except Exception`` never swallows it."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum, _frame):
    if _depth > 0:
        _pending.append(signum)
        return
    _raised.append(signum)
    raise Interrupted(signum)


def swallowed() -> int | None:
    """The signal of an :class:`Interrupted` raised in this process, if any. Asked where
    none can be propagating (before committing an output, after a command returned), a
    signal here was swallowed on the way."""
    return _raised[-1] if _raised else None


def check() -> None:
    """Raise :class:`Interrupted` again if one was raised earlier and swallowed."""
    signum = swallowed()
    if signum is not None:
        raise Interrupted(signum)


def install() -> None:
    """Route SIGINT and SIGTERM through :func:`_handler` (main thread only; no-op else)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _raised.clear()  # a new command (the CLI may run several in one process)
    _pending.clear()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _handler)


def ignore_in_worker() -> None:
    """In a worker process: leave Ctrl-C to the coordinating process."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def critical():
    """A block that a signal does not interrupt; one that arrived meanwhile is raised as
    :class:`Interrupted` after the block (if the block succeeded)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if _depth == 0 and _pending:
        signum = _pending[0]
        _pending.clear()
        raise Interrupted(signum)
