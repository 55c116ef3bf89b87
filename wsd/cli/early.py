"""What the CLI does before it imports its framework (typer, rich) or any library: start
the local worker processes of ``wsd slice --workers N``, read from the raw arguments, so that
their start-up runs beside everything else the coordinator does before its first task."""

from __future__ import annotations

import os


def start_early(args: list[str]) -> None:
    """``wsd slice ... --workers N`` (N > 1, no --scheduler), with several inputs or a
    folder, list or stdin among them: start the workers' fork server first thing, from the
    raw arguments, so that its imports (about 0.7 s of CPU) run beside the coordinator's own
    start-up (libraries, argument parsing, the headers) instead of delaying the first task.
    Anything unclear (an unparsable --workers, --help) is left to the parser; a guess that
    turns out wrong (one task after all) only costs the idle server's imports."""
    workers, rest, positional = None, iter(range(1, len(args))), []
    for k in rest:
        a = args[k]
        if a == "--":
            positional += args[k + 1:]
            break
        if a in ("--help", "-h") or a == "--scheduler" or a.startswith("--scheduler="):
            return
        value = None
        if a in ("--workers", "-j"):
            value = args[k + 1] if k + 1 < len(args) else None
            next(rest, None)
        elif a.startswith("--workers="):
            value = a.split("=", 1)[1]
        elif a.startswith("-j") and not a.startswith("--"):
            value = a[2:].lstrip("=")
        elif not a.startswith("-") or a == "-":
            positional.append(a)
        if value is not None:
            try:
                workers = int(value)
            except ValueError:
                return
    if workers is None or workers < 2:
        return
    files = 0
    for a in positional:  # option values count too: a wrong guess costs little
        if a == "-" or a.startswith("@") or os.path.isdir(a):
            break
        files += os.path.isfile(a)
        if files >= 2:
            break
    else:
        return
    # numpy's BLAS starts a thread per core as it is imported, and those threads spin: with
    # the coordinator and the fork server importing at once, four threads fought for two
    # cores (the import took 0.44 s of CPU instead of 0.22). Slicing needs no BLAS threads
    # (the STFT is pocketfft, the mel matrix product is small), and each worker has its
    # share of the cores: set before numpy is imported here or in the fork server.
    from wsd.runtime.executor import start_workers, worker_threads  # os and sys only

    threads = str(worker_threads(workers))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    from wsd.pipeline.slice import PRELOAD

    start_workers(workers, PRELOAD)
