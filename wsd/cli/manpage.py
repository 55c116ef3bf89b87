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
    text = inspect.cleandoc(text or "").replace("`", "")
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def _option_lines(cmd: click.Command, ctx: click.Context) -> list[str]:
    out = []
    for p in cmd.get_params(ctx):
        rec = p.get_help_record(ctx)
        if rec is None:
            continue
        names, help_ = rec
        out += [".TP", f"\\fB{_esc(names)}\\fR", _esc((help_ or "").replace("`", ""))]
    return out


EXAMPLES = {
    "wsd": ["wsd slice orchive/ -o win.h5", "wsd train win.h5 -o enc.h5",
            "wsd embed win.h5 --model enc.h5 -o emb.h5", "wsd detect win.h5 --silence -o sil.h5",
            "wsd cluster emb.h5 --mask sil.h5 -o cl.h5", "wsd report cl.h5 sil.h5 -o report/",
            "wsd export sil.h5 --format raven > sil.txt"],
    "slice": ["wsd slice calls/*.wav -o win.h5 --sample-rate 44100",
              "wsd slice @archive-files.txt -o win.h5 --join virtual --workers 8",
              "wsd slice clips/ --labels labels.csv -o win.h5"],
    "train": ["wsd train win.h5 -o enc.h5",
              "wsd train win.h5 --arch convae --epochs 20 -o ae.h5",
              "wsd train win.h5 --arch readout --encoder ae.h5 --positive call -o det.h5"],
    "embed": ["wsd embed win.h5 --model enc.h5 -o emb.h5 --workers 2"],
    "detect": ["wsd detect win.h5 --silence -o sil.h5",
               "wsd detect win.h5 --model det.h5 --min-gap 0.5 -o calls.h5"],
    "cluster": ["wsd cluster emb.h5 --per-file -k 30 -o cl.h5",
                "wsd cluster emb.h5 --mask sil.h5 --sample 5000 -o cl.h5"],
    "report": ["wsd report cl.h5 sil.h5 -o report/"],
    "info": ["wsd info emb.h5", "wsd info cl.h5 --json"],
    "export": ["wsd export sil.h5 --format raven > sil.txt",
               "wsd export cl.h5 --label-from cluster > labels.csv"],
}


def _footer(command: str) -> list[str]:
    lines = []
    if EXAMPLES.get(command):
        lines += [".SH EXAMPLES", ".nf", *(_esc(e) for e in EXAMPLES[command]), ".fi"]
    lines += [".SH EXIT STATUS"]
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
    if hasattr(cmd, "list_commands"):
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

    from wsd.cli.common import fill_help

    group = typer.main.get_command(app)
    fill_help(group)
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
