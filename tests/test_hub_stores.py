"""The store contract, run on both backends: group commit, one log order, replays, checkpoints,
retention scheduling and bounded purges, request nonces, schema migrations."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner
from conftest import StoreTarget
from pgdb import fresh_database
from waiting import until

from hub.config import parse_config
from hub.log import TransparencyLog
from hub.operations import pending_leaf
from hub.operator import verify_log
from hub.store.base import (
    Acceptance,
    CaseRecord,
    DuplicateEnvelope,
    HubStore,
    NewEnvelope,
    StoreError,
    WriteBatch,
)
from hub.store.migrations import MIGRATIONS, SCHEMA_VERSION, render
from hub.store.postgres import PostgresStore
from hub.store.sqlite import SQLiteStore
from livcr_cli import main
from livcr_exchange.audit.leaves import EnvelopeAccepted, envelope_hash
from livcr_exchange.errors import Replayed
from livcr_exchange.keys import IdentityKey

LOG_KEY = IdentityKey.from_seed(bytes(range(32)))
ROOT = IdentityKey.from_seed(bytes(32))
FAR = 10**10


def envelope_batch(n: int, case_ref: str = "case-a", sender: str = "caw") -> WriteBatch:
    message_id = n.to_bytes(16, "big")
    leaf = EnvelopeAccepted(
        100, bytes(16), message_id, sender, "aanmelding", case_ref, ("coord",), bytes(32), 10
    )
    return WriteBatch(
        envelopes=[
            NewEnvelope(
                message_id,
                sender,
                "aanmelding",
                case_ref,
                ("coord",),
                100,
                FAR,
                len(b"sealed%d" % n),
                envelope_hash(b"sealed%d" % n),
                b"sealed%d" % n,
            )
        ],
        leaves=[pending_leaf(leaf, case_ref)],
    )


def case(case_ref: str, purge_after: int | None, state: str = "afgesloten") -> CaseRecord:
    return CaseRecord(
        case_ref, state, None, None, frozenset({"caw", "coord"}), {}, 0, 50, purge_after
    )


@pytest.fixture
async def store(store_target: StoreTarget) -> AsyncIterator[HubStore]:
    opened = store_target.new()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_concurrent_commits_get_one_gapless_order(store: HubStore) -> None:
    results = await asyncio.gather(*(store.commit(envelope_batch(i)) for i in range(120)))
    indexes = sorted(r.leaf_indexes[0] for r in results)
    assert indexes == list(range(120))
    assert await store.tree_size() == 120
    assert max(r.tree_size for r in results) == 120
    assert len(await store.leaf_hashes(0, 120)) == 120


async def test_a_replay_refuses_only_its_own_batch(store: HubStore) -> None:
    await store.commit(envelope_batch(1))
    two = envelope_batch(2)
    two.envelopes += envelope_batch(1).envelopes  # a second envelope that repeats a stored one
    two.leaves += envelope_batch(1).leaves
    outcomes = await asyncio.gather(
        store.commit(envelope_batch(3)),
        store.commit(two),
        store.commit(envelope_batch(4)),
        store.commit(envelope_batch(4)),  # the same envelope twice in one group: first wins
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], DuplicateEnvelope)
    assert isinstance(outcomes[3], DuplicateEnvelope)
    assert not isinstance(outcomes[0], BaseException)
    assert not isinstance(outcomes[2], BaseException)
    assert await store.delivery("coord", (2).to_bytes(16, "big")) is None  # nothing of it kept
    assert await store.tree_size() == 3
    assert sorted(o.leaf_indexes[0] for o in (outcomes[0], outcomes[2])) == [1, 2]


async def test_acknowledged_deliveries_leave_the_queue(store: HubStore) -> None:
    await store.commit(envelope_batch(1))
    await store.commit(envelope_batch(2))
    pending = await store.pending("coord", 0, 10)
    assert [p.message_id for p in pending] == [(1).to_bytes(16, "big"), (2).to_bytes(16, "big")]
    assert pending[0].seq < pending[1].seq
    await store.commit(WriteBatch(acks=[("coord", pending[0].message_id)]))
    assert [p.message_id for p in await store.pending("coord", 0, 10)] == [pending[1].message_id]
    assert (await store.counts())["envelopes"] == 1


async def test_expired_envelopes_leave_in_bounded_batches(store: HubStore) -> None:
    for n in range(5):
        batch = envelope_batch(n)
        batch.envelopes = [replace(e, expires_at=200 + n) for e in batch.envelopes]
        await store.commit(batch)
    await store.commit(envelope_batch(99))
    assert await store.delete_expired(now=199, limit=10) == 0
    assert await store.delete_expired(now=1_000, limit=3) == 3
    assert await store.delete_expired(now=1_000, limit=3) == 2
    assert await store.delete_expired(now=1_000, limit=3) == 0
    assert [d.message_id for d in await store.pending("coord", 0, 10)] == [(99).to_bytes(16, "big")]
    counts = await store.counts()
    assert (counts["envelopes"], counts["deliveries_pending"], counts["log_size"]) == (1, 1, 6)


async def test_an_accepted_pair_keeps_its_leaf_while_it_is_remembered(store: HubStore) -> None:
    """What a resubmission's receipt is built from (spec §9.3): the leaf of the pair's envelope,
    through delivery, until retention deletes its data or expiry forgets the pair."""
    one, two, three = (n.to_bytes(16, "big") for n in (1, 2, 3))
    first = envelope_batch(1)
    await store.commit(first)
    soon = envelope_batch(2)
    soon.envelopes = [replace(e, expires_at=200) for e in soon.envelopes]
    await store.commit(soon)
    await store.commit(envelope_batch(3, "case-b"))
    assert await store.accepted_before("caw", one) == Acceptance(0, first.leaves[0].data)
    assert await store.accepted_before("clb", one) is None  # the pair is the sender's
    assert await store.accepted_before("caw", (9).to_bytes(16, "big")) is None
    await store.commit(WriteBatch(acks=[("coord", one)]))  # delivered: the envelope goes
    assert (await store.counts())["envelopes"] == 2
    assert await store.accepted_before("caw", one) == Acceptance(0, first.leaves[0].data)
    await store.purge_case("case-b", 100)
    assert await store.accepted_before("caw", three) == Acceptance(2, None)
    await store.delete_expired(now=200, limit=100)
    assert await store.accepted_before("caw", two) is None
    assert await store.accepted_before("caw", one) is not None


async def test_the_first_checkpoint_for_a_size_wins(store: HubStore) -> None:
    await store.save_checkpoint(5, b"first")
    await store.save_checkpoint(5, b"second")
    assert await store.checkpoints() == [(5, b"first")]


async def test_closing_schedules_a_bounded_purge(store_target: StoreTarget, tmp_path: Path) -> None:
    config = parse_config(
        f'[hub]\ncell_id = "gent"\nroot_key = "{ROOT.public.to_text()}"\n', tmp_path
    )
    store = store_target.new()
    await store.open()
    try:
        for n in range(7):
            await store.commit(envelope_batch(n, "case-old"))
        await store.commit(envelope_batch(50, "case-open"))
        await store.commit(WriteBatch(cases=[case("case-old", 500), case("case-open", None)]))
        await TransparencyLog(store, config.origin, LOG_KEY).save_checkpoint()
        assert await store.purge_due(499, limit=100) == 0  # not due yet
        rounds = []
        while removed := await store.purge_due(500, limit=4):
            rounds.append(removed)
        assert all(r <= 4 for r in rounds)
        assert sum(rounds) == 14  # 7 envelopes and the data of 7 leaves, in bounded batches
        assert await store.purge_due(10_000, limit=100) == 0  # done: off the schedule
        assert await store.pending("coord", 0, 100) != []  # the open case keeps its envelope
        assert all(
            d.message_id == (50).to_bytes(16, "big") for d in await store.pending("coord", 0, 100)
        )
        report = await verify_log(store, config, LOG_KEY.public.raw)
        assert report.ok, report.problems
        assert report.retained == 7
        # Reopening takes a case off the schedule; closing again puts it back.
        await store.commit(WriteBatch(cases=[case("case-open", 900)]))
        await store.commit(WriteBatch(cases=[case("case-open", None, "in_screening")]))
        assert await store.purge_due(10_000, limit=100) == 0
        await store.commit(WriteBatch(cases=[case("case-open", 900)]))
        assert await store.purge_due(10_000, limit=100) == 2
    finally:
        await store.close()


async def test_request_nonces(store_target: StoreTarget) -> None:
    """PostgreSQL: a nonce one process took is refused to another until it expires. SQLite
    serves one process, whose in-memory cache refuses repeats (tests/test_hub_postgres.py
    shows both at the HTTP level)."""
    first, second = store_target.new(), store_target.new()
    await first.open()
    try:
        await first.claim_nonce("caw", b"n" * 16, 400, now=100)
        if store_target.kind == "postgresql":
            await second.open()
            try:
                with pytest.raises(Replayed):
                    await second.claim_nonce("caw", b"n" * 16, 400, now=101)
                await second.claim_nonce("clb", b"n" * 16, 400, now=101)  # per participant
                await second.claim_nonce("caw", b"n" * 16, 900, now=400)  # expired: reusable
                assert await second.delete_expired(10_000, 100) == 0
            finally:
                await second.close()
    finally:
        await first.close()


async def listeners(dsn: str) -> int:
    """Connections of this (fresh, test-owned) database whose last statement was a LISTEN."""
    connection = await asyncpg.connect(dsn)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        )
    finally:
        await connection.close()
    return count


async def test_two_postgres_stores_share_one_order(pg_dsn: str) -> None:
    """Two store objects are two hub processes: appends interleave into one gapless order and
    a replay sent to both is accepted once."""
    await PostgresStore(pg_dsn).migrate()
    stores = [PostgresStore(pg_dsn, pool_size=2), PostgresStore(pg_dsn, pool_size=2)]
    for s in stores:
        await s.open()
    try:
        notices = stores[1].delivery_notices()
        assert notices is not None
        listening = asyncio.ensure_future(anext(notices))
        await until(lambda: listeners(pg_dsn), "the listener to LISTEN before anything commits")
        results = await asyncio.gather(
            *(stores[i % 2].commit(envelope_batch(i)) for i in range(200)),
            stores[0].commit(envelope_batch(1000)),
            stores[1].commit(envelope_batch(1000)),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 1
        assert isinstance(refused[0], DuplicateEnvelope)
        indexes = sorted(r.leaf_indexes[0] for r in results if not isinstance(r, BaseException))
        assert indexes == list(range(201))
        notice = await asyncio.wait_for(listening, 10)  # only envelopes the *other* one took
        assert int.from_bytes(notice.message_id, "big") % 2 == 0 or notice.message_id == (
            1000
        ).to_bytes(16, "big")
        assert notice.recipients == ("coord",)
        await notices.aclose()  # type: ignore[attr-defined]
    finally:
        for s in stores:
            await s.close()


# Migrations.
def test_migrations_render_for_both_dialects() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
    for migration in MIGRATIONS:
        assert all("{" not in sql for sql in render(migration, "sqlite"))
        assert all("{" not in sql for sql in render(migration, "postgresql"))
    assert any("BYTEA" in sql for sql in render(MIGRATIONS[0], "postgresql"))
    assert not any("STORAGE" in sql for sql in render(MIGRATIONS[1], "sqlite"))


async def test_a_version_1_sqlite_store_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for sql in render(MIGRATIONS[0], "sqlite"):
        connection.execute(sql)
    connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    connection.execute(
        "INSERT INTO cases VALUES ('case-x', 'afgesloten', NULL, NULL, '[]', '{}', 0, 1, 7)"
    )
    connection.commit()
    connection.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        assert store.migration is not None
        assert (store.migration.before, store.migration.after) == (1, SCHEMA_VERSION)
        assert await store.purge_due(10, 100) == 0  # the closed case was scheduled, nothing left
    finally:
        await store.close()


# A schema 2 store of a protocol-v1 hub: two leaves, one envelope still queued.
QUEUED, DELIVERED = envelope_batch(1), envelope_batch(2)


def version_2_rows() -> list[tuple[str, tuple[object, ...]]]:
    """(table, row) of the version 2 store, in insertion order."""
    (queued,), (delivered,) = QUEUED.envelopes, DELIVERED.envelopes
    return [
        ("leaves", (0, QUEUED.leaves[0].leaf_hash, QUEUED.leaves[0].data, "case-a")),
        ("leaves", (1, DELIVERED.leaves[0].leaf_hash, DELIVERED.leaves[0].data, "case-a")),
        ("seen", ("caw", queued.message_id, FAR)),
        ("seen", ("caw", delivered.message_id, FAR)),
        (
            "envelopes",
            (queued.message_id, "caw", "aanmelding", "case-a", 100, FAR, 0, queued.blob),
        ),
    ]


def sqlite_version_2(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for migration in MIGRATIONS[:2]:
        for sql in render(migration, "sqlite"):
            connection.execute(sql)
    connection.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    for table, row in version_2_rows():
        marks = ", ".join("?" * len(row))
        connection.execute(f"INSERT INTO {table} VALUES ({marks})", row)  # noqa: S608
    connection.commit()
    connection.close()


async def postgres_version_2(dsn: str) -> None:
    import asyncpg  # noqa: PLC0415

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for migration in MIGRATIONS[:2]:
            for sql in render(migration, "postgresql"):
                await connection.execute(sql)
        await connection.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        for table, row in version_2_rows():
            marks = ", ".join(f"${n}" for n in range(1, len(row) + 1))
            await connection.execute(f"INSERT INTO {table} VALUES ({marks})", *row)  # noqa: S608
    finally:
        await connection.close()


async def test_a_protocol_v1_store_with_a_log_is_refused_with_what_to_do(
    store_kind: str, tmp_path: Path
) -> None:
    """Schema 2 was written by a protocol-v1 hub: its unsalted leaves cannot be read or extended
    by v2 (spec §12). Opening (SQLite) or migrating (PostgreSQL) refuses it, says what to do,
    and changes nothing."""
    with contextlib.ExitStack() as stack:
        if store_kind == "sqlite":
            path = tmp_path / "old.sqlite3"
            sqlite_version_2(path)
            with pytest.raises(StoreError, match=r"protocol-v1 hub.*livcr hub init"):
                await SQLiteStore(path).open()
            connection = sqlite3.connect(path)
            version = connection.execute("SELECT value FROM meta").fetchone()[0]
            leaves = connection.execute("SELECT COUNT(*) FROM leaves").fetchone()[0]
            connection.close()
        else:
            import asyncpg  # noqa: PLC0415

            dsn = stack.enter_context(fresh_database())
            await postgres_version_2(dsn)
            with pytest.raises(StoreError, match=r"protocol-v1 hub.*livcr hub init"):
                await PostgresStore(dsn).migrate()
            with pytest.raises(StoreError, match="livcr hub migrate"):
                await PostgresStore(dsn).open()
            connection = await asyncpg.connect(dsn)
            version = await connection.fetchval("SELECT value FROM meta")
            leaves = await connection.fetchval("SELECT COUNT(*) FROM leaves")
            await connection.close()
        assert (version, leaves) == ("2", 2)


async def test_a_store_from_a_newer_hub_is_refused(tmp_path: Path, pg_dsn: str) -> None:
    path = tmp_path / "new.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    connection.close()
    with pytest.raises(StoreError, match="newer than this hub"):
        await SQLiteStore(path).open()
    await PostgresStore(pg_dsn).migrate()
    import asyncpg  # noqa: PLC0415

    connection = await asyncpg.connect(pg_dsn)
    await connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    await connection.close()
    with pytest.raises(StoreError, match="newer than this hub"):
        await PostgresStore(pg_dsn).migrate()


async def test_postgres_refuses_an_unmigrated_database(pg_dsn: str) -> None:
    with pytest.raises(StoreError, match="livcr hub migrate"):
        await PostgresStore(pg_dsn).open()


async def test_concurrent_migrations_wait_for_each_other(pg_dsn: str) -> None:
    reports = await asyncio.gather(*(PostgresStore(pg_dsn).migrate() for _ in range(3)))
    assert sorted(r.before for r in reports) == [0, SCHEMA_VERSION, SCHEMA_VERSION]
    assert sum(len(r.applied) for r in reports) == SCHEMA_VERSION


def test_livcr_hub_migrate(tmp_path: Path) -> None:
    root = ROOT.public.to_text()
    with fresh_database() as dsn:
        for name, store in (
            ("sqlite.toml", '[store]\nkind = "sqlite"\npath = "hub.sqlite3"\n'),
            ("pg.toml", f'[store]\nkind = "postgresql"\ndsn = "{dsn}"\n'),
        ):
            config = tmp_path / name
            config.write_text(f'[hub]\ncell_id = "gent"\nroot_key = "{root}"\n{store}')
            first = CliRunner().invoke(main, ["hub", "migrate", "--config", str(config)])
            assert first.exit_code == 0, first.output
            assert f"schema 0 -> {SCHEMA_VERSION}" in first.output
            assert "applied 2 scale-out" in first.output
            again = CliRunner().invoke(main, ["hub", "migrate", "--config", str(config)])
            assert again.exit_code == 0, again.output
            assert f"schema {SCHEMA_VERSION}, up to date" in again.output


def test_a_bad_postgresql_config_is_named(tmp_path: Path) -> None:
    root = ROOT.public.to_text()
    config = tmp_path / "hub.toml"
    for store, message in (
        ('kind = "postgresql"\n', "store.dsn is required"),
        ('kind = "postgresql"\ndsn = "127.0.0.1:5432"\n', "must be a postgresql:// URL"),
        ('kind = "sqlite"\ndsn = "postgresql://x/y"\n', 'only read when kind = "postgresql"'),
        ('kind = "mysql"\n', "Invalid enum value 'mysql'"),
    ):
        config.write_text(f'[hub]\ncell_id = "gent"\nroot_key = "{root}"\n[store]\n{store}')
        result = CliRunner().invoke(main, ["hub", "migrate", "--config", str(config)])
        assert result.exit_code == 1
        assert message in result.output, result.output
        assert "$.store" in result.output


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    root = ROOT.public.to_text()
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\ncell_id = "gent"\nroot_key = "{root}"\n[store]\nkind = "postgresql"\n'
        'dsn = "postgresql://postgres@127.0.0.1:1/none"\n'
    )
    result = CliRunner().invoke(main, ["hub", "status", "--config", str(config)])
    assert result.exit_code == 1
    assert "store: postgresql: cannot connect" in result.output
    assert "Traceback" not in result.output


async def test_an_envelope_kept_inline_before_schema_6_is_served_from_its_row(
    tmp_path: Path,
) -> None:
    """Migration 6 leaves a queued envelope's bytes in its row (no size, no digest): its
    notice still gives its size and hash, and it is served from the row, as it was stored."""
    path = tmp_path / "hub.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for migration in MIGRATIONS[:5]:
        for sql in render(migration, "sqlite"):
            connection.execute(sql)
    connection.execute("INSERT INTO meta VALUES ('schema_version', '5')")
    blob = b"sealed before schema 6" * 1000
    message_id = bytes(range(16))
    connection.execute(
        "INSERT INTO envelopes (message_id, sender_id, purpose, case_ref, accepted_at,"
        " expires_at, leaf_index, blob) VALUES (?, 'caw', 'aanmelding', 'case-a', 100, ?, 0, ?)",
        (message_id, FAR, blob),
    )
    connection.execute(
        "INSERT INTO deliveries (recipient_id, message_id, accepted_at, size)"
        " VALUES ('coord', ?, 100, ?)",
        (message_id, len(blob)),
    )
    connection.commit()
    connection.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        assert store.migration is not None
        assert (store.migration.before, store.migration.after) == (5, SCHEMA_VERSION)
        (record,) = await store.pending("coord", 0, 10)
        assert (record.size, record.digest) == (len(blob), envelope_hash(blob))
        stored = await store.stored_envelope("coord", message_id)
        assert stored is not None
        assert b"".join([piece async for piece in stored.chunks(0)]) == blob
        assert b"".join([piece async for piece in stored.chunks(7)]) == blob[7:]
        assert await store.stored_envelope("caw", message_id) is None
    finally:
        await store.close()
