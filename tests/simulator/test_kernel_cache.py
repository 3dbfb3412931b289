"""The simulator's kernels share one cache stamp made of all their source files.

numba keys a cached kernel to its own file only; a kernel that calls another module's kernels
or intrinsics would keep its machine code after the callee's file changed. The stamp of
`simulator.kernel_cache` covers every module that defines compiled functions, changes with any
of them, and is what the kernels' caches are keyed to.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from simulator import aggregation_kernels, kernel_cache, kernels, simd  # noqa: F401 (defined)

ROOT = Path(__file__).resolve().parents[2]

#: What marks a module as defining compiled functions, intrinsics or how a type is compiled.
_COMPILED = re.compile(r"^@(_kernel|njit|intrinsic|overload|unbox)\b|= _kernel\(|njit\(",
                       re.M)


def test_the_stamp_covers_every_module_that_compiles() -> None:
    defining = {path.resolve() for folder in ("simulator", "rules/expression")
                for path in (ROOT / folder).glob("*.py")
                if _COMPILED.search(path.read_text(encoding="utf-8"))}
    assert defining <= set(kernel_cache.KERNEL_SOURCES), sorted(
        str(p.relative_to(ROOT)) for p in defining - set(kernel_cache.KERNEL_SOURCES))
    assert all(path.exists() for path in kernel_cache.KERNEL_SOURCES)


def test_the_stamp_changes_with_any_source(tmp_path: Path) -> None:
    copies = []
    for k, path in enumerate(kernel_cache.KERNEL_SOURCES):
        copy = tmp_path / f"{k}_{path.name}"
        shutil.copyfile(path, copy)
        copies.append(copy)
    stamp = kernel_cache.sources_stamp(tuple(copies))
    assert stamp == kernel_cache.sources_stamp(kernel_cache.KERNEL_SOURCES)
    for copy in copies:
        text = copy.read_bytes()
        copy.write_bytes(text + b"\n")
        assert kernel_cache.sources_stamp(tuple(copies)) != stamp, copy.name
        copy.write_bytes(text)
    assert kernel_cache.sources_stamp(tuple(copies)) == stamp


def test_the_kernels_caches_use_the_shared_stamp() -> None:
    for dispatcher in (kernels.accounts, aggregation_kernels.day_sums):
        locator = dispatcher._cache._impl.locator
        assert isinstance(locator, kernel_cache.LOCATORS), type(locator)
        assert locator.get_source_stamp() == kernel_cache.sources_stamp(
            kernel_cache.KERNEL_SOURCES)
