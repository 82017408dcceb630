from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LookupByResidentCodeRequest(_message.Message):
    __slots__ = ("business_code", "resident_code")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    resident_code: str
    def __init__(self, business_code: _Optional[str] = ..., resident_code: _Optional[str] = ...) -> None: ...

class LookupByResidentCodeResponse(_message.Message):
    __slots__ = ("record", "provision_id", "agency_identifier")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    provision_id: int
    agency_identifier: str
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., provision_id: _Optional[int] = ..., agency_identifier: _Optional[str] = ...) -> None: ...

class LookupByMyNumberRequest(_message.Message):
    __slots__ = ("business_code", "my_number")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    my_number: str
    def __init__(self, business_code: _Optional[str] = ..., my_number: _Optional[str] = ...) -> None: ...

class LookupByMyNumberResponse(_message.Message):
    __slots__ = ("record", "provision_id", "agency_identifier")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    provision_id: int
    agency_identifier: str
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., provision_id: _Optional[int] = ..., agency_identifier: _Optional[str] = ...) -> None: ...

class LookupByAgencyIdentifierRequest(_message.Message):
    __slots__ = ("business_code", "agency_identifier")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    agency_identifier: str
    def __init__(self, business_code: _Optional[str] = ..., agency_identifier: _Optional[str] = ...) -> None: ...

class LookupByAgencyIdentifierResponse(_message.Message):
    __slots__ = ("record", "provision_id", "agency_identifier")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    provision_id: int
    agency_identifier: str
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., provision_id: _Optional[int] = ..., agency_identifier: _Optional[str] = ...) -> None: ...
