"""The gateway store's numbered migrations: a store written before versioning (the schema of
commit 56eb7e3, dumped as SQL in tests/fixtures, marked protocol v2 as main's gateway marks its
stores) migrates on open with nothing lost; a protocol v1 store and a store from a newer
gateway are refused with what to do; a second process cannot open the folder."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from gateway.migrations import SCHEMA_VERSION, StoreTooNew
from gateway.store import GatewayStore, StoreLocked, StoreRefused
from gateway.store_protocol import PROTOCOL_VERSION_KEY, STORE_PROTOCOL_VERSION
from livcr_exchange.sending import OutboxState

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gateway_store_56eb7e3.sql"
TABLES = ("outbox", "dossier", "prekeys", "peer_prekeys", "checkpoints", "meta")


def old_store(tmp_path: Path, *, protocol: str | None = STORE_PROTOCOL_VERSION) -> Path:
    """The fixture store; marked with ``protocol`` (None: unmarked, as protocol v1 left it)."""
    path = tmp_path / "gateway.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(FIXTURE.read_text())
        if protocol is not None:
            connection.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)", (PROTOCOL_VERSION_KEY, protocol)
            )
            connection.commit()
    return path


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608


async def test_a_store_from_before_versioning_migrates_with_nothing_lost(tmp_path: Path) -> None:
    path = old_store(tmp_path)
    before = {table: rows(path, table) for table in TABLES}
    rejections = rows(path, "rejections")
    store = GatewayStore(path)
    await store.open()
    try:
        assert store.migrated_from == 1
        pending = await store.due(now=2e9)
        assert [r.message_id for r in pending] == [b"\x01" * 16, b"\x03" * 16]
        assert pending[1].attempts == 1
        assert pending[1].last_error == "ClientConnectorError"
        sent = await store.outbox_row(b"\x02" * 16)
        assert sent is not None
        assert sent.state is OutboxState.SENT
        assert await store.has_received("coord", b"\x04" * 16)
        unread = await store.dossier(unconsumed=True)
        assert [r.message_id for r in unread] == [b"\x05" * 16]
        assert [(q.message_id, q.code) for q in await store.quarantined()] == [
            (b"\x06" * 16, "bad_signature")
        ]
        assert await store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert await store.checkpoints() == [(11, b"checkpoint note\n")]
    finally:
        await store.close()
    after = {table: rows(path, table) for table in TABLES}
    assert [r[:10] for r in after["outbox"]] == [r[:10] for r in before["outbox"]]
    for table in ("dossier", "prekeys", "peer_prekeys", "checkpoints"):
        assert after[table] == before[table], table
    assert set(before["meta"]) < set(after["meta"])
    assert len(rejections) == 1


async def test_a_store_of_protocol_v1_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = old_store(tmp_path, protocol=None)
    before = {table: rows(path, table) for table in TABLES}
    with pytest.raises(StoreRefused, match="protocol version 1"):
        await GatewayStore(path).open()
    assert {table: rows(path, table) for table in TABLES} == before


async def test_opening_again_changes_nothing(tmp_path: Path) -> None:
    path = old_store(tmp_path)
    for expected in (1, SCHEMA_VERSION):
        store = GatewayStore(path)
        await store.open()
        await store.close()
        assert store.migrated_from == expected


async def test_a_store_from_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    store = GatewayStore(path)
    await store.open()
    await store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    await store.close()
    with pytest.raises(StoreTooNew, match=r"newer than this gateway.s .* never downgraded"):
        await GatewayStore(path).open()


async def test_one_process_per_folder(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    first = GatewayStore(path)
    await first.open()
    try:
        with pytest.raises(StoreLocked, match="one process per gateway folder"):
            await GatewayStore(path).open()
    finally:
        await first.close()
    second = GatewayStore(path)
    await second.open()  # free again once the first closed
    await second.close()
