"""The one progress-event protocol: what every coordinator reports while it works.

A coordinator takes a :class:`Progress` and calls ``note`` (what it is doing or did),
``warn`` (something the user should know, with the file it is about) and ``task`` (a
context manager for a long step, yielding ``advance(n=1, status=None)``). The base class
is silent, for scripts and tests; the CLI's :class:`wsd.cli.common.Reporter` renders the
same events as messages and rich progress bars on stderr.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

Advance = Callable[..., None]


class Progress:
    """Silent progress: records warnings (``warnings``: their count), shows nothing."""

    def __init__(self):
        self.warnings = 0

    def note(self, msg: str) -> None:
        """A line saying what happened (hidden by ``-q``)."""

    def warn(self, msg: str, path: str | None = None) -> None:
        """Something the user must see, about ``path`` when given."""
        self.warnings += 1

    @contextlib.contextmanager
    def task(self, description: str, total: float | None,
             unit: str = "") -> Iterator[Advance]:
        """A long step of ``total`` units; yields ``advance(n=1, status=None)``."""
        yield lambda n=1, status=None, **_: None
