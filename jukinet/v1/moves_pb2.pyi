import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import cards_pb2 as _cards_pb2
from jukinet.v1 import copies_pb2 as _copies_pb2
from jukinet.v1 import envelope_pb2 as _envelope_pb2
from jukinet.v1 import identity_pb2 as _identity_pb2
from jukinet.v1 import local_pb2 as _local_pb2
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

class MovingMember(_message.Message):
    __slots__ = ("record", "local", "card_serials", "dv_measures", "card_auth_sha256")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    CARD_SERIALS_FIELD_NUMBER: _ClassVar[int]
    DV_MEASURES_FIELD_NUMBER: _ClassVar[int]
    CARD_AUTH_SHA256_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    local: _local_pb2.LocalResidentData
    card_serials: _containers.RepeatedScalarFieldContainer[str]
    dv_measures: _containers.RepeatedCompositeFieldContainer[_copies_pb2.DvMeasure]
    card_auth_sha256: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., local: _Optional[_Union[_local_pb2.LocalResidentData, _Mapping]] = ..., card_serials: _Optional[_Iterable[str]] = ..., dv_measures: _Optional[_Iterable[_Union[_copies_pb2.DvMeasure, _Mapping]]] = ..., card_auth_sha256: _Optional[_Iterable[str]] = ...) -> None: ...

class MoveOutCertificate(_message.Message):
    __slots__ = ("grant", "members", "planned_date", "new_address_text", "issued_at")
    GRANT_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PLANNED_DATE_FIELD_NUMBER: _ClassVar[int]
    NEW_ADDRESS_TEXT_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    grant: _envelope_pb2.Signed
    members: _containers.RepeatedCompositeFieldContainer[MovingMember]
    planned_date: _identity_pb2.Date
    new_address_text: str
    issued_at: _timestamp_pb2.Timestamp
    def __init__(self, grant: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., members: _Optional[_Iterable[_Union[MovingMember, _Mapping]]] = ..., planned_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., new_address_text: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MoveInNotice(_message.Message):
    __slots__ = ("grant_id", "origin", "destination", "resident_codes", "move_in_date", "recorded_at", "reason")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    MOVE_IN_DATE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    origin: str
    destination: str
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    move_in_date: _identity_pb2.Date
    recorded_at: _timestamp_pb2.Timestamp
    reason: _identity_pb2.ChangeReason
    def __init__(self, grant_id: _Optional[str] = ..., origin: _Optional[str] = ..., destination: _Optional[str] = ..., resident_codes: _Optional[_Iterable[str]] = ..., move_in_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[_Union[_identity_pb2.ChangeReason, str]] = ...) -> None: ...

class MoveOutState(_message.Message):
    __slots__ = ("grant", "closed")
    GRANT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    grant: _envelope_pb2.Signed
    closed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, grant: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., closed: _Optional[_Iterable[str]] = ...) -> None: ...

class ReceivedMove(_message.Message):
    __slots__ = ("certificate", "moved_in", "received_at")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    MOVED_IN_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    certificate: _envelope_pb2.Signed
    moved_in: _containers.RepeatedScalarFieldContainer[str]
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, certificate: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., moved_in: _Optional[_Iterable[str]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MoveOutRequest(_message.Message):
    __slots__ = ("resident_codes", "destination_municipality_code", "planned_date", "new_address_text")
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    PLANNED_DATE_FIELD_NUMBER: _ClassVar[int]
    NEW_ADDRESS_TEXT_FIELD_NUMBER: _ClassVar[int]
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    destination_municipality_code: str
    planned_date: _identity_pb2.Date
    new_address_text: str
    def __init__(self, resident_codes: _Optional[_Iterable[str]] = ..., destination_municipality_code: _Optional[str] = ..., planned_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., new_address_text: _Optional[str] = ...) -> None: ...

class MoveOutResponse(_message.Message):
    __slots__ = ("grant_id", "first_sequence", "last_sequence", "grant")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    first_sequence: int
    last_sequence: int
    grant: _envelope_pb2.Signed
    def __init__(self, grant_id: _Optional[str] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., grant: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ...) -> None: ...

class MoveInRequest(_message.Message):
    __slots__ = ("grant_id", "resident_codes", "move_in_date", "address_text", "card")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    MOVE_IN_DATE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_TEXT_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    move_in_date: _identity_pb2.Date
    address_text: str
    card: _cards_pb2.CardPresentation
    def __init__(self, grant_id: _Optional[str] = ..., resident_codes: _Optional[_Iterable[str]] = ..., move_in_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., address_text: _Optional[str] = ..., card: _Optional[_Union[_cards_pb2.CardPresentation, _Mapping]] = ...) -> None: ...

class MoveInResponse(_message.Message):
    __slots__ = ("first_sequence", "last_sequence", "records")
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    first_sequence: int
    last_sequence: int
    records: _containers.RepeatedCompositeFieldContainer[_identity_pb2.IdentityRecord]
    def __init__(self, first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., records: _Optional[_Iterable[_Union[_identity_pb2.IdentityRecord, _Mapping]]] = ...) -> None: ...
