"""住民票コード変更 and 個人番号変更 end to end, against one running network for the module.

A 中野区 resident gets a new 住民票コード at the counter: the CS asks the national server, ends the old
record (kept, removed, reason 住民票コード変更) and moves the record, its local items and its DV support
measure to the new code in one transaction; the signed one-code block and the notice flow up; an agency finds
the person by the new code and the same My Number, and by the old code gets the ended record. Then a
個人番号変更: the old number is NOT_FOUND and refused for anyone else at every tier. The refusals: a retry
(idempotent at the national server, refused at the CS), another municipality's resident, forged and
replayed code changes sent by a CS identity that skips its own checks (SimulatedNode → ItemRefused at the
notice's position, which the sender quarantines), and any use of a replaced code.
"""

from __future__ import annotations

import datetime

import grpc
import pytest
from conftest import wait_until
from netutil import (
    BUSINESS,
    NUMBER_BUSINESS,
    address,
    agency,
    counts,
    designated,
    residents,
    rpc_error,
    simulated,
    terminal,
)

from jukinet.clients.copies import CopyClient
from jukinet.devnet.simulated import change_items
from jukinet.domain.codes import is_valid_my_number, is_valid_resident_code
from jukinet.server.runtime.status import REFUSED_ITEM_KEY
from jukinet.v1 import identity_pb2, link_pb2, local_pb2, notice_pb2, numbers_pb2, numbers_pb2_grpc

NAKANO, CHIYODA, PREF = "cs:131148", "cs:131016", "pref:13"
R = identity_pb2
CODE_CHANGE = R.CHANGE_REASON_RESIDENT_CODE_CHANGE


def _found_by_number(running, my_number: str) -> identity_pb2.IdentityRecord | None:
    try:
        return agency(running).by_my_number(NUMBER_BUSINESS, my_number).record
    except grpc.RpcError:
        return None


def _found_by_code(running, code: str) -> identity_pb2.IdentityRecord | None:
    try:
        return agency(running).by_resident_code(BUSINESS, code).record
    except grpc.RpcError:
        return None


def _change(record: identity_pb2.IdentityRecord, reason: int) -> identity_pb2.IdentityRecord:
    """What a clerk enters: the resident's record (their current code) with the reason and today's date."""
    change = identity_pb2.IdentityRecord()
    change.CopyFrom(record)
    change.my_number = ""  # the CS keeps (or, for 個人番号変更, asks for) the number
    change.change_reason = reason
    today = datetime.date.today()
    change.change_date.CopyFrom(R.Date(year=today.year, month=today.month, day=today.day))
    return change


def _born(running, municipality: str = "131148", node: str = NAKANO, **local) -> identity_pb2.IdentityRecord:
    record = residents(municipality, 1, R.CHANGE_REASON_BIRTH)[0]
    answer = terminal(running, node).record_change(record, local_pb2.LocalResidentData(**local) if local else None)
    wait_until(lambda: _found_by_number(running, answer.record.my_number), 30, "the birth at the national server")
    return answer.record


@pytest.fixture(scope="module")
def changed(private_network) -> tuple[identity_pb2.IdentityRecord, identity_pb2.IdentityRecord]:
    """(the resident before, after) a 住民票コード変更 at 中野区, the new record at the national server."""
    running = private_network
    before = _born(running, registered_domicile="東京都中野区中野四丁目8番1号")
    CopyClient(terminal(running, NAKANO)).register_dv_measure(before.resident_code, ["131016"])
    after = terminal(running, NAKANO).record_change(_change(before, CODE_CHANGE)).record
    wait_until(lambda: _found_by_code(running, after.resident_code), 30, "the new code at the national server")
    return before, after


# -- 住民票コード変更, the legitimate way -------------------------------------------------------------------


def test_a_code_change_moves_the_resident_to_a_fresh_code_at_every_tier(private_network, changed):
    running = private_network
    before, after = changed
    old, new = before.resident_code, after.resident_code
    assert is_valid_resident_code(new) and new != old
    assert after.my_number == before.my_number and after.name == before.name and after.address == before.address
    assert (after.change_reason, after.status) == (CODE_CHANGE, R.RECORD_STATUS_ACTIVE)

    cs = terminal(running, NAKANO)
    ended, moved = cs.resident_entry(old), cs.resident_entry(new)
    assert (ended.record.status, ended.record.change_reason) == (R.RECORD_STATUS_REMOVED, CODE_CHANGE)
    assert ended.record.name == before.name  # the old record is kept, never deleted
    assert moved.record == after
    assert moved.local.registered_domicile == "東京都中野区中野四丁目8番1号"  # local items moved
    assert not ended.HasField("local")
    copies = CopyClient(cs)
    assert [list(m.municipalities) for m in copies.dv_measures(new)] == [["131016"]]  # protection follows
    assert not copies.dv_measures(old)

    # the national server: the new code and the same My Number find the person; the old code answers the
    # record as it ended (removed, reason 住民票コード変更), so an agency holding it learns it was replaced
    by_number = wait_until(lambda: _found_by_number(running, before.my_number), 30, "the number")
    assert by_number.resident_code == new
    assert _found_by_code(running, new).status == R.RECORD_STATUS_ACTIVE
    by_old = _found_by_code(running, old)
    assert (by_old.resident_code, by_old.status, by_old.change_reason) == (old, R.RECORD_STATUS_REMOVED, CODE_CHANGE)


def test_a_retry_is_idempotent_at_the_national_server_and_refused_at_the_cs(private_network, changed, tmp_path):
    running = private_network
    before, after = changed
    cs = simulated(running, [NAKANO], tmp_path / "nakano")  # the CS's identity, as its retry would call
    with cs.channel(address(running, "national"), "national") as channel:
        stub = numbers_pb2_grpc.NumberServiceStub(channel)
        request = numbers_pb2.ChangeResidentCodeRequest(
            resident_code=before.resident_code, request_id=f"code-change/{before.resident_code}"
        )
        again = stub.ChangeResidentCode(request)
        block = numbers_pb2.CodeBlock.FromString(again.block.payload)
        assert list(block.codes) == [after.resident_code] and block.replaces == before.resident_code
        assert again.my_number == before.my_number
        request.request_id = "another-request"  # a code is replaced once
        refused = rpc_error(stub.ChangeResidentCode, request)
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and after.resident_code in refused.details()

    held = counts(running, NAKANO)
    refused = rpc_error(terminal(running, NAKANO).record_change, _change(before, CODE_CHANGE))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"replaced by {after.resident_code} already" in refused.details()
    for reason in (R.CHANGE_REASON_MOVE_IN, R.CHANGE_REASON_RELOCATION):  # the old code is never used again
        refused = rpc_error(terminal(running, NAKANO).record_change, _change(before, reason))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and "never used again" in refused.details()
    assert counts(running, NAKANO) == held


def test_a_cs_may_not_change_another_municipalitys_resident(private_network, changed, tmp_path):
    running = private_network
    _, victim = changed
    chiyoda = terminal(running, CHIYODA)
    held = counts(running, CHIYODA)
    theirs = _change(victim, CODE_CHANGE)
    theirs.address.municipality_code = "131016"
    refused = rpc_error(chiyoda.record_change, theirs)  # not a resident here
    assert refused.code() == grpc.StatusCode.NOT_FOUND and counts(running, CHIYODA) == held
    rogue = simulated(running, [CHIYODA], tmp_path / "chiyoda")
    with rogue.channel(address(running, "national"), "national") as channel:
        request = numbers_pb2.ChangeResidentCodeRequest(resident_code=victim.resident_code, request_id="take-over")
        refused = rpc_error(numbers_pb2_grpc.NumberServiceStub(channel).ChangeResidentCode, request)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    found = _found_by_code(running, victim.resident_code)
    assert (found.name, found.address.municipality_code) == (victim.name, "131148")


# -- forged and replayed code changes at the prefecture ------------------------------------------------


def _refused_position(exc: grpc.RpcError) -> int:
    return int(dict(exc.trailing_metadata() or ())[REFUSED_ITEM_KEY])


def _code_change_item(origin: str, record: identity_pb2.IdentityRecord, new: str, sequence: int) -> bytes:
    moved = _change(record, CODE_CHANGE)
    moved.my_number, moved.resident_code, moved.status = record.my_number, new, R.RECORD_STATUS_ACTIVE
    moved.address.municipality_code = origin[3:]  # a CS sends only records of its own municipality
    notice = notice_pb2.ChangeNotice(
        origin=origin, sequence=sequence, record=moved, former_resident_code=record.resident_code
    )
    return link_pb2.LinkItem(change_notice=notice).SerializeToString()


def test_forged_and_replayed_code_changes_are_refused_at_the_prefecture(private_network, changed, tmp_path):
    running = private_network
    _, victim = changed
    origin = "cs:131130"
    rogue = simulated(running, [origin], tmp_path / "rogue")
    pref_at = address(running, PREF)
    block_item, [mine, spare] = designated(running, rogue, 2)
    position = 1
    assert rogue.deliver(pref_at, PREF, [rogue.batch(PREF, [block_item, *change_items(origin, [mine, spare])])])
    position += 3
    wait_until(lambda: _found_by_code(running, mine.resident_code), 30, "the rogue's own resident")
    held = counts(running, PREF)

    def refused_at_the_prefecture(items: list[bytes], why: str, at: int = 0) -> None:
        refused = rpc_error(rogue.deliver, pref_at, PREF, [rogue.batch(PREF, items, position)])
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, refused.details()
        assert _refused_position(refused) == position + at and why in refused.details()
        assert counts(running, PREF) == held  # nothing stored

    never = "12345678903"  # a well-formed code the national server never designated
    refused_at_the_prefecture([_code_change_item(origin, mine, never, 10)], "did not designate 12345678903")
    ordinary = designated(running, rogue, 1)  # designated, but for the reserve, not for this change
    new_ordinary = numbers_pb2.CodeBlock.FromString(link_pb2.LinkItem.FromString(ordinary[0]).code_block.payload)
    refused_at_the_prefecture(
        [ordinary[0], _code_change_item(origin, mine, new_ordinary.codes[0], 10)], "did not designate", at=1
    )
    refused_at_the_prefecture([_code_change_item(origin, victim, never, 10)], "owned by cs:131148")

    with rogue.channel(address(running, "national"), "national") as channel:
        answer = numbers_pb2_grpc.NumberServiceStub(channel).ChangeResidentCode(
            numbers_pb2.ChangeResidentCodeRequest(resident_code=mine.resident_code, request_id="mine-1")
        )
    new = numbers_pb2.CodeBlock.FromString(answer.block.payload).codes[0]
    the_block = link_pb2.LinkItem(code_block=answer.block).SerializeToString()
    refused_at_the_prefecture([the_block, *change_items(origin, [_births_with(mine, new)], 10)], "only that change", 1)
    honest = [the_block, _code_change_item(origin, mine, new, 10)]
    assert rogue.deliver(pref_at, PREF, [rogue.batch(PREF, honest, position)])  # the legitimate way
    position += 2
    wait_until(lambda: _found_by_code(running, new), 30, "the rogue's code change at the national server")
    held = counts(running, PREF)

    refused_at_the_prefecture([_code_change_item(origin, mine, new, 11)], "replaced already")  # a replay
    relocation = _change(mine, R.CHANGE_REASON_RELOCATION)
    relocation.my_number = mine.my_number
    refused_at_the_prefecture(change_items(origin, [relocation], 11), "never used again")  # the old code
    assert _found_by_code(running, mine.resident_code).status == R.RECORD_STATUS_REMOVED


def _births_with(record: identity_pb2.IdentityRecord, code: str) -> identity_pb2.IdentityRecord:
    birth = _change(record, R.CHANGE_REASON_BIRTH)
    birth.resident_code, birth.name.kanji = code, "偽 太郎"
    return birth


# -- 個人番号変更 ---------------------------------------------------------------------------------------


def test_a_my_number_change_retires_the_old_number_at_every_tier(private_network, changed, tmp_path):
    running = private_network
    _, resident = changed  # the resident whose code just changed: the number changes under the new code
    old = resident.my_number
    answer = terminal(running, NAKANO).record_change(_change(resident, R.CHANGE_REASON_MY_NUMBER_CHANGE))
    new = answer.record.my_number
    assert is_valid_my_number(new) and new != old and answer.record.resident_code == resident.resident_code
    found = wait_until(lambda: _found_by_number(running, new), 30, "the new number at the national server")
    assert found.resident_code == resident.resident_code
    refused = rpc_error(agency(running).by_my_number, NUMBER_BUSINESS, old)
    assert refused.code() == grpc.StatusCode.NOT_FOUND

    impostor = residents("131148", 1, R.CHANGE_REASON_BIRTH)[0]  # the old number for someone else
    impostor.my_number = old
    refused = rpc_error(terminal(running, NAKANO).record_change, impostor)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED

    origin = "cs:131202"
    rogue = simulated(running, [origin], tmp_path / "rogue")
    block_item, [birth] = designated(running, rogue, 1)
    birth.my_number = old
    held = counts(running, PREF)
    refused = rpc_error(rogue.deliver, address(running, PREF), PREF,
                        [rogue.batch(PREF, [block_item, *change_items(origin, [birth])])])  # fmt: skip
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and _refused_position(refused) == 2
    assert "retired by a 個人番号変更" in refused.details() and counts(running, PREF) == held
