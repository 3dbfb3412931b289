"""Set-up and packaging: the README's two commands, CI, and the Docker image's install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_the_two_commands() -> None:
    head = "\n".join(ROOT.joinpath("README.md").read_text().splitlines()[:15])
    assert "make run" in head and "make test" in head


def test_ci_runs_make_test() -> None:
    assert "make test" in ROOT.joinpath(".ci", "run").read_text()


def test_dockerfile_installs_the_package_the_makefile_installs() -> None:
    docker = ROOT.joinpath("Dockerfile").read_text()
    make = ROOT.joinpath("Makefile").read_text()
    project = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())
    assert docker.startswith("#") and "FROM python:3.11-slim" in docker
    # Both install this directory's pyproject.toml with pip (the Makefile in editable mode).
    assert re.search(r"pip install .*-e '\.\[test\]'", make)
    assert re.search(r"pip install [^\n]*\s\.\s*$", docker, re.M)
    # Every package pyproject ships is copied into the image, and pyproject itself.
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}" in docker
    assert "COPY pyproject.toml" in docker
    # durable-rules builds a C extension: the image needs a compiler; it runs as non-root.
    assert "gcc" in docker and re.search(r"^USER (?!root)", docker, re.M)
    assert 'ENTRYPOINT ["rulebook"]' in docker
    assert project["project"]["scripts"]["rulebook"] == "service.cli:main"


def test_dependencies_are_pinned() -> None:
    project = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())
    deps = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["test"]
    assert deps and all("==" in d for d in deps)
    names = {d.split("==")[0].lower() for d in deps}
    assert {"durable-rules", "grpcio", "protobuf", "numpy", "prometheus-client",
            "pytest"} <= names
