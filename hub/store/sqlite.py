"""The SQLite (WAL) hub store: the embedded default.

One writer thread owns the write connection and commits queued batches in groups: a request's
batch is acknowledged only after the group's COMMIT returned with ``synchronous=FULL``, so what
the hub acknowledged survives ``kill -9`` and power loss, while concurrent requests share one
fsync. Reads use a second connection on their own thread (WAL lets them run beside the writer),
except the small reads every submission makes (its case; the leaves of the latest group commits),
which run on the event loop with a third connection: see ``_point_read``.
Write transactions also hold a lock file beside the database (``_WriterLock``), so that several
processes writing one file take turns without SQLite's sleeping busy handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from livcr_exchange.errors import Replayed

from .base import (
    AGE_BUCKETS,
    PENDING_BY_AGE,
    PURGED_CASES,
    Acceptance,
    CaseRecord,
    CommitResult,
    DeliveryNotice,
    DeliveryRecord,
    DuplicateEnvelope,
    EnvelopeSink,
    NewEnvelope,
    StoredEnvelope,
    StoreError,
    WriteBatch,
)
from .files import EnvelopeFiles, FileSink
from .group_commit import MAX_GROUP, GroupCommitter
from .migrations import MigrationReport, migrate_sqlite
from .rows import (
    DELIVERY_COLUMNS,
    acceptance_from_row,
    case_from_row,
    case_to_row,
    delivery_from_row,
    inline_chunks,
)

T = TypeVar("T")
PROBE_WRITE = """INSERT INTO meta (key, value) VALUES ('ready_probe', ?)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value"""
CLAIM_NONCE = """INSERT INTO request_nonces (participant_id, nonce, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (participant_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
    WHERE request_nonces.expires_at <= ?"""
POINT_READ_LEAVES = 2 * MAX_GROUP  # leaf hashes read on the event loop (_point_read) at most
BUSY_TIMEOUT_SECONDS = 30  # how long a write waits for another writer before it fails
WRITER_LOCK_SUFFIX = "-writer-lock"  # the lock file: "<database>-writer-lock"
# Polling the writer lock: the first retry after 0.1 ms, doubling up to 1 ms.
WRITER_LOCK_FIRST_PAUSE = 0.0001
WRITER_LOCK_MAX_PAUSE = 0.001
ENVELOPES_SUFFIX = ".envelopes"  # the folder of envelope files: "<database>.envelopes"
# The files of deleted rows, once their deletion committed; a row of the same message id
# inserted since (a new envelope under a freed id) keeps its file.
FILES_GONE = """SELECT g.message_id FROM envelope_files_gone g WHERE NOT EXISTS
    (SELECT 1 FROM envelopes e WHERE e.message_id = g.message_id AND length(e.blob) = 0)"""


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS
    )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    # Deleted rows are overwritten, not left in free pages: what retention purged is gone.
    connection.execute("PRAGMA secure_delete=ON")
    return connection


class _WriterLock:
    """An exclusive ``flock`` on a file beside the database, held around each write transaction.

    SQLite alone serialises writers of one file, but a writer that finds the file locked sleeps
    in SQLite's busy handler for 1, 2, 5, 10, ... ms between tries, whatever the other's
    transaction (a group commit: about a millisecond) still needs. With two processes writing
    one file (the hub benchmark's two workers; an operator command beside a running hub) that
    cost throughput and nearly doubled the p99 in bench/bench_hub.py. This lock is polled at a
    finer pace (at most WRITER_LOCK_MAX_PAUSE late), within the same BUSY_TIMEOUT_SECONDS. The
    kernel drops it when its process dies; a writer that does not take it is still serialised
    by SQLite.
    """

    def __init__(self, database: Path) -> None:
        lock_path = database.with_name(database.name + WRITER_LOCK_SUFFIX)
        self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        """Raises sqlite3.OperationalError after BUSY_TIMEOUT_SECONDS, as SQLite itself would."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        pause = WRITER_LOCK_FIRST_PAUSE
        while not self._try_acquire():
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked (writer lock)")
            time.sleep(pause)
            pause = min(pause * 2, WRITER_LOCK_MAX_PAUSE)

    def _try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class SQLiteStore:
    """HubStore on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="hub-sqlite-writer")
        self._reader_thread = ThreadPoolExecutor(1, thread_name_prefix="hub-sqlite-reader")
        self._write: sqlite3.Connection | None = None
        self._read: sqlite3.Connection | None = None
        self._point: sqlite3.Connection | None = None  # used on the event loop's thread only
        self._writer_lock: _WriterLock | None = None
        self._group = GroupCommitter(self._apply_in_writer)
        self.migration: MigrationReport | None = None  # what opening applied
        self.files = EnvelopeFiles(path.with_name(path.name + ENVELOPES_SUFFIX))

    # Lifecycle.
    async def open(self) -> None:
        """Open (creating and migrating) the database.

        Raises:
            StoreError: it cannot be opened or written (missing folder, read-only, corrupt).
        """
        loop = asyncio.get_running_loop()
        try:
            self._write = await loop.run_in_executor(self._writer_thread, self._open_writer)
            self._read = await loop.run_in_executor(self._reader_thread, _connect, self.path)
            self._point = _connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"sqlite {self.path}: {exc}") from exc
        self._group.start()

    def _open_writer(self) -> sqlite3.Connection:
        connection = _connect(self.path)
        self._writer_lock = _WriterLock(self.path)
        with _Transaction(connection, self._writer_lock):
            self.migration = migrate_sqlite(connection)  # the embedded store migrates itself
        alone = self.files.hold()
        self._unlink_gone(connection)
        if alone:  # a crash's leftovers: no row names them
            with _Transaction(connection, self._writer_lock):
                kept = connection.execute("SELECT message_id FROM envelopes WHERE length(blob) = 0")
                self.files.sweep({bytes(r[0]) for r in kept})
            self.files.share()
        return connection

    def _unlink_gone(self, connection: sqlite3.Connection) -> None:
        """Unlink the files of envelope rows whose deletion committed (on the writer thread)."""
        gone = [bytes(r[0]) for r in connection.execute(FILES_GONE).fetchall()]
        if not gone:
            return
        self.files.unlink(gone)
        with _Transaction(connection, self._writer_lock):
            connection.executemany(
                "DELETE FROM envelope_files_gone WHERE message_id = ?", [(m,) for m in gone]
            )

    async def close(self) -> None:
        await self._group.stop()  # before the writer's connection closes
        loop = asyncio.get_running_loop()
        for connection, thread in (
            (self._write, self._writer_thread),
            (self._read, self._reader_thread),
        ):
            if connection is not None:
                await loop.run_in_executor(thread, connection.close)
        if self._point is not None:
            self._point.close()
            self._point = None
        if self._writer_lock is not None:
            self._writer_lock.close()
            self._writer_lock = None
        self.files.release()
        self._writer_thread.shutdown(wait=True)
        self._reader_thread.shutdown(wait=True)

    # Group commit.
    async def commit(self, batch: WriteBatch) -> CommitResult:
        return await self._group.commit(batch)

    async def _apply_in_writer(
        self, batches: list[WriteBatch]
    ) -> list[CommitResult | BaseException]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_thread, self._apply_group, batches)

    def _apply_group(self, batches: list[WriteBatch]) -> list[CommitResult | BaseException]:
        connection = self._require(self._write)
        results: list[CommitResult | BaseException] = []
        with _Transaction(connection, self._writer_lock):
            size = connection.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves").fetchone()[0]
            for batch in batches:
                connection.execute("SAVEPOINT batch")
                try:
                    indexes = _apply_batch(connection, batch, size)
                except DuplicateEnvelope as exc:
                    connection.execute("ROLLBACK TO batch")
                    connection.execute("RELEASE batch")
                    results.append(exc)
                    continue
                connection.execute("RELEASE batch")
                size += len(indexes)
                results.append(CommitResult(indexes, size))
        self._unlink_gone(connection)
        return [
            r if isinstance(r, BaseException) else CommitResult(r.leaf_indexes, size)
            for r in results
        ]

    # Reads.
    async def _read_with(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._require(self._read)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._reader_thread, fn, connection
            )
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    def _point_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a small indexed read on the caller's (the event loop's) thread.

        In WAL mode a reader never waits for the writer, and a read of a row by its key (or of
        the few leaves of the latest group commits) costs tens of microseconds: less than the
        hand-over to the reader thread and back, which on a loaded 2-core machine added
        milliseconds of latency per request and cost about a sixth of the hub's throughput in
        bench/bench_hub.py. Larger reads stay on the reader thread.
        """
        connection = self._require(self._point)
        try:
            return fn(connection)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    async def _write_with(
        self, fn: Callable[[sqlite3.Connection], T], *, synchronous: str = "FULL"
    ) -> T:
        connection = self._require(self._write)

        def run(conn: sqlite3.Connection) -> T:
            if synchronous == "FULL":
                with _Transaction(conn, self._writer_lock):
                    result = fn(conn)
                self._unlink_gone(conn)
                return result
            conn.execute(f"PRAGMA synchronous={synchronous}")
            try:
                with _Transaction(conn, self._writer_lock):
                    return fn(conn)
            finally:
                conn.execute("PRAGMA synchronous=FULL")

        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer_thread, run, connection
            )
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    @staticmethod
    def _require(connection: sqlite3.Connection | None) -> sqlite3.Connection:
        if connection is None:
            raise StoreError("store is not open")
        return connection

    async def statements(self) -> list[tuple[str, str, bytes]]:
        rows = await self._read_with(
            lambda c: c.execute(
                "SELECT kind, participant_id, signed FROM statements ORDER BY seq"
            ).fetchall()
        )
        return [(kind, pid, bytes(signed)) for kind, pid, signed in rows]

    async def prekeys(self, participant_ids: Sequence[str], now: int) -> dict[str, list[bytes]]:
        def query(c: sqlite3.Connection) -> list[tuple[str, bytes]]:
            marks = ",".join("?" * len(participant_ids))
            return c.execute(
                f"SELECT participant_id, statement FROM prekeys WHERE participant_id IN ({marks}) "
                "AND not_before <= ? AND ? < not_after ORDER BY not_before DESC",
                (*participant_ids, now, now),
            ).fetchall()

        found: dict[str, list[bytes]] = {pid: [] for pid in participant_ids}
        for pid, statement in await self._read_with(query) if participant_ids else []:
            found[pid].append(bytes(statement))
        return found

    @contextlib.asynccontextmanager
    async def case_registry_lock(self) -> AsyncIterator[None]:
        """Nothing beyond the hub's own lock: one hub process serves a SQLite store."""
        yield

    async def case(self, case_ref: str) -> CaseRecord | None:
        row = self._point_read(
            lambda c: c.execute(
                f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_ref = ?",
                (case_ref,),
            ).fetchone()
        )
        return None if row is None else case_from_row(row)

    async def cases(self) -> list[CaseRecord]:
        rows = await self._read_with(
            lambda c: c.execute(f"SELECT {_CASE_COLUMNS} FROM cases ORDER BY case_ref").fetchall()
        )
        return [case_from_row(r) for r in rows]

    async def pending(self, recipient_id: str, after_seq: int, limit: int) -> list[DeliveryRecord]:
        rows = await self._read_with(
            lambda c: c.execute(
                f"{_DELIVERY_SELECT} WHERE d.recipient_id = ? AND d.seq > ? ORDER BY d.seq LIMIT ?",
                (recipient_id, after_seq, limit),
            ).fetchall()
        )
        return [delivery_from_row(r) for r in rows]

    async def delivery(self, recipient_id: str, message_id: bytes) -> DeliveryRecord | None:
        row = await self._read_with(
            lambda c: c.execute(
                f"{_DELIVERY_SELECT} WHERE d.recipient_id = ? AND d.message_id = ?",
                (recipient_id, message_id),
            ).fetchone()
        )
        return None if row is None else delivery_from_row(row)

    async def stored_envelope(self, recipient_id: str, message_id: bytes) -> StoredEnvelope | None:
        row = await self._read_with(
            lambda c: c.execute(_STORED_SELECT, (recipient_id, message_id)).fetchone()
        )
        if row is None:
            return None
        size, inline = int(row[0]), row[1]
        if inline is not None:
            return StoredEnvelope(size, inline_chunks(bytes(inline)))
        return StoredEnvelope(size, lambda start: self.files.chunks(message_id, start))

    async def envelope_sink(self, message_id: bytes) -> EnvelopeSink:
        return FileSink(self.files, message_id, self.commit)

    async def pending_in_case(self, recipient_id: str, case_ref: str) -> list[bytes]:
        rows = await self._read_with(
            lambda c: c.execute(
                "SELECT d.message_id FROM deliveries d JOIN envelopes e"
                " ON e.message_id = d.message_id WHERE d.recipient_id = ? AND e.case_ref = ?"
                " ORDER BY d.seq",
                (recipient_id, case_ref),
            ).fetchall()
        )
        return [bytes(r[0]) for r in rows]

    async def accepted_before(self, sender_id: str, message_id: bytes) -> Acceptance | None:
        row = self._point_read(
            lambda c: c.execute(_ACCEPTANCE_SELECT, (sender_id, message_id)).fetchone()
        )
        return None if row is None else acceptance_from_row(row)

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        def query(c: sqlite3.Connection) -> list[Any]:
            return c.execute(
                "SELECT leaf_hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
            ).fetchall()

        # The few leaves of the latest group commits (receipts catch up on every group) are
        # read like one row; loading a long stretch of the log stays on the reader thread.
        small = end - start <= POINT_READ_LEAVES
        rows = self._point_read(query) if small else await self._read_with(query)
        return [bytes(r[0]) for r in rows]

    async def leaves(
        self, start: int, end: int, case_ref: str | None = None
    ) -> list[tuple[int, bytes, bytes | None]]:
        def query(c: sqlite3.Connection) -> list[Any]:
            sql = "SELECT idx, leaf_hash, data FROM leaves WHERE idx >= ? AND idx < ?"
            params: tuple[Any, ...] = (start, end)
            if case_ref is not None:
                sql += " AND case_ref = ?"
                params += (case_ref,)
            return c.execute(sql + " ORDER BY idx", params).fetchall()

        return [
            (idx, bytes(h), None if d is None else bytes(d))
            for idx, h, d in await self._read_with(query)
        ]

    async def tree_size(self) -> int:
        value: int = await self._read_with(
            lambda c: c.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves").fetchone()[0]
        )
        return value

    async def save_checkpoint(self, size: int, note: bytes) -> None:
        await self._write_with(
            lambda c: c.execute(
                "INSERT INTO checkpoints (size, note) VALUES (?, ?) ON CONFLICT (size) DO NOTHING",
                (size, note),
            )
        )

    async def checkpoints(self) -> list[tuple[int, bytes]]:
        rows = await self._read_with(
            lambda c: c.execute("SELECT size, note FROM checkpoints ORDER BY size").fetchall()
        )
        return [(size, bytes(note)) for size, note in rows]

    async def delete_expired(self, now: int, limit: int) -> int:
        def run(c: sqlite3.Connection) -> int:
            ids = [
                r[0]
                for r in c.execute(
                    "SELECT message_id FROM envelopes WHERE expires_at <= ? LIMIT ?", (now, limit)
                ).fetchall()
            ]
            for message_id in ids:
                c.execute("DELETE FROM deliveries WHERE message_id = ?", (message_id,))
                c.execute("DELETE FROM envelopes WHERE message_id = ?", (message_id,))
            c.execute("DELETE FROM seen WHERE expires_at <= ?", (now,))
            c.execute("DELETE FROM request_nonces WHERE expires_at <= ?", (now,))
            return len(ids)

        return await self._write_with(run)

    async def purge_case(self, case_ref: str, limit: int) -> int:
        removed = await self._write_with(lambda c: _purge(c, case_ref, limit)[0])
        if removed:
            await self._forget_old_pages()
        return removed

    async def _forget_old_pages(self) -> None:
        """Copy the write-ahead log into the database and empty it: after a purge the log still
        holds the page images from before it, purged data included."""
        connection = self._require(self._write)
        # The pragma answers with a row; it must be read, or its statement stays open and the
        # next COMMIT on this connection fails.
        await asyncio.get_running_loop().run_in_executor(
            self._writer_thread,
            lambda: connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(),
        )

    async def counts(self) -> dict[str, int]:
        def run(c: sqlite3.Connection) -> dict[str, int]:
            def one(sql: str) -> int:
                return int(c.execute(sql).fetchone()[0])

            return {
                "envelopes": one("SELECT COUNT(*) FROM envelopes"),
                "deliveries_pending": one("SELECT COUNT(*) FROM deliveries"),
                "log_size": one("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves"),
                "statements": one("SELECT COUNT(*) FROM statements"),
                "cases": one("SELECT COUNT(*) FROM cases"),
            }

        return await self._read_with(run)

    async def operator_rows(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._read_with(
            lambda c: c.execute(sql, tuple(params)).fetchall()
        )
        return rows

    async def pending_by_age(self, now: int) -> dict[str, int]:
        sql = PENDING_BY_AGE.format(now="?")
        rows = await self._read_with(lambda c: c.execute(sql, (now, now, now)).fetchall())
        return dict.fromkeys(AGE_BUCKETS, 0) | {age: int(n) for age, n in rows}

    async def purged_cases(self, now: int) -> int:
        sql = PURGED_CASES.format(now="?")
        return int(await self._read_with(lambda c: c.execute(sql, (now,)).fetchone()[0]))

    async def purge_due(self, now: int, limit: int) -> int:
        def run(c: sqlite3.Connection) -> int:
            removed = 0
            due = c.execute(
                "SELECT case_ref, due_at FROM purge_queue WHERE due_at <= ? "
                "ORDER BY due_at LIMIT 64",
                (now,),
            ).fetchall()
            for case_ref, due_at in due:
                if removed >= limit:
                    break
                done, finished = _purge(c, case_ref, limit - removed)
                removed += done
                if finished:  # nothing of the case is left: off the schedule
                    c.execute(
                        "DELETE FROM purge_queue WHERE case_ref = ? AND due_at = ?",
                        (case_ref, due_at),
                    )
            if removed:  # the console's retention page: when, and how many rows (no names)
                c.execute("INSERT INTO purges (at, removed) VALUES (?, ?)", (now, removed))
            return removed

        removed = await self._write_with(run)
        if removed:
            await self._forget_old_pages()
        return removed

    async def probe_write(self, now: int) -> None:
        await self._write_with(lambda c: c.execute(PROBE_WRITE, (str(now),)))

    async def claim_nonce(
        self, participant_id: str, nonce: bytes, expires_at: int, now: int
    ) -> None:
        """Record the nonce in ``request_nonces``, so a request replayed after a restart is
        refused too. Its commit does not wait for the disk (``synchronous=NORMAL``): in WAL mode
        that survives the hub's process dying; a power loss reopens at most the five-minute
        window (the next group commit's fsync takes the nonce along).

        Raises:
            Replayed: the nonce was claimed before and has not expired.
            StoreError: the database cannot be written.
        """

        def run(c: sqlite3.Connection) -> int:
            return c.execute(CLAIM_NONCE, (participant_id, nonce, expires_at, now)).rowcount

        if not await self._write_with(run, synchronous="NORMAL"):
            raise Replayed(f"request nonce of {participant_id} was used before")

    def delivery_notices(self) -> AsyncGenerator[DeliveryNotice, None] | None:
        return None  # one process: operations push to its own sockets


def _purge(c: sqlite3.Connection, case_ref: str, limit: int) -> tuple[int, bool]:
    """Delete a case's envelopes, then null its leaves' data: ``limit`` rows at most.

    Returns the rows removed and whether nothing of the case is left.
    """
    ids = [
        r[0]
        for r in c.execute(
            "SELECT message_id FROM envelopes WHERE case_ref = ? LIMIT ?", (case_ref, limit)
        ).fetchall()
    ]
    for message_id in ids:
        c.execute("DELETE FROM deliveries WHERE message_id = ?", (message_id,))
        c.execute("DELETE FROM envelopes WHERE message_id = ?", (message_id,))
    if len(ids) == limit:
        return len(ids), False
    budget = limit - len(ids)
    cleared = c.execute(
        "UPDATE leaves SET data = NULL WHERE idx IN (SELECT idx FROM leaves "
        "WHERE case_ref = ? AND data IS NOT NULL LIMIT ?)",
        (case_ref, budget),
    ).rowcount
    return len(ids) + cleared, cleared < budget


def _schedule_purge(c: sqlite3.Connection, case: CaseRecord) -> None:
    """Closing a case schedules its purge; reopening it takes it off the schedule (§10.5)."""
    if case.purge_after is None:
        c.execute("DELETE FROM purge_queue WHERE case_ref = ?", (case.case_ref,))
    else:
        c.execute(
            "INSERT INTO purge_queue (case_ref, due_at) VALUES (?, ?) "
            "ON CONFLICT (case_ref) DO UPDATE SET due_at = excluded.due_at",
            (case.case_ref, case.purge_after),
        )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error) on an autocommit connection, inside the
    writer lock when there is one."""

    def __init__(self, connection: sqlite3.Connection, lock: _WriterLock | None = None) -> None:
        self._connection = connection
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        if self._lock is not None:
            self._lock.acquire()
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise
        return self._connection

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        try:
            self._connection.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()


def _apply_batch(c: sqlite3.Connection, batch: WriteBatch, first_index: int) -> tuple[int, ...]:
    indexes = tuple(range(first_index, first_index + len(batch.leaves)))
    envelope_leaf = dict(zip(range(len(batch.envelopes)), indexes, strict=False))
    for position, env in enumerate(batch.envelopes):
        _insert_envelope(c, env, envelope_leaf.get(position, -1))
    for recipient_id, message_id in batch.acks:
        c.execute(
            "DELETE FROM deliveries WHERE recipient_id = ? AND message_id = ?",
            (recipient_id, message_id),
        )
        c.execute(
            "DELETE FROM envelopes WHERE message_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM deliveries WHERE message_id = ?)",
            (message_id, message_id),
        )
    _apply_directory(c, batch)
    for case in batch.cases:
        _schedule_purge(c, case)
        c.execute(
            "INSERT INTO cases (case_ref, state, owner, referrer, members, meetings, opened_at, "
            "closed_at, purge_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (case_ref) DO "
            "UPDATE SET state = excluded.state, owner = excluded.owner,"
            " referrer = excluded.referrer, members = excluded.members,"
            " meetings = excluded.meetings, closed_at = excluded.closed_at,"
            " purge_after = excluded.purge_after",
            case_to_row(case),
        )
    c.executemany("INSERT INTO refusals (at, code) VALUES (?, ?)", batch.refusals)
    c.executemany(
        "INSERT INTO leaves (idx, leaf_hash, data, case_ref) VALUES (?, ?, ?, ?)",
        [
            (i, leaf.leaf_hash, leaf.data, leaf.case_ref)
            for i, leaf in zip(indexes, batch.leaves, strict=True)
        ],
    )
    return indexes


def _insert_envelope(c: sqlite3.Connection, env: NewEnvelope, leaf_index: int) -> None:
    """An accepted envelope, its (sender, message id) pair and its deliveries.

    Raises:
        DuplicateEnvelope: the pair was accepted before.
    """
    try:
        c.execute(
            "INSERT INTO seen (sender_id, message_id, expires_at, leaf_index) VALUES (?, ?, ?, ?)",
            (env.sender_id, env.message_id, env.expires_at, leaf_index),
        )
    except sqlite3.IntegrityError as exc:
        raise DuplicateEnvelope(
            f"message {env.message_id.hex()} from {env.sender_id} was accepted before"
        ) from exc
    c.execute(
        "INSERT INTO envelopes (message_id, sender_id, purpose, case_ref, accepted_at,"
        " expires_at, leaf_index, blob, size, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            env.message_id,
            env.sender_id,
            env.purpose,
            env.case_ref,
            env.accepted_at,
            env.expires_at,
            leaf_index,
            env.blob,
            env.size,
            env.digest,
        ),
    )
    c.executemany(
        "INSERT INTO deliveries (recipient_id, message_id, accepted_at, size) VALUES (?, ?, ?, ?)",
        [(r, env.message_id, env.accepted_at, env.size) for r in env.recipients],
    )


def _apply_directory(c: sqlite3.Connection, batch: WriteBatch) -> None:
    """The batch's directory statements and prekeys."""
    for kind, participant_id, signed in batch.statements:
        c.execute(
            "INSERT INTO statements (kind, participant_id, signed) VALUES (?, ?, ?)",
            (kind, participant_id, signed),
        )
    for participant_id, prekey_id, statement, not_before, not_after in batch.prekeys:
        c.execute(
            "INSERT INTO prekeys (participant_id, prekey_id, statement, not_before, not_after) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (participant_id, prekey_id) DO NOTHING",
            (participant_id, prekey_id, statement, not_before, not_after),
        )


_CASE_COLUMNS = (
    "case_ref, state, owner, referrer, members, meetings, opened_at, closed_at, purge_after"
)
_DELIVERY_SELECT = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN envelopes e ON e.message_id = d.message_id"
)
_STORED_SELECT = (
    "SELECT d.size, CASE WHEN length(e.blob) > 0 THEN e.blob END FROM deliveries d"
    " JOIN envelopes e ON e.message_id = d.message_id"
    " WHERE d.recipient_id = ? AND d.message_id = ?"
)
_ACCEPTANCE_SELECT = (
    "SELECT s.leaf_index, l.data FROM seen s LEFT JOIN leaves l ON l.idx = s.leaf_index "
    "WHERE s.sender_id = ? AND s.message_id = ?"
)
