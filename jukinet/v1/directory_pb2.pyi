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

class DirectoryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTORY_STATE_UNSPECIFIED: _ClassVar[DirectoryState]
    DIRECTORY_STATE_BOOTSTRAP: _ClassVar[DirectoryState]
    DIRECTORY_STATE_CURRENT: _ClassVar[DirectoryState]
    DIRECTORY_STATE_EXPIRED: _ClassVar[DirectoryState]
DIRECTORY_STATE_UNSPECIFIED: DirectoryState
DIRECTORY_STATE_BOOTSTRAP: DirectoryState
DIRECTORY_STATE_CURRENT: DirectoryState
DIRECTORY_STATE_EXPIRED: DirectoryState

class DirectoryNode(_message.Message):
    __slots__ = ("node_ids", "address", "tls_certificate_sha256", "signing_certificate_sha256", "prefecture")
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TLS_CERTIFICATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIGNING_CERTIFICATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    PREFECTURE_FIELD_NUMBER: _ClassVar[int]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    address: str
    tls_certificate_sha256: bytes
    signing_certificate_sha256: bytes
    prefecture: str
    def __init__(self, node_ids: _Optional[_Iterable[str]] = ..., address: _Optional[str] = ..., tls_certificate_sha256: _Optional[bytes] = ..., signing_certificate_sha256: _Optional[bytes] = ..., prefecture: _Optional[str] = ...) -> None: ...

class LegalTableRow(_message.Message):
    __slots__ = ("table", "agency", "business", "title", "fields", "identifier", "prefecture")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PREFECTURE_FIELD_NUMBER: _ClassVar[int]
    table: str
    agency: str
    business: str
    title: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    identifier: str
    prefecture: str
    def __init__(self, table: _Optional[str] = ..., agency: _Optional[str] = ..., business: _Optional[str] = ..., title: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., identifier: _Optional[str] = ..., prefecture: _Optional[str] = ...) -> None: ...

class CodeBlockSummary(_message.Message):
    __slots__ = ("cs", "block", "count", "codes_sha256")
    CS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CODES_SHA256_FIELD_NUMBER: _ClassVar[int]
    cs: str
    block: int
    count: int
    codes_sha256: bytes
    def __init__(self, cs: _Optional[str] = ..., block: _Optional[int] = ..., count: _Optional[int] = ..., codes_sha256: _Optional[bytes] = ...) -> None: ...

class NetworkDirectory(_message.Message):
    __slots__ = ("version", "issued_at", "expires_at", "nodes", "legal_table", "code_blocks")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    LEGAL_TABLE_FIELD_NUMBER: _ClassVar[int]
    CODE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    version: int
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    nodes: _containers.RepeatedCompositeFieldContainer[DirectoryNode]
    legal_table: _containers.RepeatedCompositeFieldContainer[LegalTableRow]
    code_blocks: _containers.RepeatedCompositeFieldContainer[CodeBlockSummary]
    def __init__(self, version: _Optional[int] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., nodes: _Optional[_Iterable[_Union[DirectoryNode, _Mapping]]] = ..., legal_table: _Optional[_Iterable[_Union[LegalTableRow, _Mapping]]] = ..., code_blocks: _Optional[_Iterable[_Union[CodeBlockSummary, _Mapping]]] = ...) -> None: ...

class GetDirectoryRequest(_message.Message):
    __slots__ = ("known_version",)
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    known_version: int
    def __init__(self, known_version: _Optional[int] = ...) -> None: ...

class GetDirectoryResponse(_message.Message):
    __slots__ = ("not_modified", "version", "directory")
    NOT_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    not_modified: bool
    version: int
    directory: _envelope_pb2.Signed
    def __init__(self, not_modified: _Optional[bool] = ..., version: _Optional[int] = ..., directory: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ...) -> None: ...

class DirectoryStatus(_message.Message):
    __slots__ = ("state", "version", "issued_at", "expires_at", "source", "fetched_at", "last_error")
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FETCHED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    state: DirectoryState
    version: int
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    source: str
    fetched_at: _timestamp_pb2.Timestamp
    last_error: str
    def __init__(self, state: _Optional[_Union[DirectoryState, str]] = ..., version: _Optional[int] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., fetched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...

class CachedDirectory(_message.Message):
    __slots__ = ("envelope", "source", "fetched_at")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FETCHED_AT_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Signed
    source: str
    fetched_at: _timestamp_pb2.Timestamp
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Signed, _Mapping]] = ..., source: _Optional[str] = ..., fetched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PublishDirectoryRequest(_message.Message):
    __slots__ = ("content", "validity_seconds")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    content: NetworkDirectory
    validity_seconds: int
    def __init__(self, content: _Optional[_Union[NetworkDirectory, _Mapping]] = ..., validity_seconds: _Optional[int] = ...) -> None: ...

class PublishDirectoryResponse(_message.Message):
    __slots__ = ("version", "issued_at", "expires_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
