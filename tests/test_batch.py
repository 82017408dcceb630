"""Batch queries as plain objects (real LMDB, no gRPC): the chunk's statuses, redaction as the row's, the
provision entries encoded exactly as messages would be, one write per chunk, the stream's one business,
the stream slots, and the pipeline's order and bound."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jukinet.domain.changes import ended_record
from jukinet.domain.clock import ManualClock
from jukinet.domain.codes import CorporateNumber, generate_my_number, generate_resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.legal import FIELD_GROUPS, Identifier, LegalTables, TableRow
from jukinet.domain.limits import MAX_BATCH_CHUNK_CODES
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.audit import Auditor
from jukinet.server.national.agency_identifiers import AgencyIdentifiers
from jukinet.server.national.batch import BatchLookups, BatchSlots, BatchStream, permitted_fields
from jukinet.server.national.batch_readers import read_chunk_for, read_identified_chunk_for
from jukinet.server.runtime.executor import Blocking
from jukinet.server.runtime.readers import ReaderPool
from jukinet.storage import NodeStorage
from jukinet.v1 import admin_pb2, identity_pb2, provision_pb2

AGENCY = NodeId.parse("agency:7123456789012")
OTHER = NodeId.parse("agency:6100000000001")
PENSION = "pension-benefit"
NO_NUMBER = frozenset(FIELD_GROUPS) - {"my_number"}
ROWS = [
    TableRow(CorporateNumber.parse("7123456789012"), PENSION, "年金", NO_NUMBER),
    TableRow(CorporateNumber.parse("7123456789012"), "tax", "税", frozenset(FIELD_GROUPS)),
    TableRow(CorporateNumber.parse("7123456789012"), "names-only", "名", frozenset({"resident_code", "name"})),
]
INSURER = TableRow(
    CorporateNumber.parse("7123456789012"), "insurance", "保険", frozenset(FIELD_GROUPS),
    identifier=Identifier.AGENCY_IDENTIFIER,
)  # fmt: skip
S = provision_pb2
TABLES = lambda: LegalTables.of(ROWS)  # noqa: E731
Ask = provision_pb2.BatchLookupRequest


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[NodeStorage]:
    s = NodeStorage.open(tmp_path / "db")
    yield s
    s.close()


def _people(storage: NodeStorage, n: int, removed: int = 0) -> list[identity_pb2.IdentityRecord]:
    rng = random.Random(5)
    people = []
    for i in range(n):
        r = synthetic_resident(rng, "131148")
        r.resident_code, r.my_number = generate_resident_code(rng), generate_my_number(rng)
        r.status = identity_pb2.RECORD_STATUS_ACTIVE
        if i < removed:
            r.status, r.change_reason = identity_pb2.RECORD_STATUS_REMOVED, identity_pb2.CHANGE_REASON_DEATH
            r.change_date.year, r.change_date.month, r.change_date.day = 2026, 3, 14
        people.append(r)
    storage.env.write(lambda txn: [storage.records.put(txn, r, None) for r in people])
    return people


def _identifiers(storage: NodeStorage) -> AgencyIdentifiers:
    """The national server's agency identifiers, an HMAC standing in for its token's key."""
    return AgencyIdentifiers(storage, lambda ms: [hmac.new(b"k" * 32, m, hashlib.sha256).digest() for m in ms])


def _stream(storage: NodeStorage, agency: NodeId = AGENCY) -> BatchStream:
    return BatchStream(storage, TABLES, Auditor(storage), agency, ManualClock(1_790_000_000_000), "batch:t")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.business)
def test_redaction_is_the_rows(row: TableRow, storage: NodeStorage) -> None:
    person = _people(storage, 1)[0]
    expected = row.redact(person).SerializeToString()
    chunk = _stream(storage).prepare(Ask(business_code=row.business, resident_codes=[person.resident_code]))
    assert list(chunk.answer.records) == [expected]
    permitted = {n for g in row.fields if row.permits(g) for n in FIELD_GROUPS[g]}
    assert permitted_fields(row) == permitted


def test_a_mixed_chunk_is_answered_code_by_code_in_order(storage: NodeStorage) -> None:
    people = _people(storage, 3, removed=1)
    unknown = generate_resident_code(random.Random(99))
    bad = people[1].resident_code[:-1] + str((int(people[1].resident_code[-1]) + 1) % 10)
    asked = [people[1].resident_code, unknown, people[0].resident_code, bad, "", "x" * 5000, people[2].resident_code]
    stream = _stream(storage)
    chunk = stream.prepare(Ask(business_code=PENSION, chunk_id=77, resident_codes=asked))
    a = chunk.answer
    assert (a.chunk_id, a.stream_id) == (77, "batch:t")
    assert list(a.statuses) == [S.BATCH_STATUS_FOUND, S.BATCH_STATUS_NOT_FOUND, S.BATCH_STATUS_REMOVED,
                                S.BATCH_STATUS_INVALID, S.BATCH_STATUS_INVALID, S.BATCH_STATUS_INVALID,
                                S.BATCH_STATUS_FOUND]  # fmt: skip
    records = [identity_pb2.IdentityRecord.FromString(r) for r in a.records]
    assert [r.resident_code for r in records] == [people[i].resident_code for i in (1, 0, 2)]
    assert all(not r.my_number for r in records)  # the pension row has no My Number
    assert [(x.reason, x.date.year, x.date.month, x.date.day) for x in a.removals] == [
        (identity_pb2.CHANGE_REASON_DEATH, 2026, 3, 14)
    ]
    assert list(chunk.provided) == [people[i].resident_code for i in (1, 0, 2)]
    ids = storage.env.write(stream.commit_job(chunk))
    assert len(ids) == 3 and storage.provisions.count() == 3 and storage.audit.size() == 1
    logged = storage.provisions.page(0, 10)
    assert {e.query_kind for e in logged} == {admin_pb2.QUERY_KIND_BATCH}
    assert {e.reference for e in logged} == {"batch:t"} and {e.agency for e in logged} == {str(AGENCY)}
    assert list(logged[0].items) == sorted(NO_NUMBER)


def test_my_numbers_find_the_holder_and_a_chunk_is_one_kind(storage: NodeStorage) -> None:
    people = _people(storage, 2)
    stream = _stream(storage)
    wrong = people[0].my_number[:-1] + str((int(people[0].my_number[-1]) + 1) % 10)
    chunk = stream.prepare(Ask(business_code="tax", my_numbers=[people[1].my_number, wrong]))
    assert list(chunk.answer.statuses) == [S.BATCH_STATUS_FOUND, S.BATCH_STATUS_INVALID]
    assert identity_pb2.IdentityRecord.FromString(chunk.answer.records[0]).my_number == people[1].my_number
    with pytest.raises(Rejected) as both:
        stream.prepare(Ask(resident_codes=[people[0].resident_code], my_numbers=[people[0].my_number]))
    assert both.value.problem is Problem.INVALID


def test_one_business_per_stream_and_a_row_for_it(storage: NodeStorage) -> None:
    people = _people(storage, 1)
    with pytest.raises(Rejected) as no_row:
        _stream(storage, OTHER).prepare(Ask(business_code=PENSION, resident_codes=[people[0].resident_code]))
    assert no_row.value.problem is Problem.DENIED
    with pytest.raises(Rejected) as unnamed:
        _stream(storage).prepare(Ask(resident_codes=[people[0].resident_code]))
    assert unnamed.value.problem is Problem.INVALID
    stream = _stream(storage)
    stream.prepare(Ask(business_code="names-only"))
    assert stream.prepare(Ask(resident_codes=[people[0].resident_code])).answer.statuses  # same business
    with pytest.raises(Rejected) as switched:
        stream.prepare(Ask(business_code="tax", resident_codes=[people[0].resident_code]))
    assert switched.value.problem is Problem.INVALID and "serves 'names-only' only" in str(switched.value)
    with pytest.raises(Rejected) as big:
        stream.prepare(Ask(resident_codes=["12345678903"] * (MAX_BATCH_CHUNK_CODES + 1)))
    assert big.value.problem is Problem.EXHAUSTED
    assert storage.provisions.count() == 0


def test_stream_slots_per_agency_and_overall() -> None:
    slots = BatchSlots(per_agency=2, overall=3)
    with slots.hold(AGENCY), slots.hold(AGENCY):
        with pytest.raises(Rejected) as per_agency, slots.hold(AGENCY):
            pass
        assert per_agency.value.problem is Problem.EXHAUSTED
        with slots.hold(OTHER):
            with pytest.raises(Rejected) as overall, slots.hold(NodeId.parse("agency:7000000000002")):
                pass
            assert overall.value.problem is Problem.EXHAUSTED
    assert slots.open() == 0
    with slots.hold(AGENCY):  # released on the way out
        assert slots.open() == 1


def test_the_pipeline_answers_in_order_and_reads_at_most_its_bound_ahead(storage: NodeStorage) -> None:
    people = _people(storage, 20)
    bulk = Blocking(2)
    lookups = BatchLookups(storage, TABLES, Auditor(storage), bulk, in_flight=3)
    read = 0

    async def requests():
        nonlocal read
        for i in range(10):
            read += 1
            yield Ask(business_code=PENSION if i == 0 else "", chunk_id=i,
                                 resident_codes=[p.resident_code for p in people[2 * i: 2 * i + 2]])  # fmt: skip

    async def scenario() -> list[S.BatchLookupResponse]:
        out = []
        async for answer in lookups.serve(requests(), AGENCY):
            assert read - len(out) <= 3  # chunks read and not yet answered
            out.append(answer)
        return out

    answers = asyncio.run(scenario())
    bulk.shutdown()
    assert [a.chunk_id for a in answers] == list(range(10))
    assert [a.first_provision_id for a in answers] == list(range(1, 21, 2))
    assert storage.provisions.count() == 20 and lookups.slots.open() == 0


def test_unknown_fields_of_a_stored_record_are_not_provided(storage: NodeStorage) -> None:
    """A record stored with fields this version does not know (a rogue CS padding it) is answered as the row's
    redaction answers it: without them."""
    person = _people(storage, 1)[0]
    padded = identity_pb2.IdentityRecord.FromString(person.SerializeToString() + b"\xfa\x3f\x0c123456789018")
    storage.env.write(lambda txn: storage.records.put(txn, padded, person))
    for row in ROWS:
        chunk = _stream(storage).prepare(Ask(business_code=row.business, resident_codes=[person.resident_code]))
        assert chunk.answer.records[0] == row.redact(padded).SerializeToString()
        assert b"123456789018" not in chunk.answer.records[0] or "my_number" in row.fields


def test_a_client_waiting_for_each_answer_before_sending_more_is_answered(storage: NodeStorage) -> None:
    people = _people(storage, 3)
    bulk = Blocking(2)
    lookups = BatchLookups(storage, TABLES, Auditor(storage), bulk)

    async def scenario() -> list[int]:
        answered = asyncio.Event()

        async def requests():
            for i, person in enumerate(people):
                yield Ask(business_code=PENSION, chunk_id=i, resident_codes=[person.resident_code])
                await asyncio.wait_for(answered.wait(), 5)  # lockstep: the next chunk only after this answer
                answered.clear()

        out = []
        async for answer in lookups.serve(requests(), AGENCY):
            out.append(answer.chunk_id)
            answered.set()
        return out

    assert asyncio.run(scenario()) == [0, 1, 2]
    bulk.shutdown()


def test_a_stream_that_sends_nothing_gives_its_slot_back(storage: NodeStorage) -> None:
    """An agency cannot hold batch slots (theirs, and everyone's) by opening streams and sending nothing."""
    people = _people(storage, 1)
    bulk = Blocking(1)
    lookups = BatchLookups(storage, TABLES, Auditor(storage), bulk, idle_seconds=0.2)

    async def scenario() -> tuple[list[int], Rejected]:
        async def requests():
            yield Ask(business_code=PENSION, chunk_id=5, resident_codes=[people[0].resident_code])
            await asyncio.sleep(30)  # then nothing
            yield Ask(chunk_id=6)

        out = []
        with pytest.raises(Rejected) as idle:
            async for answer in lookups.serve(requests(), AGENCY):
                out.append(answer.chunk_id)
        return out, idle.value

    answered, refused = asyncio.run(asyncio.wait_for(scenario(), 10))
    bulk.shutdown()
    assert answered == [5] and refused.problem is Problem.INVALID and "within 0.2 s" in str(refused)
    assert lookups.slots.open() == 0


def test_reader_processes_answer_as_the_node_itself_does_and_a_dead_one_is_replaced(storage: NodeStorage) -> None:
    """Chunks read in worker processes (the LMDB environment opened read-only there) are answered byte for
    byte as chunks read in the node's own process; a reader killed mid-stream ends that stream UNAVAILABLE,
    and the next stream gets a new pool."""
    people = _people(storage, 40, removed=3)
    codes = [p.resident_code for p in people] + [generate_resident_code(random.Random(5))]
    readers = ReaderPool(storage, processes=2)
    try:
        here = _stream(storage).prepare(Ask(business_code=PENSION, resident_codes=codes))
        there = BatchStream(
            storage, TABLES, Auditor(storage), AGENCY, ManualClock(1_790_000_000_000), "batch:t", readers
        ).prepare(Ask(business_code=PENSION, resident_codes=codes))
        assert there.answer.SerializeToString() == here.answer.SerializeToString()
        assert list(there.provided) == list(here.provided)
        numbers = BatchStream(storage, TABLES, Auditor(storage), AGENCY, readers=readers).prepare(
            Ask(business_code="tax", my_numbers=[people[4].my_number])
        )
        assert list(numbers.provided) == [people[4].resident_code]
        for pid in readers.worker_pids():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(Rejected) as ended:
            for _ in range(20):  # the pool notices the death at its next submission or result
                readers.call(read_chunk_for, frozenset({"resident_code"}), codes[:1], False)
                time.sleep(0.1)
        assert ended.value.problem is Problem.UNAVAILABLE
        again = readers.call(read_chunk_for, frozenset({"resident_code"}), codes[:1], False)
        assert again.provided(codes[:1]) == codes[:1]
    finally:
        readers.close()
    with pytest.raises(Rejected) as closed:
        readers.call(read_chunk_for, frozenset({"resident_code"}), codes[:1], False)
    assert closed.value.problem is Problem.UNAVAILABLE


def test_every_chunk_is_decided_by_the_legal_tables_held_now(storage: NodeStorage) -> None:
    """A row that does not permit resident_code is not asked by 住民票コード (a code would be an oracle); a row
    narrowed by a new directory version narrows the next chunk of a stream already open, and one withdrawn
    ends it — nothing more is provided."""
    person = _people(storage, 1)[0]
    no_code = TableRow(CorporateNumber.parse("7123456789012"), "numbers", "番号", frozenset({"my_number", "name"}))
    rows = [*ROWS, no_code]
    stream = BatchStream(storage, lambda: LegalTables.of(rows), Auditor(storage), AGENCY, ManualClock(1), "batch:t")
    with pytest.raises(Rejected) as refused:
        stream.prepare(Ask(business_code="numbers", resident_codes=[person.resident_code]))
    assert refused.value.problem is Problem.DENIED and "resident_code" in str(refused.value)
    by_number = stream.prepare(Ask(business_code="numbers", my_numbers=[person.my_number]))
    assert list(by_number.answer.statuses) == [S.BATCH_STATUS_FOUND]  # the same row, asked as it permits

    stream = BatchStream(storage, lambda: LegalTables.of(rows), Auditor(storage), AGENCY, ManualClock(1), "batch:t")
    first = stream.prepare(Ask(business_code=PENSION, resident_codes=[person.resident_code]))
    assert identity_pb2.IdentityRecord.FromString(first.answer.records[0]).name.kanji == person.name.kanji
    rows[0] = TableRow(CorporateNumber.parse("7123456789012"), PENSION, "年金", frozenset({"resident_code"}))
    narrowed = stream.prepare(Ask(resident_codes=[person.resident_code]))
    record = identity_pb2.IdentityRecord.FromString(narrowed.answer.records[0])
    assert record.resident_code == person.resident_code and not record.name.kanji and not record.HasField("address")
    assert list(narrowed.template.items) == rows[0].items()
    del rows[0]
    with pytest.raises(Rejected) as withdrawn:
        stream.prepare(Ask(resident_codes=[person.resident_code]))
    assert withdrawn.value.problem is Problem.DENIED and "no row" in str(withdrawn.value)


def test_a_stream_whose_answers_are_not_taken_gives_its_slot_back(storage: NodeStorage) -> None:
    """An agency cannot hold batch slots by sending chunks and never reading the answers (gRPC's flow control
    holds the stream at its next answer): once an answer waits that long, the call is ended."""
    people = _people(storage, 1)
    bulk = Blocking(1)
    lookups = BatchLookups(storage, TABLES, Auditor(storage), bulk, idle_seconds=0.3)

    async def scenario() -> list[int]:
        async def requests():
            for i in range(3):
                yield Ask(business_code=PENSION if i == 0 else "", chunk_id=i, resident_codes=[people[0].resident_code])

        taken: list[int] = []

        async def stalled_reader() -> None:
            answers = lookups.serve(requests(), AGENCY)
            taken.append((await anext(answers)).chunk_id)
            await anext(answers)  # gRPC takes the next answer out to write it...
            await asyncio.sleep(60)  # ...and the write never completes: the agency does not read

        call = asyncio.ensure_future(stalled_reader())
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, 10)
        for _ in range(100):  # the stream's generator is closed once the call is gone
            if lookups.slots.open() == 0:
                break
            await asyncio.sleep(0.05)
        return taken

    assert asyncio.run(scenario()) == [0]
    bulk.shutdown()
    assert lookups.slots.open() == 0


def test_a_row_naming_residents_by_agency_identifier_asks_and_is_answered_by_them(storage: NodeStorage) -> None:
    """機関別符号 in a batch: a pseudonymous row asks by its own identifiers only (never by 住民票コード or My
    Number), and its answers hold neither number — the agency matches records by position; another agency's
    identifier answers as a made-up one does; each record provided is logged under its resident."""
    people = _people(storage, 3, removed=1)
    corporate, other = "7123456789012", "6100000000001"
    rows = [*ROWS, INSURER]
    identifiers = _identifiers(storage)
    mine = identifiers.for_codes(corporate, [p.resident_code for p in people])
    theirs = identifiers.for_codes(other, [people[1].resident_code])[people[1].resident_code]
    stream = BatchStream(storage, lambda: LegalTables.of(rows), Auditor(storage), AGENCY, ManualClock(1), "batch:t")
    asked = [mine[people[2].resident_code], theirs, "not-an-identifier", mine[people[0].resident_code]]
    chunk = stream.prepare(Ask(business_code="insurance", agency_identifiers=asked))
    a = chunk.answer
    assert list(a.statuses) == [S.BATCH_STATUS_FOUND, S.BATCH_STATUS_NOT_FOUND, S.BATCH_STATUS_INVALID,
                                S.BATCH_STATUS_REMOVED]  # fmt: skip
    records = [identity_pb2.IdentityRecord.FromString(r) for r in a.records]
    assert [r.name.kanji for r in records] == [people[2].name.kanji, people[0].name.kanji]
    assert not any(r.resident_code or r.my_number for r in records)
    assert list(chunk.provided) == [people[2].resident_code, people[0].resident_code]
    assert "agency_identifier" in list(chunk.template.items)
    for wrong in (Ask(resident_codes=[people[2].resident_code]), Ask(my_numbers=[people[2].my_number])):
        with pytest.raises(Rejected) as refused:
            stream.prepare(wrong)
        assert refused.value.problem is Problem.DENIED and "agency identifier" in str(refused.value)
    with pytest.raises(Rejected) as refused:  # and a row naming residents by code never asks by identifier
        _stream(storage).prepare(Ask(business_code=PENSION, agency_identifiers=[mine[people[2].resident_code]]))
    assert refused.value.problem is Problem.DENIED and "resident_code or my_number" in str(refused.value)


def test_identifiers_are_resolved_and_read_in_one_snapshot(storage: NodeStorage) -> None:
    """A 住民票コード変更 committed while a chunk of agency identifiers is read does not make a living resident
    a 除票: the identifiers are resolved and the records read in the same read transaction."""
    person = _people(storage, 1)[0]
    corporate, row = "7123456789012", INSURER
    identifiers = _identifiers(storage)
    mine = identifiers.for_codes(corporate, [person.resident_code])[person.resident_code]
    changed = identity_pb2.IdentityRecord()
    changed.CopyFrom(person)
    changed.resident_code = generate_resident_code(random.Random(7))
    changed.change_reason = identity_pb2.CHANGE_REASON_RESIDENT_CODE_CHANGE

    def code_change(txn) -> None:
        storage.records.put(txn, ended_record(person, changed), person)
        storage.records.put(txn, changed, None)
        storage.numbers.link_change(txn, person.resident_code, changed.resident_code)

    real = storage.records.encoded_in

    def meanwhile(txn, codes):  # the change commits (another thread: the node's writer) mid-read
        done = threading.Thread(target=storage.env.write, args=(code_change,))
        done.start()
        done.join(10)
        return real(txn, codes)

    storage.records.encoded_in = meanwhile  # type: ignore[method-assign]
    raced = read_identified_chunk_for(storage, permitted_fields(row), corporate, [mine])
    storage.records.encoded_in = real  # type: ignore[method-assign]
    assert list(raced.statuses) == [S.BATCH_STATUS_FOUND] and raced.provided([mine]) == [person.resident_code]
    after = read_identified_chunk_for(storage, permitted_fields(row), corporate, [mine])
    assert list(after.statuses) == [S.BATCH_STATUS_FOUND] and after.provided([mine]) == [changed.resident_code]


def test_a_stalled_call_ends_with_a_status_its_agency_can_read(storage: NodeStorage) -> None:
    """Over a real gRPC call: the agency sends chunks and reads nothing; once an answer has waited, the slot is
    given back at once and the call ends RESOURCE_EXHAUSTED saying why (read when the agency reads again)."""
    import grpc

    people = _people(storage, 1000)
    bulk = Blocking(2)
    lookups = BatchLookups(storage, TABLES, Auditor(storage), bulk, idle_seconds=0.5)
    codes = [p.resident_code for p in people]

    async def scenario() -> tuple[int, int, grpc.StatusCode, str]:
        async def handler(requests, context):
            async def stalled(why: str) -> None:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, why)

            async for answer in lookups.serve(requests, AGENCY, stalled):
                yield answer

        method = grpc.stream_stream_rpc_method_handler(
            handler, request_deserializer=Ask.FromString, response_serializer=S.BatchLookupResponse.SerializeToString
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Batch", {"Lookup": method})])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.stream_stream(
                "/t.Batch/Lookup",
                request_serializer=Ask.SerializeToString,
                response_deserializer=S.BatchLookupResponse.FromString,
            )()

            async def send() -> None:
                with contextlib.suppress(Exception):
                    for i in range(400):  # far more than flow control lets through unread
                        await call.write(Ask(business_code=PENSION if i == 0 else "", chunk_id=i, resident_codes=codes))

            sender = asyncio.ensure_future(send())
            for _ in range(200):  # the slot is given back without the agency reading anything
                await asyncio.sleep(0.05)
                if lookups.slots.open() == 0 and sender.done():
                    break
            held = lookups.slots.open()
            answered = 0
            with contextlib.suppress(grpc.aio.AioRpcError):
                async for _ in call:
                    answered += 1
            code, details = await call.code(), await call.details()
        await server.stop(None)
        return held, answered, code, details

    held, answered, code, details = asyncio.run(asyncio.wait_for(scenario(), 60))
    bulk.shutdown()
    assert held == 0 and answered < 400
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "was taken for 0.5 s" in details
