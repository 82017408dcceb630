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

class AuditAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_ACTION_UNSPECIFIED: _ClassVar[AuditAction]
    AUDIT_ACTION_LOGIN: _ClassVar[AuditAction]
    AUDIT_ACTION_LOGOUT: _ClassVar[AuditAction]
    AUDIT_ACTION_RECORD_CHANGE: _ClassVar[AuditAction]
    AUDIT_ACTION_REGISTER_RESIDENTS: _ClassVar[AuditAction]
    AUDIT_ACTION_ENROLL_OPERATOR: _ClassVar[AuditAction]
    AUDIT_ACTION_UNLOCK_OPERATOR: _ClassVar[AuditAction]
    AUDIT_ACTION_REVOKE_SESSIONS: _ClassVar[AuditAction]
    AUDIT_ACTION_LIST_PROVISIONS: _ClassVar[AuditAction]
    AUDIT_ACTION_GET_RESIDENT: _ClassVar[AuditAction]
    AUDIT_ACTION_PROVIDE_IDENTITY: _ClassVar[AuditAction]
    AUDIT_ACTION_LIST_LOGIN_ATTEMPTS: _ClassVar[AuditAction]
    AUDIT_ACTION_QUARANTINE_RETRY: _ClassVar[AuditAction]
    AUDIT_ACTION_QUARANTINE_DROP: _ClassVar[AuditAction]
    AUDIT_ACTION_DIRECTORY_PUBLISH: _ClassVar[AuditAction]
    AUDIT_ACTION_DIRECTORY_ACCEPTED: _ClassVar[AuditAction]
    AUDIT_ACTION_MOVE_OUT: _ClassVar[AuditAction]
    AUDIT_ACTION_MOVE_IN: _ClassVar[AuditAction]
    AUDIT_ACTION_SPECIAL_MOVE_IN: _ClassVar[AuditAction]
    AUDIT_ACTION_SET_UP_CARD: _ClassVar[AuditAction]
    AUDIT_ACTION_CHANGE_CARD_STATE: _ClassVar[AuditAction]
    AUDIT_ACTION_UPDATE_CARD_FACE: _ClassVar[AuditAction]
    AUDIT_ACTION_LIST_CARDS: _ClassVar[AuditAction]
    AUDIT_ACTION_DESIGNATE_CODES: _ClassVar[AuditAction]
    AUDIT_ACTION_ASSIGN_MY_NUMBERS: _ClassVar[AuditAction]
    AUDIT_ACTION_CHANGE_MY_NUMBER: _ClassVar[AuditAction]
    AUDIT_ACTION_CHANGE_RESIDENT_CODE: _ClassVar[AuditAction]
    AUDIT_ACTION_COPY_REQUEST: _ClassVar[AuditAction]
    AUDIT_ACTION_COPY_ISSUE: _ClassVar[AuditAction]
    AUDIT_ACTION_DV_MEASURE_REGISTER: _ClassVar[AuditAction]
    AUDIT_ACTION_DV_MEASURE_REMOVE: _ClassVar[AuditAction]
    AUDIT_ACTION_DV_MEASURE_LIST: _ClassVar[AuditAction]
    AUDIT_ACTION_COPY_ISSUANCES_LIST: _ClassVar[AuditAction]
    AUDIT_ACTION_DISCLOSE: _ClassVar[AuditAction]
    AUDIT_ACTION_READ_MOVEMENT_REPORT: _ClassVar[AuditAction]

class AuditOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_OUTCOME_UNSPECIFIED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_SUCCESS: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_DENIED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_FAILED: _ClassVar[AuditOutcome]
AUDIT_ACTION_UNSPECIFIED: AuditAction
AUDIT_ACTION_LOGIN: AuditAction
AUDIT_ACTION_LOGOUT: AuditAction
AUDIT_ACTION_RECORD_CHANGE: AuditAction
AUDIT_ACTION_REGISTER_RESIDENTS: AuditAction
AUDIT_ACTION_ENROLL_OPERATOR: AuditAction
AUDIT_ACTION_UNLOCK_OPERATOR: AuditAction
AUDIT_ACTION_REVOKE_SESSIONS: AuditAction
AUDIT_ACTION_LIST_PROVISIONS: AuditAction
AUDIT_ACTION_GET_RESIDENT: AuditAction
AUDIT_ACTION_PROVIDE_IDENTITY: AuditAction
AUDIT_ACTION_LIST_LOGIN_ATTEMPTS: AuditAction
AUDIT_ACTION_QUARANTINE_RETRY: AuditAction
AUDIT_ACTION_QUARANTINE_DROP: AuditAction
AUDIT_ACTION_DIRECTORY_PUBLISH: AuditAction
AUDIT_ACTION_DIRECTORY_ACCEPTED: AuditAction
AUDIT_ACTION_MOVE_OUT: AuditAction
AUDIT_ACTION_MOVE_IN: AuditAction
AUDIT_ACTION_SPECIAL_MOVE_IN: AuditAction
AUDIT_ACTION_SET_UP_CARD: AuditAction
AUDIT_ACTION_CHANGE_CARD_STATE: AuditAction
AUDIT_ACTION_UPDATE_CARD_FACE: AuditAction
AUDIT_ACTION_LIST_CARDS: AuditAction
AUDIT_ACTION_DESIGNATE_CODES: AuditAction
AUDIT_ACTION_ASSIGN_MY_NUMBERS: AuditAction
AUDIT_ACTION_CHANGE_MY_NUMBER: AuditAction
AUDIT_ACTION_CHANGE_RESIDENT_CODE: AuditAction
AUDIT_ACTION_COPY_REQUEST: AuditAction
AUDIT_ACTION_COPY_ISSUE: AuditAction
AUDIT_ACTION_DV_MEASURE_REGISTER: AuditAction
AUDIT_ACTION_DV_MEASURE_REMOVE: AuditAction
AUDIT_ACTION_DV_MEASURE_LIST: AuditAction
AUDIT_ACTION_COPY_ISSUANCES_LIST: AuditAction
AUDIT_ACTION_DISCLOSE: AuditAction
AUDIT_ACTION_READ_MOVEMENT_REPORT: AuditAction
AUDIT_OUTCOME_UNSPECIFIED: AuditOutcome
AUDIT_OUTCOME_SUCCESS: AuditOutcome
AUDIT_OUTCOME_DENIED: AuditOutcome
AUDIT_OUTCOME_FAILED: AuditOutcome

class AuditEntry(_message.Message):
    __slots__ = ("time", "actor", "terminal", "action", "outcome", "target", "detail")
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    actor: str
    terminal: str
    action: AuditAction
    outcome: AuditOutcome
    target: str
    detail: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., terminal: _Optional[str] = ..., action: _Optional[_Union[AuditAction, str]] = ..., outcome: _Optional[_Union[AuditOutcome, str]] = ..., target: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class TreeHead(_message.Message):
    __slots__ = ("node_id", "tree_size", "root_hash", "timestamp", "log")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    tree_size: int
    root_hash: bytes
    timestamp: _timestamp_pb2.Timestamp
    log: str
    def __init__(self, node_id: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., log: _Optional[str] = ...) -> None: ...

class GetSignedTreeHeadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSignedTreeHeadResponse(_message.Message):
    __slots__ = ("tree_head", "signer_certificate")
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    SIGNER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    tree_head: _envelope_pb2.Signed
    signer_certificate: bytes
    def __init__(self, tree_head: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., signer_certificate: _Optional[bytes] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("leaf_index", "tree_size")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("audit_path", "leaf_hash")
    AUDIT_PATH_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    audit_path: _containers.RepeatedScalarFieldContainer[bytes]
    leaf_hash: bytes
    def __init__(self, audit_path: _Optional[_Iterable[bytes]] = ..., leaf_hash: _Optional[bytes] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_tree_size", "second_tree_size")
    FIRST_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_tree_size: int
    second_tree_size: int
    def __init__(self, first_tree_size: _Optional[int] = ..., second_tree_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("proof",)
    PROOF_FIELD_NUMBER: _ClassVar[int]
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetEntriesRequest(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class GetEntriesResponse(_message.Message):
    __slots__ = ("leaf_data", "end")
    LEAF_DATA_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    leaf_data: _containers.RepeatedScalarFieldContainer[bytes]
    end: int
    def __init__(self, leaf_data: _Optional[_Iterable[bytes]] = ..., end: _Optional[int] = ...) -> None: ...
