"""Group commit, one loop for both backends.

Requests hand their ``WriteBatch`` to ``commit`` and wait; one committer task takes what is
queued (up to ``MAX_GROUP`` batches) and has the backend apply it in one transaction, so many
requests share one durable commit. Every waiter hears of its batch: its ``CommitResult``, its
own refusal (a replay), or ``StoreError``.

Closing never strands a waiter: ``stop`` commits what was queued before it and then ends the
task; a batch handed in after that, or still waiting when the task is cancelled, fails with
``StoreError`` (answered 503, so the client retries; a resubmission is recognised).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .base import CommitResult, StoreError, WriteBatch

MAX_GROUP = 256  # batches per transaction; bounds the latency one commit adds
CLOSED = "the store is closed: the batch was not committed"

# Applies a group in one transaction: one outcome per batch, in order (a result, or the
# batch's own refusal). Raising fails the whole group.
ApplyGroup = Callable[[list[WriteBatch]], Awaitable[list[CommitResult | BaseException]]]
Waiter = tuple[WriteBatch, "asyncio.Future[CommitResult]"]


class GroupCommitter:
    """The committer task of one store, from ``start`` (on open) to ``stop`` (on close)."""

    def __init__(self, apply_group: ApplyGroup, *, max_group: int = MAX_GROUP) -> None:
        self._apply_group = apply_group
        self._max_group = max_group
        self._queue: asyncio.Queue[Waiter | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="hub-group-commit")

    async def commit(self, batch: WriteBatch) -> CommitResult:
        """Wait until ``batch`` is durable. Raises StoreError, or the batch's own refusal."""
        if self._task is None:
            raise StoreError(CLOSED)
        future: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((batch, future))
        return await future

    async def stop(self) -> None:
        """Commit what is queued, then end the task; later commits fail with StoreError."""
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.put_nowait(None)  # after everything queued so far
        try:
            await task  # a cancelled close cancels the task, which fails its waiters
        finally:
            self._fail_queued()

    async def _loop(self) -> None:
        try:
            stopping = False
            while not stopping:
                group, stopping = await self._take_group()
                if group:
                    await self._commit_group(group)
        finally:
            self._fail_queued()

    async def _take_group(self) -> tuple[list[Waiter], bool]:
        """The next group, and whether ``stop`` was asked for after it."""
        item = await self._queue.get()
        group: list[Waiter] = []
        while item is not None:
            group.append(item)
            if len(group) >= self._max_group or self._queue.empty():
                return group, False
            item = self._queue.get_nowait()
        return group, True

    async def _commit_group(self, group: list[Waiter]) -> None:
        try:
            results = await self._apply_group([batch for batch, _ in group])
        except asyncio.CancelledError:
            _fail(group, StoreError(CLOSED))
            raise
        except Exception as exc:  # noqa: BLE001  (every waiter must hear of the failure)
            _fail(group, exc if isinstance(exc, StoreError) else StoreError(str(exc)))
            return
        for (_, future), result in zip(group, results, strict=True):
            if future.done():  # its request went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _fail_queued(self) -> None:
        waiting: list[Waiter] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                waiting.append(item)
        _fail(waiting, StoreError(CLOSED))


def _fail(group: list[Waiter], failure: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(failure)
