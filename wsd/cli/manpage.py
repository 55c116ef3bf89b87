"""Generate man pages (roff) from the CLI itself, so they cannot drift from ``--help``.

``python -m wsd.cli.manpage man/`` writes ``wsd.1`` and ``wsd-COMMAND.1``; a test fails when
the committed pages differ from what this produces.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

from wsd import __version__

EXIT_STATUS = [
    ("0", "success"), ("1", "failure (including internal errors)"),
    ("2", "usage error: bad option, unknown choice, missing argument"),
    ("65", "bad input data: undecodable audio, wrong kind of file, settings mismatch"),
    ("66", "input missing: a file or folder does not exist or cannot be read"),
    ("73", "output cannot be created, or exists without --force"),
    ("74", "I/O error while reading or writing"), ("130", "interrupted"),
]


def _esc(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + ln if ln.startswith((".", "'")) else ln)
                     for ln in text.split("\n"))


def _paragraphs(text: str) -> list[str]:
    text = inspect.cleandoc(text or "")
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def _option_lines(cmd: click.Command, ctx: click.Context) -> list[str]:
    out = []
    for p in cmd.get_params(ctx):
        rec = p.get_help_record(ctx)
        if rec is None:
            continue
        names, help_ = rec
        out += [".TP", f"\\fB{_esc(names)}\\fR", _esc(help_ or "")]
    return out


def _footer(command: str) -> list[str]:
    lines = [".SH EXIT STATUS"]
    for code, what in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", _esc(what)]
    lines += [".SH FILES", _esc("Every output is HDF5 with root attributes wsd_format, wsd_kind, "
                                "history and the parameters of the step that wrote it, a "
                                "sources table, and per-row source_id, start_s and end_s. It is "
                                "written to a hidden temporary name and renamed when complete.")]
    if command != "wsd":
        lines += [".SH SEE ALSO", "\\fBwsd\\fR(1)"]
    return lines


def render(command: str, cmd: click.Command, parent: click.Context | None = None) -> str:
    name = "wsd" if command == "wsd" else f"wsd-{command}"
    ctx = click.Context(cmd, info_name=command if parent else "wsd", parent=parent)
    paras = _paragraphs(cmd.help or "")
    short = paras[0].rstrip(".") if paras else ""
    lines = [f'.TH {name.upper()} 1 "" "wsd {__version__}" "wsd manual"', ".SH NAME",
             f"{_esc(name)} \\- {_esc(short)}", ".SH SYNOPSIS",
             f"\\fB{_esc(' '.join(ctx.command_path.split()))}\\fR "
             + _esc(" ".join(cmd.collect_usage_pieces(ctx)))]
    lines += [".SH DESCRIPTION"]
    for p in paras:
        lines += [_esc(p), ".PP"]
    if lines[-1] == ".PP":
        lines.pop()
    if isinstance(cmd, click.Group):
        lines += [".SH COMMANDS"]
        for sub in cmd.list_commands(ctx):
            c = cmd.get_command(ctx, sub)
            lines += [".TP", f"\\fB{sub}\\fR", _esc(c.get_short_help_str(200)) +
                      f" See \\fBwsd\\-{sub}\\fR(1)."]
    lines += [".SH OPTIONS", *_option_lines(cmd, ctx), *_footer(command)]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """File name -> page text for ``wsd`` and each of its commands."""
    import typer

    from wsd.cli.main import app

    group = typer.main.get_command(app)
    root = click.Context(group, info_name="wsd")
    out = {"wsd.1": render("wsd", group)}
    for sub in group.list_commands(root):
        out[f"wsd-{sub}.1"] = render(sub, group.get_command(root, sub), root)
    return out


def main(folder: str) -> None:
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (d / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "man")
