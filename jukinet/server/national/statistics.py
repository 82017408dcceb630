"""The monthly population movement report at the national server: a follower of the change feed that
keeps per-month counters, and ``StatisticsService.GetMovementReport`` that reads them.

What a change counts as, and in which month, is :mod:`jukinet.domain.statistics`. The follower
(:class:`MovementFollower`, a background thread) reads the feed by position, at most
``MAX_FOLLOW_CHUNK`` entries a step, and commits the step's counters together with the new cursor in
one transaction that rides on the node's group commit (:class:`jukinet.storage.statistics.MovementCounts`):
it never holds the write lock longer than one small step, never copies the feed, and resumes after a
restart exactly where it stopped. Whether a birth or death is the resident's first is one key read of
the marks written with the counters (never the resident's history, which a clerk can make long). A
report reads one month's counters by prefix, never the feed, and says how far the follower had read.
Who may read it: an operator session with the role 'read-statistics' at a national terminal; every read
is audited.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from itertools import islice

import lmdb
from google.protobuf.message import DecodeError

from jukinet.domain.clock import SYSTEM_CLOCK, Clock
from jukinet.domain.errors import Rejected
from jukinet.domain.limits import MAX_FOLLOW_CHUNK, MAX_REPORT_ROWS
from jukinet.domain.node_ids import NodeId, NodeKind
from jukinet.domain.operators import Role
from jukinet.domain.statistics import ONCE_PER_RESIDENT, Count, Kind, Month, counted
from jukinet.server.audit import Auditor
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, bind
from jukinet.storage import NodeStorage
from jukinet.storage.statistics import MovementCounts
from jukinet.v1 import audit_pb2, moves_pb2, notice_pb2, statistics_pb2, statistics_pb2_grpc

log = logging.getLogger(__name__)
_PER_MUNICIPALITY = {
    Kind.BIRTH: "births",
    Kind.DEATH: "deaths",
    Kind.MOVE_IN: "moves_in",
    Kind.MOVE_OUT: "moves_out",
    Kind.RELOCATION: "relocations",
    Kind.ARRIVAL: "arrivals_without_grant",
    Kind.EMIGRATION: "emigrations",
}


def _grant_origin(notice: notice_pb2.ChangeNotice) -> str | None:
    """The municipality code of the CS that granted this notice's move (None without a grant). The grant
    was verified end to end when the notice was stored; a feed entry is only ever parsed here."""
    if not notice.HasField("move_out_grant"):
        return None
    try:
        origin = NodeId.parse(moves_pb2.MoveOutGrant.FromString(notice.move_out_grant.payload).origin)
    except (DecodeError, Rejected):
        return None
    return origin.code if origin.kind is NodeKind.CS else None


class MovementFollower:
    """Counts the change feed into the movement counters, a bounded step at a time, in its own thread."""

    def __init__(
        self, storage: NodeStorage, chunk: int = MAX_FOLLOW_CHUNK, idle_s: float = 0.5, pause_s: float = 0.005
    ) -> None:
        self._storage = storage
        self._counts = MovementCounts(storage.env)
        self._chunk = max(1, min(chunk, MAX_FOLLOW_CHUNK))
        self._idle_s = idle_s  # caught up: look again after this long
        self._pause_s = pause_s  # between full steps: the ingest gets the interpreter and the write lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _marked(self, txn: lmdb.Transaction, code: str, kind: Kind, pending: set[tuple[str, Kind]]) -> bool:
        return (code, kind) in pending or self._counts.marked(txn, code, kind)

    def counts(
        self, txn: lmdb.Transaction, position: int, notice: notice_pb2.ChangeNotice, pending: set[tuple[str, Kind]]
    ) -> list[Count]:
        """What the notice at ``position`` adds. ``pending``: the marks this step set so far (read with the
        stored ones in ``txn``); a resident's first birth or death (counted or not: an impossible date counts
        nothing) adds its mark, and a 住民票コード変更 carries the former code's marks to the new one."""
        record = notice.record
        reason, code = record.change_reason, record.resident_code
        if old := notice.former_resident_code:
            for kind in ONCE_PER_RESIDENT.values():
                if self._marked(txn, old, kind, pending) and not self._marked(txn, code, kind, pending):
                    pending.add((code, kind))
        first = True
        if (kind := ONCE_PER_RESIDENT.get(reason)) is not None:
            first = not self._marked(txn, code, kind, pending)
            if first:
                pending.add((code, kind))
        return counted(reason, record.change_date, record.address.municipality_code, _grant_origin(notice), first)

    def step(self) -> int:
        """Count the next at most ``chunk`` feed entries; returns how many (0: caught up)."""
        env = self._storage.env
        with env.read() as txn:
            start = self._counts.position(txn)
        entries = self._storage.history.feed(start, self._chunk)
        if not entries:
            return 0
        added: Counter[Count] = Counter()
        marks: set[tuple[str, Kind]] = set()
        with env.read() as txn:
            for position, raw in entries:
                try:
                    notice = notice_pb2.ChangeNotice.FromString(raw)
                except DecodeError:  # never stored so; counted as nothing rather than stopping the report
                    log.error("change feed entry #%d does not decode; not counted", position)
                    continue
                added.update(self.counts(txn, position, notice, marks))
        last = entries[-1][0]
        env.submit(lambda txn: self._counts.add(txn, added, start, last, marks)).result()
        return len(entries)

    def catch_up(self) -> int:
        """Step until the feed is read to its end as it is now; returns the entries counted."""
        total = 0
        while n := self.step():
            total += n
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.step()
            except Exception:  # the store is intact (a step commits whole or not at all): try again later
                log.exception("counting the change feed for the movement report failed")
                n = 0
            self._stop.wait(self._pause_s if n >= self._chunk else self._idle_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="movement-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class MovementReports:
    """Reads one month's report from the counters (plain object: the RPC in front only moves messages)."""

    def __init__(self, storage: NodeStorage, clock: Clock = SYSTEM_CLOCK, max_rows: int = MAX_REPORT_ROWS) -> None:
        self._storage = storage
        self._counts = MovementCounts(storage.env)
        self._clock = clock
        self._max_rows = max_rows

    def report(self, month_text: str) -> statistics_pb2.GetMovementReportResponse:
        month = Month.parse(month_text)  # Rejected (INVALID) naming the text
        answer = statistics_pb2.GetMovementReportResponse(month=str(month))
        with self._storage.env.read() as txn:  # one snapshot: counters and cursor agree
            answer.read_position = self._counts.position(txn)
            answer.feed_position = self._storage.history.next_position(txn) - 1
            self._flows(txn, month, answer)
            self._municipalities(txn, month, answer)
        answer.as_of.FromMilliseconds(self._clock.now_ms())
        return answer

    def _flows(self, txn: lmdb.Transaction, month: Month, answer: statistics_pb2.GetMovementReportResponse) -> None:
        totals = answer.totals
        for a, b, n in self._counts.rows(txn, month, Kind.PREFECTURE_MOVE):  # at most 47 × 47
            if a == b:
                totals.intra_prefecture_moves += n
            else:
                totals.inter_prefecture_moves += n
                answer.prefecture_flows.add(origin_prefecture=a, destination_prefecture=b, moves=n)
        rows = list(islice(self._counts.rows(txn, month, Kind.MOVE), self._max_rows + 1))
        answer.municipality_flows_truncated = len(rows) > self._max_rows
        for a, b, n in rows[: self._max_rows]:
            answer.municipality_flows.add(origin_municipality=a, destination_municipality=b, moves=n)

    def _municipalities(
        self, txn: lmdb.Transaction, month: Month, answer: statistics_pb2.GetMovementReportResponse
    ) -> None:
        """Per-municipality rows; each kind has at most one row per municipality of the directory."""
        rows: dict[str, statistics_pb2.MunicipalityCounts] = {}
        totals = answer.totals
        for kind, name in _PER_MUNICIPALITY.items():
            for code, _, n in self._counts.rows(txn, month, kind):
                row = rows.setdefault(code, statistics_pb2.MunicipalityCounts(municipality_code=code))
                setattr(row, name, getattr(row, name) + n)
                if kind not in (Kind.MOVE_IN, Kind.MOVE_OUT):  # moves are totalled from the prefecture flows
                    setattr(totals, name, getattr(totals, name) + n)
        codes = sorted(rows)
        answer.municipalities_truncated = len(codes) > self._max_rows
        answer.municipalities.extend(rows[c] for c in codes[: self._max_rows])


class StatisticsRpc(statistics_pb2_grpc.StatisticsServiceServicer):
    def __init__(self, reports: MovementReports, auditor: Auditor, blocking: Blocking, sites: Sequence[str]) -> None:
        self._reports = reports
        self.auditor = auditor
        self.blocking = blocking
        self.readers = OperatorWithRole(TerminalOf(frozenset(sites)), Role.READ_STATISTICS)

    @guarded("readers", audit=audit_pb2.AUDIT_ACTION_READ_MOVEMENT_REPORT)
    def GetMovementReport(
        self, request: statistics_pb2.GetMovementReportRequest, caller: Caller
    ) -> statistics_pb2.GetMovementReportResponse:
        report = self._reports.report(request.month)
        detail = f"counted up to feed position {report.read_position} of {report.feed_position}"
        self.auditor.record(
            audit_pb2.AUDIT_ACTION_READ_MOVEMENT_REPORT, audit_pb2.AUDIT_OUTCOME_SUCCESS, caller, report.month, detail
        )  # durable before the answer leaves
        return report


def statistics_service(parts: NodeParts) -> ServiceBinding:
    """The national tier's StatisticsService (see jukinet.server.assembly.TIERS)."""
    reports = MovementReports(parts.storage, parts.clock)
    return bind(StatisticsRpc(reports, parts.auditor, parts.blocking, sorted(parts.sites)))


def movement_follower(parts: NodeParts) -> MovementFollower:
    """The national tier's background follower of the change feed (a Worker of jukinet.server.assembly)."""
    return MovementFollower(parts.storage)
