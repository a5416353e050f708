"""Fixtures every test folder may use: the hub's store, parametrised over both backends.

A test (or fixture) that asks for ``store_target`` runs twice: on SQLite in its tmp_path, and on
a PostgreSQL database of its own (migrated, and empty when the test starts; see pgdb.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from pgdb import MIGRATED, pg_dsn

from hub.store.base import HubStore

STORE_KINDS = ("sqlite", "postgresql")

__all__ = ["STORE_KINDS", "StoreTarget", "new_store_target", "pg_dsn", "store_kind", "store_target"]


@dataclass(frozen=True)
class StoreTarget:
    """Where a test's hub keeps its state: a SQLite file or a migrated PostgreSQL database."""

    kind: str
    path: Path | None = None  # sqlite
    dsn: str | None = None  # postgresql

    def toml(self) -> str:
        """The ``[store]`` section of a hub config for this store."""
        if self.kind == "postgresql":
            return f'[store]\nkind = "postgresql"\ndsn = "{self.dsn}"\npool_size = 4\n'
        return f'[store]\nkind = "sqlite"\npath = "{self.path}"\n'

    def new(self) -> HubStore:
        """A new (unopened) store object on this target; several may share a PostgreSQL one."""
        if self.kind == "postgresql":
            from hub.store.postgres import PostgresStore  # noqa: PLC0415

            assert self.dsn is not None
            return PostgresStore(self.dsn, pool_size=4)
        from hub.store.sqlite import SQLiteStore  # noqa: PLC0415

        assert self.path is not None
        return SQLiteStore(self.path)


# The modules that keep one worker busiest (whole-system scenarios, the README's blocks under
# load, a fresh virtual environment), longest first. They run first, so that the workers of
# `make test` (one module each at a time) end together, not one idling while the other still
# runs a long module it picked up last.
LONG_MODULES = (
    "test_readme.py",
    "test_e2e.py",
    "test_schemathesis.py",
    "test_attack_memory.py",
    "test_hub_postgres.py",
    "test_wheel.py",
    "test_gateway_offline.py",
    "test_examples.py",
    "test_hub_durability.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_MODULES)))


@pytest.fixture(autouse=True, scope="session")
def _loggers_never_cached() -> Iterator[None]:
    """Tests share a process (one per worker) and run in any order. A test that configures
    logging as a service does would let each logger cache its configuration on first use, and a
    logger cached so is invisible to a later test's ``structlog.testing.capture_logs``; so in
    the test process no logger caches."""
    real = structlog.configure

    def configure(**settings: Any) -> None:
        real(**{**settings, "cache_logger_on_first_use": False})

    structlog.configure = configure
    try:
        yield
    finally:
        structlog.configure = real


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@contextmanager
def new_store_target(kind: str, folder: Path) -> Iterator[StoreTarget]:
    """A SQLite file in ``folder``, or a migrated PostgreSQL database dropped on exit."""
    if kind == "sqlite":
        yield StoreTarget("sqlite", path=folder / "hub.sqlite3")
        return
    with MIGRATED.database() as dsn:
        yield StoreTarget("postgresql", dsn=dsn)


@pytest.fixture
def store_target(store_kind: str, tmp_path: Path) -> Iterator[StoreTarget]:
    with new_store_target(store_kind, tmp_path) as target:
        yield target
