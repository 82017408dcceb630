import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import directory_pb2 as _directory_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_STATE_UNSPECIFIED: _ClassVar[LinkState]
    LINK_STATE_CONNECTING: _ClassVar[LinkState]
    LINK_STATE_UP: _ClassVar[LinkState]
    LINK_STATE_BACKING_OFF: _ClassVar[LinkState]
    LINK_STATE_STOPPED: _ClassVar[LinkState]

class QueryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_KIND_UNSPECIFIED: _ClassVar[QueryKind]
    QUERY_KIND_RESIDENT_CODE: _ClassVar[QueryKind]
    QUERY_KIND_MY_NUMBER: _ClassVar[QueryKind]
    QUERY_KIND_FOUR_ITEMS: _ClassVar[QueryKind]
    QUERY_KIND_AGENCY_IDENTIFIER: _ClassVar[QueryKind]
    QUERY_KIND_BATCH: _ClassVar[QueryKind]
    QUERY_KIND_PUSH: _ClassVar[QueryKind]
LINK_STATE_UNSPECIFIED: LinkState
LINK_STATE_CONNECTING: LinkState
LINK_STATE_UP: LinkState
LINK_STATE_BACKING_OFF: LinkState
LINK_STATE_STOPPED: LinkState
QUERY_KIND_UNSPECIFIED: QueryKind
QUERY_KIND_RESIDENT_CODE: QueryKind
QUERY_KIND_MY_NUMBER: QueryKind
QUERY_KIND_FOUR_ITEMS: QueryKind
QUERY_KIND_AGENCY_IDENTIFIER: QueryKind
QUERY_KIND_BATCH: QueryKind
QUERY_KIND_PUSH: QueryKind

class GetStatusRequest(_message.Message):
    __slots__ = ("inbound",)
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    inbound: bool
    def __init__(self, inbound: _Optional[bool] = ...) -> None: ...

class LinkStatus(_message.Message):
    __slots__ = ("destination", "address", "state", "pending", "last_receipted_sequence", "last_enqueued_sequence", "batches_delivered", "connects", "consecutive_failures", "last_error", "retry_in_ms", "quarantined")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    LAST_RECEIPTED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_ENQUEUED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BATCHES_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    CONNECTS_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_IN_MS_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    destination: str
    address: str
    state: LinkState
    pending: int
    last_receipted_sequence: int
    last_enqueued_sequence: int
    batches_delivered: int
    connects: int
    consecutive_failures: int
    last_error: str
    retry_in_ms: int
    quarantined: int
    def __init__(self, destination: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[_Union[LinkState, str]] = ..., pending: _Optional[int] = ..., last_receipted_sequence: _Optional[int] = ..., last_enqueued_sequence: _Optional[int] = ..., batches_delivered: _Optional[int] = ..., connects: _Optional[int] = ..., consecutive_failures: _Optional[int] = ..., last_error: _Optional[str] = ..., retry_in_ms: _Optional[int] = ..., quarantined: _Optional[int] = ...) -> None: ...

class InboundProgress(_message.Message):
    __slots__ = ("sender", "destination", "last_sequence")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sender: str
    destination: str
    last_sequence: int
    def __init__(self, sender: _Optional[str] = ..., destination: _Optional[str] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("node_ids", "records", "history_entries", "queued", "provisions", "links", "inbound", "directory")
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    PROVISIONS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    records: int
    history_entries: int
    queued: int
    provisions: int
    links: _containers.RepeatedCompositeFieldContainer[LinkStatus]
    inbound: _containers.RepeatedCompositeFieldContainer[InboundProgress]
    directory: _directory_pb2.DirectoryStatus
    def __init__(self, node_ids: _Optional[_Iterable[str]] = ..., records: _Optional[int] = ..., history_entries: _Optional[int] = ..., queued: _Optional[int] = ..., provisions: _Optional[int] = ..., links: _Optional[_Iterable[_Union[LinkStatus, _Mapping]]] = ..., inbound: _Optional[_Iterable[_Union[InboundProgress, _Mapping]]] = ..., directory: _Optional[_Union[_directory_pb2.DirectoryStatus, _Mapping]] = ...) -> None: ...

class ProvisionEntry(_message.Message):
    __slots__ = ("provision_id", "provided_at", "agency", "business_code", "resident_code", "query_kind", "items", "reference")
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDED_AT_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    QUERY_KIND_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    provision_id: int
    provided_at: _timestamp_pb2.Timestamp
    agency: str
    business_code: str
    resident_code: str
    query_kind: QueryKind
    items: _containers.RepeatedScalarFieldContainer[str]
    reference: str
    def __init__(self, provision_id: _Optional[int] = ..., provided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agency: _Optional[str] = ..., business_code: _Optional[str] = ..., resident_code: _Optional[str] = ..., query_kind: _Optional[_Union[QueryKind, str]] = ..., items: _Optional[_Iterable[str]] = ..., reference: _Optional[str] = ...) -> None: ...

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

class QuarantinedItem(_message.Message):
    __slots__ = ("destination", "position", "kind", "summary", "problem", "reason", "quarantined_at", "item", "size")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_AT_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    destination: str
    position: int
    kind: str
    summary: str
    problem: str
    reason: str
    quarantined_at: _timestamp_pb2.Timestamp
    item: bytes
    size: int
    def __init__(self, destination: _Optional[str] = ..., position: _Optional[int] = ..., kind: _Optional[str] = ..., summary: _Optional[str] = ..., problem: _Optional[str] = ..., reason: _Optional[str] = ..., quarantined_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., item: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class ListQuarantineRequest(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: str
    def __init__(self, destination: _Optional[str] = ...) -> None: ...

class ListQuarantineResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[QuarantinedItem]
    def __init__(self, items: _Optional[_Iterable[_Union[QuarantinedItem, _Mapping]]] = ...) -> None: ...

class RetryQuarantinedRequest(_message.Message):
    __slots__ = ("destination", "positions")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    destination: str
    positions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, destination: _Optional[str] = ..., positions: _Optional[_Iterable[int]] = ...) -> None: ...

class RetryQuarantinedResponse(_message.Message):
    __slots__ = ("items", "first_position")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    items: int
    first_position: int
    def __init__(self, items: _Optional[int] = ..., first_position: _Optional[int] = ...) -> None: ...

class DropQuarantinedRequest(_message.Message):
    __slots__ = ("destination", "positions")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    destination: str
    positions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, destination: _Optional[str] = ..., positions: _Optional[_Iterable[int]] = ...) -> None: ...

class DropQuarantinedResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: int
    def __init__(self, items: _Optional[int] = ...) -> None: ...
