"""The gateway store's connection: one SQLite file, one thread, one transaction per call.

WAL with synchronous=FULL; migrated when it opens. An exclusive flock on the file keeps a second
gateway process off the same folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar

from .migrations import migrate
from .store_protocol import check_protocol_version

T = TypeVar("T")


class StoreLocked(Exception):
    """Another gateway process has this store open."""


class StoreBase:
    """The connection and its thread; the tables' calls are in the mixins of ``store``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="gateway-sqlite")
        self._connection: sqlite3.Connection | None = None
        self._lock: IO[bytes] | None = None
        self.migrated_from: int | None = None

    async def open(self) -> None:
        """Take the folder's lock, connect and migrate.

        Raises:
            StoreLocked: another gateway process has the store open.
            StoreTooNew: the store was written by a newer gateway.
        """
        self._take_lock()
        try:
            self._connection = await self._run_raw(self._connect)
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        # flock on the database file itself: no lock file is left behind, and it is apart
        # from SQLite's own (POSIX record) locks on the same file.
        handle = self.path.open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise StoreLocked(
                f"another gateway process has {self.path} open: stop it first (one process"
                " per gateway folder)"
            ) from exc
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=30000")
        # Deleted content is overwritten, not left in free pages: an erased case and a destroyed
        # prekey secret must not be readable from the file by whoever later holds the local key.
        connection.execute("PRAGMA secure_delete=ON")
        connection.execute("BEGIN IMMEDIATE")
        try:
            self.migrated_from, _ = migrate(connection)
            check_protocol_version(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            connection.close()
            raise
        connection.execute("COMMIT")
        return connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._run_raw(self._connection.close)
            self._connection = None
        self._thread.shutdown(wait=True)
        self._release_lock()

    async def _run_raw(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one transaction on the store's thread."""
        connection = self._connection
        if connection is None:
            raise RuntimeError("gateway store is not open")

        def transaction() -> T:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = fn(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

        return await self._run_raw(transaction)

    async def forget_old_pages(self) -> None:
        """Copy the write-ahead log into the database and empty it: the log still holds the
        page images from before a deletion, content included."""
        connection = self._connection
        if connection is None:
            raise RuntimeError("gateway store is not open")
        # The pragma answers with a row; it must be read, or its statement stays open and the
        # next COMMIT on this connection fails.
        await self._run_raw(
            lambda: connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        )
