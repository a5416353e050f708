"""A PostgreSQL database of its own for one test: created with a unique name, dropped after.

The server is the project machines' PostgreSQL (127.0.0.1:5432, trust auth); set
``LIVCR_TEST_PG_DSN`` to use another. CI has it, so an unreachable server FAILS the tests that
need it, with the reason, instead of skipping them.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ADMIN_DSN = os.environ.get("LIVCR_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PREFIX = "livcr_test_"
T = TypeVar("T")


def dsn_for(database: str) -> str:
    """ADMIN_DSN with its database replaced."""
    parts = urlsplit(ADMIN_DSN)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


async def _admin(sql: str) -> None:
    try:
        connection = await asyncpg.connect(ADMIN_DSN, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {ADMIN_DSN} ({exc}). The hub's PostgreSQL tests need "
            "it: start the server, or point LIVCR_TEST_PG_DSN at one (trust or password in the "
            "URL, a role that may CREATE DATABASE).",
            pytrace=False,
        )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop (own thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(asyncio.run(coroutine))
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    result: T = outcome[0]
    return result


def _run(sql: str) -> None:
    run_sync(_admin(sql))


@contextmanager
def fresh_database(template: str | None = None) -> Iterator[str]:
    """Create ``livcr_test_<random>``, yield its DSN, drop it (closing whatever still uses it).

    With ``template`` (the DSN of a database nobody is connected to), the new one is its copy.
    """
    name = PREFIX + uuid.uuid4().hex[:16]
    source = "" if template is None else f' TEMPLATE "{urlsplit(template).path.lstrip("/")}"'
    _run(f'CREATE DATABASE "{name}"{source}')
    try:
        yield dsn_for(name)
    finally:
        _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrated(dsn: str) -> None:
    """Bring a fresh database to the hub's schema, as `livcr hub migrate` does."""
    from hub.store.postgres import PostgresStore  # noqa: PLC0415

    await PostgresStore(dsn).migrate()


@functools.cache
def migrated_template() -> str:
    """The DSN of a database migrated once for this test process, dropped when it exits.

    Copying it (``fresh_database(template=...)``) gives a test the hub's schema in about a
    third of the time that creating and migrating a database takes; the migrations themselves
    are tested on empty databases (test_hub_stores, the CLI and README tests).
    """
    name = PREFIX + "template_" + uuid.uuid4().hex[:16]
    _run(f'CREATE DATABASE "{name}"')
    atexit.register(_run, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    dsn = dsn_for(name)
    run_sync(migrated(dsn))
    return dsn


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty database for this test."""
    with fresh_database() as dsn:
        yield dsn
