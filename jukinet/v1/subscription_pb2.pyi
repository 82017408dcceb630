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

class PushMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_MODE_UNSPECIFIED: _ClassVar[PushMode]
    PUSH_MODE_EVERY_CHANGE: _ClassVar[PushMode]
    PUSH_MODE_DAILY_DIGEST: _ClassVar[PushMode]
    PUSH_MODE_DEATHS_ONLY: _ClassVar[PushMode]
    PUSH_MODE_MONTHLY_COHORT: _ClassVar[PushMode]
PUSH_MODE_UNSPECIFIED: PushMode
PUSH_MODE_EVERY_CHANGE: PushMode
PUSH_MODE_DAILY_DIGEST: PushMode
PUSH_MODE_DEATHS_ONLY: PushMode
PUSH_MODE_MONTHLY_COHORT: PushMode

class PushTarget(_message.Message):
    __slots__ = ("resident_codes", "municipality_codes", "reaching_age")
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODES_FIELD_NUMBER: _ClassVar[int]
    REACHING_AGE_FIELD_NUMBER: _ClassVar[int]
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    municipality_codes: _containers.RepeatedScalarFieldContainer[str]
    reaching_age: int
    def __init__(self, resident_codes: _Optional[_Iterable[str]] = ..., municipality_codes: _Optional[_Iterable[str]] = ..., reaching_age: _Optional[int] = ...) -> None: ...

class Subscription(_message.Message):
    __slots__ = ("subscription_id", "agency", "business_code", "target", "mode", "cursor", "delivered", "created_at", "start_position")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    START_POSITION_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    agency: str
    business_code: str
    target: PushTarget
    mode: PushMode
    cursor: int
    delivered: int
    created_at: _timestamp_pb2.Timestamp
    start_position: int
    def __init__(self, subscription_id: _Optional[str] = ..., agency: _Optional[str] = ..., business_code: _Optional[str] = ..., target: _Optional[_Union[PushTarget, _Mapping]] = ..., mode: _Optional[_Union[PushMode, str]] = ..., cursor: _Optional[int] = ..., delivered: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_position: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("business_code", "target", "mode")
    BUSINESS_CODE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    business_code: str
    target: PushTarget
    mode: PushMode
    def __init__(self, business_code: _Optional[str] = ..., target: _Optional[_Union[PushTarget, _Mapping]] = ..., mode: _Optional[_Union[PushMode, str]] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class ListSubscriptionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[Subscription]
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[Subscription, _Mapping]]] = ...) -> None: ...

class CancelSubscriptionRequest(_message.Message):
    __slots__ = ("subscription_id",)
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    def __init__(self, subscription_id: _Optional[str] = ...) -> None: ...

class CancelSubscriptionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveRequest(_message.Message):
    __slots__ = ("subscription_id", "acknowledge")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    acknowledge: int
    def __init__(self, subscription_id: _Optional[str] = ..., acknowledge: _Optional[int] = ...) -> None: ...

class PushedRecord(_message.Message):
    __slots__ = ("position", "record", "committed_at", "provision_id", "agency_identifier")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    position: int
    record: _identity_pb2.IdentityRecord
    committed_at: _timestamp_pb2.Timestamp
    provision_id: int
    agency_identifier: str
    def __init__(self, position: _Optional[int] = ..., record: _Optional[_Union[_identity_pb2.IdentityRecord, _Mapping]] = ..., committed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provision_id: _Optional[int] = ..., agency_identifier: _Optional[str] = ...) -> None: ...

class ReceiveResponse(_message.Message):
    __slots__ = ("subscription_id", "first_position", "last_position", "records", "period_start", "period_end", "sent_at")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    first_position: int
    last_position: int
    records: _containers.RepeatedCompositeFieldContainer[PushedRecord]
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    def __init__(self, subscription_id: _Optional[str] = ..., first_position: _Optional[int] = ..., last_position: _Optional[int] = ..., records: _Optional[_Iterable[_Union[PushedRecord, _Mapping]]] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PushCohort(_message.Message):
    __slots__ = ("snapshot", "positions", "acknowledged")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    snapshot: int
    positions: _containers.RepeatedScalarFieldContainer[int]
    acknowledged: bool
    def __init__(self, snapshot: _Optional[int] = ..., positions: _Optional[_Iterable[int]] = ..., acknowledged: _Optional[bool] = ...) -> None: ...
