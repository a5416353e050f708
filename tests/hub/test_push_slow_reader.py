"""A gateway that stops reading its push stream holds up no sender, and loses nothing.

Push frames are notices of a few hundred bytes whatever the envelope's size, so the socket
buffers take many; once they and its queue at the hub are full, the hub drops the stream.
Every sender gets its receipt meanwhile without waiting, and every envelope stays in the slow
gateway's inbox to fetch.
"""

from __future__ import annotations

import time
from pathlib import Path

import hub_harness
from aiohttp import WSCloseCode, WSMsgType
from conftest import StoreTarget
from hub_harness import Clock, HubHarness, make_config, running_hub

from hub.state import CLOSE_TOO_SLOW, PUSH_QUEUE_LIMIT
from livcr_exchange.hub_answers import DeliveryFrame

# The fixture `clock` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture

CASE = "case-wv7gdev4lizkci45jsqwalzota"
BIG_BODY = b"x" * (1024 * 1024)  # 1.4 MB envelopes: their notices are as small as any
ENVELOPES = 24


async def test_a_stalled_stream_holds_up_no_sender_and_gets_notices(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> None:
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

    # Nothing is lost: caw's inbox holds every envelope until it acknowledges them.
    pending = (await harness.snapshot()).pending["caw"]
    assert sorted(pending) == sorted(r["message_id"] for r in receipts)
    # caw reads again: a notice of each, however large the envelope.
    for receipt in receipts:
        notice = await stalled.receive_json(timeout=10)
        assert (notice["type"], notice["message_id"]) == ("delivery", receipt["message_id"])
        assert len(str(notice)) < 400
    await stalled.close()


async def test_a_stream_whose_queue_overflows_is_dropped_and_told_why(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> None:
    """Notices arriving faster than a socket takes them fill its queue at the hub; one more
    and the hub forgets the stream and closes it with code 1013 and what to do next."""
    async with running_hub(tmp_path, clock, target=store_target) as harness:
        stalled = await harness.client("caw").stream()
        assert await stalled.receive_json(timeout=5) == {"type": "caught_up"}
        notice = DeliveryFrame(
            seq=1, message_id="ab" * 16, logged_at=clock.now, leaf_index=None, size=1
        )
        # All in one go: the stream's sending task gets no turn to empty the queue meanwhile.
        for _ in range(PUSH_QUEUE_LIMIT + 1):
            harness.hub.push.push("caw", notice)
        assert not harness.hub.push.online("caw")
        while (message := await stalled.receive(timeout=10)).type is WSMsgType.TEXT:
            pass  # whatever was written before the drop
        assert message.type is WSMsgType.CLOSE
        assert (message.data, message.extra) == (
            WSCloseCode.TRY_AGAIN_LATER,
            CLOSE_TOO_SLOW.decode(),
        )
