import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import cards_pb2 as _cards_pb2
from jukinet.v1 import envelope_pb2 as _envelope_pb2
from jukinet.v1 import notice_pb2 as _notice_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkItem(_message.Message):
    __slots__ = ("change_notice", "relayed_batch", "card_event")
    CHANGE_NOTICE_FIELD_NUMBER: _ClassVar[int]
    RELAYED_BATCH_FIELD_NUMBER: _ClassVar[int]
    CARD_EVENT_FIELD_NUMBER: _ClassVar[int]
    change_notice: _notice_pb2.ChangeNotice
    relayed_batch: _envelope_pb2.Signed
    card_event: _cards_pb2.CardEvent
    def __init__(self, change_notice: _Optional[_Union[_notice_pb2.ChangeNotice, _Mapping]] = ..., relayed_batch: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., card_event: _Optional[_Union[_cards_pb2.CardEvent, _Mapping]] = ...) -> None: ...

class LinkBatch(_message.Message):
    __slots__ = ("sender", "destination", "first_sequence", "last_sequence", "items", "sent_at", "withdrawn")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    sender: str
    destination: str
    first_sequence: int
    last_sequence: int
    items: _containers.RepeatedCompositeFieldContainer[LinkItem]
    sent_at: _timestamp_pb2.Timestamp
    withdrawn: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, sender: _Optional[str] = ..., destination: _Optional[str] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., items: _Optional[_Iterable[_Union[LinkItem, _Mapping]]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., withdrawn: _Optional[_Iterable[int]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("receiver", "sender", "first_sequence", "last_sequence", "batch_sha256", "applied", "duplicates", "stored_at")
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SHA256_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_FIELD_NUMBER: _ClassVar[int]
    receiver: str
    sender: str
    first_sequence: int
    last_sequence: int
    batch_sha256: bytes
    applied: int
    duplicates: int
    stored_at: _timestamp_pb2.Timestamp
    def __init__(self, receiver: _Optional[str] = ..., sender: _Optional[str] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., batch_sha256: _Optional[bytes] = ..., applied: _Optional[int] = ..., duplicates: _Optional[int] = ..., stored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeliverRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: _envelope_pb2.Signed
    def __init__(self, batch: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ...) -> None: ...

class DeliverResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _envelope_pb2.Signed
    def __init__(self, receipt: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ...) -> None: ...
