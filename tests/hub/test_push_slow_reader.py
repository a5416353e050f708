"""A gateway that stops reading its push stream holds up no sender, and loses nothing.

Its frames fill the loopback socket buffers, then its queue at the hub; then the hub drops the
stream. Every sender got its receipt meanwhile without waiting, and every envelope is still in
the slow gateway's inbox to fetch.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import hub_harness
import pytest
from aiohttp import WSCloseCode, WSMsgType
from conftest import StoreTarget
from hub_harness import Clock, HubHarness, make_config, running_hub

import hub.state

# The fixture `clock` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture

CASE = "case-wv7gdev4lizkci45jsqwalzota"
BIG_BODY = b"x" * (1024 * 1024)  # frames of 1.4 MB: the socket buffers fill in a few
ENVELOPES = 24


async def test_a_stalled_stream_is_dropped_and_senders_never_wait(
    tmp_path: Path, clock: Clock, store_target: StoreTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.state, "PUSH_QUEUE_LIMIT", 2)
    config = make_config(tmp_path, store_target, max_request_bytes=4 * len(BIG_BODY))
    async with running_hub(tmp_path, clock, config, store_target) as harness:
        await stall_and_flood(harness)


async def stall_and_flood(harness: HubHarness) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    stalled = await harness.client("caw").stream()
    assert await stalled.receive_json(timeout=5) == {"type": "caught_up"}
    # From here on caw reads nothing.
    coord = harness.client("coord")
    envelopes = [harness.seal("coord", ["caw"], BIG_BODY, case_ref=CASE) for _ in range(ENVELOPES)]
    slowest = 0.0
    receipts = []
    for envelope in envelopes:
        started = time.monotonic()
        receipts.append(await coord.submit(envelope))
        slowest = max(slowest, time.monotonic() - started)
    assert len(receipts) == ENVELOPES
    assert slowest < 5, f"a submission waited {slowest:.1f} s for the stalled stream"

    for _ in range(200):
        if not harness.hub.push.sockets.get("caw"):
            break
        await asyncio.sleep(0.01)
    assert not harness.hub.push.sockets.get("caw"), "the stalled stream is still served"
    # Nothing is lost: caw's inbox holds every envelope until it acknowledges them.
    pending = (await harness.snapshot()).pending["caw"]
    assert sorted(pending) == sorted(r["message_id"] for r in receipts)

    # caw reads again: what was pushed, then the close that says why.
    closing = None
    while closing is None:
        message = await stalled.receive(timeout=10)
        if message.type == WSMsgType.CLOSE:
            closing = message
    assert closing.data == WSCloseCode.TRY_AGAIN_LATER
    await stalled.close()
