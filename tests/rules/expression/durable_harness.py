"""A synchronous durable_rules host for tests: one ruleset per compiled condition."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from durable import engine


class _QuietHost(engine.Host):
    """A Host without its background dispatch threads; `post` still runs actions inline."""

    def _run(self) -> None:
        pass


class Engine:
    """Registers one single-rule ruleset per condition and reports whether a post fires it."""

    def __init__(self) -> None:
        self._host = _QuietHost()
        self._names = itertools.count()
        self._ids = itertools.count()

    def rule(self, condition: dict[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
        ruleset = f"expr{next(self._names)}"
        fired: list[bool] = []
        self._host.register_rulesets(
            {ruleset: {"r": {"all": [{"m": condition}], "run": lambda c: fired.append(True)}}}
        )

        def post(message: Mapping[str, Any]) -> bool:
            fired.clear()
            try:
                self._host.post(ruleset, {"sid": "s", "id": next(self._ids), **message})
            except engine.MessageNotHandledException:
                return False
            return bool(fired)

        return post


def message(scope: Mapping[str, Mapping[str, Any]], derived: Mapping[str, Any]) -> dict:
    """The message the engine sees: the scope without None fields, plus `derived`."""
    body: dict[str, Any] = {
        namespace: {k: v for k, v in fields.items() if v is not None}
        for namespace, fields in scope.items()
    }
    if derived:
        body["derived"] = dict(derived)
    return body
