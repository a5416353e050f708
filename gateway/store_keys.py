"""The prekey rows: this gateway's own (secrets sealed) and the other participants' (cached)."""

from __future__ import annotations

import sqlite3
from typing import Any

from .store_base import StoreBase

PrekeyRow = tuple[bytes, bytes | None, bytes, int, int, bool]


class KeyRows(StoreBase):
    async def prekeys(self) -> list[PrekeyRow]:
        """(prekey id, sealed secret or None once destroyed, statement, not_before, not_after,
        uploaded), oldest first."""
        rows = await self.run(
            lambda c: c.execute(
                "SELECT prekey_id, sealed_secret, statement, not_before, not_after, uploaded"
                " FROM prekeys ORDER BY not_before"
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
