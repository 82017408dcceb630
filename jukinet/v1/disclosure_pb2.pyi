from jukinet.v1 import cards_pb2 as _cards_pb2
from jukinet.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetTreeHeadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTreeHeadResponse(_message.Message):
    __slots__ = ("tree_head", "signer_certificate")
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    SIGNER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    tree_head: _envelope_pb2.Signed
    signer_certificate: bytes
    def __init__(self, tree_head: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., signer_certificate: _Optional[bytes] = ...) -> None: ...

class DisclosureQuery(_message.Message):
    __slots__ = ("node_id", "after_id", "limit", "known_tree_size")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    KNOWN_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    after_id: int
    limit: int
    known_tree_size: int
    def __init__(self, node_id: _Optional[str] = ..., after_id: _Optional[int] = ..., limit: _Optional[int] = ..., known_tree_size: _Optional[int] = ...) -> None: ...

class ListMineRequest(_message.Message):
    __slots__ = ("query", "card")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    query: bytes
    card: _cards_pb2.CardPresentation
    def __init__(self, query: _Optional[bytes] = ..., card: _Optional[_Union[_cards_pb2.CardPresentation, _Mapping]] = ...) -> None: ...

class ListForResidentRequest(_message.Message):
    __slots__ = ("resident_code", "after_id", "limit", "known_tree_size", "operator_id")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    KNOWN_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    after_id: int
    limit: int
    known_tree_size: int
    operator_id: str
    def __init__(self, resident_code: _Optional[str] = ..., after_id: _Optional[int] = ..., limit: _Optional[int] = ..., known_tree_size: _Optional[int] = ..., operator_id: _Optional[str] = ...) -> None: ...

class ListForResidentResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: DisclosureAnswer
    def __init__(self, answer: _Optional[_Union[DisclosureAnswer, _Mapping]] = ...) -> None: ...

class ListMineResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: DisclosureAnswer
    def __init__(self, answer: _Optional[_Union[DisclosureAnswer, _Mapping]] = ...) -> None: ...

class ListProvisionsForResidentRequest(_message.Message):
    __slots__ = ("resident_code", "after_id", "limit", "known_tree_size")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    KNOWN_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    after_id: int
    limit: int
    known_tree_size: int
    def __init__(self, resident_code: _Optional[str] = ..., after_id: _Optional[int] = ..., limit: _Optional[int] = ..., known_tree_size: _Optional[int] = ...) -> None: ...

class ListProvisionsForResidentResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: DisclosureAnswer
    def __init__(self, answer: _Optional[_Union[DisclosureAnswer, _Mapping]] = ...) -> None: ...

class DisclosedEntry(_message.Message):
    __slots__ = ("leaf_index", "leaf", "inclusion_path")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PATH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    leaf: bytes
    inclusion_path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., leaf: _Optional[bytes] = ..., inclusion_path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DisclosureAnswer(_message.Message):
    __slots__ = ("log", "resident_code", "tree_head", "signer_certificate", "entries", "consistency_proof", "more", "newer_than_tree_head", "former_resident_codes")
    LOG_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    SIGNER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    NEWER_THAN_TREE_HEAD_FIELD_NUMBER: _ClassVar[int]
    FORMER_RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    log: str
    resident_code: str
    tree_head: _envelope_pb2.Signed
    signer_certificate: bytes
    entries: _containers.RepeatedCompositeFieldContainer[DisclosedEntry]
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    more: bool
    newer_than_tree_head: bool
    former_resident_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, log: _Optional[str] = ..., resident_code: _Optional[str] = ..., tree_head: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., signer_certificate: _Optional[bytes] = ..., entries: _Optional[_Iterable[_Union[DisclosedEntry, _Mapping]]] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ..., more: _Optional[bool] = ..., newer_than_tree_head: _Optional[bool] = ..., former_resident_codes: _Optional[_Iterable[str]] = ...) -> None: ...
