"""The man pages in man/ are generated from the CLI: fail when they are stale."""

from pathlib import Path

from wsd.cli.manpage import pages

MAN = Path(__file__).resolve().parent.parent / "man"


def test_man_pages_match_the_cli():
    want = pages()
    have = {p.name for p in MAN.glob("*.1")}
    assert have == set(want), "run `make man`"
    for name, text in want.items():
        assert (MAN / name).read_text(encoding="utf-8") == text, f"{name} is stale: run `make man`"


def test_every_command_has_a_page_with_options_and_exit_status():
    text = pages()
    for cmd in ("slice", "train", "embed", "detect", "cluster", "report", "info", "export"):
        page = text[f"wsd-{cmd}.1"]
        assert ".SH OPTIONS" in page and ".SH EXIT STATUS" in page and "73" in page
