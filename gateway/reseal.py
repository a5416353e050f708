"""Sealing a queued message again after the hub refused it for time (spec §9.3): the same
message id and expiry, a fresh timestamp, fresh content key and nonce, the recipients' current
prekeys. A message with documents is sealed again from its sealed files into a new spool file,
in constant memory, as it was first.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from livcr_exchange.constants import CONTENT_KEY_BYTES, PAYLOAD_NONCE_PREFIX_BYTES
from livcr_exchange.envelope import HeaderCore, MessageSpec, SealParts, seal_from_parts
from livcr_exchange.envelope.open import UnverifiedEnvelope
from livcr_exchange.sending import needs_reseal

from .context import Context, body_aad
from .docfiles import DocumentFiles
from .outgoing import seal_documents
from .prekeys import PeerPrekeys
from .spool import header_core_of
from .store import OutboxRow
from .submission import Draft


async def reseal(
    ctx: Context, peers: PeerPrekeys, check: Callable[[Draft], None], row: OutboxRow
) -> OutboxRow:
    """The row's message sealed again, stored before it is sent; the same row when its
    timestamp is near the clock, it expired, or its content was erased meanwhile.

    Raises:
        PurposeNotAllowed, RecipientNotAllowed, KeyNotValid, ...: refused before sealing.
        aiohttp.ClientError, TimeoutError, OSError, HubRefused: the hub did not answer.
    """
    now = ctx.clock()
    core = await _core_of(ctx, row)
    sealed = await ctx.store.sent_body(row.message_id)
    if not needs_reseal(core.timestamp, core.expires_at, now) or sealed is None:
        return row
    raw = ctx.box.open(body_aad(row.message_id, "sent", row.case_ref, row.purpose), sealed)
    documents = () if row.envelope_file is None else await ctx.store.sent_documents(row.message_id)
    recipients = list(core.recipient_ids())
    draft = Draft(
        core.case_ref, core.purpose, recipients, raw, core.meeting_ref, [], documents=documents
    )
    check(draft)
    prekeys = await peers.current(ctx.directory, recipients, now, hub_away_ok=False)
    spec = MessageSpec(
        core.cell_id,
        core.sender_id,
        core.purpose,
        core.case_ref,
        prekeys,
        core.suite,
        core.cosign,
        core.meeting_ref,
    )
    parts = SealParts(
        core.message_id,
        now,
        core.expires_at,
        ctx.random(CONTENT_KEY_BYTES),
        ctx.random(PAYLOAD_NONCE_PREFIX_BYTES),
    )
    ctx.log.info("envelope sealed again", off_by_seconds=now - core.timestamp)
    if row.envelope_file is None:
        envelope = seal_from_parts(ctx.identity, spec, parts, raw)[1]
        await ctx.store.replace_envelope(row.message_id, envelope)
        return dataclasses.replace(row, envelope=envelope)
    spool = await seal_documents(ctx, spec, draft, parts)
    await ctx.store.replace_envelope_file(row.message_id, spool)
    DocumentFiles(ctx).remove_now([row.envelope_file])
    return dataclasses.replace(row, envelope_file=spool)


async def _core_of(ctx: Context, row: OutboxRow) -> HeaderCore:
    """The header core of the row's envelope, from memory or its spool file's first bytes."""
    if row.envelope_file is None:
        return UnverifiedEnvelope.parse(row.envelope).header.core
    return await asyncio.to_thread(header_core_of, DocumentFiles(ctx).path(row.envelope_file))
