"""Change notices at the tiers above the CS: what a notice must satisfy, and how it is stored.

Shared by the prefecture and national servers. A notice must come from the CS it names as its
origin, describe a resident of that CS's municipality, and be a valid record whose status follows
from its reason; storing it updates the latest record (unless it is a late removal, see
:func:`jukinet.domain.changes.replaces_current`) and appends it to the resident's history.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import lmdb

from jukinet.domain.changes import replaces_current
from jukinet.domain.errors import ItemRefused, Problem
from jukinet.domain.limits import MAX_NOTICE_BYTES
from jukinet.domain.node_ids import NodeId
from jukinet.domain.records import reason_name, status_for, validate_record
from jukinet.storage import NodeStorage
from jukinet.v1 import notice_pb2


def check_notices(notices: Sequence[tuple[int, notice_pb2.ChangeNotice]], origin: NodeId, today: datetime.date) -> None:
    """Every notice is ``origin``'s to send and valid; ItemRefused (DENIED or INVALID) at the first that is not."""
    municipality, origin_id = origin.code, str(origin)
    for position, notice in notices:
        size = notice.ByteSize()
        if size > MAX_NOTICE_BYTES:  # unknown fields count: a padded notice does not travel on
            raise ItemRefused(
                Problem.INVALID, f"notice #{position} is {size} bytes encoded; at most {MAX_NOTICE_BYTES}", position
            )
        if notice.origin != origin_id:
            raise ItemRefused(
                Problem.DENIED,
                f"notice #{position} ({notice.origin}#{notice.sequence}) did not originate at {origin}",
                position,
            )
        record = notice.record
        if record.address.municipality_code != municipality:
            raise ItemRefused(
                Problem.DENIED,
                f"notice #{position}: {origin} may not send records of municipality "
                f"{record.address.municipality_code} (resident {record.resident_code})",
                position,
            )
        problems = validate_record(record, today=today)
        if not problems and record.status != status_for(record.change_reason):
            problems.append(
                f"status {record.status} does not follow from the change reason {reason_name(record.change_reason)}"
            )
        if problems:
            raise ItemRefused(
                Problem.INVALID,
                f"notice #{position} ({notice.origin}#{notice.sequence}): {'; '.join(problems)}",
                position,
            )


class ChangeWriter:
    """Stores change notices: the latest record (with the My Number index) and the history."""

    def __init__(self, storage: NodeStorage) -> None:
        self._storage = storage

    def apply(self, txn: lmdb.Transaction, notices: Sequence[notice_pb2.ChangeNotice]) -> None:
        records, history = self._storage.records, self._storage.history
        first = history.reserve(txn, len(notices))
        for i, notice in enumerate(notices):
            record = notice.record
            current = records.current(txn, record.resident_code)
            if replaces_current(current, record):
                records.put(txn, record, current)
            history.append(txn, record.resident_code, notice.SerializeToString(), first + i)
