"""Approximate nearest-neighbour indexes of embeddings on disk, for ``wsd index`` and
``wsd search --index`` (faiss, the optional extra ``pip install 'wsd[search]'``).

An index is a folder ``IDX/``: ``meta.json`` (what it indexes: the embeddings file's path,
identity and size, the dimension, the settings), ``trained.faiss`` (the coarse quantizer,
trained once on a sample), ``shard-NNNN.faiss`` (the rows of each build task, added with
their row numbers as ids) and, once merged, ``index.faiss`` with its inverted lists in
``lists.ivfdata``, memory-mapped when searched, so an archive's index need not fit in RAM.

The index is ``IVF<nlist>,SQfp16`` over L2-normalised vectors with inner product (cosine):
chosen by measurement (benchmarks/search.py; 1 M clustered 128-d vectors: recall@10 0.979
at nprobe 16, 253 MB, against usearch HNSW's 0.950 at 386 MB). ``nprobe`` is calibrated at
build time against exact search on a sample of the rows, for recall@10 >= :data:`TARGET`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from wsd.errors import BadInputError, InputMissingError, UsageError

#: Recall@10 against exact search that nprobe is calibrated for.
TARGET = 0.95
#: nprobe values tried when calibrating (the first reaching TARGET is kept; up to every list,
#: where the search is exhaustive over the fp16 codes: data without neighbourhood structure,
#: such as random vectors, needs that many).
NPROBES = tuple(2 ** i for i in range(2, 17))
#: Above this many lists the coarse quantizer is an HNSW graph, not a flat scan (a flat one
#: assigns only ~1.2 k vectors/s at 65,536 lists on 2 cores, an HNSW32 one ~16 k).
HNSW_QUANTIZER_ABOVE = 4096
#: Training points per inverted list (faiss wants at least 39).
TRAIN_PER_LIST = 50
MIN_PER_LIST = 39
#: Rows read and added per batch (bounded memory while building).
BATCH = 100_000
#: Threads that page inverted lists in ahead of a search of at least PREFETCH_FROM queries.
PREFETCH_THREADS = 32
PREFETCH_FROM = 64
#: Queries drawn from the rows to calibrate nprobe.
CALIBRATION_QUERIES = 500


@contextlib.contextmanager
def _quiet():
    """faiss's C++ prints notes on stdout and stderr (on-disk list resizing, k-means
    warnings): keep them out of wsd's stdout, which belongs to data, and off the terminal.
    Only in the main thread (the file descriptors are shared)."""
    import tempfile
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UsageError("approximate search needs faiss: pip install 'wsd[search]' (or "
                         "search exactly, without --index)") from None
    return faiss


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 2 sqrt(n), a power of two, 16..65536."""
    return int(2 ** np.clip(np.round(np.log2(max(1.0, 2 * np.sqrt(n)))), 4, 16))


@dataclass
class IndexMeta:
    embeddings: str
    embeddings_id: str | None
    rows: int
    dim: int
    nlist: int
    nprobe: int = 16
    recall_at_10: float | None = None
    kind: str = "IVF,SQfp16,IP"


def _normalise(x: np.ndarray) -> np.ndarray:
    from wsd.discovery.search import normalise

    return np.ascontiguousarray(normalise(x))


def train_index(x_sample: np.ndarray, dim: int, nlist: int):
    """An empty trained ``IVF<nlist>,SQfp16`` index (inner product) from ``x_sample``;
    its coarse quantizer is flat up to :data:`HNSW_QUANTIZER_ABOVE` lists, HNSW32 above."""
    faiss = _faiss()
    if nlist > HNSW_QUANTIZER_ABOVE:
        quant = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        quant.hnsw.efSearch = 64
        quant.hnsw.efConstruction = 40
    else:
        quant = faiss.IndexFlatIP(dim)
    idx = faiss.IndexIVFScalarQuantizer(quant, dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
    idx.own_fields = True
    quant.this.disown()
    with _quiet():
        idx.train(_normalise(x_sample))
    return idx


def add_rows(idx, ds, a: int, b: int, advance=lambda n=1, **_: None) -> None:
    """Add rows ``[a, b)`` of dataset ``ds`` with their row numbers as ids, in batches."""
    for lo in range(a, b, BATCH):
        x = _normalise(np.asarray(ds[lo:min(b, lo + BATCH)], np.float32))
        idx.add_with_ids(x, np.arange(lo, lo + len(x), dtype=np.int64))
        advance(len(x))


def write(idx, path) -> None:
    _faiss().write_index(idx, str(path))


def read(path):
    return _faiss().read_index(str(path))


def merge(folder: Path, trained: Path, shards: list[Path]) -> None:
    """Merge the shards' inverted lists on disk into ``folder/index.faiss`` +
    ``lists.ivfdata`` (never holding all lists in memory)."""
    from faiss.contrib.ondisk import merge_ondisk

    idx = read(trained)
    with _quiet():
        merge_ondisk(idx, [str(s) for s in shards], str(folder / "lists.ivfdata"))
    write(idx, folder / "index.faiss")


def calibrate(idx, ds, n: int, seed: int = 0) -> tuple[int, float]:
    """The smallest nprobe of :data:`NPROBES` whose recall@10 against exact search on
    sampled rows of ``ds`` reaches :data:`TARGET` (else the largest), and that recall."""
    from wsd.discovery.search import cosine_topk

    faiss = _faiss()
    rng = np.random.default_rng(seed)
    q_rows = np.sort(rng.choice(n, size=min(n, CALIBRATION_QUERIES), replace=False))
    q = np.asarray(ds[q_rows], np.float32)
    exact, _ = cosine_topk(q, ds, 10)
    ivf = faiss.extract_index_ivf(idx)
    got = (TARGET, 0.0)
    for p in NPROBES:
        ivf.nprobe = min(p, ivf.nlist)
        _, found = idx.search(_normalise(q), exact.shape[1])
        r = float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(exact, found)]))
        got = (ivf.nprobe, r)
        if r >= TARGET or ivf.nprobe == ivf.nlist:
            break
    return got


class OpenIndex:
    """An index opened for search (its lists memory-mapped)."""

    def __init__(self, folder: Path, meta: IndexMeta):
        faiss = _faiss()
        self.meta = meta
        with _quiet():
            self.idx = faiss.read_index(str(folder / "index.faiss"),
                                        faiss.IO_FLAG_ONDISK_SAME_DIR)

    def search(self, q: np.ndarray, k: int, nprobe: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(index (q, k) int64, score (q, k) float32)``, best first; -1 where fewer."""
        faiss = _faiss()
        ivf = faiss.extract_index_ivf(self.idx)
        ivf.nprobe = int(nprobe or self.meta.nprobe)
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        if hasattr(lists, "prefetch_nthread"):
            # faiss starts this many threads per search call to page the lists in: worth it
            # for a batch on a cold disk, ~3.5 ms of pure overhead for one query (0.06 ms)
            lists.prefetch_nthread = PREFETCH_THREADS if len(q) >= PREFETCH_FROM else 0
        score, index = self.idx.search(_normalise(q), int(k))
        return index.astype(np.int64), score.astype(np.float32)


def read_meta(folder) -> IndexMeta:
    folder = Path(folder)
    try:
        d = json.loads((folder / "meta.json").read_text())
        return IndexMeta(**d)
    except FileNotFoundError:
        raise InputMissingError("not a wsd index (no meta.json)", folder) from None
    except (ValueError, TypeError) as e:
        raise BadInputError(f"damaged index metadata ({e})", folder) from None


def write_meta(folder, meta: IndexMeta) -> None:
    (Path(folder) / "meta.json").write_text(json.dumps(asdict(meta), indent=1))


def open_index(folder, emb) -> OpenIndex:
    """The index in ``folder``, checked to index the open embeddings file ``emb``."""
    folder = Path(folder)
    meta = read_meta(folder)
    if not (folder / "index.faiss").is_file():
        raise BadInputError("index is incomplete (no index.faiss: its build did not finish)",
                            folder)
    if meta.embeddings_id and emb.file_id and meta.embeddings_id != emb.file_id:
        raise BadInputError(f"indexes another embeddings file ({meta.embeddings}), not "
                            f"{emb.path}", folder)
    if meta.rows != emb.n or meta.dim != emb.shape("embeddings")[1]:
        raise BadInputError(f"indexes {meta.rows} rows of {meta.dim}-d; {emb.path} has "
                            f"{emb.n} of {emb.shape('embeddings')[1]}-d", folder)
    return OpenIndex(folder, meta)


def folder_size(folder) -> int:
    return sum(os.path.getsize(p) for p in Path(folder).iterdir() if p.is_file())
