"""Safe YAML reading that remembers where every key and value came from.

Policy staff edit rulebooks by hand, so every error must point at `file:line:column`. PyYAML's
plain `safe_load` forgets positions and silently keeps the last of two duplicate keys; this module
composes the node tree with the safe loader, builds plain Python data itself and keeps a map from
each data path (e.g. ``("rules", 2, "when")``) to its position. No object construction happens:
only the safe scalar types (str, int, float, bool, null, date) are built.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1 << 20
MAX_ALIASES = 32
MAX_NODES = 100_000
#: The deepest nesting of mappings and lists a file may have. PyYAML composes a document
#: recursively (a few hundred levels exhaust Python's stack) and scans deep flow nesting
#: ("[[[[...") in time that grows with the square of its depth (minutes for 100,000 levels).
MAX_DEPTH = 64

DataPath = tuple[str | int, ...]

#: Plain data only: no Python objects, sets, ordered maps or binary blobs.
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null",
                                       "timestamp")
)

_TOO_BIG = f"file is larger than {MAX_FILE_BYTES} bytes"


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column in a source file."""

    line: int
    column: int


@dataclass(frozen=True)
class Violation:
    """One thing wrong with a file, located precisely enough for an editor to jump to it."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line}:{self.column}:{where} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class SourceError(Exception):
    """A file was rejected whole; carries every violation found, in file order."""

    def __init__(self, violations: list[Violation]):
        self.violations = sorted(violations, key=lambda v: (v.file, v.line, v.column))
        super().__init__("\n".join(str(v) for v in self.violations))


def format_path(path: DataPath) -> str:
    """Render a data path the way policy staff read it: ``rules[2].then[0].effect``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """Plain data read from a YAML file plus the position of every key and value in it."""

    file: str
    data: Any
    text: str
    value_marks: dict[DataPath, Mark] = field(default_factory=dict)
    key_marks: dict[DataPath, Mark] = field(default_factory=dict)
    scalar_styles: dict[DataPath, str | None] = field(default_factory=dict)

    def mark(self, path: DataPath, *, key: bool = False) -> Mark:
        """The position of `path`, falling back to its nearest ancestor that has one."""
        marks = self.key_marks if key else self.value_marks
        probe = tuple(path)
        while probe:
            if probe in marks:
                return marks[probe]
            if key and probe in self.value_marks:
                return self.value_marks[probe]
            probe = probe[:-1]
        return self.value_marks.get((), Mark(1, 1))

    def violation(self, path: DataPath, message: str, *, key: bool = False) -> Violation:
        m = self.mark(path, key=key)
        return Violation(self.file, m.line, m.column, format_path(path), message)

    def text_mark(self, path: DataPath, offset: int) -> Mark:
        """Position of character `offset` inside the scalar at `path` (for expression errors)."""
        base = self.mark(path)
        style = self.scalar_styles.get(tuple(path))
        if style in ("|", ">"):
            # Block scalars start on the next line; count lines within the text.
            value = self._value_at(path)
            if isinstance(value, str):
                before = value[:offset]
                line = base.line + 1 + before.count("\n")
                col = len(before) - (before.rfind("\n") + 1) + 1
                indent = self._block_indent(base.line)
                return Mark(line, col + indent)
            return base
        shift = 1 if style in ("'", '"') else 0
        return Mark(base.line, base.column + shift + offset)

    def _value_at(self, path: DataPath) -> Any:
        cur = self.data
        for part in path:
            try:
                cur = cur[part]
            except (KeyError, IndexError, TypeError):
                return None
        return cur

    def _block_indent(self, line: int) -> int:
        lines = self.text.splitlines()
        if line < len(lines):
            nxt = lines[line]  # the first content line (0-based index = line)
            return len(nxt) - len(nxt.lstrip(" "))
        return 0


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers in exponent form as YAML 1.2 does: 1e30 and
    1.5e-3 are numbers (YAML 1.1 wants a dot and a sign, 1.0e+30, and reads the others as
    text, which then fails as "not a number" where a number is written)."""


_EXPONENT_FORM = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FORM,
                              list("-+0123456789."))


def _float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A float as PyYAML reads it, but digits past float64's range (1e400) stay text, as
    YAML 1.1 left them: the checks that read them say the number is too large, where PyYAML
    would make it an infinity (`.inf` is still one, written so)."""
    value = loader.construct_yaml_float(node)
    if math.isinf(value) and "inf" not in node.value.lower():
        return node.value
    return value


_Loader.add_constructor("tag:yaml.org,2002:float", _float)


class _Builder:
    def __init__(self, file: str, text: str):
        self.doc = Document(file=file, data=None, text=text)
        self.loader = _Loader("")
        self.nodes = 0
        self.errors: list[Violation] = []

    @staticmethod
    def _mark(node: yaml.Node) -> Mark:
        return Mark(node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: DataPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge(self._mark(node))
        self.doc.value_marks[path] = self._mark(node)
        if node.tag not in _ALLOWED_TAGS:
            m = self._mark(node)
            self.errors.append(
                Violation(self.doc.file, m.line, m.column, format_path(path),
                          f"YAML tag {node.tag} is not allowed")
            )
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    m = self._mark(key_node)
                    self.errors.append(
                        Violation(self.doc.file, m.line, m.column, format_path(path),
                                  "keys must be plain names")
                    )
                    continue
                key = str(key_node.value)
                if key in out:
                    m = self._mark(key_node)
                    self.errors.append(
                        Violation(self.doc.file, m.line, m.column, format_path((*path, key)),
                                  f"duplicate key '{key}'")
                    )
                    continue
                self.doc.key_marks[(*path, key)] = self._mark(key_node)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        self.doc.scalar_styles[path] = node.style
        if node.tag == "tag:yaml.org,2002:timestamp":
            # Dates stay ISO text: the rulebook model parses and checks them itself.
            return str(node.value)
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            m = self._mark(node)
            self.errors.append(Violation(self.doc.file, m.line, m.column, format_path(path),
                                         _unreadable(node, exc)))
            return None


def _unreadable(node: yaml.ScalarNode, exc: Exception) -> str:
    """What is wrong with a scalar PyYAML could not make a value of: a whole number past
    the digits Python converts (4,300 by default, its guard against slow conversions) is
    said to be too large, as a smaller one past float64's range is."""
    if node.tag == "tag:yaml.org,2002:int":
        digits = sum(c.isdigit() for c in node.value)
        return f"this number is too large ({digits:,} digits)"
    return f"this value cannot be read: {exc}"


class _TooLarge(Exception):
    def __init__(self, mark: Mark):
        self.mark = mark


def _flow_depth(text: str, file: str) -> None:
    """Refuse flow nesting ("[[[..." or "{{{...") deeper than `MAX_DEPTH` before PyYAML reads
    it: a scan of the brackets outside quotes and comments that can open a collection (at a
    line's start or after ':', '-', ',' or another bracket; one inside a plain text, as in
    "a range [0, 1)", does not)."""
    depth = 0
    quote = ""
    for number, line in enumerate(text.split("\n"), start=1):
        column = 0
        before = ""  # the last character on the line outside quotes but spaces
        while column < len(line):
            c = line[column]
            if quote:
                if c == "\\" and quote == '"':
                    column += 1
                elif c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "#" and (column == 0 or line[column - 1] in " \t"):
                break
            elif c in "[{" and before in ("", ":", "-", ",", "[", "{"):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SourceError([Violation(file, number, column + 1, "",
                                                 f"nested more than {MAX_DEPTH} levels deep")])
            elif c in "]}":
                depth = max(0, depth - 1)
            if not quote and c not in " \t":
                before = c
            column += 1


def _check_structure(text: str, file: str) -> None:
    """Before the document is built: no more than `MAX_ALIASES` aliases, no nesting deeper
    than `MAX_DEPTH`, no character YAML does not allow, each reported where it is."""
    aliases = 0
    depth = 0
    _flow_depth(text, file)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:  # (block nesting: indented, so no longer than the file)
                    m = event.start_mark
                    raise SourceError([
                        Violation(file, m.line + 1, m.column + 1, "",
                                  f"nested more than {MAX_DEPTH} levels deep")
                    ])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    m = event.start_mark
                    raise SourceError([
                        Violation(file, m.line + 1, m.column + 1, "",
                                  f"more than {MAX_ALIASES} YAML aliases")
                    ])
    except yaml.reader.ReaderError as exc:
        raise SourceError([_reader_violation(file, text, exc)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SourceError([_yaml_violation(file, exc)]) from None


def _reader_violation(file: str, text: str, exc: yaml.reader.ReaderError) -> Violation:
    """A character YAML does not allow (a control character, say), at its line and column:
    PyYAML's reader gives only its offset in the text."""
    at = max(0, min(int(exc.position), len(text)))
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    what = (f"U+{exc.character:04X}" if isinstance(exc.character, int)
            else repr(exc.character))
    return Violation(file, line, column, "",
                     f"YAML does not allow the character {what} ({exc.reason})")


def _yaml_violation(file: str, exc: yaml.MarkedYAMLError) -> Violation:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    return Violation(file, line, col, "", f"YAML syntax error: {problem}")


def read_text(text: str, file: str) -> Document:
    """Parse YAML text into a located Document, or raise SourceError naming every problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise SourceError([Violation(file, 1, 1, "", _TOO_BIG)])
    _check_structure(text, file)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise SourceError([_yaml_violation(file, exc)]) from None
    except yaml.YAMLError as exc:
        raise SourceError([Violation(file, 1, 1, "", f"YAML error: {exc}")]) from None
    builder = _Builder(file, text)
    if node is None:
        raise SourceError([Violation(file, 1, 1, "", "file is empty")])
    try:
        builder.doc.data = builder.build(node, ())
    except _TooLarge as exc:
        raise SourceError([
            Violation(file, exc.mark.line, exc.mark.column, "",
                      f"more than {MAX_NODES} YAML nodes")
        ]) from None
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise SourceError([Violation(file, 1, 1, "", f"YAML error: {exc}")]) from None
    if builder.errors:
        raise SourceError(builder.errors)
    return builder.doc


def read_file(path: str | Path, display: str | None = None) -> Document:
    """Read a YAML file from disk, refusing oversize files before reading them whole."""
    p = Path(path)
    name = display or str(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise SourceError([Violation(name, 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    if size > MAX_FILE_BYTES:
        raise SourceError([Violation(name, 1, 1, "", _TOO_BIG)])
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError([Violation(name, 1, 1, "", f"not UTF-8 text: {exc.reason}")]) from None
    return read_text(text, name)
