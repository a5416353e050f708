"""The hub's relational schema as numbered migrations: one versioned source for both backends.

Each migration is a list of statements in portable SQL; two words differ between the dialects
and are written as placeholders: ``{blob}`` (SQLite ``BLOB``, PostgreSQL ``BYTEA``) and
``{seq}`` (an ascending row number: SQLite's ``INTEGER PRIMARY KEY``, PostgreSQL's identity
column). A statement that only one dialect needs is given as ``(dialect, sql)``. The version a
store is at lives in ``meta.schema_version``; ``pending`` says which migrations it lacks and
refuses a store written by a newer hub.

SQLite applies pending migrations when the store opens (the embedded default needs no step).
PostgreSQL applies them only through ``livcr hub migrate``, under an advisory lock, so several
hub processes never race to change the schema; a hub refuses to serve an older schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .base import StoreError

Dialect = Literal["sqlite", "postgresql"]
Statement = str | tuple[Dialect, str]

# pg_advisory_xact_lock key of schema changes ("livcrMIG"), apart from the log's append lock.
MIGRATION_LOCK = int.from_bytes(b"livcrMIG", "big")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[Statement, ...]


_BASELINE: tuple[Statement, ...] = (
    """CREATE TABLE IF NOT EXISTS statements (
        seq {seq},
        kind TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        signed {blob} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS prekeys (
        participant_id TEXT NOT NULL,
        prekey_id {blob} NOT NULL,
        statement {blob} NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        PRIMARY KEY (participant_id, prekey_id))""",
    """CREATE TABLE IF NOT EXISTS envelopes (
        message_id {blob} PRIMARY KEY,
        sender_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        case_ref TEXT NOT NULL,
        accepted_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        leaf_index BIGINT NOT NULL,
        blob {blob} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS envelopes_expiry ON envelopes (expires_at)",
    "CREATE INDEX IF NOT EXISTS envelopes_case ON envelopes (case_ref)",
    """CREATE TABLE IF NOT EXISTS seen (
        sender_id TEXT NOT NULL,
        message_id {blob} NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (sender_id, message_id))""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        seq {seq},
        recipient_id TEXT NOT NULL,
        message_id {blob} NOT NULL,
        UNIQUE (recipient_id, message_id))""",
    "CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries (message_id)",
    """CREATE TABLE IF NOT EXISTS cases (
        case_ref TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        owner TEXT,
        referrer TEXT,
        members TEXT NOT NULL,
        meetings TEXT NOT NULL,
        opened_at BIGINT NOT NULL,
        closed_at BIGINT,
        purge_after BIGINT)""",
    """CREATE TABLE IF NOT EXISTS leaves (
        idx BIGINT PRIMARY KEY,
        leaf_hash {blob} NOT NULL,
        data {blob},
        case_ref TEXT)""",
    "CREATE INDEX IF NOT EXISTS leaves_case ON leaves (case_ref)",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        size BIGINT PRIMARY KEY,
        note {blob} NOT NULL)""",
)

_SCALE_OUT: tuple[Statement, ...] = (
    # Request-signature nonces every hub process on the store sees (spec §11.1).
    """CREATE TABLE IF NOT EXISTS request_nonces (
        participant_id TEXT NOT NULL,
        nonce {blob} NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (participant_id, nonce))""",
    "CREATE INDEX IF NOT EXISTS request_nonces_expiry ON request_nonces (expires_at)",
    # Retention work still to do: closing a case schedules its purge (spec §10.5).
    """CREATE TABLE IF NOT EXISTS purge_queue (
        case_ref TEXT PRIMARY KEY,
        due_at BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS purge_queue_due ON purge_queue (due_at)",
    """INSERT INTO purge_queue (case_ref, due_at)
        SELECT case_ref, purge_after FROM cases WHERE purge_after IS NOT NULL
        ON CONFLICT (case_ref) DO NOTHING""",
    # Queries that must not scan a queue of millions.
    "CREATE INDEX IF NOT EXISTS deliveries_recipient_seq ON deliveries (recipient_id, seq)",
    "CREATE INDEX IF NOT EXISTS seen_expiry ON seen (expires_at)",
    "CREATE INDEX IF NOT EXISTS leaves_case_data ON leaves (case_ref) WHERE data IS NOT NULL",
    # Sealed envelopes do not compress: store them out of line without trying.
    ("postgresql", "ALTER TABLE envelopes ALTER COLUMN blob SET STORAGE EXTERNAL"),
)

_RESUBMISSION: tuple[Statement, ...] = (
    # Where the log holds each accepted pair's envelope: a sender that resubmits the same bytes
    # gets its original receipt (spec §9.3). NULL for a pair accepted before this migration
    # whose envelope has left the queue: the hub answers such a resubmission `replayed`.
    "ALTER TABLE seen ADD COLUMN leaf_index BIGINT",
    """UPDATE seen SET leaf_index = (SELECT e.leaf_index FROM envelopes e
            WHERE e.message_id = seen.message_id AND e.sender_id = seen.sender_id)
        WHERE EXISTS (SELECT 1 FROM envelopes e
            WHERE e.message_id = seen.message_id AND e.sender_id = seen.sender_id)""",
)

_CONSOLE: tuple[Statement, ...] = (
    # The operator's console shows each recipient's queue: how many, how large, how old. With
    # 10^5 deliveries queued, counting them per page view would scan the queue; instead each
    # delivery is counted by recipient and hour of acceptance as it comes and goes (triggers,
    # so every writer keeps the counts right), and only the one hour at each age boundary is
    # read row by row.
    "ALTER TABLE deliveries ADD COLUMN accepted_at BIGINT",
    "ALTER TABLE deliveries ADD COLUMN size BIGINT",
    """UPDATE deliveries SET
        accepted_at = (SELECT e.accepted_at FROM envelopes e
            WHERE e.message_id = deliveries.message_id),
        size = (SELECT length(e.blob) FROM envelopes e
            WHERE e.message_id = deliveries.message_id)""",
    """CREATE INDEX IF NOT EXISTS deliveries_recipient_age
        ON deliveries (recipient_id, accepted_at, seq)""",
    "CREATE INDEX IF NOT EXISTS deliveries_age ON deliveries (accepted_at)",
    """CREATE TABLE IF NOT EXISTS delivery_hours (
        recipient_id TEXT NOT NULL,
        hour BIGINT NOT NULL,
        deliveries BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        PRIMARY KEY (recipient_id, hour))""",
    """INSERT INTO delivery_hours (recipient_id, hour, deliveries, bytes)
        SELECT recipient_id, accepted_at / 3600, COUNT(*), SUM(size) FROM deliveries
        GROUP BY recipient_id, accepted_at / 3600""",
    (
        "sqlite",
        """CREATE TRIGGER IF NOT EXISTS deliveries_counted AFTER INSERT ON deliveries BEGIN
            INSERT INTO delivery_hours (recipient_id, hour, deliveries, bytes)
                VALUES (NEW.recipient_id, NEW.accepted_at / 3600, 1, NEW.size)
                ON CONFLICT (recipient_id, hour) DO UPDATE SET
                    deliveries = deliveries + 1, bytes = bytes + excluded.bytes;
        END""",
    ),
    (
        "sqlite",
        """CREATE TRIGGER IF NOT EXISTS deliveries_uncounted AFTER DELETE ON deliveries BEGIN
            UPDATE delivery_hours SET deliveries = deliveries - 1, bytes = bytes - OLD.size
                WHERE recipient_id = OLD.recipient_id AND hour = OLD.accepted_at / 3600;
            DELETE FROM delivery_hours WHERE recipient_id = OLD.recipient_id
                AND hour = OLD.accepted_at / 3600 AND deliveries <= 0;
        END""",
    ),
    # PostgreSQL: once per statement, over the rows it inserted or deleted (a group commit
    # inserts hundreds at once). Each first locks the counts it will change in one order, so
    # processes acknowledging and accepting at once cannot deadlock on them.
    (
        "postgresql",
        """CREATE OR REPLACE FUNCTION livcr_deliveries_counted() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN
            PERFORM 1 FROM delivery_hours h
                WHERE (h.recipient_id, h.hour) IN
                    (SELECT recipient_id, accepted_at / 3600 FROM added)
                ORDER BY h.recipient_id, h.hour FOR UPDATE;
            INSERT INTO delivery_hours (recipient_id, hour, deliveries, bytes)
                SELECT recipient_id, accepted_at / 3600, COUNT(*), SUM(size) FROM added
                GROUP BY recipient_id, accepted_at / 3600
                ON CONFLICT (recipient_id, hour) DO UPDATE SET
                    deliveries = delivery_hours.deliveries + excluded.deliveries,
                    bytes = delivery_hours.bytes + excluded.bytes;
            RETURN NULL;
        END $$""",
    ),
    (
        "postgresql",
        """CREATE OR REPLACE FUNCTION livcr_deliveries_uncounted() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN
            PERFORM 1 FROM delivery_hours h
                WHERE (h.recipient_id, h.hour) IN
                    (SELECT recipient_id, accepted_at / 3600 FROM removed)
                ORDER BY h.recipient_id, h.hour FOR UPDATE;
            UPDATE delivery_hours h SET deliveries = h.deliveries - g.n, bytes = h.bytes - g.b
                FROM (SELECT recipient_id, accepted_at / 3600 AS hour, COUNT(*) AS n,
                             SUM(size) AS b FROM removed GROUP BY 1, 2) g
                WHERE h.recipient_id = g.recipient_id AND h.hour = g.hour;
            DELETE FROM delivery_hours h USING (SELECT DISTINCT recipient_id,
                    accepted_at / 3600 AS hour FROM removed) g
                WHERE h.recipient_id = g.recipient_id AND h.hour = g.hour AND h.deliveries <= 0;
            RETURN NULL;
        END $$""",
    ),
    (
        "postgresql",
        """CREATE TRIGGER deliveries_counted AFTER INSERT ON deliveries
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION livcr_deliveries_counted()""",
    ),
    (
        "postgresql",
        """CREATE TRIGGER deliveries_uncounted AFTER DELETE ON deliveries
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
        EXECUTE FUNCTION livcr_deliveries_uncounted()""",
    ),
    # Refused requests, content-free (time and code only), to chart refusals by code over time;
    # the refusal leaves say the same but are not indexed by time.
    """CREATE TABLE IF NOT EXISTS refusals (
        seq {seq},
        at BIGINT NOT NULL,
        code TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS refusals_at ON refusals (at, code)",
    # Retention rounds that removed something: when, and how many rows (counts only).
    """CREATE TABLE IF NOT EXISTS purges (
        seq {seq},
        at BIGINT NOT NULL,
        removed BIGINT NOT NULL)""",
)

_OUT_OF_LINE: tuple[Statement, ...] = (
    # Envelopes up to 256 MiB are streamed to storage out of line, never held whole: a file
    # per envelope beside a SQLite store, chunk rows in PostgreSQL (spec §11.2). Their
    # row keeps an empty ``blob``, their size and their envelope hash (what receipts and drops
    # name). Rows from before this migration keep their bytes in ``blob`` and are served from
    # it (they were at most one request's size); their size and digest are NULL.
    "ALTER TABLE envelopes ADD COLUMN size BIGINT",
    "ALTER TABLE envelopes ADD COLUMN digest {blob}",
    # PostgreSQL: one row per MiB, written in the transaction that accepts the envelope (so one
    # commit makes them durable and a crash leaves none) and deleted with the envelope's row.
    # The foreign key is checked at commit: the chunks are written before the row.
    (
        "postgresql",
        """CREATE TABLE IF NOT EXISTS envelope_chunks (
        message_id BYTEA NOT NULL REFERENCES envelopes (message_id)
            ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
        seq INTEGER NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (message_id, seq))""",
    ),
    ("postgresql", "ALTER TABLE envelope_chunks ALTER COLUMN data SET STORAGE EXTERNAL"),
    # SQLite: an out-of-line envelope's row deleted (delivered, expired, purged, dropped) names
    # its file here, in the same transaction; the store unlinks the file once it committed.
    ("sqlite", "CREATE TABLE IF NOT EXISTS envelope_files_gone (message_id BLOB PRIMARY KEY)"),
    (
        "sqlite",
        """CREATE TRIGGER IF NOT EXISTS envelope_file_gone AFTER DELETE ON envelopes
        WHEN length(OLD.blob) = 0 BEGIN
            INSERT OR IGNORE INTO envelope_files_gone (message_id) VALUES (OLD.message_id);
        END""",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline", _BASELINE),
    Migration(2, "scale-out: shared request nonces, purge queue, queue indexes", _SCALE_OUT),
    Migration(3, "resubmission: the log index of each accepted pair", _RESUBMISSION),
    Migration(4, "console: queue ages per recipient, refusals and purges by time", _CONSOLE),
    # No statement: the tables stay, their bytes change meaning (salted leaves, spec §12).
    Migration(5, "protocol v2", ()),
    Migration(6, "envelopes stored out of line: files or chunk rows", _OUT_OF_LINE),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
FIRST_V2_SCHEMA = 5  # a store below this was written by a protocol-v1 hub
V1_STORE_REFUSED = (
    "this store was written by a protocol-v1 hub and holds a v1 log, which protocol v2 cannot"
    " read or extend (spec §12). Initialise a new cell (`livcr hub init`) or point the hub at an"
    " empty store, and enrol the participants again; keep the old store only as an archive"
)
_COUNT_LEAVES = "SELECT COUNT(*) FROM (SELECT 1 FROM leaves LIMIT 1) AS any_leaf"


def check_not_v1(before: int, leaves: int) -> None:
    """Refuse a store of protocol v1 that holds log leaves; an empty one migrates as it is.

    Raises:
        StoreError: the store holds a protocol-v1 log.
    """
    if 0 < before < FIRST_V2_SCHEMA and leaves > 0:
        raise StoreError(V1_STORE_REFUSED)


_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_WORDS: dict[Dialect, dict[str, str]] = {
    "sqlite": {"blob": "BLOB", "seq": "INTEGER PRIMARY KEY"},
    "postgresql": {"blob": "BYTEA", "seq": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
}


def render(migration: Migration, dialect: Dialect) -> list[str]:
    """The migration's statements as ``dialect`` runs them."""
    rendered: list[str] = []
    for statement in migration.statements:
        if isinstance(statement, tuple):
            only, sql = statement
            if only != dialect:
                continue
        else:
            sql = statement
        rendered.append(sql.format(**_WORDS[dialect]))
    return rendered


def pending(current: int) -> list[Migration]:
    """Migrations a store at version ``current`` lacks.

    Raises:
        StoreError: the store was written by a newer hub (never downgrade a schema).
    """
    if current > SCHEMA_VERSION:
        raise StoreError(f"store schema {current} is newer than this hub's {SCHEMA_VERSION}")
    return [m for m in MIGRATIONS if m.version > current]


@dataclass(frozen=True)
class MigrationReport:
    before: int
    after: int
    applied: tuple[str, ...]  # "2 scale-out: ..." per migration applied


# SQLite: runs inside the caller's BEGIN IMMEDIATE transaction.
def migrate_sqlite(connection: sqlite3.Connection) -> MigrationReport:
    connection.execute(_META)
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    before = 0 if row is None else int(row[0])
    todo = pending(before)
    if before:
        check_not_v1(before, connection.execute(_COUNT_LEAVES).fetchone()[0])
    for migration in todo:
        for sql in render(migration, "sqlite"):
            connection.execute(sql)
    _sqlite_set_version(connection, SCHEMA_VERSION)
    return MigrationReport(before, SCHEMA_VERSION, _names(todo))


def _sqlite_set_version(connection: sqlite3.Connection, version: int) -> None:
    connection.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(version),),
    )


# PostgreSQL: ``connection`` is an asyncpg connection (untyped library, hence Any).
async def postgres_version(connection: Any) -> int:
    """The schema version of the database (0 when it was never migrated)."""
    exists = await connection.fetchval("SELECT to_regclass('meta') IS NOT NULL")
    if not exists:
        return 0
    value = await connection.fetchval("SELECT value FROM meta WHERE key = 'schema_version'")
    return 0 if value is None else int(value)


async def migrate_postgres(connection: Any) -> MigrationReport:
    """Apply pending migrations in one transaction, serialised by an advisory lock.

    Raises:
        StoreError: the database was written by a newer hub.
    """
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        before = await postgres_version(connection)
        todo = pending(before)
        if before:
            check_not_v1(before, await connection.fetchval(_COUNT_LEAVES))
        await connection.execute(_META)
        for migration in todo:
            for sql in render(migration, "postgresql"):
                await connection.execute(sql)
        await connection.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            str(SCHEMA_VERSION),
        )
    return MigrationReport(before, SCHEMA_VERSION, _names(todo))


def _names(migrations: Sequence[Migration]) -> tuple[str, ...]:
    return tuple(f"{m.version} {m.name}" for m in migrations)
