from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class LocalResidentData(_message.Message):
    __slots__ = ("head_of_household", "relationship", "registered_domicile", "head_of_family_register")
    HEAD_OF_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_DOMICILE_FIELD_NUMBER: _ClassVar[int]
    HEAD_OF_FAMILY_REGISTER_FIELD_NUMBER: _ClassVar[int]
    head_of_household: str
    relationship: str
    registered_domicile: str
    head_of_family_register: str
    def __init__(self, head_of_household: _Optional[str] = ..., relationship: _Optional[str] = ..., registered_domicile: _Optional[str] = ..., head_of_family_register: _Optional[str] = ...) -> None: ...
