"""wsd.io.labels: reading clip/event CSVs and Raven tables, matching paths, labelling windows."""

import math

import numpy as np
import pytest

from wsd.errors import BadInputError, InputMissingError
from wsd.io.labels import assign, read_labels


def test_clip_labels(tmp_path):
    (tmp_path / "l.csv").write_text("path,label\na.wav,orca\nsub/b.wav, humpback \n")
    t = read_labels(tmp_path / "l.csv")
    assert t.kind == "clip"
    assert t.events == {"a.wav": [(0.0, math.inf, "orca")], "sub/b.wav": [(0.0, math.inf,
                                                                          "humpback")]}


def test_event_labels_with_bom_and_column_order(tmp_path):
    (tmp_path / "l.csv").write_text("\ufefflabel,end_s,start_s,path\nS1,2.5,1.0,x.wav\n"
                                    "S2,4,3,x.wav\n", encoding="utf-8")
    t = read_labels(tmp_path / "l.csv")
    assert t.kind == "events"
    assert t.events["x.wav"] == [(1.0, 2.5, "S1"), (3.0, 4.0, "S2")]


def test_raven_selection_table(tmp_path):
    (tmp_path / "sel.txt").write_text(
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tBegin File\tFile Offset (s)"
        "\tCall Type\n"
        "1\tSpectrogram 1\t1\t100.0\t101.5\trec.wav\t10.0\tS02\n"
        "2\tSpectrogram 1\t1\t200.0\t200.5\tother.flac\t0.25\tS10\n")
    t = read_labels(tmp_path / "sel.txt")
    assert t.kind == "raven"
    assert t.events == {"rec.wav": [(10.0, 11.5, "S02")], "other.flac": [(0.25, 0.75, "S10")]}


@pytest.mark.parametrize("text,msg", [
    ("path,label\n", "header but no rows"),
    ("file,species\na.wav,x\n", "needs columns path,label"),
    ("path,start_s,end_s,label\na.wav,one,2,x\n", r"line 2: start_s 'one' is not a number"),
    ("path,start_s,end_s,label\na.wav,1,2,x\na.wav,3,3,y\n", "line 3: end_s .* is not after"),
    ("path,start_s,end_s,label\na.wav,nan,2,x\n", "not finite"),
    ("path,label\n,x\n", "line 2: empty path"),
    ("Selection\tBegin Time (s)\tEnd Time (s)\n1\t0\t1\n", "Raven table needs a label column"),
])
def test_bad_label_files_name_the_line(tmp_path, text, msg):
    (tmp_path / "l.csv").write_text(text)
    with pytest.raises(BadInputError, match=msg) as e:
        read_labels(tmp_path / "l.csv")
    assert e.value.path == str(tmp_path / "l.csv")


def test_missing_and_unreadable_label_files(tmp_path):
    with pytest.raises(InputMissingError, match="label file not found"):
        read_labels(tmp_path / "none.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x81")
    with pytest.raises(BadInputError, match="cannot read label file"):
        read_labels(tmp_path / "bin.csv")


def test_paths_match_by_file_relative_path_or_trailing_parts(tmp_path, monkeypatch):
    audio = tmp_path / "data" / "calls"
    audio.mkdir(parents=True)
    for n in ("S_2.wav", "S_3.wav", "x.wav"):
        (audio / n).write_bytes(b"")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "l.csv").write_text(
        "path,start_s,end_s,label\n"
        "../data/calls/S_2.wav,0,1,rel\n"  # relative to the label file's folder
        "calls/S_3.wav,0,1,tail\n"  # trailing parts of the audio path
        f"{audio / 'x.wav'},0,1,abs\n"  # absolute
        "S_99.wav,0,1,none\n")
    monkeypatch.chdir(tmp_path / "data")
    t = read_labels(labels / "l.csv")
    assert [e[2] for e in t.for_file(audio / "S_2.wav")] == ["rel"]
    assert [e[2] for e in t.for_file(audio / "S_3.wav")] == ["tail"]
    assert [e[2] for e in t.for_file("calls/x.wav")] == ["abs"]  # relative to the cwd
    assert t.unused() == ["S_99.wav"]
    assert t.for_file(tmp_path / "S_2.wav") == []  # same name, other folder: no match


def test_assign_gives_the_event_covering_most_of_each_window():
    events = [(0.4, 1.2, "whistle"), (1.0, 3.0, "clicks"), (5.0, 5.01, "tiny")]
    start = np.array([0.0, 0.5, 1.0, 1.1, 3.0, 4.9, 6.0])
    end = start + 0.5
    got = assign(events, start, end)
    # [0,.5): whistle .1 | [.5,1): whistle .5 | [1,1.5): whistle .2 vs clicks .5
    # [1.1,1.6): whistle .1 vs clicks .5 | [3,3.5): touches clicks only at 3.0 -> none
    # [4.9,5.4): tiny .01 | [6,6.5): none
    assert list(got) == ["whistle", "whistle", "clicks", "clicks", "", "tiny", ""]
    assert list(assign([], start, end)) == [""] * 7
    assert assign(events, np.zeros(0), np.zeros(0)).shape == (0,)


def test_assign_clip_label_covers_every_window():
    start = np.arange(10_000) * 0.37
    got = assign([(0.0, math.inf, "orca")], start, start + 0.38)
    assert (got == "orca").all()
