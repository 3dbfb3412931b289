from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(_message.Message):
    __slots__ = ("decision_id", "event_id", "event_type", "merchant_id", "event_time", "rulebook_set", "rulebook", "revision", "rule", "trigger", "outcome", "effects", "burden", "explanation", "deadline", "cancelled_deadlines")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    RULEBOOK_SET_FIELD_NUMBER: _ClassVar[int]
    RULEBOOK_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    BURDEN_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_DEADLINES_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    event_id: str
    event_type: str
    merchant_id: str
    event_time: str
    rulebook_set: str
    rulebook: str
    revision: str
    rule: str
    trigger: str
    outcome: str
    effects: _containers.RepeatedCompositeFieldContainer[EffectOutcome]
    burden: BurdenSplit
    explanation: _struct_pb2.Struct
    deadline: PendingDeadline
    cancelled_deadlines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, decision_id: _Optional[str] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., merchant_id: _Optional[str] = ..., event_time: _Optional[str] = ..., rulebook_set: _Optional[str] = ..., rulebook: _Optional[str] = ..., revision: _Optional[str] = ..., rule: _Optional[str] = ..., trigger: _Optional[str] = ..., outcome: _Optional[str] = ..., effects: _Optional[_Iterable[_Union[EffectOutcome, _Mapping]]] = ..., burden: _Optional[_Union[BurdenSplit, _Mapping]] = ..., explanation: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., deadline: _Optional[_Union[PendingDeadline, _Mapping]] = ..., cancelled_deadlines: _Optional[_Iterable[str]] = ...) -> None: ...

class EffectOutcome(_message.Message):
    __slots__ = ("effect", "args", "amounts", "burden", "skipped")
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    BURDEN_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    effect: str
    args: _struct_pb2.Struct
    amounts: _struct_pb2.Struct
    burden: _containers.RepeatedCompositeFieldContainer[BurdenShare]
    skipped: str
    def __init__(self, effect: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., amounts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., burden: _Optional[_Iterable[_Union[BurdenShare, _Mapping]]] = ..., skipped: _Optional[str] = ...) -> None: ...

class BurdenShare(_message.Message):
    __slots__ = ("party", "category", "amount")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    party: str
    category: str
    amount: float
    def __init__(self, party: _Optional[str] = ..., category: _Optional[str] = ..., amount: _Optional[float] = ...) -> None: ...

class BurdenSplit(_message.Message):
    __slots__ = ("merchant", "platform", "buyer")
    MERCHANT_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    merchant: float
    platform: float
    buyer: float
    def __init__(self, merchant: _Optional[float] = ..., platform: _Optional[float] = ..., buyer: _Optional[float] = ...) -> None: ...

class PendingDeadline(_message.Message):
    __slots__ = ("id", "due", "unless", "key")
    ID_FIELD_NUMBER: _ClassVar[int]
    DUE_FIELD_NUMBER: _ClassVar[int]
    UNLESS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    due: str
    unless: _containers.RepeatedScalarFieldContainer[str]
    key: str
    def __init__(self, id: _Optional[str] = ..., due: _Optional[str] = ..., unless: _Optional[_Iterable[str]] = ..., key: _Optional[str] = ...) -> None: ...
