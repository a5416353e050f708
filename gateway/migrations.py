"""The gateway store's schema as numbered migrations, applied when the store opens.

The version lives in ``meta.schema_version``. A store from before versioning holds the baseline
tables and no version: it counts as version 1. A store written by a newer gateway is refused,
never downgraded.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


class StoreTooNew(Exception):
    """The store was written by a newer gateway."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_BASELINE = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS outbox (
        message_id BLOB PRIMARY KEY,
        case_ref TEXT NOT NULL,
        purpose TEXT NOT NULL,
        envelope BLOB NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        receipt TEXT,
        created_at INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at)",
    """CREATE TABLE IF NOT EXISTS dossier (
        seq INTEGER PRIMARY KEY,
        message_id BLOB NOT NULL,
        direction TEXT NOT NULL,
        case_ref TEXT NOT NULL,
        purpose TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        recipients TEXT NOT NULL,
        meeting_ref TEXT,
        logged_at INTEGER,
        leaf_index INTEGER,
        sealed BLOB,
        consumed INTEGER NOT NULL DEFAULT 0,
        deleted_at INTEGER,
        UNIQUE (message_id, direction))""",
    "CREATE INDEX IF NOT EXISTS dossier_case ON dossier (case_ref, purpose)",
    """CREATE TABLE IF NOT EXISTS prekeys (
        prekey_id BLOB PRIMARY KEY,
        sealed_secret BLOB,
        statement BLOB NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        uploaded INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS peer_prekeys (
        participant_id TEXT NOT NULL,
        prekey_id BLOB NOT NULL,
        statement BLOB NOT NULL,
        not_after INTEGER NOT NULL,
        fetched_at INTEGER NOT NULL,
        PRIMARY KEY (participant_id, prekey_id))""",
    "CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL)",
    """CREATE TABLE IF NOT EXISTS rejections (
        message_id BLOB NOT NULL,
        code TEXT NOT NULL,
        at INTEGER NOT NULL)""",
)

# A received message is unique per verified (sender, message id), not per the id alone: the
# table is rebuilt, since SQLite cannot drop a UNIQUE constraint. Refused envelopes are kept
# (quarantined) with their code instead of only counted; a send's Idempotency-Key is kept with
# the message it created.
_KEEP_WHAT_FAILS = (
    """CREATE TABLE dossier_new (
        seq INTEGER PRIMARY KEY,
        message_id BLOB NOT NULL,
        direction TEXT NOT NULL,
        case_ref TEXT NOT NULL,
        purpose TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        recipients TEXT NOT NULL,
        meeting_ref TEXT,
        logged_at INTEGER,
        leaf_index INTEGER,
        sealed BLOB,
        consumed INTEGER NOT NULL DEFAULT 0,
        deleted_at INTEGER,
        UNIQUE (sender_id, message_id, direction))""",
    (
        "INSERT INTO dossier_new SELECT seq, message_id, direction, case_ref, purpose, sender_id,"
        " recipients, meeting_ref, logged_at, leaf_index, sealed, consumed, deleted_at FROM dossier"
    ),
    "DROP TABLE dossier",
    "ALTER TABLE dossier_new RENAME TO dossier",
    "CREATE INDEX dossier_case ON dossier (case_ref, purpose)",
    "CREATE INDEX dossier_message ON dossier (message_id)",
    """CREATE TABLE quarantine (
        seq INTEGER PRIMARY KEY,
        message_id BLOB NOT NULL,
        code TEXT NOT NULL,
        at INTEGER NOT NULL,
        envelope BLOB)""",
    "INSERT INTO quarantine (message_id, code, at) SELECT message_id, code, at FROM rejections",
    "DROP TABLE rejections",
    "ALTER TABLE outbox ADD COLUMN failed_detail TEXT",
    """CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        request_hash BLOB NOT NULL,
        message_id BLOB NOT NULL,
        created_at INTEGER NOT NULL)""",
)

# Documents: each one sealed in its own file in the gateway folder (``docfiles``), named here.
# An upload not yet sent has no dossier row; a sent or received one is the n-th of its row's.
# An outbox entry with documents refers to its envelope's spool file instead of holding it.
_DOCUMENTS = (
    """CREATE TABLE documents (
        file_id TEXT PRIMARY KEY,
        dossier_seq INTEGER,
        n INTEGER,
        name TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        digest TEXT NOT NULL,
        created_at INTEGER NOT NULL)""",
    "CREATE INDEX documents_dossier ON documents (dossier_seq, n)",
    "ALTER TABLE outbox ADD COLUMN envelope_file TEXT",
)

# A quarantined envelope names its case (when its header could be read) and the file it is kept
# in (when too large for its row), so that erasing the case erases it too.
_QUARANTINE_ERASURE = (
    "ALTER TABLE quarantine ADD COLUMN case_ref TEXT",
    "ALTER TABLE quarantine ADD COLUMN file TEXT",
    "ALTER TABLE quarantine ADD COLUMN erased_at INTEGER",
    "CREATE INDEX quarantine_case ON quarantine (case_ref)",
)

MIGRATIONS = (
    Migration(1, "baseline", _BASELINE),
    Migration(2, "keep what fails: quarantine, kept failures, idempotency keys", _KEEP_WHAT_FAILS),
    Migration(3, "documents sealed in files, outbox envelopes in spool files", _DOCUMENTS),
    Migration(4, "quarantined envelopes are erased with their case", _QUARANTINE_ERASURE),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def current_version(connection: sqlite3.Connection) -> int:
    """The store's version: 0 if empty, 1 for a store from before versioning."""
    tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        return 0
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return 1 if "outbox" in tables else 0
    return int(row[0])


def migrate(connection: sqlite3.Connection) -> tuple[int, int]:
    """Apply the pending migrations in the caller's transaction; return (before, after).

    Raises:
        StoreTooNew: the store was written by a newer gateway.
    """
    before = current_version(connection)
    if before > SCHEMA_VERSION:
        raise StoreTooNew(
            f"the gateway store is at schema {before}, newer than this gateway's"
            f" {SCHEMA_VERSION}: run the newer gateway version that wrote it (a store is never"
            " downgraded), or restore a backup taken before the upgrade"
        )
    for migration in MIGRATIONS:
        if migration.version > before:
            for statement in migration.statements:
                connection.execute(statement)
    connection.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )
    return before, SCHEMA_VERSION
