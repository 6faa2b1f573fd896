"""Image files decoded into a model's input on every core, batch by batch, in the order given.

Each batch of files is decoded by one process of a pool while the caller runs the model on the batch
before it; about two batches per process are in flight, so memory is bounded by the batch size and the
pool, never by the number of files. A file that cannot be decoded fails alone, with its reason.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import signal
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from zoo.core.datasets import Preprocessing
from zoo.core.errors import ZooError
from zoo.core.images import ImageError, InputFile, decode_side, open_image, raise_bomb_warnings, to_model_array

IN_FLIGHT_PER_PROCESS = 2  # batches queued per decoding process: one decoding, one waiting
# The first batch is this small, so that the first rows come within a second even from a model that takes
# 9 ms an image (cifar_cnn_best, six views, on 2 cores): then they wait on Python's start and the model's
# loading, not on the model. Every batch after it is full.
FIRST_BATCH = 4


@dataclass(frozen=True)
class DecodedBatch:
    inputs: list[InputFile]  # the batch's inputs, in order
    arrays: np.ndarray  # uint8 [N, C, H, W]: the inputs that decoded, in order
    errors: list[str | None]  # per input: why it could not be classified, or None when it decoded


class DecodePool:
    """Processes that decode batches of files. Start it before the model is loaded: forking a process
    that runs no other thread yet is both quick and safe (elsewhere the pool starts with forkserver)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        if workers > 0:
            method = "fork" if _single_threaded() else "forkserver"
            self._executor = ProcessPoolExecutor(
                workers, multiprocessing.get_context(method), initializer=_worker_setup
            )
            self._executor.submit(int).result()  # start the processes now, before any model threads exist

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            # Queued batches are dropped (an interrupted run), the ones being decoded finish in milliseconds.
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def batches(
        self, inputs: Iterable[InputFile], preprocessing: Preprocessing, batch_size: int
    ) -> Iterator[DecodedBatch]:
        """The inputs decoded for `preprocessing`, `batch_size` at a time (the first FIRST_BATCH), in order."""
        chunks = _chunks(iter(inputs), batch_size)
        if self._executor is None:
            yield from (_assemble(chunk, decode_files(_paths(chunk), preprocessing), preprocessing) for chunk in chunks)
            return
        pending: deque[tuple[list[InputFile], Future]] = deque()
        for chunk in chunks:
            pending.append((chunk, self._executor.submit(decode_files, _paths(chunk), preprocessing)))
            if len(pending) > IN_FLIGHT_PER_PROCESS * self.workers:
                yield self._collect(*pending.popleft(), preprocessing)
        while pending:
            yield self._collect(*pending.popleft(), preprocessing)

    def _collect(self, chunk: list[InputFile], future: Future, preprocessing: Preprocessing) -> DecodedBatch:
        try:
            return _assemble(chunk, future.result(), preprocessing)
        except BrokenProcessPool as error:
            raise ZooError("a decoding process died (out of memory? killed?); the run stopped there") from error


def decode_files(paths: list[str | None], preprocessing: Preprocessing) -> tuple[np.ndarray, list[str | None]]:
    """Decode each file (None: an input decoded elsewhere) -> (uint8 [N, C, H, W] of those that decoded,
    per path the reason it failed or None)."""
    arrays, errors = [], []
    for path in paths:
        error = None
        if path is not None:
            try:
                arrays.append(to_model_array(open_image(path, decode_side(preprocessing)), preprocessing))
            except ImageError as failure:
                error = failure.reason
            except Exception as failure:  # any file off a disk: a decoder bug must fail that file alone, not the run
                error = f"cannot decode ({type(failure).__name__}: {failure})"
        errors.append(error)
    shape = (preprocessing.channels, *preprocessing.size)
    return (np.stack(arrays) if arrays else np.empty((0, *shape), np.uint8)), errors


def _paths(chunk: list[InputFile]) -> list[str | None]:
    """What a decoding process opens: each file, or None for an input that failed already or is in memory."""
    return [item.label if item.error is None and item.image is None else None for item in chunk]


def _assemble(chunk: list[InputFile], decoded: tuple[np.ndarray, list[str | None]], preprocessing) -> DecodedBatch:
    """A chunk's decoded files merged, in order, with its inputs that failed before decoding or came in memory."""
    arrays, errors = decoded
    if all(item.error is None and item.image is None for item in chunk):
        return DecodedBatch(chunk, arrays, errors)
    merged, reasons, files = [], [], iter(arrays)
    for item, error in zip(chunk, errors, strict=True):
        if item.error is not None:
            error = item.error
        elif item.image is not None:
            merged.append(to_model_array(item.image, preprocessing))
        elif error is None:
            merged.append(next(files))
        reasons.append(error)
    shape = (preprocessing.channels, *preprocessing.size)
    return DecodedBatch(chunk, np.stack(merged) if merged else np.empty((0, *shape), np.uint8), reasons)


def _chunks(items: Iterator[InputFile], size: int) -> Iterator[list[InputFile]]:
    chunk = list(itertools.islice(items, min(size, FIRST_BATCH)))
    while chunk:
        yield chunk
        chunk = list(itertools.islice(items, size))


def _single_threaded() -> bool:
    """Whether this process runs no Python thread but the main one. Native pools (OpenBLAS's, which numpy
    starts on import and which has fork handlers) are safe to fork; a Python thread may hold a lock
    (logging's, the import lock) that a forked child would inherit held."""
    return threading.active_count() == 1


def _worker_setup() -> None:
    """A decoding process leaves Ctrl-C to the caller (which stops the run cleanly), and dies with it:
    a caller killed with SIGKILL must not leave processes behind waiting for work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    raise_bomb_warnings()
