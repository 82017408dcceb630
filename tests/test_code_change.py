"""住民票コード変更 without a network: the tier rules (jukinet.domain.numbers.notice_problem), the national
server's ChangeResidentCode (real SoftHSM token and LMDB), and the national tier storing the notice
(jukinet.server.changes.ChangeWriter) — including a 個人番号変更 asked for before the code change's notice
arrives, and changes the CS recorded before a number change that arrive after it."""

from __future__ import annotations

import random
from pathlib import Path

import lmdb
import pytest

from jukinet.domain.changes import CODE_CHANGE, code_change_problem, ended_record, replaces_current
from jukinet.domain.clock import ManualClock
from jukinet.domain.codes import resident_code_check_digit
from jukinet.domain.errors import ItemRefused, Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.numbers import NoticeFacts, notice_problem
from jukinet.domain.synthetic import synthetic_resident
from jukinet.hsm import TokenMac, TokenWorker, init_token, provision_hmac_key
from jukinet.pki import SoftwareSigner
from jukinet.server.audit import Auditor
from jukinet.server.changes import ChangeWriter, Incoming
from jukinet.server.national.numbers import NumberAllocation
from jukinet.storage import NodeStorage
from jukinet.v1 import cards_pb2, identity_pb2, notice_pb2, numbers_pb2

R = identity_pb2
NAKANO, CHIYODA = NodeId.cs("131148"), NodeId.cs("131016")
PIN = "424242"
_rng = random.Random(8)


def _active(**changes: object) -> R.IdentityRecord:
    record = synthetic_resident(_rng, "131148", R.CHANGE_REASON_BIRTH, numbered=True)
    record.status = R.RECORD_STATUS_ACTIVE
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def _moved(former: R.IdentityRecord, new: str) -> R.IdentityRecord:
    record = R.IdentityRecord()
    record.CopyFrom(former)
    record.resident_code, record.change_reason, record.status = new, CODE_CHANGE, R.RECORD_STATUS_ACTIVE
    return record


NEW = "2" * 10 + str(resident_code_check_digit("2" * 10))


def _facts(person: R.IdentityRecord, **changes: object) -> NoticeFacts:
    base: dict[str, object] = dict(
        current=None, designated_to="cs:131148", replaces=person.resident_code, former_code=person.resident_code,
        former=person, number_holder=person.resident_code,
    )  # fmt: skip
    base.update(changes)
    return NoticeFacts(**base)  # type: ignore[arg-type]


# -- the rules, pure ------------------------------------------------------------------------------------


def test_a_code_change_by_the_owner_with_the_code_designated_for_it_is_accepted() -> None:
    former = _active()
    assert notice_problem("cs:131148", _moved(former, NEW), _facts(former)) is None
    assert notice_problem("cs:131148", _moved(former, NEW), _facts(former, assigned_number=former.my_number)) is None


@pytest.mark.parametrize(
    ("origin", "facts", "why"),
    [
        ("cs:131016", {"designated_to": "cs:131016"}, "owned by cs:131148"),  # another municipality's resident
        ("cs:131148", {"former": None}, "there is no resident"),
        ("cs:131148", {"replaces": None}, "did not designate"),  # an ordinary designation
        ("cs:131148", {"replaces": "12345678903"}, "did not designate"),  # designated for another change
        ("cs:131148", {"designated_to": "cs:131016"}, "did not designate"),
        ("cs:131148", {"designated_to": None, "replaces": None}, "did not designate"),  # never designated
        ("cs:131148", {"current": _active()}, "in use already"),  # a replay after the change
        ("cs:131148", {"former_code": ""}, "names the former code"),
    ],
)
def test_forged_code_changes_are_refused(origin: str, facts: dict, why: str) -> None:
    former = _active()
    found = notice_problem(origin, _moved(former, NEW), _facts(former, **facts))
    assert found is not None and why in found[1]


def test_a_replayed_code_change_and_any_use_of_the_old_code_are_refused() -> None:
    former = _active()
    ended = ended_record(former, _moved(former, NEW))
    assert (ended.status, ended.change_reason, ended.resident_code) == (R.RECORD_STATUS_REMOVED, CODE_CHANGE,
                                                                        former.resident_code)  # fmt: skip
    found = notice_problem("cs:131148", _moved(former, NEW), _facts(former, former=ended))
    assert found is not None and "replaced already" in found[1]
    for reason in (R.CHANGE_REASON_RELOCATION, R.CHANGE_REASON_MOVE_IN, R.CHANGE_REASON_DEATH):
        again = R.IdentityRecord()
        again.CopyFrom(former)
        again.change_reason = reason
        found = notice_problem("cs:131148", again, NoticeFacts(current=ended, designated_to="cs:131148"))
        assert found is not None and found[0] is Problem.DENIED and "never used again" in found[1]
    late = R.IdentityRecord()  # a former owner's late removal is history only
    late.CopyFrom(former)
    late.change_reason, late.status = R.CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED, R.RECORD_STATUS_REMOVED
    late.address.municipality_code = "131016"
    assert notice_problem("cs:131016", late, NoticeFacts(current=ended, designated_to=None, former_owner=True)) is None
    assert not replaces_current(ended, late)


def test_a_code_designated_for_a_change_serves_nothing_else() -> None:
    birth = _active(resident_code=NEW)
    found = notice_problem("cs:131148", birth, NoticeFacts(current=None, designated_to="cs:131148", replaces="1" * 11))
    assert found is not None and "serves only that change" in found[1]


def test_a_code_change_changes_only_the_code_and_keeps_the_number() -> None:
    former = _active()
    renamed = _moved(former, NEW)
    renamed.name.kanji = "別 人"
    found = notice_problem("cs:131148", renamed, _facts(former))
    assert found is not None and found[0] is Problem.INVALID and "changes only the code" in found[1]
    assert code_change_problem(former, renamed)[:2] == (Problem.INVALID, "name")  # type: ignore[index]
    renumbered = _moved(former, NEW)
    renumbered.my_number = "123456789018"
    found = notice_problem("cs:131148", renumbered, _facts(former))
    assert found is not None and found[0] is Problem.DENIED and "keeps the resident's My Number" in found[1]


def test_a_retired_number_is_refused_for_anyone_but_a_change_recorded_before_it_arrives() -> None:
    holder = _active()
    stranger = _active(my_number=holder.my_number)
    facts = NoticeFacts(current=None, designated_to="cs:131148", number_retired=True)
    found = notice_problem("cs:131148", stranger, facts)
    assert found is not None and "retired by a 個人番号変更" in found[1]
    relocation = R.IdentityRecord()  # recorded at the CS before the 個人番号変更, arriving after the national
    relocation.CopyFrom(holder)  # server retired the number: still the number this tier holds for the code
    relocation.change_reason = R.CHANGE_REASON_RELOCATION
    kept = NoticeFacts(current=holder, designated_to="cs:131148", number_holder=holder.resident_code,
                       assigned_number="111111111118", number_retired=True)  # fmt: skip
    assert notice_problem("cs:131148", relocation, kept) is None


# -- the national server, real token and store ----------------------------------------------------------


@pytest.fixture(scope="module")
def mac(worker: TokenWorker) -> TokenMac:
    init_token(worker, "code-change-test", PIN, "so-424242")
    provision_hmac_key(worker, "code-change-test", PIN)
    m = TokenMac(worker, "code-change-test", PIN)
    yield m
    m.close()


def _allocation(path: Path, mac: TokenMac, draw=None) -> tuple[NumberAllocation, NodeStorage]:
    storage = NodeStorage.open(path)
    extra = {"draw": draw} if draw else {}
    allocation = NumberAllocation(storage, mac.macs, SoftwareSigner(), b"", Auditor(storage, ManualClock()), **extra)
    return allocation, storage


def _block(signed) -> numbers_pb2.CodeBlock:
    return numbers_pb2.CodeBlock.FromString(signed.payload)


def _store(storage: NodeStorage, *notices: notice_pb2.ChangeNotice) -> None:
    writer = ChangeWriter(storage, national=True)
    storage.env.write(lambda txn: writer.apply(txn, [Incoming(i + 1, n) for i, n in enumerate(notices)]))


def _notice(record: R.IdentityRecord, sequence: int, former: str = "") -> notice_pb2.ChangeNotice:
    return notice_pb2.ChangeNotice(origin="cs:131148", sequence=sequence, record=record, former_resident_code=former)


def test_the_national_server_changes_a_code_once_and_never_designates_the_old_one_again(tmp_path, mac):
    bases = iter(range(1000, 2000))
    allocation, storage = _allocation(tmp_path / "d", mac, draw=lambda n: next(bases))
    [old] = _block(allocation.designate(NAKANO, "a", 1)).codes
    [number] = allocation.assign(NAKANO, [old])
    signed, moved = allocation.change_resident_code(NAKANO, old, f"code-change/{old}")
    block = _block(signed)
    assert block.replaces == old and len(block.codes) == 1 and moved == number.my_number
    new = block.codes[0]
    again, _ = allocation.change_resident_code(NAKANO, old, f"code-change/{old}")  # a retry: the same code
    assert _block(again).codes == block.codes
    for cs, request_id, problem in (
        (NAKANO, "another", Problem.CONFLICT),  # a code is replaced once
        (CHIYODA, "take-over", Problem.DENIED),  # another municipality's resident
    ):
        with pytest.raises(Rejected) as refused:
            allocation.change_resident_code(cs, old, request_id)
        assert refused.value.problem is problem
    with pytest.raises(Rejected) as refused:  # a request id answered for another request
        allocation.change_resident_code(NAKANO, new, f"code-change/{old}")
    assert refused.value.problem is Problem.CONFLICT
    with pytest.raises(Rejected) as refused:  # no My Number for the old code: one would be used up for good
        allocation.assign(NAKANO, [old])
    assert refused.value.problem is Problem.CONFLICT and "never used again" in str(refused.value)
    assert [a.my_number for a in allocation.assign(NAKANO, [new])] == [number.my_number]
    storage.close()
    base = int(old[:10])
    drawn = iter([base, base, 5000])
    allocation, storage = _allocation(tmp_path / "d", mac, draw=lambda n: next(drawn))
    assert list(_block(allocation.designate(NAKANO, "after", 1)).codes) != [old]  # the old code is drawn, skipped
    with storage.env.read() as txn:
        assert storage.numbers.replaced_by(txn, old) == new and storage.numbers.replaces(txn, new) == old
        assert storage.numbers.number_of(txn, new) == number.my_number and storage.numbers.number_of(txn, old) is None
    storage.close()


def test_the_national_tier_stores_a_code_change_and_a_number_change_asked_for_before_it_arrives(tmp_path, mac):
    allocation, storage = _allocation(tmp_path / "d", mac)
    [old] = _block(allocation.designate(NAKANO, "a", 1)).codes
    [assigned] = allocation.assign(NAKANO, [old])
    birth = _active(resident_code=old, my_number=assigned.my_number)
    card = cards_pb2.CardRecord(card_serial="00aa", resident_code=old, municipality_code="131148")
    storage.env.write(lambda txn: storage.cards.put(txn, card))
    relocation = R.IdentityRecord()
    relocation.CopyFrom(birth)
    relocation.change_reason = R.CHANGE_REASON_RELOCATION
    _store(storage, _notice(birth, 1))
    # the CS changes the code, then at once the number: both answered before either notice arrives here
    signed, _ = allocation.change_resident_code(NAKANO, old, f"code-change/{old}")
    new = _block(signed).codes[0]
    renumbered = allocation.change_my_number(NAKANO, new, assigned.my_number).my_number
    moved = _moved(birth, new)
    number_change = R.IdentityRecord()
    number_change.CopyFrom(moved)
    number_change.my_number, number_change.change_reason = renumbered, R.CHANGE_REASON_MY_NUMBER_CHANGE
    _store(storage, _notice(relocation, 2), _notice(moved, 3, former=old), _notice(number_change, 4))

    with storage.env.read() as txn:
        ended = storage.records.current(txn, old)
        assert (ended.status, ended.change_reason) == (R.RECORD_STATUS_REMOVED, CODE_CHANGE)
        assert storage.records.current(txn, new).my_number == renumbered
        assert storage.records.holder_of(txn, renumbered) == new
        assert storage.records.holder_of(txn, assigned.my_number) is None  # the old number finds no one
        assert [c.resident_code for c in storage.cards.of_resident(txn, new)] == [new]
        assert not storage.cards.of_resident(txn, old)
    assert [n.sequence for n in storage.history.of(old)] == [1, 2, 3]  # the change is in both histories
    assert [n.sequence for n in storage.history.of(new)] == [3, 4]

    for record, former, why in (
        (_moved(birth, new), old, "replaced already"),  # the change replayed
        (relocation, "", "never used again"),  # the old code used again
    ):
        with pytest.raises(ItemRefused) as refused:
            _store(storage, _notice(record, 5, former))
        assert refused.value.problem is Problem.DENIED and why in str(refused.value)
    storage.close()


def test_the_cs_stores_move_per_resident_data_with_the_code(tmp_path):
    from jukinet.v1 import copies_pb2, local_pb2

    storage = NodeStorage.open(tmp_path / "d")
    old, new = "1" * 10 + str(resident_code_check_digit("1" * 10)), NEW

    def seed(txn: lmdb.Transaction) -> None:
        storage.local.put(txn, old, local_pb2.LocalResidentData(relationship="子"))
        storage.dv_measures.add(txn, copies_pb2.DvMeasure(resident_code=old))
        storage.copies.append(txn, copies_pb2.CopyIssuance(resident_code=old))

    def move(txn: lmdb.Transaction) -> None:
        storage.local.move(txn, old, new)
        storage.dv_measures.move(txn, old, new)
        storage.copies.move(txn, old, new)

    storage.env.write(seed)
    storage.env.write(move)
    assert storage.local.get(old) is None and storage.local.get(new).relationship == "子"
    assert not storage.dv_measures.get(old) and [m.resident_code for m in storage.dv_measures.get(new)] == [new]
    assert not storage.copies.page(old, 0, 10) and [c.serial for c in storage.copies.page(new, 0, 10)] == [1]
    storage.close()
