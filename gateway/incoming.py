"""Receiving documents: an envelope opened from a re-readable source off the event loop, body
first, so the body is judged before any document byte is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from livcr_exchange.documents import OpenedDocuments, open_documents
from livcr_exchange.envelope.open import Source
from livcr_exchange.errors import UnknownSender

from .context import Context
from .prekeys import OwnPrekeys


async def open_delivered(
    ctx: Context,
    prekeys: OwnPrekeys,
    refresh: Callable[[], Awaitable[None]],
    source: Source,
    logged_at: int,
) -> OpenedDocuments:
    """Verify and open an envelope and check its body (``open_documents``); the documents
    are read later, through ``OpenedDocuments.attachments``. An unknown sender first refreshes
    the directory once: it may have enrolled since.

    Raises:
        LivcrError: as ``open_documents``.
    """

    def attempt() -> OpenedDocuments:
        return open_documents(
            source,
            recipient_id=ctx.participant_id,
            prekeys=prekeys.secrets,
            directory=ctx.directory,
            now=ctx.clock(),
            judged_at=logged_at,
        )

    try:
        return await asyncio.to_thread(attempt)
    except UnknownSender:
        await refresh()
        return await asyncio.to_thread(attempt)
