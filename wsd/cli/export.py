"""wsd export: a table of a wsd file (CSV, a Raven selection table, an Audacity label track
on stdout, or a Parquet file)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wsd.cli.common import FORCE, TRACEBACK, stdout_guard


def export_cmd(
    file: Path = typer.Argument(..., metavar="FILE.h5", help="A wsd file."),
    format: str = typer.Option("csv", "--format", "-F", help="csv; raven (a tab-separated "
                               "Raven selection table); audacity (a label track: start, end, "
                               "label); parquet (typed columns, to --output)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead "
                                          "of stdout (required for parquet)."),
    label_from: str = typer.Option("label", "--label-from", help="The label column: the "
                                   "rows' labels, or (clusters) the cluster id, so clusters "
                                   "go back into wsd slice --labels as labels."),
    source: Optional[str] = typer.Option(None, "--source", help="Only the rows of this "
                                         "recording (its path, or the end of it)."),
    force: bool = FORCE,
    traceback: bool = TRACEBACK,
):
    """Write FILE's rows as a table.

    One row per window (windows, embeddings, detections), per sequence (clusters) or per
    hit (hits: query_path,query_start_s,query_end_s,path,start_s,end_s,rank,score). Raven
    tables and Audacity label tracks hold one selection per event for detections, per row
    otherwise; a Raven selection's Begin Time and File Offset are seconds from the start of
    the file in Begin Path, its Low and High Freq the detector's band (--fmin/--fmax) or the
    spectrogram's. Both re-import with wsd slice --labels (Audacity with one input file).
    Parquet (pip install 'wsd[parquet]') has the CSV's columns, typed, written a chunk of
    rows at a time, for tables too large for CSV.
    """
    import csv

    from wsd.io.store import atomic_output, check_output, open_file
    from wsd.io.tables import ExportOptions, text_rows, write_parquet

    o = ExportOptions(format, label_from, source)
    if output is not None:
        check_output(output, force, inputs=[file])
    elif format == "parquet":
        from wsd.errors import UsageError

        raise UsageError("--format parquet writes a file: give --output TABLE.parquet")
    with open_file(file) as f:
        if format == "parquet":
            with atomic_output(output, force) as tmp:
                write_parquet(f, o, tmp)
            return 0
        rows = text_rows(f, o)
        delim = "," if format == "csv" else "\t"
        if output is not None:
            with atomic_output(output, force) as tmp, open(tmp, "w", newline="") as fh:
                csv.writer(fh, delimiter=delim, lineterminator="\n").writerows(rows)
            return 0
        with stdout_guard() as out:
            csv.writer(out, delimiter=delim, lineterminator="\n").writerows(rows)
    return 0
