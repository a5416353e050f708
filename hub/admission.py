"""What a request costs the hub before it is authenticated: caps, a memory budget, deadlines.

The signature covers the body's digest, so it can be checked only once the body is read. What
can be checked from the headers alone (their form, the participant, its key's validity) is
checked first, so an unauthenticated request gets its refusal before the hub reads any byte of
its body. A body is then read under three limits: its route's cap, the memory budget shared by
every body being read at once, and a deadline that grows with its declared length (a minimum
rate), so a slow sender cannot hold a connection open as long as it likes. A large envelope
submission is not read whole at all: it streams to storage under the same cap and deadline
(``streams``; hub/intake.py), and the memory budget is for bodies read whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from livcr_exchange.service.problems import Problem

from .config import BATCH_MAX_BYTES, INLINE_ENVELOPE_BYTES, HubSection

# The route whose bodies are single envelopes (up to ``max_request_bytes``); the batch route
# takes small envelopes only (BATCH_MAX_BYTES); every other route is capped at
# ``max_control_request_bytes``.
ENVELOPE_ROUTE = "/v1/envelopes"
BATCH_ROUTE = "/v1/envelopes/batch"
BODY = web.RequestKey("body", bytes)  # the request body, read by the hub's auth middleware
READ_CHUNK = 64 * 1024


@dataclass
class BodyBudget:
    """Bytes of request bodies held at once across every request of this process: in memory
    (bodies read whole), or in storage before their signature is checked (streamed ones)."""

    limit: int
    held: int = 0
    peak: int = 0

    def try_reserve(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        self.peak = max(self.peak, self.held)
        return True

    def release(self, size: int) -> None:
        self.held -= size


def body_of(request: web.Request) -> bytes:
    """The body of an authenticated request, as read (and counted) before its handler ran."""
    return request[BODY]


def body_cap(section: HubSection, path: str) -> int:
    """The largest body the route of ``path`` accepts."""
    if path == ENVELOPE_ROUTE:
        return section.max_request_bytes
    if path == BATCH_ROUTE:
        return min(BATCH_MAX_BYTES, section.max_request_bytes)
    return min(section.max_control_request_bytes, section.max_request_bytes)


def streams(request: web.Request) -> bool:
    """Whether the request is an envelope submission its handler streams (not read whole)."""
    if request.method != "POST" or request.path != ENVELOPE_ROUTE:
        return False
    length = request.content_length
    return length is None or length > INLINE_ENVELOPE_BYTES


def declared_length(request: web.Request, cap: int) -> int | None:
    """The body length the request declares (None: chunked, length unknown).

    Raises:
        Problem: ``oversized`` (413) when it declares more than ``cap``.
    """
    length = request.content_length
    if length is not None and length > cap:
        raise Problem("oversized", f"request body over {cap} bytes", 413)
    return length


def read_deadline(section: HubSection, size: int) -> float:
    """Seconds a body of ``size`` bytes may take to arrive: a grace, then the minimum rate."""
    return section.body_grace_seconds + size / section.body_min_rate_bytes


@contextlib.asynccontextmanager
async def held_body(
    request: web.Request, section: HubSection, budget: BodyBudget
) -> AsyncIterator[bytes]:
    """The body, read under its route's cap, the shared memory budget and a read deadline,
    and counted against the budget for as long as the block holds it.

    While it is read, the budget holds twice its length (the buffer, and its copy as bytes).
    A body that does not arrive in time, or runs over its cap, leaves the rest unread; the hub
    closes the connection after its answer (``lingering_time`` is 0).

    Raises:
        Problem: ``oversized`` (413) over the cap, ``busy`` (503) over the budget,
            ``body_timeout`` (408) when the body does not arrive in time.
    """
    cap = body_cap(section, request.path)
    length = declared_length(request, cap)
    if length == 0 or (length is None and not request.body_exists):
        yield b""
        return
    size = cap if length is None else length
    if not budget.try_reserve(2 * size):
        raise Problem("busy", "the hub is reading too many bodies; retry shortly", 503)
    held = 2 * size
    try:
        try:
            async with asyncio.timeout(read_deadline(section, size)):
                body = bytes(await _read_capped(request, cap))
        except TimeoutError as exc:
            raise Problem("body_timeout", "the request body did not arrive in time", 408) from exc
        budget.release(size)
        held = size
        yield body
    finally:
        budget.release(held)


async def _read_capped(request: web.Request, cap: int) -> bytearray:
    buffer = bytearray()
    while chunk := await request.content.readany():
        if len(buffer) + len(chunk) > cap:
            raise Problem("oversized", f"request body over {cap} bytes", 413)
        buffer += chunk
    return buffer
