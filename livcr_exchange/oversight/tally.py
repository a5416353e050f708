"""Count what a verified log records, by the report's categories, as exact tables (spec §16.2).

Only categories leave this module: purposes, months, states, codes, organisations. Case
references and participant ids are used to group leaves and then dropped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ..audit.leaves import (
    CaseMembership,
    CaseTransition,
    DirectoryChange,
    EnvelopeAccepted,
    Leaf,
    MeetingRecorded,
    Refusal,
)
from ..cases import TRANSITIONS, CaseState
from ..purposes import CATALOGUE
from ..statements import DirectoryEntry, Revocation, StatementType
from .evidence import VerifiedLog
from .tables import ExactTable, exact_from_counts

DAY: Final = 86_400
OPENED: Final = "none"  # a case transition's from-state when the case is opened (spec §10.4)
UNKNOWN_ORGANISATION: Final = "unknown"
MEETING_BUCKETS: Final = (
    (7, "0-7 days"),
    (14, "8-14 days"),
    (30, "15-30 days"),
    (60, "31-60 days"),
)
OVER_LAST_BUCKET: Final = "over 60 days"
NO_MEETING: Final = "no meeting yet"
KEY_EVENTS: Final = ("enrolment", "identity key change", "entry renewal", "revocation", "prekey")


def month_of(timestamp: int) -> str:
    """``YYYY-MM`` of a Unix time in UTC."""
    return date_of(timestamp)[:7]


def date_of(timestamp: int) -> str:
    """``YYYY-MM-DD`` of a Unix time in UTC (days to civil date, proleptic Gregorian)."""
    days = timestamp // DAY + 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    return f"{year:04d}-{month:02d}-{day:02d}"


@dataclass
class _Case:
    referred_at: int | None = None
    first_meeting_at: int | None = None
    state: str = OPENED
    closed_at: int | None = None
    closing_recipients: set[str] = field(default_factory=set)
    confirmed_by: set[str] = field(default_factory=set)


def tally(log: VerifiedLog, *, now: int, retention_days: int) -> list[ExactTable]:
    """Every table of a cell's report, in exact counts (suppression comes after)."""
    cases: defaultdict[str, _Case] = defaultdict(_Case)
    for leaf in log.leaves:
        _follow_case(cases, leaf)
    organisations = {e.participant_id: e.organisation for e in log.directory.entries}
    return [
        _messages(log.leaves, now),
        _transitions(log.leaves),
        _referral_to_meeting(cases.values()),
        _refusals(log.leaves),
        _membership(log.leaves, organisations),
        _retention(cases.values(), now, retention_days),
        _confirmations(cases.values()),
        _key_events(log, now),
    ]


def _follow_case(cases: defaultdict[str, _Case], leaf: Leaf) -> None:
    match leaf:
        case EnvelopeAccepted(purpose="aanmelding"):
            case = cases[leaf.case_ref]
            case.referred_at = _earliest(case.referred_at, leaf.logged_at)
        case EnvelopeAccepted(purpose="afsluiting"):
            cases[leaf.case_ref].closing_recipients.update(leaf.recipients)
        case EnvelopeAccepted(purpose="wissingsbevestiging"):
            cases[leaf.case_ref].confirmed_by.add(leaf.sender_id)
        case CaseTransition():
            case = cases[leaf.case_ref]
            if leaf.from_state == OPENED:
                case.referred_at = _earliest(case.referred_at, leaf.logged_at)
            case.state = leaf.to_state
            if leaf.to_state == CaseState.AFGESLOTEN:
                case.closed_at = leaf.logged_at
            elif leaf.to_state != CaseState.GEWIST:
                case.closed_at = None  # reopened
        case MeetingRecorded():
            case = cases[leaf.case_ref]
            case.first_meeting_at = _earliest(case.first_meeting_at, leaf.logged_at)


def _earliest(current: int | None, candidate: int) -> int:
    return candidate if current is None else min(current, candidate)


def _one_column(
    table_id: str, title: str, row_label: str, rows: Iterable[str], counts: Counter[str]
) -> ExactTable:
    names = tuple(rows)
    return ExactTable(
        table_id,
        title,
        row_label,
        "count",
        names,
        ("count",),
        tuple((counts.get(name, 0),) for name in names),
    )


def _messages(leaves: Iterable[Leaf], now: int) -> ExactTable:
    counts: Counter[tuple[str, str]] = Counter(
        (leaf.purpose, month_of(leaf.logged_at))
        for leaf in leaves
        if isinstance(leaf, EnvelopeAccepted)
    )
    purposes = [*CATALOGUE, *sorted({p for p, _ in counts} - set(CATALOGUE))]
    months = sorted({m for _, m in counts}) or [month_of(now)]
    return ExactTable(
        "messages_by_purpose_and_month",
        "Messages accepted, by purpose and month",
        "purpose",
        "month",
        tuple(purposes),
        tuple(months),
        exact_from_counts(purposes, months, dict(counts)),
    )


def _transitions(leaves: Iterable[Leaf]) -> ExactTable:
    counts = Counter(
        f"{leaf.from_state} -> {leaf.to_state}"
        for leaf in leaves
        if isinstance(leaf, CaseTransition)
    )
    allowed = [f"{OPENED} -> {CaseState.SIGNAAL_ONTVANGEN}"] + [
        f"{a} -> {b}" for a, targets in TRANSITIONS.items() for b in sorted(targets)
    ]
    rows = allowed + sorted(set(counts) - set(allowed))
    return _one_column(
        "case_transitions",
        "Case-state transitions ('none' is the opening)",
        "transition",
        rows,
        counts,
    )


def _referral_to_meeting(cases: Iterable[_Case]) -> ExactTable:
    counts: Counter[str] = Counter()
    for case in cases:
        if case.referred_at is None:
            continue  # its referral's leaves were deleted by retention
        if case.first_meeting_at is None:
            counts[NO_MEETING] += 1
            continue
        days = max(0, case.first_meeting_at - case.referred_at) // DAY
        label = next((name for limit, name in MEETING_BUCKETS if days <= limit), OVER_LAST_BUCKET)
        counts[label] += 1
    rows = [name for _, name in MEETING_BUCKETS] + [OVER_LAST_BUCKET, NO_MEETING]
    return _one_column(
        "referral_to_first_meeting",
        "Cases by time from referral to first meeting",
        "time",
        rows,
        counts,
    )


def _refusals(leaves: Iterable[Leaf]) -> ExactTable:
    counts = Counter((leaf.code, leaf.action) for leaf in leaves if isinstance(leaf, Refusal))
    codes = sorted({c for c, _ in counts})
    actions = sorted({a for _, a in counts}) or ["submit"]
    return ExactTable(
        "refusals_by_code",
        "Requests the hub refused, by code and request",
        "code",
        "request",
        tuple(codes),
        tuple(actions),
        exact_from_counts(codes, actions, dict(counts)),
    )


def _membership(leaves: Iterable[Leaf], organisations: dict[str, str]) -> ExactTable:
    counts: Counter[tuple[str, str]] = Counter()
    for leaf in leaves:
        if isinstance(leaf, CaseMembership):
            for pid in leaf.added:
                counts[(organisations.get(pid, UNKNOWN_ORGANISATION), "added")] += 1
            for pid in leaf.removed:
                counts[(organisations.get(pid, UNKNOWN_ORGANISATION), "removed")] += 1
    rows = sorted({o for o, _ in counts})
    columns = ["added", "removed"]
    return ExactTable(
        "membership_changes",
        "Case membership changes, by organisation (enterprise number)",
        "organisation",
        "change",
        tuple(rows),
        tuple(columns),
        exact_from_counts(rows, columns, dict(counts)),
    )


def _retention(cases: Iterable[_Case], now: int, retention_days: int) -> ExactTable:
    counts: Counter[str] = Counter()
    for case in cases:
        if case.closed_at is None:
            continue
        past = case.closed_at + retention_days * DAY <= now
        counts["past retention, not purged" if past else "within retention"] += 1
    return _one_column(
        "retention",
        "Closed cases whose data the hub still holds",
        "status",
        ["within retention", "past retention, not purged"],
        counts,
    )


def _confirmations(cases: Iterable[_Case]) -> ExactTable:
    counts: Counter[str] = Counter()
    for case in cases:
        received = case.closing_recipients & case.confirmed_by
        counts["received"] += len(received)
        counts["missing"] += len(case.closing_recipients - received)
    return _one_column(
        "deletion_confirmations",
        "Deletion confirmations expected from the recipients of a closure (total)",
        "confirmation",
        ["received", "missing"],
        counts,
    )


def _key_events(log: VerifiedLog, now: int) -> ExactTable:
    counts: Counter[tuple[str, str]] = Counter()
    keys_seen: dict[str, set[bytes]] = {}
    for leaf in log.leaves:
        if not isinstance(leaf, DirectoryChange):
            continue
        statement = log.statements.get(leaf.statement_hash)
        kind = "prekey"
        if isinstance(statement, Revocation):
            kind = "revocation"
        elif isinstance(statement, DirectoryEntry):
            held = keys_seen.setdefault(statement.participant_id, set())
            key_id = statement.identity_key.key_id
            kind = (
                "enrolment"
                if not held
                else ("entry renewal" if key_id in held else "identity key change")
            )
            held.add(key_id)
        elif leaf.statement_type != StatementType.PREKEY:
            kind = "revocation" if leaf.statement_type == StatementType.REVOCATION else "enrolment"
        counts[(month_of(leaf.logged_at), kind)] += 1
    months = sorted({m for m, _ in counts}) or [month_of(now)]
    return ExactTable(
        "key_events",
        "Directory and key events, by month",
        "month",
        "event",
        tuple(months),
        KEY_EVENTS,
        exact_from_counts(months, KEY_EVENTS, dict(counts)),
    )
