"""A standalone witness killed with SIGKILL never cosigns anything inconsistent afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from witnessproc import SigningLog, WitnessProcess

from livcr_exchange.audit.checkpoint import open_checkpoint
from livcr_exchange.audit.cosignature import verify_cosignature_line
from livcr_exchange.audit.witness import parse_size


@pytest.fixture
def log() -> SigningLog:
    return SigningLog()


@pytest.fixture
def witness(tmp_path: Path, log: SigningLog) -> Iterator[WitnessProcess]:
    process = WitnessProcess.create(tmp_path / "witness", "dpo.example/witness", [log.log_key])
    process.start()
    yield process
    process.stop()


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, bytes]:
    async with session.post(f"{url}/add-checkpoint", data=body) as answer:
        return answer.status, await answer.read()


async def test_kill_9_then_only_consistent_extensions(
    witness: WitnessProcess, log: SigningLog
) -> None:
    log.grow(64)
    acknowledged = 0
    async with aiohttp.ClientSession() as session:
        for size in range(1, 41):
            status, body = await post(session, witness.url, log.request(acknowledged, size))
            assert status == 200, body
            line = verify_cosignature_line(
                log.note(size).split(b"\n\n")[0] + b"\n", body, witness.key
            )
            assert line.witness == witness.key.name
            acknowledged = size
        # Kill it while one more request is in flight: that one may or may not have landed.
        in_flight = asyncio.ensure_future(post(session, witness.url, log.request(40, 41)))
        await asyncio.sleep(0)  # one turn of the loop puts the request on the wire: no wait
        witness.kill()
        try:
            status, _ = await in_flight
        except aiohttp.ClientError:
            status = 0
        if status == 200:
            acknowledged = 41

    witness.start()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{witness.url}/{log.origin_hash}/checkpoint") as answer:
            assert answer.status == 200
            kept = open_checkpoint(await answer.read(), log.origin, log.key.public.raw)
        # Every answered cosignature survived; at most the one in flight was added.
        assert kept.size in {acknowledged, acknowledged + 1}
        assert (
            kept.root == open_checkpoint(log.note(kept.size), log.origin, log.key.public.raw).root
        )

        # A rollback: an old size below the witness's, or a smaller checkpoint.
        status, body = await post(session, witness.url, log.request(0, 30))
        assert (status, parse_size(body)) == (409, kept.size)
        status, _ = await post(session, witness.url, log.request(kept.size, 30))
        assert status == 400
        # A fork of the same size, and a forked extension.
        fork = log.fork(kept.size - 5, 10)
        status, _ = await post(session, witness.url, fork.request(kept.size, kept.size))
        assert status == 422
        status, _ = await post(session, witness.url, fork.request(kept.size - 5, kept.size + 5))
        assert status == 409
        forged = fork.request(kept.size, kept.size + 5)
        status, _ = await post(session, witness.url, forged)
        assert status == 422
        # The genuine extension is still cosigned.
        status, _ = await post(session, witness.url, log.request(kept.size, kept.size + 5))
        assert status == 200


async def test_refusals_carry_the_c2sp_status(witness: WitnessProcess, log: SigningLog) -> None:
    log.grow(8)
    stranger = SigningLog(origin="livcr-exchange/another-cell")
    stranger.grow(3)
    impostor = SigningLog(origin=log.origin)  # the right origin, another key
    impostor.grow(3)
    async with aiohttp.ClientSession() as session:
        assert (await post(session, witness.url, stranger.request(0, 3)))[0] == 404
        assert (await post(session, witness.url, impostor.request(0, 3)))[0] == 403
        assert (await post(session, witness.url, b"old 0\n"))[0] == 400
        assert (await post(session, witness.url, log.request(0, 8)))[0] == 200
        async with session.get(f"{witness.url}/{stranger.origin_hash}/checkpoint") as answer:
            assert answer.status == 404
