"""``wsd`` entry point: the typer app, and the mapping of errors to exit statuses."""

from __future__ import annotations

import sys

import typer

from wsd import __version__
from wsd.cli import cluster as _cluster
from wsd.cli import detect as _detect
from wsd.cli import embed as _embed
from wsd.cli import export as _export
from wsd.cli import info as _info
from wsd.cli import report as _report
from wsd.cli import slice as _slice
from wsd.cli import train as _train
from wsd.cli import info_extra

app = typer.Typer(
    name="wsd",
    help="Find, sort and flag whale and dolphin sounds in recording archives too large to "
         "listen to. Each command reads and writes self-describing HDF5; see `man wsd` or "
         "`wsd COMMAND --help`.",
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
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Find, sort and flag whale and dolphin sounds in recording archives too large to
    listen to."""


app.command("slice")(_slice.slice_cmd)
app.command("train")(_train.train_cmd)
app.command("embed")(_embed.embed_cmd)
app.command("detect")(_detect.detect_cmd)
app.command("cluster")(_cluster.cluster_cmd)
app.command("report")(_report.report_cmd)
app.command("info")(_info.info_cmd)
app.command("export")(_export.export_cmd)
info_extra.setdefault("model", []).append(_train.model_info)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) the status of DESIGN.md's table."""
    import typer.exceptions as typer_exc

    try:  # typer >= 0.23 carries its own copy of click: its usage errors are those
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover - older typer on the real click
        from click import exceptions as click_exc
    exits = tuple({getattr(m, "Exit") for m in (typer_exc, click_exc) if hasattr(m, "Exit")})
    aborts = tuple({getattr(m, "Abort") for m in (typer_exc, click_exc) if hasattr(m, "Abort")})

    from wsd.errors import ExitStatus, WsdError

    args = sys.argv[1:] if argv is None else argv
    show_tb = "--traceback" in args
    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=args, prog_name="wsd", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except WsdError as e:
        if show_tb:
            import traceback
            traceback.print_exc()
        print(f"wsd: error: {e}", file=sys.stderr)
        code = int(e.status)
    except exits as e:
        code = e.exit_code
    except click_exc.ClickException as e:
        e.show()
        code = ExitStatus.USAGE if isinstance(e, click_exc.UsageError) else e.exit_code
    except (KeyboardInterrupt, *aborts):
        print("wsd: interrupted", file=sys.stderr)
        code = ExitStatus.INTERRUPTED
    except BrokenPipeError:
        code = ExitStatus.OK  # e.g. `wsd export ... | head`
        try:
            sys.stdout = None
        except Exception:
            pass
    except MemoryError:
        print("wsd: error: out of memory", file=sys.stderr)
        code = ExitStatus.ERROR
    except Exception as e:  # a bug: say so in one line unless --traceback
        if show_tb:
            import traceback
            traceback.print_exc()
        print(f"wsd: internal error: {type(e).__name__}: {e} (run with --traceback for "
              "details)", file=sys.stderr)
        code = ExitStatus.ERROR
    if argv is None:
        sys.exit(int(code))
    return int(code)
