"""Batch queries (定期照会) end to end: residents registered at a CS reach the national server, and an agency
asks for them over one BatchLookup stream (real processes, mutual TLS, SoftHSM tokens, LMDB). Answers come in
order with a status per code; every record provided is logged, nothing else; the rules of the stream (a row
for the business, one business, chunk size, streams per agency) and its flow control hold against a caller
with a valid certificate."""

from __future__ import annotations

import queue
import random
import threading
import time

import grpc
import pytest
from conftest import wait_until
from netutil import AGENCY, BUSINESS, agency, channel_with, counts, residents, rpc_error, terminal

from jukinet.clients import BatchKind
from jukinet.domain.codes import generate_resident_code
from jukinet.domain.limits import MAX_BATCH_CHUNK_CODES, MAX_BATCH_STREAMS_PER_AGENCY
from jukinet.pki import issue_tls_certificate
from jukinet.v1 import admin_pb2, identity_pb2, provision_pb2, provision_pb2_grpc

S = provision_pb2
NO_ROW = "6100000000001"


@pytest.fixture(scope="module")
def people(network):
    """Four residents of 中野区 at the national server; the last one died (a 除票 there)."""
    cs = terminal(network, "cs:131148")
    made = residents("131148", 4)
    assert cs.register(made).stored == 4
    death = identity_pb2.IdentityRecord()
    death.CopyFrom(made[3])
    death.change_reason = identity_pb2.CHANGE_REASON_DEATH
    died = cs.record_change(death).record
    assert died.status == identity_pb2.RECORD_STATUS_REMOVED

    def arrived() -> bool:
        answer = next(agency(network).batch_lookup(BUSINESS, [p.resident_code for p in made]))
        return list(answer.response.statuses) == [S.BATCH_STATUS_FOUND] * 3 + [S.BATCH_STATUS_REMOVED]

    wait_until(arrived, timeout=60, what="the residents and the 除票 at the national server")
    return made, died


def _provisions(network) -> int:
    return counts(network, "national")[2]


class Stream:
    """A BatchLookup stream whose chunks the test sends one at a time."""

    def __init__(self, stub: provision_pb2_grpc.BatchLookupServiceStub) -> None:
        self._outgoing: queue.Queue[S.BatchLookupRequest | None] = queue.Queue()
        self.answers = stub.BatchLookup(iter(self._outgoing.get, None), timeout=60)

    def ask(self, **fields) -> S.BatchLookupResponse:
        self._outgoing.put(S.BatchLookupRequest(**fields))
        return next(self.answers)

    def close(self) -> None:
        self._outgoing.put(None)
        self.answers.cancel()


def _stub(network, cert=None, key=None) -> provision_pb2_grpc.BatchLookupServiceStub:
    if cert is None:
        creds = network.network.agency(AGENCY)
        cert, key = creds.cert, creds.key
    return provision_pb2_grpc.BatchLookupServiceStub(channel_with(network, "national", cert, key))


def test_a_mixed_chunk_is_answered_in_order_with_a_status_per_code(network, people):
    made, died = people
    unknown = generate_resident_code(random.Random(31))
    malformed = made[0].resident_code[:-1] + str((int(made[0].resident_code[-1]) + 1) % 10)  # check digit
    asked = [made[1].resident_code, unknown, died.resident_code, malformed, "１２３", made[0].resident_code]
    before = _provisions(network)
    answers = list(agency(network).batch_lookup(BUSINESS, asked, chunk=4))
    assert [a.chunk_id for a in answers] == [0, 1] and [a.codes for a in answers] == [asked[:4], asked[4:]]
    results = [r for a in answers for r in a.results()]
    assert [r.status for r in results] == [
        S.BATCH_STATUS_FOUND, S.BATCH_STATUS_NOT_FOUND, S.BATCH_STATUS_REMOVED,
        S.BATCH_STATUS_INVALID, S.BATCH_STATUS_INVALID, S.BATCH_STATUS_FOUND,
    ]  # fmt: skip
    found, removed, last = results[0], results[2], results[5]
    assert found.record.name == made[1].name and found.record.birth_date == made[1].birth_date
    assert found.record.my_number == ""  # the row does not permit My Number
    assert removed.record.status == identity_pb2.RECORD_STATUS_REMOVED
    assert (removed.removal.reason, removed.removal.date) == (identity_pb2.CHANGE_REASON_DEATH, died.change_date)
    assert last.record.resident_code == made[0].resident_code
    # Exactly one provision entry per record provided (3), none for the others, all of this stream.
    assert _provisions(network) == before + 3
    entries = terminal(network, "national").provisions(after_id=found.provision_id - 1, limit=10)
    ours = [e for e in entries if e.reference == answers[0].response.stream_id]
    assert [(e.provision_id, e.resident_code) for e in ours] == [
        (found.provision_id, made[1].resident_code),
        (removed.provision_id, died.resident_code),
        (last.provision_id, made[0].resident_code),
    ]
    assert {(e.agency, e.business_code, e.query_kind) for e in ours} == {
        (f"agency:{AGENCY}", BUSINESS, admin_pb2.QUERY_KIND_BATCH)
    }
    assert list(ours[0].items) == sorted(["resident_code", "name", "birth_date", "sex", "address", "change"])


def test_a_chunk_of_my_numbers_finds_the_holders_where_the_row_permits_my_number(network, people):
    made, _ = people
    client = agency(network)
    answer = next(client.batch_lookup("pension-number-check", [made[2].my_number, "123"], kind=BatchKind.MY_NUMBER))
    results = list(answer.results())
    assert [r.status for r in results] == [S.BATCH_STATUS_FOUND, S.BATCH_STATUS_INVALID]
    assert results[0].record.resident_code == made[2].resident_code
    assert results[0].record.my_number == made[2].my_number  # this row permits it
    before = _provisions(network)
    refused = rpc_error(lambda: next(client.batch_lookup(BUSINESS, [made[2].my_number], kind=BatchKind.MY_NUMBER)))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "does not permit my_number" in refused.details()
    assert _provisions(network) == before


def test_no_legal_basis_is_denied_before_any_answer_and_nothing_is_logged(network, people, tmp_path):
    made, _ = people
    before = _provisions(network)
    cert, key = issue_tls_certificate(network.network.pki_dir, "agency", [f"agency:{NO_ROW}"], tmp_path / "no-row")
    for stub, business in ((_stub(network, cert, key), BUSINESS), (_stub(network), "not-a-listed-business")):
        request = S.BatchLookupRequest(business_code=business, resident_codes=[made[0].resident_code])
        with pytest.raises(grpc.RpcError) as denied:
            next(stub.BatchLookup(iter([request]), timeout=10))  # the first thing it reads is the refusal
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "no row in the legal table" in denied.value.details()
    assert _provisions(network) == before


def test_a_stream_switching_business_is_refused_after_answering_what_came_before(network, people):
    made, _ = people
    before = _provisions(network)
    stream = Stream(_stub(network))
    first = stream.ask(business_code=BUSINESS, chunk_id=1, resident_codes=[made[0].resident_code])
    assert list(first.statuses) == [S.BATCH_STATUS_FOUND]
    stream._outgoing.put(S.BatchLookupRequest(business_code="another-business", chunk_id=2, resident_codes=["x"]))
    with pytest.raises(grpc.RpcError) as refused:
        next(stream.answers)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"serves '{BUSINESS}' only" in refused.value.details()
    stream.close()
    assert _provisions(network) == before + 1  # the first chunk's record only


def test_oversize_and_malformed_chunks_end_the_stream_and_the_node_keeps_serving(network, people):
    made, _ = people
    before = _provisions(network)
    client = agency(network)
    too_many = [made[0].resident_code] * (MAX_BATCH_CHUNK_CODES + 1)
    stub = _stub(network)
    for request, code, words in (
        (S.BatchLookupRequest(business_code=BUSINESS, resident_codes=too_many), "RESOURCE_EXHAUSTED", "at most 1000"),
        (S.BatchLookupRequest(business_code=BUSINESS, resident_codes=["1" * 50_000]), "RESOURCE_EXHAUSTED", "bytes"),
        (
            S.BatchLookupRequest(business_code=BUSINESS, resident_codes=["1"], my_numbers=["2"]),
            "INVALID_ARGUMENT",
            "one kind",
        ),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.BatchLookup(iter([request]), timeout=10))
        assert refused.value.code().name == code and words in refused.value.details()
    garbage = _stub_channel(network).stream_stream("/jukinet.v1.BatchLookupService/BatchLookup")
    with pytest.raises(grpc.RpcError) as undecodable:
        list(garbage(iter([b"\xff\xff\xff"]), timeout=10))
    assert undecodable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _provisions(network) == before
    assert next(client.batch_lookup(BUSINESS, [made[0].resident_code])).response.statuses == [S.BATCH_STATUS_FOUND]


def _stub_channel(network):
    creds = network.network.agency(AGENCY)
    return channel_with(network, "national", creds.cert, creds.key)


def test_too_many_streams_from_one_agency_are_refused_while_the_others_keep_working(network, people):
    made, _ = people
    code = made[0].resident_code
    held = [Stream(_stub(network)) for _ in range(MAX_BATCH_STREAMS_PER_AGENCY)]
    try:
        for i, stream in enumerate(held):
            assert stream.ask(business_code=BUSINESS, chunk_id=i, resident_codes=[code]).statuses
        extra = rpc_error(lambda: next(agency(network).batch_lookup(BUSINESS, [code])))
        assert extra.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"at most {MAX_BATCH_STREAMS_PER_AGENCY}" in extra.details()
        for i, stream in enumerate(held):  # the open streams go on
            assert stream.ask(chunk_id=10 + i, resident_codes=[code]).chunk_id == 10 + i
        assert agency(network).by_resident_code(BUSINESS, code).record.resident_code == code  # and unary lookups
    finally:
        for stream in held:
            stream.close()
    # A closed stream gives its slot back.
    wait_until(lambda: _answers(network, code), timeout=10, what="a batch stream slot to be free again")


def _answers(network, code: str) -> bool:
    try:
        return bool(next(agency(network).batch_lookup(BUSINESS, [code])).response.statuses)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return False


def test_a_client_that_never_reads_cannot_make_the_server_buffer_its_chunks(network, people):
    """Flow control: the server reads a chunk only when it has room for its answer, so a client that sends
    and never reads stops being read; the provision log (one entry per record of every chunk read) stops
    growing far short of what the client offered."""
    made, _ = people
    offered = 2000  # chunks of 1,000 found records: about 110 MB of answers
    codes = [made[i % 3].resident_code for i in range(MAX_BATCH_CHUNK_CODES)]
    sent = 0
    stop = threading.Event()

    def chunks():
        nonlocal sent
        for i in range(offered):
            if stop.is_set():
                return
            sent += 1
            yield S.BatchLookupRequest(business_code=BUSINESS if i == 0 else "", chunk_id=i, resident_codes=codes)

    before = _provisions(network)
    answers = _stub(network).BatchLookup(chunks(), timeout=120)  # never read
    samples = []
    for _ in range(8):
        time.sleep(1)
        samples.append(_provisions(network) - before)
    read_chunks = samples[-1] // MAX_BATCH_CHUNK_CODES
    assert samples[-1] == samples[-3] > 0, samples  # it stopped reading
    # What the client got out but the server did not read sits in HTTP/2 flow-control windows, which gRPC's
    # bandwidth-delay probe grows to a few MB (about 500 chunks of 12 kB were seen): bounded, but not by us.
    assert read_chunks < 100 and sent < offered / 2, (read_chunks, sent)
    # The node still answers others meanwhile.
    assert agency(network).by_resident_code(BUSINESS, made[0].resident_code).record
    # Reading resumes the stream: every chunk the server took is answered, in order.
    stop.set()
    got = [a.chunk_id for a in answers]
    assert got == list(range(len(got))) and len(got) == sent
