"""Group commit at shutdown, on both backends: a ``commit()`` awaited while the store closes
either completes (its batch is in the store) or fails with ``StoreError``; it never hangs."""

from __future__ import annotations

import asyncio

import pytest
from conftest import StoreTarget
from test_hub_stores import envelope_batch

from hub.store.base import CommitResult, StoreError

DEADLINE_SECONDS = 30.0  # far above what closing takes; only a hang reaches it


async def outcomes_of(commits: list[asyncio.Future[CommitResult]]) -> list[object]:
    return await asyncio.wait_for(
        asyncio.gather(*commits, return_exceptions=True), DEADLINE_SECONDS
    )


def checked(outcomes: list[object]) -> int:
    """How many committed; every other outcome must be the store's coded failure."""
    strays = [o for o in outcomes if not isinstance(o, CommitResult | StoreError)]
    assert strays == []
    return sum(isinstance(o, CommitResult) for o in outcomes)


async def test_commits_queued_when_the_store_closes_end(store_target: StoreTarget) -> None:
    store = store_target.new()
    await store.open()
    commits = [asyncio.ensure_future(store.commit(envelope_batch(i))) for i in range(40)]
    await asyncio.wait_for(store.close(), DEADLINE_SECONDS)
    committed = checked(await outcomes_of(commits))

    reopened = store_target.new()
    await reopened.open()
    try:
        assert await reopened.tree_size() == committed  # acknowledged means kept, and only that
    finally:
        await reopened.close()


async def test_commits_in_flight_when_the_store_closes_end(store_target: StoreTarget) -> None:
    store = store_target.new()
    await store.open()
    commits = [asyncio.ensure_future(store.commit(envelope_batch(i))) for i in range(300)]
    await asyncio.wait(commits, return_when=asyncio.FIRST_COMPLETED)  # the committer is busy
    await asyncio.wait_for(store.close(), DEADLINE_SECONDS)
    committed = checked(await outcomes_of(commits))
    assert committed >= 1

    reopened = store_target.new()
    await reopened.open()
    try:
        assert await reopened.tree_size() == committed
    finally:
        await reopened.close()


async def test_a_commit_after_closing_is_refused(store_target: StoreTarget) -> None:
    store = store_target.new()
    await store.open()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await asyncio.wait_for(store.commit(envelope_batch(1)), DEADLINE_SECONDS)
