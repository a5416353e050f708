"""SIGKILL halfway through receiving a 64 MiB envelope: after the restart nothing half-written
is visible (no row, no file, no chunk row), the sender's retry succeeds, and the store holds
exactly one copy."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from conftest import StoreTarget
from factories import case_ref
from hubproc import HubProcess

from hub.store.chunks import CHUNK_ROW_BYTES
from hub.store.sqlite import ENVELOPES_SUFFIX
from livcr_exchange.audit.leaves import envelope_hash
from livcr_exchange.request_auth import digest_field
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubClient

ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER}
CASE = case_ref("killed halfway")
BODY = 64 * 1024 * 1024
PIECE = 1024 * 1024
HALF = 32 * PIECE
DEADLINE = 60.0


class Store:
    """What the hub process's store holds of envelopes, read from outside the process."""

    def __init__(self, hub: HubProcess, target: StoreTarget) -> None:
        self.hub = hub
        self.target = target
        database = hub.config.path(hub.config.store.path)
        self.database = database
        self.folder = database.with_name(database.name + ENVELOPES_SUFFIX)

    async def counts(self) -> tuple[int, int]:
        """(envelope rows, files or chunk rows)."""
        if self.target.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.database)) as connection:
                rows = connection.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0]
            return int(rows), len(list(self.folder.iterdir()))
        connection = await asyncpg.connect(self.target.dsn)
        try:
            rows = await connection.fetchval("SELECT COUNT(*) FROM envelopes")
            chunks = await connection.fetchval("SELECT COUNT(*) FROM envelope_chunks")
        finally:
            await connection.close()
        return int(rows), int(chunks)

    async def receiving(self) -> bool:
        """Whether the hub is storing an upload now (a part file growing, or a session of
        the hub inserting chunk rows in an open transaction)."""
        if self.target.kind == "sqlite":
            return any(p.stat().st_size > 0 for p in self.folder.glob("*.part"))
        connection = await asyncpg.connect(self.target.dsn)
        try:
            busy = await connection.fetchval(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'INSERT INTO envelope_chunks%' AND xact_start IS NOT NULL"
            )
        finally:
            await connection.close()
        return bool(busy)


async def killed_halfway(hub: HubProcess, store: Store, envelope: bytes) -> None:
    """Send ``envelope`` slowly; once half of it went out and the hub is storing it, SIGKILL."""

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(envelope), PIECE):
            if start == HALF:
                deadline = time.monotonic() + DEADLINE
                while not await store.receiving():
                    assert time.monotonic() < deadline, "the hub never stored the upload"
                    await asyncio.sleep(0.05)
                hub.kill()
            yield envelope[start : start + PIECE]

    async with aiohttp.ClientSession() as session:
        digest = digest_field(hashlib.sha256(envelope).digest())
        headers = hub.client("caw", session).signed_headers(
            "POST", "/v1/envelopes", "", b"", digest=digest
        )
        headers["Content-Length"] = str(len(envelope))
        with pytest.raises(aiohttp.ClientError):
            async with session.post(
                hub.url + "/v1/envelopes", data=pieces(), headers=headers
            ) as response:
                await response.read()


async def resubmit(hub: HubProcess, source: Path) -> str:
    async with aiohttp.ClientSession() as session:
        member = hub.members["caw"]
        client = HubClient(hub.url, "caw", member.identity, session, hub=hub.binding)
        answered = await client.submit_file(source)
        assert not answered.accepted_before
        target = source.with_name("fetched")
        coord = HubClient(hub.url, "coord", hub.members["coord"].identity, session, hub=hub.binding)
        await coord.download(answered.receipt.message_id, target, source.stat().st_size)
        assert envelope_hash(target.read_bytes()) == envelope_hash(source.read_bytes())
        return answered.receipt.message_id


def test_sigkill_halfway_through_a_64_mib_envelope_leaves_nothing(
    tmp_path: Path, store_target: StoreTarget
) -> None:
    hub = HubProcess.create(tmp_path / "cell", ROLES, dsn=store_target.dsn)
    envelope = hub.seal("caw", ["coord"], b"", "aanmelding", CASE, opaque_size=BODY)
    source = tmp_path / "big.envelope"
    source.write_bytes(envelope)
    store = Store(hub, store_target)
    hub.start()
    try:
        asyncio.run(killed_halfway(hub, store, envelope))
        hub.start()
        assert asyncio.run(store.counts()) == (0, 0), "a half-written envelope is visible"
        asyncio.run(resubmit(hub, source))
        expected = (
            1 if store_target.kind == "sqlite" else math.ceil(len(envelope) / CHUNK_ROW_BYTES)
        )
        assert asyncio.run(store.counts()) == (1, expected)
    finally:
        hub.stop()
