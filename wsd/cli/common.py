"""What every command shares: messages and progress on stderr, output checks, history."""

from __future__ import annotations

import contextlib
import datetime as _dt
import sys
from typing import Callable, Iterator

import typer

QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or notes; warnings and "
                     "errors are still printed.")
FORCE = typer.Option(False, "--force", "-f", help="Overwrite the output if it exists.")
TRACEBACK = typer.Option(False, "--traceback", help="On error, show the Python traceback.")
AMP = typer.Option(None, "--amp/--no-amp", help="bfloat16 autocast [default: on for cuda; "
                   "on the CPU for convae, gan, vanillacnn, xception, vit and inception when "
                   "it computes bfloat16 natively (AVX512-BF16 or AMX), where they measured "
                   "2-11x faster; off otherwise].")


class Reporter:
    """Messages on stderr; rich progress bars only when stderr is a terminal and not -q."""

    def __init__(self, quiet: bool = False, command: str = "wsd"):
        from rich.console import Console

        self.quiet = quiet
        self.command = command
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.show_progress = (not quiet) and sys.stderr.isatty()
        self.warnings = 0

    def note(self, msg: str) -> None:
        if not self.quiet:
            self.console.print(f"{self.command}: {msg}", markup=False)

    def warn(self, msg: str, path: str | None = None) -> None:
        self.warnings += 1
        text = f"{self.command}: warning: {path + ': ' if path else ''}{msg}"
        self.console.print(text, markup=False, style="yellow")

    @contextlib.contextmanager
    def progress(self, description: str, total: float | None,
                 unit: str = "") -> Iterator[Callable[..., None]]:
        """Yield ``advance(n=1, **fields)``; a no-op when progress is hidden."""
        if not self.show_progress:
            yield lambda n=1, **kw: None
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[status]}")]
        with Progress(*cols, console=self.console, transient=False) as prog:
            task = prog.add_task(description, total=total, status="")

            def advance(n=1, status: str | None = None, **_):
                kw = {"status": status} if status is not None else {}
                prog.update(task, advance=n, **kw)
            yield advance


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def history_entry(command: str) -> str:
    """The history line for this invocation: time, version, command and its arguments."""
    from wsd.io.store import history_line

    argv = sys.argv[2:] if len(sys.argv) > 2 and sys.argv[1] == command else sys.argv[1:]
    return history_line(command, argv, now())
