"""``jukinet residents import|show``: what a municipality's clerk runs at the CS's site terminal.

``import`` streams a file (docs/IMPORT.md) to the CS in chunks over one RegisterResidents stream, with
the operator session ``jukinet operator login`` saved. The CS answers each chunk with what became of
each row; rows this command cannot even parse are reported with them, in line order, and never sent.
At most ``WINDOW`` chunks are unanswered at a time, so memory stays bounded whatever the file's size.
Re-running the command after an interruption re-sends the file; rows the CS already holds, identical,
are counted as already stored and nothing is applied twice (a row without a 住民票コード that created a
resident before is that resident again: the CS answers it with the code it gave).

The CS gives each new resident (a creating row with ``resident_code`` empty) a 住民票コード from its
reserve and the national server's My Number; the command writes them, by line, to the *assigned file*
(``FILE.assigned.csv`` beside the input unless ``--assigned`` says where): ``line,resident_code,my_number``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import grpc

from jukinet.cli.operators import session_terminal
from jukinet.cli.progress import Progress
from jukinet.cli.resident_file import COLUMNS, ImportFile, Row
from jukinet.devnet.provision import load_network
from jukinet.domain.limits import KIB, MAX_RECORDS_PER_CHUNK, request_limit
from jukinet.v1 import identity_pb2, registry_pb2

WINDOW = 4  # chunks sent and not yet answered; at least 2: the CS answers a chunk once the next has come
CHUNK_BYTES = request_limit("/jukinet.v1.ResidentRegistryService/RegisterResidents") - 64 * KIB
IMPORT_TIMEOUT = 24 * 3600.0  # the stream's deadline; a dead peer is noticed sooner by keepalive


@dataclass
class _Chunk:
    """What the command remembers of a chunk until its answer comes."""

    lines: list[int] = field(default_factory=list)  # the line of each record sent, by index in the chunk
    unparsed: list[Row] = field(default_factory=list)  # lines refused here, not sent
    end: int = 0  # file offset after its last line
    last_line: int = 0

    def __len__(self) -> int:
        return len(self.lines) + len(self.unparsed)


@dataclass
class _Totals:
    rows: int = 0
    stored: int = 0
    already_stored: int = 0
    refused: int = 0
    assigned: int = 0  # rows the CS gave a 住民票コード or My Number (written to the assigned file)
    answered_through: int = 0  # last line of the last chunk answered


ASSIGNED_HEADER = "line,resident_code,my_number"


def assigned_path(path: Path) -> Path:
    """Where the numbers the CS assigned go by default: beside the input, ``<name>.assigned.csv``."""
    return path.with_name(path.name + ".assigned.csv")


def import_residents(
    state: Path, node: str, path: Path, fmt: str | None, out: TextIO = sys.stdout, assigned: Path | None = None
) -> int:
    terminal = session_terminal(load_network(state), node)
    started = time.monotonic()
    assigned = assigned or assigned_path(path)
    with ImportFile(path, fmt) as source, _assigned_file(assigned, path) as numbers:
        if numbers is None:
            return 1
        progress = Progress(out, source.size)
        sent: deque[_Chunk] = deque()
        window = threading.BoundedSemaphore(WINDOW)
        stop = threading.Event()
        totals = _Totals()
        answers = terminal.register_chunks(_requests(source.rows(), sent, window, stop), timeout=IMPORT_TIMEOUT)
        try:
            for answer in answers:
                chunk = sent.popleft()
                window.release()
                _report(chunk, answer, totals, progress, numbers)
        except grpc.RpcError as exc:
            progress.finish()
            print(f"jukinet: import stopped: {exc.code().name}: {_shown(exc.details() or '')}", file=sys.stderr)
            print(_resume_hint(totals), file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            answers.cancel()
            progress.finish()
            print(f"interrupted; {_resume_hint(totals)}", file=sys.stderr)
            return 130
        finally:
            stop.set()
    progress.finish()
    if sent:
        print(f"jukinet: the CS ended the stream with {len(sent)} chunk(s) unanswered", file=sys.stderr)
        print(_resume_hint(totals), file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    if totals.assigned:
        print(f"{totals.assigned:,} rows got their numbers from the CS: {_shown(str(assigned))} "
              f"({ASSIGNED_HEADER})", file=out)  # fmt: skip
    print(
        f"{_shown(str(path))}: {totals.rows:,} rows: {totals.stored:,} stored, {totals.already_stored:,} already "
        f"stored, {totals.refused:,} refused ({seconds:.1f} s, {totals.rows / max(seconds, 1e-9):,.0f} rows/s)",
        file=out,
    )
    return 2 if totals.refused else 0


def show_resident(state: Path, node: str, resident_code: str, out: TextIO = sys.stdout) -> int:
    terminal = session_terminal(load_network(state), node)
    try:
        record = terminal.resident(resident_code)
    except grpc.RpcError as exc:
        print(f"refused: {exc.code().name}: {_shown(exc.details() or '')}", file=out)
        return 2
    for column in COLUMNS.values():
        print(f"{column.name}: {_shown(column.show(record))}", file=out)
    status = identity_pb2.RecordStatus.Name(record.status).removeprefix("RECORD_STATUS_").lower()
    print(f"status: {status}", file=out)
    return 0


def _requests(
    rows: Iterator[Row], sent: deque[_Chunk], window: threading.BoundedSemaphore, stop: threading.Event
) -> Iterator[registry_pb2.RegisterResidentsRequest]:
    """Chunks of at most MAX_RECORDS_PER_CHUNK lines and CHUNK_BYTES; read by gRPC's thread as the
    stream has room, and held back while WINDOW chunks are unanswered."""
    request, chunk, size = registry_pb2.RegisterResidentsRequest(), _Chunk(), 0
    for row in rows:
        record = row.record
        if record is not None and request.records and size + record.ByteSize() + 8 > CHUNK_BYTES:
            if not _room(window, stop):
                return
            sent.append(chunk)
            yield request
            request, chunk, size = registry_pb2.RegisterResidentsRequest(), _Chunk(), 0
        if record is None:
            chunk.unparsed.append(row)
        else:
            request.records.append(record)
            chunk.lines.append(row.line)
            size += record.ByteSize() + 8
        chunk.end, chunk.last_line = row.end, row.line
        if len(chunk) >= MAX_RECORDS_PER_CHUNK:
            if not _room(window, stop):
                return
            sent.append(chunk)
            yield request
            request, chunk, size = registry_pb2.RegisterResidentsRequest(), _Chunk(), 0
    if len(chunk) and _room(window, stop):
        sent.append(chunk)
        yield request


def _room(window: threading.BoundedSemaphore, stop: threading.Event) -> bool:
    while not window.acquire(timeout=0.2):
        if stop.is_set():
            return False
    return not stop.is_set()


@contextlib.contextmanager
def _assigned_file(assigned: Path, source: Path) -> Iterator[TextIO | None]:
    """The assigned file, written afresh (a re-run writes every row again: already stored ones too); None,
    said on stderr, when it cannot be written — before anything is sent."""
    try:
        if assigned.resolve() == source.resolve():
            raise OSError(0, "it is the file being imported")
        fh = assigned.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        print(f"jukinet: cannot write the assigned numbers to {_shown(str(assigned))}: "
              f"{exc.strerror or exc}; give --assigned PATH", file=sys.stderr)  # fmt: skip
        yield None
        return
    with fh:
        fh.write(ASSIGNED_HEADER + "\n")
        fh.flush()
        yield fh


def _report(
    chunk: _Chunk,
    answer: registry_pb2.RegisterResidentsResponse,
    totals: _Totals,
    progress: Progress,
    numbers: TextIO,
) -> None:
    for row in answer.assigned:  # the CS's numbers, by line; written before the progress says the chunk is done
        if row.index < len(chunk.lines):
            numbers.write(f"{chunk.lines[row.index]},{row.resident_code},{row.my_number}\n")
    numbers.flush()
    totals.assigned += len(answer.assigned)
    refused: list[tuple[int, Sequence[tuple[str, str]]]] = [(row.line, row.problems) for row in chunk.unparsed]
    for row in answer.refused_rows:
        line = chunk.lines[row.index] if row.index < len(chunk.lines) else chunk.last_line
        refused.append((line, [(p.field, p.message) for p in row.problems]))
    for line, problems in sorted(refused, key=lambda r: r[0]):
        for name, message in problems:
            where = f"line {line}: {_shown(name)}: " if name else f"line {line}: "
            progress.say(where + _shown(message))
    totals.rows += len(chunk)
    totals.stored += answer.stored
    totals.already_stored += answer.already_stored
    totals.refused += len(refused)
    totals.answered_through = chunk.last_line
    progress.update(totals.rows, chunk.end)


def _resume_hint(totals: _Totals) -> str:
    return (
        f"every row through line {totals.answered_through} was answered ({totals.stored:,} stored); run the same "
        "command again to continue: rows already stored are skipped"
    )


def _shown(text: str) -> str:
    """``text`` with every character that is not printable (controls, bidi overrides, …) escaped, so that
    nothing from a file or a peer can move the cursor or reorder the terminal's line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
