"""wsd cluster: discover call types by DTW agglomerative clustering of embedding sequences."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wsd.cli.common import (FORCE, QUIET, TRACEBACK, Reporter, history_entry,
                            scheduler_option, workers_option)


def cluster_cmd(
    embeddings: Path = typer.Argument(..., metavar="EMB.h5", help="Embeddings file."),
    output: Path = typer.Option(..., "--output", "-o", help="Clusters file to write."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Detections from wsd detect "
                                        "--silence: a call is a run of consecutive windows "
                                        "that are not silent."),
    per_file: bool = typer.Option(False, "--per-file", help="One sequence per recording (for "
                                  "catalogues of clips)."),
    min_windows: int = typer.Option(1, "--min-windows", help="Drop shorter sequences."),
    max_windows: Optional[int] = typer.Option(None, "--max-windows", help="Split longer runs "
                                              "into near-equal pieces."),
    window: Optional[int] = typer.Option(None, "--window", help="Sakoe-Chiba band of the DTW, "
                                         "in windows: an alignment strays at most this far "
                                         "from the diagonal (0: no band, as none) "
                                         "[default: none]."),
    length_norm: str = typer.Option("sqrt", "--length-norm", help="none, or sqrt: divide "
                                    "each DTW distance by sqrt(len_a + len_b), a per-step "
                                    "RMS difference, so that long sequences are not far from "
                                    "everything."),
    distance: str = typer.Option("auto", "--distance", help="auto: fused for kmeans "
                                 "embeddings (cosine with --sample or when the windows file "
                                 "is not found), else dtw (measured best for each); dtw: "
                                 "DTW between the sequences of window embeddings (keeps the "
                                 "order of a call's parts); "
                                 "cosine: each sequence pooled to the mean and standard "
                                 "deviation of its embeddings and the means of --segments "
                                 "parts in time, standardised, compared by cosine (stored "
                                 "as the chord distance sqrt(2 (1 - cos))); fused: that "
                                 "cosine distance averaged with the DTW of the windows' own "
                                 "spectrogram frames (each whitened per sequence), each "
                                 "divided by its spread (needs the windows file)."),
    segments: int = typer.Option(3, "--segments", help="With --distance cosine or fused: "
                                 "equal parts in time (start, middle, end) whose means join "
                                 "the mean and std, together weighing as much as the mean "
                                 "(keeps a call's rough contour); 0 pools the mean and std "
                                 "alone (the previous behaviour)."),
    windows: Optional[Path] = typer.Option(None, "--windows", help="With --distance fused: "
                                           "the windows file the embeddings were made from "
                                           "[default: the one wsd embed recorded, as "
                                           "written or beside EMB.h5]."),
    normalize: str = typer.Option("zscore", "--normalize", help="none, zscore (per dimension) "
                                  "or l2 (per window) before the DTW."),
    pca: Optional[int] = typer.Option(None, "--pca", help="Reduce embeddings to D dimensions "
                                      "with PCA first (DTW cost grows with D)."),
    rerank: str = typer.Option("auto", "--rerank", help="Re-rank the full matrix by its own "
                               "neighbourhoods before linkage (no labels): mp, mutual "
                               "proximity (a pair is close when each is unusually close for "
                               "the other; undoes hubs, items near everything; 0-1); mp+qe, "
                               "then each row averaged with its nearest neighbour's (query "
                               "expansion); none. auto: mp+qe, none with --sample (measured "
                               "best: benchmarks/README.md). The stored matrix, medoids, "
                               "novelty and --threshold are in the re-ranked units."),
    linkage: str = typer.Option("ward", "--linkage", help="ward, complete, average or "
                                "single."),
    n_clusters: int = typer.Option(10, "--n-clusters", "-k", help="Cut the tree into at most "
                                   "K clusters..."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="...or where merges "
                                              "are higher than this distance, in the units "
                                              "of the matrix clustered (with --rerank mp or "
                                              "mp+qe, the default, mutual proximity 0-1; "
                                              "overrides --n-clusters)."),
    sample: Optional[int] = typer.Option(None, "--sample", help="Cluster a random sample of N "
                                         "sequences, then assign every other one to its "
                                         "nearest medoid (cost linear in the archive)."),
    novelty_k: int = typer.Option(5, "--novelty-k", help="Novelty = mean distance (as "
                                  "clustered) to the k nearest sequences (0: skip; with --sample it costs N "
                                  "distances per sequence)."),
    memory_gb: Optional[float] = typer.Option(None, "--memory-gb", help="Refuse a distance "
                                              "matrix larger than this [default: a quarter "
                                              "of RAM]."),
    seed: int = typer.Option(0, "--seed", help="Seed for --sample and PCA."),
    workers: int = workers_option("With --sample: the assignment of the other sequences"),
    scheduler: Optional[str] = scheduler_option("the --sample assignment"),
    force: bool = FORCE,
    quiet: bool = QUIET,
    traceback: bool = TRACEBACK,
):
    """Group call sequences into types by DTW and hierarchical clustering.

    Multivariate DTW between embedding sequences, then agglomerative clustering.

    Sequences are runs of consecutive non-silent windows (--mask), one per recording
    (--per-file), or runs of consecutive windows. Distances are dtaidistance's C DTW
    (dtw_ndim, parallel) between the sequences of embedding vectors (--distance cosine:
    between their pooled mean, standard deviation and start, middle and end instead;
    --distance fused: that and the DTW of the windows' own spectrogram frames); the full
    matrix is re-ranked by mutual proximity and query expansion (--rerank); the linkage
    tree, each cluster's medoid, the silhouette and a novelty score per sequence (rank rare
    sounds first) are stored. The full matrix costs O(n^2): its memory and time are
    estimated before starting, and past the limit wsd refuses and suggests --sample. With labels (from
    slice --labels), the adjusted Rand index, NMI, purity and leave-one-out 1-nearest-
    neighbour accuracy are stored and printed. With --sample, --workers N or --scheduler
    ADDRESS spread the assignment of the other sequences over processes or a Dask cluster
    (same result as one process).
    """
    from wsd.pipeline.cluster import ClusterParams, run_cluster

    rep = Reporter(quiet, "wsd cluster")
    p = ClusterParams(mask=str(mask) if mask else None, per_file=per_file,
                      min_windows=min_windows, max_windows=max_windows, window=window,
                      length_norm=length_norm, normalize=normalize, pca=pca, linkage=linkage,
                      rerank=rerank,
                      distance=distance, segments=segments,
                      windows=str(windows) if windows else None,
                      n_clusters=None if threshold is not None else n_clusters,
                      threshold=threshold, sample=sample, novelty_k=novelty_k,
                      memory_gb=memory_gb, seed=seed, workers=workers, scheduler=scheduler)
    s = run_cluster(str(embeddings), p, output, [history_entry("cluster")], force=force,
                    progress=rep)
    rep.note(f"{s['n_sequences']} sequences -> {s['n_clusters']} clusters"
             + (f", silhouette {s['silhouette']:.3f}" if s["silhouette"] is not None else "")
             + f" -> {output}")
    m = s.get("metrics")
    if m and m.get("ari") is not None:
        rep.note(f"against labels ({m['n_labelled']} sequences, {m['n_classes']} classes): "
                 f"ARI {m['ari']:.3f}, NMI {m['nmi']:.3f}, purity {m['purity']:.3f}"
                 + (f", 1-NN accuracy {m['knn1_accuracy']:.3f}"
                    if m.get("knn1_accuracy") is not None else ""))
    return 0
