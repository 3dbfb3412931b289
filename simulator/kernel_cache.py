"""numba's on-disk cache of the simulator's kernels, stamped with all their sources at once.

Why: numba keys a cached kernel to the content of its own source file only. The simulator's
kernels call one another across modules (`simulator.simd`'s intrinsics, `kernels`' helpers, the
rule programs of `rules.expression.numba_target`), so a change to a callee's file alone (a
`git pull` that edits `simd.py`, say) would leave its callers' cached machine code in place,
running the old callee. The locators here give every kernel defined in `KERNEL_SOURCES` one
stamp made of all those files' contents: a change to any of them compiles the kernels afresh
(about a minute, once). They are numba's own locators otherwise (the directory named by
``NUMBA_CACHE_DIR``, the package's ``__pycache__``, or the user's cache directory, in numba's
order); `install` puts them ahead of numba's for these files, and leaves every other file to
numba.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from numba.core import caching

ROOT = Path(__file__).resolve().parent.parent

#: The files whose kernels share one stamp: every simulator module that defines compiled
#: functions or intrinsics, and the rule programs the appeal rounds call
#: (`tests/simulator/test_kernel_cache.py` checks no such module is missing).
KERNEL_SOURCES = tuple(ROOT / name for name in (
    "simulator/aggregation_kernels.py", "simulator/appeal_rounds.py",
    "simulator/charge_rules.py", "simulator/draws.py",
    "simulator/fixed.py", "simulator/fixed_programs.py", "simulator/kernels.py",
    "simulator/population.py", "simulator/ranking_rules.py", "simulator/rule_fields.py",
    "simulator/simd.py",
    "rules/expression/numba_target.py"))


def sources_stamp(paths: tuple[Path, ...]) -> str:
    """One stamp of the files' contents (a SHA-256 of each, in order)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@cache
def _stamp() -> str:
    return sources_stamp(KERNEL_SOURCES)


def _covered(py_file: str) -> bool:
    try:
        return Path(py_file).resolve() in KERNEL_SOURCES
    except OSError:
        return False


class _SharedStamp:
    """A numba locator whose source stamp is `KERNEL_SOURCES`' (see the module docstring),
    for the functions defined in one of them."""

    def get_source_stamp(self) -> Any:
        return _stamp()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        if not _covered(py_file):
            return None
        return super().from_function(py_func, py_file)  # type: ignore[misc]


class UserProvidedLocator(_SharedStamp, caching.UserProvidedCacheLocator):
    """numba's ``NUMBA_CACHE_DIR`` locator, with the shared stamp."""


class InTreeLocator(_SharedStamp, caching.InTreeCacheLocator):
    """numba's ``__pycache__`` locator, with the shared stamp."""


class UserWideLocator(_SharedStamp, caching.UserWideCacheLocator):
    """numba's user cache directory locator, with the shared stamp."""


LOCATORS = (UserProvidedLocator, InTreeLocator, UserWideLocator)


def install() -> None:
    """Put `LOCATORS` ahead of numba's own, once (before the kernels are defined: a kernel's
    locator is chosen as it is decorated)."""
    classes = caching.CacheImpl._locator_classes
    if classes[:len(LOCATORS)] != list(LOCATORS):
        classes[:0] = LOCATORS
