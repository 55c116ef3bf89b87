"""Run independent tasks (one per input file or per chunk of rows) serially, on local
processes (``--workers N``) or on a Dask distributed cluster (``--scheduler ADDRESS``).

Tasks are plain picklable callables' arguments; results come back to ``on_result`` in
completion order (callers sort by task index when order matters). Any exception in a task
stops the run: pending tasks are cancelled and the exception is re-raised in the caller.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, Sequence


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_threads(workers: int) -> int:
    """Threads of the numeric libraries' pools for each of ``workers`` local processes: its
    share of the cores, at least one."""
    return max(1, cpu_count() // workers)


#: Seconds to wait for a Dask scheduler before saying it cannot be reached.
SCHEDULER_TIMEOUT_S = 10


def _init_worker(threads: int) -> None:
    """Local worker processes share the machine's cores: each gets its part for the
    numeric libraries' thread pools (torch, OpenMP, BLAS) instead of all of them; Ctrl-C is
    left to the coordinating process, which cancels the pool and cleans up."""
    from wsd.runtime.signals import ignore_in_worker

    ignore_in_worker()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def start_workers(workers: int, preload: Sequence[str] = ()) -> None:
    """Start the fork server of local worker processes now, when ``workers`` > 1, so that
    its imports of ``preload`` overlap with what the caller does before :func:`run_tasks`
    (reading headers, say) instead of delaying the first task. Idempotent; the server ends
    with this process."""
    if workers <= 1:
        return
    import multiprocessing as mp
    from multiprocessing import forkserver

    if preload:
        mp.get_context("forkserver").set_forkserver_preload(list(preload))
    forkserver.ensure_running()


def run_tasks(fn: Callable[[Any], Any], tasks: Iterable[Any], *, workers: int = 1,
              scheduler: str | None = None,
              on_result: Callable[[Any], None] | None = None,
              preload: Sequence[str] = ()) -> list:
    """Run ``fn`` on every task; ``preload`` names modules that local worker processes
    import once in their fork server (so each worker starts without importing them again).
    On Dask, the workers' nanny already limits OpenMP/BLAS threads to one per process."""
    tasks = list(tasks)
    results = []

    def done(r):
        results.append(r)
        if on_result:
            on_result(r)

    if scheduler:
        from distributed import Client, as_completed

        from wsd.errors import WsdError

        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError) as e:
            raise WsdError(f"cannot reach the Dask scheduler at {scheduler} within "
                           f"{SCHEDULER_TIMEOUT_S} s ({type(e).__name__}); is it running?"
                           ) from None
        with client:
            futures = client.map(fn, tasks, pure=False, retries=2)
            try:
                for fut in as_completed(futures):
                    done(fut.result())
            except BaseException:
                client.cancel(futures)
                raise
        return results
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            done(fn(t))
        return results
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    threads = worker_threads(workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(threads,))
    pending: set = set()
    try:
        pending = {pool.submit(fn, t) for t in tasks}
        while pending:
            # each result as it comes (progress, warnings), not all at the end
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done(fut.result())
    except BaseException:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    # every task is done: the idle workers exit while the caller goes on (joining the
    # output, say); the pool's thread reaps them (and Python waits for it at exit)
    pool.shutdown(wait=False)
    return results
