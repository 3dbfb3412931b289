"""Shared fixtures of the audit tests: the bundled sets, crafted sets and the catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.loader import load_set
from service.audit.criteria import load_catalogue

ROOT = Path(__file__).resolve().parents[3]
BOOKS = ROOT / "rules" / "books"
FIXTURES = ROOT / "tests" / "fixtures" / "audit"


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue()


@pytest.fixture(scope="session")
def lowprice():
    return load_set(BOOKS / "lowprice-2024")


@pytest.fixture(scope="session")
def reformed():
    return load_set(BOOKS / "reformed-2025")


@pytest.fixture(scope="session")
def pushy():
    return load_set(FIXTURES / "pushy-2024")


@pytest.fixture(scope="session")
def fair():
    return load_set(FIXTURES / "fair-2025")
