"""The CS's resident registry: record a change, or register residents in bulk, each with its notice.

Callers are operator terminals of this municipality presenting an operator session with the role
'register-residents'. A change (:meth:`Registry.record`) is validated and committed in one transaction —
record, history, the change notice queued for the prefecture, and the audit entry — or refused whole.
A bulk registration is a stream of chunks; each chunk is one transaction in which every row is decided on
its own, in order: stored, already stored (identical to the stored record, so re-sending a file applies
nothing twice), or refused with the field and the problem. :class:`Registry` is the plain object;
:class:`RegistryRpc` only moves messages.

Numbers come from the national server, never from the operator (:mod:`jukinet.cs_node.numbers`): a
creating change (出生, 職権記載, 転入 from abroad) leaves ``resident_code`` empty and gets a code from the
reserve; its My Number is asked for before the transaction (one call per request or chunk) and, if the
national server does not answer in time, recorded later as a 個人番号指定 change. An amending change
with an empty ``my_number`` keeps the stored one; only 個人番号変更 (which the CS asks the national
server for) changes it.

住民票コード変更 (reason CHANGE_REASON_RESIDENT_CODE_CHANGE, the record under the resident's current code,
every other item unchanged): the CS asks the national server for a fresh code that replaces it (before the
transaction; the same code again on a retry), then in one transaction ends the old record (kept, removed,
reason 住民票コード変更), stores the record under the new code — the answer's ``record`` carries it — moves
what it keeps per resident, and queues the signed one-code block and then the notice naming the former code.

A creating row that left ``resident_code`` empty is one new resident however often it is sent: the CS
keeps which resident each such row created, by the row's digest (:func:`row_digest`: everything the row
says but its numbers), and answers the same row again as already stored with that resident's code
(RecordChange: ALREADY_EXISTS naming it). So a re-sent import file, or a retried RecordChange whose
answer was lost, registers nobody twice.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
import lmdb

from jukinet.cs_node.numbers import (
    ONLINE_TIMEOUT_S,
    Background,
    CodeChange,
    CodeSupply,
    NationalNumbers,
)
from jukinet.domain.changes import CODE_CHANGE, CREATING, code_change_problem, ended_record, local_change, local_numbers
from jukinet.domain.clock import SYSTEM_CLOCK, Clock, today
from jukinet.domain.codes import ResidentCode
from jukinet.domain.errors import FieldRejected, Problem, Rejected
from jukinet.domain.limits import MAX_PROBLEM_CHARS, MAX_RECORDS_PER_CHUNK
from jukinet.domain.moves import local_data_problems
from jukinet.domain.node_ids import NodeId
from jukinet.domain.numbers import MAX_NUMBERS_PER_REQUEST
from jukinet.domain.operators import Role
from jukinet.domain.quoting import quoted
from jukinet.domain.records import CLOSING_REASON, reason_name, status_for, validate_record
from jukinet.server.audit import Auditor
from jukinet.server.parts import NodeParts
from jukinet.server.runtime.batches import ChangeNoticeEncoder, change_notice_item
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.guard import guarded
from jukinet.server.runtime.peers import Caller
from jukinet.server.runtime.policy import OperatorWithRole, TerminalOf
from jukinet.server.runtime.server import ServiceBinding, TlsMaterial, bind
from jukinet.storage import NodeStorage
from jukinet.storage.layout import Counter
from jukinet.v1 import audit_pb2, identity_pb2, local_pb2, notice_pb2, registry_pb2, registry_pb2_grpc

MAX_CHUNK_RECORDS = MAX_RECORDS_PER_CHUNK
A = audit_pb2
FieldProblems = tuple[tuple[str, str], ...]
"""(field, problem) pairs; the field as the wire contract names it, "" for the row as a whole."""
Local = Sequence[local_pb2.LocalResidentData | None]
"""Per row: the local-only items to store with it (世帯主, 続柄, 本籍, 筆頭者), or None to leave them."""


@dataclass(frozen=True)
class ChunkOutcome:
    """What became of the rows of one request."""

    stored: range  # the stored rows' notice sequences
    already_stored: int = 0
    refused: Mapping[int, FieldProblems] = field(default_factory=dict)  # by row index in the request
    assigned: Mapping[int, tuple[str, str]] = field(default_factory=dict)  # rows the CS numbered (stored or
    # already stored: a row without resident_code that created a resident before)


R = identity_pb2
_SYSTEM = ("system", "system")  # the actor and terminal of changes the CS records itself (個人番号指定)


@dataclass
class _Numbers:
    """What a request got from the reserve and the national server before its transaction."""

    claimed: list[str] = field(default_factory=list)  # codes claimed from the reserve (released after)
    obtained: dict[str, str] = field(default_factory=dict)  # code -> My Number the national server answered
    rows: set[int] = field(default_factory=set)  # rows whose code or number the CS filled in
    code_changes: dict[int, CodeChange] = field(default_factory=dict)  # 住民票コード変更 rows: the new code
    digests: dict[int, bytes] = field(default_factory=dict)  # creating rows without a code: row_digest


@dataclass(frozen=True)
class Prepared:
    """A chunk ready for its transaction (:meth:`Registry.prepare`)."""

    records: Sequence[identity_pb2.IdentityRecord]
    local: Local
    refused: dict[int, FieldProblems]
    numbers: _Numbers


class Registry:
    def __init__(
        self,
        node_id: NodeId,
        upstream: NodeId,
        storage: NodeStorage,
        auditor: Auditor,
        clock: Clock = SYSTEM_CLOCK,
        enqueued: Callable[[str], None] = lambda destination: None,
        supply: CodeSupply | None = None,
        number_timeout: float = ONLINE_TIMEOUT_S,
    ) -> None:
        self.node_id = node_id
        self._upstream = str(upstream)  # where change notices go: this CS's prefecture
        self._storage = storage
        self._auditor = auditor
        self._clock = clock
        self._enqueued = enqueued
        self.supply = supply  # None: no national server to ask (unit tests): rows must carry their numbers
        self._number_timeout = number_timeout

    def record(
        self, records: Sequence[identity_pb2.IdentityRecord], caller: Caller, action: int, local: Local = ()
    ) -> range:
        """Store changes with their notices, all or nothing; returns the notices' sequences. ``local``
        items are stored at this CS only (never in a notice). Rows that left resident_code or my_number
        empty get them (written into ``records``)."""
        self.check(records, local)
        numbers = self._numbers(records, {}, per_row=False)
        try:
            outcome = self._apply(records, {}, _actor(caller), action, per_row=False, numbers=numbers, local=local)
            return outcome.stored
        finally:
            self._release(numbers)

    def check(self, records: Sequence[identity_pb2.IdentityRecord], local: Local = ()) -> None:
        """Rejected naming the first record that is invalid or not of this municipality."""
        for i, record in enumerate(records):
            found = self._problems(record, today(self._clock), _row(local, i))
            if found is not None:
                problem, problems = found
                raise Rejected(problem, f"record {i}: " + "; ".join(_joined(p) for p in problems))

    def screen(self, records: Sequence[identity_pb2.IdentityRecord], local: Local = ()) -> dict[int, FieldProblems]:
        """The rows refused on what can be checked without the stored state (validity, this municipality)."""
        if local and len(local) != len(records):
            raise Rejected(
                Problem.INVALID, f"local: {len(local)} entries for {len(records)} records; give none or one per record"
            )
        day = today(self._clock)
        refused = {}
        for i, record in enumerate(records):
            found = self._problems(record, day, _row(local, i))
            if found is not None:
                refused[i] = found[1]
        return refused

    def register(
        self,
        records: Sequence[identity_pb2.IdentityRecord],
        refused: Mapping[int, FieldProblems],
        caller: Caller,
        action: int,
        local: Local = (),
    ) -> ChunkOutcome:
        """One chunk of a bulk registration, in one transaction: rows ``refused`` by :meth:`screen` are
        skipped; each other row, in order, is already stored, refused by the change rules, or stored. Rows
        that left resident_code or my_number empty get them (one AssignMyNumbers call for the chunk)."""
        return self.commit(self.prepare(records, local, refused), caller, action)

    def prepare(
        self,
        records: Sequence[identity_pb2.IdentityRecord],
        local: Local = (),
        refused: Mapping[int, FieldProblems] | None = None,
    ) -> Prepared:
        """What a chunk needs before its transaction — :meth:`screen` (unless ``refused`` is given), codes
        from the reserve, the national server's My Numbers — so that a bulk registration prepares chunk N+1
        (network round trips included) while chunk N commits. Claims are released by :meth:`commit` (or
        :meth:`abandon`)."""
        refused = dict(self.screen(records, local) if refused is None else refused)
        return Prepared(records, local, refused, self._numbers(records, refused, per_row=True))

    def commit(self, prepared: Prepared, caller: Caller, action: int) -> ChunkOutcome:
        """One prepared chunk, in one transaction (see :meth:`register`)."""
        try:
            return self._apply(
                prepared.records, prepared.refused, _actor(caller), action, per_row=True,
                numbers=prepared.numbers, local=prepared.local,
            )  # fmt: skip
        finally:
            self._release(prepared.numbers)

    def abandon(self, prepared: Prepared) -> None:
        """A prepared chunk that will not be committed (its stream ended): its codes go back to the reserve."""
        self._release(prepared.numbers)

    def _numbers(
        self, records: Sequence[identity_pb2.IdentityRecord], refused: dict[int, FieldProblems], per_row: bool
    ) -> _Numbers:
        """Codes from the reserve for creating rows without one, then the My Numbers of every new code (one
        call), and new numbers for 個人番号変更 rows — before the transaction, so it never waits on the network."""
        got = _Numbers()
        rows = [i for i, r in enumerate(records) if i not in refused]
        new_rows = [i for i in rows if not records[i].resident_code and records[i].change_reason in CREATING]
        if new_rows:  # a row that created a resident before needs no code (the transaction answers it)
            got.digests = {i: row_digest(records[i]) for i in new_rows}
            with self._storage.env.read() as txn:
                new_rows = [i for i in new_rows if self._storage.reserve.created_by(txn, got.digests[i]) is None]
        if new_rows:
            if self.supply is None:
                raise Rejected(Problem.UNAVAILABLE, "this CS has no national server to designate 住民票コード")
            got.claimed = self.supply.claim(len(new_rows))
            for i, code in zip(new_rows, got.claimed, strict=True):
                records[i].resident_code = code
                got.rows.add(i)
        if self.supply is None:
            return got
        with self._storage.env.read() as txn:
            ask = [  # a new resident: the national server's number, also to check one typed in
                i
                for i in rows
                if records[i].change_reason in CREATING
                and records[i].resident_code  # empty: created before
                and self._storage.reserve.holds(txn, records[i].resident_code)
            ]  # fmt: skip (a code not in the reserve is refused in the transaction, unless a grant covers it)
            changes = [(i, self._storage.records.current(txn, records[i].resident_code)) for i in rows
                       if records[i].change_reason == R.CHANGE_REASON_MY_NUMBER_CHANGE]  # fmt: skip
            code_changes = [(i, self._storage.records.current(txn, records[i].resident_code),
                             self._storage.numbers.replaced_by(txn, records[i].resident_code))
                            for i in rows if records[i].change_reason == CODE_CHANGE]  # fmt: skip
        if ask:
            codes = list(dict.fromkeys(records[i].resident_code for i in ask))[:MAX_NUMBERS_PER_REQUEST]
            got.obtained.update(self.supply.numbers(codes, self._number_timeout))
            for i in ask:
                number = got.obtained.get(records[i].resident_code)
                if number and not records[i].my_number:
                    records[i].my_number = number
                    got.rows.add(i)
        for i, current in changes:  # 個人番号変更: the national server retires the old number, issues a new one
            try:
                if current is None or not current.my_number:
                    raise FieldRejected(
                        Problem.NOT_FOUND, "my_number", f"resident {records[i].resident_code} has no My Number here"
                    )
                if records[i].my_number:
                    raise FieldRejected(
                        Problem.DENIED, "my_number", "leave my_number empty: the national server issues the new one"
                    )
                number = self.supply.national.change_my_number(current.resident_code, current.my_number)
                records[i].my_number = got.obtained[current.resident_code] = number
                got.rows.add(i)
            except Rejected as exc:
                if not per_row:
                    self._release(got)
                    raise
                refused[i] = ((getattr(exc, "field", ""), str(exc)),)
        for i, former, replaced in code_changes:  # 住民票コード変更: a fresh code from the national server
            try:
                if replaced is not None:
                    old = records[i].resident_code
                    raise FieldRejected(
                        Problem.CONFLICT, "resident_code", f"resident_code {old} was replaced by {replaced} already"
                    )
                found = code_change_problem(former, records[i])  # checked before the national server changes it
                if found is not None:
                    raise FieldRejected(*found)
                got.code_changes[i] = self.supply.change_code(records[i].resident_code)
                got.rows.add(i)
            except Rejected as exc:
                if not per_row:
                    self._release(got)
                    raise
                refused[i] = ((getattr(exc, "field", ""), str(exc)),)
        return got

    def _release(self, numbers: _Numbers) -> None:
        if self.supply is not None and numbers.claimed:
            self.supply.release(numbers.claimed)

    def designate_numbers(self, limit: int = MAX_NUMBERS_PER_REQUEST) -> int:
        """Ask again for the My Numbers of records stored without one; record each answer as a 個人番号指定
        change (its notice flows up as usual). Returns how many were recorded."""
        if self.supply is None:
            return 0
        waiting = self._storage.reserve.awaiting(limit)
        if not waiting:
            return 0
        numbers = _Numbers(obtained=self.supply.numbers(waiting))
        day = _date(today(self._clock))
        changes = []
        for code in waiting:
            current, number = self._storage.records.get(code), numbers.obtained.get(code)
            if current is None or not number:
                continue
            change = identity_pb2.IdentityRecord()
            change.CopyFrom(current)
            change.my_number = number
            change.change_reason = R.CHANGE_REASON_MY_NUMBER_DESIGNATION
            change.change_date.CopyFrom(day)
            changes.append(change)
        if not changes:
            return 0
        outcome = self._apply(changes, {}, _SYSTEM, A.AUDIT_ACTION_RECORD_CHANGE, per_row=True, numbers=numbers)
        return len(outcome.stored)

    def _apply(
        self,
        records: Sequence[identity_pb2.IdentityRecord],
        refused: Mapping[int, FieldProblems],
        actor: tuple[str, str],
        action: int,
        per_row: bool,
        local: Local = (),
        numbers: _Numbers | None = None,
    ) -> ChunkOutcome:
        if not records:
            return ChunkOutcome(range(0))
        s = self._storage
        encoder = ChangeNoticeEncoder(str(self.node_id), self._clock.now_ms())
        numbers = numbers or _Numbers()

        def apply(txn: lmdb.Transaction) -> ChunkOutcome:
            first_seq, first_hist = s.env.peek(txn, Counter.CHANGE), s.history.next_position(txn)
            refusals, already, items, assigned, notices = dict(refused), 0, [], {}, 0
            replaced: list[str] = []  # 住民票コード変更 made, for the audit entry
            for i, record in enumerate(records):
                if i in refusals:
                    continue
                extra = _row(local, i)  # local-only items: stored here with the row, never in its notice
                digest = numbers.digests.get(i)
                created = s.reserve.created_by(txn, digest) if digest is not None else None
                if created is not None:  # this row (or one saying the same) created a resident before
                    if not per_row:
                        raise FieldRejected(
                            Problem.ALREADY_EXISTS,
                            "resident_code",
                            f"this row was stored before: it created resident {created} (a row without "
                            "resident_code is one new resident however often it is sent)",
                        )
                    first = s.records.current(txn, created)
                    record.resident_code, record.my_number = created, first.my_number if first else ""
                    if extra is not None:
                        s.local.put(txn, created, extra)
                    assigned[i] = (record.resident_code, record.my_number)
                    already += 1
                    continue
                code = record.resident_code
                current = s.records.current(txn, code)
                if not record.my_number and current is not None and current.my_number:
                    record.my_number = current.my_number  # an amending change keeps the stored number
                if per_row and current is not None and _same(current, record):
                    if extra is not None:
                        s.local.put(txn, record.resident_code, extra)
                    already += 1
                    continue
                designated = s.reserve.holds(txn, code)
                try:
                    if record.change_reason == CODE_CHANGE:
                        change = self._change_code(txn, record, current, numbers.code_changes.get(i))
                    else:
                        change = None
                        local_numbers(current, record, designated, numbers.obtained.get(code, ""))
                        local_change(current, record, s.records.holder_of(txn, record.my_number))
                except Rejected as exc:
                    if not per_row:
                        raise
                    refusals[i] = ((exc.field if isinstance(exc, FieldRejected) else "", str(exc)),)
                    continue
                encoded = record.SerializeToString()
                notice = encoder.encode(first_seq + notices, encoded)
                if change is not None:  # the record moved to the new code (self._change_code stored it)
                    code = record.resident_code
                    replaced.append(f"{change.old} → {code}")
                    notice += notice_pb2.ChangeNotice(former_resident_code=change.old).SerializeToString()
                    s.history.index(txn, change.old, first_hist + notices)
                    items.append(change.block_item)  # the designation reaches the prefecture first
                else:
                    if designated:
                        s.reserve.take(txn, code)
                    if digest is not None:
                        s.reserve.created(txn, digest, code)
                    if record.my_number:
                        s.reserve.numbered(txn, code)
                    else:
                        s.reserve.await_number(txn, code)
                    s.records.put(txn, record, current, encoded)
                if i in numbers.rows:
                    assigned[i] = (code, record.my_number)
                if extra is not None:
                    s.local.put(txn, code, extra)
                s.history.append(txn, code, notice, first_hist + notices)
                items.append(change_notice_item(notice))
                notices += 1
            if items:
                if (
                    s.env.reserve(txn, Counter.CHANGE, notices) != first_seq
                    or s.history.reserve(txn, notices) != first_hist
                ):
                    raise Rejected(Problem.BROKEN, "a counter moved inside its own write transaction")
                s.queues.enqueue(txn, self._upstream, items)
            outcome = ChunkOutcome(range(first_seq, first_seq + notices), already, refusals, assigned)
            self._audit(txn, records, outcome, actor, action, replaced)
            return outcome

        outcome = s.env.submit(apply).result()  # group commit: shares an fsync with the link's settlements
        if outcome.stored:
            self._enqueued(self._upstream)
        return outcome

    def _change_code(
        self,
        txn: lmdb.Transaction,
        record: identity_pb2.IdentityRecord,
        former: identity_pb2.IdentityRecord | None,
        change: CodeChange | None,
    ) -> CodeChange:
        """住民票コード変更 inside the transaction: check again, then end the old code's record (kept, removed,
        reason 住民票コード変更), store the record under the new code (``record`` is rewritten to it) and move
        to it what this CS keeps per resident: local-only items, cards, DV support measures, copies issued
        and a pending My Number. The caller queues the block and the notice."""
        s = self._storage
        if change is None:
            raise Rejected(Problem.UNAVAILABLE, "this CS has no national server to designate a new 住民票コード")
        found = code_change_problem(former, record)
        if found is not None:
            raise FieldRejected(*found)
        assert former is not None  # code_change_problem refuses a missing record
        if s.records.current(txn, change.new) is not None or s.reserve.holds(txn, change.new):
            raise Rejected(Problem.BROKEN, f"the new code {change.new} is in use at {self.node_id} already")
        number = former.my_number or change.my_number
        if former.my_number and change.my_number and change.my_number != former.my_number:
            raise Rejected(Problem.BROKEN, f"the national server holds another My Number for resident {change.old}")
        moved = identity_pb2.IdentityRecord()
        moved.CopyFrom(former)
        moved.resident_code, moved.my_number = change.new, number
        moved.change_reason, moved.status = CODE_CHANGE, status_for(CODE_CHANGE)
        moved.change_date.CopyFrom(record.change_date)
        record.CopyFrom(moved)
        s.records.put(txn, ended_record(former, record), former)
        s.records.put(txn, record, None)  # the My Number index names the new code
        s.numbers.link_change(txn, change.old, change.new)
        s.local.move(txn, change.old, change.new)
        s.cards.move(txn, change.old, change.new)
        s.dv_measures.move(txn, change.old, change.new)
        s.copies.move(txn, change.old, change.new)
        s.reserve.numbered(txn, change.old)
        if record.my_number:
            s.reserve.numbered(txn, change.new)
        else:
            s.reserve.await_number(txn, change.new)  # the background asks for it under the new code
        return change

    def _audit(
        self,
        txn: lmdb.Transaction,
        records: Sequence[identity_pb2.IdentityRecord],
        outcome: ChunkOutcome,
        actor: tuple[str, str],
        action: int,
        replaced: Sequence[str] = (),
    ) -> None:
        sequences = outcome.stored
        parts = [f"notices {self.node_id}#{sequences.start}..{sequences.stop - 1}"] if sequences else []
        if len(records) == 1:
            target = records[0].resident_code
            parts.append(reason_name(records[0].change_reason))
        else:
            target = f"{len(records)} residents"
            parts.append(f"{len(sequences)} stored, {outcome.already_stored} already stored, "
                         f"{len(outcome.refused)} refused")  # fmt: skip
        if replaced:
            parts.append("住民票コード変更 " + ", ".join(replaced[:8]) + (" …" if len(replaced) > 8 else ""))
        success = sequences or outcome.already_stored
        result = A.AUDIT_OUTCOME_SUCCESS if success else A.AUDIT_OUTCOME_FAILED
        entry = self._auditor.entry(action, result, actor[0], actor[1], target, "; ".join(parts))
        self._storage.audit.append(txn, entry)

    def _problems(
        self, record: identity_pb2.IdentityRecord, day: datetime.date, local: local_pb2.LocalResidentData | None = None
    ) -> tuple[Problem, FieldProblems] | None:
        problems = validate_record(record, today=day)
        if not record.resident_code and record.change_reason in CREATING:  # the CS takes one from its reserve
            problems = [p for p in problems if not p.startswith("resident_code:")]
        if local is not None:
            problems += local_data_problems(local)
        if record.change_reason == CLOSING_REASON:
            problems.append("change_reason: 転入通知受理 is recorded only when a 転入通知 arrives from the new CS")
        if problems:  # each starts with its field's name (validate_record's contract)
            return Problem.INVALID, tuple(_split(p) for p in problems)
        if record.change_reason == R.CHANGE_REASON_MY_NUMBER_DESIGNATION:
            return Problem.DENIED, (
                (
                    "change_reason",
                    "個人番号指定 is recorded by the CS itself when the national server assigns the number",
                ),
            )
        municipality = record.address.municipality_code
        if municipality != self.node_id.code:
            return Problem.DENIED, (
                (
                    "address.municipality_code",
                    f"this CS ({self.node_id}) records residents of {self.node_id.code} only, not of {municipality}",
                ),
            )
        return None

    def resident(
        self, resident_code: str, caller: Caller
    ) -> tuple[identity_pb2.IdentityRecord, local_pb2.LocalResidentData | None]:
        """The resident's record and this CS's local-only items for them."""
        code = str(ResidentCode.parse(resident_code))
        record = self._storage.records.get(code)
        if record is None:
            raise Rejected(Problem.NOT_FOUND, f"no resident {quoted(resident_code)} at {self.node_id}")
        self._auditor.record(A.AUDIT_ACTION_GET_RESIDENT, A.AUDIT_OUTCOME_SUCCESS, caller, resident_code)
        return record, self._storage.local.get(code)


_ROW_DIGEST = b"jukinet created row v1\x00"


def row_digest(record: identity_pb2.IdentityRecord) -> bytes:
    """SHA-256 of a creating row as entered, without its numbers and status (which the CS sets): two rows
    that say the same of a new resident — name, reading, birth date, sex, address, reason and date — are
    the same person, created once."""
    row = identity_pb2.IdentityRecord()
    row.CopyFrom(record)
    for name in ("resident_code", "my_number", "status"):
        row.ClearField(name)
    return hashlib.sha256(_ROW_DIGEST + row.SerializeToString(deterministic=True)).digest()


def _row(local: Local, index: int) -> local_pb2.LocalResidentData | None:
    """Row ``index``'s local items, None when none were given for it (an empty message gives none)."""
    if index >= len(local):
        return None
    row = local[index]
    return row if row is not None and row.ByteSize() else None


def _actor(caller: Caller) -> tuple[str, str]:
    return caller.actor, str(caller.primary)


def _date(day: datetime.date) -> identity_pb2.Date:
    return identity_pb2.Date(year=day.year, month=day.month, day=day.day)


def _same(stored: identity_pb2.IdentityRecord, new: identity_pb2.IdentityRecord) -> bool:
    """``new`` is what is stored already (its status, ignored on input, as the CS would set it)."""
    expected = identity_pb2.IdentityRecord()
    expected.CopyFrom(new)
    expected.status = status_for(new.change_reason)
    return expected == stored


def _split(problem: str) -> tuple[str, str]:
    name, sep, what = problem.partition(": ")
    return (name, what) if sep else ("", problem)


def _joined(problem: tuple[str, str]) -> str:
    return f"{problem[0]}: {problem[1]}" if problem[0] else problem[1]


def _capped(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 1] + "…"


def _answer(outcome: ChunkOutcome) -> registry_pb2.RegisterResidentsResponse:
    stored = outcome.stored
    answer = registry_pb2.RegisterResidentsResponse(stored=len(stored), already_stored=outcome.already_stored)
    if stored:
        answer.first_sequence, answer.last_sequence = stored.start, stored.stop - 1
    for index in sorted(outcome.assigned):
        code, number = outcome.assigned[index]
        answer.assigned.add(index=index, resident_code=code, my_number=number)
    for index in sorted(outcome.refused):
        row = answer.refused_rows.add(index=index)
        for name, what in outcome.refused[index]:
            row.problems.add(field=name, message=_capped(what))
    return answer


class RegistryRpc(registry_pb2_grpc.ResidentRegistryServiceServicer):
    def __init__(self, registry: Registry, auditor: Auditor, blocking: Blocking, bulk: Blocking | None = None) -> None:
        self._registry = registry
        self.auditor = auditor
        self.blocking = blocking
        self._bulk = bulk or blocking  # chunks of a bulk registration
        self.registrars = OperatorWithRole(TerminalOf.of_nodes([registry.node_id]), Role.REGISTER_RESIDENTS)

    @guarded("registrars", audit=A.AUDIT_ACTION_RECORD_CHANGE)
    def RecordChange(
        self, request: registry_pb2.RecordChangeRequest, caller: Caller
    ) -> registry_pb2.RecordChangeResponse:
        local = [request.local] if request.HasField("local") else []
        sequences = self._registry.record([request.record], caller, A.AUDIT_ACTION_RECORD_CHANGE, local)
        return registry_pb2.RecordChangeResponse(sequence=sequences.start, record=request.record)

    @guarded("registrars", audit=A.AUDIT_ACTION_REGISTER_RESIDENTS)
    async def RegisterResidents(
        self,
        request_iterator: AsyncIterator[registry_pb2.RegisterResidentsRequest],
        context: grpc.aio.ServicerContext,
        caller: Caller,
    ) -> AsyncIterator[registry_pb2.RegisterResidentsResponse]:
        """Chunks in order, each answered once durable; the next chunk is prepared (screened, numbered by the
        reserve and the national server) while the previous one commits. A refusal of the stream itself (an
        oversized chunk) still answers the chunk in flight."""
        committing: asyncio.Future[ChunkOutcome] | None = None
        chunks = 0
        try:
            async for chunk in request_iterator:
                if len(chunk.records) > MAX_CHUNK_RECORDS:
                    raise Rejected(
                        Problem.EXHAUSTED,
                        f"chunk {chunks}: {len(chunk.records)} records; at most {MAX_CHUNK_RECORDS} in one chunk",
                    )
                prepared = await self._bulk(self._registry.prepare, chunk.records, chunk.local)
                done = None
                if committing is not None:
                    previous, committing = committing, None
                    try:
                        done = await previous
                    except BaseException:
                        self._registry.abandon(prepared)
                        raise
                committing = asyncio.ensure_future(  # before answering: writing the answer may wait on the peer
                    self._bulk(self._registry.commit, prepared, caller, _BULK)
                )
                chunks += 1
                if done is not None:
                    yield _answer(done)
        except Rejected:
            if committing is not None:
                previous, committing = committing, None
                yield _answer(await previous)
            raise
        if committing is not None:
            yield _answer(await committing)

    @guarded("registrars", audit=A.AUDIT_ACTION_GET_RESIDENT)
    def GetResident(self, request: registry_pb2.GetResidentRequest, caller: Caller) -> registry_pb2.GetResidentResponse:
        record, local = self._registry.resident(request.resident_code, caller)
        return registry_pb2.GetResidentResponse(record=record, local=local)


_BULK = A.AUDIT_ACTION_REGISTER_RESIDENTS


def registry_service(parts: NodeParts) -> ServiceBinding:
    """The CS tier's service (see jukinet.server.assembly.TIERS)."""
    if parts.config.upstream is None:
        raise Rejected(Problem.BROKEN, "a CS needs an upstream prefecture for its change notices")
    config = parts.config
    tls = TlsMaterial.from_files(config.tls_cert, config.tls_key, parts.trust.bundle_pem)
    national = NationalNumbers(lambda: parts.directory.address(NodeId.national()), tls.channel_credentials())
    supply = CodeSupply(config.node_id, config.upstream, parts.storage, parts.trust, national, parts.links.wake)
    registry = Registry(
        config.node_id, config.upstream, parts.storage, parts.auditor, parts.clock, parts.links.wake, supply
    )
    Background(supply, registry.designate_numbers).start()  # a daemon thread: it ends with the process
    return bind(RegistryRpc(registry, parts.auditor, parts.blocking, parts.bulk))
