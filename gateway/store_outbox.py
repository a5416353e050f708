"""The outbox's rows: messages to submit, with their attempts, state and (once sent) receipt."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from livcr_exchange.sending import OutboxState

from .errors import UploadGone
from .store_base import StoreBase
from .store_documents import DocumentRow

PENDING, SENT, FAILED, DISCARDED = (
    OutboxState.PENDING.value,
    OutboxState.SENT.value,
    OutboxState.FAILED.value,
    OutboxState.DISCARDED.value,
)


@dataclass(frozen=True)
class OutboxRow:
    message_id: bytes
    case_ref: str
    purpose: str
    envelope: bytes
    state: OutboxState
    attempts: int  # submissions begun
    receipt: str | None
    last_error: str | None
    detail: str | None = None  # the hub's reason, for a failed message
    # A message with documents: its envelope's spool file (``docfiles``), ``envelope`` empty.
    envelope_file: str | None = None

    @classmethod
    def of(cls, row: Any) -> OutboxRow:
        mid, case_ref, purpose, envelope, state, attempts, receipt, error, detail, spool = row
        return cls(
            bytes(mid),
            str(case_ref),
            str(purpose),
            bytes(envelope),
            OutboxState(state),
            int(attempts),
            None if receipt is None else str(receipt),
            None if error is None else str(error),
            None if detail is None else str(detail),
            None if spool is None else str(spool),
        )


COLUMNS = (
    "message_id, case_ref, purpose, envelope, state, attempts, receipt, last_error, failed_detail,"
    " envelope_file"
)
DOSSIER_INSERT = (
    "INSERT INTO dossier (message_id, direction, case_ref, purpose, sender_id, recipients,"
    " meeting_ref, logged_at, leaf_index, sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
DossierValues = tuple[bytes, str, str, str, str, str, str | None, int | None, int | None, bytes]


class OutboxRows(StoreBase):
    async def enqueue(
        self,
        row: OutboxRow,
        dossier: DossierValues,
        now: int,
        idempotency: tuple[str, bytes] | None = None,
        documents: Sequence[DocumentRow] = (),
    ) -> None:
        """Outbox row, the sender's dossier copy and the request's idempotency key, at once;
        the uploads ``documents`` (in order) become that copy's documents."""

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO outbox (message_id, case_ref, purpose, envelope, state, created_at,"
                " envelope_file) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.message_id,
                    row.case_ref,
                    row.purpose,
                    row.envelope,
                    PENDING,
                    now,
                    row.envelope_file,
                ),
            )
            seq = c.execute(DOSSIER_INSERT, dossier).lastrowid
            for n, file_id in enumerate(d.file_id for d in documents):
                taken = c.execute(
                    "UPDATE documents SET dossier_seq = ?, n = ? WHERE file_id = ?"
                    " AND dossier_seq IS NULL",
                    (seq, n, file_id),
                ).rowcount
                if taken != 1:
                    raise UploadGone(file_id)
            if idempotency is not None:
                c.execute(
                    "INSERT INTO idempotency (key, request_hash, message_id, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (*idempotency, row.message_id, now),
                )

        await self.run(run)

    async def idempotent(self, key: str) -> tuple[bytes, bytes] | None:
        """(request hash, message id) of the send made under ``key``, if any."""
        row = await self.run(
            lambda c: c.execute(
                "SELECT request_hash, message_id FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
        )
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    async def due(self, now: float, limit: int = 20) -> list[OutboxRow]:
        rows = await self.run(
            lambda c: c.execute(
                f"SELECT {COLUMNS} FROM outbox WHERE state = ? AND next_attempt_at <= ?"
                " ORDER BY created_at LIMIT ?",
                (PENDING, now, limit),
            ).fetchall()
        )
        return [OutboxRow.of(r) for r in rows]

    async def next_due(self) -> float | None:
        row = await self.run(
            lambda c: c.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = ?", (PENDING,)
            ).fetchone()
        )
        return None if row[0] is None else float(row[0])

    async def outbox_row(self, message_id: bytes) -> OutboxRow | None:
        row = await self.run(
            lambda c: c.execute(
                f"SELECT {COLUMNS} FROM outbox WHERE message_id = ?", (message_id,)
            ).fetchone()
        )
        return None if row is None else OutboxRow.of(row)

    async def outbox(self, states: tuple[OutboxState, ...], limit: int = 1000) -> list[OutboxRow]:
        marks = ",".join("?" * len(states))
        rows = await self.run(
            lambda c: c.execute(
                f"SELECT {COLUMNS} FROM outbox WHERE state IN ({marks})"
                " ORDER BY created_at LIMIT ?",
                (*(s.value for s in states), limit),
            ).fetchall()
        )
        return [OutboxRow.of(r) for r in rows]

    async def mark_sent(
        self, message_id: bytes, receipt: str | None, logged_at: int, leaf_index: int
    ) -> None:
        """The hub acknowledged the message with ``receipt`` (its JSON; None: the hub holds it
        but showed no receipt, and ``logged_at`` and ``leaf_index`` are -1, unknown)."""

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE outbox SET state = ?, receipt = ?, last_error = NULL WHERE message_id = ?",
                (SENT, receipt, message_id),
            )
            c.execute(
                "UPDATE dossier SET logged_at = ?, leaf_index = ? WHERE message_id = ?"
                " AND direction = 'sent'",
                (logged_at, leaf_index, message_id),
            )

        await self.run(run)

    async def mark_failed(self, message_id: bytes, code: str, detail: str) -> None:
        """Refused for good: kept, its dossier copy too, until an operator retries or
        discards it."""
        await self.run(
            lambda c: c.execute(
                "UPDATE outbox SET state = ?, last_error = ?, failed_detail = ?"
                " WHERE message_id = ? AND state = ?",
                (FAILED, code, detail, message_id, PENDING),
            )
        )

    async def retry_failed(self, message_id: bytes) -> bool:
        """A failed message back to pending, due now; False if it is not failed."""
        return await self.run(
            lambda c: (
                c.execute(
                    "UPDATE outbox SET state = ?, next_attempt_at = 0, failed_detail = NULL"
                    " WHERE message_id = ? AND state = ?",
                    (PENDING, message_id, FAILED),
                ).rowcount
                == 1
            )
        )

    async def discard(self, message_id: bytes) -> bool:
        """Give a failed message up: its envelope and dossier copy go, the row stays as the
        record; False if it is not failed."""

        def run(c: sqlite3.Connection) -> bool:
            changed = c.execute(
                "UPDATE outbox SET state = ?, envelope = x'' WHERE message_id = ? AND state = ?",
                (DISCARDED, message_id, FAILED),
            ).rowcount
            if changed:
                c.execute(
                    "DELETE FROM dossier WHERE message_id = ? AND direction = 'sent'",
                    (message_id,),
                )
            return changed == 1

        return await self.run(run)

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
                "UPDATE outbox SET envelope = ? WHERE message_id = ? AND state = ?",
                (envelope, message_id, PENDING),
            )
        )

    async def replace_envelope_file(self, message_id: bytes, name: str) -> None:
        """The message with documents sealed again into the spool file ``name``."""
        await self.run(
            lambda c: c.execute(
                "UPDATE outbox SET envelope_file = ? WHERE message_id = ? AND state = ?",
                (name, message_id, PENDING),
            )
        )

    async def retry_now(self) -> int:
        """Make every pending message due at once (the hub is back); return how many."""
        return await self.run(
            lambda c: (
                c.execute(
                    "UPDATE outbox SET next_attempt_at = 0 WHERE state = ? AND next_attempt_at > 0",
                    (PENDING,),
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
