"""What the hub acknowledged survives SIGKILL; the log verifies after restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from click.testing import CliRunner
from conftest import StoreTarget
from hubproc import HubProcess

from livcr_cli import main
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubRefused

ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER}
CASE = "case-buzc6j32zm73n7fu5xzvdmaf7y"
TOTAL = 400
KILL_AFTER = 150


async def submit_until_killed(hub: HubProcess) -> tuple[set[bytes], int]:
    """Submit TOTAL envelopes, 8 at a time; SIGKILL the hub once KILL_AFTER were acknowledged."""
    acknowledged: set[bytes] = set()
    failed = 0
    envelopes = [
        hub.seal("caw", ["coord"], f'{{"n": {i}}}'.encode(), "aanmelding", CASE)
        for i in range(TOTAL)
    ]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for envelope in envelopes:
        queue.put_nowait(envelope)
    timeout = aiohttp.ClientTimeout(total=5)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        client = hub.client("caw", session)
        while not queue.empty():
            envelope = queue.get_nowait()
            try:
                receipt = await client.submit(envelope)
            except (TimeoutError, aiohttp.ClientError, HubRefused):
                failed += 1
                continue
            acknowledged.add(bytes.fromhex(receipt["message_id"]))
            if len(acknowledged) == KILL_AFTER:
                hub.kill()

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(8)))
    return acknowledged, failed


async def drain_inbox(hub: HubProcess) -> list[bytes]:
    async with aiohttp.ClientSession() as session:
        client = hub.client("coord", session)
        delivered: list[bytes] = []
        after = 0
        while True:
            page = await client.inbox(after=after, limit=100)
            if not page["deliveries"]:
                return delivered
            delivered += [bytes.fromhex(e["message_id"]) for e in page["deliveries"]]
            after = page["next_after"]


def test_acknowledged_envelopes_survive_sigkill(tmp_path: Path, store_target: StoreTarget) -> None:
    hub = HubProcess.create(tmp_path / "cell", ROLES, dsn=store_target.dsn)
    hub.start()
    try:
        acknowledged, failed = asyncio.run(submit_until_killed(hub))
        assert len(acknowledged) >= KILL_AFTER
        assert failed > 0, "the kill should have interrupted submissions in flight"
        hub.start()
        delivered = asyncio.run(drain_inbox(hub))
    finally:
        hub.stop()
    assert acknowledged <= set(delivered), "an acknowledged envelope was lost"
    assert len(delivered) == len(set(delivered)), "an envelope is queued twice"
    result = CliRunner().invoke(main, ["hub", "log", "verify", "--config", str(hub.config_path)])
    assert result.exit_code == 0, result.output
    assert "log verified" in result.output


def test_restart_keeps_the_log_and_its_checkpoints_consistent(
    tmp_path: Path, store_target: StoreTarget
) -> None:
    hub = HubProcess.create(tmp_path / "cell", ROLES, dsn=store_target.dsn)
    hub.start()
    try:

        async def one() -> bytes:
            async with aiohttp.ClientSession() as session:
                client = hub.client("caw", session)
                await client.submit(hub.seal("caw", ["coord"], b"{}", "aanmelding", CASE))
                return await client.checkpoint()

        before = asyncio.run(one())
        hub.kill()
        hub.start()  # returns once /readyz answers 200
        after = asyncio.run(one())
    finally:
        hub.stop()
    old_size, new_size = int(before.split(b"\n")[1]), int(after.split(b"\n")[1])
    assert new_size > old_size
