"""Long polls on ``GET /v1/messages``: the wait itself, its wake-up on shutdown, and how many
are waiting (a gauge that tells an operator, and a test, that a client is parked)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class LongPolls:
    waiting: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set: every poll returns


LONG_POLLS = web.AppKey("long_polls", LongPolls)


async def wait_for_arrival(app: web.Application, arrival: asyncio.Event, timeout: float) -> None:
    """Wait until ``arrival`` is set, the API shuts down, or ``timeout`` seconds pass."""
    polls = app[LONG_POLLS]
    polls.waiting += 1
    try:
        await first_of(arrival, polls.stopping, timeout)
    finally:
        polls.waiting -= 1


async def first_of(one: asyncio.Event, other: asyncio.Event, timeout: float) -> None:
    """Wait until either event is set, or ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in (one, other)]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def wake_long_polls(app: web.Application) -> None:
    app[LONG_POLLS].stopping.set()


def long_polls(app: web.Application) -> None:
    """Give ``app`` its long-poll state and wake every waiting poll when it shuts down."""
    app[LONG_POLLS] = LongPolls()
    app.on_shutdown.append(wake_long_polls)
