from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentityRecordView(_message.Message):
    __slots__ = ("resident_code", "my_number", "name", "birth_date", "sex", "address", "change_reason", "change_date", "status")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGE_DATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    my_number: str
    name: bytes
    birth_date: bytes
    sex: _identity_pb2.Sex
    address: bytes
    change_reason: _identity_pb2.ChangeReason
    change_date: bytes
    status: _identity_pb2.RecordStatus
    def __init__(self, resident_code: _Optional[str] = ..., my_number: _Optional[str] = ..., name: _Optional[bytes] = ..., birth_date: _Optional[bytes] = ..., sex: _Optional[_Union[_identity_pb2.Sex, str]] = ..., address: _Optional[bytes] = ..., change_reason: _Optional[_Union[_identity_pb2.ChangeReason, str]] = ..., change_date: _Optional[bytes] = ..., status: _Optional[_Union[_identity_pb2.RecordStatus, str]] = ...) -> None: ...
