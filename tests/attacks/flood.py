"""An unauthenticated attacker against a hub process: big bodies, slow bodies, slow headers.

Shared by tests/attacks/test_attack_memory.py and bench/bench_hub_attack.py. Every request is
written on a raw socket, so nothing between the attacker and the hub shapes it. The headers
name a real participant and its (public) key id in the required form, so they pass the hub's
header pre-check; the signature is made of zeros, so no request is ever authenticated.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from livcr_exchange.request_auth import HubBinding, content_digest, signature_params

CHUNK = 256 * 1024


async def until(condition: Callable[[], object], timeout: float) -> None:
    """Wait until ``condition()`` holds, polling; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    """A process's resident set (``VmRSS``) or its peak so far (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field_name)


def forged_headers(
    participant_id: str, key_id: bytes, now: int, nonce: bytes, hub: HubBinding
) -> str:
    """Signature headers in the required form for ``participant_id``, signed by nobody."""
    params = signature_params(now, key_id, nonce, hub)
    signature = base64.b64encode(bytes(64)).decode()
    return (
        f"Content-Digest: {content_digest(b'')}\r\n"
        f"Livcr-Participant: {participant_id}\r\n"
        f"Signature-Input: sig1={params}\r\n"
        f"Signature: sig1=:{signature}:\r\n"
    )


def request_head(path: str, length: int, headers: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: hub\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n{headers}\r\n"
    ).encode()


async def _status(reader: asyncio.StreamReader) -> int | None:
    """The status of the answer, or None when the hub closed the connection without one."""
    try:
        line = await reader.readline()
    except ConnectionError:
        return None
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None


async def big_body(port: int, path: str, length: int, headers: str) -> int | None:
    """Declare ``length`` bytes and send them as fast as the hub reads; return the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head(path, length, headers))
        sent, chunk = 0, bytes(CHUNK)
        answer = asyncio.ensure_future(_status(reader))
        while sent < length and not answer.done():
            piece = chunk[: min(CHUNK, length - sent)]
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                break
            sent += len(piece)
        return await answer
    finally:
        writer.close()


@dataclass
class SlowSender:
    """One connection that trickles bytes; ``closed_after`` is when the hub hung up on it."""

    started: float = field(default_factory=time.monotonic)
    closed_after: float | None = None
    status: int | None = None
    trickles: int = 0  # pieces sent after the request head


async def slow_request(
    port: int, first: bytes, trickle: bytes, pause: float, sender: SlowSender
) -> None:
    """Send ``first``, then ``trickle`` every ``pause`` seconds until the hub closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sender.started = time.monotonic()
    writer.write(first)
    answer = asyncio.ensure_future(_status(reader))
    try:
        while not answer.done():
            try:
                writer.write(trickle)
                await writer.drain()
            except ConnectionError:
                break
            sender.trickles += 1
            await asyncio.wait([answer], timeout=pause)
        sender.status = await answer
        await reader.read()  # until the hub closes the connection
    except ConnectionError:
        pass
    finally:
        sender.closed_after = time.monotonic() - sender.started
        writer.close()


async def healthz_seconds(port: int) -> float:
    """How long a plain GET /healthz takes to answer 200."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        status = await _status(reader)
        await reader.read()
    finally:
        writer.close()
    assert status == 200, status
    return time.monotonic() - started


@dataclass
class FloodFigures:
    """What the hub went through, for the test's assertions and the benchmark's report."""

    rss_before: int
    rss_peak: int
    rss_after: int
    big_statuses: list[int | None]
    slow_closed_after: list[float]
    healthz_worst: float


@dataclass(frozen=True)
class Flood:
    """N bodies of the largest size, half of them with headers that pass the pre-check, and
    N slow bodies, at once against the hub process ``pid`` listening on ``port``."""

    port: int
    pid: int
    participant_id: str
    key_id: bytes
    body_bytes: int
    hub: HubBinding
    count: int = 24
    slow_length: int = 1000
    slow_pause: float = 0.5

    def headers(self) -> str:
        nonce = bytes(16)
        return forged_headers(self.participant_id, self.key_id, int(time.time()), nonce, self.hub)

    async def run(self) -> FloodFigures:
        before = rss_bytes(self.pid)
        slow = [SlowSender() for _ in range(self.count)]
        first = request_head("/v1/cases", self.slow_length, self.headers())
        trickling = asyncio.gather(
            *(slow_request(self.port, first, b"x" * 10, self.slow_pause, s) for s in slow)
        )
        # The slow bodies are being read before the big ones come: else the big ones, holding
        # the budget, would have them refused at once (503 busy) instead of timed out.
        await until(lambda: all(s.trickles >= 2 or s.closed_after for s in slow), 10.0)
        big = [
            big_body(self.port, "/v1/envelopes", self.body_bytes, self.headers() if i % 2 else "")
            for i in range(self.count)
        ]
        attack = asyncio.ensure_future(asyncio.gather(trickling, *big))
        worst = 0.0
        while not attack.done():
            worst = max(worst, await healthz_seconds(self.port))
            await asyncio.wait([attack], timeout=0.2)
        statuses = list((await attack)[1:])
        return FloodFigures(
            before,
            rss_bytes(self.pid, "VmHWM"),
            rss_bytes(self.pid),
            statuses,
            [s.closed_after for s in slow if s.closed_after is not None],
            worst,
        )
