"""The console's pages as HTML bodies: metadata only, never a case reference or a message id.

Each function reads what its page shows (store queries on indexes, the directory in memory) and
returns the body; ``layout.page`` frames it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from livcr_exchange.audit.leaves import DropReason
from livcr_exchange.statements import DirectoryEntry, Revocation

from ..state import Hub
from . import queries
from .i18n import Words, age_text, time_html
from .layout import csrf_field, facts, table
from .svg import line_chart, stacked_bars
from .verify import Verification

EXPIRY_WARNING_DAYS = 30
CHECKPOINTS_CHARTED = 200
OLDEST_SHOWN = 10  # deliveries listed per participant on the deliveries page


@dataclass(frozen=True)
class View:
    hub: Hub
    words: Words
    now: int
    csrf: str
    started_at: int
    verification: Verification
    cosigned: bytes | None = None  # the newest checkpoint a quorum of witnesses cosigned


def signature_lines(note: bytes) -> list[str]:
    """The key names of a signed note's signature lines (spec §10.3)."""
    text = note.decode("utf-8", "replace")
    _, _, block = text.partition("\n\n")
    return [line.split(" ")[1] for line in block.splitlines() if line.startswith("\u2014 ")]


def _witnessed(view: View, stored: bytes | None) -> tuple[str, str]:
    """(cosignature count, size of the note they are on): the newest cosigned checkpoint this
    process holds (spec §10.7), else the last stored one (whose lines are the log's only)."""
    note = view.cosigned or stored
    if note is None:
        return "0", view.words["none"]
    names = signature_lines(note)
    count = sum(1 for name in names if name != view.hub.log.key_name)
    size = note.decode("utf-8", "replace").split("\n")[1] if view.cosigned else view.words["none"]
    return str(count), escape(size)


async def overview(view: View) -> str:
    hub, w = view.hub, view.words
    latest = await queries.recent_checkpoints(hub.store, 1)
    size, stored = (latest[0][0], latest[0][1]) if latest else (0, None)
    cosignatures, cosigned_size = _witnessed(view, stored)
    connected = sum(1 for pid in hub.directory.participants(view.now) if hub.push.online(pid))
    rows = [
        (w["serving"], "serving", f"{w['yes_since']} {time_html(view.started_at, w)}"),
        (w["store"], "store", f"{escape(hub.config.store.kind)}, {w['reachable']}"),
        (w["log_size"], "log-size", str(await hub.store.tree_size())),
        (w["last_checkpoint"], "checkpoint-size", str(size)),
        (w["cosigned_checkpoint"], "cosigned-size", cosigned_size),
        (w["cosignatures"], "cosignatures", cosignatures),
        (w["pending"], "pending-total", str(await queries.pending_total(hub.store))),
        (
            w["refusals_24h"],
            "refusals-24h",
            str(await queries.refusals_since(hub.store, view.now - queries.DAY)),
        ),
        (w["connected_now"], "connected", f"{connected} ({w['this_process']})"),
    ]
    return facts(rows)


def _validity(entry: DirectoryEntry, view: View) -> str:
    w = view.words
    text = (
        f"{w['from']} {time_html(entry.not_before, w)} {w['until']} {time_html(entry.not_after, w)}"
    )
    if entry.not_after <= view.now:
        return f'{text} <span class="warn">{w["expired"]}</span>'
    days_left = (entry.not_after - view.now) // queries.DAY
    if days_left < EXPIRY_WARNING_DAYS:
        text += f' <span class="warn">{w.fmt("expires_soon", n=days_left)}</span>'
    return text


def _revocations(revocations: list[Revocation], w: Words) -> str:
    if not revocations:
        return w["none"]
    return "<br>".join(f"{time_html(r.revoked_at, w)}: {escape(r.reason)}" for r in revocations)


def _pending_cell(queue: queries.Queue | None, view: View) -> str:
    if queue is None:
        return "0"
    return (
        f'<span data-pending="{escape(queue.participant_id)}">{queue.count}</span> '
        f"({view.words['oldest']}: {age_text(view.now - queue.oldest_at)}; "
        f"{view.words['older_hour']}: {queue.older_than_hour}, "
        f"{view.words['older_day']}: {queue.older_than_day}, "
        f"{view.words['older_week']}: {queue.older_than_week})"
    )


async def participants(view: View) -> str:
    hub, w = view.hub, view.words
    directory = await hub.current_directory()
    waiting = await queries.queues(hub.store, view.now)
    rows = []
    for pid in sorted({e.participant_id for e in directory.entries}):
        entries = [e for e in directory.entries if e.participant_id == pid]
        latest = max(entries, key=lambda e: e.not_before)
        revoked = [r for r in directory.revocations if r.participant_id == pid]
        rows.append(
            [
                escape(pid),
                escape(latest.role.value),
                escape(latest.organisation),
                "<br>".join(f"<code>{e.identity_key.key_id.hex()[:16]}</code>" for e in entries),
                _validity(latest, view),
                _revocations(revoked, w),
                w["yes"] if hub.push.online(pid) else w["no"],
                _pending_cell(waiting.get(pid), view),
            ]
        )
    head = [w["participant"], w["role"], w["organisation"], w["key_ids"], w["valid"]]
    head += [w["revocations"], w["connected_now"], w["pending"]]
    return table(w["participants"], head, rows, metric="participants")


def _verification_html(verification: Verification, w: Words) -> str:
    if verification.started_at is None:
        status = w["verify_never"]
    elif verification.running:
        status = w["verify_running"]
    elif verification.problems:
        items = "".join(f"<li>{escape(p)}</li>" for p in verification.problems[:20])
        status = f'<span class="warn">{w["verify_failed"]}</span><ul>{items}</ul>'
    else:
        status = f'<span class="ok">{w["verify_ok"]}</span>'
    maximum = max(verification.target, 1)
    return (
        f'<p role="status" data-metric="verify-status">{status}</p>'
        f'<label for="verify-progress">{w["verify_progress"]}</label> '
        f'<progress id="verify-progress" max="{maximum}" value="{verification.checked}">'
        f"{verification.checked}/{maximum}</progress> "
        f'<span data-metric="verify-checked">{verification.checked}</span> '
        f'{w["leaves_checked"]}, <span data-metric="verify-checkpoints">'
        f"{verification.checkpoints}</span> {w['checkpoints_checked']}"
    )


async def log_page(view: View) -> str:
    hub, w, verification = view.hub, view.words, view.verification
    recent = await queries.recent_checkpoints(hub.store, CHECKPOINTS_CHARTED)
    chart = line_chart(
        "checkpoints",
        w.plain("checkpoints_chart"),
        w.plain("checkpoints_desc", n=len(recent)),
        [size for size, _ in recent],
    )
    form = (
        f'<form method="post" action="/log/verify" class="inline">{csrf_field(view.csrf)}'
        f'<button type="submit">{w["verify_start"]}</button></form>'
    )
    return (
        facts([(w["log_size"], "log-size", str(await hub.store.tree_size()))])
        + f"<h2>{w['checkpoints_chart']}</h2>{chart}"
        + f"<h2>{w['verify']}</h2><p>{w['incremental']}</p>{form}"
        + _verification_html(verification, w)
    )


async def refusals_page(view: View) -> str:
    hub, w = view.hub, view.words
    start = (view.now // queries.HOUR - 23) * queries.HOUR
    hourly = await queries.refusals(hub.store, start, queries.HOUR)
    daily = await queries.refusals(hub.store, view.now - 14 * queries.DAY, queries.DAY)
    codes = sorted({code for _, code, _ in hourly} | {code for _, code, _ in daily})
    hours = [start + i * queries.HOUR for i in range(24)]
    series = {code: [0] * 24 for code in codes}
    for at, code, count in hourly:
        series[code][(at - start) // queries.HOUR] += count
    labels = [_hour_label(h) for h in hours]
    chart = stacked_bars(
        "refusals", w.plain("refusals_chart"), w.plain("refusals_desc"), labels, series
    )
    rows = [
        [escape(code), str(sum(series[code])), str(sum(c for _, k, c in daily if k == code))]
        for code in codes
    ]
    rows.append([w["total"], str(sum(map(sum, series.values()))), str(sum(c for *_, c in daily))])
    head = [w["code"], w["last_24h"], w["last_14d"]]
    return f"<h2>{w['refusals_chart']}</h2>{chart}" + table(
        w["refusals"], head, rows, metric="refusals"
    )


def _hour_label(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).astimezone().strftime("%H:00")


async def retention_page(view: View) -> str:
    hub, w = view.hub, view.words
    r = await queries.retention(hub.store, view.now)
    return facts(
        [
            (w["retention_days"], "retention-days", str(hub.config.hub.retention_days)),
            (w["scheduled"], "scheduled", str(r.scheduled)),
            (w["due_now"], "due-now", str(r.due_now)),
            (w["due_week"], "due-week", str(r.due_week)),
            (w["due_month"], "due-month", str(r.due_month)),
            (w["next_due"], "next-due", time_html(r.next_due_at, w)),
            (w["last_purge"], "last-purge", time_html(r.last_purge_at, w)),
            (w["last_purge_rows"], "last-purge-rows", str(r.last_purge_rows)),
            (w["purges_month"], "purges-month", str(r.rounds_month)),
            (w["rows_month"], "rows-month", str(r.rows_month)),
        ]
    )


def _drop_form(view: View, pid: str, seq: int) -> str:
    w, field_id = view.words, f"reason-{escape(pid)}-{seq}"
    options = "".join(
        f'<option value="{r.value}">{w["reason_" + r.value]}</option>' for r in DropReason
    )
    return (
        f'<form method="post" action="/deliveries/drop" class="inline">{csrf_field(view.csrf)}'
        f'<input type="hidden" name="participant" value="{escape(pid)}">'
        f'<input type="hidden" name="delivery" value="{seq}">'
        f'<label for="{field_id}">{w["reason"]}</label>'
        f'<select id="{field_id}" name="reason" required>{options}</select>'
        f'<button type="submit">{w["drop"]} {seq}</button></form>'
    )


async def deliveries_page(view: View, message: str = "") -> str:
    hub, w = view.hub, view.words
    waiting = await queries.queues(hub.store, view.now)
    summary = [
        [
            escape(q.participant_id),
            str(q.count),
            str(q.size),
            age_text(view.now - q.oldest_at),
            str(q.older_than_hour),
            str(q.older_than_day),
            str(q.older_than_week),
        ]
        for q in waiting.values()
    ]
    head = [w["participant"], w["count"], w["bytes"], w["oldest"]]
    head += [w["older_hour"], w["older_day"], w["older_week"]]
    parts = [f'<p class="notice" role="status">{message}</p>' if message else ""]
    parts.append(table(w["queues"], head, summary, metric="queues"))
    parts.append(f"<h2>{w['stuck']}</h2><p>{w['drop_note']}</p>")
    oldest = await asyncio.gather(*(queries.oldest(hub.store, p, OLDEST_SHOWN) for p in waiting))
    for pid, queued in zip(waiting, oldest, strict=True):
        rows = [
            [
                str(d.seq),
                time_html(d.accepted_at, w),
                age_text(view.now - d.accepted_at),
                str(d.size),
                _drop_form(view, pid, d.seq),
            ]
            for d in queued
        ]
        head = [w["delivery"], w["accepted"], w["age"], w["bytes"], w["drop"]]
        parts.append(table(escape(pid), head, rows, metric=f"oldest-{escape(pid)}"))
    if not waiting:
        parts.append(f"<p>{w['nothing_pending']}</p>")
    return "".join(parts)
