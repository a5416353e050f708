"""The gateway's durable state in one SQLite file (WAL, synchronous=FULL).

Outbox rows survive the gateway's crash and are resent with the same bytes until the hub
acknowledges (or sealed again, under the same message id, once they grew too old for the hub).
Dossier rows are unique per (message id, direction): a message delivered twice is stored once.
Bodies and prekey secrets are sealed with the local key before they reach the file. Other
participants' prekey statements, verified when they were fetched, are kept for sealing while the
hub is away.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PROTOCOL_VERSION_KEY = "protocol_version"
STORE_PROTOCOL_VERSION = "2"
# Tables that a gateway of protocol v1 filled: its keys, messages and the v1 log's checkpoints.
_V1_CONTENT_TABLES = ("prekeys", "outbox", "dossier", "checkpoints")


class StoreRefused(Exception):
    """The store was written by a gateway of another protocol version (spec §12)."""


SCHEMA = (
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


@dataclass(frozen=True)
class OutboxRow:
    message_id: bytes
    case_ref: str
    purpose: str
    envelope: bytes
    state: str
    attempts: int
    receipt: str | None
    last_error: str | None


@dataclass(frozen=True)
class DossierRow:
    seq: int
    message_id: bytes
    direction: str  # "sent" or "received"
    case_ref: str
    purpose: str
    sender_id: str
    recipients: str  # comma-separated
    meeting_ref: str | None
    logged_at: int | None
    leaf_index: int | None
    sealed: bytes | None  # None once erased
    consumed: bool
    deleted_at: int | None


def _check_protocol_version(connection: sqlite3.Connection) -> None:
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


class GatewayStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="gateway-sqlite")
        self._connection: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._connection = await self._run_raw(self._connect)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=30000")
        # Deleted content is overwritten, not left in free pages: an erased case and a destroyed
        # prekey secret must not be readable from the file by whoever later holds the local key.
        connection.execute("PRAGMA secure_delete=ON")
        for statement in SCHEMA:
            connection.execute(statement)
        try:
            _check_protocol_version(connection)
        except StoreRefused:
            connection.close()
            raise
        return connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._run_raw(self._connection.close)
            self._connection = None
        self._thread.shutdown(wait=True)

    async def _run_raw(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one transaction on the store's thread."""
        connection = self._connection
        if connection is None:
            raise RuntimeError("gateway store is not open")

        def transaction() -> T:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = fn(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

        return await self._run_raw(transaction)

    # Outbox.
    async def enqueue(self, row: OutboxRow, dossier: tuple[Any, ...], now: int) -> None:
        """Outbox row and the sender's dossier copy, in one transaction."""

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO outbox (message_id, case_ref, purpose, envelope, state, created_at)"
                " VALUES (?, ?, ?, ?, 'pending', ?)",
                (row.message_id, row.case_ref, row.purpose, row.envelope, now),
            )
            c.execute(_DOSSIER_INSERT, dossier)

        await self.run(run)

    async def due(self, now: float, limit: int = 20) -> list[OutboxRow]:
        rows = await self.run(
            lambda c: c.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox"
                " WHERE state = 'pending' AND next_attempt_at <= ?"
                " ORDER BY created_at LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [OutboxRow(*r) for r in rows]

    async def next_due(self) -> float | None:
        row = await self.run(
            lambda c: c.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'"
            ).fetchone()
        )
        return None if row[0] is None else float(row[0])

    async def outbox_row(self, message_id: bytes) -> OutboxRow | None:
        row = await self.run(
            lambda c: c.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE message_id = ?", (message_id,)
            ).fetchone()
        )
        return None if row is None else OutboxRow(*row)

    async def mark_sent(
        self, message_id: bytes, receipt: str | None, logged_at: int, leaf_index: int
    ) -> None:
        """The hub acknowledged the message with ``receipt`` (its JSON; None: the hub holds it
        but showed no receipt, and ``logged_at`` and ``leaf_index`` are -1, unknown)."""

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE outbox SET state = 'sent', receipt = ? WHERE message_id = ?",
                (receipt, message_id),
            )
            c.execute(
                "UPDATE dossier SET logged_at = ?, leaf_index = ? WHERE message_id = ?"
                " AND direction = 'sent'",
                (logged_at, leaf_index, message_id),
            )

        await self.run(run)

    async def mark_failed(self, message_id: bytes, error: str) -> None:
        """The hub refused the message for good: it was never sent, so the dossier copy that
        ``enqueue`` made goes; the outbox row keeps the refusal (its code) as the record."""

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE outbox SET state = 'failed', last_error = ? WHERE message_id = ?",
                (error, message_id),
            )
            c.execute(
                "DELETE FROM dossier WHERE message_id = ? AND direction = 'sent'", (message_id,)
            )

        await self.run(run)

    async def begin_attempt(self, message_id: bytes) -> None:
        """Count a submission durably before it is made: after a crash mid-submission, the
        count says the hub may hold the message already (``attempts`` = attempts begun)."""
        await self.run(
            lambda c: c.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE message_id = ?", (message_id,)
            )
        )

    async def replace_envelope(self, message_id: bytes, envelope: bytes) -> None:
        """The message sealed again (same message id, fresh timestamp); sent from now on."""
        await self.run(
            lambda c: c.execute(
                "UPDATE outbox SET envelope = ? WHERE message_id = ? AND state = 'pending'",
                (envelope, message_id),
            )
        )

    async def retry_now(self) -> int:
        """Make every pending message due at once (the hub is back); return how many."""
        return await self.run(
            lambda c: (
                c.execute(
                    "UPDATE outbox SET next_attempt_at = 0"
                    " WHERE state = 'pending' AND next_attempt_at > 0"
                ).rowcount
            )
        )

    async def sent_body(self, message_id: bytes) -> bytes | None:
        """The sealed dossier copy of a message this gateway sends; None once erased."""
        row = await self.run(
            lambda c: c.execute(
                "SELECT sealed FROM dossier WHERE message_id = ? AND direction = 'sent'",
                (message_id,),
            ).fetchone()
        )
        return None if row is None or row[0] is None else bytes(row[0])

    async def retry_later(self, message_id: bytes, at: float, error: str) -> None:
        await self.run(
            lambda c: c.execute(
                "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE message_id = ?",
                (at, error, message_id),
            )
        )

    # Dossier.
    async def store_received(self, dossier: tuple[Any, ...]) -> bool:
        """Insert a received message once; False if it was already there (a redelivery)."""

        def run(c: sqlite3.Connection) -> bool:
            cursor = c.execute(_DOSSIER_INSERT.replace("INSERT", "INSERT OR IGNORE", 1), dossier)
            return cursor.rowcount == 1

        return await self.run(run)

    async def has_received(self, message_id: bytes) -> bool:
        row = await self.run(
            lambda c: c.execute(
                "SELECT 1 FROM dossier WHERE message_id = ? AND direction = 'received'",
                (message_id,),
            ).fetchone()
        )
        return row is not None

    async def dossier(
        self,
        *,
        case_ref: str | None = None,
        purpose: str | None = None,
        unconsumed: bool = False,
        limit: int = 1000,
    ) -> list[DossierRow]:
        clauses, params = ["1 = 1"], []
        if case_ref is not None:
            clauses.append("case_ref = ?")
            params.append(case_ref)
        if purpose is not None:
            clauses.append("purpose = ?")
            params.append(purpose)
        if unconsumed:
            clauses.append("consumed = 0 AND direction = 'received' AND sealed IS NOT NULL")
        sql = (
            f"SELECT {_DOSSIER_COLUMNS} FROM dossier WHERE {' AND '.join(clauses)}"
            " ORDER BY seq LIMIT ?"
        )
        rows = await self.run(lambda c: c.execute(sql, (*params, limit)).fetchall())
        return [_dossier_row(r) for r in rows]

    async def received_after(self, after: int, limit: int) -> list[DossierRow]:
        """Received rows with ``seq`` above ``after``, oldest first; marks them consumed."""

        def run(c: sqlite3.Connection) -> list[Any]:
            rows = c.execute(
                f"SELECT {_DOSSIER_COLUMNS} FROM dossier WHERE direction = 'received' AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
            if rows:
                c.execute(
                    "UPDATE dossier SET consumed = 1 WHERE direction = 'received'"
                    " AND seq > ? AND seq <= ? AND consumed = 0",
                    (after, rows[-1][0]),
                )
            return rows

        return [_dossier_row(r) for r in await self.run(run)]

    async def mark_consumed(self, seq: int) -> None:
        await self.run(lambda c: c.execute("UPDATE dossier SET consumed = 1 WHERE seq = ?", (seq,)))

    async def erase_case(self, case_ref: str, now: int, keep: bytes | None = None) -> list[bytes]:
        """Drop the sealed content of every record of a case but message ``keep``; keep the
        metadata as evidence."""

        def run(c: sqlite3.Connection) -> list[bytes]:
            ids = [
                bytes(r[0])
                for r in c.execute(
                    "SELECT message_id FROM dossier WHERE case_ref = ? AND sealed IS NOT NULL"
                    " AND message_id IS NOT ?",
                    (case_ref, keep),
                ).fetchall()
            ]
            c.execute(
                "UPDATE dossier SET sealed = NULL, deleted_at = ? WHERE case_ref = ?"
                " AND sealed IS NOT NULL AND message_id IS NOT ?",
                (now, case_ref, keep),
            )
            return ids

        erased = await self.run(run)
        await self.forget_old_pages()
        return erased

    async def forget_old_pages(self) -> None:
        """Copy the write-ahead log into the database and empty it: the log still holds the
        page images from before a deletion, content included."""
        connection = self._connection
        if connection is None:
            raise RuntimeError("gateway store is not open")
        # The pragma answers with a row; it must be read, or its statement stays open and the
        # next COMMIT on this connection fails.
        await self._run_raw(
            lambda: connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        )

    async def record_rejection(self, message_id: bytes, code: str, now: int) -> None:
        await self.run(
            lambda c: c.execute(
                "INSERT INTO rejections (message_id, code, at) VALUES (?, ?, ?)",
                (message_id, code, now),
            )
        )

    # Prekeys.
    async def prekeys(self) -> list[tuple[bytes, bytes | None, bytes, int, int, bool]]:
        rows = await self.run(
            lambda c: c.execute(
                "SELECT prekey_id, sealed_secret, statement, not_before, not_after, uploaded"
                " FROM prekeys"
                " ORDER BY not_before"
            ).fetchall()
        )
        return [
            (bytes(a), None if b is None else bytes(b), bytes(s), nb, na, bool(u))
            for a, b, s, nb, na, u in rows
        ]

    async def add_prekey(
        self,
        prekey_id: bytes,
        sealed_secret: bytes,
        statement: bytes,
        not_before: int,
        not_after: int,
    ) -> None:
        await self.run(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO prekeys"
                " (prekey_id, sealed_secret, statement, not_before, not_after)"
                " VALUES (?, ?, ?, ?, ?)",
                (prekey_id, sealed_secret, statement, not_before, not_after),
            )
        )

    async def mark_uploaded(self, prekey_ids: list[bytes]) -> None:
        await self.run(
            lambda c: c.executemany(
                "UPDATE prekeys SET uploaded = 1 WHERE prekey_id = ?", [(p,) for p in prekey_ids]
            )
        )

    async def destroy_prekeys_before(self, cutoff: int) -> int:
        """Forget the secrets of prekeys that expired before ``cutoff`` (forward secrecy)."""
        destroyed = await self.run(
            lambda c: (
                c.execute(
                    "UPDATE prekeys SET sealed_secret = NULL"
                    " WHERE not_after < ? AND sealed_secret IS NOT NULL",
                    (cutoff,),
                ).rowcount
            )
        )
        if destroyed:
            await self.forget_old_pages()
        return destroyed

    # Other participants' prekeys.
    async def cache_peer_prekeys(self, rows: list[tuple[str, bytes, bytes, int]], now: int) -> None:
        """Remember verified (participant id, prekey id, statement, not_after) rows as fetched
        at ``now``; forget the statements that expired."""

        def run(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT INTO peer_prekeys"
                " (participant_id, prekey_id, statement, not_after, fetched_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (participant_id, prekey_id) DO UPDATE"
                " SET statement = excluded.statement, not_after = excluded.not_after,"
                " fetched_at = excluded.fetched_at",
                [(*row, now) for row in rows],
            )
            c.execute("DELETE FROM peer_prekeys WHERE not_after <= ?", (now,))

        await self.run(run)

    async def peer_prekeys(
        self, participant_ids: list[str], now: int, fetched_since: int
    ) -> dict[str, list[bytes]]:
        """Cached statements of these participants, unexpired at ``now`` and fetched from
        ``fetched_since`` on (to be verified again before use)."""

        def run(c: sqlite3.Connection) -> list[Any]:
            marks = ",".join("?" * len(participant_ids))
            return c.execute(
                "SELECT participant_id, statement FROM peer_prekeys"
                f" WHERE participant_id IN ({marks}) AND not_after > ? AND fetched_at >= ?"
                " ORDER BY participant_id, not_after",
                (*participant_ids, now, fetched_since),
            ).fetchall()

        found: dict[str, list[bytes]] = {pid: [] for pid in participant_ids}
        for participant_id, statement in await self.run(run):
            found[participant_id].append(bytes(statement))
        return found

    # Checkpoints and settings.
    async def checkpoints(self) -> list[tuple[int, bytes]]:
        rows = await self.run(
            lambda c: c.execute("SELECT size, note FROM checkpoints ORDER BY size").fetchall()
        )
        return [(s, bytes(n)) for s, n in rows]

    async def add_checkpoint(self, size: int, note: bytes) -> None:
        await self.run(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO checkpoints (size, note) VALUES (?, ?)", (size, note)
            )
        )

    async def get_meta(self, key: str) -> str | None:
        row = await self.run(
            lambda c: c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        )
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self.run(
            lambda c: c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    async def counts(self) -> dict[str, int]:
        def run(c: sqlite3.Connection) -> dict[str, int]:
            def one(sql: str) -> int:
                return int(c.execute(sql).fetchone()[0])

            return {
                "outbox_pending": one("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"),
                "outbox_failed": one("SELECT COUNT(*) FROM outbox WHERE state = 'failed'"),
                "dossier_records": one("SELECT COUNT(*) FROM dossier"),
                "unread": one(
                    "SELECT COUNT(*) FROM dossier WHERE consumed = 0 AND direction = 'received'"
                ),
            }

        return await self.run(run)


def _dossier_row(r: Any) -> DossierRow:
    sealed = None if r[10] is None else bytes(r[10])
    return DossierRow(
        r[0],
        bytes(r[1]),
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        sealed,
        bool(r[11]),
        r[12],
    )


_OUTBOX_COLUMNS = "message_id, case_ref, purpose, envelope, state, attempts, receipt, last_error"
_DOSSIER_COLUMNS = (
    "seq, message_id, direction, case_ref, purpose, sender_id, recipients, meeting_ref, logged_at,"
    " leaf_index, sealed, consumed, deleted_at"
)
_DOSSIER_INSERT = (
    "INSERT INTO dossier (message_id, direction, case_ref, purpose, sender_id, recipients,"
    " meeting_ref, logged_at, leaf_index, sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
