import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MovementTotals(_message.Message):
    __slots__ = ("births", "deaths", "inter_prefecture_moves", "intra_prefecture_moves", "relocations", "arrivals_without_grant", "emigrations")
    BIRTHS_FIELD_NUMBER: _ClassVar[int]
    DEATHS_FIELD_NUMBER: _ClassVar[int]
    INTER_PREFECTURE_MOVES_FIELD_NUMBER: _ClassVar[int]
    INTRA_PREFECTURE_MOVES_FIELD_NUMBER: _ClassVar[int]
    RELOCATIONS_FIELD_NUMBER: _ClassVar[int]
    ARRIVALS_WITHOUT_GRANT_FIELD_NUMBER: _ClassVar[int]
    EMIGRATIONS_FIELD_NUMBER: _ClassVar[int]
    births: int
    deaths: int
    inter_prefecture_moves: int
    intra_prefecture_moves: int
    relocations: int
    arrivals_without_grant: int
    emigrations: int
    def __init__(self, births: _Optional[int] = ..., deaths: _Optional[int] = ..., inter_prefecture_moves: _Optional[int] = ..., intra_prefecture_moves: _Optional[int] = ..., relocations: _Optional[int] = ..., arrivals_without_grant: _Optional[int] = ..., emigrations: _Optional[int] = ...) -> None: ...

class PrefectureFlow(_message.Message):
    __slots__ = ("origin_prefecture", "destination_prefecture", "moves")
    ORIGIN_PREFECTURE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PREFECTURE_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    origin_prefecture: str
    destination_prefecture: str
    moves: int
    def __init__(self, origin_prefecture: _Optional[str] = ..., destination_prefecture: _Optional[str] = ..., moves: _Optional[int] = ...) -> None: ...

class MunicipalityFlow(_message.Message):
    __slots__ = ("origin_municipality", "destination_municipality", "moves")
    ORIGIN_MUNICIPALITY_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_MUNICIPALITY_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    origin_municipality: str
    destination_municipality: str
    moves: int
    def __init__(self, origin_municipality: _Optional[str] = ..., destination_municipality: _Optional[str] = ..., moves: _Optional[int] = ...) -> None: ...

class MunicipalityCounts(_message.Message):
    __slots__ = ("municipality_code", "births", "deaths", "moves_in", "moves_out", "relocations", "arrivals_without_grant", "emigrations")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    BIRTHS_FIELD_NUMBER: _ClassVar[int]
    DEATHS_FIELD_NUMBER: _ClassVar[int]
    MOVES_IN_FIELD_NUMBER: _ClassVar[int]
    MOVES_OUT_FIELD_NUMBER: _ClassVar[int]
    RELOCATIONS_FIELD_NUMBER: _ClassVar[int]
    ARRIVALS_WITHOUT_GRANT_FIELD_NUMBER: _ClassVar[int]
    EMIGRATIONS_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    births: int
    deaths: int
    moves_in: int
    moves_out: int
    relocations: int
    arrivals_without_grant: int
    emigrations: int
    def __init__(self, municipality_code: _Optional[str] = ..., births: _Optional[int] = ..., deaths: _Optional[int] = ..., moves_in: _Optional[int] = ..., moves_out: _Optional[int] = ..., relocations: _Optional[int] = ..., arrivals_without_grant: _Optional[int] = ..., emigrations: _Optional[int] = ...) -> None: ...

class GetMovementReportRequest(_message.Message):
    __slots__ = ("month",)
    MONTH_FIELD_NUMBER: _ClassVar[int]
    month: str
    def __init__(self, month: _Optional[str] = ...) -> None: ...

class GetMovementReportResponse(_message.Message):
    __slots__ = ("month", "totals", "prefecture_flows", "municipality_flows", "municipality_flows_truncated", "municipalities", "municipalities_truncated", "read_position", "feed_position", "as_of")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    PREFECTURE_FLOWS_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_FLOWS_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_FLOWS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITIES_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITIES_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    READ_POSITION_FIELD_NUMBER: _ClassVar[int]
    FEED_POSITION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    month: str
    totals: MovementTotals
    prefecture_flows: _containers.RepeatedCompositeFieldContainer[PrefectureFlow]
    municipality_flows: _containers.RepeatedCompositeFieldContainer[MunicipalityFlow]
    municipality_flows_truncated: bool
    municipalities: _containers.RepeatedCompositeFieldContainer[MunicipalityCounts]
    municipalities_truncated: bool
    read_position: int
    feed_position: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, month: _Optional[str] = ..., totals: _Optional[_Union[MovementTotals, _Mapping]] = ..., prefecture_flows: _Optional[_Iterable[_Union[PrefectureFlow, _Mapping]]] = ..., municipality_flows: _Optional[_Iterable[_Union[MunicipalityFlow, _Mapping]]] = ..., municipality_flows_truncated: _Optional[bool] = ..., municipalities: _Optional[_Iterable[_Union[MunicipalityCounts, _Mapping]]] = ..., municipalities_truncated: _Optional[bool] = ..., read_position: _Optional[int] = ..., feed_position: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
