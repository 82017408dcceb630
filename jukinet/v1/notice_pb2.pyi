import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignatureAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_ALGORITHM_UNSPECIFIED: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_ECDSA_P256_SHA256: _ClassVar[SignatureAlgorithm]
SIGNATURE_ALGORITHM_UNSPECIFIED: SignatureAlgorithm
SIGNATURE_ALGORITHM_ECDSA_P256_SHA256: SignatureAlgorithm

class ChangeNotice(_message.Message):
    __slots__ = ("origin", "sequence", "record", "recorded_at")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    origin: str
    sequence: int
    record: _identity_pb2.IdentityRecord
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, origin: _Optional[str] = ..., sequence: _Optional[int] = ..., record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NoticeBatch(_message.Message):
    __slots__ = ("sender", "first_sequence", "last_sequence", "notices", "signed_at")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    sender: str
    first_sequence: int
    last_sequence: int
    notices: _containers.RepeatedCompositeFieldContainer[ChangeNotice]
    signed_at: _timestamp_pb2.Timestamp
    def __init__(self, sender: _Optional[str] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., notices: _Optional[_Iterable[_Union[ChangeNotice, _Mapping]]] = ..., signed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignedBatch(_message.Message):
    __slots__ = ("payload", "signature", "algorithm", "key_id", "signer_certificate")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    algorithm: SignatureAlgorithm
    key_id: bytes
    signer_certificate: bytes
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., algorithm: _Optional[_Union[SignatureAlgorithm, str]] = ..., key_id: _Optional[bytes] = ..., signer_certificate: _Optional[bytes] = ...) -> None: ...

class DeliverRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: SignedBatch
    def __init__(self, batch: _Optional[_Union[SignedBatch, _Mapping]] = ...) -> None: ...

class DeliverResponse(_message.Message):
    __slots__ = ("last_sequence", "applied", "duplicates")
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    last_sequence: int
    applied: int
    duplicates: int
    def __init__(self, last_sequence: _Optional[int] = ..., applied: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...
