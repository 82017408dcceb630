from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Normalisation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NORMALISATION_UNSPECIFIED: _ClassVar[Normalisation]
    NORMALISATION_WIDTH: _ClassVar[Normalisation]
    NORMALISATION_HIRAGANA: _ClassVar[Normalisation]
    NORMALISATION_SMALL_KANA: _ClassVar[Normalisation]
    NORMALISATION_LONG_VOWEL: _ClassVar[Normalisation]
    NORMALISATION_SPACES: _ClassVar[Normalisation]
    NORMALISATION_KANJI_VARIANT: _ClassVar[Normalisation]
    NORMALISATION_DASHES: _ClassVar[Normalisation]

class ItemMatch(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_MATCH_UNSPECIFIED: _ClassVar[ItemMatch]
    ITEM_MATCH_NOT_GIVEN: _ClassVar[ItemMatch]
    ITEM_MATCH_EXACT: _ClassVar[ItemMatch]
    ITEM_MATCH_NORMALISED: _ClassVar[ItemMatch]
    ITEM_MATCH_LEADING: _ClassVar[ItemMatch]
    ITEM_MATCH_DIFFERS: _ClassVar[ItemMatch]

class BatchStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATUS_UNSPECIFIED: _ClassVar[BatchStatus]
    BATCH_STATUS_FOUND: _ClassVar[BatchStatus]
    BATCH_STATUS_NOT_FOUND: _ClassVar[BatchStatus]
    BATCH_STATUS_REMOVED: _ClassVar[BatchStatus]
    BATCH_STATUS_INVALID: _ClassVar[BatchStatus]
NORMALISATION_UNSPECIFIED: Normalisation
NORMALISATION_WIDTH: Normalisation
NORMALISATION_HIRAGANA: Normalisation
NORMALISATION_SMALL_KANA: Normalisation
NORMALISATION_LONG_VOWEL: Normalisation
NORMALISATION_SPACES: Normalisation
NORMALISATION_KANJI_VARIANT: Normalisation
NORMALISATION_DASHES: Normalisation
ITEM_MATCH_UNSPECIFIED: ItemMatch
ITEM_MATCH_NOT_GIVEN: ItemMatch
ITEM_MATCH_EXACT: ItemMatch
ITEM_MATCH_NORMALISED: ItemMatch
ITEM_MATCH_LEADING: ItemMatch
ITEM_MATCH_DIFFERS: ItemMatch
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

class SearchByFourItemsRequest(_message.Message):
    __slots__ = ("business_code", "name", "kana", "birth_date", "sex", "municipality_code", "address_text")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KANA_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_TEXT_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    name: str
    kana: str
    birth_date: _identity_pb2.Date
    sex: _identity_pb2.Sex
    municipality_code: str
    address_text: str
    def __init__(self, business_code: _Optional[str] = ..., name: _Optional[str] = ..., kana: _Optional[str] = ..., birth_date: _Optional[_Union[_identity_pb2.Date, _Mapping]] = ..., sex: _Optional[_Union[_identity_pb2.Sex, str]] = ..., municipality_code: _Optional[str] = ..., address_text: _Optional[str] = ...) -> None: ...

class TextItemMatch(_message.Message):
    __slots__ = ("match", "normalisations")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    NORMALISATIONS_FIELD_NUMBER: _ClassVar[int]
    match: ItemMatch
    normalisations: _containers.RepeatedScalarFieldContainer[Normalisation]
    def __init__(self, match: _Optional[_Union[ItemMatch, str]] = ..., normalisations: _Optional[_Iterable[_Union[Normalisation, str]]] = ...) -> None: ...

class FourItemsCandidate(_message.Message):
    __slots__ = ("record", "provision_id", "removed", "name", "kana", "municipality", "address_text", "agency_identifier")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KANA_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_TEXT_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    record: _identity_pb2.IdentityRecord
    provision_id: int
    removed: bool
    name: TextItemMatch
    kana: TextItemMatch
    municipality: ItemMatch
    address_text: TextItemMatch
    agency_identifier: str
    def __init__(self, record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., provision_id: _Optional[int] = ..., removed: _Optional[bool] = ..., name: _Optional[_Union[TextItemMatch, _Mapping]] = ..., kana: _Optional[_Union[TextItemMatch, _Mapping]] = ..., municipality: _Optional[_Union[ItemMatch, str]] = ..., address_text: _Optional[_Union[TextItemMatch, _Mapping]] = ..., agency_identifier: _Optional[str] = ...) -> None: ...

class SearchByFourItemsResponse(_message.Message):
    __slots__ = ("search_id", "candidates")
    SEARCH_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    search_id: str
    candidates: _containers.RepeatedCompositeFieldContainer[FourItemsCandidate]
    def __init__(self, search_id: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[FourItemsCandidate, _Mapping]]] = ...) -> None: ...

class BatchLookupRequest(_message.Message):
    __slots__ = ("business_code", "chunk_id", "resident_codes", "my_numbers", "agency_identifiers")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    MY_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    chunk_id: int
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    my_numbers: _containers.RepeatedScalarFieldContainer[str]
    agency_identifiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, business_code: _Optional[str] = ..., chunk_id: _Optional[int] = ..., resident_codes: _Optional[_Iterable[str]] = ..., my_numbers: _Optional[_Iterable[str]] = ..., agency_identifiers: _Optional[_Iterable[str]] = ...) -> None: ...

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
