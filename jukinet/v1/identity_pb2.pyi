from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]

class ChangeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_REASON_UNSPECIFIED: _ClassVar[ChangeReason]
    CHANGE_REASON_MOVE_IN: _ClassVar[ChangeReason]
    CHANGE_REASON_SPECIAL_MOVE_IN: _ClassVar[ChangeReason]
    CHANGE_REASON_MOVE_OUT: _ClassVar[ChangeReason]
    CHANGE_REASON_EMIGRATION: _ClassVar[ChangeReason]
    CHANGE_REASON_RELOCATION: _ClassVar[ChangeReason]
    CHANGE_REASON_BIRTH: _ClassVar[ChangeReason]
    CHANGE_REASON_DEATH: _ClassVar[ChangeReason]
    CHANGE_REASON_EX_OFFICIO_ENTRY: _ClassVar[ChangeReason]
    CHANGE_REASON_EX_OFFICIO_REMOVAL: _ClassVar[ChangeReason]
    CHANGE_REASON_EX_OFFICIO_CORRECTION: _ClassVar[ChangeReason]
    CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED: _ClassVar[ChangeReason]
    CHANGE_REASON_RESIDENT_CODE_CHANGE: _ClassVar[ChangeReason]
    CHANGE_REASON_NAME_CHANGE: _ClassVar[ChangeReason]
    CHANGE_REASON_MY_NUMBER_DESIGNATION: _ClassVar[ChangeReason]
    CHANGE_REASON_MY_NUMBER_CHANGE: _ClassVar[ChangeReason]

class RecordStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_STATUS_UNSPECIFIED: _ClassVar[RecordStatus]
    RECORD_STATUS_ACTIVE: _ClassVar[RecordStatus]
    RECORD_STATUS_REMOVED: _ClassVar[RecordStatus]
SEX_UNSPECIFIED: Sex
SEX_MALE: Sex
SEX_FEMALE: Sex
CHANGE_REASON_UNSPECIFIED: ChangeReason
CHANGE_REASON_MOVE_IN: ChangeReason
CHANGE_REASON_SPECIAL_MOVE_IN: ChangeReason
CHANGE_REASON_MOVE_OUT: ChangeReason
CHANGE_REASON_EMIGRATION: ChangeReason
CHANGE_REASON_RELOCATION: ChangeReason
CHANGE_REASON_BIRTH: ChangeReason
CHANGE_REASON_DEATH: ChangeReason
CHANGE_REASON_EX_OFFICIO_ENTRY: ChangeReason
CHANGE_REASON_EX_OFFICIO_REMOVAL: ChangeReason
CHANGE_REASON_EX_OFFICIO_CORRECTION: ChangeReason
CHANGE_REASON_MOVE_IN_NOTICE_RECEIVED: ChangeReason
CHANGE_REASON_RESIDENT_CODE_CHANGE: ChangeReason
CHANGE_REASON_NAME_CHANGE: ChangeReason
CHANGE_REASON_MY_NUMBER_DESIGNATION: ChangeReason
CHANGE_REASON_MY_NUMBER_CHANGE: ChangeReason
RECORD_STATUS_UNSPECIFIED: RecordStatus
RECORD_STATUS_ACTIVE: RecordStatus
RECORD_STATUS_REMOVED: RecordStatus

class Date(_message.Message):
    __slots__ = ("year", "month", "day")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    year: int
    month: int
    day: int
    def __init__(self, year: _Optional[int] = ..., month: _Optional[int] = ..., day: _Optional[int] = ...) -> None: ...

class PersonName(_message.Message):
    __slots__ = ("kanji", "kana", "former_surname", "alias")
    KANJI_FIELD_NUMBER: _ClassVar[int]
    KANA_FIELD_NUMBER: _ClassVar[int]
    FORMER_SURNAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    kanji: str
    kana: str
    former_surname: str
    alias: str
    def __init__(self, kanji: _Optional[str] = ..., kana: _Optional[str] = ..., former_surname: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("municipality_code", "text")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    text: str
    def __init__(self, municipality_code: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class IdentityRecord(_message.Message):
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
    name: PersonName
    birth_date: Date
    sex: Sex
    address: Address
    change_reason: ChangeReason
    change_date: Date
    status: RecordStatus
    def __init__(self, resident_code: _Optional[str] = ..., my_number: _Optional[str] = ..., name: _Optional[_Union[PersonName, _Mapping]] = ..., birth_date: _Optional[_Union[Date, _Mapping]] = ..., sex: _Optional[_Union[Sex, str]] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., change_reason: _Optional[_Union[ChangeReason, str]] = ..., change_date: _Optional[_Union[Date, _Mapping]] = ..., status: _Optional[_Union[RecordStatus, str]] = ...) -> None: ...
