"""The fairness criteria catalogue: `rules/criteria/*.yaml` read, checked and hashed.

Policy staff edit the catalogue by hand (thresholds, readings, citations), so it is read with the
same located YAML reader as the rulebooks and every error names `file:line:column`. The catalogue
revision is a hash of the files' text: a report names the exact criteria it was judged against.

`stream.yaml` in the same directory is a different table (the live stream criteria exported as
Prometheus metrics, read by `service.aggregates`) and is not part of this catalogue.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from rules.model import Family
from rules.yamlsource import MAX_FILE_BYTES, SourceError, Violation, format_path, read_text
from service.audit.finding import Citation

#: Files of the criteria directory that are not part of the catalogue.
NOT_CATALOGUE = frozenset({"stream.yaml"})

CriterionId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Words = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
CheckKindName = Literal["static", "dynamic", "projected"]
SeverityName = Literal["info", "low", "medium", "high", "critical"]
ParamUnit = Literal["yuan", "fraction", "hours", "days", "count", "ratio", "index", "score",
                    "flag", "name", "names"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class CitationModel(_Strict):
    law: Words
    article: Words
    text: str = ""
    verified: bool = True


class CriterionParameter(_Strict):
    """A threshold policy staff may change: its value, unit and where the figure comes from."""

    value: bool | int | float | str | list[str]
    unit: ParamUnit
    source: Annotated[str, StringConstraints(min_length=3, max_length=2000)]


class ReadingModel(_Strict):
    """Plain-language sentences with `{placeholders}` filled from a finding's evidence."""

    violation: Words
    warning: str | None = None
    pass_: str | None = Field(default=None, alias="pass")
    not_applicable: str | None = None
    dynamic: str | None = None
    projected: str | None = None


class CriterionModel(_Strict):
    id: CriterionId
    title: Words
    families: list[Family] = Field(min_length=1)
    description: Words
    citations: list[CitationModel] = Field(min_length=1)
    severity: SeverityName
    checks: list[CheckKindName] = Field(min_length=1)
    parameters: dict[CriterionId, CriterionParameter] = Field(default_factory=dict)
    example: dict[str, int | float | str] = Field(default_factory=dict)
    reading: ReadingModel


class CatalogueFile(_Strict):
    criteria: list[CriterionModel] = Field(min_length=1)


@dataclass(frozen=True)
class Criterion:
    """One criterion as the checks use it, with its thresholds after any overrides."""

    id: str
    title: str
    families: tuple[str, ...]
    description: str
    citations: tuple[Citation, ...]
    severity: str
    checks: tuple[str, ...]
    parameters: Mapping[str, Any]
    parameter_specs: Mapping[str, CriterionParameter]
    example: Mapping[str, Any]
    reading: ReadingModel
    location: str  # "rules/criteria/pricing.yaml:24"

    @property
    def citation(self) -> Citation:
        return self.citations[0]

    def param(self, name: str) -> Any:
        try:
            return self.parameters[name]
        except KeyError:
            raise KeyError(f"criterion {self.id} ({self.location}) has no parameter "
                           f"'{name}'") from None

    def template(self, verdict: str, kind: str = "static") -> str | None:
        """The reading for a verdict; dynamic and projected findings have their own sentence."""
        r = self.reading
        if kind in ("dynamic", "projected") and verdict != "not_applicable":
            own = r.dynamic if kind == "dynamic" else r.projected
            if own:
                return own
        return {"violation": r.violation, "warning": r.warning or r.violation,
                "pass": r.pass_, "not_applicable": r.not_applicable}.get(verdict)


@dataclass(frozen=True)
class Catalogue:
    criteria: Mapping[str, Criterion]
    revision: str
    files: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.criteria.values())

    def __len__(self) -> int:
        return len(self.criteria)

    def __getitem__(self, criterion_id: str) -> Criterion:
        return self.criteria[criterion_id]

    def with_parameters(self, overrides: Mapping[str, Any] | None) -> Catalogue:
        """A copy with thresholds changed, given as {"criterion.parameter": value}.

        A name that does not exist, or a value of another type than the catalogue's, is an error:
        a misspelt override that silently did nothing would make a report lie about its
        thresholds.
        """
        if not overrides:
            return self
        changed: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            cid, _, pname = key.partition(".")
            if cid not in self.criteria or not pname:
                raise ValueError(f"unknown criterion parameter '{key}' (write criterion.parameter,"
                                 f" e.g. appeal_capacity.orders_per_day)")
            crit = self.criteria[cid]
            if pname not in crit.parameters:
                known = ", ".join(sorted(crit.parameters)) or "none"
                raise ValueError(f"criterion {cid} has no parameter '{pname}' (it has: {known})")
            old = crit.parameters[pname]
            new = _coerce(key, old, value)
            spec = crit.parameter_specs.get(pname)
            # the checks a value in the catalogue file gets: a fraction stays within 0..1, ...
            problem = _unit_problem(spec.model_copy(update={"value": new})) if spec else None
            if problem:
                raise ValueError(f"{key}: {problem}, got {value!r}")
            changed.setdefault(cid, dict(crit.parameters))[pname] = new
        criteria = dict(self.criteria)
        for cid, params in changed.items():
            criteria[cid] = replace(criteria[cid], parameters=MappingProxyType(params))
        h = hashlib.sha256(self.revision.encode())
        for key in sorted(overrides):
            h.update(f"|{key}={overrides[key]!r}".encode())
        return Catalogue(MappingProxyType(criteria), h.hexdigest()[:16], self.files,
                         MappingProxyType({**self.overrides, **overrides}))


def _coerce(key: str, old: Any, value: Any) -> Any:
    """Read an override (often text from the command line) as the type of the catalogue value."""
    if isinstance(old, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if isinstance(old, int | float):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{key}: expected a finite number, got {value!r}")
        return int(number) if isinstance(old, int) and number.is_integer() else number
    if isinstance(old, list):
        return [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    return str(value)


def default_directory() -> Path:
    return Path(str(resources.files("rules").joinpath("criteria")))


def catalogue_files(directory: str | Path | None = None) -> list[Path]:
    d = Path(directory) if directory is not None else default_directory()
    return sorted(p for p in d.glob("*.yaml") if p.is_file() and p.name not in NOT_CATALOGUE)


def load_catalogue(directory: str | Path | None = None,
                   display_root: str | None = "rules/criteria") -> Catalogue:
    """Load (or reuse) the catalogue of a directory; see `read_catalogue`.

    Parsing the YAML with positions takes a few hundred milliseconds, so a catalogue is kept
    while its files are unchanged (same names, sizes and modification times): the gRPC service
    and repeated audits read it once.
    """
    files = catalogue_files(directory)
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _cached(str(directory) if directory is not None else None, display_root, stamp)


@functools.lru_cache(maxsize=8)
def _cached(directory: str | None, display_root: str | None,
            stamp: tuple[tuple[str, int, int], ...]) -> Catalogue:
    return read_catalogue(directory, display_root)


def read_catalogue(directory: str | Path | None = None,
                   display_root: str | None = "rules/criteria") -> Catalogue:
    """Load every catalogue file of a directory (default: the bundled `rules/criteria/`).

    All files are checked before failing; a SourceError carries every problem with its place.
    File names in locations are shown relative to `display_root` for the bundled catalogue so a
    report does not depend on where the package is installed.
    """
    files = catalogue_files(directory)
    if not files:
        where = str(directory or "rules/criteria")
        raise SourceError([Violation(where, 1, 1, "", "no criteria files (*.yaml) here")])
    bundled = directory is None
    texts: list[tuple[str, str]] = []
    for f in files:
        name = f"{display_root}/{f.name}" if bundled and display_root else str(f)
        if f.stat().st_size > MAX_FILE_BYTES:
            raise SourceError([Violation(name, 1, 1, "", f"file is larger than "
                                                         f"{MAX_FILE_BYTES} bytes")])
        try:
            texts.append((name, f.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            raise SourceError([Violation(name, 1, 1, "", f"not UTF-8 text: {exc.reason}")]) \
                from None
    return load_catalogue_texts(texts)


def load_catalogue_texts(texts: list[tuple[str, str]]) -> Catalogue:
    """Build a catalogue from (file name, YAML text) pairs."""
    errors: list[Violation] = []
    criteria: dict[str, Criterion] = {}
    h = hashlib.sha256()
    for name, text in texts:
        h.update(name.rsplit("/", 1)[-1].encode())
        h.update(b"\0")
        h.update(text.encode("utf-8"))
        try:
            doc = read_text(text, name)
        except SourceError as exc:
            errors.extend(exc.violations)
            continue
        try:
            model = CatalogueFile.model_validate(doc.data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = f"unknown key '{loc[-1]}'"
                    errors.append(doc.violation(loc, msg, key=True))
                elif err["type"] == "missing":
                    errors.append(doc.violation(loc[:-1], f"missing key '{loc[-1]}'", key=True))
                else:
                    errors.append(doc.violation(loc, msg))
            continue
        for i, c in enumerate(model.criteria):
            mark = doc.mark(("criteria", i))
            if c.id in criteria:
                errors.append(doc.violation(("criteria", i, "id"),
                                            f"criterion id '{c.id}' is already defined at "
                                            f"{criteria[c.id].location}"))
                continue
            for pname, spec in c.parameters.items():
                problem = _unit_problem(spec)
                if problem:
                    errors.append(doc.violation(("criteria", i, "parameters", pname, "value"),
                                                problem))
            for verdict in ("violation", "warning", "pass_", "not_applicable", "dynamic",
                            "projected"):
                template = getattr(c.reading, verdict)
                bad = _template_problem(template) if template else None
                if bad:
                    key = "pass" if verdict == "pass_" else verdict
                    errors.append(doc.violation(("criteria", i, "reading", key), bad))
            criteria[c.id] = Criterion(
                id=c.id, title=" ".join(c.title.split()), families=tuple(c.families),
                description=" ".join(c.description.split()),
                citations=tuple(Citation(law=x.law, article=x.article,
                                         text=" ".join(x.text.split()), verified=x.verified)
                                for x in c.citations),
                severity=c.severity, checks=tuple(dict.fromkeys(c.checks)),
                parameters=MappingProxyType({k: v.value for k, v in c.parameters.items()}),
                parameter_specs=dict(c.parameters), example=dict(c.example), reading=c.reading,
                location=f"{name}:{mark.line}",
            )
    if errors:
        raise SourceError(errors)
    return Catalogue(MappingProxyType(criteria), h.hexdigest()[:16], tuple(n for n, _ in texts))


def _unit_problem(spec: CriterionParameter) -> str | None:
    v = spec.value
    if spec.unit == "flag":
        return None if isinstance(v, bool) else "a flag parameter must be true or false"
    if spec.unit == "name":
        return None if isinstance(v, str) else "a name parameter must be text"
    if spec.unit == "names":
        return None if isinstance(v, list) else "a names parameter must be a list of text"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"a {spec.unit} parameter must be a number"
    if spec.unit in ("fraction", "ratio") and not 0 <= v <= 1:
        return f"a {spec.unit} is between 0 and 1 (5 % is 0.05)"
    if v < 0:
        return "must not be negative"
    return None


_PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMAT_SPEC = re.compile(r"[<>=^]?[+\- ]?[,_]?(?:\d{1,2})?(?:\.\d{1,2})?[%dfgeEs]?")


def _template_problem(template: str) -> str | None:
    """A reading names evidence values and formats numbers, nothing more: no attribute or index
    access (`{x.__class__}`), no conversions, no widths that would blow a report up."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"reading is not a valid template: {exc}"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not _PLACEHOLDER.fullmatch(name):
            return (f"reading placeholder {{{name}}} must be a plain name like {{unit_cost}} "
                    "(no attributes, indexes or positions)")
        if conversion:
            return f"reading placeholder {{{name}!{conversion}}} must not use a conversion"
        if spec and not _FORMAT_SPEC.fullmatch(spec):
            return (f"reading placeholder {{{name}:{spec}}} has a format other than a number "
                    "format like :,.0f or :.1%")
    return None


class _Missing:
    def __init__(self, name: str):
        self.name = name

    def __format__(self, spec: str) -> str:
        return "{" + self.name + "}"


class _Formatter(string.Formatter):
    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(key, str):
            return kwargs.get(key, _Missing(key))
        return super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


def render_reading(template: str | None, values: Mapping[str, Any]) -> str:
    """Fill a reading's placeholders; one missing shows as `{name}` rather than failing."""
    if not template:
        return ""
    return " ".join(_Formatter().vformat(template, (), dict(values)).split())


__all__ = ["Catalogue", "Criterion", "format_path", "load_catalogue", "load_catalogue_texts",
           "render_reading"]
