"""The PostgreSQL push listener (hub/store/postgres.py) holds a connection of its own; however
its task ends, that connection is closed. Here the task is cancelled while LISTEN is on its way,
as when a hub stops just after it started."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from hub.store import postgres
from hub.store.postgres import PostgresStore


async def test_a_listener_cancelled_during_listen_closes_its_connection(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    listening = asyncio.Event()
    real_connect = asyncpg.connect

    async def connect(dsn: str) -> Any:
        opened.append(await real_connect(dsn))
        return opened[-1]

    async def add_listener(*_: object) -> None:
        listening.set()
        await asyncio.Event().wait()  # the LISTEN never answers: the task is cancelled here

    monkeypatch.setattr(postgres.asyncpg, "connect", connect)
    monkeypatch.setattr(asyncpg.Connection, "add_listener", add_listener)
    notices = PostgresStore(pg_dsn).delivery_notices()
    task = asyncio.create_task(anext(notices))
    await asyncio.wait_for(listening.wait(), timeout=20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (connection,) = opened
    assert connection.is_closed()
