"""The read half of a batch chunk (定期照会): each code's stored record found and redacted to the row's fields.

It is most of a chunk's cost — LMDB random reads (a few microseconds each on a store of millions: memory
latency, not computation) and the redaction — so the node runs it in its reader processes
(:mod:`jukinet.server.runtime.readers`), several chunks at once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from jukinet.domain.bulk_redaction import BulkRedactor
from jukinet.domain.codes import is_valid_my_number, is_valid_resident_code
from jukinet.storage import NodeStorage
from jukinet.v1 import provision_pb2

_FOUND = provision_pb2.BATCH_STATUS_FOUND
_NOT_FOUND = provision_pb2.BATCH_STATUS_NOT_FOUND
_REMOVED = provision_pb2.BATCH_STATUS_REMOVED
_INVALID = provision_pb2.BATCH_STATUS_INVALID
RECORDS_FIELD = provision_pb2.BatchLookupResponse.DESCRIPTOR.fields_by_name["records"].number


@dataclass(frozen=True)
class ChunkRead:
    """What a chunk's answer says about its codes (nothing is written yet)."""

    statuses: list[int]  # one per code asked, in order
    framed: bytes  # the records provided, redacted, framed as the answer's ``records``
    removals: list[tuple[int, bytes]]  # (reason, encoded Date) of each 除票 among them, in order
    provided: list[str]  # the 住民票コード of each record provided, in order


def read_chunk(storage: NodeStorage, redactor: BulkRedactor, asked: Sequence[str], by_my_number: bool) -> ChunkRead:
    """Find each code's record (one read transaction) and redact the records found."""
    if by_my_number:
        stored, valid = storage.records.encoded_by_my_numbers(asked), is_valid_my_number
    else:
        stored, valid = storage.records.encoded_many(asked), is_valid_resident_code
    found = [raw for raw in stored if raw is not None]
    redacted = redactor.redact(found, want_codes=by_my_number)
    kept = [_FOUND] * len(found)
    for removal in redacted.removals:
        kept[removal.position] = _REMOVED
    removals = [(r.reason, r.date) for r in redacted.removals]
    if len(found) == len(stored):
        statuses = kept
    else:
        statuses, hit = [], iter(kept)
        for code, raw in zip(asked, stored, strict=True):
            statuses.append((_NOT_FOUND if valid(code) else _INVALID) if raw is None else next(hit))
    if by_my_number:
        assert redacted.resident_codes is not None
        provided = redacted.resident_codes
    elif len(found) == len(stored):
        provided = list(asked)
    else:
        provided = [code for code, raw in zip(asked, stored, strict=True) if raw is not None]
    return ChunkRead(statuses, redacted.framed, removals, provided)


@functools.lru_cache(maxsize=64)
def redactor_for(permitted: frozenset[str]) -> BulkRedactor:
    return BulkRedactor(permitted, RECORDS_FIELD)


def read_chunk_for(storage: NodeStorage, permitted: frozenset[str], asked: list[str], by_my_number: bool) -> ChunkRead:
    """:func:`read_chunk` with the redaction to ``permitted`` (what a reader process is asked to run)."""
    return read_chunk(storage, redactor_for(permitted), asked, by_my_number)
