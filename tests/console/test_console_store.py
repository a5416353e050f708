"""The console's store queries and the delivery drop, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import StoreTarget

from hub.console import deliveries, queries
from hub.operations import pending_leaf
from hub.store.base import CaseRecord, HubStore, NewEnvelope, WriteBatch
from hub.store.migrations import MIGRATIONS, render
from hub.store.sqlite import SQLiteStore
from livcr_exchange.audit.leaves import (
    LEAF_SALT_BYTES,
    DeliveryDropped,
    DropReason,
    EnvelopeAccepted,
    decode_leaf,
    envelope_hash,
)

NOW = 1_800_001_234  # not on an hour: the ages' boundaries fall inside hours
FAR = 10**10


def envelope(n: int, recipients: tuple[str, ...], accepted_at: int, size: int) -> WriteBatch:
    message_id = n.to_bytes(16, "big")
    blob = bytes([n % 256]) * size
    leaf = EnvelopeAccepted(
        accepted_at,
        bytes(LEAF_SALT_BYTES),
        message_id,
        "caw",
        "aanmelding",
        "case-a",
        recipients,
        envelope_hash(blob),
        size,
    )
    return WriteBatch(
        envelopes=[
            NewEnvelope(
                message_id,
                "caw",
                "aanmelding",
                "case-a",
                recipients,
                accepted_at,
                FAR,
                len(blob),
                envelope_hash(blob),
                blob,
            )
        ],
        leaves=[pending_leaf(leaf, "case-a")],
    )


@pytest.fixture
async def store(store_target: StoreTarget) -> AsyncIterator[HubStore]:
    opened = store_target.new()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_queues_by_age_and_size(store: HubStore) -> None:
    await store.commit(envelope(1, ("coord", "clb"), NOW - 8 * queries.DAY, 100))
    await store.commit(envelope(2, ("coord",), NOW - 2 * queries.DAY, 50))
    await store.commit(envelope(3, ("coord",), NOW - 2 * queries.HOUR, 25))
    await store.commit(envelope(4, ("coord",), NOW - 60, 10))
    await store.commit(envelope(5, ("coord",), NOW - queries.HOUR - 10, 1))  # just over an hour
    await store.commit(envelope(6, ("coord",), NOW - queries.HOUR + 10, 1))  # just under
    found = await queries.queues(store, NOW)
    assert found["coord"] == queries.Queue("coord", 6, 187, NOW - 8 * queries.DAY, 4, 2, 1)
    assert found["clb"] == queries.Queue("clb", 1, 100, NOW - 8 * queries.DAY, 1, 1, 1)
    assert await queries.pending_total(store) == 7
    await store.commit(WriteBatch(acks=[("coord", (5).to_bytes(16, "big"))]))
    found = await queries.queues(store, NOW)
    assert found["coord"] == queries.Queue("coord", 5, 186, NOW - 8 * queries.DAY, 3, 2, 1)
    oldest = await queries.oldest(store, "coord", 2)
    assert [(d.accepted_at, d.size) for d in oldest] == [
        (NOW - 8 * queries.DAY, 100),
        (NOW - 2 * queries.DAY, 50),
    ]


async def test_drop_removes_one_delivery_and_logs_a_leaf(store: HubStore) -> None:
    await store.commit(envelope(1, ("coord", "clb"), NOW - 100, 64))
    (target,) = await deliveries.list_queue(store, "clb", 10)
    dropped = await deliveries.drop(
        store, "clb", target.seq, DropReason.UNDELIVERABLE, now=NOW, operator="oncall"
    )
    assert dropped.size == 64
    assert await deliveries.list_queue(store, "clb", 10) == []
    assert len(await deliveries.list_queue(store, "coord", 10)) == 1  # the other recipient's stays
    ((_, _, data),) = await store.leaves(dropped.leaf_index, dropped.leaf_index + 1)
    assert data is not None
    leaf = decode_leaf(data)
    assert isinstance(leaf, DeliveryDropped)
    assert (leaf.recipient_id, leaf.size, leaf.reason) == ("clb", 64, DropReason.UNDELIVERABLE)
    assert leaf.message_id == (1).to_bytes(16, "big")
    with pytest.raises(deliveries.NoSuchDelivery):
        await deliveries.drop(store, "clb", target.seq, DropReason.TOO_OLD, now=NOW, operator="x")
    # Dropping the last recipient's delivery deletes the envelope; the drop leaf is the case's.
    (last,) = await deliveries.list_queue(store, "coord", 10)
    await deliveries.drop(store, "coord", last.seq, DropReason.TOO_OLD, now=NOW, operator="x")
    assert (await store.counts())["envelopes"] == 0
    assert len(await store.leaves(0, 10, "case-a")) == 3


async def test_refusals_and_retention_counts(store: HubStore) -> None:
    await store.commit(
        WriteBatch(refusals=[(NOW - 30, "replayed"), (NOW - 20, "replayed"), (NOW - 7200, "stale")])
    )
    assert await queries.refusals_since(store, NOW - queries.DAY) == 3
    hourly = await queries.refusals(store, NOW - queries.DAY, queries.HOUR)
    assert sorted((code, count) for _, code, count in hourly) == [("replayed", 2), ("stale", 1)]
    assert all(at % queries.HOUR == 0 for at, _, _ in hourly)
    closed = CaseRecord("case-a", "afgesloten", None, None, frozenset(), {}, 0, 1, NOW - 1)
    later = CaseRecord(
        "case-b", "afgesloten", None, None, frozenset(), {}, 0, 1, NOW + 3 * queries.DAY
    )
    await store.commit(envelope(1, ("coord",), NOW - 100, 8))
    await store.commit(WriteBatch(cases=[closed, later]))
    before = await queries.retention(store, NOW)
    assert (before.scheduled, before.due_now, before.due_week, before.last_purge_at) == (
        2,
        1,
        2,
        None,
    )
    assert await store.purge_due(NOW, 100) > 0
    after = await queries.retention(store, NOW)
    assert (after.scheduled, after.due_now, after.last_purge_at) == (1, 0, NOW)
    assert after.last_purge_rows > 0
    assert after.next_due_at == NOW + 3 * queries.DAY


async def test_migration_4_fills_ages_of_queued_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for migration in MIGRATIONS[:3]:
        for sql in render(migration, "sqlite"):
            connection.execute(sql)
    connection.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    connection.execute(
        "INSERT INTO envelopes VALUES (?, 'caw', 'aanmelding', 'case-a', ?, ?, 0, ?)",
        (bytes(16), NOW - 50, FAR, b"x" * 33),
    )
    connection.execute(
        "INSERT INTO deliveries (recipient_id, message_id) VALUES ('coord', ?)", (bytes(16),)
    )
    connection.commit()
    connection.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        found = await queries.queues(store, NOW)
        assert found["coord"] == queries.Queue("coord", 1, 33, NOW - 50, 0, 0, 0)
    finally:
        await store.close()


async def test_counts_stay_exact_under_concurrent_acks_on_postgresql(pg_dsn: str) -> None:
    """Two hub processes acknowledging one queue at once, while a third accepts: the hourly
    counts end equal to the rows, and no statement fails (no deadlock on the counts)."""
    from hub.store.postgres import PostgresStore  # noqa: PLC0415

    await PostgresStore(pg_dsn).migrate()
    stores = [PostgresStore(pg_dsn, pool_size=4) for _ in range(3)]
    for opened in stores:
        await opened.open()
    try:
        for n in range(0, 200, 20):
            batch = WriteBatch()
            for m in range(n, n + 20):
                one = envelope(m, ("coord", "clb"), NOW - m * queries.HOUR // 4, 10)
                batch.envelopes += one.envelopes
            await stores[0].commit(batch)

        async def ack(store: HubStore, numbers: list[int]) -> None:
            for start in range(0, len(numbers), 7):
                acks = [("coord", m.to_bytes(16, "big")) for m in numbers[start : start + 7]]
                await store.commit(WriteBatch(acks=acks))

        async def accept() -> None:
            for m in range(200, 260):
                await stores[2].commit(envelope(m, ("coord",), NOW - m * 60, 10))

        await asyncio.gather(
            ack(stores[0], list(range(0, 200, 2))),
            ack(stores[1], list(range(199, 0, -2))),
            accept(),
        )
        found = await queries.queues(stores[0], NOW)
        rows = await stores[0].operator_rows(
            "SELECT recipient_id, COUNT(*) FROM deliveries GROUP BY recipient_id", ()
        )
        assert {pid: q.count for pid, q in found.items()} == {str(p): int(c) for p, c in rows}
        assert found["coord"].count == 60
        assert found["clb"].count == 200
    finally:
        for opened in stores:
            await opened.close()
