"""The gRPC contract passes buf's STANDARD lint rules and is formatted as buf formats it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / "node_modules" / ".bin" / "buf"


def buf(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    if not BUF.exists():
        pytest.fail("buf is not installed: `make test` runs `npm ci` (see package.json)")
    env = {**os.environ, "BUF_CACHE_DIR": str(cache)}
    return subprocess.run([str(BUF), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_buf_config_uses_the_standard_rules() -> None:
    config = ROOT.joinpath("proto", "buf.yaml").read_text()
    assert "version: v2" in config and "- STANDARD" in config
    assert "deps:" not in config  # no remote modules: the protos import only well-known types


def test_buf_lint_is_clean(tmp_path: Path) -> None:
    result = buf("lint", "proto", cache=tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_buf_format_has_no_diff(tmp_path: Path) -> None:
    result = buf("format", "-d", "--exit-code", "proto", cache=tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
