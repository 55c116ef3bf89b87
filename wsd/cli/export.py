"""wsd export: a table of a wsd file on stdout (CSV or a Raven selection table)."""

from __future__ import annotations

from pathlib import Path

import typer

from wsd.cli.common import TRACEBACK


def export_cmd(
    file: Path = typer.Argument(..., metavar="FILE.h5", help="A wsd file."),
    format: str = typer.Option("csv", "--format", "-F", help="csv, or raven (a tab-separated "
                               "Raven selection table; re-imports as slice --labels)."),
    traceback: bool = TRACEBACK,
):
    """Write FILE's rows to stdout as CSV or a Raven selection table.

    One row per window (windows, embeddings, detections; Raven: per event) or per sequence
    (clusters). windows: path,start_s,end_s,label. Raven tables give each row a selection
    whose Begin Time and File Offset are seconds from the start of the file in Begin Path.
    """
    import csv
    import sys

    from wsd.io.store import open_file
    from wsd.io.tables import export

    with open_file(file) as f:
        rows = export(f, format)
        w = csv.writer(sys.stdout, delimiter="\t" if format == "raven" else ",",
                       lineterminator="\n")
        for row in rows:
            w.writerow(row)
        sys.stdout.flush()
    return 0
