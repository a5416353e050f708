"""The gateway's durable state in one SQLite file (WAL, synchronous=FULL), migrated on open.

Outbox rows survive the gateway's crash and are resent with the same bytes until the hub
acknowledges (or sealed again, under the same message id, once their timestamp is too far from
the clock); a message refused for good stays, body included, until an operator acts. Dossier
rows are unique per verified (sender, message id, direction): a message delivered twice is
stored once. Envelopes that fail a check are quarantined, as they came. Bodies and prekey
secrets are sealed with the local key before they reach the file.
"""

from __future__ import annotations

import sqlite3

from .migrations import StoreTooNew
from .store_base import StoreLocked
from .store_documents import DocumentRow, DocumentRows
from .store_dossier import DossierRow, DossierRows, Quarantined, QuarantineRow
from .store_keys import KeyRows
from .store_outbox import DossierValues, OutboxRow, OutboxRows
from .store_protocol import StoreRefused

__all__ = [
    "DocumentRow",
    "DossierRow",
    "DossierValues",
    "GatewayStore",
    "OutboxRow",
    "QuarantineRow",
    "Quarantined",
    "StoreLocked",
    "StoreRefused",
    "StoreTooNew",
]


class GatewayStore(OutboxRows, DossierRows, DocumentRows, KeyRows):
    """The store: the connection (``store_base``) and every table's calls."""

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
                "quarantined": one("SELECT COUNT(*) FROM quarantine"),
            }

        return await self.run(run)
