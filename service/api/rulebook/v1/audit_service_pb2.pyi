from google.protobuf import struct_pb2 as _struct_pb2
from service.api.rulebook.v1 import rulebook_sets_pb2 as _rulebook_sets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_FORMAT_UNSPECIFIED: _ClassVar[ReportFormat]
    REPORT_FORMAT_JSON: _ClassVar[ReportFormat]
    REPORT_FORMAT_MARKDOWN: _ClassVar[ReportFormat]
    REPORT_FORMAT_HTML: _ClassVar[ReportFormat]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_VIOLATION: _ClassVar[Verdict]
    VERDICT_WARNING: _ClassVar[Verdict]
    VERDICT_PASS: _ClassVar[Verdict]
    VERDICT_NOT_APPLICABLE: _ClassVar[Verdict]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_LOW: _ClassVar[Severity]
    SEVERITY_MEDIUM: _ClassVar[Severity]
    SEVERITY_HIGH: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class CheckKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_KIND_UNSPECIFIED: _ClassVar[CheckKind]
    CHECK_KIND_STATIC: _ClassVar[CheckKind]
    CHECK_KIND_DYNAMIC: _ClassVar[CheckKind]
    CHECK_KIND_PROJECTED: _ClassVar[CheckKind]

class DiffFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIFF_FORMAT_UNSPECIFIED: _ClassVar[DiffFormat]
    DIFF_FORMAT_TEXT: _ClassVar[DiffFormat]
    DIFF_FORMAT_JSON: _ClassVar[DiffFormat]
    DIFF_FORMAT_MARKDOWN: _ClassVar[DiffFormat]
REPORT_FORMAT_UNSPECIFIED: ReportFormat
REPORT_FORMAT_JSON: ReportFormat
REPORT_FORMAT_MARKDOWN: ReportFormat
REPORT_FORMAT_HTML: ReportFormat
VERDICT_UNSPECIFIED: Verdict
VERDICT_VIOLATION: Verdict
VERDICT_WARNING: Verdict
VERDICT_PASS: Verdict
VERDICT_NOT_APPLICABLE: Verdict
SEVERITY_UNSPECIFIED: Severity
SEVERITY_INFO: Severity
SEVERITY_LOW: Severity
SEVERITY_MEDIUM: Severity
SEVERITY_HIGH: Severity
SEVERITY_CRITICAL: Severity
CHECK_KIND_UNSPECIFIED: CheckKind
CHECK_KIND_STATIC: CheckKind
CHECK_KIND_DYNAMIC: CheckKind
CHECK_KIND_PROJECTED: CheckKind
DIFF_FORMAT_UNSPECIFIED: DiffFormat
DIFF_FORMAT_TEXT: DiffFormat
DIFF_FORMAT_JSON: DiffFormat
DIFF_FORMAT_MARKDOWN: DiffFormat

class AuditRulebookRequest(_message.Message):
    __slots__ = ("rulebooks", "format")
    RULEBOOKS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    rulebooks: _rulebook_sets_pb2.RulebookSetSource
    format: ReportFormat
    def __init__(self, rulebooks: _Optional[_Union[_rulebook_sets_pb2.RulebookSetSource, _Mapping]] = ..., format: _Optional[_Union[ReportFormat, str]] = ...) -> None: ...

class AuditRulebookResponse(_message.Message):
    __slots__ = ("rulebook_set", "revision", "generated_at", "catalogue_revision", "findings", "worst_violation", "format", "report")
    RULEBOOK_SET_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_REVISION_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    WORST_VIOLATION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    rulebook_set: str
    revision: str
    generated_at: str
    catalogue_revision: str
    findings: _containers.RepeatedCompositeFieldContainer[AuditFinding]
    worst_violation: Severity
    format: ReportFormat
    report: str
    def __init__(self, rulebook_set: _Optional[str] = ..., revision: _Optional[str] = ..., generated_at: _Optional[str] = ..., catalogue_revision: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[AuditFinding, _Mapping]]] = ..., worst_violation: _Optional[_Union[Severity, str]] = ..., format: _Optional[_Union[ReportFormat, str]] = ..., report: _Optional[str] = ...) -> None: ...

class AuditFinding(_message.Message):
    __slots__ = ("criterion", "title", "kind", "verdict", "severity", "rulebook_set", "rule", "location", "evidence", "reading", "citation", "counterexample", "series")
    class SeriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AuditSeries
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AuditSeries, _Mapping]] = ...) -> None: ...
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    RULEBOOK_SET_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    READING_FIELD_NUMBER: _ClassVar[int]
    CITATION_FIELD_NUMBER: _ClassVar[int]
    COUNTEREXAMPLE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    criterion: str
    title: str
    kind: CheckKind
    verdict: Verdict
    severity: Severity
    rulebook_set: str
    rule: str
    location: str
    evidence: _struct_pb2.Struct
    reading: str
    citation: AuditCitation
    counterexample: AuditCounterexample
    series: _containers.MessageMap[str, AuditSeries]
    def __init__(self, criterion: _Optional[str] = ..., title: _Optional[str] = ..., kind: _Optional[_Union[CheckKind, str]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., severity: _Optional[_Union[Severity, str]] = ..., rulebook_set: _Optional[str] = ..., rule: _Optional[str] = ..., location: _Optional[str] = ..., evidence: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., reading: _Optional[str] = ..., citation: _Optional[_Union[AuditCitation, _Mapping]] = ..., counterexample: _Optional[_Union[AuditCounterexample, _Mapping]] = ..., series: _Optional[_Mapping[str, AuditSeries]] = ...) -> None: ...

class AuditCitation(_message.Message):
    __slots__ = ("law", "article", "text", "verified")
    LAW_FIELD_NUMBER: _ClassVar[int]
    ARTICLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    law: str
    article: str
    text: str
    verified: bool
    def __init__(self, law: _Optional[str] = ..., article: _Optional[str] = ..., text: _Optional[str] = ..., verified: _Optional[bool] = ...) -> None: ...

class AuditCounterexample(_message.Message):
    __slots__ = ("events_jsonl", "expected", "observed", "reproduced", "replay_command")
    EVENTS_JSONL_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    REPRODUCED_FIELD_NUMBER: _ClassVar[int]
    REPLAY_COMMAND_FIELD_NUMBER: _ClassVar[int]
    events_jsonl: str
    expected: _struct_pb2.Struct
    observed: _struct_pb2.Struct
    reproduced: bool
    replay_command: str
    def __init__(self, events_jsonl: _Optional[str] = ..., expected: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., observed: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., reproduced: _Optional[bool] = ..., replay_command: _Optional[str] = ...) -> None: ...

class AuditSeries(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class DiffRulebooksRequest(_message.Message):
    __slots__ = ("a", "b", "format", "skip_verdicts")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SKIP_VERDICTS_FIELD_NUMBER: _ClassVar[int]
    a: _rulebook_sets_pb2.RulebookSetSource
    b: _rulebook_sets_pb2.RulebookSetSource
    format: DiffFormat
    skip_verdicts: bool
    def __init__(self, a: _Optional[_Union[_rulebook_sets_pb2.RulebookSetSource, _Mapping]] = ..., b: _Optional[_Union[_rulebook_sets_pb2.RulebookSetSource, _Mapping]] = ..., format: _Optional[_Union[DiffFormat, str]] = ..., skip_verdicts: _Optional[bool] = ...) -> None: ...

class DiffRulebooksResponse(_message.Message):
    __slots__ = ("rulebooks", "parameters", "rules", "verdicts_compared", "verdicts_note", "verdicts", "format", "report")
    RULEBOOKS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_COMPARED_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_NOTE_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    rulebooks: _containers.RepeatedCompositeFieldContainer[RuleTextChange]
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterValueChange]
    rules: _containers.RepeatedCompositeFieldContainer[RuleTextChange]
    verdicts_compared: bool
    verdicts_note: str
    verdicts: _containers.RepeatedCompositeFieldContainer[CriterionVerdictChange]
    format: DiffFormat
    report: str
    def __init__(self, rulebooks: _Optional[_Iterable[_Union[RuleTextChange, _Mapping]]] = ..., parameters: _Optional[_Iterable[_Union[ParameterValueChange, _Mapping]]] = ..., rules: _Optional[_Iterable[_Union[RuleTextChange, _Mapping]]] = ..., verdicts_compared: _Optional[bool] = ..., verdicts_note: _Optional[str] = ..., verdicts: _Optional[_Iterable[_Union[CriterionVerdictChange, _Mapping]]] = ..., format: _Optional[_Union[DiffFormat, str]] = ..., report: _Optional[str] = ...) -> None: ...

class ParameterValueChange(_message.Message):
    __slots__ = ("family", "name", "unit", "old_value", "new_value", "location")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    family: str
    name: str
    unit: str
    old_value: str
    new_value: str
    location: str
    def __init__(self, family: _Optional[str] = ..., name: _Optional[str] = ..., unit: _Optional[str] = ..., old_value: _Optional[str] = ..., new_value: _Optional[str] = ..., location: _Optional[str] = ...) -> None: ...

class RuleTextChange(_message.Message):
    __slots__ = ("family", "rule", "status", "location", "changes", "description")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    family: str
    rule: str
    status: str
    location: str
    changes: _containers.RepeatedCompositeFieldContainer[FieldChange]
    description: str
    def __init__(self, family: _Optional[str] = ..., rule: _Optional[str] = ..., status: _Optional[str] = ..., location: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[FieldChange, _Mapping]]] = ..., description: _Optional[str] = ...) -> None: ...

class FieldChange(_message.Message):
    __slots__ = ("what", "old_value", "new_value")
    WHAT_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    what: str
    old_value: str
    new_value: str
    def __init__(self, what: _Optional[str] = ..., old_value: _Optional[str] = ..., new_value: _Optional[str] = ...) -> None: ...

class CriterionVerdictChange(_message.Message):
    __slots__ = ("criterion", "title", "old_verdict", "old_severity", "old_rules", "new_verdict", "new_severity", "new_rules", "direction", "reading")
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    OLD_VERDICT_FIELD_NUMBER: _ClassVar[int]
    OLD_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    OLD_RULES_FIELD_NUMBER: _ClassVar[int]
    NEW_VERDICT_FIELD_NUMBER: _ClassVar[int]
    NEW_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    NEW_RULES_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    READING_FIELD_NUMBER: _ClassVar[int]
    criterion: str
    title: str
    old_verdict: Verdict
    old_severity: Severity
    old_rules: _containers.RepeatedScalarFieldContainer[str]
    new_verdict: Verdict
    new_severity: Severity
    new_rules: _containers.RepeatedScalarFieldContainer[str]
    direction: str
    reading: str
    def __init__(self, criterion: _Optional[str] = ..., title: _Optional[str] = ..., old_verdict: _Optional[_Union[Verdict, str]] = ..., old_severity: _Optional[_Union[Severity, str]] = ..., old_rules: _Optional[_Iterable[str]] = ..., new_verdict: _Optional[_Union[Verdict, str]] = ..., new_severity: _Optional[_Union[Severity, str]] = ..., new_rules: _Optional[_Iterable[str]] = ..., direction: _Optional[str] = ..., reading: _Optional[str] = ...) -> None: ...
