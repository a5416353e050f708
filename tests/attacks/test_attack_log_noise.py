"""Finding: log noise an attacker controls. Malformed HTTP and clients that go away make one
structured line each (status 400 or 499), rate-limited; no traceback reaches the log."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

import aiohttp
import attack_process
import msgspec
from flood import forged_headers, request_head
from hubproc import HubProcess

from livcr_exchange.cases import mint_case_ref
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.request_auth import RequestTarget, sign_request
from livcr_exchange.service.http_noise import LINES_PER_WINDOW

hub_process_fixture = attack_process.hub_process_fixture
MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET /v1/inbox HTTP/1.1\r\nHost: hub\r\nBad Header Line\r\n\r\n",
    b"GET /\x01\x02 HTTP/1.1\r\nHost: hub\r\n\r\n",
    b"GET /v1/inbox HTTP/9.9\r\nHost: hub\r\n\r\n",
]
REPEATS = 2 * LINES_PER_WINDOW


async def send_raw(
    port: int, data: bytes, *, reset: bool = False, read_status: bool = False
) -> None:
    """Write ``data``; read the answer, or (``reset``) hang up with a TCP reset: at once, or
    (``read_status``) once the answer's status line came (the hub is still writing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if read_status:
        assert (await reader.readline()).startswith(b"HTTP/1.1 101")
    if reset:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    await reader.read()
    writer.close()


def stream_request(hub: HubProcess) -> bytes:
    """A signed WebSocket upgrade of caw's push stream."""
    headers = sign_request(
        RequestTarget("GET", "/v1/stream", "", b""),
        "caw",
        hub.members["caw"].identity,
        hub=hub.binding,
        now=int(time.time()),
        random=os.urandom,
    )
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /v1/stream HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{lines}\r\n"
    ).encode()


async def queue_for_caw(hub: HubProcess, count: int) -> None:
    """``count`` envelopes of about 256 KiB waiting in caw's inbox."""
    case_ref = mint_case_ref(os.urandom)
    body = msgspec.to_builtins(example_body("screening_vraag"))
    body["question"] = "x" * 256 * 1024
    async with aiohttp.ClientSession() as session:
        coord = hub.client("coord", session)
        await coord.open_case(case_ref, ["caw"])
        await coord.move_case(case_ref, "in_screening")
        for _ in range(count):
            envelope = hub.seal(
                "coord", ["caw"], msgspec.json.encode(body), "screening_vraag", case_ref
            )
            await coord.submit(envelope)


async def test_malformed_requests_and_hang_ups_are_one_line_each(hub_process: HubProcess) -> None:
    port = hub_process.port
    for _ in range(REPEATS):
        for data in MALFORMED:
            await send_raw(port, data)
    caw = hub_process.members["caw"].identity
    partial = request_head(
        "/v1/cases", 1000, forged_headers("caw", caw.key_id, 0, bytes(16), hub_process.binding)
    )
    await send_raw(port, partial + b"0123456789", reset=True)
    await queue_for_caw(hub_process, 16)
    # Three streams hang up: whether while the hub still writes the 16 pending notices or once
    # it waits for more, each is one line with status 499.
    for _ in range(3):
        await send_raw(port, stream_request(hub_process), reset=True, read_status=True)
    deadline = time.monotonic() + 15
    log = hub_process.directory / hub_process.log_name
    while log.read_text().count('"status":499') < 4:
        assert time.monotonic() < deadline, "the hang-up was not logged"
        await asyncio.sleep(0.1)
    hub_process.stop()

    text = (hub_process.directory / hub_process.log_name).read_text()
    assert "Traceback" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    others = [line for line in text.splitlines() if line and not line.startswith("{")]
    assert all(line.startswith(("========", "(Press CTRL+C")) for line in others), others
    malformed = [line for line in lines if line["event"] == "malformed request"]
    assert malformed, "malformed requests were not logged"
    assert all(line["status"] == 400 for line in malformed)
    assert len(malformed) <= LINES_PER_WINDOW  # the rest are counted, not written
    assert not [line for line in lines if line.get("status") == 500]
    gone = [line for line in lines if line.get("status") == 499]
    assert sorted(line.get("route") for line in gone) == ["/v1/cases", *["/v1/stream"] * 3]
