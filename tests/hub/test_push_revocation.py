"""A revoked participant's push stream: closed once the revocation reaches the hub's directory,
and nothing pushed to it afterwards, however the revocation arrives (an operator command in
another process, a revocation dated to take effect later)."""

from __future__ import annotations

import asyncio

import aiohttp
import hub_harness
import pytest
from aiohttp import WSCloseCode, WSMsgType
from hub_harness import HubHarness

from hub import operator
from livcr_exchange.envelope import UnverifiedEnvelope

# The fixtures `clock` and `harness` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture

CASE = "case-hgonjxzk2ljwce6jqnfaz4bg6q"


async def connected(harness: HubHarness, participant_id: str) -> aiohttp.ClientWebSocketResponse:
    socket = await harness.client(participant_id).stream()
    assert await socket.receive_json(timeout=5) == {"type": "caught_up"}
    return socket


async def assert_closed_for_policy(socket: aiohttp.ClientWebSocketResponse) -> None:
    """The hub closes the stream itself, with 1008 (policy violation), and sends nothing first."""
    message = await socket.receive(timeout=5)
    assert message.type == WSMsgType.CLOSE, message
    assert message.data == WSCloseCode.POLICY_VIOLATION
    await socket.close()


async def assert_registry_drops(harness: HubHarness, participant_id: str) -> None:
    for _ in range(100):
        if not harness.hub.push.sockets.get(participant_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the hub still pushes to {participant_id}")


async def test_revocation_closes_the_stream_and_nothing_more_is_pushed(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "clb"])
    caw, clb = await connected(harness, "caw"), await connected(harness, "clb")
    coord = harness.client("coord")
    before = harness.seal("coord", ["caw", "clb"], case_ref=CASE)
    await coord.submit(before)
    for socket in (caw, clb):
        pushed = await socket.receive_json(timeout=5)
        assert pushed["message_id"] == UnverifiedEnvelope.parse(before).message_id.hex()

    await harness.revoke("caw", harness.clock())

    await assert_closed_for_policy(caw)
    await assert_registry_drops(harness, "caw")
    # The cell goes on without caw: what is sent now reaches clb only.
    after = harness.seal("coord", ["clb"], case_ref=CASE)
    receipt = await coord.submit(after)
    assert (await clb.receive_json(timeout=5))["message_id"] == receipt["message_id"]
    # caw cannot open a new stream either.
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await harness.client("caw").stream()
    assert refused.value.status == 403  # key_revoked
    await clb.close()


async def test_a_revocation_written_by_the_operator_closes_the_stream(harness: HubHarness) -> None:
    """`livcr hub revoke` writes to the store from its own process; no request follows."""
    socket = await connected(harness, "caw")
    other = await connected(harness, "clb")
    await operator.revoke(
        harness.store, harness.config, harness.cell.root, "caw", reason="left", at=harness.clock()
    )
    await assert_closed_for_policy(socket)
    await assert_registry_drops(harness, "caw")
    assert len(harness.hub.push.sockets["clb"]) == 1  # the others' streams stay open
    assert not other.closed
    await other.close()


async def test_a_revocation_dated_later_closes_the_stream_when_its_time_comes(
    harness: HubHarness,
) -> None:
    socket = await connected(harness, "caw")
    await harness.revoke("caw", harness.clock() + 60)
    with pytest.raises(asyncio.TimeoutError):  # still a participant for a minute
        await socket.receive(timeout=1.5)
    assert harness.hub.push.sockets.get("caw")
    harness.clock.advance(60)
    await assert_closed_for_policy(socket)
    await assert_registry_drops(harness, "caw")
