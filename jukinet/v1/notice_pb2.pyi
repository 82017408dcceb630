import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import envelope_pb2 as _envelope_pb2
from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeNotice(_message.Message):
    __slots__ = ("origin", "sequence", "record", "recorded_at", "move_out_grant", "former_resident_code")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    MOVE_OUT_GRANT_FIELD_NUMBER: _ClassVar[int]
    FORMER_RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    sequence: int
    record: _identity_pb2.IdentityRecord
    recorded_at: _timestamp_pb2.Timestamp
    move_out_grant: _envelope_pb2.Signed
    former_resident_code: str
    def __init__(self, origin: _Optional[str] = ..., sequence: _Optional[int] = ..., record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., move_out_grant: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., former_resident_code: _Optional[str] = ...) -> None: ...
