"""The operator's side of stuck deliveries: list a participant's queue, drop one with a reason.

A drop removes the envelope from that recipient's queue (and the envelope itself, its file or
chunk rows included, once no other recipient waits for it) and appends a ``delivery dropped``
leaf (spec §10.4), in one commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import structlog

from livcr_exchange.audit.leaves import LEAF_SALT_BYTES, DeliveryDropped, DropReason

from ..operations import pending_leaf
from ..store.base import HubStore, WriteBatch
from ..store.rows import DELIVERY_COLUMNS, delivery_from_row
from . import queries

log = structlog.get_logger("livcr.hub.operator")

# Constant text: DELIVERY_COLUMNS is a column list, no value is formatted in.
_TARGET = f"""SELECT {DELIVERY_COLUMNS}, e.case_ref FROM deliveries d
    JOIN envelopes e ON e.message_id = d.message_id
    WHERE d.recipient_id = ? AND d.seq = ?"""  # noqa: S608


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
    record, case_ref = delivery_from_row(rows[0][:-1]), str(rows[0][-1])
    message_id = record.message_id
    salt = secrets.token_bytes(LEAF_SALT_BYTES)  # fresh for every leaf (spec §10.4)
    leaf = DeliveryDropped(
        now, salt, message_id, participant_id, record.digest, record.size, reason
    )
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
    return Dropped(result.leaf_indexes[0], record.size)
