"""Which of a participant's signed prekey statements a sender may seal to (spec §5.5)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .directory import Directory
from .errors import LivcrError
from .keys import Suite
from .statements import PrekeyStatement

Verified = tuple[PrekeyStatement, bytes]  # a statement and the signed bytes it came from


def verified_prekeys(
    participant_id: str, signed: Iterable[bytes], directory: Directory, now: int, suite: Suite
) -> list[Verified]:
    """The statements that verify against the participant's current identity key, name it,
    are of ``suite`` and are valid at ``now``; the others are dropped.

    Raises:
        UnknownSender, KeyRevoked, KeyNotValid: the participant has no usable directory entry.
    """
    identity = directory.current_entry(participant_id, now).identity_key
    usable = []
    for item in signed:
        try:
            statement = PrekeyStatement.open(item, identity)
        except LivcrError:
            continue
        if (
            statement.participant_id == participant_id
            and statement.prekey.suite is suite
            and statement.not_before <= now < statement.not_after
        ):
            usable.append((statement, item))
    return usable


def current_prekey(statements: Sequence[Verified]) -> PrekeyStatement | None:
    """The most recently started of the valid statements, or None."""
    latest = max(statements, key=lambda v: v[0].not_before, default=None)
    return None if latest is None else latest[0]
