"""Load and check rulebooks: YAML text in, a `Rulebook` out, or every error with its position.

Checking happens in two passes over one located document: pydantic checks the structure (keys,
types), then this module checks meaning: event types exist, every expression parses and
type-checks against what its events provide, effects exist and get the right arguments, parameters
are defined. A file with any error is rejected whole.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rules import expression as ex
from rules.effects import EFFECTS, EffectSpec
from rules.expression.parser import finite_number
from rules.model import FAMILIES, Parameter, RulebookFile
from rules.rulebook import (
    CompiledExpr,
    DeadlineIR,
    EffectCallIR,
    Location,
    Rulebook,
    RulebookSet,
    RuleIR,
)
from rules.vocabulary import EVENT_FIELDS, EVENT_TYPES, namespaces_for, symbols_for
from rules.yamlsource import DataPath, Document, SourceError, Violation, read_file, read_text

_TYPE_OF_KIND = {"number": ex.Type.NUMBER, "duration": ex.Type.NUMBER, "bool": ex.Type.BOOL}


def _suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _pydantic_violations(doc: Document, exc: ValidationError) -> list[Violation]:
    out: list[Violation] = []
    for err in exc.errors(include_url=False):
        loc: DataPath = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            parent = _parent_keys(loc[:-1])
            out.append(doc.violation(loc, f"unknown key '{key}'{_suggest(key, parent)}", key=True))
            continue
        if kind == "missing":
            out.append(doc.violation(loc[:-1], f"missing key '{loc[-1]}'", key=True))
            continue
        # Union errors repeat per member; drop the member name pydantic puts in the path.
        clean = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        if isinstance(loc[-1], str) and loc[-1] in {"bool", "int", "float", "str"}:
            clean = clean[:-1]
        # A validator's own message, without pydantic's "Value error, " before it.
        error = err.get("ctx", {}).get("error") if kind == "value_error" else None
        out.append(doc.violation(clean, str(error) if error is not None else err["msg"]))
    # Deduplicate (unions report one error per alternative).
    seen: set[tuple[int, int, str]] = set()
    unique = []
    for v in out:
        k = (v.line, v.column, v.path)
        if k not in seen:
            seen.add(k)
            unique.append(v)
    return unique


def _parent_keys(loc: DataPath) -> list[str]:
    """Valid keys at a location, for 'did you mean' suggestions."""
    from rules.model import Deadline, Metadata, Rule

    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return list(RulebookFile.model_fields)
    last = names[-1]
    table = {
        "rulebook": Metadata,
        "rules": Rule,
        "deadline": Deadline,
    }
    if last in table:
        return list(table[last].model_fields)
    if len(names) >= 2 and names[-2] == "parameters":
        return list(Parameter.model_fields)
    return []


class _Checker:
    """Semantic checks over one validated file; collects violations instead of stopping."""

    def __init__(self, doc: Document, model: RulebookFile):
        self.doc = doc
        self.model = model
        self.errors: list[Violation] = []
        self.parameters: dict[str, Any] = {}

    def error(self, path: DataPath, message: str, *, key: bool = False) -> None:
        self.errors.append(self.doc.violation(path, message, key=key))

    # -- parameters -------------------------------------------------------------------------
    def check_parameters(self) -> None:
        for name, spec in self.model.parameters.items():
            path: DataPath = ("parameters", name, "value")
            value = spec.value
            if isinstance(value, str) and spec.unit in ("duration", "fraction"):
                value = self._unit_literal(path, value, spec.unit)
            elif spec.unit == "duration" and not isinstance(value, bool | int | float):
                self.error(path, "a duration is written like 36h, 72h or 7d")
            elif spec.unit == "flag" and not isinstance(value, bool):
                self.error(path, "a flag parameter must be true or false")
            elif spec.unit == "label" and not isinstance(value, str | list):
                self.error(path, "a label parameter must be text or a list of text")
            elif spec.unit not in ("flag", "label") and isinstance(value, bool | str):
                self.error(path, f"a {spec.unit} parameter must be a number")
            elif spec.unit in ("count", "impressions") and isinstance(value, int | float) \
                    and not value >= 0:
                self.error(path, f"a {spec.unit} cannot be negative")
            if isinstance(value, list) and len({type(v) is str for v in value}) > 1:
                self.error(path, "a list parameter must hold only numbers or only text")
            self.parameters[name] = value

    def _unit_literal(self, path: DataPath, text: str, unit: str) -> Any:
        try:
            node = ex.parse(text)
        except ex.ExpressionError as exc:
            self.error(path, f"'{text}': {exc.message}")
            return 0
        if not isinstance(node, ex.Const) or isinstance(node.value, bool | str):
            self.error(path, f"'{text}' is not a {unit} like 36h or 5%")
            return 0
        if unit == "duration" and node.unit not in ("s", "m", "h", "d", "w"):
            self.error(path, f"'{text}' is not a duration like 36h, 72h or 7d")
        if unit == "fraction" and node.unit != "%":
            self.error(path, f"'{text}' is not a percentage like 5%")
        return node.value

    # -- expressions ------------------------------------------------------------------------
    def expr(
        self, path: DataPath, text: str | bool, symbols: Mapping[str, ex.Type], want: ex.Type
    ) -> CompiledExpr | None:
        source = ("true" if text else "false") if isinstance(text, bool) else text
        try:
            node = ex.parse(source)
            node, typ = ex.resolve(node, symbols, self.parameters)
        except ex.ExpressionError as exc:
            m = self.doc.text_mark(path, exc.offset) if not isinstance(text, bool) else \
                self.doc.mark(path)
            self.errors.append(
                Violation(self.doc.file, m.line, m.column, _fmt(path), exc.message)
            )
            return None
        if typ != want:
            self.error(path, f"'{source}' is {_article(typ)}, but {_article(want)} is needed here")
            return None
        return CompiledExpr(
            text=source,
            node=node,
            evaluate=ex.compile_python(node),
            names=frozenset(ex.names(node)),
            params=frozenset(ex.params(node)),
        )

    # -- effects ----------------------------------------------------------------------------
    def effects(
        self, path: DataPath, calls: list[Any], symbols: Mapping[str, ex.Type]
    ) -> tuple[EffectCallIR, ...]:
        out = []
        for i, call in enumerate(calls):
            cpath: DataPath = (*path, i)
            spec = EFFECTS.get(call.effect)
            if spec is None:
                self.error((*cpath, "effect"),
                           f"unknown effect '{call.effect}'{_suggest(call.effect, list(EFFECTS))}")
                continue
            ir = self.effect_args(cpath, spec, dict(call.model_extra or {}), symbols)
            if ir is not None:
                out.append(ir)
        return tuple(out)

    def effect_args(
        self, path: DataPath, spec: EffectSpec, given: dict[str, Any],
        symbols: Mapping[str, ex.Type],
    ) -> EffectCallIR | None:
        ok = True
        literals: dict[str, Any] = {}
        exprs: dict[str, CompiledExpr] = {}
        for name in given:
            if name not in spec.args:
                self.error((*path, name),
                           f"effect '{spec.name}' has no argument '{name}'"
                           f"{_suggest(name, list(spec.args))}", key=True)
                ok = False
        for name, arg in spec.args.items():
            apath: DataPath = (*path, name)
            if name not in given:
                if arg.required:
                    self.error(path, f"effect '{spec.name}' needs argument '{name}' ({arg.doc})")
                    ok = False
                elif arg.default is not None:
                    literals[name] = arg.default
                continue
            value = given[name]
            if arg.kind == "choice":
                if value not in arg.choices:
                    self.error(apath, f"'{value}' is not one of {', '.join(arg.choices)}")
                    ok = False
                literals[name] = value
            elif arg.kind == "text":
                if not isinstance(value, str):
                    self.error(apath, f"argument '{name}' must be text")
                    ok = False
                literals[name] = value
            else:
                if isinstance(value, bool) and arg.kind == "bool":
                    literals[name] = value
                    continue
                if isinstance(value, int | float) and not isinstance(value, bool) \
                        and arg.kind in ("number", "duration"):
                    if not finite_number(value):  # (as the expression parser says it)
                        self.error(apath, "this number is too large" if value == value
                                   else "NaN is not a number a rule can use")
                        ok = False
                    literals[name] = value
                    continue
                if not isinstance(value, str):
                    self.error(apath, f"argument '{name}' must be {arg.kind}")
                    ok = False
                    continue
                compiled = self.expr(apath, value, symbols, _TYPE_OF_KIND[arg.kind])
                if compiled is None:
                    ok = False
                else:
                    exprs[name] = compiled
        if not ok:
            return None
        m = self.doc.mark(path)
        return EffectCallIR(spec.name, spec, literals, exprs, Location(self.doc.file, m.line,
                                                                       m.column))

    # -- rules ------------------------------------------------------------------------------
    def rules(self) -> tuple[RuleIR, ...]:
        out: list[RuleIR] = []
        seen: set[str] = set()
        for i, rule in enumerate(self.model.rules):
            path: DataPath = ("rules", i)
            if rule.id in seen:
                self.error((*path, "id"), f"rule id '{rule.id}' is used twice")
            seen.add(rule.id)
            bad = [t for t in rule.on if t not in EVENT_FIELDS]
            for t in bad:
                j = rule.on.index(t)
                self.error((*path, "on", j),
                           f"unknown event type '{t}'{_suggest(t, EVENT_TYPES)}")
            if bad:
                continue
            symbols = symbols_for(rule.on)
            when = self.expr((*path, "when"), rule.when, symbols, ex.Type.BOOL)
            then = self.effects((*path, "then"), rule.then, symbols)
            deadline = self.deadline(path, rule, symbols) if rule.deadline else None
            m = self.doc.mark(path)
            if when is None or len(then) != len(rule.then):
                continue
            if rule.deadline and deadline is None:
                continue
            out.append(RuleIR(
                id=rule.id, index=i, description=rule.description, on=tuple(rule.on), when=when,
                then=then, deadline=deadline, source=rule.source,
                location=Location(self.doc.file, m.line, m.column),
            ))
        return tuple(out)

    def deadline(self, path: DataPath, rule: Any, symbols: Mapping[str, ex.Type]) \
            -> DeadlineIR | None:
        d = rule.deadline
        dpath: DataPath = (*path, "deadline")
        ok = True
        for j, t in enumerate(d.unless):
            if t not in EVENT_FIELDS:
                self.error((*dpath, "unless", j),
                           f"unknown event type '{t}'{_suggest(t, EVENT_TYPES)}")
                ok = False
        if d.key != "merchant":
            field = f"{d.key}_id"
            lacking = [t for t in (*rule.on, *d.unless)
                       if t in EVENT_FIELDS and field not in EVENT_FIELDS[t]]
            if lacking:
                self.error((*dpath, "key"),
                           f"key '{d.key}' needs {field} on every event, "
                           f"but {', '.join(lacking)} has none")
                ok = False
        params_only = {k: v for k, v in symbols.items() if k.startswith("event.")}
        after = self.expr((*dpath, "after"), d.after, params_only, ex.Type.NUMBER)
        when = self.expr((*dpath, "when"), d.when, symbols, ex.Type.BOOL) if d.when else None
        then = self.effects((*dpath, "then"), d.then, symbols)
        if not ok or after is None or (d.when and when is None) or len(then) != len(d.then):
            return None
        return DeadlineIR(after=after, unless=tuple(d.unless), key=d.key, when=when, then=then)


def _fmt(path: DataPath) -> str:
    from rules.yamlsource import format_path

    return format_path(path)


def _article(t: ex.Type) -> str:
    return {
        ex.Type.NUMBER: "a number",
        ex.Type.STRING: "text",
        ex.Type.BOOL: "a true/false condition",
        ex.Type.LIST: "a list",
    }.get(t, str(t))


def load_document(doc: Document, set_id: str) -> Rulebook:
    """Check a located document and build the Rulebook, or raise SourceError with every error."""
    if not isinstance(doc.data, dict):
        raise SourceError([doc.violation((), "a rulebook file is a mapping with keys "
                                             "rulebook, parameters and rules")])
    try:
        model = RulebookFile.model_validate(doc.data)
    except ValidationError as exc:
        raise SourceError(_pydantic_violations(doc, exc)) from None
    checker = _Checker(doc, model)
    stem = Path(doc.file).stem
    if stem in FAMILIES and stem != model.rulebook.family:
        checker.error(("rulebook", "family"),
                      f"file {Path(doc.file).name} holds family '{model.rulebook.family}'; "
                      f"name the file {model.rulebook.family}.yaml")
    if model.rulebook.effective < model.rulebook.published:
        checker.error(("rulebook", "effective"), "takes effect before it is published")
    checker.check_parameters()
    rules = checker.rules()
    if checker.errors:
        raise SourceError(checker.errors)
    return Rulebook(
        set_id=set_id,
        family=model.rulebook.family,
        file=doc.file,
        text=doc.text,
        metadata=model.rulebook,
        parameters=dict(checker.parameters),
        parameter_specs=dict(model.parameters),
        rules=rules,
    )


def load_rulebook_text(text: str, file: str, set_id: str = "inline") -> Rulebook:
    return load_document(read_text(text, file), set_id)


def load_rulebook(path: str | Path, set_id: str | None = None) -> Rulebook:
    p = Path(path)
    return load_document(read_file(p), set_id or p.parent.name)


def rulebook_files(directory: str | Path) -> list[Path]:
    """The rulebook files of a set: `<family>.yaml` at the top of the directory."""
    d = Path(directory)
    return sorted(p for p in d.glob("*.yaml") if p.is_file())


def load_set(directory: str | Path) -> RulebookSet:
    """Load every rulebook in a directory as one set; all files are checked before failing."""
    d = Path(directory)
    if not d.is_dir():
        raise SourceError([Violation(str(d), 1, 1, "", "not a directory of rulebooks")])
    files = rulebook_files(d)
    if not files:
        raise SourceError([Violation(str(d), 1, 1, "", "no rulebook files (*.yaml) here")])
    return _assemble(d.name, str(d), [(str(f), lambda f=f: read_file(f)) for f in files])


def _assemble(set_id: str, path: str, sources: list[tuple[str, Any]]) -> RulebookSet:
    """Check every (name, read-document) source, then the set as a whole; fail with all errors."""
    errors: list[Violation] = []
    books: dict[str, Rulebook] = {}
    for name, read in sources:
        try:
            rb = load_document(read(), set_id)
        except SourceError as exc:
            errors.extend(exc.violations)
            continue
        if rb.family in books:
            other = books[rb.family].file
            errors.append(Violation(name, 1, 1, "rulebook.family",
                                    f"family '{rb.family}' already defined by {other}"))
            continue
        books[rb.family] = rb
    zones = {rb.metadata.timezone for rb in books.values()}
    if len(zones) > 1:
        errors.append(Violation(path or set_id, 1, 1, "rulebook.timezone",
                                f"rulebooks of one set must share a time zone: {sorted(zones)}"))
    if errors:
        raise SourceError(errors)
    return RulebookSet(id=set_id, path=path, rulebooks=books)


__all__ = [
    "SourceError",
    "Violation",
    "load_document",
    "load_rulebook",
    "load_rulebook_text",
    "load_set",
    "namespaces_for",
]


def load_set_from_texts(set_id: str, files: dict[str, str]) -> RulebookSet:
    """Load a set sent as texts (file name -> YAML), e.g. by an administrator over gRPC.

    The same checks as `load_set`; file names must be `<family>.yaml` with no directories.
    """
    if not files:
        raise SourceError([Violation(set_id, 1, 1, "", "no rulebook files were sent")])
    bad = [Violation(name, 1, 1, "", "file names are <family>.yaml, one of "
                                     + ", ".join(f + ".yaml" for f in FAMILIES))
           for name in sorted(files)
           if "/" in name or "\\" in name or not name.endswith(".yaml")
           or Path(name).stem not in FAMILIES]
    if bad:
        raise SourceError(bad)
    return _assemble(set_id, "", [(name, lambda name=name: read_text(files[name], name))
                                  for name in sorted(files)])
