from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProvisionResidentView(_message.Message):
    __slots__ = ("resident_code",)
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    def __init__(self, resident_code: _Optional[str] = ...) -> None: ...

class ProvisionResidentViews(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ProvisionResidentView]
    def __init__(self, entries: _Optional[_Iterable[_Union[ProvisionResidentView, _Mapping]]] = ...) -> None: ...
