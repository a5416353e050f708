"""Finding: availability honesty. /readyz says "not ready" while the store cannot commit, and
"ready" again once it can; /healthz stays a liveness answer throughout."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg
import attack_harness  # noqa: F401  (puts tests/ and tests/hub on sys.path)
import hub_harness
from hub_harness import HubHarness
from pgdb import ADMIN_DSN

clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture


async def status_of(harness: HubHarness, path: str) -> int:
    async with harness.session.get(harness.url + path) as response:
        return response.status


async def until(harness: HubHarness, path: str, wanted: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (status := await status_of(harness, path)) != wanted:
        assert time.monotonic() < deadline, f"{path} still answers {status}"
        await asyncio.sleep(0.1)


async def make_read_only(harness: HubHarness, read_only: bool) -> None:
    """The store can no longer commit (or can again): SQLite's writer connection turns
    query-only; the PostgreSQL database turns read-only for every new session, and the hub's
    sessions are ended so that its pools reconnect under that setting."""
    if harness.target.kind == "sqlite":
        writer = harness.store._write
        assert writer is not None
        writer.execute(f"PRAGMA query_only={int(read_only)}")
        return
    assert harness.target.dsn is not None
    name = urlsplit(harness.target.dsn).path.lstrip("/")
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        setting = "on" if read_only else "off"
        await admin.execute(
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = {setting}'
        )
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()


async def test_readyz_follows_whether_the_store_can_commit(harness: HubHarness) -> None:
    assert await status_of(harness, "/readyz") == 200
    await make_read_only(harness, True)
    await until(harness, "/readyz", 503)
    async with harness.session.get(harness.url + "/readyz") as response:
        answer = await response.json()
    assert answer["status"] == "not_ready"
    assert answer["problems"][0].startswith("the store cannot commit")
    await until(harness, "/healthz", 200)  # alive all the same: a restart would not help
    await make_read_only(harness, False)
    await until(harness, "/readyz", 200)
