"""The protocol version a gateway store was written for: v2 stores only (spec §12).

A store a protocol v1 gateway filled holds keys, messages and checkpoints this gateway cannot
use; it is refused with what to do, never silently reused.
"""

from __future__ import annotations

import sqlite3

PROTOCOL_VERSION_KEY = "protocol_version"
STORE_PROTOCOL_VERSION = "2"
# Tables that a gateway of protocol v1 filled: its keys, messages and the v1 log's checkpoints.
_V1_CONTENT_TABLES = ("prekeys", "outbox", "dossier", "checkpoints")


class StoreRefused(Exception):
    """The store was written by a gateway of another protocol version (spec §12)."""


def check_protocol_version(connection: sqlite3.Connection) -> None:
    """Mark a new store as protocol v2; refuse one a v1 gateway filled (spec §12).

    Raises:
        StoreRefused: the store holds keys, messages or checkpoints of protocol v1.
    """
    row = connection.execute(
        "SELECT value FROM meta WHERE key = ?", (PROTOCOL_VERSION_KEY,)
    ).fetchone()
    if row is not None and row[0] == STORE_PROTOCOL_VERSION:
        return
    used = any(
        connection.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
        for table in _V1_CONTENT_TABLES
    )
    if row is not None or used:
        version = "1" if row is None else row[0]
        raise StoreRefused(
            f"the gateway store was written for protocol version {version}; this gateway speaks"
            f" version {STORE_PROTOCOL_VERSION} (spec §12) and cannot use its keys, messages or"
            " checkpoints. Export what you need with the old gateway, then set this participant"
            " up again (`livcr gateway init`) with an empty database"
        )
    connection.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        (PROTOCOL_VERSION_KEY, STORE_PROTOCOL_VERSION),
    )
