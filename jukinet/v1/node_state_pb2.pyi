from jukinet.v1 import operator_pb2 as _operator_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OperatorRecord(_message.Message):
    __slots__ = ("info", "card_certificate", "template_ciphertext", "template_nonce", "template_key_label", "sessions_valid_after_ms")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CARD_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_NONCE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_KEY_LABEL_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_VALID_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    info: _operator_pb2.OperatorInfo
    card_certificate: bytes
    template_ciphertext: bytes
    template_nonce: bytes
    template_key_label: str
    sessions_valid_after_ms: int
    def __init__(self, info: _Optional[_Union[_operator_pb2.OperatorInfo, _Mapping]] = ..., card_certificate: _Optional[bytes] = ..., template_ciphertext: _Optional[bytes] = ..., template_nonce: _Optional[bytes] = ..., template_key_label: _Optional[str] = ..., sessions_valid_after_ms: _Optional[int] = ...) -> None: ...
