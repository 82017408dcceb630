"""The CS registry as a plain object over a real LMDB: each row of a bulk chunk decided on its own.

No gRPC, no tokens: the caller is a stand-in with the two attributes the audit entry reads, and the
national server is a stand-in too (:class:`Numbers`): the rows' codes are put in the CS's reserve as if
designated, and the stand-in answers the number each was made up with, as if the national server had
assigned it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from jukinet.cs_node.registry import Registry
from jukinet.domain.clock import ManualClock
from jukinet.domain.errors import Problem, Rejected
from jukinet.domain.node_ids import NodeId
from jukinet.domain.synthetic import synthetic_resident
from jukinet.server.audit import Auditor
from jukinet.storage import NodeStorage
from jukinet.v1 import audit_pb2, identity_pb2, notice_pb2

R = identity_pb2
A = audit_pb2
CS = NodeId.cs("131148")
BULK = A.AUDIT_ACTION_REGISTER_RESIDENTS


@dataclass
class Desk:  # the caller as the audit entry sees it
    actor: str = "operator:131148:clerk"
    primary: NodeId = CS


class Numbers:
    """The national server as the registry sees it (a unit-test stand-in for CodeSupply)."""

    def __init__(self) -> None:
        self.assigned: dict[str, str] = {}
        self.national = None

    def claim(self, count: int) -> list[str]:
        raise AssertionError("these tests give every row its code")

    def release(self, codes) -> None:
        pass

    def numbers(self, codes, timeout=None) -> dict[str, str]:
        return {c: self.assigned[c] for c in codes if c in self.assigned}


STAND_IN = Numbers()
_STORES: list[NodeStorage] = []


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    storage = NodeStorage.open(tmp_path / "data")
    _STORES[:] = [storage]
    return Registry(
        CS, NodeId.prefecture("13"), storage, Auditor(storage, ManualClock()), ManualClock(), supply=STAND_IN
    )


def _people(n: int, seed: int = 1, municipality: str = "131148") -> list[R.IdentityRecord]:
    """Made-up residents whose codes are in the reserve and whose numbers the stand-in assigned."""
    rng = random.Random(seed)
    people = [synthetic_resident(rng, municipality, numbered=True) for _ in range(n)]
    codes = [p.resident_code for p in people]
    for storage in _STORES:
        storage.env.write(lambda txn, s=storage: s.reserve.add(txn, codes, 1))
    STAND_IN.assigned.update((p.resident_code, p.my_number) for p in people)
    return people


def _copy(record: R.IdentityRecord, **changes) -> R.IdentityRecord:
    out = R.IdentityRecord()
    out.CopyFrom(record)
    for name, value in changes.items():
        setattr(out, name, value)
    return out


def _bulk(registry: Registry, rows: list[R.IdentityRecord]):
    return registry.register(rows, registry.screen(rows), Desk(), BULK)


def _storage(registry: Registry) -> NodeStorage:
    return registry._storage


def _queued(store: NodeStorage) -> int:
    return len(store.queues.pending("pref:13", 0, 1 << 20))


def test_bad_rows_are_refused_by_field_and_the_others_stored(registry):
    good = _people(4)
    bad_code = _copy(good[0], resident_code=good[0].resident_code[:-1] + str((int(good[0].resident_code[-1]) + 1) % 10))
    bidi = _copy(good[1], resident_code=_people(1, seed=9)[0].resident_code)
    bidi.name.kanji = "山田\u202e太郎"
    elsewhere = _people(1, seed=3, municipality="131016")[0]
    outcome = _bulk(registry, [good[0], bad_code, good[1], bidi, elsewhere, good[2], good[3]])

    assert len(outcome.stored) == 4 and outcome.already_stored == 0
    assert sorted(outcome.refused) == [1, 3, 4]
    assert [f for f, _ in outcome.refused[1]] == ["resident_code"] and "check digit" in outcome.refused[1][0][1]
    assert outcome.refused[3] == (
        ("name.kanji", "character 3 (U+202E RIGHT-TO-LEFT OVERRIDE) is not allowed in name text"),
    )
    assert outcome.refused[4][0][0] == "address.municipality_code" and "131016" in outcome.refused[4][0][1]
    store = _storage(registry)
    assert store.records.count() == 4
    assert store.records.get(bidi.resident_code) is None and store.records.get(elsewhere.resident_code) is None


def test_rerun_of_the_same_rows_applies_nothing_twice(registry):
    rows = _people(5)
    first = _bulk(registry, [_copy(r) for r in rows])
    store = _storage(registry)
    queued, audited = _queued(store), store.audit.size()
    again = _bulk(registry, [_copy(r) for r in rows])
    assert len(first.stored) == 5 and len(again.stored) == 0 and again.already_stored == 5 and not again.refused
    assert _queued(store) == queued  # no second notice
    assert sum(len(store.history.of(r.resident_code)) for r in rows) == 5
    assert store.audit.size() == audited + 1  # the re-run is audited, once for the chunk
    entry = A.AuditEntry.FromString(store.audit.entries(audited, audited + 1)[0])
    assert entry.outcome == A.AUDIT_OUTCOME_SUCCESS and "0 stored, 5 already stored, 0 refused" in entry.detail


def test_rows_of_one_chunk_are_decided_in_order(registry):
    a, b, c = _people(3)
    changed = _copy(a)  # a second move-in of a, not the same as the first
    changed.name.kanji = "佐藤 次郎"
    same_number = _copy(c, my_number=b.my_number)  # another resident with b's My Number
    outcome = _bulk(registry, [a, _copy(a), changed, b, same_number])
    assert len(outcome.stored) == 2 and outcome.already_stored == 1
    assert [f for f, _ in outcome.refused[2]] == [
        "resident_code"
    ] and "already has an active record" in outcome.refused[2][0][1]
    # b's number on another resident: not the number the national server assigned to that resident's code
    assert (
        outcome.refused[4][0][0] == "my_number"
        and "not the number the national server assigned" in (outcome.refused[4][0][1])
    )
    store = _storage(registry)
    assert store.records.get(a.resident_code).name.kanji == a.name.kanji
    assert store.records.find_by_my_number(b.my_number).resident_code == b.resident_code


def test_stored_rows_get_contiguous_notices_around_refused_ones(registry):
    first = _bulk(registry, _people(3, seed=5))
    rows = _people(4, seed=6)
    rows[1].my_number = rows[0].my_number  # refused inside the transaction, after rows[0] took the number
    second = _bulk(registry, rows)
    assert list(second.stored) == [first.stored.stop, first.stored.stop + 1, first.stored.stop + 2]
    store = _storage(registry)
    feed = store.history.feed(0, 100)
    assert [position for position, _ in feed] == list(range(1, 7))  # history positions: no gaps either
    notices = [notice_pb2.ChangeNotice.FromString(raw) for _, raw in feed]
    assert [n.sequence for n in notices] == list(range(1, 7))
    assert sorted(n.record.resident_code for n in notices[3:]) == sorted(
        r.resident_code for i, r in enumerate(rows) if i != 1
    )


def test_a_chunk_of_refused_rows_stores_nothing_and_is_audited_as_failed(registry):
    rows = _people(2)
    for r in rows:
        r.change_reason = R.CHANGE_REASON_RELOCATION  # amends a record that does not exist
    store = _storage(registry)
    outcome = _bulk(registry, rows)
    assert not outcome.stored and sorted(outcome.refused) == [0, 1]
    assert store.records.count() == 0 and _queued(store) == 0
    entry = A.AuditEntry.FromString(store.audit.entries(0, 1)[0])
    assert entry.outcome == A.AUDIT_OUTCOME_FAILED and entry.target == "2 residents"


def test_a_single_change_is_still_all_or_nothing(registry):
    person = _people(1)[0]
    registry.record([person], Desk(), A.AUDIT_ACTION_RECORD_CHANGE)
    with pytest.raises(Rejected) as exc:
        registry.record([_copy(person)], Desk(), A.AUDIT_ACTION_RECORD_CHANGE)
    assert exc.value.problem is Problem.ALREADY_EXISTS  # RecordChange is not idempotent: a repeat is an error
    with pytest.raises(Rejected) as exc:
        registry.record(_people(1, 2, "131016"), Desk(), A.AUDIT_ACTION_RECORD_CHANGE)
    assert exc.value.problem is Problem.DENIED and "131016" in str(exc.value)


@pytest.mark.parametrize("reason", [-1, 99])
def test_a_lone_row_with_an_unknown_change_reason_is_refused_not_an_internal_error(registry, reason) -> None:
    """Found by the property tests: the chunk's audit entry named the reason with ChangeReason.Name."""
    row = _copy(_people(1, seed=7)[0], change_reason=reason)
    outcome = _bulk(registry, [row])
    assert sorted(outcome.refused) == [0]
    assert [f for f, _ in outcome.refused[0]] == ["change_reason"]
    assert _storage(registry).records.count() == 0
