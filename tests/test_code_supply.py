"""The CS's reserve of 住民票コード (jukinet.cs_node.numbers.CodeSupply) against a national server that answers
late: the deadlines it is asked with, and a timed-out designation asked again under the same request id (a
new id would strand the block the national server designated meanwhile, counted against the CS's quota)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jukinet.cs_node import numbers as N
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.storage import NodeStorage
from jukinet.v1 import envelope_pb2

CS = NodeId.cs("131148")


class LateNational:
    """Records each DesignateCodes call; the first ``late`` of them miss their deadline."""

    def __init__(self, late: int = 0, refuse: Problem | None = None) -> None:
        self.calls: list[tuple[str, int, float | None]] = []
        self.late, self.refuse = late, refuse

    def designate(self, request_id: str, count: int, timeout: float | None = None) -> envelope_pb2.Signed:
        self.calls.append((request_id, count, timeout))
        if len(self.calls) <= self.late:
            raise Rejected(Problem.UNAVAILABLE, "the national server's NumberService: Deadline Exceeded")
        if self.refuse is not None:
            raise Rejected(self.refuse, "the national server's NumberService: refused")
        return envelope_pb2.Signed(payload=request_id.encode())


@pytest.fixture
def storage(tmp_path: Path):
    store = NodeStorage.open(tmp_path / "data")
    yield store
    store.close()


def _supply(
    storage: NodeStorage, national: LateNational, monkeypatch, added: int = 1000
) -> tuple[N.CodeSupply, list[bytes]]:
    supply = N.CodeSupply(CS, NodeId.prefecture("13"), storage, None, national)  # type: ignore[arg-type]
    stored: list[bytes] = []

    def store(signed: envelope_pb2.Signed) -> int:  # the block's verification is tested in test_numbers_e2e
        stored.append(signed.payload)
        return added

    monkeypatch.setattr(supply, "store", store)
    return supply, stored


def test_a_late_designation_is_asked_again_under_the_same_request_id(storage, monkeypatch):
    national = LateNational(late=2)
    supply, stored = _supply(storage, national, monkeypatch)
    for _ in range(2):
        with pytest.raises(Rejected) as caught:
            supply.fetch(1000)
        assert caught.value.problem is Problem.UNAVAILABLE
    assert supply.fetch(1000) == 1000
    ids = [c[0] for c in national.calls]
    assert len(set(ids)) == 1 and ids[0].startswith(f"{CS}/"), ids
    assert stored == [ids[0].encode()]
    supply.fetch(1000)  # the next designation is a new request
    assert national.calls[-1][0] != ids[0]


def test_a_refused_designation_is_not_asked_again(storage, monkeypatch):
    national = LateNational(refuse=Problem.EXHAUSTED)
    supply, _ = _supply(storage, national, monkeypatch)
    for _ in range(2):
        with pytest.raises(Rejected):
            supply.fetch(1000)
    assert national.calls[0][0] != national.calls[1][0]


def test_the_background_refill_waits_longer_than_a_registration_and_a_registration_longer_than_a_my_number(
    storage, monkeypatch
):
    national = LateNational()
    supply, _ = _supply(storage, national, monkeypatch, added=0)
    supply.refill()  # an empty reserve is below the low-water mark
    assert national.calls and {c[2] for c in national.calls} == {N.REFILL_TIMEOUT_S}
    national.calls.clear()
    with pytest.raises(Rejected) as caught:  # the stand-in adds nothing: the claim ends instead of asking on
        supply.claim(1)
    assert caught.value.problem is Problem.UNAVAILABLE and "no code not already held" in str(caught.value)
    assert [c[2] for c in national.calls] == [N.FETCH_TIMEOUT_S]
    assert N.REFILL_TIMEOUT_S > N.FETCH_TIMEOUT_S > N.ONLINE_TIMEOUT_S
