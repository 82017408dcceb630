"""A legal-table row's redaction (:meth:`jukinet.domain.legal.TableRow.redact`) over a whole chunk of stored
records at once, inside protobuf's C parser: the cost of a batch answer is per chunk, not per record.

How: the chunk's stored records are framed as the repeated field ``records`` of an *envelope* message whose
record type declares only the fields the row permits (message fields as bytes, enums as int32: the same
wire types, nothing decoded). Parsing the envelope leaves every other field, known or not, as an unknown
field of its record; one ``DiscardUnknownFields`` drops them all; serializing the envelope gives the
records redacted, already framed as field ``records`` — byte for byte the redaction of each record
serialized again (tests/test_bulk_redaction.py compares the two on random records). The envelope and
record types are built at run time from ``IdentityRecord``'s own descriptor, one pair per set of
permitted fields, in a descriptor pool of their own.

Which records are 除票 (removed) is found without parsing most of them: a record whose status is
REMOVED holds the bytes of that field (tag of field ``status``, value), so only the records that hold
those two bytes somewhere are parsed to be sure.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from jukinet.domain.wire import Framer
from jukinet.v1 import identity_pb2

_RECORD = identity_pb2.IdentityRecord.DESCRIPTOR
_STATUS = _RECORD.fields_by_name["status"]
_REMOVED_BYTES = bytes(((_STATUS.number << 3) | 0, identity_pb2.RECORD_STATUS_REMOVED))
_CHANGE_FIELDS = frozenset({"status", "change_reason", "change_date"})


@dataclass(frozen=True)
class Removal:
    """A 除票 among the chunk's records: its position, reason and date (a ``Date``, encoded)."""

    position: int
    reason: int
    date: bytes


@dataclass(frozen=True)
class RedactedChunk:
    framed: bytes  # the redacted records as the repeated bytes field ``records`` (its tags and lengths)
    removals: list[Removal]
    resident_codes: list[str] | None  # each record's 住民票コード, when asked for


class BulkRedactor:
    """Redact many stored ``IdentityRecord`` bytes to the fields in ``permitted`` at once; the result is
    framed as field number ``field`` (the answer's ``repeated bytes records``)."""

    def __init__(self, permitted: frozenset[str], field: int) -> None:
        unknown = permitted - set(_RECORD.fields_by_name)
        if unknown:
            raise ValueError(f"IdentityRecord has no fields {sorted(unknown)}")
        self.permitted = permitted
        self.field = field
        self.frame = Framer(field)
        self._projection = record_projection(permitted, field)
        self._change = record_projection(_CHANGE_FIELDS, field)
        self._codes = record_projection(frozenset({"resident_code"}), field)

    def redact(self, stored: Sequence[bytes], want_codes: bool = False) -> RedactedChunk:
        framed = self.frame(stored)
        envelope = self._projection.FromString(framed)
        envelope.DiscardUnknownFields()
        holds = map(bytes.__contains__, stored, itertools.repeat(_REMOVED_BYTES))
        suspects = list(itertools.compress(range(len(stored)), holds))
        removals = []
        for position in suspects:
            record = self._change.FromString(self.frame([stored[position]])).records[0]
            if record.status == identity_pb2.RECORD_STATUS_REMOVED:
                removals.append(Removal(position, record.change_reason, record.change_date))
        codes = None
        if want_codes:
            codes = [r.resident_code for r in self._codes.FromString(framed).records]
        return RedactedChunk(envelope.SerializeToString(), removals, codes)


@functools.lru_cache(maxsize=64)
def record_projection(fields: frozenset[str], number: int) -> type[Message]:
    """An envelope type whose field ``number`` (``records``) repeats a record of ``fields`` of IdentityRecord
    (message fields as bytes, enums as int32), in a descriptor pool of its own. Parsing a message whose
    field ``number`` holds encoded records (a batch answer) as this type reads those fields of every record
    in one call; its other fields are kept as unknown."""
    name = "Projection_" + "_".join(sorted(fields))
    proto = descriptor_pb2.FileDescriptorProto(name=f"{name}.proto", package="jukinet.projection", syntax="proto3")
    record = proto.message_type.add(name="Record")
    for field in _RECORD.fields:
        if field.name not in fields:
            continue
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            kind = FieldDescriptor.TYPE_BYTES
        elif kind == FieldDescriptor.TYPE_ENUM:
            kind = FieldDescriptor.TYPE_INT32
        record.field.add(name=field.name, number=field.number, type=kind, label=FieldDescriptor.LABEL_OPTIONAL)
    envelope = proto.message_type.add(name="Envelope")
    envelope.field.add(
        name="records",
        number=number,
        type=FieldDescriptor.TYPE_MESSAGE,
        label=FieldDescriptor.LABEL_REPEATED,
        type_name=".jukinet.projection.Record",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("jukinet.projection.Envelope"))
