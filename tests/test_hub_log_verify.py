"""`livcr hub log verify` detects a modified, removed or reordered leaf in a copy of the store."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from hubproc import HubProcess

from livcr_cli import main
from livcr_exchange.roles import Role

ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER, "clb": Role.DEELNEMER}


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> HubProcess:
    """A hub that accepted a dozen envelopes and stopped cleanly (its checkpoint is stored)."""
    hub = HubProcess.create(tmp_path_factory.mktemp("hub") / "cell", ROLES)
    hub.start()

    async def submit() -> None:
        async with aiohttp.ClientSession() as session:
            client = hub.client("caw", session)
            for i in range(12):
                await client.submit(
                    hub.seal("caw", ["coord"], b'{"i": %d}' % i, "aanmelding", "case-log")
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
    change: Callable[[sqlite3.Connection], None],
    symptom: str,
) -> None:
    code, output = verify(populated, tampered_copy(populated, tmp_path, change))
    assert code == 1, output
    assert "log FAILED" in output
    assert symptom in output
