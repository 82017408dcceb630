import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OriginProgress(_message.Message):
    __slots__ = ("origin", "last_sequence")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    last_sequence: int
    def __init__(self, origin: _Optional[str] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("node_id", "records", "history_entries", "outbox_pending", "provisions", "origins")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_PENDING_FIELD_NUMBER: _ClassVar[int]
    PROVISIONS_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    records: int
    history_entries: int
    outbox_pending: int
    provisions: int
    origins: _containers.RepeatedCompositeFieldContainer[OriginProgress]
    def __init__(self, node_id: _Optional[str] = ..., records: _Optional[int] = ..., history_entries: _Optional[int] = ..., outbox_pending: _Optional[int] = ..., provisions: _Optional[int] = ..., origins: _Optional[_Iterable[_Union[OriginProgress, _Mapping]]] = ...) -> None: ...

class ProvisionEntry(_message.Message):
    __slots__ = ("provision_id", "provided_at", "agency", "business_code", "resident_code", "query_kind")
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDED_AT_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    QUERY_KIND_FIELD_NUMBER: _ClassVar[int]
    provision_id: int
    provided_at: _timestamp_pb2.Timestamp
    agency: str
    business_code: str
    resident_code: str
    query_kind: str
    def __init__(self, provision_id: _Optional[int] = ..., provided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agency: _Optional[str] = ..., business_code: _Optional[str] = ..., resident_code: _Optional[str] = ..., query_kind: _Optional[str] = ...) -> None: ...

class ListProvisionsRequest(_message.Message):
    __slots__ = ("after_id", "limit")
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_id: int
    limit: int
    def __init__(self, after_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListProvisionsResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ProvisionEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[ProvisionEntry, _Mapping]]] = ...) -> None: ...
