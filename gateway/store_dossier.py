"""The dossier's rows (what was sent and received, bodies sealed) and the quarantine."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .store_base import StoreBase
from .store_documents import DocumentRow, insert_documents
from .store_outbox import DOSSIER_INSERT, DossierValues


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


@dataclass(frozen=True)
class QuarantineRow:
    """An envelope that failed a check: kept as it came (sealed), with the check's code."""

    seq: int
    message_id: bytes
    code: str
    at: int
    envelope: bytes | None  # None: kept in a file, erased, or recorded before envelopes were kept
    file: str | None = None  # its file in the quarantine folder, when too large for the row
    erased_at: int | None = None  # when its case was erased (and the envelope with it)

    @property
    def kept(self) -> bool:
        """Whether the envelope is still kept, in its row or its file."""
        return self.erased_at is None and (self.envelope is not None or self.file is not None)


@dataclass(frozen=True)
class Quarantined:
    """What the gateway keeps of an envelope that failed a check: the envelope in the row when
    it is small, else the name of its file in the quarantine folder; its case when its header
    could be read (an envelope whose case is unknown cannot be erased with a case)."""

    message_id: bytes
    code: str
    case_ref: str | None
    envelope: bytes | None
    file: str | None


COLUMNS = (
    "seq, message_id, direction, case_ref, purpose, sender_id, recipients, meeting_ref, logged_at,"
    " leaf_index, sealed, consumed, deleted_at"
)


NOT_FAILED = (
    "NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.message_id = dossier.message_id"
    " AND dossier.direction = 'sent' AND outbox.state IN ('failed', 'discarded'))"
)


def _row(r: Any) -> DossierRow:
    sealed = None if r[10] is None else bytes(r[10])
    seq, message_id, direction, case_ref, purpose, sender, recipients, meeting, logged, leaf = r[
        :10
    ]
    return DossierRow(
        seq,
        bytes(message_id),
        direction,
        case_ref,
        purpose,
        sender,
        recipients,
        meeting,
        logged,
        leaf,
        sealed,
        bool(r[11]),
        r[12],
    )


class DossierRows(StoreBase):
    async def store_received(
        self, dossier: DossierValues, documents: Sequence[DocumentRow] = ()
    ) -> bool:
        """Insert a received message, and its documents' rows, once per verified (sender,
        message id); False if it was already there (a redelivery)."""

        def run(c: sqlite3.Connection) -> bool:
            cursor = c.execute(DOSSIER_INSERT.replace("INSERT", "INSERT OR IGNORE", 1), dossier)
            if cursor.rowcount != 1 or cursor.lastrowid is None:
                return False
            insert_documents(c, cursor.lastrowid, documents)
            return True

        return await self.run(run)

    async def has_received(self, sender_id: str, message_id: bytes) -> bool:
        row = await self.run(
            lambda c: c.execute(
                "SELECT 1 FROM dossier WHERE sender_id = ? AND message_id = ?"
                " AND direction = 'received'",
                (sender_id, message_id),
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
        # A message refused for good keeps its copy for a retry, but was never sent: the
        # outbox shows it, the dossier does not.
        clauses, params = [NOT_FAILED], []
        if case_ref is not None:
            clauses.append("case_ref = ?")
            params.append(case_ref)
        if purpose is not None:
            clauses.append("purpose = ?")
            params.append(purpose)
        if unconsumed:
            clauses.append("consumed = 0 AND direction = 'received' AND sealed IS NOT NULL")
        sql = f"SELECT {COLUMNS} FROM dossier WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?"
        rows = await self.run(lambda c: c.execute(sql, (*params, limit)).fetchall())
        return [_row(r) for r in rows]

    async def received_after(self, after: int, limit: int) -> list[DossierRow]:
        """Received rows with ``seq`` above ``after``, oldest first; marks them consumed."""

        def run(c: sqlite3.Connection) -> list[Any]:
            rows = c.execute(
                f"SELECT {COLUMNS} FROM dossier WHERE direction = 'received' AND seq > ?"
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

        return [_row(r) for r in await self.run(run)]

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

    async def quarantine(self, kept: Quarantined, now: int) -> None:
        """Keep an envelope that failed a check, sealed as it came, with the check's code."""
        await self.run(
            lambda c: c.execute(
                "INSERT INTO quarantine (message_id, code, at, envelope, case_ref, file)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (kept.message_id, kept.code, now, kept.envelope, kept.case_ref, kept.file),
            )
        )

    async def erase_quarantined(self, case_ref: str, now: int) -> list[str]:
        """Drop the envelopes quarantined for a case (their code and time stay as evidence);
        the names of the quarantine files that held any, for the caller to delete (every one
        of the case's, so that erasing again finishes what a crash interrupted)."""

        def run(c: sqlite3.Connection) -> list[str]:
            c.execute(
                "UPDATE quarantine SET envelope = NULL, erased_at = ?"
                " WHERE case_ref = ? AND erased_at IS NULL",
                (now, case_ref),
            )
            rows = c.execute(
                "SELECT file FROM quarantine WHERE case_ref = ? AND file IS NOT NULL", (case_ref,)
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self.run(run)

    async def quarantined(self, limit: int = 1000) -> list[QuarantineRow]:
        rows = await self.run(
            lambda c: c.execute(
                "SELECT seq, message_id, code, at, envelope, file, erased_at FROM quarantine"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [
            QuarantineRow(s, bytes(m), c, a, None if e is None else bytes(e), f, x)
            for s, m, c, a, e, f, x in rows
        ]
