"""Resolve a `rulebook.v1.RulebookSetSource` into a loaded rulebook set.

AuditService and SimulationService both take a set either by id (one the server runs, or a
bundled one under ``rules/books``) or inline (file name -> YAML text, e.g. a proposed rule
change). Both resolve it here, so a bad source gets the same INVALID_ARGUMENT field violations
from either: the field path of the request (``rulebooks.set_id``,
``a.inline.files[refund.yaml]``) and, for a set that does not load, ``file:line:column`` of
each problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rules
from rules.loader import load_set, load_set_from_texts
from rules.rulebook import RulebookSet
from rules.yamlsource import SourceError

#: The bundled rulebook sets, one directory per set.
BUNDLED_BOOKS = Path(rules.__file__).resolve().parent / "books"
SET_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def bad_request(message: str, violations: list[tuple[str, str]]) -> Exception:
    """A service.server.BadRequest (INVALID_ARGUMENT with these field violations)."""
    from service.server import BadRequest  # late: service.server imports the services

    return BadRequest(message, violations)


def known_set_ids(sets: Iterable[RulebookSet], books_dir: Path = BUNDLED_BOOKS) -> list[str]:
    """The ids a source may name: the given sets' and the bundled ones, sorted."""
    known = {rs.id for rs in sets}
    if books_dir.is_dir():
        known |= {p.name for p in books_dir.iterdir() if p.is_dir()}
    return sorted(known)


def resolve_set(source: Any, field: str, *, sets: Iterable[RulebookSet] = (),
                books_dir: Path = BUNDLED_BOOKS) -> RulebookSet:
    """The set a RulebookSetSource names, or a BadRequest (service.server) naming the field.

    `field` is the source's path in the request, e.g. "rulebooks" or "a"; `sets` are the sets
    the server runs, looked up by id before the bundled sets in `books_dir`.
    """
    sets = list(sets)
    which = source.WhichOneof("source")
    if which is None:
        raise bad_request(f"{field}: name a rulebook set", [
            (field, "set set_id (a loaded or bundled set, e.g. lowprice-2024) or inline "
                    "(file name -> YAML text)")])
    if which == "set_id":
        return _by_id(source.set_id, f"{field}.set_id", sets, Path(books_dir))
    inline = source.inline
    if not SET_ID.match(inline.set_id):
        raise bad_request(f"{field}.inline.set_id is missing or malformed", [
            (f"{field}.inline.set_id", "a name like proposal-2025-06 (lower case, digits, "
                                       ". _ -)")])
    if not inline.files:
        raise bad_request(f"{field}.inline has no files", [
            (f"{field}.inline.files", "file name (e.g. refund.yaml) to YAML text")])
    try:
        return load_set_from_texts(inline.set_id, dict(inline.files))
    except SourceError as exc:
        raise bad_request(f"the rulebook set in {field}.inline does not load", [
            (f"{field}.inline.files[{v.file}]", str(v)) for v in exc.violations]) from None


def _by_id(set_id: str, field: str, sets: list[RulebookSet], books_dir: Path) -> RulebookSet:
    for rs in sets:
        if rs.id == set_id:
            return rs
    bundled = books_dir / set_id
    if SET_ID.match(set_id) and bundled.is_dir():
        try:
            return load_set(bundled)
        except SourceError as exc:
            raise bad_request(f"the bundled set {set_id!r} does not load", [
                (field, str(v)) for v in exc.violations]) from None
    names = known_set_ids(sets, books_dir)
    raise bad_request(f"no rulebook set {set_id!r}", [
        (field, f"unknown set; known: {', '.join(names)}" if names
         else "unknown set; none are available")])
