"""wsd search and wsd index: query by example over embeddings, exact or through an index."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wsd.cli.common import (FORCE, QUIET, TRACEBACK, Reporter, history_entry,
                            scheduler_option, workers_option)


def search_cmd(
    embeddings: Path = typer.Argument(..., metavar="EMB.h5", help="The archive: an "
                                      "embeddings file."),
    output: Path = typer.Option(..., "--output", "-o", help="Hits file to write."),
    query: Optional[Path] = typer.Option(None, "--query", "-Q", help="An embeddings file "
                                         "whose every window (or, with --per-file, every "
                                         "recording) is a query."),
    query_table: Optional[Path] = typer.Option(None, "--query-table", help="A Raven table "
                                               "or a path,start_s,end_s CSV of time ranges "
                                               "in the archive's recordings, one query each."),
    uncertain: Optional[Path] = typer.Option(None, "--uncertain", help="A linear probe (wsd "
                                             "train EMB.h5 --arch linear): list the windows "
                                             "nearest its decision boundary, to review next."),
    exclude: Optional[Path] = typer.Option(None, "--exclude", help="With --uncertain: a "
                                           "Raven table or path,start_s,end_s CSV of what "
                                           "was reviewed already (the marks): windows "
                                           "overlapping it are not proposed again."),
    k: int = typer.Option(10, "-k", "--top", help="Hits per query."),
    per_file: bool = typer.Option(False, "--per-file", help="Each recording of --query is "
                                  "one query, each archive recording one candidate."),
    match: str = typer.Option("auto", "--match", help="For queries of several windows: "
                              "pooled (mean and std of the windows and the means of "
                              "--segments parts in time, cosine) or dtw (subsequence DTW); "
                              "fused (--per-file only): the pooled cosine distance averaged "
                              "with the DTW of the recordings' own spectrogram frames, each "
                              "divided by its spread (needs the windows files); auto: "
                              "for kmeans embeddings fused with --per-file (pooled when a "
                              "windows file is not found) and pooled otherwise, else dtw "
                              "(the best measured for each)."),
    segments: Optional[int] = typer.Option(None, "--segments", help="With --match pooled or "
                                           "fused: equal parts in time (3: start, middle, "
                                           "end) whose means join the mean and std, together "
                                           "weighing as much as the mean; 0 pools the mean "
                                           "and std alone [default: 3 for whole recordings "
                                           "(--per-file), measured better; 0 against "
                                           "stretches, where 3 gained nothing measurable at "
                                           "1.7x the time]."),
    windows: Optional[Path] = typer.Option(None, "--windows", help="With --match fused: the "
                                           "archive's windows file [default: the one wsd "
                                           "embed recorded, as written or beside EMB.h5]."),
    query_windows: Optional[Path] = typer.Option(None, "--query-windows", help="With --match "
                                                 "fused: the windows file of --query "
                                                 "[default: as for --windows]."),
    rerank: str = typer.Option("auto", "--rerank", help="With --per-file: re-rank by the "
                               "archive's neighbourhoods (no labels): mp, mutual proximity "
                               "(a hit ranks high when each recording is unusually close for "
                               "the other; undoes hubs, recordings near everything); mp+qe, "
                               "then each query's distances averaged with those of its "
                               "nearest archive recording other than itself (query "
                               "expansion); none. Archive statistics from the distances of up "
                               "to 64 archive recordings (a seeded sample) to the archive: "
                               "for one query, up to 64 times its own cost. auto: mp+qe (measured "
                               "better on both call-type sets: benchmarks/README.md)."),
    index: Optional[Path] = typer.Option(None, "--index", help="An index from wsd index "
                                         "(approximate, for archives too large for exact "
                                         "search of window queries)."),
    nprobe: Optional[int] = typer.Option(None, "--nprobe", help="With --index: lists "
                                         "searched [default: calibrated by wsd index]."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Find the windows or stretches of an archive most like given examples.

    Windows are compared by cosine similarity, exactly (blocked, bounded memory) or through
    an approximate index (--index). A query of several windows (a recording with --per-file,
    a time range of --query-table) is matched against every stretch of each archive
    recording as long as itself, by the mean and standard deviation of the windows and the
    means of its start, middle and end (--match pooled) or by subsequence DTW (--match dtw), so a 2 s call is found inside an
    hour. For every query the top -k hits are written: source, start and end, score (higher
    is more similar: cosine, or minus the DTW distance per window; with --per-file minus the
    re-ranked distance, --rerank) and rank (1 is the best);
    self-hits are kept. wsd export HITS.h5 writes them as CSV or a Raven table; wsd report
    HITS.h5 makes a review page. --uncertain ranks the windows a probe is least sure of, no
    two overlapping in time, leaving out what --exclude says was reviewed.
    """
    from wsd.pipeline.search import SearchParams, run_search

    rep = Reporter(quiet, "wsd search")
    p = SearchParams(query=str(query) if query else None,
                     query_table=str(query_table) if query_table else None,
                     uncertain=str(uncertain) if uncertain else None, k=k,
                     per_file=per_file, match=match, index=str(index) if index else None,
                     nprobe=nprobe, segments=segments,
                     windows=str(windows) if windows else None,
                     query_windows=str(query_windows) if query_windows else None,
                     exclude=str(exclude) if exclude else None, rerank=rerank)
    s = run_search(str(embeddings), output, p, [history_entry("search")], force=force,
                   progress=rep)
    rep.note(f"{s['queries']} queries -> {s['hits']} hits ({s['how']}) in {output}")
    return 0


def index_cmd(
    embeddings: Path = typer.Argument(..., metavar="EMB.h5", help="An embeddings file."),
    output: Path = typer.Option(..., "--output", "-o", help="Index folder to create."),
    nlist: Optional[int] = typer.Option(None, "--nlist", help="Inverted lists [default: "
                                        "about 2 sqrt(rows), a power of two]."),
    workers: int = workers_option("Index build tasks"),
    scheduler: Optional[str] = scheduler_option("the build tasks"),
    seed: int = typer.Option(0, "--seed", help="Seed of the training and calibration "
                             "samples."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Build an approximate nearest-neighbour index of an embeddings file on disk.

    faiss IVF with fp16 vectors over L2-normalised embeddings (cosine), chosen by
    measurement (benchmarks/search.py). The coarse quantizer is trained on a sample; rows
    are added in tasks of a million (--workers, --scheduler), their lists merged on disk
    into one memory-mapped file, so memory stays bounded. nprobe is calibrated against
    exact search on sampled rows for recall@10 >= 0.95, and stored. Needs the search extra:
    pip install 'wsd[search]'. Exact search (no --index) stays the default for small files.
    """
    from wsd.pipeline.index import IndexParams, run_index

    rep = Reporter(quiet, "wsd index")
    s = run_index(str(embeddings), output,
                  IndexParams(nlist=nlist, workers=workers, scheduler=scheduler, seed=seed),
                  force=force, progress=rep)
    rep.note(f"{s['rows']} rows -> IVF{s['nlist']} index, nprobe {s['nprobe']} (recall@10 "
             f"{s['recall']:.3f} against exact search on sampled rows), "
             f"{s['bytes'] / 1e6:.1f} MB in {output}")
    return 0
