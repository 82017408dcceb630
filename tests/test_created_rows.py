"""A row without a 住民票コード creates one resident however often it is sent (the CS registry over a real LMDB).

The CS gives a creating row that left resident_code empty a code from its reserve; it keeps which resident
each such row created, by the row's digest, so the same row again — a re-sent import file, a chunk whose
answer was lost, a retried RecordChange — is that resident again, never a second one. The national
server is a stand-in that designates codes into the reserve as the CS claims them and answers a number
for each.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from jukinet.cs_node.registry import Registry, row_digest
from jukinet.domain.clock import ManualClock
from jukinet.domain.codes import generate_my_number, generate_resident_code
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.audit import Auditor
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, identity_pb2

R = identity_pb2
CS = NodeId.cs("131148")
BULK = audit_pb2.AUDIT_ACTION_REGISTER_RESIDENTS


class Desk:  # the caller as the audit entry sees it
    actor = "operator:131148:clerk"
    primary = CS


class Supply:
    """The CS's code supply as the registry sees it: each claimed code designated (put in the reserve) now."""

    def __init__(self, storage: NodeStorage) -> None:
        self._storage = storage
        self._rng = random.Random(5)
        self.claimed: list[str] = []
        self.assigned: dict[str, str] = {}
        self.national = None

    def claim(self, count: int) -> list[str]:
        codes = [generate_resident_code(self._rng) for _ in range(count)]
        self._storage.env.write(lambda txn: self._storage.reserve.add(txn, codes, 1))
        self.assigned.update((c, generate_my_number(self._rng)) for c in codes)
        self.claimed += codes
        return codes

    def release(self, codes) -> None:
        pass

    def numbers(self, codes, timeout=None) -> dict[str, str]:
        return {c: self.assigned[c] for c in codes if c in self.assigned}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    storage = NodeStorage.open(tmp_path / "data")
    yield Registry(CS, NodeId.prefecture("13"), storage, Auditor(storage, ManualClock()), ManualClock(),
                   supply=Supply(storage))  # fmt: skip
    storage.close()


def _rows(n: int, seed: int = 1) -> list[R.IdentityRecord]:
    rng = random.Random(seed)
    return [synthetic_resident(rng, "131148") for _ in range(n)]


def _fresh(rows: list[R.IdentityRecord]) -> list[R.IdentityRecord]:
    """The rows as the file holds them (the registry writes the numbers it gives into the messages)."""
    out = []
    for row in rows:
        copy = R.IdentityRecord()
        copy.CopyFrom(row)
        out.append(copy)
    return out


def _bulk(registry: Registry, rows: list[R.IdentityRecord]):
    return registry.register(rows, registry.screen(rows), Desk(), BULK)


def test_the_same_rows_again_are_the_same_residents(registry):
    rows = _rows(5)
    first = _bulk(registry, _fresh(rows))
    assert len(first.stored) == 5 and sorted(first.assigned) == [0, 1, 2, 3, 4]
    storage, claimed = registry._storage, len(registry.supply.claimed)
    records, history = storage.records.count(), storage.history.count()

    again = _bulk(registry, _fresh(rows))
    assert (len(again.stored), again.already_stored, dict(again.refused)) == (0, 5, {})
    assert again.assigned == first.assigned  # answered with the codes and numbers given the first time
    assert (storage.records.count(), storage.history.count()) == (records, history)  # no notice, nobody new
    assert len(registry.supply.claimed) == claimed  # no code taken for them


def test_an_identical_row_in_the_same_chunk_is_the_same_person(registry):
    a, b = _rows(2)
    outcome = _bulk(registry, _fresh([a, b, a]))
    assert (len(outcome.stored), outcome.already_stored) == (2, 1)
    assert outcome.assigned[2] == outcome.assigned[0] != outcome.assigned[1]
    assert registry._storage.records.count() == 2


def test_a_row_that_says_anything_else_is_another_resident(registry):
    (a,) = _rows(1)
    other = R.IdentityRecord()
    other.CopyFrom(a)
    other.address.text += "の2"
    outcome = _bulk(registry, _fresh([a, other]))
    assert len(outcome.stored) == 2 and outcome.assigned[0][0] != outcome.assigned[1][0]
    assert row_digest(a) != row_digest(other)


def test_the_row_again_after_the_resident_changed_creates_nothing(registry):
    (a,) = _rows(1)
    code = _bulk(registry, _fresh([a])).assigned[0][0]
    moved = registry._storage.records.get(code)
    moved.change_reason, moved.address.text = R.CHANGE_REASON_RELOCATION, "9丁目9番9号"
    registry.record([moved], Desk(), audit_pb2.AUDIT_ACTION_RECORD_CHANGE)  # 転居 within the municipality

    again = _bulk(registry, _fresh([a]))
    assert (len(again.stored), again.already_stored, again.assigned[0][0]) == (0, 1, code)
    stored = registry._storage.records.get(code)
    assert stored.change_reason == R.CHANGE_REASON_RELOCATION and stored.address.text == "9丁目9番9号"
    assert registry._storage.records.count() == 1


def test_a_single_change_sent_again_is_already_exists_naming_the_resident(registry):
    (a,) = _rows(1)
    (sent,) = _fresh([a])
    registry.record([sent], Desk(), audit_pb2.AUDIT_ACTION_RECORD_CHANGE)
    history = registry._storage.history.count()
    with pytest.raises(Rejected) as refused:
        registry.record(_fresh([a]), Desk(), audit_pb2.AUDIT_ACTION_RECORD_CHANGE)  # the answer was lost: a retry
    assert refused.value.problem == Problem.ALREADY_EXISTS and sent.resident_code in str(refused.value)
    assert registry._storage.records.count() == 1 and registry._storage.history.count() == history
