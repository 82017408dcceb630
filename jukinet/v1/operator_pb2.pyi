import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jukinet.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OperatorStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATOR_STATUS_UNSPECIFIED: _ClassVar[OperatorStatus]
    OPERATOR_STATUS_ACTIVE: _ClassVar[OperatorStatus]
    OPERATOR_STATUS_LOCKED: _ClassVar[OperatorStatus]
OPERATOR_STATUS_UNSPECIFIED: OperatorStatus
OPERATOR_STATUS_ACTIVE: OperatorStatus
OPERATOR_STATUS_LOCKED: OperatorStatus

class BiometricSample(_message.Message):
    __slots__ = ("features",)
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, features: _Optional[_Iterable[float]] = ...) -> None: ...

class SessionClaims(_message.Message):
    __slots__ = ("session_id", "operator_id", "node_id", "roles", "issued_at", "expires_at", "terminal_certificate_sha256")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_CERTIFICATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    operator_id: str
    node_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    terminal_certificate_sha256: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., operator_id: _Optional[str] = ..., node_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., terminal_certificate_sha256: _Optional[bytes] = ...) -> None: ...

class BeginLoginRequest(_message.Message):
    __slots__ = ("operator_id",)
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    def __init__(self, operator_id: _Optional[str] = ...) -> None: ...

class BeginLoginResponse(_message.Message):
    __slots__ = ("challenge_id", "challenge", "expires_at", "node_id")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    challenge_id: bytes
    challenge: bytes
    expires_at: _timestamp_pb2.Timestamp
    node_id: str
    def __init__(self, challenge_id: _Optional[bytes] = ..., challenge: _Optional[bytes] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node_id: _Optional[str] = ...) -> None: ...

class CompleteLoginRequest(_message.Message):
    __slots__ = ("challenge_id", "operator_id", "card_certificate", "signature", "sample")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    challenge_id: bytes
    operator_id: str
    card_certificate: bytes
    signature: bytes
    sample: BiometricSample
    def __init__(self, challenge_id: _Optional[bytes] = ..., operator_id: _Optional[str] = ..., card_certificate: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., sample: _Optional[_Union[BiometricSample, _Mapping]] = ...) -> None: ...

class CompleteLoginResponse(_message.Message):
    __slots__ = ("session", "claims")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    session: _envelope_pb2.Signed
    claims: SessionClaims
    def __init__(self, session: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., claims: _Optional[_Union[SessionClaims, _Mapping]] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OperatorInfo(_message.Message):
    __slots__ = ("operator_id", "roles", "status", "consecutive_failures", "card_serial", "enrolled_at")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    CARD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    status: OperatorStatus
    consecutive_failures: int
    card_serial: str
    enrolled_at: _timestamp_pb2.Timestamp
    def __init__(self, operator_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[OperatorStatus, str]] = ..., consecutive_failures: _Optional[int] = ..., card_serial: _Optional[str] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EnrollOperatorRequest(_message.Message):
    __slots__ = ("operator_id", "card_certificate", "roles", "template")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    card_certificate: bytes
    roles: _containers.RepeatedScalarFieldContainer[str]
    template: BiometricSample
    def __init__(self, operator_id: _Optional[str] = ..., card_certificate: _Optional[bytes] = ..., roles: _Optional[_Iterable[str]] = ..., template: _Optional[_Union[BiometricSample, _Mapping]] = ...) -> None: ...

class EnrollOperatorResponse(_message.Message):
    __slots__ = ("operator",)
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    operator: OperatorInfo
    def __init__(self, operator: _Optional[_Union[OperatorInfo, _Mapping]] = ...) -> None: ...

class UnlockOperatorRequest(_message.Message):
    __slots__ = ("operator_id",)
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    def __init__(self, operator_id: _Optional[str] = ...) -> None: ...

class UnlockOperatorResponse(_message.Message):
    __slots__ = ("operator",)
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    operator: OperatorInfo
    def __init__(self, operator: _Optional[_Union[OperatorInfo, _Mapping]] = ...) -> None: ...

class RevokeSessionsRequest(_message.Message):
    __slots__ = ("operator_id",)
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    def __init__(self, operator_id: _Optional[str] = ...) -> None: ...

class RevokeSessionsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetOperatorRequest(_message.Message):
    __slots__ = ("operator_id",)
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    def __init__(self, operator_id: _Optional[str] = ...) -> None: ...

class GetOperatorResponse(_message.Message):
    __slots__ = ("operator",)
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    operator: OperatorInfo
    def __init__(self, operator: _Optional[_Union[OperatorInfo, _Mapping]] = ...) -> None: ...

class LoginAttempts(_message.Message):
    __slots__ = ("operator_id", "terminal", "failures", "last_failure_at", "retry_at", "last_reason")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_AT_FIELD_NUMBER: _ClassVar[int]
    RETRY_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REASON_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    terminal: str
    failures: int
    last_failure_at: _timestamp_pb2.Timestamp
    retry_at: _timestamp_pb2.Timestamp
    last_reason: str
    def __init__(self, operator_id: _Optional[str] = ..., terminal: _Optional[str] = ..., failures: _Optional[int] = ..., last_failure_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retry_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_reason: _Optional[str] = ...) -> None: ...

class PendingLogins(_message.Message):
    __slots__ = ("terminal", "pending")
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    terminal: str
    pending: int
    def __init__(self, terminal: _Optional[str] = ..., pending: _Optional[int] = ...) -> None: ...

class ListLoginAttemptsRequest(_message.Message):
    __slots__ = ("operator_id",)
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    def __init__(self, operator_id: _Optional[str] = ...) -> None: ...

class ListLoginAttemptsResponse(_message.Message):
    __slots__ = ("attempts", "omitted", "pending", "pending_total", "pending_limit", "pending_per_terminal_limit")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OMITTED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    PENDING_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PENDING_PER_TERMINAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[LoginAttempts]
    omitted: int
    pending: _containers.RepeatedCompositeFieldContainer[PendingLogins]
    pending_total: int
    pending_limit: int
    pending_per_terminal_limit: int
    def __init__(self, attempts: _Optional[_Iterable[_Union[LoginAttempts, _Mapping]]] = ..., omitted: _Optional[int] = ..., pending: _Optional[_Iterable[_Union[PendingLogins, _Mapping]]] = ..., pending_total: _Optional[int] = ..., pending_limit: _Optional[int] = ..., pending_per_terminal_limit: _Optional[int] = ...) -> None: ...
