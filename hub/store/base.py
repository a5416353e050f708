"""The store interface every hub backend implements, and the records it speaks in.

Writes are grouped: a request builds a ``WriteBatch`` (rows to insert, leaves to append) and
hands it to ``HubStore.commit``; the backend commits many batches in one transaction, so
throughput does not pay one fsync per message, and returns only once the transaction is durable.
Leaves get their log index inside that transaction, so the log has one order even when several
hub processes share a database.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from livcr_exchange.errors import Replayed


class StoreError(Exception):
    """The backend failed (disk full, database gone). Not a client's fault: answered with 503."""


@dataclass(frozen=True)
class PendingLeaf:
    """A leaf to append; ``data`` is the canonical leaf encoding (livcr_exchange.audit.leaves).

    ``case_ref`` is kept beside the leaf (not in the tree) to filter audit exports and to find
    the leaves whose data retention deletes when the case's period ends.
    """

    data: bytes
    leaf_hash: bytes
    case_ref: str | None = None


@dataclass(frozen=True)
class NewEnvelope:
    """An accepted envelope's row. ``blob`` holds the envelope when it travelled whole in one
    small request; it is empty when its bytes were streamed to the store's out-of-line storage
    (an envelope sink: a file beside SQLite, chunk rows in PostgreSQL)."""

    message_id: bytes
    sender_id: str
    purpose: str
    case_ref: str
    recipients: tuple[str, ...]
    accepted_at: int
    expires_at: int
    size: int
    digest: bytes  # the envelope hash (spec §10.4): what delivery receipts and drops name
    blob: bytes = b""


@dataclass(frozen=True)
class CaseRecord:
    case_ref: str
    state: str
    owner: str | None
    referrer: str | None
    members: frozenset[str]
    meetings: dict[str, frozenset[str]]  # meeting_ref -> present
    opened_at: int
    closed_at: int | None
    purge_after: int | None


@dataclass(frozen=True)
class DeliveryRecord:
    """One envelope waiting for one recipient: a notice of it, never its bytes."""

    seq: int
    message_id: bytes
    recipient_id: str
    accepted_at: int
    leaf_index: int
    size: int
    digest: bytes  # the envelope hash


@dataclass(frozen=True)
class StoredEnvelope:
    """A queued envelope's bytes, read piece by piece (never whole) from ``start``."""

    size: int
    chunks: Callable[[int], AsyncIterator[bytes]]


class EnvelopeSink(Protocol):
    """Where a streamed envelope's bytes go as they arrive, before it is accepted.

    Nothing written is visible (no row, no delivery) until ``commit``, which makes the bytes
    durable together with the batch that accepts the envelope; ``discard`` (idempotent, a
    no-op after a commit) removes whatever was written, so a refused or broken upload leaves
    nothing behind, nor does a crash (the store clears leftovers when it opens).
    """

    async def write(self, data: bytes) -> None: ...

    async def commit(self, batch: WriteBatch) -> CommitResult:
        """Commit ``batch`` (whose one envelope is this sink's) with the bytes written.

        Raises:
            DuplicateEnvelope: the envelope was accepted before; nothing is kept.
        """
        ...

    async def discard(self) -> None: ...


@dataclass(frozen=True)
class Acceptance:
    """What the store remembers of the envelope it accepted under one (sender, message id).

    ``leaf_data`` is that envelope's "envelope accepted" leaf; None when the store kept no log
    index for the pair (accepted before schema 3, its envelope no longer queued) or retention
    has deleted the leaf's data since (spec §10.5).
    """

    leaf_index: int | None
    leaf_data: bytes | None


@dataclass
class WriteBatch:
    """Everything one request writes, committed atomically with the rest of its group.

    ``conflict`` decides what a unique-key clash means: for an envelope, a replay.
    """

    envelopes: list[NewEnvelope] = field(default_factory=list)
    acks: list[tuple[str, bytes]] = field(default_factory=list)  # (recipient, message id)
    statements: list[tuple[str, str, bytes]] = field(default_factory=list)  # kind, pid, signed
    prekeys: list[tuple[str, bytes, bytes, int, int]] = field(default_factory=list)
    cases: list[CaseRecord] = field(default_factory=list)  # upserts, whole record
    leaves: list[PendingLeaf] = field(default_factory=list)
    refusals: list[tuple[int, str]] = field(default_factory=list)  # (at, code): no content


AGE_BUCKETS = ("under_1m", "under_1h", "under_1d", "over_1d")
PENDING_BY_AGE = """SELECT CASE WHEN {now} - e.accepted_at < 60 THEN 'under_1m'
    WHEN {now} - e.accepted_at < 3600 THEN 'under_1h'
    WHEN {now} - e.accepted_at < 86400 THEN 'under_1d' ELSE 'over_1d' END AS age, COUNT(*)
    FROM deliveries d JOIN envelopes e ON e.message_id = d.message_id GROUP BY age"""
PURGED_CASES = """SELECT COUNT(*) FROM cases c WHERE c.purge_after IS NOT NULL
    AND c.purge_after <= {now} AND NOT EXISTS
    (SELECT 1 FROM purge_queue q WHERE q.case_ref = c.case_ref)"""


@dataclass(frozen=True)
class CommitResult:
    """Where this batch's leaves landed and how large the log was after the group commit."""

    leaf_indexes: tuple[int, ...]
    tree_size: int


@dataclass(frozen=True)
class DeliveryNotice:
    """Another hub process sharing the store accepted an envelope for these recipients."""

    message_id: bytes
    recipients: tuple[str, ...]


class DuplicateEnvelope(Replayed):
    """An envelope with this (sender, message id) was accepted before (code ``replayed``)."""


class HubStore(Protocol):
    """Durable hub state. Every method may raise StoreError."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def commit(self, batch: WriteBatch) -> CommitResult:
        """Commit ``batch`` durably (grouped with concurrent batches).

        Raises:
            DuplicateEnvelope: one of its envelopes was seen before; nothing of the batch is kept.
        """
        ...

    async def statements(self) -> list[tuple[str, str, bytes]]:
        """All directory statements (kind "entry" or "revocation", participant, signed bytes)."""
        ...

    async def prekeys(self, participant_ids: Sequence[str], now: int) -> dict[str, list[bytes]]:
        """Signed prekey statements valid at ``now``, per participant, newest first."""
        ...

    def case_registry_lock(self) -> AbstractAsyncContextManager[None]:
        """Held around a read-modify-write of case records, by every process on this store.

        A case record is read, changed and written back whole; two hub processes doing that at
        once would each write back what they read, and one change would vanish.
        """
        ...

    async def case(self, case_ref: str) -> CaseRecord | None: ...

    async def cases(self) -> list[CaseRecord]: ...

    async def pending(self, recipient_id: str, after_seq: int, limit: int) -> list[DeliveryRecord]:
        """Up to ``limit`` envelopes waiting for ``recipient_id`` with seq > ``after_seq``."""
        ...

    async def delivery(self, recipient_id: str, message_id: bytes) -> DeliveryRecord | None: ...

    async def stored_envelope(self, recipient_id: str, message_id: bytes) -> StoredEnvelope | None:
        """The bytes of the envelope queued for ``recipient_id`` under ``message_id``; None
        when no such delivery waits."""
        ...

    async def envelope_sink(self, message_id: bytes) -> EnvelopeSink:
        """Storage for the bytes of a streamed envelope (see ``EnvelopeSink``)."""
        ...

    async def pending_in_case(self, recipient_id: str, case_ref: str) -> list[bytes]:
        """The message ids of the case's envelopes still waiting for ``recipient_id``."""
        ...

    async def accepted_before(self, sender_id: str, message_id: bytes) -> Acceptance | None:
        """The envelope accepted from ``sender_id`` under ``message_id``, while the pair is
        remembered (spec §9.3: at least until its expiry); None when it is not."""
        ...

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes for indexes [start, end)."""
        ...

    async def leaves(
        self, start: int, end: int, case_ref: str | None = None
    ) -> list[tuple[int, bytes, bytes | None]]:
        """(index, hash, data or None after retention) for [start, end), optionally one case's."""
        ...

    async def tree_size(self) -> int: ...

    async def save_checkpoint(self, size: int, note: bytes) -> None:
        """Keep a signed checkpoint (the first one stored for a size wins)."""
        ...

    async def checkpoints(self) -> list[tuple[int, bytes]]: ...

    async def delete_expired(self, now: int, limit: int) -> int:
        """Delete up to ``limit`` envelopes past expiry, their deliveries and seen rows."""
        ...

    async def purge_case(self, case_ref: str, limit: int) -> int:
        """Delete up to ``limit`` envelopes and leaf data of a case; return how many rows went."""
        ...

    async def purge_due(self, now: int, limit: int) -> int:
        """One bounded round of retention: purge cases whose scheduled purge is due at ``now``.

        Closing a case schedules its purge (the case record's ``purge_after``); a case leaves
        the schedule once nothing of it is left. Returns the rows removed (at most about
        ``limit``), so a caller repeats while it gets ``limit`` back.
        """
        ...

    async def probe_write(self, now: int) -> None:
        """Commit one small write (the time of this probe, in ``meta``): whether the store can
        commit at all, for /readyz.

        Raises:
            StoreError: it cannot (disk full, read-only, unreachable).
        """
        ...

    async def claim_nonce(
        self, participant_id: str, nonce: bytes, expires_at: int, now: int
    ) -> None:
        """Record a request-signature nonce durably, for every hub process that shares this
        store and for this one after a restart (a request replayed then is refused too).

        Raises:
            Replayed: another process (or this one) took the nonce and it has not expired.
        """
        ...

    def delivery_notices(self) -> AsyncGenerator[DeliveryNotice, None] | None:
        """Envelopes other hub processes accepted, as they commit; None for a one-process store."""
        ...

    async def counts(self) -> dict[str, int]:
        """Queue depths and sizes for `livcr hub status` and /metrics."""
        ...

    async def operator_rows(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Rows of a read-only query of the operator's console (hub/console/queries.py).

        ``sql`` is constant text in portable SQL with ``?`` placeholders; every value is a
        bound parameter.
        """
        ...

    async def pending_by_age(self, now: int) -> dict[str, int]:
        """Deliveries waiting, by how long ago their envelope was accepted: ``under_1m``,
        ``under_1h``, ``under_1d``, ``over_1d`` (every bucket present, zeros included)."""
        ...

    async def purged_cases(self, now: int) -> int:
        """Cases whose retention purge is done (closed, due, and off the purge schedule)."""
        ...
