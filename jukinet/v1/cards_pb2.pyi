from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CardPresentation(_message.Message):
    __slots__ = ("auth_certificate", "signed_at_ms", "signature")
    AUTH_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    auth_certificate: bytes
    signed_at_ms: int
    signature: bytes
    def __init__(self, auth_certificate: _Optional[bytes] = ..., signed_at_ms: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...
