import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import cards_pb2 as _cards_pb2
from jukinet.v1 import envelope_pb2 as _envelope_pb2
from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DvScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DV_SCOPE_UNSPECIFIED: _ClassVar[DvScope]
    DV_SCOPE_ALL_REQUESTS: _ClassVar[DvScope]
    DV_SCOPE_MUNICIPALITIES: _ClassVar[DvScope]
DV_SCOPE_UNSPECIFIED: DvScope
DV_SCOPE_ALL_REQUESTS: DvScope
DV_SCOPE_MUNICIPALITIES: DvScope

class CopyRequest(_message.Message):
    __slots__ = ("requesting_cs", "home_cs", "resident_code", "include_resident_code", "include_my_number", "requested_at", "nonce")
    REQUESTING_CS_FIELD_NUMBER: _ClassVar[int]
    HOME_CS_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    requesting_cs: str
    home_cs: str
    resident_code: str
    include_resident_code: bool
    include_my_number: bool
    requested_at: _timestamp_pb2.Timestamp
    nonce: bytes
    def __init__(self, requesting_cs: _Optional[str] = ..., home_cs: _Optional[str] = ..., resident_code: _Optional[str] = ..., include_resident_code: _Optional[bool] = ..., include_my_number: _Optional[bool] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class CertifiedCopy(_message.Message):
    __slots__ = ("serial", "issuer", "requesting_cs", "issued_at", "request_sha256", "name", "birth_date", "sex", "address", "change_reason", "change_date", "head_of_household", "relationship", "resident_code", "my_number")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    REQUESTING_CS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGE_DATE_FIELD_NUMBER: _ClassVar[int]
    HEAD_OF_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    serial: int
    issuer: str
    requesting_cs: str
    issued_at: _timestamp_pb2.Timestamp
    request_sha256: bytes
    name: _identity_pb2.PersonName
    birth_date: _identity_pb2.Date
    sex: _identity_pb2.Sex
    address: _identity_pb2.Address
    change_reason: _identity_pb2.ChangeReason
    change_date: _identity_pb2.Date
    head_of_household: str
    relationship: str
    resident_code: str
    my_number: str
    def __init__(self, serial: _Optional[int] = ..., issuer: _Optional[str] = ..., requesting_cs: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_sha256: _Optional[bytes] = ..., name: _Optional[_Union[_identity_pb2.PersonName, _Mapping]] = ..., birth_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., sex: _Optional[_Union[_identity_pb2.Sex, str]] = ..., address: _Optional[_Union[_identity_pb2.Address, _Mapping]] = ..., change_reason: _Optional[_Union[_identity_pb2.ChangeReason, str]] = ..., change_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., head_of_household: _Optional[str] = ..., relationship: _Optional[str] = ..., resident_code: _Optional[str] = ..., my_number: _Optional[str] = ...) -> None: ...

class CopyIssuance(_message.Message):
    __slots__ = ("serial", "resident_code", "requesting_cs", "issued_at", "resident_code_included", "my_number_included", "request_sha256")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUESTING_CS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_INCLUDED_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBER_INCLUDED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    serial: int
    resident_code: str
    requesting_cs: str
    issued_at: _timestamp_pb2.Timestamp
    resident_code_included: bool
    my_number_included: bool
    request_sha256: bytes
    def __init__(self, serial: _Optional[int] = ..., resident_code: _Optional[str] = ..., requesting_cs: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resident_code_included: _Optional[bool] = ..., my_number_included: _Optional[bool] = ..., request_sha256: _Optional[bytes] = ...) -> None: ...

class DvMeasure(_message.Message):
    __slots__ = ("measure_id", "resident_code", "scope", "municipalities", "registered_at", "registered_by")
    MEASURE_ID_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITIES_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_BY_FIELD_NUMBER: _ClassVar[int]
    measure_id: int
    resident_code: str
    scope: DvScope
    municipalities: _containers.RepeatedScalarFieldContainer[str]
    registered_at: _timestamp_pb2.Timestamp
    registered_by: str
    def __init__(self, measure_id: _Optional[int] = ..., resident_code: _Optional[str] = ..., scope: _Optional[_Union[DvScope, str]] = ..., municipalities: _Optional[_Iterable[str]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., registered_by: _Optional[str] = ...) -> None: ...

class RequestCopyRequest(_message.Message):
    __slots__ = ("request", "card")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    request: bytes
    card: _cards_pb2.CardPresentation
    def __init__(self, request: _Optional[bytes] = ..., card: _Optional[_Union[_cards_pb2.CardPresentation, _Mapping]] = ...) -> None: ...

class RequestCopyResponse(_message.Message):
    __slots__ = ("copy", "certified_copy")
    COPY_FIELD_NUMBER: _ClassVar[int]
    CERTIFIED_COPY_FIELD_NUMBER: _ClassVar[int]
    copy: _envelope_pb2.Signed
    certified_copy: CertifiedCopy
    def __init__(self, copy: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., certified_copy: _Optional[_Union[CertifiedCopy, _Mapping]] = ...) -> None: ...

class ListCopyIssuancesRequest(_message.Message):
    __slots__ = ("resident_code", "after_serial", "limit")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    AFTER_SERIAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    after_serial: int
    limit: int
    def __init__(self, resident_code: _Optional[str] = ..., after_serial: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListCopyIssuancesResponse(_message.Message):
    __slots__ = ("issuances",)
    ISSUANCES_FIELD_NUMBER: _ClassVar[int]
    issuances: _containers.RepeatedCompositeFieldContainer[CopyIssuance]
    def __init__(self, issuances: _Optional[_Iterable[_Union[CopyIssuance, _Mapping]]] = ...) -> None: ...

class IssueCopyRequest(_message.Message):
    __slots__ = ("request", "card")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    request: bytes
    card: _cards_pb2.CardPresentation
    def __init__(self, request: _Optional[bytes] = ..., card: _Optional[_Union[_cards_pb2.CardPresentation, _Mapping]] = ...) -> None: ...

class IssueCopyResponse(_message.Message):
    __slots__ = ("copy",)
    COPY_FIELD_NUMBER: _ClassVar[int]
    copy: _envelope_pb2.Signed
    def __init__(self, copy: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ...) -> None: ...

class RegisterDvMeasureRequest(_message.Message):
    __slots__ = ("resident_code", "scope", "municipalities")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITIES_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    scope: DvScope
    municipalities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resident_code: _Optional[str] = ..., scope: _Optional[_Union[DvScope, str]] = ..., municipalities: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterDvMeasureResponse(_message.Message):
    __slots__ = ("measure",)
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    measure: DvMeasure
    def __init__(self, measure: _Optional[_Union[DvMeasure, _Mapping]] = ...) -> None: ...

class ListDvMeasuresRequest(_message.Message):
    __slots__ = ("resident_code",)
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    def __init__(self, resident_code: _Optional[str] = ...) -> None: ...

class ListDvMeasuresResponse(_message.Message):
    __slots__ = ("measures",)
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    measures: _containers.RepeatedCompositeFieldContainer[DvMeasure]
    def __init__(self, measures: _Optional[_Iterable[_Union[DvMeasure, _Mapping]]] = ...) -> None: ...

class RemoveDvMeasureRequest(_message.Message):
    __slots__ = ("resident_code", "measure_id")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MEASURE_ID_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    measure_id: int
    def __init__(self, resident_code: _Optional[str] = ..., measure_id: _Optional[int] = ...) -> None: ...

class RemoveDvMeasureResponse(_message.Message):
    __slots__ = ("measure",)
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    measure: DvMeasure
    def __init__(self, measure: _Optional[_Union[DvMeasure, _Mapping]] = ...) -> None: ...
