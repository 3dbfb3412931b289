from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RulebookSetSource(_message.Message):
    __slots__ = ("set_id", "inline")
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    set_id: str
    inline: InlineRulebookSet
    def __init__(self, set_id: _Optional[str] = ..., inline: _Optional[_Union[InlineRulebookSet, _Mapping]] = ...) -> None: ...

class InlineRulebookSet(_message.Message):
    __slots__ = ("set_id", "files")
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    set_id: str
    files: _containers.ScalarMap[str, str]
    def __init__(self, set_id: _Optional[str] = ..., files: _Optional[_Mapping[str, str]] = ...) -> None: ...
