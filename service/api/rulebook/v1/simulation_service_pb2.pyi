from service.api.rulebook.v1 import rulebook_sets_pb2 as _rulebook_sets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutcomeStatistic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_STATISTIC_UNSPECIFIED: _ClassVar[OutcomeStatistic]
    OUTCOME_STATISTIC_FINAL: _ClassVar[OutcomeStatistic]
    OUTCOME_STATISTIC_TIME_AVERAGE: _ClassVar[OutcomeStatistic]
OUTCOME_STATISTIC_UNSPECIFIED: OutcomeStatistic
OUTCOME_STATISTIC_FINAL: OutcomeStatistic
OUTCOME_STATISTIC_TIME_AVERAGE: OutcomeStatistic

class SimulationParameters(_message.Message):
    __slots__ = ("scenario_name", "scenario_yaml", "days", "replications", "seed")
    SCENARIO_NAME_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_YAML_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    REPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    scenario_name: str
    scenario_yaml: str
    days: int
    replications: int
    seed: int
    def __init__(self, scenario_name: _Optional[str] = ..., scenario_yaml: _Optional[str] = ..., days: _Optional[int] = ..., replications: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class SimulateRequest(_message.Message):
    __slots__ = ("rulebooks", "parameters")
    RULEBOOKS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    rulebooks: _rulebook_sets_pb2.RulebookSetSource
    parameters: SimulationParameters
    def __init__(self, rulebooks: _Optional[_Union[_rulebook_sets_pb2.RulebookSetSource, _Mapping]] = ..., parameters: _Optional[_Union[SimulationParameters, _Mapping]] = ...) -> None: ...

class SimulateResponse(_message.Message):
    __slots__ = ("progress", "summary")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    progress: SimulationProgress
    summary: SimulationSummary
    def __init__(self, progress: _Optional[_Union[SimulationProgress, _Mapping]] = ..., summary: _Optional[_Union[SimulationSummary, _Mapping]] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("a", "b", "parameters", "confidence")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    a: _rulebook_sets_pb2.RulebookSetSource
    b: _rulebook_sets_pb2.RulebookSetSource
    parameters: SimulationParameters
    confidence: float
    def __init__(self, a: _Optional[_Union[_rulebook_sets_pb2.RulebookSetSource, _Mapping]] = ..., b: _Optional[_Union[_rulebook_sets_pb2.RulebookSetSource, _Mapping]] = ..., parameters: _Optional[_Union[SimulationParameters, _Mapping]] = ..., confidence: _Optional[float] = ...) -> None: ...

class WhatIfResponse(_message.Message):
    __slots__ = ("progress", "comparison")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    progress: SimulationProgress
    comparison: WhatIfComparison
    def __init__(self, progress: _Optional[_Union[SimulationProgress, _Mapping]] = ..., comparison: _Optional[_Union[WhatIfComparison, _Mapping]] = ...) -> None: ...

class SimulationProgress(_message.Message):
    __slots__ = ("set_id", "done", "total")
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    set_id: str
    done: int
    total: int
    def __init__(self, set_id: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class BandedValue(_message.Message):
    __slots__ = ("mean", "p5", "p95", "replications")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    P5_FIELD_NUMBER: _ClassVar[int]
    P95_FIELD_NUMBER: _ClassVar[int]
    REPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    mean: float
    p5: float
    p95: float
    replications: int
    def __init__(self, mean: _Optional[float] = ..., p5: _Optional[float] = ..., p95: _Optional[float] = ..., replications: _Optional[int] = ...) -> None: ...

class SeriesSummary(_message.Message):
    __slots__ = ("name", "title", "unit", "cohort", "quantile", "final", "time_average")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    QUANTILE_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    TIME_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    unit: str
    cohort: str
    quantile: float
    final: BandedValue
    time_average: BandedValue
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., unit: _Optional[str] = ..., cohort: _Optional[str] = ..., quantile: _Optional[float] = ..., final: _Optional[_Union[BandedValue, _Mapping]] = ..., time_average: _Optional[_Union[BandedValue, _Mapping]] = ...) -> None: ...

class SimulationSummary(_message.Message):
    __slots__ = ("set_id", "revision", "scenario", "days", "replications", "seed", "cohorts", "series", "infinite")
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    REPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    INFINITE_FIELD_NUMBER: _ClassVar[int]
    set_id: str
    revision: str
    scenario: str
    days: int
    replications: int
    seed: int
    cohorts: _containers.RepeatedScalarFieldContainer[str]
    series: _containers.RepeatedCompositeFieldContainer[SeriesSummary]
    infinite: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, set_id: _Optional[str] = ..., revision: _Optional[str] = ..., scenario: _Optional[str] = ..., days: _Optional[int] = ..., replications: _Optional[int] = ..., seed: _Optional[int] = ..., cohorts: _Optional[_Iterable[str]] = ..., series: _Optional[_Iterable[_Union[SeriesSummary, _Mapping]]] = ..., infinite: _Optional[_Iterable[str]] = ...) -> None: ...

class OutcomeDifference(_message.Message):
    __slots__ = ("series", "cohort", "statistic", "unit", "a", "b", "difference", "low", "high", "pairs", "significant")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    series: str
    cohort: str
    statistic: OutcomeStatistic
    unit: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    pairs: int
    significant: bool
    def __init__(self, series: _Optional[str] = ..., cohort: _Optional[str] = ..., statistic: _Optional[_Union[OutcomeStatistic, str]] = ..., unit: _Optional[str] = ..., a: _Optional[float] = ..., b: _Optional[float] = ..., difference: _Optional[float] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., pairs: _Optional[int] = ..., significant: _Optional[bool] = ...) -> None: ...

class WhatIfComparison(_message.Message):
    __slots__ = ("a_set_id", "a_revision", "b_set_id", "b_revision", "scenario", "days", "replications", "seed", "confidence", "cohorts", "differences")
    A_SET_ID_FIELD_NUMBER: _ClassVar[int]
    A_REVISION_FIELD_NUMBER: _ClassVar[int]
    B_SET_ID_FIELD_NUMBER: _ClassVar[int]
    B_REVISION_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    REPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    a_set_id: str
    a_revision: str
    b_set_id: str
    b_revision: str
    scenario: str
    days: int
    replications: int
    seed: int
    confidence: float
    cohorts: _containers.RepeatedScalarFieldContainer[str]
    differences: _containers.RepeatedCompositeFieldContainer[OutcomeDifference]
    def __init__(self, a_set_id: _Optional[str] = ..., a_revision: _Optional[str] = ..., b_set_id: _Optional[str] = ..., b_revision: _Optional[str] = ..., scenario: _Optional[str] = ..., days: _Optional[int] = ..., replications: _Optional[int] = ..., seed: _Optional[int] = ..., confidence: _Optional[float] = ..., cohorts: _Optional[_Iterable[str]] = ..., differences: _Optional[_Iterable[_Union[OutcomeDifference, _Mapping]]] = ...) -> None: ...
