"""What an enrolment may change without being asked: nothing. The checks `enrol` runs first,
and the difference `--replace` shows."""

from __future__ import annotations

from livcr_exchange.directory import Directory
from livcr_exchange.statements import DirectoryEntry
from livcr_exchange.times import iso8601


class EnrolmentRefused(ValueError):
    """An enrolment or revocation the operator did not ask for explicitly; the message says
    which option asks for it."""


def previous_entry(directory: Directory, participant_id: str) -> DirectoryEntry | None:
    """The participant's latest-starting entry, if it was ever enrolled."""
    entries = [e for e in directory.entries if e.participant_id == participant_id]
    return max(entries, key=lambda e: e.not_before) if entries else None


def enrolment_changes(previous: DirectoryEntry, entry: DirectoryEntry) -> list[str]:
    """What replacing ``previous`` by ``entry`` changes, one line per field."""
    changes = []
    for name, before, after in (
        ("role", previous.role.value, entry.role.value),
        ("organisation", previous.organisation, entry.organisation),
        ("identity key", previous.identity_key.to_text(), entry.identity_key.to_text()),
        ("valid until", iso8601(previous.not_after), iso8601(entry.not_after)),
    ):
        if before != after:
            changes.append(f"{name}: {before} -> {after}")
    added = sorted(entry.allowed_purposes - previous.allowed_purposes)
    removed = sorted(previous.allowed_purposes - entry.allowed_purposes)
    if added or removed:
        changes.append(
            "purposes: " + " ".join([*(f"+{p}" for p in added), *(f"-{p}" for p in removed)])
        )
    return changes


def check_enrolment(
    directory: Directory, entry: DirectoryEntry, *, replace: bool, reenrol: bool
) -> None:
    """Raises EnrolmentRefused: see ``enrol``."""
    previous = previous_entry(directory, entry.participant_id)
    if previous is None:
        return
    revoked = {r.identity_key_id: r for r in directory.revocations}
    mine = revoked.get(entry.identity_key.key_id)
    if mine is not None:
        raise EnrolmentRefused(
            f"the key of {entry.participant_id} was revoked at {iso8601(mine.revoked_at)}"
            f" ({mine.reason}) and stays revoked: enrol a new key (`livcr keys new`)"
        )
    theirs = revoked.get(previous.identity_key.key_id)
    if theirs is not None:
        if not reenrol:
            raise EnrolmentRefused(
                f"{entry.participant_id} was revoked at {iso8601(theirs.revoked_at)}"
                f" ({theirs.reason}); say --reenrol to enrol it again"
            )
        return
    if not replace:
        changes = enrolment_changes(previous, entry) or ["nothing but the signature date"]
        raise EnrolmentRefused(
            f"{entry.participant_id} is enrolled already ({previous.role.value},"
            f" {previous.organisation}); say --replace to replace its entry, which changes:\n"
            + "\n".join(f"  {c}" for c in changes)
        )
