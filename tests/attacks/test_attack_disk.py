"""Finding: unauthenticated disk exhaustion. A large submission is streamed to storage and its
signature checked only once it is in, so what such submissions hold on disk at once comes out
of one budget (``streamed_body_budget_bytes``), reserved before a byte is read: past it the hub
answers 503 ``busy`` at once and reads nothing; the budget comes back when they end."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import attack_process
import pytest
from flood import forged_headers, request_head
from hubproc import HubProcess

from livcr_exchange.cases import mint_case_ref

LARGEST = 4 * 1024 * 1024  # max_request_bytes of the hub under attack
BUDGET = 2 * LARGEST  # room for two of the largest submissions at once
FIRST_BYTES = 64 * 1024  # what a holding sender sends, then nothing more


@pytest.fixture(name="thrifty_hub")
def thrifty_hub_fixture(store_kind: str, tmp_path: Path) -> Iterator[HubProcess]:
    extra = f"max_request_bytes = {LARGEST}\nstreamed_body_budget_bytes = {BUDGET}"
    with attack_process.hub_process(store_kind, tmp_path, extra) as hub:
        yield hub


def envelope(hub: HubProcess, size: int) -> bytes:
    """A well-formed envelope of caw's of about ``size`` bytes: its frame and header pass the
    checks made as the first bytes arrive."""
    return hub.seal("caw", ["coord"], b"", "aanmelding", mint_case_ref(os.urandom), size)


async def start_upload(
    hub: HubProcess, data: bytes, sent: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Submit ``data`` in caw's name, signed by nobody (its headers pass the checks made
    before the body), sending only its first ``sent`` bytes."""
    headers = forged_headers(
        "caw", hub.members["caw"].identity.key_id, int(time.time()), os.urandom(16), hub.binding
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    writer.write(request_head("/v1/envelopes", len(data), headers) + data[:sent])
    await writer.drain()
    return reader, writer


async def answer(reader: asyncio.StreamReader) -> tuple[int, str]:
    """The status and problem code of the hub's answer."""
    async with asyncio.timeout(20):
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in {b"\r\n", b""}:
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await reader.readexactly(length)
    return status, json.loads(body).get("code", "") if body else ""


async def held_bytes(hub: HubProcess) -> int:
    """The hub's gauge of the streamed-body budget in use."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    (line,) = [x for x in text.splitlines() if x.startswith("livcr_hub_streamed_body_bytes ")]
    return int(float(line.split()[1]))


async def until_held(hub: HubProcess, expected: int) -> None:
    deadline = time.monotonic() + 20
    while (held := await held_bytes(hub)) != expected:
        assert time.monotonic() < deadline, f"the budget in use stayed at {held}, not {expected}"
        await asyncio.sleep(0.05)


async def test_unauthenticated_uploads_take_no_more_disk_than_the_budget(
    thrifty_hub: HubProcess,
) -> None:
    largest = envelope(thrifty_hub, LARGEST - 64 * 1024)
    holders = [await start_upload(thrifty_hub, largest, FIRST_BYTES) for _ in range(2)]
    await until_held(thrifty_hub, 2 * len(largest))

    # One more, even a smaller one, is refused before the hub reads a byte of it.
    smaller = envelope(thrifty_hub, BUDGET - 2 * len(largest) + 1024 * 1024)
    reader, writer = await start_upload(thrifty_hub, smaller, FIRST_BYTES)
    assert await answer(reader) == (503, "busy")
    writer.close()

    # The holders go away: their reservations come back, and the next submission is read to
    # its end, then refused for what it is (signed by nobody).
    for _, holder in holders:
        holder.transport.abort()
    await until_held(thrifty_hub, 0)
    reader, writer = await start_upload(thrifty_hub, smaller, len(smaller))
    assert await answer(reader) == (401, "bad_signature")
    writer.close()
