import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CodeBlock(_message.Message):
    __slots__ = ("cs", "block", "codes", "issued_at", "replaces")
    CS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    cs: str
    block: int
    codes: _containers.RepeatedScalarFieldContainer[str]
    issued_at: _timestamp_pb2.Timestamp
    replaces: str
    def __init__(self, cs: _Optional[str] = ..., block: _Optional[int] = ..., codes: _Optional[_Iterable[str]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replaces: _Optional[str] = ...) -> None: ...

class DesignateCodesRequest(_message.Message):
    __slots__ = ("request_id", "count")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    count: int
    def __init__(self, request_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class DesignateCodesResponse(_message.Message):
    __slots__ = ("block",)
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    block: _envelope_pb2.Signed
    def __init__(self, block: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ...) -> None: ...

class AssignedNumber(_message.Message):
    __slots__ = ("resident_code", "my_number")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    my_number: str
    def __init__(self, resident_code: _Optional[str] = ..., my_number: _Optional[str] = ...) -> None: ...

class AssignMyNumbersRequest(_message.Message):
    __slots__ = ("resident_codes",)
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resident_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class AssignMyNumbersResponse(_message.Message):
    __slots__ = ("numbers",)
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    numbers: _containers.RepeatedCompositeFieldContainer[AssignedNumber]
    def __init__(self, numbers: _Optional[_Iterable[_Union[AssignedNumber, _Mapping]]] = ...) -> None: ...

class ChangeMyNumberRequest(_message.Message):
    __slots__ = ("resident_code", "my_number")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    my_number: str
    def __init__(self, resident_code: _Optional[str] = ..., my_number: _Optional[str] = ...) -> None: ...

class ChangeMyNumberResponse(_message.Message):
    __slots__ = ("assigned",)
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    assigned: AssignedNumber
    def __init__(self, assigned: _Optional[_Union[AssignedNumber, _Mapping]] = ...) -> None: ...

class ChangeResidentCodeRequest(_message.Message):
    __slots__ = ("resident_code", "request_id")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    request_id: str
    def __init__(self, resident_code: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChangeResidentCodeResponse(_message.Message):
    __slots__ = ("old_resident_code", "block", "my_number")
    OLD_RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    old_resident_code: str
    block: _envelope_pb2.Signed
    my_number: str
    def __init__(self, old_resident_code: _Optional[str] = ..., block: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., my_number: _Optional[str] = ...) -> None: ...
