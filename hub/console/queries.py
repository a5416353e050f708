"""The console's reads of the store: counts, ages and sizes only, each on an index.

Every query is portable SQL with ``?`` placeholders, run by ``HubStore.operator_rows`` on both
stores. None of them selects a message id, a case reference or content.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store.base import HubStore

HOUR = 3600
DAY = 86_400
WEEK = 7 * DAY

# Per recipient: the hourly counts kept by the store's triggers (migration 4), the oldest
# delivery by an index seek, and how many wait longer than each age, in whole hours before the
# age's hour. The rows of the hour an age falls in are then counted one by one (_BOUNDARY).
_QUEUES = """SELECT h.recipient_id, SUM(h.deliveries), SUM(h.bytes),
    (SELECT MIN(d.accepted_at) FROM deliveries d WHERE d.recipient_id = h.recipient_id),
    SUM(CASE WHEN h.hour < ? THEN h.deliveries ELSE 0 END),
    SUM(CASE WHEN h.hour < ? THEN h.deliveries ELSE 0 END),
    SUM(CASE WHEN h.hour < ? THEN h.deliveries ELSE 0 END)
    FROM delivery_hours h GROUP BY h.recipient_id ORDER BY h.recipient_id"""
_BOUNDARY = """SELECT recipient_id, COUNT(*) FROM deliveries
    WHERE accepted_at >= ? AND accepted_at <= ? GROUP BY recipient_id"""
_OLDEST = """SELECT seq, accepted_at, size FROM deliveries WHERE recipient_id = ?
    ORDER BY accepted_at, seq LIMIT ?"""
_REFUSALS = """SELECT at / ?, code, COUNT(*) FROM refusals WHERE at >= ?
    GROUP BY 1, 2 ORDER BY 1, 2"""
_REFUSALS_SINCE = "SELECT COUNT(*) FROM refusals WHERE at >= ?"
_PURGE_QUEUE = """SELECT COUNT(*), MIN(due_at),
    SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END),
    SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END),
    SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END)
    FROM purge_queue"""
_LAST_PURGE = "SELECT at, removed FROM purges ORDER BY seq DESC LIMIT 1"
_PURGES_SINCE = "SELECT COUNT(*), COALESCE(SUM(removed), 0) FROM purges WHERE at >= ?"
_CHECKPOINTS = "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT ?"
_PENDING = "SELECT COALESCE(SUM(deliveries), 0) FROM delivery_hours"


@dataclass(frozen=True)
class Queue:
    """One recipient's pending deliveries: how many, how large, how old."""

    participant_id: str
    count: int
    size: int
    oldest_at: int
    older_than_hour: int
    older_than_day: int
    older_than_week: int


@dataclass(frozen=True)
class QueuedDelivery:
    seq: int  # the delivery's row number: what the drop action names (not the message id)
    accepted_at: int
    size: int


@dataclass(frozen=True)
class Retention:
    scheduled: int  # cases whose purge is scheduled
    next_due_at: int | None
    due_now: int
    due_week: int
    due_month: int
    last_purge_at: int | None
    last_purge_rows: int
    rounds_month: int
    rows_month: int


async def pending_total(store: HubStore) -> int:
    rows = await store.operator_rows(_PENDING, ())
    return int(rows[0][0])


async def queues(store: HubStore, now: int) -> dict[str, Queue]:
    """Every recipient with pending deliveries: its count, bytes, oldest and ages (exact)."""
    ages = (now - HOUR, now - DAY, now - WEEK)
    hours = [age // HOUR for age in ages]
    rows = await store.operator_rows(_QUEUES, hours)
    older = {str(r[0]): [int(r[4]), int(r[5]), int(r[6])] for r in rows}
    for n, (age, hour) in enumerate(zip(ages, hours, strict=True)):
        for pid, count in await store.operator_rows(_BOUNDARY, (hour * HOUR, age)):
            if str(pid) in older:
                older[str(pid)][n] += int(count)
    return {
        str(r[0]): Queue(str(r[0]), int(r[1]), int(r[2]), int(r[3]), *older[str(r[0])])
        for r in rows
        if int(r[1]) > 0
    }


async def oldest(store: HubStore, participant_id: str, limit: int) -> list[QueuedDelivery]:
    rows = await store.operator_rows(_OLDEST, (participant_id, limit))
    return [QueuedDelivery(int(r[0]), int(r[1]), int(r[2])) for r in rows]


async def refusals(store: HubStore, since: int, bucket: int) -> list[tuple[int, str, int]]:
    """(bucket start time, code, count) from ``since`` on, in buckets of ``bucket`` seconds."""
    rows = await store.operator_rows(_REFUSALS, (bucket, since))
    return [(int(r[0]) * bucket, str(r[1]), int(r[2])) for r in rows]


async def refusals_since(store: HubStore, since: int) -> int:
    rows = await store.operator_rows(_REFUSALS_SINCE, (since,))
    return int(rows[0][0])


async def retention(store: HubStore, now: int) -> Retention:
    queue = (await store.operator_rows(_PURGE_QUEUE, (now, now + WEEK, now + 30 * DAY)))[0]
    last = await store.operator_rows(_LAST_PURGE, ())
    month = (await store.operator_rows(_PURGES_SINCE, (now - 30 * DAY,)))[0]
    return Retention(
        scheduled=int(queue[0]),
        next_due_at=None if queue[1] is None else int(queue[1]),
        due_now=int(queue[2] or 0),
        due_week=int(queue[3] or 0),
        due_month=int(queue[4] or 0),
        last_purge_at=int(last[0][0]) if last else None,
        last_purge_rows=int(last[0][1]) if last else 0,
        rounds_month=int(month[0]),
        rows_month=int(month[1]),
    )


async def recent_checkpoints(store: HubStore, limit: int) -> list[tuple[int, bytes]]:
    """The latest ``limit`` signed checkpoints, oldest first."""
    rows = await store.operator_rows(_CHECKPOINTS, (limit,))
    return [(int(size), bytes(note)) for size, note in reversed(rows)]
