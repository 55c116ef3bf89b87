"""wsd info: what a wsd file holds and how it was made."""

from __future__ import annotations

from pathlib import Path

import typer

from wsd.cli.common import TRACEBACK, stdout_guard


def describe(f) -> dict:
    """A JSON-able description of an open WsdFile."""
    import collections

    src = f.sources if f.has("sources") else {}
    status = collections.Counter(src.get("status", []))
    d = {"path": f.path, "kind": f.kind, "rows": f.n,
         "datasets": {k: {"shape": list(s), "dtype": t, "virtual": v}
                      for k, (s, t, v) in f.datasets().items() if not k.startswith("sources/")},
         "params": f.params, "spectrogram": f.spectrogram,
         "sources": {"count": len(src.get("path", [])), "status": dict(status),
                     "duration_s": float(sum(src.get("duration_s", [])))},
         "history": f.history}
    if f.has("label"):
        d["labels"] = dict(collections.Counter(x for x in f.read("label") if x))
    from wsd.io.store.kinds import get

    extra = get(f.kind).resolve("info")
    if extra is not None:
        d.update(extra(f))
    return d


def info_cmd(
    file: Path = typer.Argument(..., metavar="FILE.h5", help="A wsd file of any kind."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    traceback: bool = TRACEBACK,
):
    """Print a file's kind, datasets, parameters, sources and history.

    Datasets are listed with their shapes and types; --json prints the same for scripts.
    """

    from wsd.io.store import open_file

    with open_file(file) as f:
        d = describe(f)
    with stdout_guard():
        _print(d, json_out)
    return 0


def _print(d: dict, json_out: bool) -> None:
    import json

    if json_out:
        print(json.dumps(d, indent=2, default=str))
        return
    print(f"{d['path']}: {d['kind']} file, {d['rows']} rows")
    print("datasets:")
    for k, v in d["datasets"].items():
        shape = " x ".join(map(str, v["shape"])) or "scalar"
        print(f"  {k:<14} {shape:<22} {v['dtype']}{'  (virtual)' if v['virtual'] else ''}")
    if d["spectrogram"]:
        print("spectrogram:")
        for k, v in d["spectrogram"].items():
            print(f"  {k} = {v}")
    print("parameters:")
    for k, v in d["params"].items():
        print(f"  {k} = {v}")
    s = d["sources"]
    st = ", ".join(f"{n} {k}" for k, n in s["status"].items())
    print(f"sources: {s['count']} recordings, {s['duration_s']:.1f} s ({st})")
    if "labels" in d:
        print("labels: " + ", ".join(f"{k} ({n})" for k, n in sorted(d["labels"].items())))
    for key in d:
        if key.startswith("text_"):
            print(d[key])
    print("history:")
    for line in d["history"]:
        print(f"  {line}")
