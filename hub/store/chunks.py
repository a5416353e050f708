"""Envelope chunk rows in PostgreSQL: an envelope streamed in, a MiB per row, never held whole.

An upload takes a connection of its own and opens a transaction; each MiB that arrives is one
``envelope_chunks`` row, and the envelope's own row, its deliveries and its leaf are written
in the same transaction once it is accepted (under the log lock, as a group commit writes
them). One COMMIT makes it all durable; a refusal rolls it back, and a hub that dies mid-upload
leaves an open transaction the server rolls back: no half-written envelope is ever visible.

Chunk rows rather than large objects: they live and die with the envelope's row (``ON DELETE
CASCADE``, so expiry, purges, acknowledgements and drops delete them with the plain DELETE they
already run, and deleting means gone as for every other row), they are in every dump and
replica like the rest of the store, and no ``lo_unlink`` or ``vacuumlo`` is needed to keep
orphaned objects from piling up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

from .base import CommitResult, DuplicateEnvelope, StoreError, WriteBatch

CHUNK_ROW_BYTES = 1024 * 1024
INSERT_CHUNK = "INSERT INTO envelope_chunks (message_id, seq, data) VALUES ($1, $2, $3)"
READ_CHUNK = "SELECT data FROM envelope_chunks WHERE message_id = $1 AND seq = $2"
Commit = Callable[[Any, WriteBatch], Awaitable[CommitResult]]


class ChunkSink:
    """An EnvelopeSink writing chunk rows in a transaction of its own (module doc)."""

    def __init__(self, connection: Any, pool: Any, message_id: bytes, commit: Commit) -> None:
        self._connection = connection
        self._pool = pool
        self._message_id = message_id
        self._commit = commit
        self._buffer = bytearray()
        self._seq = 0
        self._duplicate = False  # another envelope holds chunks under this message id
        self._open = True

    async def begin(self) -> None:
        await self._run(self._connection.execute("BEGIN ISOLATION LEVEL READ COMMITTED"))

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= CHUNK_ROW_BYTES:
            piece = bytes(self._buffer[:CHUNK_ROW_BYTES])
            del self._buffer[:CHUNK_ROW_BYTES]
            await self._insert(piece)

    async def _insert(self, piece: bytes) -> None:
        if self._duplicate:
            return  # read on to the end; the commit refuses it as a replay
        try:
            await self._run(
                self._connection.execute(INSERT_CHUNK, self._message_id, self._seq, piece)
            )
        except asyncpg.UniqueViolationError:
            self._duplicate = True
            return
        self._seq += 1

    async def commit(self, batch: WriteBatch) -> CommitResult:
        try:
            result = await self._finish(batch)
        except BaseException:
            await self.discard()
            raise
        await self._release()
        return result

    async def _finish(self, batch: WriteBatch) -> CommitResult:
        if self._buffer:
            await self._insert(bytes(self._buffer))
            self._buffer = bytearray()
        if self._duplicate:
            raise DuplicateEnvelope(f"message {self._message_id.hex()} is held already")
        result: CommitResult = await self._run(self._commit(self._connection, batch))
        return result

    async def discard(self) -> None:
        if not self._open:
            return
        if not self._connection.is_closed():
            try:
                await self._connection.execute("ROLLBACK")
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                self._connection.terminate()  # the server rolls back what it held
        await self._release()

    async def _release(self) -> None:
        if self._open:
            self._open = False
            await self._pool.release(self._connection)

    @staticmethod
    async def _run(work: Awaitable[Any]) -> Any:
        try:
            return await work
        except (asyncpg.UniqueViolationError, DuplicateEnvelope):
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StoreError(f"postgresql: {exc}") from exc


async def chunk_rows(
    pool: Any, message_id: bytes, start: int, errors: tuple[type[BaseException], ...]
) -> AsyncIterator[bytes]:
    """The envelope's bytes from offset ``start``, one chunk row at a time."""
    seq, skip = divmod(start, CHUNK_ROW_BYTES)
    while True:
        try:
            data = await pool.fetchval(READ_CHUNK, message_id, seq)
        except errors as exc:
            raise StoreError(f"postgresql: {exc}") from exc
        if data is None:
            return
        yield bytes(data[skip:]) if skip else bytes(data)
        seq, skip = seq + 1, 0
