"""The read half of a batch chunk (定期照会): each code's stored record found and redacted to the row's fields.

It is most of a chunk's cost — LMDB random reads (a few microseconds each on a store of millions: memory
latency, not computation) and the redaction — and it holds Python's interpreter lock while it runs, so
in the node's own process it would queue behind gRPC and the group commit. :class:`ChunkReaders` runs it
in worker processes instead, each with the node's LMDB environment open read-only (LMDB serves readers
in any number of processes; the node process stays the only writer). A worker dies with the node
(``PR_SET_PDEATHSIG``); a worker that dies on its own breaks the pool, which is replaced for the next
chunk, and the stream that was using it ends UNAVAILABLE. :func:`read_chunk` is the same work in the
calling process (unit tests, and a node configured with no reader processes).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from jukinet.domain.bulk_redaction import BulkRedactor
from jukinet.domain.codes import is_valid_my_number, is_valid_resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.storage import NodeStorage
from jukinet.v1 import provision_pb2

_FOUND = provision_pb2.BATCH_STATUS_FOUND
_NOT_FOUND = provision_pb2.BATCH_STATUS_NOT_FOUND
_REMOVED = provision_pb2.BATCH_STATUS_REMOVED
_INVALID = provision_pb2.BATCH_STATUS_INVALID
RECORDS_FIELD = provision_pb2.BatchLookupResponse.DESCRIPTOR.fields_by_name["records"].number


@dataclass(frozen=True)
class ChunkRead:
    """What a chunk's answer says about its codes (nothing is written yet)."""

    statuses: list[int]  # one per code asked, in order
    framed: bytes  # the records provided, redacted, framed as the answer's ``records``
    removals: list[tuple[int, bytes]]  # (reason, encoded Date) of each 除票 among them, in order
    provided: list[str]  # the 住民票コード of each record provided, in order


def read_chunk(storage: NodeStorage, redactor: BulkRedactor, asked: Sequence[str], by_my_number: bool) -> ChunkRead:
    """Find each code's record (one read transaction) and redact the records found."""
    if by_my_number:
        stored, valid = storage.records.encoded_by_my_numbers(asked), is_valid_my_number
    else:
        stored, valid = storage.records.encoded_many(asked), is_valid_resident_code
    found = [raw for raw in stored if raw is not None]
    redacted = redactor.redact(found, want_codes=by_my_number)
    kept = [_FOUND] * len(found)
    for removal in redacted.removals:
        kept[removal.position] = _REMOVED
    removals = [(r.reason, r.date) for r in redacted.removals]
    if len(found) == len(stored):
        statuses = kept
    else:
        statuses, hit = [], iter(kept)
        for code, raw in zip(asked, stored, strict=True):
            statuses.append((_NOT_FOUND if valid(code) else _INVALID) if raw is None else next(hit))
    if by_my_number:
        assert redacted.resident_codes is not None
        provided = redacted.resident_codes
    elif len(found) == len(stored):
        provided = list(asked)
    else:
        provided = [code for code, raw in zip(asked, stored, strict=True) if raw is not None]
    return ChunkRead(statuses, redacted.framed, removals, provided)


@functools.lru_cache(maxsize=64)
def redactor_for(permitted: frozenset[str]) -> BulkRedactor:
    return BulkRedactor(permitted, RECORDS_FIELD)


class ChunkReaders:
    """``processes`` worker processes reading chunks from the LMDB environment at ``path`` (0: read in the
    calling thread from ``storage``). Started at the first chunk, so a node that serves no batch has none."""

    def __init__(self, storage: NodeStorage, processes: int) -> None:
        self._storage = storage
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def read(self, permitted: frozenset[str], asked: Sequence[str], by_my_number: bool) -> ChunkRead:
        """Blocking (run it on a worker thread)."""
        if self._processes == 0:
            return read_chunk(self._storage, redactor_for(permitted), asked, by_my_number)
        pool = self._running()
        try:
            future: Future[ChunkRead] = pool.submit(_read, permitted, list(asked), by_my_number)
            return future.result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None  # the next chunk starts a new pool
            raise Rejected(Problem.UNAVAILABLE, "a batch reader process ended; retry the stream") from None

    def _running(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise Rejected(Problem.UNAVAILABLE, "the node is stopping")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._processes,
                    mp_context=multiprocessing.get_context("spawn"),  # never fork a process running gRPC
                    initializer=_open,
                    initargs=(str(self._storage.env.path), os.getpid()),
                )
            return self._pool

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


def _read(permitted: frozenset[str], asked: list[str], by_my_number: bool) -> ChunkRead:
    assert _STORAGE is not None
    return read_chunk(_STORAGE, redactor_for(permitted), asked, by_my_number)
