"""Numbers and ownership against a running network: the two attacks of issue 8, at every tier.

1. A clerk at 中野区 (cs:131148) registers a new resident with the My Number of a 千代田区 (cs:131016)
   resident. 2. A "birth" at 中野区 reuses the 住民票コード of an active 千代田区 resident. Both are refused
   at the CS (PERMISSION_DENIED, nothing stored); sent as a forged signed batch by a CS identity that
   bypasses its own checks, at the prefecture (ItemRefused at the item's position); and relayed past a
   prefecture that did not check them, at the national server (the prefecture quarantines the relayed batch,
   visibly). The victim's records and lookups never change.
"""

from __future__ import annotations

import grpc
import pytest
from conftest import wait_until
from netutil import (
    AGENCY,
    BUSINESS,
    NUMBER_BUSINESS,
    address,
    agency,
    counts,
    link,
    residents,
    rpc_error,
    simulated,
    terminal,
)

from jukinet.devnet.simulated import change_items
from jukinet.domain.codes import is_valid_my_number, is_valid_resident_code
from jukinet.server.runtime.status import REFUSED_ITEM_KEY
from jukinet.storage import NodeStorage
from jukinet.v1 import identity_pb2, link_pb2, numbers_pb2, numbers_pb2_grpc

NAKANO, CHIYODA, PREF = "cs:131148", "cs:131016", "pref:13"
R = identity_pb2


@pytest.fixture(scope="module")
def victim(private_network) -> identity_pb2.IdentityRecord:
    """An active 千代田区 resident registered the legitimate way, known at the national server."""
    record = residents("131016", 1, R.CHANGE_REASON_BIRTH)[0]
    answer = terminal(private_network, CHIYODA).record_change(record)
    assert is_valid_resident_code(answer.record.resident_code) and is_valid_my_number(answer.record.my_number)
    wait_until(lambda: _found(private_network, record.my_number), 30, "the victim at the national server")
    return answer.record


def _found(running, my_number: str) -> identity_pb2.IdentityRecord | None:
    try:
        return agency(running).by_my_number(NUMBER_BUSINESS, my_number).record
    except grpc.RpcError:
        return None


def _victim_intact(running, victim: identity_pb2.IdentityRecord) -> None:
    by_number = agency(running).by_my_number(NUMBER_BUSINESS, victim.my_number).record
    by_code = agency(running).by_resident_code(BUSINESS, victim.resident_code).record
    for found in (by_number, by_code):
        assert (found.resident_code, found.name.kanji, found.address.municipality_code) == (
            victim.resident_code,
            victim.name.kanji,
            "131016",
        )


def _designated(running, cs, count: int = 2) -> tuple[numbers_pb2.DesignateCodesResponse, dict[str, str]]:
    """What a CS identity gets from the national server the legitimate way: a signed block and numbers."""
    with cs.channel(address(running, "national"), "national") as channel:
        stub = numbers_pb2_grpc.NumberServiceStub(channel)
        block = stub.DesignateCodes(numbers_pb2.DesignateCodesRequest(request_id="attack-1", count=count)).block
        codes = numbers_pb2.CodeBlock.FromString(block.payload).codes
        answer = stub.AssignMyNumbers(numbers_pb2.AssignMyNumbersRequest(resident_codes=codes))
    return block, {a.resident_code: a.my_number for a in answer.numbers}


def _births(municipality: str, *pairs: tuple[str, str]) -> list[identity_pb2.IdentityRecord]:
    out = []
    for (code, number), record in zip(pairs, residents(municipality, len(pairs), R.CHANGE_REASON_BIRTH), strict=True):
        record.resident_code, record.my_number = code, number
        out.append(record)
    return out


# -- the legitimate way ---------------------------------------------------------------------------------


def test_a_birth_gets_a_designated_code_and_a_generated_my_number(private_network, victim):
    running = private_network
    record = residents("131148", 1, R.CHANGE_REASON_BIRTH)[0]
    answer = terminal(running, NAKANO).record_change(record)
    code, number = answer.record.resident_code, answer.record.my_number
    assert is_valid_resident_code(code) and is_valid_my_number(number)
    assert code != victim.resident_code and number != victim.my_number
    found = wait_until(lambda: _found(running, number), 30, "the birth at the national server")
    assert found.resident_code == code and found.address.municipality_code == "131148"


def test_bulk_registration_tells_the_importer_each_assigned_code(private_network):
    records = residents("131148", 30)
    done = terminal(private_network, NAKANO).register(records)
    assert done.stored == 30 and not done.refused and len(done.assigned) == 30
    codes = {code for code, _ in done.assigned.values()}
    assert len(codes) == 30 and all(is_valid_resident_code(c) for c in codes)
    assert [r.resident_code for r in records] == [done.assigned[i][0] for i in range(30)]  # written back


# -- attack 1 and 2 at the CS ---------------------------------------------------------------------------


def test_the_cs_refuses_another_residents_my_number(private_network, victim):
    running = private_network
    before = counts(running, NAKANO)
    impostor = residents("131148", 1, R.CHANGE_REASON_BIRTH)[0]
    impostor.my_number = victim.my_number
    refused = rpc_error(terminal(running, NAKANO).record_change, impostor)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "my_number" in refused.details() and "never entered by operators" in refused.details()
    assert counts(running, NAKANO) == before
    _victim_intact(running, victim)


def test_the_cs_refuses_a_birth_with_another_residents_code(private_network, victim):
    running = private_network
    before = counts(running, NAKANO)
    twin = residents("131148", 1, R.CHANGE_REASON_BIRTH)[0]
    twin.resident_code = victim.resident_code
    refused = rpc_error(terminal(running, NAKANO).record_change, twin)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not an unused code designated to this CS" in refused.details()
    assert counts(running, NAKANO) == before
    _victim_intact(running, victim)


def test_numbers_typed_by_an_operator_in_bulk_are_refused_row_by_row(private_network, victim):
    rows = residents("131148", 3)
    rows[1].my_number = victim.my_number
    done = terminal(private_network, NAKANO).register(rows)
    assert done.stored == 2 and list(done.refused) == [1]
    assert [p.field for p in done.refused[1]] == ["my_number"]


# -- forged batches at the prefecture -------------------------------------------------------------------


def _refused_position(exc: grpc.RpcError) -> int:
    return int(dict(exc.trailing_metadata() or ())[REFUSED_ITEM_KEY])


def test_the_prefecture_refuses_both_attacks_from_a_cs_that_skips_its_checks(private_network, victim, tmp_path):
    running = private_network
    rogue = simulated(running, ["cs:131130"], tmp_path / "rogue")
    block, numbers = _designated(running, rogue)
    (mine, my_number), _ = numbers.items()
    block_item = link_pb2.LinkItem(code_block=block).SerializeToString()
    pref_at = address(running, PREF)
    before = counts(running, PREF)

    stolen_number = _births("131130", (mine, victim.my_number))
    forged = rogue.batch(PREF, [block_item, *change_items("cs:131130", stolen_number, 1)])
    refused = rpc_error(rogue.deliver, pref_at, PREF, [forged])
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and _refused_position(refused) == 2
    assert "My Number of another resident" in refused.details()

    stolen_code = _births("131130", (victim.resident_code, ""))
    forged = rogue.batch(PREF, [block_item, *change_items("cs:131130", stolen_code, 1)])
    refused = rpc_error(rogue.deliver, pref_at, PREF, [forged])
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and _refused_position(refused) == 2
    assert "a 出生 takes a new, unused code" in refused.details() and "cs:131016" in refused.details()
    assert counts(running, PREF) == before  # nothing stored, not even the block's designations

    honest = rogue.batch(PREF, [block_item, *change_items("cs:131130", _births("131130", (mine, my_number)), 1)])
    assert len(rogue.deliver(pref_at, PREF, [honest])) == 1  # still serving; the legitimate way works
    wait_until(lambda: _found(running, my_number), 30, "the honest birth at the national server")
    _victim_intact(running, victim)


# -- relayed past a prefecture that did not check them: the national server -----------------------------


def _drained(running) -> bool:
    """Everything queued for the national server delivered (a quarantined item may leave its withdrawn
    position pending at the tail: a batch never ends with one)."""
    state = link(running, PREF, "national")
    return link(running, NAKANO, PREF).pending == 0 and state.pending <= state.quarantined


def _inject_relay(running, envelope) -> None:
    """Queue a CS batch at the stopped prefecture for the national server, as a prefecture that skipped its
    checks (an older release) would have relayed it."""
    spec = running.network.topology.node(PREF)
    running.stop_node(spec)
    storage = NodeStorage.open(running.network.node_dir(spec) / "data")
    try:
        item = link_pb2.LinkItem(relayed_batch=envelope).SerializeToString()
        storage.env.write(lambda txn: storage.queues.enqueue(txn, "national", [item]))
    finally:
        storage.close()
    running.start_node(spec)


@pytest.mark.parametrize("attack", ["my-number", "resident-code"])
def test_the_national_server_refuses_both_attacks_relayed_unchecked(private_network, victim, tmp_path, attack):
    running = private_network
    identity = {"my-number": "cs:131105", "resident-code": "cs:131121"}[attack]
    rogue = simulated(running, [identity], tmp_path / attack)
    block, numbers = _designated(running, rogue)
    mine = next(iter(numbers))
    pair = (mine, victim.my_number) if attack == "my-number" else (victim.resident_code, "")
    items = [link_pb2.LinkItem(code_block=block).SerializeToString()]
    items += change_items(identity, _births(identity[3:], pair), 1)
    wait_until(lambda: _drained(running), 30, "earlier notices delivered")
    national_before = counts(running, "national")[:2]
    quarantined = link(running, PREF, "national").quarantined
    _inject_relay(running, rogue.batch(PREF, items))
    wait_until(lambda: link(running, PREF, "national").quarantined == quarantined + 1, 30, "the relay quarantined")
    item = next(i for i in terminal(running, PREF).quarantine("national") if identity in i.summary)
    assert item.kind == "relayed_batch" and item.problem == "permission_denied"
    expected = "My Number of another resident" if attack == "my-number" else "a 出生 takes a new, unused code"
    assert expected in item.reason
    assert counts(running, "national")[:2] == national_before  # never applied
    _victim_intact(running, victim)
    assert AGENCY  # the lookups above ran as the agency with a row


# -- the national server down: the reserve carries births, numbers follow ---------------------------------


def test_a_birth_works_from_the_reserve_while_the_national_server_is_down(private_network):
    running = private_network
    national = running.network.topology.node("national")
    running.stop_node(national)
    try:
        record = residents("131148", 1, R.CHANGE_REASON_BIRTH)[0]
        answer = terminal(running, NAKANO).record_change(record)
        assert is_valid_resident_code(answer.record.resident_code) and answer.record.my_number == ""
    finally:
        running.start_node(national)
    numbered = wait_until(
        lambda: terminal(running, NAKANO).resident(record.resident_code).my_number, 40, "the 個人番号指定 change"
    )
    assert is_valid_my_number(numbered)
    found = wait_until(lambda: _found(running, numbered), 30, "the numbered record at the national server")
    assert found.resident_code == record.resident_code
