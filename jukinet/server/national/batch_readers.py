"""The read half of a batch chunk (定期照会): each code's stored record found and redacted to the row's fields.

It is most of a chunk's cost — LMDB random reads (a few microseconds each on a store of millions: memory
latency, not computation) and the redaction — so the node runs it in its reader processes
(:mod:`jukinet.server.runtime.readers`), several chunks at once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_not, not_

from jukinet.domain.bulk_redaction import BulkRedactor
from jukinet.domain.codes import is_valid_my_number, is_valid_resident_code
from jukinet.domain.legal import agency_identifier_problem
from jukinet.server.national.agency_identifiers import resolve_in
from jukinet.storage import NodeStorage
from jukinet.storage.agency_identifiers import AgencyIdentifierStore
from jukinet.v1 import provision_pb2

_FOUND = provision_pb2.BATCH_STATUS_FOUND
_NOT_FOUND = provision_pb2.BATCH_STATUS_NOT_FOUND
_REMOVED = provision_pb2.BATCH_STATUS_REMOVED
_INVALID = provision_pb2.BATCH_STATUS_INVALID
_PROVIDED = frozenset({_FOUND, _REMOVED})
RECORDS_FIELD = provision_pb2.BatchLookupResponse.DESCRIPTOR.fields_by_name["records"].number


@dataclass(frozen=True)
class ChunkRead:
    """What a chunk's answer says about its codes (nothing is written yet)."""

    statuses: bytes  # one per code asked, in order (a status fits a byte: one object to pickle, not a list)
    framed: bytes  # the records provided, redacted, framed as the answer's ``records``
    removals: list[tuple[int, bytes]]  # (reason, encoded Date) of each 除票 among them, in order
    provided_codes: list[str] | None  # by My Number: the 住民票コード of each record provided, in order

    def provided(self, asked: Sequence[str]) -> list[str]:
        """The 住民票コード of each record provided, in order (by 住民票コード: those asked that were found)."""
        if self.provided_codes is not None:
            return self.provided_codes
        return list(compress(asked, map(_PROVIDED.__contains__, self.statuses)))


def read_chunk(
    storage: NodeStorage,
    redactor: BulkRedactor,
    asked: Sequence[str],
    by_my_number: bool,
    stored: list[bytes | None] | None = None,
) -> ChunkRead:
    """Find each code's record (one read transaction; ``stored``: already read, in the caller's) and redact
    the records found."""
    valid = is_valid_my_number if by_my_number else is_valid_resident_code
    if stored is None:
        stored = storage.records.encoded_by_my_numbers(asked) if by_my_number else storage.records.encoded_many(asked)
    # Every step over the chunk is a C-level map or compress; Python loops only over the exceptions
    # (codes not found, 除票).
    held = list(map(is_not, stored, repeat(None)))
    found = list(compress(stored, held))
    redacted = redactor.redact(found, want_codes=by_my_number)
    statuses = [_FOUND] * len(stored)
    where = list(compress(range(len(stored)), held)) if len(found) < len(stored) else None
    for removal in redacted.removals:
        statuses[removal.position if where is None else where[removal.position]] = _REMOVED
    if where is not None:
        for i in compress(range(len(stored)), map(not_, held)):
            statuses[i] = _NOT_FOUND if valid(asked[i]) else _INVALID
    removals = [(r.reason, r.date) for r in redacted.removals]
    provided = redacted.resident_codes if by_my_number else None
    return ChunkRead(bytes(statuses), redacted.framed, removals, provided)


@functools.lru_cache(maxsize=64)
def redactor_for(permitted: frozenset[str]) -> BulkRedactor:
    return BulkRedactor(permitted, RECORDS_FIELD)


def read_chunk_for(storage: NodeStorage, permitted: frozenset[str], asked: list[str], by_my_number: bool) -> ChunkRead:
    """:func:`read_chunk` with the redaction to ``permitted`` (what a reader process is asked to run)."""
    return read_chunk(storage, redactor_for(permitted), asked, by_my_number)


def read_identified_chunk_for(
    storage: NodeStorage, permitted: frozenset[str], corporate: str, identifiers: list[str]
) -> ChunkRead:
    """A chunk of agency identifiers (機関別符号) of agency ``corporate``: each resolved to its resident's
    current code (one read transaction), then read as those codes are. A malformed identifier is INVALID; one
    that names nobody for this agency (another agency's is indistinguishable from a made-up one) NOT_FOUND.
    ``permitted`` never holds the numbers (a pseudonymous row's): the agency matches records by position."""
    store = AgencyIdentifierStore(storage.env)
    with storage.env.read() as txn:  # one snapshot: a 住民票コード変更 cannot fall between resolving and reading
        resolve = functools.partial(resolve_in, txn, storage, store, corporate)
        resolved = ["" if agency_identifier_problem(i) else (resolve(i) or "") for i in identifiers]
        stored = storage.records.encoded_in(txn, resolved)
    read = read_chunk(storage, redactor_for(permitted), resolved, by_my_number=False, stored=stored)
    statuses = bytearray(read.statuses)
    for position, (identifier, code) in enumerate(zip(identifiers, resolved, strict=True)):
        if not code:
            statuses[position] = _INVALID if agency_identifier_problem(identifier) else _NOT_FOUND
    return ChunkRead(bytes(statuses), read.framed, read.removals, read.provided(resolved))
