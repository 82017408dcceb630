"""The bulk redaction of a batch chunk gives, record for record, what a table row's redaction gives."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jukinet.domain.bulk_redaction import BulkRedactor
from jukinet.domain.legal import FIELD_GROUPS, TableRow
from jukinet.domain.synthetic import synthetic_resident
from jukinet.v1 import identity_pb2, provision_pb2

RECORDS = provision_pb2.BatchLookupResponse.DESCRIPTOR.fields_by_name["records"].number
REMOVED = identity_pb2.RECORD_STATUS_REMOVED


def _row(groups: frozenset[str]) -> TableRow:
    return TableRow("1234567890123", "b", "t", groups)


def _record(seed: int, removed: bool, unknown: int, long_text: int) -> bytes:
    rng = random.Random(seed)
    r = synthetic_resident(rng, "131148", numbered=True)
    r.address.text += "丁" * long_text  # lengths past one varint byte, and past the framing table
    if removed:
        r.status, r.change_reason = REMOVED, identity_pb2.CHANGE_REASON_DEATH
        r.change_date.year, r.change_date.month, r.change_date.day = 2026, 3, 14
    raw = r.SerializeToString()
    for i in range(unknown):  # fields a newer version might store: dropped, as the row's redaction drops them
        tag = (20 + i) << 3  # field 20 + i, a varint
        raw += bytes((tag & 0x7F | 0x80, tag >> 7, rng.randrange(128)))
    return raw


@settings(max_examples=60, deadline=None)
@given(
    groups=st.frozensets(st.sampled_from(sorted(FIELD_GROUPS))),
    people=st.lists(
        st.tuples(st.integers(0, 10**6), st.booleans(), st.integers(0, 2), st.sampled_from([0, 0, 50, 6000])),
        max_size=12,
    ),
)
def test_each_record_is_the_rows_redaction(groups: frozenset[str], people: list) -> None:
    row = _row(groups)
    stored = [_record(*p) for p in people]
    redactor = BulkRedactor(frozenset(n for g in groups for n in FIELD_GROUPS[g]), RECORDS)
    chunk = redactor.redact(stored, want_codes=True)
    answer = provision_pb2.BatchLookupResponse()
    answer.MergeFromString(chunk.framed)
    parsed = [identity_pb2.IdentityRecord.FromString(raw) for raw in stored]
    assert list(answer.records) == [row.redact(r).SerializeToString() for r in parsed]
    assert [x.position for x in chunk.removals] == [i for i, r in enumerate(parsed) if r.status == REMOVED]
    for x in chunk.removals:
        assert x.reason == parsed[x.position].change_reason
        assert identity_pb2.Date.FromString(x.date) == parsed[x.position].change_date
    assert chunk.resident_codes == [r.resident_code for r in parsed]


def test_a_record_holding_the_removed_bytes_elsewhere_is_not_taken_for_a_removal() -> None:
    r = synthetic_resident(random.Random(1), "131148")
    r.address.text = "H\x02"  # the bytes of status REMOVED, inside another field
    redactor = BulkRedactor(frozenset({"address", "status"}), RECORDS)
    assert redactor.redact([r.SerializeToString()]).removals == []


def test_fields_that_identity_records_do_not_have_are_refused() -> None:
    with pytest.raises(ValueError, match="no fields"):
        BulkRedactor(frozenset({"honseki"}), RECORDS)
