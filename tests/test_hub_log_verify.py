"""`livcr hub log verify` detects a modified, removed or reordered leaf in a copy of the store.

Both stores: a SQLite file copied and changed with sqlite3, a PostgreSQL database copied (as a
template) and changed with the same SQL through a small sqlite3-shaped adapter.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from click.testing import CliRunner
from conftest import STORE_KINDS
from hubproc import HubProcess
from pgdb import fresh_database

from livcr_cli import main
from livcr_exchange.roles import Role

ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER, "clb": Role.DEELNEMER}


@pytest.fixture(scope="module", params=STORE_KINDS)
def populated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    """A hub that accepted a dozen envelopes and stopped cleanly (its checkpoint is stored)."""
    with ExitStack() as stack:
        dsn = stack.enter_context(fresh_database()) if request.param == "postgresql" else None
        yield populate(HubProcess.create(tmp_path_factory.mktemp("hub") / "cell", ROLES, dsn=dsn))


def populate(hub: HubProcess) -> HubProcess:
    hub.start()

    async def submit() -> None:
        async with aiohttp.ClientSession() as session:
            client = hub.client("caw", session)
            for i in range(12):
                await client.submit(
                    hub.seal(
                        "caw",
                        ["coord"],
                        b'{"i": %d}' % i,
                        "aanmelding",
                        "case-epcnktpgoz6rnprl6dczininxa",
                    )
                )

    try:
        asyncio.run(submit())
    finally:
        hub.stop()
    return hub


def verify(hub: HubProcess, store: Path | None = None) -> tuple[int, str]:
    args = ["hub", "log", "verify", "--config", str(hub.config_path)]
    if store is not None:
        args += ["--store", str(store)]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@dataclass
class Rows:
    rows: list[Any]

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None


class PgConnection:
    """Just enough of sqlite3.Connection (``execute(sql, params).fetchone()``, ``?`` marks) to
    run the tamper functions below on PostgreSQL."""

    def __init__(self, dsn: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._connection = self._loop.run_until_complete(asyncpg.connect(dsn))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        marks = iter(range(1, len(params) + 1))
        numbered = re.sub(r"\?", lambda _: f"${next(marks)}", sql)
        rows = self._loop.run_until_complete(self._connection.fetch(numbered, *params))
        return Rows(list(rows))

    def close(self) -> None:
        self._loop.run_until_complete(self._connection.close())
        self._loop.close()


def verify_tampered(
    hub: HubProcess, tmp_path: Path, change: Callable[[Any], None]
) -> tuple[int, str]:
    """Verify a changed copy of the hub's store (the original stays intact for other tests)."""
    if hub.config.store.kind == "sqlite":
        return verify(hub, tampered_copy(hub, tmp_path, change))
    with fresh_database(template=hub.config.store.dsn) as dsn:
        connection = PgConnection(dsn)
        try:
            change(connection)
        finally:
            connection.close()
        config = tmp_path / "copy.toml"
        config.write_text(
            hub.config_path.read_text()
            .replace(hub.config.store.dsn, dsn)
            .replace('log_key_file = "log.key"', f'log_key_file = "{hub.directory / "log.key"}"')
        )
        result = CliRunner().invoke(main, ["hub", "log", "verify", "--config", str(config)])
        return result.exit_code, result.output


def tampered_copy(
    hub: HubProcess, tmp_path: Path, change: Callable[[sqlite3.Connection], None]
) -> Path:
    source = hub.directory / "hub.sqlite3"
    copy = tmp_path / "copy.sqlite3"
    with sqlite3.connect(source) as connection:  # fold the WAL in, so one file is the whole store
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    shutil.copyfile(source, copy)
    connection = sqlite3.connect(copy)
    with connection:
        change(connection)
    connection.close()
    return copy


def test_an_untouched_log_verifies(populated: HubProcess) -> None:
    code, output = verify(populated)
    assert code == 0, output
    assert "log verified" in output
    assert " 0 checkpoints" not in output


def modify_leaf(connection: sqlite3.Connection) -> None:
    data = connection.execute("SELECT data FROM leaves WHERE idx = 7").fetchone()[0]
    changed = bytearray(data)
    changed[-1] ^= 1
    connection.execute("UPDATE leaves SET data = ? WHERE idx = 7", (bytes(changed),))


def modify_leaf_and_hash(connection: sqlite3.Connection) -> None:
    from livcr_exchange.audit.merkle import leaf_hash  # noqa: PLC0415

    data = bytearray(connection.execute("SELECT data FROM leaves WHERE idx = 7").fetchone()[0])
    data[-1] ^= 1
    connection.execute(
        "UPDATE leaves SET data = ?, leaf_hash = ? WHERE idx = 7",
        (bytes(data), leaf_hash(bytes(data))),
    )


def remove_leaf(connection: sqlite3.Connection) -> None:
    connection.execute("DELETE FROM leaves WHERE idx = 5")


def remove_last_leaf(connection: sqlite3.Connection) -> None:
    connection.execute("DELETE FROM leaves WHERE idx = (SELECT MAX(idx) FROM leaves)")


def reorder_leaves(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE leaves SET idx = -1 WHERE idx = 8")
    connection.execute("UPDATE leaves SET idx = 8 WHERE idx = 9")
    connection.execute("UPDATE leaves SET idx = 9 WHERE idx = -1")


@pytest.mark.parametrize(
    ("change", "symptom"),
    [
        (modify_leaf, "data does not match its hash"),
        (modify_leaf_and_hash, "root differs"),
        (remove_leaf, "leaf 5 is missing"),
        (remove_last_leaf, "log has"),
        (reorder_leaves, "root differs"),
    ],
    ids=["modified", "modified_with_its_hash", "removed", "removed_last", "reordered"],
)
def test_tampering_is_detected(
    populated: HubProcess,
    tmp_path: Path,
    change: Callable[[Any], None],
    symptom: str,
) -> None:
    code, output = verify_tampered(populated, tmp_path, change)
    assert code == 1, output
    assert "log FAILED" in output
    assert symptom in output
