"""The cell directory: verified entries and revocations, and who held which key when (spec §5.6)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import KeyNotValid, KeyRevoked, Malformed, UnknownSender
from .keys import IdentityPublicKey
from .statements import DirectoryEntry, Revocation
from .times import iso8601


@dataclass(frozen=True)
class Directory:
    """Entries and revocations that verified against the cell root key.

    Build it with ``from_signed`` (which verifies) or ``from_verified`` (for statements the caller
    verified itself). A participant may have several entries over time, e.g. after a key change.
    """

    cell_id: str
    root: IdentityPublicKey
    entries: tuple[DirectoryEntry, ...] = ()
    revocations: tuple[Revocation, ...] = ()
    # The indexes below are built once per directory, which the hub consults several times per
    # request: each list is already in the order the lookups try it (latest not_before first).
    _by_key: dict[tuple[str, bytes], list[DirectoryEntry]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _by_participant: dict[str, list[DirectoryEntry]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _revoked_at: dict[bytes, int] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for entry in self.entries:
            if entry.cell_id != self.cell_id:
                raise Malformed(f"entry for {entry.participant_id} belongs to cell {entry.cell_id}")
            key = (entry.participant_id, entry.identity_key.key_id)
            self._by_key.setdefault(key, []).append(entry)
            self._by_participant.setdefault(entry.participant_id, []).append(entry)
        for index in (self._by_key, self._by_participant):
            for entries in index.values():
                entries.sort(key=_not_before, reverse=True)
        for revocation in self.revocations:
            if revocation.cell_id != self.cell_id:
                raise Malformed("revocation belongs to another cell")
            earlier = self._revoked_at.get(revocation.identity_key_id, revocation.revoked_at)
            self._revoked_at[revocation.identity_key_id] = min(earlier, revocation.revoked_at)

    @classmethod
    def from_signed(
        cls,
        cell_id: str,
        root: IdentityPublicKey,
        entries: Iterable[bytes],
        revocations: Iterable[bytes] = (),
    ) -> Directory:
        """Verify every signed statement against ``root``.

        Raises:
            BadSignature: a statement not signed by the root key.
            Malformed, NonCanonical: a statement that does not decode, or names another cell.
        """
        return cls(
            cell_id,
            root,
            tuple(DirectoryEntry.open(item, root) for item in entries),
            tuple(Revocation.open(item, root) for item in revocations),
        )

    def with_statements(
        self, entries: Iterable[DirectoryEntry] = (), revocations: Iterable[Revocation] = ()
    ) -> Directory:
        """A new directory with more (already verified) statements added."""
        return Directory(
            self.cell_id,
            self.root,
            self.entries + tuple(entries),
            self.revocations + tuple(revocations),
        )

    def entry_for_key(self, participant_id: str, key_id: bytes, at: int) -> DirectoryEntry:
        """The entry under which ``key_id`` spoke for ``participant_id`` at time ``at``.

        Raises:
            UnknownSender: no entry binds this key to this participant.
            KeyRevoked: the key was revoked at or before ``at``.
            KeyNotValid: ``at`` is outside the entry's validity window.
        """
        entries = self._by_key.get((participant_id, key_id))
        if not entries:
            raise UnknownSender(f"no directory entry binds key {key_id.hex()} to {participant_id}")
        revoked_at = self._revoked_at.get(key_id)
        if revoked_at is not None and revoked_at <= at:
            raise KeyRevoked(
                f"key {key_id.hex()} of {participant_id} revoked at {iso8601(revoked_at)}"
            )
        # A renewed entry for the same key keeps the earlier ones valid for their own windows.
        for entry in entries:
            if entry.not_before <= at < entry.not_after:
                return entry
        windows = ", ".join(f"[{iso8601(e.not_before)}, {iso8601(e.not_after)})" for e in entries)
        raise KeyNotValid(
            f"key {key_id.hex()} of {participant_id} valid {windows}, judged at {iso8601(at)}"
        )

    def current_entry(self, participant_id: str, at: int) -> DirectoryEntry:
        """The participant's entry valid and unrevoked at ``at`` (the latest-starting one).

        Raises:
            UnknownSender: the participant has no entry at all.
            KeyRevoked, KeyNotValid: it has entries, but none usable at ``at``.
        """
        candidates = self._by_participant.get(participant_id)
        if not candidates:
            raise UnknownSender(f"{participant_id} is not in the directory")
        failure: KeyRevoked | KeyNotValid | None = None
        for entry in candidates:
            try:
                return self.entry_for_key(participant_id, entry.identity_key.key_id, at)
            except (KeyRevoked, KeyNotValid) as exc:
                failure = failure or exc
        assert failure is not None  # noqa: S101  (candidates was non-empty)
        raise failure

    def participants(self, at: int) -> dict[str, DirectoryEntry]:
        """Every participant with a usable entry at ``at``."""
        usable: dict[str, DirectoryEntry] = {}
        for participant_id in self._by_participant:
            try:
                usable[participant_id] = self.current_entry(participant_id, at)
            except (KeyRevoked, KeyNotValid):
                continue
        return usable


def _not_before(entry: DirectoryEntry) -> int:
    return entry.not_before
