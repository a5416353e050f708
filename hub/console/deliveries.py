"""The operator's side of stuck deliveries: list a participant's queue, drop one with a reason.

A drop removes the envelope from that recipient's queue (and the envelope itself once no other
recipient waits for it) and appends a ``delivery dropped`` leaf (spec §10.4), in one commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from livcr_exchange.audit.leaves import DeliveryDropped, DropReason, envelope_hash

from ..operations import pending_leaf
from ..store.base import HubStore, WriteBatch
from . import queries

log = structlog.get_logger("livcr.hub.operator")

_TARGET = """SELECT d.message_id, e.blob, e.case_ref FROM deliveries d
    JOIN envelopes e ON e.message_id = d.message_id WHERE d.recipient_id = ? AND d.seq = ?"""


class NoSuchDelivery(Exception):
    """No delivery with that number waits for that participant (delivered or dropped)."""


@dataclass(frozen=True)
class Dropped:
    leaf_index: int
    size: int


async def list_queue(
    store: HubStore, participant_id: str, limit: int
) -> list[queries.QueuedDelivery]:
    """The participant's oldest pending deliveries, oldest first."""
    return await queries.oldest(store, participant_id, limit)


async def drop(
    store: HubStore, participant_id: str, seq: int, reason: DropReason, *, now: int, operator: str
) -> Dropped:
    """Drop delivery ``seq`` of ``participant_id`` and log it.

    Raises:
        NoSuchDelivery: it is not (or no longer) in the participant's queue.
        StoreError: the store failed; nothing was dropped.
    """
    rows = await store.operator_rows(_TARGET, (participant_id, seq))
    if not rows:
        raise NoSuchDelivery(f"no delivery {seq} waits for {participant_id}")
    message_id, blob, case_ref = bytes(rows[0][0]), bytes(rows[0][1]), str(rows[0][2])
    leaf = DeliveryDropped(now, message_id, participant_id, envelope_hash(blob), len(blob), reason)
    result = await store.commit(
        WriteBatch(acks=[(participant_id, message_id)], leaves=[pending_leaf(leaf, case_ref)])
    )
    log.info(
        "delivery dropped",
        participant=participant_id,
        delivery=seq,
        reason=reason.value,
        operator=operator,
        leaf_index=result.leaf_indexes[0],
    )
    return Dropped(result.leaf_indexes[0], len(blob))
