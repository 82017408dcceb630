import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MoveOutGrant(_message.Message):
    __slots__ = ("grant_id", "origin", "destination", "resident_codes", "planned_date", "issued_at")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    PLANNED_DATE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    origin: str
    destination: str
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    planned_date: _identity_pb2.Date
    issued_at: _timestamp_pb2.Timestamp
    def __init__(self, grant_id: _Optional[str] = ..., origin: _Optional[str] = ..., destination: _Optional[str] = ..., resident_codes: _Optional[_Iterable[str]] = ..., planned_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
