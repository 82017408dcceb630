from jukinet.v1 import identity_pb2 as _identity_pb2
from jukinet.v1 import local_pb2 as _local_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordChangeRequest(_message.Message):
    __slots__ = ("record", "local")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    local: _local_pb2.LocalResidentData
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., local: _Optional[_Union[_local_pb2.LocalResidentData, _Mapping]] = ...) -> None: ...

class RecordChangeResponse(_message.Message):
    __slots__ = ("sequence", "record")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    record: _identity_pb2.IdentityRecord
    def __init__(self, sequence: _Optional[int] = ..., record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ...) -> None: ...

class RegisterResidentsRequest(_message.Message):
    __slots__ = ("records", "local")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_identity_pb2.IdentityRecord]
    local: _containers.RepeatedCompositeFieldContainer[_local_pb2.LocalResidentData]
    def __init__(self, records: _Optional[_Iterable[_Union[_identity_pb2.IdentityRecord, _Mapping]]] = ..., local: _Optional[_Iterable[_Union[_local_pb2.LocalResidentData, _Mapping]]] = ...) -> None: ...

class FieldProblem(_message.Message):
    __slots__ = ("field", "message")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    field: str
    message: str
    def __init__(self, field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RefusedRow(_message.Message):
    __slots__ = ("index", "problems")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    index: int
    problems: _containers.RepeatedCompositeFieldContainer[FieldProblem]
    def __init__(self, index: _Optional[int] = ..., problems: _Optional[_Iterable[_Union[FieldProblem, _Mapping]]] = ...) -> None: ...

class RegisterResidentsResponse(_message.Message):
    __slots__ = ("stored", "already_stored", "refused_rows", "first_sequence", "last_sequence", "assigned")
    STORED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_STORED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_ROWS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    stored: int
    already_stored: int
    refused_rows: _containers.RepeatedCompositeFieldContainer[RefusedRow]
    first_sequence: int
    last_sequence: int
    assigned: _containers.RepeatedCompositeFieldContainer[AssignedRow]
    def __init__(self, stored: _Optional[int] = ..., already_stored: _Optional[int] = ..., refused_rows: _Optional[_Iterable[_Union[RefusedRow, _Mapping]]] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., assigned: _Optional[_Iterable[_Union[AssignedRow, _Mapping]]] = ...) -> None: ...

class AssignedRow(_message.Message):
    __slots__ = ("index", "resident_code", "my_number")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    index: int
    resident_code: str
    my_number: str
    def __init__(self, index: _Optional[int] = ..., resident_code: _Optional[str] = ..., my_number: _Optional[str] = ...) -> None: ...

class GetResidentRequest(_message.Message):
    __slots__ = ("resident_code",)
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    def __init__(self, resident_code: _Optional[str] = ...) -> None: ...

class GetResidentResponse(_message.Message):
    __slots__ = ("record", "local")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    local: _local_pb2.LocalResidentData
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., local: _Optional[_Union[_local_pb2.LocalResidentData, _Mapping]] = ...) -> None: ...
