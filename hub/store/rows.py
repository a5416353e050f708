"""Rows of the hub's tables as the store records, alike for every store (SQLite, PostgreSQL).

Members and meetings are JSON text, sorted, so a record is stored the same whoever wrote it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from livcr_exchange.audit.leaves import envelope_hash

from .base import Acceptance, CaseRecord, DeliveryRecord


def case_to_row(case: CaseRecord) -> tuple[Any, ...]:
    meetings = {ref: sorted(present) for ref, present in sorted(case.meetings.items())}
    return (
        case.case_ref,
        case.state,
        case.owner,
        case.referrer,
        json.dumps(sorted(case.members)),
        json.dumps(meetings),
        case.opened_at,
        case.closed_at,
        case.purge_after,
    )


def case_from_row(row: Sequence[Any]) -> CaseRecord:
    ref, state, owner, referrer, members, meetings, opened_at, closed_at, purge_after = row
    return CaseRecord(
        ref,
        state,
        owner,
        referrer,
        frozenset(json.loads(members)),
        {k: frozenset(v) for k, v in json.loads(meetings).items()},
        opened_at,
        closed_at,
        purge_after,
    )


INLINE_PIECE = 256 * 1024

# A delivery's row and its envelope's digest. An envelope stored before schema 6 has no digest
# column yet: its bytes are still in its row (small, as requests were), and hashed when read.
DELIVERY_COLUMNS = (
    "d.seq, d.message_id, d.recipient_id, e.accepted_at, e.leaf_index, d.size, e.digest,"
    " CASE WHEN e.digest IS NULL THEN e.blob END"
)


def delivery_from_row(row: Sequence[Any]) -> DeliveryRecord:
    seq, message_id, recipient_id, accepted_at, leaf_index, size, digest, blob = row
    return DeliveryRecord(
        int(seq),
        bytes(message_id),
        recipient_id,
        int(accepted_at),
        int(leaf_index),
        int(size),
        envelope_hash(bytes(blob)) if digest is None else bytes(digest),
    )


def acceptance_from_row(row: Sequence[Any]) -> Acceptance:
    leaf_index, leaf_data = row
    return Acceptance(
        None if leaf_index is None else int(leaf_index),
        None if leaf_data is None else bytes(leaf_data),
    )


def inline_chunks(blob: bytes) -> Callable[[int], AsyncIterator[bytes]]:
    """Pieces of an envelope kept in its row (a small one, or one stored before schema 6)."""

    async def chunks(start: int) -> AsyncIterator[bytes]:
        for offset in range(start, len(blob), INLINE_PIECE):
            yield blob[offset : offset + INLINE_PIECE]

    return chunks
