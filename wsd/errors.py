"""One error root for wsd, and the exit statuses the CLI maps errors to.

Every failure a user can cause (bad audio, a missing file, an output that exists) is a
:class:`WsdError` subclass carrying the offending path and a one-line reason; the CLI prints
``wsd: PATH: reason`` on stderr and exits with the subclass's status. Cores raise these and
never print or exit.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Exit codes, following sysexits.h where one fits."""

    OK = 0
    ERROR = 1
    USAGE = 2
    DATA_ERROR = 65  # EX_DATAERR: the input is there but unusable
    NO_INPUT = 66  # EX_NOINPUT: the input does not exist or cannot be read
    CANT_CREATE = 73  # EX_CANTCREAT: output cannot be created, or exists without --force
    IO_ERROR = 74  # EX_IOERR
    INTERRUPTED = 130


class WsdError(Exception):
    """Base of every error wsd reports to a user.

    Parameters
    ----------
    reason : one line saying what is wrong (and, where it helps, what to do).
    path : the file the error is about, if any; printed first.
    """

    status = ExitStatus.ERROR

    def __init__(self, reason: str, path: str | None = None):
        super().__init__(reason, path)
        self.reason = reason
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class UsageError(WsdError):
    """Options that do not make sense together, or an unknown choice."""

    status = ExitStatus.USAGE


class BadInputError(WsdError):
    """Input exists but its content is unusable (undecodable audio, wrong kind of file)."""

    status = ExitStatus.DATA_ERROR


class InputMissingError(WsdError):
    """Input file or folder does not exist or cannot be opened."""

    status = ExitStatus.NO_INPUT


class OutputError(WsdError):
    """Output cannot be created, or exists and --force was not given."""

    status = ExitStatus.CANT_CREATE


class WsdIOError(WsdError):
    """Reading or writing failed part way (disk full, device error)."""

    status = ExitStatus.IO_ERROR


class SettingsMismatchError(BadInputError):
    """Data made with other spectrogram settings than a model or another file expects."""
