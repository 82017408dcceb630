from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATUS_UNSPECIFIED: _ClassVar[BatchStatus]
    BATCH_STATUS_FOUND: _ClassVar[BatchStatus]
    BATCH_STATUS_NOT_FOUND: _ClassVar[BatchStatus]
    BATCH_STATUS_REMOVED: _ClassVar[BatchStatus]
    BATCH_STATUS_INVALID: _ClassVar[BatchStatus]
BATCH_STATUS_UNSPECIFIED: BatchStatus
BATCH_STATUS_FOUND: BatchStatus
BATCH_STATUS_NOT_FOUND: BatchStatus
BATCH_STATUS_REMOVED: BatchStatus
BATCH_STATUS_INVALID: BatchStatus

class LookupByResidentCodeRequest(_message.Message):
    __slots__ = ("business_code", "resident_code")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    resident_code: str
    def __init__(self, business_code: _Optional[str] = ..., resident_code: _Optional[str] = ...) -> None: ...

class LookupByResidentCodeResponse(_message.Message):
    __slots__ = ("record", "provision_id")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    provision_id: int
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., provision_id: _Optional[int] = ...) -> None: ...

class LookupByMyNumberRequest(_message.Message):
    __slots__ = ("business_code", "my_number")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    my_number: str
    def __init__(self, business_code: _Optional[str] = ..., my_number: _Optional[str] = ...) -> None: ...

class LookupByMyNumberResponse(_message.Message):
    __slots__ = ("record", "provision_id")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    provision_id: int
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., provision_id: _Optional[int] = ...) -> None: ...

class BatchLookupRequest(_message.Message):
    __slots__ = ("business_code", "chunk_id", "resident_codes", "my_numbers")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    chunk_id: int
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    my_numbers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, business_code: _Optional[str] = ..., chunk_id: _Optional[int] = ..., resident_codes: _Optional[_Iterable[str]] = ..., my_numbers: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchRemoval(_message.Message):
    __slots__ = ("reason", "date")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    reason: _identity_pb2.ChangeReason
    date: _identity_pb2.Date
    def __init__(self, reason: _Optional[_Union[_identity_pb2.ChangeReason, str]] = ..., date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ...) -> None: ...

class BatchLookupResponse(_message.Message):
    __slots__ = ("chunk_id", "statuses", "records", "removals", "first_provision_id", "stream_id")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    REMOVALS_FIELD_NUMBER: _ClassVar[int]
    FIRST_PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    chunk_id: int
    statuses: _containers.RepeatedScalarFieldContainer[BatchStatus]
    records: _containers.RepeatedScalarFieldContainer[bytes]
    removals: _containers.RepeatedCompositeFieldContainer[BatchRemoval]
    first_provision_id: int
    stream_id: str
    def __init__(self, chunk_id: _Optional[int] = ..., statuses: _Optional[_Iterable[_Union[BatchStatus, str]]] = ..., records: _Optional[_Iterable[bytes]] = ..., removals: _Optional[_Iterable[_Union[BatchRemoval, _Mapping]]] = ..., first_provision_id: _Optional[int] = ..., stream_id: _Optional[str] = ...) -> None: ...
