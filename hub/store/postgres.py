"""The PostgreSQL hub store: several hub processes share one database, one log and one queue.

Writes are grouped as in the SQLite store: a committer task drains queued batches and commits
them in one transaction of four round trips whatever the group's size (its rows travel as
``unnest`` arrays), and a request hears back only after COMMIT returned with
``synchronous_commit = on``.

Across processes:

- Log order. Every transaction that appends leaves (and every one that deletes envelopes or
  deliveries, so that acknowledgements, expiry and purges never wait on each other's rows)
  first takes ``pg_advisory_xact_lock(LOG_LOCK)`` and only then reads ``MAX(idx)``, in a
  statement of its own so its snapshot postdates the lock. The lock is held until COMMIT, so
  two processes never take the same index, a rolled-back group leaves no gap, and a reader
  never sees index n+1 committed before n.
- Replays. Under that lock the group checks which (sender, message id) pairs, and which
  message ids, the store already holds, then decides batch by batch in queue order: a batch
  that repeats one is refused with ``DuplicateEnvelope`` and nothing of it is written, exactly
  what the SQLite store's savepoints give.
- Push. The group's transaction sends ``NOTIFY livcr_hub_delivery`` per accepted envelope
  (delivered on COMMIT). ``delivery_notices`` LISTENs on its own connection and yields the
  envelopes other processes accepted; the process that holds a recipient's WebSocket pushes.
- Request nonces. ``claim_nonce`` inserts into ``request_nonces`` (primary key per participant
  and nonce) on a pool whose commits do not wait for the WAL flush: losing the newest nonces in
  a database crash reopens at most the five-minute window, as restarting a hub process does for
  its in-memory cache.
- Schema. ``open`` refuses a database whose schema is not this hub's version; ``migrate``
  (``livcr hub migrate``) brings it there under an advisory lock of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import asyncpg
import structlog

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
from .chunks import ChunkSink, chunk_rows
from .group_commit import GroupCommitter
from .migrations import SCHEMA_VERSION, MigrationReport, migrate_postgres, postgres_version
from .rows import (
    DELIVERY_COLUMNS,
    acceptance_from_row,
    case_from_row,
    case_to_row,
    delivery_from_row,
    inline_chunks,
)

log = structlog.get_logger("livcr.hub.store")

LOG_LOCK = int.from_bytes(b"livcrLOG", "big")  # pg_advisory_xact_lock key of log appends
CASE_REGISTRY_LOCK = int.from_bytes(b"livcrCAS", "big")  # ... of case read-modify-writes
CHANNEL = "livcr_hub_delivery"
NOTIFY_LIMIT = 7900  # PostgreSQL refuses payloads of 8000 bytes or more
COMMAND_TIMEOUT = 60.0  # seconds; a hung database answers 503, not never
RECONNECT_SECONDS = 1.0
# A hub process that stops dead inside a group (frozen, cut off) would hold the log lock and
# stall every process; the server ends such a session after this long.
IDLE_IN_TRANSACTION = "30s"
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

TREE_SIZE = "SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves"
LOCK = "SELECT pg_advisory_xact_lock($1)"
# A group is four round trips: BEGIN and the lock; the log head and what the store already
# holds (a statement of its own, so its snapshot postdates the lock); every write of the group
# in one statement; COMMIT. Each round trip waits for a turn of the busy event loop.
BEGIN_GROUP = f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({LOG_LOCK})"
HEAD = """SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves),
    ARRAY(SELECT EXISTS (SELECT 1 FROM seen s
                         WHERE s.sender_id = k.sender_id AND s.message_id = k.message_id)
          FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS k(sender_id, message_id, n)
          ORDER BY k.n),
    ARRAY(SELECT EXISTS (SELECT 1 FROM envelopes e WHERE e.message_id = k.message_id)
          FROM unnest($2::bytea[]) WITH ORDINALITY AS k(message_id, n) ORDER BY k.n)"""
# All sub-statements see the snapshot taken when the statement starts (they cannot see each
# other's rows): an acknowledged envelope goes when no delivery is left but the ones acked now.
WRITE_GROUP = """WITH
  envelopes_in AS (INSERT INTO envelopes (message_id, sender_id, purpose, case_ref,
    accepted_at, expires_at, leaf_index, blob, size, digest)
    SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[],
                         $5::bigint[], $6::bigint[], $7::bigint[], $8::bytea[],
                         $40::bigint[], $41::bytea[])),
  seen_in AS (INSERT INTO seen (sender_id, message_id, expires_at, leaf_index)
    SELECT * FROM unnest($2::text[], $1::bytea[], $6::bigint[], $7::bigint[])),
  deliveries_in AS (INSERT INTO deliveries (recipient_id, message_id, accepted_at, size)
    SELECT r, m, a, z FROM unnest($9::text[], $10::bytea[], $36::bigint[], $37::bigint[])
    WITH ORDINALITY AS t(r, m, a, z, n) ORDER BY n),
  refusals_in AS (INSERT INTO refusals (at, code)
    SELECT * FROM unnest($38::bigint[], $39::text[])),
  acked AS (DELETE FROM deliveries d USING unnest($11::text[], $12::bytea[]) AS a(r, m)
    WHERE d.recipient_id = a.r AND d.message_id = a.m),
  delivered AS (DELETE FROM envelopes e WHERE e.message_id = ANY($12::bytea[])
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = e.message_id
      AND NOT EXISTS (SELECT 1 FROM unnest($11::text[], $12::bytea[]) AS a(r, m)
                      WHERE a.r = d.recipient_id AND a.m = d.message_id))),
  statements_in AS (INSERT INTO statements (kind, participant_id, signed)
    SELECT k, p, g FROM unnest($13::text[], $14::text[], $15::bytea[]) WITH ORDINALITY
    AS t(k, p, g, n) ORDER BY n),
  prekeys_in AS (INSERT INTO prekeys
    (participant_id, prekey_id, statement, not_before, not_after)
    SELECT * FROM unnest($16::text[], $17::bytea[], $18::bytea[], $19::bigint[], $20::bigint[])
    ON CONFLICT (participant_id, prekey_id) DO NOTHING),
  cases_in AS (INSERT INTO cases
    (case_ref, state, owner, referrer, members, meetings, opened_at, closed_at, purge_after)
    SELECT * FROM unnest($21::text[], $22::text[], $23::text[], $24::text[], $25::text[],
                         $26::text[], $27::bigint[], $28::bigint[], $29::bigint[])
    ON CONFLICT (case_ref) DO UPDATE SET state = excluded.state, owner = excluded.owner,
      referrer = excluded.referrer, members = excluded.members, meetings = excluded.meetings,
      closed_at = excluded.closed_at, purge_after = excluded.purge_after),
  scheduled AS (INSERT INTO purge_queue (case_ref, due_at)
    SELECT c, p FROM unnest($21::text[], $29::bigint[]) AS t(c, p) WHERE p IS NOT NULL
    ON CONFLICT (case_ref) DO UPDATE SET due_at = excluded.due_at),
  unscheduled AS (DELETE FROM purge_queue WHERE case_ref IN
    (SELECT c FROM unnest($21::text[], $29::bigint[]) AS t(c, p) WHERE p IS NULL)),
  leaves_in AS (INSERT INTO leaves (idx, leaf_hash, data, case_ref)
    SELECT * FROM unnest($30::bigint[], $31::bytea[], $32::bytea[], $33::text[]))
SELECT pg_notify($34, p) FROM unnest($35::text[]) AS p"""
CLAIM_NONCE = """INSERT INTO request_nonces (participant_id, nonce, expires_at)
    VALUES ($1, $2, $3) ON CONFLICT (participant_id, nonce)
    DO UPDATE SET expires_at = excluded.expires_at WHERE request_nonces.expires_at <= $4"""
EXPIRE_MARKS = """WITH
  seen_gone AS (DELETE FROM seen WHERE ctid = ANY(ARRAY(SELECT ctid FROM seen
    WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))),
  nonces_gone AS (DELETE FROM request_nonces WHERE ctid = ANY(ARRAY(SELECT ctid
    FROM request_nonces WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)))
SELECT EXISTS (SELECT 1 FROM envelopes WHERE expires_at <= $1)"""
EXPIRE_ENVELOPES = """WITH
  doomed AS (SELECT message_id FROM envelopes WHERE expires_at <= $1
    ORDER BY expires_at LIMIT $2),
  gone AS (DELETE FROM deliveries WHERE message_id IN (SELECT message_id FROM doomed))
DELETE FROM envelopes WHERE message_id IN (SELECT message_id FROM doomed)"""
ANY_DUE = "SELECT EXISTS (SELECT 1 FROM purge_queue WHERE due_at <= $1)"
DUE_PURGES = "SELECT case_ref, due_at FROM purge_queue WHERE due_at <= $1 ORDER BY due_at LIMIT 64"
CASE_COLUMNS = (
    "case_ref, state, owner, referrer, members, meetings, opened_at, closed_at, purge_after"
)
DELIVERY_SELECT = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN envelopes e ON e.message_id = d.message_id"
)
STORED_SELECT = (
    "SELECT d.size, CASE WHEN length(e.blob) > 0 THEN e.blob END FROM deliveries d"
    " JOIN envelopes e ON e.message_id = d.message_id"
    " WHERE d.recipient_id = $1 AND d.message_id = $2"
)
ACCEPTANCE_SELECT = (
    "SELECT s.leaf_index, l.data FROM seen s LEFT JOIN leaves l ON l.idx = s.leaf_index "
    "WHERE s.sender_id = $1 AND s.message_id = $2"
)


class PostgresStore:
    """HubStore on a PostgreSQL database that any number of hub processes may share."""

    def __init__(self, dsn: str, *, pool_size: int = 8) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.origin = uuid.uuid4().hex  # tells this process's notifications from the others'
        self._pool: Any = None
        self._nonce_pool: Any = None
        self._group = GroupCommitter(self._apply_group)
        self._upload_pool: Any = None  # a connection per envelope streamed in (ChunkSink)

    # Lifecycle.
    async def open(self) -> None:
        """Connect and check the schema.

        Raises:
            StoreError: the database is unreachable or its schema is not this hub's version.
        """
        await self._connect()
        try:
            version = await postgres_version(self._pool)
        except DB_ERRORS as exc:
            await self.close()
            raise StoreError(f"postgresql: {exc}") from exc
        if version != SCHEMA_VERSION:
            await self.close()
            raise StoreError(
                f"postgresql store schema is version {version}, this hub needs "
                f"{SCHEMA_VERSION}: run `livcr hub migrate --config ...` first"
            )
        self._group.start()

    async def _connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                command_timeout=COMMAND_TIMEOUT,
                server_settings={"idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION},
                reset=_keep_session,
            )
            self._nonce_pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=max(2, self.pool_size // 2),
                command_timeout=COMMAND_TIMEOUT,
                server_settings={"synchronous_commit": "off"},
                reset=_keep_session,
            )
            self._upload_pool = await asyncpg.create_pool(
                self.dsn,
                min_size=0,
                max_size=max(2, self.pool_size // 2),
                command_timeout=COMMAND_TIMEOUT,
                server_settings={"idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION},
            )
        except (*DB_ERRORS, ValueError) as exc:
            await self.close()
            raise StoreError(f"postgresql: cannot connect: {exc}") from exc

    async def migrate(self) -> MigrationReport:
        """Bring the schema to this hub's version (``livcr hub migrate``); safe to run twice.

        Raises:
            StoreError: unreachable, or the database was written by a newer hub.
        """
        await self._connect()
        try:
            async with self._pool.acquire() as connection:
                return await migrate_postgres(connection)
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc
        finally:
            await self.close()

    async def close(self) -> None:
        await self._group.stop()  # before the pools close
        for pool in (self._pool, self._nonce_pool, self._upload_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._nonce_pool = self._upload_pool = None

    def _require(self) -> Any:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    # Group commit.
    async def commit(self, batch: WriteBatch) -> CommitResult:
        return await self._group.commit(batch)

    async def _apply_group(self, batches: list[WriteBatch]) -> list[CommitResult | BaseException]:
        pool = self._require()
        async with pool.acquire() as connection:
            try:
                await connection.execute(BEGIN_GROUP)
                results = await write_group(connection, batches, self.origin)
                await connection.execute("COMMIT")
            except asyncio.CancelledError:
                connection.terminate()  # the server rolls back; the pool replaces it
                raise
            except BaseException:
                if not connection.is_closed():
                    with contextlib.suppress(*DB_ERRORS):
                        await connection.execute("ROLLBACK")
                raise
        return results

    # Envelopes streamed in and out.
    async def envelope_sink(self, message_id: bytes) -> EnvelopeSink:
        if self._upload_pool is None:
            raise StoreError("store is not open")
        try:
            connection = await self._upload_pool.acquire()
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc
        sink = ChunkSink(connection, self._upload_pool, message_id, self._commit_streamed)
        await sink.begin()
        return sink

    async def _commit_streamed(self, connection: Any, batch: WriteBatch) -> CommitResult:
        """The group commit's writes for one batch, in the sink's own transaction."""
        await connection.execute(LOCK, LOG_LOCK)
        (result,) = await write_group(connection, [batch], self.origin)
        if isinstance(result, BaseException):
            raise result
        await connection.execute("COMMIT")
        return result

    async def stored_envelope(self, recipient_id: str, message_id: bytes) -> StoredEnvelope | None:
        rows = await self._fetch(STORED_SELECT, recipient_id, message_id)
        if not rows:
            return None
        size, inline = int(rows[0][0]), rows[0][1]
        if inline is not None:
            return StoredEnvelope(size, inline_chunks(bytes(inline)))
        pool = self._require()
        return StoredEnvelope(size, lambda start: chunk_rows(pool, message_id, start, DB_ERRORS))

    # Reads.
    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            return list(await self._require().fetch(sql, *args))
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc

    async def _value(self, sql: str, *args: Any) -> Any:
        try:
            return await self._require().fetchval(sql, *args)
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc

    async def statements(self) -> list[tuple[str, str, bytes]]:
        rows = await self._fetch("SELECT kind, participant_id, signed FROM statements ORDER BY seq")
        return [(str(kind), str(pid), bytes(signed)) for kind, pid, signed in rows]

    async def prekeys(self, participant_ids: Sequence[str], now: int) -> dict[str, list[bytes]]:
        found: dict[str, list[bytes]] = {pid: [] for pid in participant_ids}
        if not participant_ids:
            return found
        rows = await self._fetch(
            "SELECT participant_id, statement FROM prekeys WHERE participant_id = ANY($1::text[]) "
            "AND not_before <= $2 AND $2 < not_after ORDER BY not_before DESC",
            list(participant_ids),
            now,
        )
        for pid, statement in rows:
            found[pid].append(bytes(statement))
        return found

    @contextlib.asynccontextmanager
    async def case_registry_lock(self) -> AsyncIterator[None]:
        """A transaction-scoped advisory lock, held on a connection of its own while the caller
        reads, decides and commits through others: released at COMMIT, on an error or
        cancellation (the transaction rolls back), and by the server if this process dies."""
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(LOCK, CASE_REGISTRY_LOCK)
                yield
        except DB_ERRORS as exc:
            raise StoreError(str(exc)) from exc

    async def case(self, case_ref: str) -> CaseRecord | None:
        rows = await self._fetch(
            f"SELECT {CASE_COLUMNS} FROM cases WHERE case_ref = $1",
            case_ref,
        )
        return case_from_row(rows[0]) if rows else None

    async def cases(self) -> list[CaseRecord]:
        rows = await self._fetch(f"SELECT {CASE_COLUMNS} FROM cases ORDER BY case_ref")
        return [case_from_row(r) for r in rows]

    async def pending(self, recipient_id: str, after_seq: int, limit: int) -> list[DeliveryRecord]:
        rows = await self._fetch(
            f"{DELIVERY_SELECT} WHERE d.recipient_id = $1 AND d.seq > $2 ORDER BY d.seq LIMIT $3",
            recipient_id,
            after_seq,
            limit,
        )
        return [delivery_from_row(r) for r in rows]

    async def delivery(self, recipient_id: str, message_id: bytes) -> DeliveryRecord | None:
        rows = await self._fetch(
            f"{DELIVERY_SELECT} WHERE d.recipient_id = $1 AND d.message_id = $2",
            recipient_id,
            message_id,
        )
        return delivery_from_row(rows[0]) if rows else None

    async def pending_in_case(self, recipient_id: str, case_ref: str) -> list[bytes]:
        rows = await self._fetch(
            "SELECT d.message_id FROM deliveries d JOIN envelopes e"
            " ON e.message_id = d.message_id WHERE d.recipient_id = $1 AND e.case_ref = $2"
            " ORDER BY d.seq",
            recipient_id,
            case_ref,
        )
        return [bytes(r[0]) for r in rows]

    async def pending_by_age(self, now: int) -> dict[str, int]:
        rows = await self._fetch(PENDING_BY_AGE.format(now="$1::bigint"), now)
        return dict.fromkeys(AGE_BUCKETS, 0) | {age: int(n) for age, n in rows}

    async def purged_cases(self, now: int) -> int:
        return int(await self._value(PURGED_CASES.format(now="$1::bigint"), now))

    async def probe_write(self, now: int) -> None:
        try:
            await self._require().execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', $1)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                str(now),
            )
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc

    async def accepted_before(self, sender_id: str, message_id: bytes) -> Acceptance | None:
        rows = await self._fetch(ACCEPTANCE_SELECT, sender_id, message_id)
        return acceptance_from_row(rows[0]) if rows else None

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = await self._fetch(
            "SELECT leaf_hash FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx", start, end
        )
        return [bytes(r[0]) for r in rows]

    async def leaves(
        self, start: int, end: int, case_ref: str | None = None
    ) -> list[tuple[int, bytes, bytes | None]]:
        sql = "SELECT idx, leaf_hash, data FROM leaves WHERE idx >= $1 AND idx < $2"
        args: list[Any] = [start, end]
        if case_ref is not None:
            sql += " AND case_ref = $3"
            args.append(case_ref)
        rows = await self._fetch(sql + " ORDER BY idx", *args)
        return [(int(i), bytes(h), None if d is None else bytes(d)) for i, h, d in rows]

    async def tree_size(self) -> int:
        return int(await self._value(TREE_SIZE))

    async def checkpoints(self) -> list[tuple[int, bytes]]:
        rows = await self._fetch("SELECT size, note FROM checkpoints ORDER BY size")
        return [(int(size), bytes(note)) for size, note in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self._fetch(
            "SELECT (SELECT COUNT(*) FROM envelopes), (SELECT COUNT(*) FROM deliveries), "
            f"({TREE_SIZE}), (SELECT COUNT(*) FROM statements), (SELECT COUNT(*) FROM cases)"
        )
        names = ("envelopes", "deliveries_pending", "log_size", "statements", "cases")
        return {name: int(value) for name, value in zip(names, rows[0], strict=True)}

    # Writes outside the group commit.
    async def operator_rows(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._fetch(_numbered(sql), *params)]

    async def save_checkpoint(self, size: int, note: bytes) -> None:
        try:
            await self._require().execute(
                "INSERT INTO checkpoints (size, note) VALUES ($1, $2) "
                "ON CONFLICT (size) DO NOTHING",
                size,
                note,
            )
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc

    async def claim_nonce(
        self, participant_id: str, nonce: bytes, expires_at: int, now: int
    ) -> None:
        if self._nonce_pool is None:
            raise StoreError("store is not open")
        try:
            status = await self._nonce_pool.execute(
                CLAIM_NONCE, participant_id, nonce, expires_at, now
            )
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc
        if status == "INSERT 0 0":
            raise Replayed(f"request nonce of {participant_id} was used before")

    async def _locked(self, work: Any) -> int:
        """Run ``work(connection)`` in a transaction holding the log lock (see module doc)."""
        try:
            async with self._require().acquire() as connection, connection.transaction():
                await connection.execute(LOCK, LOG_LOCK)
                return int(await work(connection))
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc

    async def delete_expired(self, now: int, limit: int) -> int:
        # Seen pairs and request nonces past expiry: no lock (SKIP LOCKED keeps two processes
        # from fighting over the same rows), and one round trip that also says whether any
        # envelope expired. Envelopes go under the log lock, like acknowledgements, so the two
        # never wait on each other's rows.
        try:
            any_expired = await self._require().fetchval(EXPIRE_MARKS, now, limit)
        except DB_ERRORS as exc:
            raise StoreError(f"postgresql: {exc}") from exc
        if not any_expired:
            return 0

        async def work(c: Any) -> int:
            return _count(await c.execute(EXPIRE_ENVELOPES, now, limit))

        return await self._locked(work)

    async def purge_case(self, case_ref: str, limit: int) -> int:
        async def work(c: Any) -> int:
            return (await _purge(c, case_ref, limit))[0]

        return await self._locked(work)

    async def purge_due(self, now: int, limit: int) -> int:
        if not await self._value(ANY_DUE, now):
            return 0  # the usual answer, without taking the lock

        async def work(c: Any) -> int:
            removed = 0
            for case_ref, due_at in await c.fetch(DUE_PURGES, now):
                if removed >= limit:
                    break
                done, finished = await _purge(c, case_ref, limit - removed)
                removed += done
                if finished:  # nothing of the case is left: off the schedule
                    await c.execute(
                        "DELETE FROM purge_queue WHERE case_ref = $1 AND due_at = $2",
                        case_ref,
                        due_at,
                    )
            if removed:  # the console's retention page: when, and how many rows (no names)
                await c.execute("INSERT INTO purges (at, removed) VALUES ($1, $2)", now, removed)
            return removed

        return await self._locked(work)

    # Cross-process push.
    def delivery_notices(self) -> AsyncGenerator[DeliveryNotice, None]:
        return self._listen()

    async def _listen(self) -> AsyncGenerator[DeliveryNotice, None]:
        """LISTEN on a connection of its own; reconnect when it drops (notices in between are
        lost: the envelopes stay queued, and a gateway fetches its inbox when it reconnects)."""
        queue: asyncio.Queue[DeliveryNotice | None] = asyncio.Queue()  # None: connection lost

        def received(_c: object, _pid: int, _channel: str, payload: str) -> None:
            notice = self._parse_notice(payload)
            if notice is not None:
                queue.put_nowait(notice)

        while True:
            # One try for the whole life of the connection: a cancellation while LISTEN is on
            # its way (a hub stopping just after it started) must not leave the connection open.
            connection = None
            try:
                connection = await asyncpg.connect(self.dsn)
                connection.add_termination_listener(lambda _c: queue.put_nowait(None))
                await connection.add_listener(CHANNEL, received)
                while (notice := await queue.get()) is not None:
                    yield notice
                log.warning("push listener lost its connection; reconnecting")
            except DB_ERRORS as exc:
                log.warning("push listener cannot connect", error=str(exc))
            finally:
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)

    def _parse_notice(self, payload: str) -> DeliveryNotice | None:
        origin, _, rest = payload.partition("|")
        message_hex, _, recipients = rest.partition("|")
        if origin == self.origin or not recipients:
            return None  # this process pushed its own envelopes already
        try:
            message_id = bytes.fromhex(message_hex)
        except ValueError:
            return None
        return DeliveryNotice(message_id, tuple(recipients.split(",")))


async def _keep_session(_connection: Any) -> None:
    """What the pool runs when a connection comes back: nothing. asyncpg's default (RESET ALL,
    UNLISTEN *, unlock all advisory locks, CLOSE ALL) costs a round trip per query, and this
    store leaves no session state behind: its locks are transaction-scoped, it never LISTENs or
    SETs on pooled connections, and the pool still rolls back a transaction left open."""


def _replays(
    batches: list[WriteBatch],
    keys: list[tuple[str, bytes]],
    in_seen: Sequence[bool],
    in_queue: Sequence[bool],
) -> dict[int, BaseException]:
    """Batches that repeat an envelope the store (or an earlier batch of the group) holds,
    decided in queue order as the SQLite store's savepoints decide them."""
    seen = {key for key, known in zip(keys, in_seen, strict=True) if known}
    queued = {key[1] for key, known in zip(keys, in_queue, strict=True) if known}
    refused: dict[int, BaseException] = {}
    for i, batch in enumerate(batches):
        for position, env in enumerate(batch.envelopes):
            earlier = {e.message_id for e in batch.envelopes[:position]}
            if (
                (env.sender_id, env.message_id) in seen
                or env.message_id in queued
                or env.message_id in earlier
            ):
                refused[i] = DuplicateEnvelope(
                    f"message {env.message_id.hex()} from {env.sender_id} was accepted before"
                )
                break
        else:
            seen.update((e.sender_id, e.message_id) for e in batch.envelopes)
            queued.update(e.message_id for e in batch.envelopes)
    return refused


async def write_group(
    connection: Any, batches: list[WriteBatch], origin: str
) -> list[CommitResult | BaseException]:
    """Inside a transaction holding the log lock: decide the replays, number the leaves and
    write every accepted batch in one statement (WRITE_GROUP)."""
    keys = [(e.sender_id, e.message_id) for b in batches for e in b.envelopes]
    size, in_seen, in_queue = await connection.fetchrow(
        HEAD, [k for k, _ in keys], [m for _, m in keys]
    )
    refused = _replays(batches, keys, in_seen, in_queue)
    indexes: dict[int, tuple[int, ...]] = {}
    for i, batch in enumerate(batches):
        if i not in refused:
            indexes[i] = tuple(range(size, size + len(batch.leaves)))
            size += len(batch.leaves)
    live = [(batches[i], indexes[i]) for i in sorted(indexes)]
    await connection.execute(WRITE_GROUP, *_group_arguments(live, origin))
    return [
        refused[i] if i in refused else CommitResult(indexes[i], size) for i in range(len(batches))
    ]


def _group_arguments(live: list[tuple[WriteBatch, tuple[int, ...]]], origin: str) -> list[Any]:
    """The 41 arrays WRITE_GROUP takes, from the accepted batches in queue order."""
    envelopes: list[tuple[NewEnvelope, int]] = []
    leaves: list[tuple[Any, ...]] = []
    for batch, indexes in live:
        for position, env in enumerate(batch.envelopes):
            envelopes.append((env, indexes[position] if position < len(indexes) else -1))
        leaves += [
            (i, leaf.leaf_hash, leaf.data, leaf.case_ref)
            for i, leaf in zip(indexes, batch.leaves, strict=True)
        ]
    batches = [batch for batch, _ in live]
    # A case upserted twice in one group: its last record is the one a sequence would leave.
    cases = {case.case_ref: case for batch in batches for case in batch.cases}
    return [
        *_columns([_envelope_row(e, i) for e, i in envelopes], 8),
        *_columns([(r, e.message_id) for e, _ in envelopes for r in e.recipients], 2),
        *_columns([ack for batch in batches for ack in batch.acks], 2),
        *_columns([s for batch in batches for s in batch.statements], 3),
        *_columns([p for batch in batches for p in batch.prekeys], 5),
        *_columns([case_to_row(case) for case in cases.values()], 9),
        *_columns(leaves, 4),
        CHANNEL,
        [p for e, _ in envelopes for p in _notice_payloads(origin, e)],
        *_columns([(e.accepted_at, e.size) for e, _ in envelopes for _ in e.recipients], 2),
        *_columns([r for batch in batches for r in batch.refusals], 2),
        *_columns([(e.size, e.digest) for e, _ in envelopes], 2),
    ]


async def _purge(c: Any, case_ref: str, limit: int) -> tuple[int, bool]:
    """Delete a case's envelopes, then null its leaves' data: ``limit`` rows at most.

    Returns the rows removed and whether nothing of the case is left.
    """
    envelopes = _count(
        await c.execute(
            "WITH doomed AS (SELECT message_id FROM envelopes WHERE case_ref = $1 LIMIT $2), "
            "gone AS (DELETE FROM deliveries WHERE message_id IN (SELECT message_id FROM doomed)) "
            "DELETE FROM envelopes WHERE message_id IN (SELECT message_id FROM doomed)",
            case_ref,
            limit,
        )
    )
    if envelopes == limit:
        return envelopes, False
    budget = limit - envelopes
    leaves = _count(
        await c.execute(
            "UPDATE leaves SET data = NULL WHERE idx IN (SELECT idx FROM leaves "
            "WHERE case_ref = $1 AND data IS NOT NULL LIMIT $2)",
            case_ref,
            budget,
        )
    )
    return envelopes + leaves, leaves < budget


def _notice_payloads(origin: str, envelope: NewEnvelope) -> list[str]:
    """``origin|message id|r1,r2,...``, split so that no payload passes NOTIFY's limit."""
    head = f"{origin}|{envelope.message_id.hex()}|"
    payloads: list[str] = []
    chunk: list[str] = []
    length = len(head)
    for recipient in envelope.recipients:
        if chunk and length + len(recipient) + 1 > NOTIFY_LIMIT:
            payloads.append(head + ",".join(chunk))
            chunk, length = [], len(head)
        chunk.append(recipient)
        length += len(recipient) + 1
    if chunk:
        payloads.append(head + ",".join(chunk))
    return payloads


def _numbered(sql: str) -> str:
    """Portable ``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (no other ``?`` in the text)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column, the arrays ``unnest`` takes."""
    return [[row[k] for row in rows] for k in range(width)] if rows else [[] for _ in range(width)]


def _count(status: str) -> int:
    """Rows a command touched, from its status tag ("DELETE 3", "UPDATE 0")."""
    return int(status.rsplit(" ", 1)[-1])


def _envelope_row(env: NewEnvelope, leaf_index: int) -> tuple[Any, ...]:
    return (
        env.message_id,
        env.sender_id,
        env.purpose,
        env.case_ref,
        env.accepted_at,
        env.expires_at,
        leaf_index,
        env.blob,
    )
