"""What every command shares: the shared options, the renderer of progress events on
stderr, and the history line of this invocation."""

from __future__ import annotations

import contextlib
import datetime as _dt
import sys
from typing import Callable, Iterator

import typer

from wsd.errors import ExitStatus, WsdError
from wsd.pipeline.progress import Progress

QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or notes; warnings and "
                     "errors are still printed.")
FORCE = typer.Option(False, "--force", "-f", help="Overwrite the output if it exists.")
TRACEBACK = typer.Option(False, "--traceback", help="On error, show the Python traceback.")
AMP = typer.Option(None, "--amp/--no-amp", help="bfloat16 autocast [default: on for cuda; "
                   "on the CPU for {bf16_architectures} when it computes bfloat16 natively "
                   "(AVX512-BF16 or AMX), where they measured faster; off otherwise]. Where "
                   "a model cannot run in bfloat16 here, float32 with a note.")


#: The arguments ``main()`` was given (for the history line; not sys.argv, which is the
#: test runner's or the caller's when wsd runs in-process).
ARGV: list[str] = []


DEVICE = typer.Option("auto", "--device", help="auto (cuda when present), cpu or cuda.")


def workers_option(what: str):
    """``--workers/-j N``: ``what`` runs in N local processes."""
    return typer.Option(1, "--workers", "-j", help=f"{what} in this many local processes.")


def scheduler_option(what: str = "the tasks"):
    """``--scheduler ADDRESS``: a Dask distributed scheduler that runs ``what``."""
    return typer.Option(None, "--scheduler", help=f"Dask distributed scheduler ADDRESS "
                        f"(tcp://host:port) to run {what} on; its workers must see the "
                        "same paths.")


class Reporter(Progress):
    """Renders the coordinators' progress events (:class:`wsd.pipeline.progress.Progress`):
    messages on stderr; rich progress bars only when stderr is a terminal and not -q."""

    def __init__(self, quiet: bool = False, command: str = "wsd"):
        from rich.console import Console

        super().__init__()
        self.quiet = quiet
        self.command = command
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.show_progress = (not quiet) and sys.stderr.isatty()

    def note(self, msg: str) -> None:
        if not self.quiet:
            self.console.print(f"{self.command}: {msg}", markup=False)

    def warn(self, msg: str, path: str | None = None) -> None:
        self.warnings += 1
        text = f"{self.command}: warning: {path + ': ' if path else ''}{msg}"
        self.console.print(text, markup=False, style="yellow")

    @contextlib.contextmanager
    def task(self, description: str, total: float | None,
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
    """The history line for this invocation: time, version, command and the arguments
    ``main()`` was given (after the command name)."""
    from wsd.io.store.schema import history_line

    argv = list(ARGV)
    if command in argv:
        argv = argv[argv.index(command) + 1:]
    return history_line(command, argv, now())


class PipeClosed(WsdError):
    """The reader of standard output went away (``wsd export ... | head``): not an error."""

    status = ExitStatus.OK


@contextlib.contextmanager
def stdout_guard():
    """Around writing data to stdout: a closed pipe ends the command quietly (exit 0); a
    full disk or other write error is one line (exit 74). Either way, later writes to
    stdout (Python's own flush at exit) go to /dev/null instead of failing again."""

    try:
        yield sys.stdout
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise PipeClosed("standard output was closed") from None
    except OSError as e:
        _silence_stdout()
        from wsd.io.store.atomic import io_error

        raise io_error(e, "<stdout>") from None


def _silence_stdout() -> None:
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


def registry_help() -> dict[str, str]:
    """The values of the ``{name}`` fields that help texts may hold, read from the model
    registry (this imports torch, so it runs only when help is shown)."""
    from wsd import models

    by_kind: dict[str, list[str]] = {}
    for name in models.names():
        by_kind.setdefault(models.get(name).kind, []).append(name)
    self_sup = [n for k, v in by_kind.items() if k != "classifier" for n in v]
    lines = []
    for name in models.names():
        cls = models.get(name)
        doc = (cls.__doc__ or "").strip().split("\n")[0].rstrip(".")
        lines.append(f"{name} ({'supervised' if cls.kind == 'classifier' else 'self-supervised'}"
                     f"): {doc}.")
    return {"architectures": ", ".join(sorted(self_sup)) + " (self-supervised); "
            + ", ".join(by_kind.get("classifier", [])) + " (supervised)",
            "architecture_list": "\n\n".join(lines),
            "bf16_architectures": ", ".join(n for n in models.names()
                                            if getattr(models.get(n), "cpu_bf16", False))}


def fill_help(cmd, only: str | None = None) -> None:
    """Fill the ``{architectures}``-style fields in the help of ``cmd`` (a click command or
    group) and its subcommands (``only``: just that one) with :func:`registry_help`'s
    values; texts without fields cost nothing (the registry, which imports torch, is read
    only when a field is met)."""
    values = None

    def fill(text):
        nonlocal values
        if not text or "{" not in text:
            return text
        values = values or registry_help()
        for k, v in values.items():
            text = text.replace("{" + k + "}", v)
        return text

    subs = getattr(cmd, "commands", {})
    cmds = [subs[only]] if only in subs else [cmd, *subs.values()]
    for c in cmds:
        c.help = fill(c.help)
        for prm in c.params:
            if getattr(prm, "help", None):
                prm.help = fill(prm.help)
