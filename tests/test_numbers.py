"""National number allocation as a plain object over a real SoftHSM token and LMDB (no gRPC)."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from jukinet.domain.clock import ManualClock
from jukinet.domain.codes import is_valid_my_number, is_valid_resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.numbers import mac_input, my_number_from_mac
from jukinet.hsm import TokenMac, TokenWorker, init_token, provision_hmac_key
from jukinet.pki import SoftwareSigner
from jukinet.server.audit import Auditor
from jukinet.server.national.numbers import NumberAllocation
from jukinet.storage import NodeStorage
from jukinet.v1 import numbers_pb2

NAKANO, CHIYODA = NodeId.cs("131148"), NodeId.cs("131016")
PIN = "424242"


@pytest.fixture(scope="module")
def mac(worker: TokenWorker) -> TokenMac:
    init_token(worker, "numbers-test", PIN, "so-424242")
    provision_hmac_key(worker, "numbers-test", PIN)
    m = TokenMac(worker, "numbers-test", PIN)
    yield m
    m.close()


def _allocation(path: Path, mac: TokenMac, draw=None) -> tuple[NumberAllocation, NodeStorage]:
    storage = NodeStorage.open(path)
    extra = {"draw": draw} if draw else {}
    allocation = NumberAllocation(storage, mac.macs, SoftwareSigner(), b"", Auditor(storage, ManualClock()), **extra)
    return allocation, storage


def _codes(signed) -> list[str]:
    return list(numbers_pb2.CodeBlock.FromString(signed.payload).codes)


def test_blocks_are_fresh_valid_and_a_retried_request_gets_the_same_block(tmp_path, mac):
    allocation, storage = _allocation(tmp_path / "d", mac)
    first = _codes(allocation.designate(NAKANO, "r1", 500))
    again = _codes(allocation.designate(NAKANO, "r1", 500))
    other = _codes(allocation.designate(CHIYODA, "r1", 500))
    assert first == again and len(set(first) | set(other)) == 1000
    assert all(is_valid_resident_code(c) for c in first + other)
    with pytest.raises(Rejected) as too_many:
        allocation.designate(NAKANO, "r2", 1001)
    assert too_many.value.problem is Problem.INVALID
    storage.close()


def test_a_code_is_never_designated_twice_even_when_the_random_source_repeats(tmp_path, mac):
    rng = random.Random(1)
    allocation, storage = _allocation(tmp_path / "d", mac, draw=lambda n: rng.randrange(1, 40))  # 39 possible
    codes = [c for i in range(8) for c in _codes(allocation.designate(NAKANO, f"r{i}", 4))]
    assert len(codes) == len(set(codes)) == 32
    storage.close()
    allocation, storage = _allocation(tmp_path / "d", mac, draw=lambda n: rng.randrange(1, 40))  # a restart
    more = _codes(allocation.designate(NAKANO, "after-restart", 7))
    assert not set(more) & set(codes)
    with pytest.raises(Rejected) as exhausted:
        allocation.designate(NAKANO, "too-many", 1)
    assert exhausted.value.problem is Problem.BROKEN
    storage.close()


def test_concurrent_requests_never_share_a_code(tmp_path, mac):
    allocation, storage = _allocation(tmp_path / "d", mac)
    got: list[list[str]] = []
    threads = [threading.Thread(target=lambda i=i: got.append(_codes(allocation.designate(NAKANO, f"c{i}", 200))))
               for i in range(8)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(map(len, got)) == len({c for block in got for c in block}) == 1600
    storage.close()


def test_my_numbers_are_stable_unique_and_only_for_the_callers_codes(tmp_path, mac):
    allocation, storage = _allocation(tmp_path / "d", mac)
    mine, theirs = _codes(allocation.designate(NAKANO, "a", 300)), _codes(allocation.designate(CHIYODA, "b", 1))
    first = allocation.assign(NAKANO, mine)
    assert [a.resident_code for a in first] == mine and allocation.assign(NAKANO, mine) == first
    numbers = [a.my_number for a in first]
    assert len(set(numbers)) == 300 and all(is_valid_my_number(n) for n in numbers)
    with pytest.raises(Rejected) as denied:
        allocation.assign(NAKANO, [theirs[0]])
    assert denied.value.problem is Problem.DENIED and "131016" not in str(denied.value)
    storage.close()


def test_a_collision_takes_the_next_attempt(tmp_path, mac):
    allocation, storage = _allocation(tmp_path / "d", mac)
    code, other = _codes(allocation.designate(NAKANO, "a", 2))
    taken = my_number_from_mac(mac.macs([mac_input(code, 0)])[0])
    storage.env.write(lambda txn: storage.numbers.hold(txn, other, taken))  # attempt 0 is someone else's
    [assigned] = allocation.assign(NAKANO, [code])
    assert assigned.my_number == my_number_from_mac(mac.macs([mac_input(code, 1)])[0]) != taken
    storage.close()


def test_a_changed_my_number_is_retired_forever_and_a_retry_answers_the_same(tmp_path, mac):
    allocation, storage = _allocation(tmp_path / "d", mac)
    [code] = _codes(allocation.designate(NAKANO, "a", 1))
    [old] = allocation.assign(NAKANO, [code])
    new = allocation.change_my_number(NAKANO, code, old.my_number)
    assert new.my_number != old.my_number and allocation.change_my_number(NAKANO, code, old.my_number) == new
    assert allocation.assign(NAKANO, [code])[0].my_number == new.my_number
    with storage.env.read() as txn:
        assert storage.numbers.issued(txn, old.my_number) == (code, b"R")
    storage.close()


def test_a_cs_cannot_flood_the_national_server_with_codes_or_number_changes(tmp_path, mac):
    """Attack (review finding 9): one CS designated 299,000 codes and burned 92,000 My Numbers in 20 s. A CS
    holds at most ``max_unused`` designated codes no notice used yet, and changes numbers at a bounded rate."""
    from jukinet.domain.synthetic import synthetic_resident
    from jukinet.server.changes import ChangeWriter, Incoming
    from jukinet.v1 import identity_pb2, notice_pb2

    clock = ManualClock()
    storage = NodeStorage.open(tmp_path / "d")
    allocation = NumberAllocation(
        storage, mac.macs, SoftwareSigner(), b"", Auditor(storage, clock), clock=clock, max_unused=1500,
        changes_per_hour=3,
    )  # fmt: skip
    codes = _codes(allocation.designate(NAKANO, "a", 1000))
    with pytest.raises(Rejected, match="holds 1000 designated 住民票コード no notice has used yet") as refused:
        allocation.designate(NAKANO, "b", 501)
    assert refused.value.problem is Problem.EXHAUSTED
    with storage.env.read() as txn:  # nothing stored for the refused request
        assert storage.numbers.answered(txn, str(NAKANO), "b") is None
        assert storage.designations.unused(txn, str(NAKANO)) == 1000
    assert storage.designations.count() == 1000
    assert len(_codes(allocation.designate(CHIYODA, "a", 1000))) == 1000  # each CS has its own quota

    [assigned] = allocation.assign(NAKANO, [codes[0]])
    birth = synthetic_resident(random.Random(9), "131148", identity_pb2.CHANGE_REASON_BIRTH, numbered=True)
    birth.resident_code, birth.my_number = codes[0], assigned.my_number
    birth.status = identity_pb2.RECORD_STATUS_ACTIVE
    notice = notice_pb2.ChangeNotice(origin=str(NAKANO), sequence=1, record=birth)
    writer = ChangeWriter(storage, national=True)
    storage.env.write(lambda txn: writer.apply(txn, [Incoming(1, notice)]))  # the code is used: one more fits
    assert len(_codes(allocation.designate(NAKANO, "b", 501))) == 501

    number = assigned.my_number
    for _ in range(3):
        number = allocation.change_my_number(NAKANO, codes[0], number).my_number
    with pytest.raises(Rejected, match="within the last hour") as burned:
        allocation.change_my_number(NAKANO, codes[0], number)
    assert burned.value.problem is Problem.EXHAUSTED
    with pytest.raises(Rejected, match="within the last hour") as burned:  # the same budget: no new code either
        allocation.change_resident_code(NAKANO, codes[0], f"code-change/{codes[0]}")
    assert burned.value.problem is Problem.EXHAUSTED
    with storage.env.read() as txn:
        assert storage.numbers.number_of(txn, codes[0]) == number  # the refused change retired nothing
        assert storage.numbers.replaced_by(txn, codes[0]) is None
    clock.advance(1200)  # a third of an hour: one more change
    allocation.change_my_number(NAKANO, codes[0], number)
    storage.close()
