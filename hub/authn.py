"""Who sent a request: the header pre-check, then the signature over the body (spec §11.1)."""

from __future__ import annotations

from aiohttp import web

from livcr_exchange.errors import UnknownSender
from livcr_exchange.replay import ReplayCache
from livcr_exchange.request_auth import (
    AuthenticatedRequest,
    RequestTarget,
    check_request_headers,
    verify_request,
)

from .state import Hub


async def check_headers(hub: Hub, request: web.Request) -> None:
    """The header pre-check, with one more look at the store for a key the directory does not
    know (its participant may have been enrolled a moment ago)."""
    now = hub.clock()
    try:
        check_request_headers(request.headers, await hub.current_directory(), now=now)
    except UnknownSender:
        check_request_headers(request.headers, await hub.directory_after_miss(), now=now)


async def verify_caller(
    hub: Hub, request: web.Request, body: bytes, *, digest: str | None = None
) -> AuthenticatedRequest:
    """The request's signed author; ``digest`` is the Content-Digest of a body the handler
    streamed (``body`` is then empty).

    Raises:
        LivcrError: the signature does not hold (see ``verify_request``).
    """
    # Path and query exactly as sent (spec §11.1): the decoded forms are ambiguous ("a=1%26b=2"
    # and "a=1&b=2" decode alike) and are not what a client that percent-encodes has signed.
    target = RequestTarget(
        request.method, request.raw_path.partition("?")[0], request.rel_url.raw_query_string, body
    )
    now = hub.clock()
    nonces = SharedNonces(hub.nonces)
    origin = hub.log.origin
    try:
        caller = verify_request(
            target,
            request.headers,
            await hub.current_directory(),
            origin=origin,
            now=now,
            nonces=nonces,
            digest=digest,
        )
    except UnknownSender:  # enrolled since the last read? (the nonce is taken only after this)
        directory = await hub.directory_after_miss()
        caller = verify_request(
            target,
            request.headers,
            directory,
            origin=origin,
            now=now,
            nonces=nonces,
            digest=digest,
        )
    if nonces.claimed is not None:  # other hub processes on the store must refuse it too
        await hub.store.claim_nonce(*nonces.claimed, now)
    return caller


class SharedNonces(ReplayCache):
    """This process's replay cache, noting the nonce a request used so that the store can
    claim it for every hub process sharing the store (a no-op on a one-process store)."""

    def __init__(self, local: ReplayCache) -> None:
        super().__init__(capacity=0)
        self._local = local
        self.claimed: tuple[str, bytes, int] | None = None

    def check_and_remember(
        self, sender_id: str, message_id: bytes, expires_at: int, now: int
    ) -> None:
        self._local.check_and_remember(sender_id, message_id, expires_at, now)
        self.claimed = (sender_id, message_id, expires_at)
