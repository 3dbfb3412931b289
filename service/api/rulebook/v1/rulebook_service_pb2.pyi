from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SetRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SET_ROLE_UNSPECIFIED: _ClassVar[SetRole]
    SET_ROLE_PRIMARY: _ClassVar[SetRole]
    SET_ROLE_SHADOW: _ClassVar[SetRole]
SET_ROLE_UNSPECIFIED: SetRole
SET_ROLE_PRIMARY: SetRole
SET_ROLE_SHADOW: SetRole

class RulebookInfo(_message.Message):
    __slots__ = ("id", "family", "revision", "version", "published", "effective", "rules", "parameters")
    ID_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    family: str
    revision: str
    version: str
    published: str
    effective: str
    rules: int
    parameters: int
    def __init__(self, id: _Optional[str] = ..., family: _Optional[str] = ..., revision: _Optional[str] = ..., version: _Optional[str] = ..., published: _Optional[str] = ..., effective: _Optional[str] = ..., rules: _Optional[int] = ..., parameters: _Optional[int] = ...) -> None: ...

class RulebookSetInfo(_message.Message):
    __slots__ = ("id", "role", "revision", "rulebooks")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RULEBOOKS_FIELD_NUMBER: _ClassVar[int]
    id: str
    role: SetRole
    revision: str
    rulebooks: _containers.RepeatedCompositeFieldContainer[RulebookInfo]
    def __init__(self, id: _Optional[str] = ..., role: _Optional[_Union[SetRole, str]] = ..., revision: _Optional[str] = ..., rulebooks: _Optional[_Iterable[_Union[RulebookInfo, _Mapping]]] = ...) -> None: ...

class ListRulebookSetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRulebookSetsResponse(_message.Message):
    __slots__ = ("sets",)
    SETS_FIELD_NUMBER: _ClassVar[int]
    sets: _containers.RepeatedCompositeFieldContainer[RulebookSetInfo]
    def __init__(self, sets: _Optional[_Iterable[_Union[RulebookSetInfo, _Mapping]]] = ...) -> None: ...

class GetRulebookRequest(_message.Message):
    __slots__ = ("role", "family")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    role: SetRole
    family: str
    def __init__(self, role: _Optional[_Union[SetRole, str]] = ..., family: _Optional[str] = ...) -> None: ...

class GetRulebookResponse(_message.Message):
    __slots__ = ("info", "yaml_text", "parsed")
    INFO_FIELD_NUMBER: _ClassVar[int]
    YAML_TEXT_FIELD_NUMBER: _ClassVar[int]
    PARSED_FIELD_NUMBER: _ClassVar[int]
    info: RulebookInfo
    yaml_text: str
    parsed: _struct_pb2.Struct
    def __init__(self, info: _Optional[_Union[RulebookInfo, _Mapping]] = ..., yaml_text: _Optional[str] = ..., parsed: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ValidateRulebookRequest(_message.Message):
    __slots__ = ("yaml_text", "file_name")
    YAML_TEXT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    yaml_text: str
    file_name: str
    def __init__(self, yaml_text: _Optional[str] = ..., file_name: _Optional[str] = ...) -> None: ...

class ValidateRulebookResponse(_message.Message):
    __slots__ = ("valid", "violations", "info")
    VALID_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    violations: _containers.RepeatedCompositeFieldContainer[RulebookViolation]
    info: RulebookInfo
    def __init__(self, valid: _Optional[bool] = ..., violations: _Optional[_Iterable[_Union[RulebookViolation, _Mapping]]] = ..., info: _Optional[_Union[RulebookInfo, _Mapping]] = ...) -> None: ...

class RulebookViolation(_message.Message):
    __slots__ = ("file", "line", "column", "path", "message")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file: str
    line: int
    column: int
    path: str
    message: str
    def __init__(self, file: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class LoadRulebookSetRequest(_message.Message):
    __slots__ = ("role", "set_id", "files")
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    role: SetRole
    set_id: str
    files: _containers.ScalarMap[str, str]
    def __init__(self, role: _Optional[_Union[SetRole, str]] = ..., set_id: _Optional[str] = ..., files: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LoadRulebookSetResponse(_message.Message):
    __slots__ = ("set",)
    SET_FIELD_NUMBER: _ClassVar[int]
    set: RulebookSetInfo
    def __init__(self, set: _Optional[_Union[RulebookSetInfo, _Mapping]] = ...) -> None: ...
