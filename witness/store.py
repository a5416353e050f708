"""The witness's durable state: per log, the last checkpoint it cosigned (SQLite, fsynced).

Checking a request against that state and recording the new checkpoint happen in one
``BEGIN IMMEDIATE`` transaction, committed with ``synchronous=FULL`` before any cosignature
leaves the process: after a kill -9 the witness remembers at least every checkpoint it answered
for, so it can never cosign a rollback or a fork of one (C2SP tlog-witness §add-checkpoint).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

from livcr_exchange.audit.checkpoint import Checkpoint
from livcr_exchange.audit.cosignature import split_note
from livcr_exchange.audit.witness import AddCheckpoint, Cosigned, LogKey, decide, note_origin

SCHEMA = """
CREATE TABLE IF NOT EXISTS cosigned (
    origin TEXT PRIMARY KEY,
    size TEXT NOT NULL,      -- decimal: sizes go up to 2**64-1, above SQLite's INTEGER
    root BLOB NOT NULL,
    note BLOB NOT NULL       -- the log's note with this witness's lines, for monitors
)
"""


class WitnessStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # fsync on every commit
        self._db.execute(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def last(self, origin: str) -> tuple[Cosigned, bytes] | None:
        row = self._db.execute(
            "SELECT size, root, note FROM cosigned WHERE origin = ?", (origin,)
        ).fetchone()
        if row is None:
            return None
        return Cosigned(int(row[0]), bytes(row[1])), bytes(row[2])

    def add_checkpoint(
        self,
        request: AddCheckpoint,
        logs: Mapping[str, LogKey],
        cosign: Callable[[Checkpoint], list[bytes]],
    ) -> list[bytes]:
        """Judge ``request`` against the stored state, record it and return the cosignature
        lines, all or nothing.

        Raises:
            LivcrError: the refusal ``decide`` raises (nothing is recorded then).
        """
        origin = note_origin(request.note)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            stored = self.last(origin)
            checkpoint = decide(request, logs.get(origin), None if stored is None else stored[0])
            lines = cosign(checkpoint)
            text, _ = split_note(request.note)
            note = text + b"\n" + _log_lines(request.note) + b"".join(lines)
            self._db.execute(
                "INSERT INTO cosigned (origin, size, root, note) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (origin) DO UPDATE SET size = excluded.size,"
                " root = excluded.root, note = excluded.note",
                (origin, str(checkpoint.size), checkpoint.root, note),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return lines


def _log_lines(note: bytes) -> bytes:
    """The signature lines of the submitted note, as sent."""
    return note[note.rindex(b"\n\n") + 2 :]
