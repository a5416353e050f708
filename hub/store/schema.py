"""The hub's relational schema, one versioned source for every backend."""

from __future__ import annotations

SCHEMA_VERSION = 1

# Portable SQL: SQLite and PostgreSQL both accept it (BLOB is BYTEA on PostgreSQL, see below).
TABLES = (
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS statements (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        signed BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS prekeys (
        participant_id TEXT NOT NULL,
        prekey_id BLOB NOT NULL,
        statement BLOB NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        PRIMARY KEY (participant_id, prekey_id))""",
    """CREATE TABLE IF NOT EXISTS envelopes (
        message_id BLOB PRIMARY KEY,
        sender_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        case_ref TEXT NOT NULL,
        accepted_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        leaf_index BIGINT NOT NULL,
        blob BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS envelopes_expiry ON envelopes (expires_at)",
    "CREATE INDEX IF NOT EXISTS envelopes_case ON envelopes (case_ref)",
    """CREATE TABLE IF NOT EXISTS seen (
        sender_id TEXT NOT NULL,
        message_id BLOB NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (sender_id, message_id))""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        seq INTEGER PRIMARY KEY,
        recipient_id TEXT NOT NULL,
        message_id BLOB NOT NULL,
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
        leaf_hash BLOB NOT NULL,
        data BLOB,
        case_ref TEXT)""",
    "CREATE INDEX IF NOT EXISTS leaves_case ON leaves (case_ref)",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        size BIGINT PRIMARY KEY,
        note BLOB NOT NULL)""",
)
