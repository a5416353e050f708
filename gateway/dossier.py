"""The dossier: what this service sent and received, its subject-access export, its erasure."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import structlog

from livcr_exchange.purposes import attachments_of, decode_body

from .context import Context, Message, body_aad
from .docfiles import DocumentFiles
from .spool import erase_quarantine_files
from .store import DossierRow
from .trust import TrustFailure

log = structlog.get_logger("livcr.gateway.dossier")
Record = dict[str, object]
# Queue a message without waiting (the outbox's ``send(..., wait=False)``).
SendLater = Callable[[str, str, list[str], dict[str, object]], Awaitable[object]]


def _attachments(purpose: str, raw: bytes | None) -> list[dict[str, object]]:
    """The documents a body names, numbered as downloads number them (none once erased)."""
    if raw is None:
        return []
    refs = attachments_of(decode_body(purpose, raw))
    return [{"n": n, **msgspec.to_builtins(ref)} for n, ref in enumerate(refs)]


class Dossier:
    """Reading, exporting and erasing the dossier."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _body(self, row: DossierRow) -> bytes | None:
        if row.sealed is None:
            return None
        aad = body_aad(row.message_id, row.direction, row.case_ref, row.purpose)
        return self._ctx.box.open(aad, row.sealed)

    def record(self, row: DossierRow) -> Record:
        raw = self._body(row)
        return {
            "seq": row.seq,
            "message_id": row.message_id.hex(),
            "direction": row.direction,
            "case_ref": row.case_ref,
            "purpose": row.purpose,
            "sender": row.sender_id,
            "recipients": row.recipients.split(","),
            "meeting_ref": row.meeting_ref,
            "logged_at": row.logged_at,
            "leaf_index": row.leaf_index,
            "witnessed": self._ctx.witnesses.is_witnessed(row.leaf_index),
            "body": None if raw is None else json.loads(raw),
            "attachments": _attachments(row.purpose, raw),
            "deleted_at": row.deleted_at,
        }

    def message(self, row: DossierRow) -> Message:
        raw = self._body(row)
        assert raw is not None  # noqa: S101  (unconsumed rows are never erased ones)
        return Message(
            row.message_id,
            row.case_ref,
            row.purpose,
            row.sender_id,
            tuple(row.recipients.split(",")),
            row.meeting_ref,
            row.logged_at or 0,
            decode_body(row.purpose, raw),
            raw,
        )

    async def records(
        self, *, case_ref: str | None = None, purpose: str | None = None
    ) -> list[Record]:
        """What this service sent and received, searchable by case reference and purpose."""
        rows = await self._ctx.store.dossier(case_ref=case_ref, purpose=purpose)
        return [self.record(r) for r in rows]

    async def received(self, *, after: int = 0, limit: int = 100) -> list[Record]:
        """Received messages with a dossier ``seq`` above ``after``, oldest first (a cursor);
        they count as handed over from then on."""
        return [self.record(r) for r in await self._ctx.store.received_after(after, limit)]

    async def messages(self, arrived: asyncio.Event, *, follow: bool) -> AsyncIterator[Message]:
        """Every received message, once, in arrival order; with ``follow``, then waits on
        ``arrived`` for more, else ends."""
        while True:
            arrived.clear()
            rows = await self._ctx.store.dossier(unconsumed=True, limit=100)
            for row in rows:
                files = DocumentFiles(self._ctx)
                documents = await self._ctx.store.documents_of(row.seq)
                attached = tuple(files.document(d) for d in documents)
                yield dataclasses.replace(self.message(row), attachments=attached)
                await self._ctx.store.mark_consumed(row.seq)
            if not rows:
                if not follow:
                    return
                await arrived.wait()

    async def export(self, case_ref: str) -> Record:
        """Subject-access export: everything sent and received about one case, with the log
        evidence (leaf index, inclusion proof, signed checkpoint) of when and to whom.

        Raises:
            TrustFailure: the hub's checkpoint contradicts one seen before (the gateway halts).
            HubRefused, aiohttp.ClientError: the hub did not answer.
        """
        ctx = self._ctx
        note = await ctx.client.checkpoint()
        try:
            checkpoint = await ctx.trust.observe(note)
        except TrustFailure as exc:
            ctx.halt(str(exc))
            raise
        records = await self.records(case_ref=case_ref)
        for record in records:
            index = record["leaf_index"]
            if isinstance(index, int) and 0 <= index < checkpoint.size:
                proof = await ctx.client.inclusion(index, checkpoint.size)
                record["inclusion_proof"] = [base64.b64encode(h).decode() for h in proof]
        return {
            "case_ref": case_ref,
            "participant": ctx.participant_id,
            "checkpoint": note.decode("utf-8"),
            "records": records,
        }

    async def erase_case(self, case_ref: str) -> list[bytes]:
        """Delete this service's content about a case, documents included (metadata stays as
        evidence)."""
        erased = await self._ctx.store.erase_case(case_ref, self._ctx.clock())
        await self._erase_around_the_dossier(case_ref)
        return erased

    async def _erase_around_the_dossier(self, case_ref: str) -> None:
        """The case's documents, and the envelopes of it that were quarantined."""
        ctx = self._ctx
        await DocumentFiles(ctx).drop_erased()
        files = await ctx.store.erase_quarantined(case_ref, ctx.clock())
        database = ctx.config.path(ctx.config.gateway.database)
        await asyncio.to_thread(erase_quarantine_files, database, files)

    async def confirm_deletion(
        self, case_ref: str, coordinator: str, request: bytes, send_later: SendLater
    ) -> None:
        """Erase the case and attest it; the deletion request itself (a reason and a deadline,
        nothing about the person) stays readable, so the service's software learns of it."""
        ctx = self._ctx
        erased = await ctx.store.erase_case(case_ref, ctx.clock(), keep=request)
        await self._erase_around_the_dossier(case_ref)
        body: dict[str, object] = {
            "purpose": "wissingsbevestiging",
            "legal_ground": ["decreet_2021"],
            "deleted_at": ctx.clock(),
            "scope": "all case data in this service's dossier",
            "message_ids": sorted(m.hex() for m in erased),
        }
        await send_later(case_ref, "wissingsbevestiging", [coordinator], body)
