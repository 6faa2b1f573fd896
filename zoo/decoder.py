"""Large uploads decoded in a process of their own, so that `zoo serve`'s good requests never wait for them."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from zoo.core.datasets import Preprocessing
from zoo.core.images import decode_opened, decode_side, open_upload, to_model_array

# A decoding process left without work this long exits; a burst of large uploads keeps one process.
RETIRE_AFTER_SECONDS = 2.0


class DecoderDied(RuntimeError):
    """The decoding process died (killed, out of memory) with this upload: a server fault, not the client's."""


class LargeDecoder:
    """Decodes large uploads (zoo.serve.HEAVY_PIXELS) one at a time, in a process of its own at the lowest CPU priority.

    One at a time: worst-case legal uploads queue behind each other (their memory is bounded) while ordinary
    images, which take a millisecond, never wait for them. At the lowest priority: a large decode takes
    seconds of CPU, which good requests must not wait behind. In a process, not a thread: a low-priority
    thread shares the GIL with the event loop, and whenever the scheduler parks it while it holds the GIL,
    every request waits until it runs again (priority inversion: on a busy 2-core machine, stalls of
    hundreds of milliseconds). The process starts on the first large upload, so a server that never sees one
    never pays for it, exits when it has been idle for RETIRE_AFTER_SECONDS, and is replaced if it dies."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._in_flight = 0  # uploads sent to the process and not answered yet
        self._retirement: asyncio.TimerHandle | None = None  # when the idle process will exit
        self._stopping = False
        self._stops_with_the_server = False

    async def prepare(self, data: bytes, label: str, preprocessing: Preprocessing) -> np.ndarray:
        if self._stopping:
            raise DecoderDied(f"{label}: the server is stopping; try again")
        loop = asyncio.get_running_loop()
        pool = self._pool or self._start()
        if self._retirement is not None:
            self._retirement.cancel()
        self._in_flight += 1
        try:
            return await loop.run_in_executor(pool, prepare_large, data, label, preprocessing)
        except BrokenProcessPool:  # killed (out of memory, by hand, by a stop): the next upload gets a new one
            if self._pool is pool:
                self._pool = None
            if self._stopping:
                raise DecoderDied(f"{label}: the server is stopping; try again") from None
            raise DecoderDied(f"{label}: the decoding process died while decoding it; try again") from None
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._retirement = loop.call_later(RETIRE_AFTER_SECONDS, self._retire)

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: a forked child would share (and count twice) the parent's ONNX Runtime sessions
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        # The process starts with the first submission, here, and spends its first few hundred milliseconds of
        # CPU importing, which should not be at the server's priority either: lowered from here as it starts
        # (and by itself, should it have started before this lowered it).
        pool.submit(_lowest_priority)
        for process in (pool._processes or {}).values():
            _lower_priority_of(process.pid)
        self._pool = pool
        self._stop_with_the_server()
        return pool

    def _retire(self) -> None:
        """A quiet server gives the process's memory back (about 45 MB); the next large upload starts a new one
        (about 0.3 s)."""
        self._retirement = None
        if self._pool is not None and self._in_flight == 0:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False)

    def _stop_with_the_server(self) -> None:
        """Kill the decode in flight the moment the server is told to stop (Ctrl-C, SIGTERM), before uvicorn's
        handler waits for the requests in flight: this one's answer would take seconds nobody waits for.
        Only where uvicorn handles the signals, in the main thread (not in a test's client)."""
        if self._stops_with_the_server or threading.current_thread() is not threading.main_thread():
            return
        self._stops_with_the_server = True
        for number in (signal.SIGINT, signal.SIGTERM):
            server_handler = signal.getsignal(number)
            if callable(server_handler):
                signal.signal(number, functools.partial(self._stop_then, server_handler))

    def _stop_then(self, server_handler, number: int, frame) -> None:
        self.shutdown()
        server_handler(number, frame)

    def shutdown(self) -> None:
        """Stop now, killing a decode in flight: a server told to stop must not wait seconds for an upload
        whose answer nobody will read (ProcessPoolExecutor.shutdown would wait for it, even with wait=False,
        when the interpreter exits)."""
        self._stopping = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((pool._processes or {}).values())  # Python 3.14 has pool.terminate_workers() for this
        for process in processes:
            process.terminate()  # the uploads in flight or queued get BrokenProcessPool: "the server is stopping"
        pool.shutdown(wait=False)


def prepare(data: bytes, label: str, preprocessing: Preprocessing) -> np.ndarray:
    """An upload decoded and preprocessed by the recipe named in the ONNX file's metadata (as `zoo predict`)."""
    return prepare_opened(open_upload(data, label), label, preprocessing)


def prepare_opened(image, label: str, preprocessing: Preprocessing) -> np.ndarray:
    """`prepare` of an upload already opened (`open_upload`), which the server did to read its size."""
    return to_model_array(decode_opened(image, label, decode_side(preprocessing)), preprocessing)


def prepare_large(data: bytes, label: str, preprocessing: Preprocessing) -> np.ndarray:
    """`prepare` in the decoding process, which then gives the memory the decode used back to the system."""
    try:
        return prepare(data, label, preprocessing)
    finally:
        _release_freed_memory()


def _lowest_priority() -> None:
    """The large-decode process yields the CPU to every other."""
    _lower_priority_of(0)


def _lower_priority_of(pid: int) -> None:
    if hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, pid, 19)
        except ProcessLookupError:  # it has already gone
            pass


def _release_freed_memory() -> None:
    """Give the memory a large decode freed back to the system (glibc's malloc_trim; elsewhere nothing)."""
    libc = ctypes.util.find_library("c")
    if libc and sys.platform.startswith("linux"):
        ctypes.CDLL(libc).malloc_trim(0)
