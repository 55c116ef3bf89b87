"""wsd.io.inputs: files, folders, @lists and stdin expanded into audio files."""

import io
from pathlib import Path

import pytest

from wsd.errors import InputMissingError, UsageError
from wsd.io.inputs import expand_inputs


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.wav", "b.MP3", "notes.txt", "sub/c.flac", "sub/deep/d.ogg", "sub/e.csv",
                 "x.wav/inside.aiff", "-dash.wav", "with space.wav", "ünï 鯨.flac"):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    return tmp_path


def names(files):
    return [str(f) for f in files]


def test_files_keep_order_and_folders_are_searched_recursively(tree):
    got = expand_inputs(["sub", "a.wav", "x.wav"])
    assert names(got) == ["sub/c.flac", "sub/deep/d.ogg", "a.wav", "x.wav/inside.aiff"]


def test_folder_search_takes_audio_extensions_only_case_insensitive(tree):
    got = names(expand_inputs(["."]))
    assert "b.MP3" in got and "notes.txt" not in got and "sub/e.csv" not in got
    assert {"-dash.wav", "with space.wav", "ünï 鯨.flac"} <= set(got)


def test_explicit_files_are_taken_whatever_their_extension(tree):
    assert names(expand_inputs(["notes.txt"])) == ["notes.txt"]


def test_duplicates_are_dropped_keeping_the_first(tree):
    got = expand_inputs(["a.wav", "./a.wav", str(tree / "a.wav"), "sub", "sub/c.flac"])
    assert names(got) == ["a.wav", "sub/c.flac", "sub/deep/d.ogg"]


def test_list_file_relative_to_its_folder_with_comments(tree):
    (tree / "lists").mkdir()
    (tree / "lists" / "l.txt").write_text("# archive\n../a.wav\n\n  ../sub/c.flac  \n"
                                          f"{tree / 'with space.wav'}\n")
    got = expand_inputs(["@lists/l.txt"])
    assert [Path(f).resolve() for f in got] == [tree / "a.wav", tree / "sub/c.flac",
                                                tree / "with space.wav"]


def test_stdin_lists_paths(tree):
    got = expand_inputs(["-", "a.wav"], stdin=io.StringIO("sub/c.flac\n-dash.wav\n"))
    assert [Path(f).resolve() for f in got] == [tree / "sub/c.flac", tree / "-dash.wav",
                                                tree / "a.wav"]


@pytest.mark.parametrize("args,err,msg", [
    ([], UsageError, "no audio inputs"),
    (["missing.wav"], InputMissingError, "no such file or folder"),
    (["a.wav", "missing.wav"], InputMissingError, "missing.wav"),
    (["@nolist.txt"], InputMissingError, "list file not found"),
])
def test_missing_inputs(tree, args, err, msg):
    with pytest.raises(err, match=msg):
        expand_inputs(args)


def test_empty_list_and_empty_folder(tree):
    (tree / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(UsageError, match="names no files"):
        expand_inputs(["@empty.txt"])
    (tree / "nothing").mkdir()
    (tree / "nothing" / "readme.md").write_text("x")
    with pytest.raises(InputMissingError, match="folder holds no audio files") as e:
        expand_inputs(["nothing"])
    assert e.value.path == "nothing"
    with pytest.raises(UsageError, match="names no files"):
        expand_inputs(["-"], stdin=io.StringIO(""))
