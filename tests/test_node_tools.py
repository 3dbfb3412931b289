"""The npm tools the tests use (package.json) are pinned, and the lock names no registry."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_node_tools_are_pinned_and_locked() -> None:
    package = json.loads(ROOT.joinpath("package.json").read_text())
    lock = json.loads(ROOT.joinpath("package-lock.json").read_text())
    assert package["private"] is True
    dev = package["devDependencies"]
    assert {"@bufbuild/buf", "@grpc/grpc-js", "@grpc/proto-loader"} <= set(dev)
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in dev.values())
    assert lock["packages"][""]["devDependencies"] == dev
    for name, version in dev.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_lock_records_no_registry_addresses() -> None:
    # npm resolves the locked name@version from whatever registry the machine is set up for.
    assert "omit-lockfile-registry-resolved=true" in ROOT.joinpath(".npmrc").read_text()
    lock = json.loads(ROOT.joinpath("package-lock.json").read_text())
    entries = [entry for path, entry in lock["packages"].items() if path]
    assert entries and all("integrity" in entry for entry in entries)
    assert not [entry["resolved"] for entry in entries if "resolved" in entry]


def test_node_modules_is_ignored() -> None:
    assert "node_modules/" in ROOT.joinpath(".gitignore").read_text().splitlines()
