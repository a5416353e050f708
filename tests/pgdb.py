"""A PostgreSQL database of its own for one test: created with a unique name, dropped after.

The server is the project machines' PostgreSQL (127.0.0.1:5432, trust auth); set
``LIVCR_TEST_PG_DSN`` to use another. CI has it, so an unreachable server FAILS the tests that
need it, with the reason, instead of skipping them.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


# What makes two databases the same hub schema: columns, indexes, triggers, the schema version.
SHAPE = """
SELECT md5(string_agg(line, E'\\n' ORDER BY line)) FROM (
    SELECT format('column %s.%s %s %s', table_name, column_name, data_type, is_identity) AS line
    FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT 'version ' || value FROM meta WHERE key = 'schema_version'
) AS shape
"""
OTHER_CONNECTIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@dataclass
class MigratedDatabases:
    """Databases with the hub's schema that this test process hands out, one per test.

    Creating and migrating a database costs about half a second on a loaded machine, and a few
    hundred tests need one. So a database a test is done with is emptied (every row deleted,
    identities restarted, in one transaction) and handed to the next test. One that the test
    left with connections open, or with another schema than a freshly migrated one, is dropped
    instead. The migrations themselves run on empty databases (test_hub_stores, the CLI and
    README tests).
    """

    shape: str | None = None  # SHAPE of a freshly migrated database
    free: list[str] = field(default_factory=list)

    @contextmanager
    def database(self) -> Iterator[str]:
        name = self.free.pop() if self.free else self._create()
        reusable = False
        try:
            yield dsn_for(name)
            reusable = run_sync(self._empty(dsn_for(name)))
        finally:
            if reusable:
                self.free.append(name)
            else:
                _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        while self.free:
            _run(f'DROP DATABASE IF EXISTS "{self.free.pop()}" WITH (FORCE)')

    def _create(self) -> str:
        name = PREFIX + uuid.uuid4().hex[:16]
        _run(f'CREATE DATABASE "{name}"')
        run_sync(migrated(dsn_for(name)))
        if self.shape is None:
            self.shape = run_sync(_fetch(dsn_for(name), SHAPE))
        return name

    async def _empty(self, dsn: str) -> bool:
        """Empty the database for the next test; False if it cannot be reused."""
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            deadline = time.monotonic() + 2  # the test's closed pools: backends still exiting
            while await connection.fetchval(OTHER_CONNECTIONS):
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.01)
            if await connection.fetchval(SHAPE) != self.shape:
                return False
            tables = await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
            sequences = await connection.fetch(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
            )
            async with connection.transaction():
                # Replica mode: no trigger fires, so the tables empty in any order.
                await connection.execute("SET LOCAL session_replication_role = replica")
                for row in tables:
                    keep = " WHERE key <> 'schema_version'" if row[0] == "meta" else ""
                    delete = f'DELETE FROM "{row[0]}"{keep}'  # noqa: S608  (names from pg_tables)
                    await connection.execute(delete)
                for row in sequences:
                    await connection.execute("SELECT setval($1, 1, false)", f'"{row[0]}"')
            return True
        finally:
            await connection.close()


async def _fetch(dsn: str, query: str) -> Any:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


MIGRATED = MigratedDatabases()
atexit.register(MIGRATED.drop_all)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty database for this test."""
    with fresh_database() as dsn:
        yield dsn
