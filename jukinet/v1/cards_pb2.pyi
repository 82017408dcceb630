import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CardState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_STATE_UNSPECIFIED: _ClassVar[CardState]
    CARD_STATE_SET_UP: _ClassVar[CardState]
    CARD_STATE_ISSUED: _ClassVar[CardState]
    CARD_STATE_SUSPENDED: _ClassVar[CardState]
    CARD_STATE_RETURNED: _ClassVar[CardState]
    CARD_STATE_REVOKED: _ClassVar[CardState]

class CardEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_EVENT_KIND_UNSPECIFIED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_SET_UP: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_ISSUED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_SUSPENDED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_RESUMED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_RETURNED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_REVOKED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_FACE_UPDATED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_SIGNATURE_REVOKED: _ClassVar[CardEventKind]
    CARD_EVENT_KIND_HOLDER_DIED: _ClassVar[CardEventKind]

class CardAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_ACTION_UNSPECIFIED: _ClassVar[CardAction]
    CARD_ACTION_ISSUE: _ClassVar[CardAction]
    CARD_ACTION_SUSPEND: _ClassVar[CardAction]
    CARD_ACTION_RESUME: _ClassVar[CardAction]
    CARD_ACTION_RETURN: _ClassVar[CardAction]
    CARD_ACTION_REVOKE: _ClassVar[CardAction]
CARD_STATE_UNSPECIFIED: CardState
CARD_STATE_SET_UP: CardState
CARD_STATE_ISSUED: CardState
CARD_STATE_SUSPENDED: CardState
CARD_STATE_RETURNED: CardState
CARD_STATE_REVOKED: CardState
CARD_EVENT_KIND_UNSPECIFIED: CardEventKind
CARD_EVENT_KIND_SET_UP: CardEventKind
CARD_EVENT_KIND_ISSUED: CardEventKind
CARD_EVENT_KIND_SUSPENDED: CardEventKind
CARD_EVENT_KIND_RESUMED: CardEventKind
CARD_EVENT_KIND_RETURNED: CardEventKind
CARD_EVENT_KIND_REVOKED: CardEventKind
CARD_EVENT_KIND_FACE_UPDATED: CardEventKind
CARD_EVENT_KIND_SIGNATURE_REVOKED: CardEventKind
CARD_EVENT_KIND_HOLDER_DIED: CardEventKind
CARD_ACTION_UNSPECIFIED: CardAction
CARD_ACTION_ISSUE: CardAction
CARD_ACTION_SUSPEND: CardAction
CARD_ACTION_RESUME: CardAction
CARD_ACTION_RETURN: CardAction
CARD_ACTION_REVOKE: CardAction

class CardPresentation(_message.Message):
    __slots__ = ("auth_certificate", "signed_at_ms", "signature")
    AUTH_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    auth_certificate: bytes
    signed_at_ms: int
    signature: bytes
    def __init__(self, auth_certificate: _Optional[bytes] = ..., signed_at_ms: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CardRecord(_message.Message):
    __slots__ = ("card_serial", "resident_code", "municipality_code", "state", "auth_certificate_serial", "signature_certificate_serial", "signature_revoked", "auth_revoked", "auth_certificate", "signature_certificate", "updated_at")
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AUTH_CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    AUTH_REVOKED_FIELD_NUMBER: _ClassVar[int]
    AUTH_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    card_serial: str
    resident_code: str
    municipality_code: str
    state: CardState
    auth_certificate_serial: str
    signature_certificate_serial: str
    signature_revoked: bool
    auth_revoked: bool
    auth_certificate: bytes
    signature_certificate: bytes
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, card_serial: _Optional[str] = ..., resident_code: _Optional[str] = ..., municipality_code: _Optional[str] = ..., state: _Optional[_Union[CardState, str]] = ..., auth_certificate_serial: _Optional[str] = ..., signature_certificate_serial: _Optional[str] = ..., signature_revoked: _Optional[bool] = ..., auth_revoked: _Optional[bool] = ..., auth_certificate: _Optional[bytes] = ..., signature_certificate: _Optional[bytes] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CardEvent(_message.Message):
    __slots__ = ("kind", "card_serial", "resident_code", "municipality_code", "auth_certificate_serial", "signature_certificate_serial", "revoke_serials", "origin", "at")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    AUTH_CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    REVOKE_SERIALS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    kind: CardEventKind
    card_serial: str
    resident_code: str
    municipality_code: str
    auth_certificate_serial: str
    signature_certificate_serial: str
    revoke_serials: _containers.RepeatedScalarFieldContainer[str]
    origin: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[_Union[CardEventKind, str]] = ..., card_serial: _Optional[str] = ..., resident_code: _Optional[str] = ..., municipality_code: _Optional[str] = ..., auth_certificate_serial: _Optional[str] = ..., signature_certificate_serial: _Optional[str] = ..., revoke_serials: _Optional[_Iterable[str]] = ..., origin: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetUpCardRequest(_message.Message):
    __slots__ = ("resident_code", "card_serial", "auth_public_key", "signature_public_key")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    AUTH_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    card_serial: str
    auth_public_key: bytes
    signature_public_key: bytes
    def __init__(self, resident_code: _Optional[str] = ..., card_serial: _Optional[str] = ..., auth_public_key: _Optional[bytes] = ..., signature_public_key: _Optional[bytes] = ...) -> None: ...

class SetUpCardResponse(_message.Message):
    __slots__ = ("card",)
    CARD_FIELD_NUMBER: _ClassVar[int]
    card: CardRecord
    def __init__(self, card: _Optional[_Union[CardRecord, _Mapping]] = ...) -> None: ...

class ChangeCardStateRequest(_message.Message):
    __slots__ = ("card_serial", "action")
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    card_serial: str
    action: CardAction
    def __init__(self, card_serial: _Optional[str] = ..., action: _Optional[_Union[CardAction, str]] = ...) -> None: ...

class ChangeCardStateResponse(_message.Message):
    __slots__ = ("card",)
    CARD_FIELD_NUMBER: _ClassVar[int]
    card: CardRecord
    def __init__(self, card: _Optional[_Union[CardRecord, _Mapping]] = ...) -> None: ...

class UpdateCardFaceRequest(_message.Message):
    __slots__ = ("card_serial", "signature_public_key")
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    card_serial: str
    signature_public_key: bytes
    def __init__(self, card_serial: _Optional[str] = ..., signature_public_key: _Optional[bytes] = ...) -> None: ...

class UpdateCardFaceResponse(_message.Message):
    __slots__ = ("card",)
    CARD_FIELD_NUMBER: _ClassVar[int]
    card: CardRecord
    def __init__(self, card: _Optional[_Union[CardRecord, _Mapping]] = ...) -> None: ...

class ListCardsRequest(_message.Message):
    __slots__ = ("resident_code", "card_serial")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    card_serial: str
    def __init__(self, resident_code: _Optional[str] = ..., card_serial: _Optional[str] = ...) -> None: ...

class ListCardsResponse(_message.Message):
    __slots__ = ("cards",)
    CARDS_FIELD_NUMBER: _ClassVar[int]
    cards: _containers.RepeatedCompositeFieldContainer[CardRecord]
    def __init__(self, cards: _Optional[_Iterable[_Union[CardRecord, _Mapping]]] = ...) -> None: ...
