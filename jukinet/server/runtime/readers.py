"""Reader processes: read-only work on the node's LMDB environment, outside the node's interpreter.

Some reads are most of a request's cost and hold Python's interpreter lock while they run — a batch
chunk's thousand random record reads and its redaction, hashing a run of provision leaves into the Merkle
tree — so in the node's own process they would queue behind gRPC and the group commit. A
:class:`ReaderPool` runs them in worker processes instead, each with the node's environment open
read-only (LMDB serves readers in any number of processes; the node process stays the only writer, and
what a worker computes is written, if at all, by the node). Workers start at the first call, so a node
that needs none has none; each dies with the node (``PR_SET_PDEATHSIG``). A worker that dies on its own
breaks the pool: that call is UNAVAILABLE and the next one starts a new pool. With no processes the
calls run in the calling thread (unit tests; ``[node] batch_readers = 0``).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from jukinet.domain.errors import Problem, Rejected
from jukinet.storage import NodeStorage

P = ParamSpec("P")
T = TypeVar("T")


class ReaderPool:
    def __init__(self, storage: NodeStorage, processes: int) -> None:
        self._storage = storage
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def call(self, fn: Callable[Concatenate[NodeStorage, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(storage, *args)`` in a worker, waited for (call it from a worker thread). ``fn`` is a
        module-level function (it travels by name), and so are its arguments and result (pickled)."""
        if self.processes == 0:
            return fn(self._storage, *args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def submit(self, fn: Callable[Concatenate[NodeStorage, P], T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """As :meth:`call`, without waiting (an event loop wraps the future). Needs processes."""
        pool = self._running()
        outer: Future[T] = Future()

        def done(inner: Future[T]) -> None:
            failure = inner.exception()
            if isinstance(failure, BrokenProcessPool):
                with self._lock:
                    if self._pool is pool:
                        self._pool = None  # the next call starts a new pool
                outer.set_exception(Rejected(Problem.UNAVAILABLE, "a reader process of the node ended; retry"))
            elif failure is not None:
                outer.set_exception(failure)
            else:
                outer.set_result(inner.result())

        try:
            pool.submit(_call, fn, args, kwargs).add_done_callback(done)
        except BrokenProcessPool:
            done_now: Future[T] = Future()
            done_now.set_exception(BrokenProcessPool("broken"))
            done(done_now)
        return outer

    def _running(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise Rejected(Problem.UNAVAILABLE, "the node is stopping")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),  # never fork a process running gRPC
                    initializer=_open,
                    initargs=(str(self._storage.env.path), os.getpid()),
                )
            return self._pool

    def worker_pids(self) -> list[int]:
        with self._lock:
            return list(self._pool._processes) if self._pool is not None else []

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# -- in the worker process ---------------------------------------------------------------------------------

_STORAGE: NodeStorage | None = None
_PR_SET_PDEATHSIG = 1


def _open(path: str, node_pid: int) -> None:
    global _STORAGE
    with contextlib.suppress(AttributeError, OSError):  # end with the node, however it ends (Linux)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != node_pid:  # the node ended before the line above ran
        os._exit(0)
    _STORAGE = NodeStorage.open(Path(path), readonly=True)


def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    assert _STORAGE is not None
    return fn(_STORAGE, *args, **kwargs)
