"""``wsd`` entry point: the typer app (built on first use), and the mapping of errors to exit
statuses."""

from __future__ import annotations

import os
import sys


def _build_app():
    """The typer app with every command (imports typer and the command modules)."""
    import typer

    from wsd import __version__
    from wsd.cli import cluster as _cluster
    from wsd.cli import detect as _detect
    from wsd.cli import embed as _embed
    from wsd.cli import export as _export
    from wsd.cli import info as _info
    from wsd.cli import report as _report
    from wsd.cli import search as _search
    from wsd.cli import slice as _slice
    from wsd.cli import train as _train

    app = typer.Typer(
        name="wsd",
        help="Find, sort and flag whale and dolphin sounds in recording archives too large "
             "to listen to. Each command reads and writes self-describing HDF5; see `man wsd` "
             "or `wsd COMMAND --help`.",
        no_args_is_help=True,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )

    def _version(value: bool):
        if value:
            print(f"wsd {__version__}")
            raise typer.Exit()

    @app.callback()
    def _root(version: bool = typer.Option(False, "--version", callback=_version,
                                           is_eager=True, help="Print the version and exit.")):
        """Find, sort and flag whale and dolphin sounds in recording archives too large to
        listen to."""

    app.command("slice")(_slice.slice_cmd)
    app.command("train")(_train.train_cmd)
    app.command("embed")(_embed.embed_cmd)
    app.command("detect")(_detect.detect_cmd)
    app.command("cluster")(_cluster.cluster_cmd)
    app.command("search")(_search.search_cmd)
    app.command("index")(_search.index_cmd)
    app.command("report")(_report.report_cmd)
    app.command("info")(_info.info_cmd)
    app.command("export")(_export.export_cmd)
    return app


_app = None


def get_app():
    """The typer app, built on first use (``wsd.cli.main.app`` is the same)."""
    global _app
    if _app is None:
        _app = _build_app()
    return _app


def __getattr__(name: str):
    # the app is built lazily, so that `wsd slice --workers N` can start its workers before
    # typer and the command modules are imported (wsd.cli.early)
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, called without ``argv``, exit with) the status of
    DESIGN.md's table. Every error is one line on stderr, ``wsd: error: PATH: reason``."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if args[:1] == ["slice"]:  # its worker processes start while we import and parse
        from wsd.cli.early import start_early

        start_early(args)
    import signal

    from wsd.cli import common
    from wsd.runtime import signals

    _quiet_failed_writes()
    common.ARGV[:] = args
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if main_thread:
        signals.install()
    try:
        code = _run(args)
    finally:
        if main_thread:
            for s, h in before.items():
                if h is not None:
                    signal.signal(s, h)
    if argv is None:
        from wsd.io.store import atomic

        if atomic.write_failed:  # HDF5 would retry its failed writes at exit and may crash
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(int(code))
        sys.exit(int(code))
    return int(code)


def _quiet_failed_writes() -> None:
    """After a failed write (a full disk), h5py objects of the abandoned file complain as
    they are garbage-collected ("Exception ignored in ... _dealloc"): the error was
    reported once already, so those echoes are dropped."""
    from wsd.io.store import atomic

    default = sys.unraisablehook

    def hook(u):
        if atomic.write_failed or atomic.write_failure(u.exc_value):
            return
        default(u)
    if getattr(sys.unraisablehook, "__name__", "") != "hook":
        sys.unraisablehook = hook


def _run(args: list[str]) -> int:
    import typer
    import typer.exceptions as typer_exc

    try:  # typer >= 0.23 carries its own copy of click: its usage errors are those
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover - older typer on the real click
        from click import exceptions as click_exc
    exits = tuple({getattr(m, "Exit") for m in (typer_exc, click_exc) if hasattr(m, "Exit")})
    aborts = tuple({getattr(m, "Abort") for m in (typer_exc, click_exc) if hasattr(m, "Abort")})

    from wsd.errors import ExitStatus, WsdError

    show_tb = "--traceback" in args
    cmd = typer.main.get_command(get_app())
    sub = next((a for a in args if not a.startswith("-")), None)
    if sub and ("-h" in args or "--help" in args):  # a command's help: the registry's names
        from wsd.cli.common import fill_help

        fill_help(cmd, only=sub)

    def traceback_if_asked():
        if show_tb:
            import traceback
            traceback.print_exc()

    from wsd.runtime.signals import Interrupted, swallowed

    def interrupted(signum=None) -> int:
        what = " (SIGTERM)" if signum == 15 else ""
        print(f"wsd: interrupted{what}; finished parts are kept for a re-run, nothing else "
              "was written", file=sys.stderr)
        return ExitStatus.INTERRUPTED

    try:
        if args[:1] == ["train"]:  # `-p help` needs no files: answer it before the parser
            from wsd.cli.train import arch_help_request, print_arch_params

            arch = arch_help_request(args[1:])
            if arch is not None:
                print_arch_params(arch)
                return 0
        rv = cmd.main(args=args, prog_name="wsd", standalone_mode=False)
        if rv == ExitStatus.INTERRUPTED:  # the framework's own KeyboardInterrupt -> 130
            return interrupted()
        if swallowed() is not None:  # raised where Python ignores exceptions, then lost
            return interrupted(swallowed())
        return rv if isinstance(rv, int) else 0
    except Interrupted as e:
        return interrupted(e.signum)
    except WsdError as e:
        traceback_if_asked()
        if e.status == ExitStatus.OK:  # e.g. the reader of `wsd export | head` went away
            return 0
        print(f"wsd: error: {e}", file=sys.stderr)
        return int(e.status)
    except exits as e:
        return e.exit_code
    except click_exc.ClickException as e:
        e.show()
        return ExitStatus.USAGE if isinstance(e, click_exc.UsageError) else e.exit_code
    except (KeyboardInterrupt, *aborts):
        return interrupted()
    except MemoryError:
        print("wsd: error: out of memory", file=sys.stderr)
        return ExitStatus.ERROR
    except OSError as e:  # met outside the paths that name their file
        traceback_if_asked()
        from wsd.io.store.atomic import FULL

        if e.errno in FULL:
            print("wsd: error: no space left on the device", file=sys.stderr)
        else:
            print(f"wsd: error: {e.filename + ': ' if getattr(e, 'filename', None) else ''}"
                  f"{e.strerror or e}", file=sys.stderr)
        return ExitStatus.IO_ERROR
    except Exception as e:  # a bug: say so in one line unless --traceback
        traceback_if_asked()
        print(f"wsd: internal error: {type(e).__name__}: {e} (run with --traceback for "
              "details)", file=sys.stderr)
        return ExitStatus.ERROR
