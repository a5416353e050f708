"""The documents' rows: uploads waiting to be sent, and the documents of dossier rows.

Each row names one file sealed at rest (``docfiles``); the file is written before its row and
removed after it, so a row always has its file and a crash leaves at most an unnamed file, which
the upkeep sweeps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .store_base import StoreBase


@dataclass(frozen=True)
class DocumentRow:
    file_id: str  # hex; names the sealed file and is its associated data
    dossier_seq: int | None  # None: an upload not yet sent
    n: int | None  # its place among its message's documents
    name: str
    media_type: str
    size: int
    digest: str  # hex of H(LABEL_ATTACHMENT, bytes)
    created_at: int

    @classmethod
    def of(cls, row: Any) -> DocumentRow:
        file_id, seq, n, name, media_type, size, digest, created = row
        return cls(str(file_id), seq, n, str(name), str(media_type), int(size), digest, created)

    @property
    def values(self) -> tuple[object, ...]:
        return (
            self.file_id,
            self.dossier_seq,
            self.n,
            self.name,
            self.media_type,
            self.size,
            self.digest,
            self.created_at,
        )


COLUMNS = "file_id, dossier_seq, n, name, media_type, size, digest, created_at"
INSERT = f"INSERT INTO documents ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def insert_documents(c: sqlite3.Connection, seq: int, rows: Sequence[DocumentRow]) -> None:
    """``rows`` as the documents of dossier row ``seq``, numbered in order."""
    for n, row in enumerate(rows):
        c.execute(INSERT, (row.file_id, seq, n, *row.values[3:]))


class DocumentRows(StoreBase):
    async def add_upload(self, row: DocumentRow) -> None:
        await self.run(lambda c: c.execute(INSERT, row.values))

    async def uploads(self, file_ids: Sequence[str]) -> dict[str, DocumentRow]:
        """The uploads among ``file_ids`` that wait to be sent."""
        marks = ",".join("?" * len(file_ids))
        sql = f"SELECT {COLUMNS} FROM documents WHERE dossier_seq IS NULL AND file_id IN ({marks})"
        rows = await self.run(lambda c: c.execute(sql, tuple(file_ids)).fetchall())
        return {r.file_id: r for r in map(DocumentRow.of, rows)}

    async def documents_of(self, seq: int) -> list[DocumentRow]:
        rows = await self.run(
            lambda c: c.execute(
                f"SELECT {COLUMNS} FROM documents WHERE dossier_seq = ? ORDER BY n",
                (seq,),
            ).fetchall()
        )
        return [DocumentRow.of(r) for r in rows]

    async def sent_documents(self, message_id: bytes) -> tuple[DocumentRow, ...]:
        """The documents of a message this gateway sent, in the body's order."""
        columns = ", ".join("d." + c for c in COLUMNS.split(", "))
        rows = await self.run(
            lambda c: c.execute(
                f"SELECT {columns} FROM documents d JOIN dossier ON dossier.seq = d.dossier_seq"
                " WHERE dossier.message_id = ? AND dossier.direction = 'sent' ORDER BY d.n",
                (message_id,),
            ).fetchall()
        )
        return tuple(DocumentRow.of(r) for r in rows)

    async def document(self, message_id: bytes, n: int) -> DocumentRow | None:
        """The ``n``-th document of a message in the dossier (received before sent), unless
        its content was erased."""
        row = await self.run(
            lambda c: c.execute(
                f"SELECT {', '.join('d.' + c for c in COLUMNS.split(', '))} FROM documents d"
                " JOIN dossier ON dossier.seq = d.dossier_seq WHERE dossier.message_id = ?"
                " AND d.n = ? AND dossier.sealed IS NOT NULL"
                " ORDER BY dossier.direction = 'received' DESC LIMIT 1",
                (message_id, n),
            ).fetchone()
        )
        return None if row is None else DocumentRow.of(row)

    async def take_expired_uploads(self, before: int) -> list[str]:
        """Forget uploads made before ``before`` and never sent; their file ids."""

        def run(c: sqlite3.Connection) -> list[str]:
            where = "dossier_seq IS NULL AND created_at < ?"
            ids = [
                str(r[0])
                for r in c.execute(f"SELECT file_id FROM documents WHERE {where}", (before,))
            ]
            c.execute(f"DELETE FROM documents WHERE {where}", (before,))
            return ids

        return await self.run(run)

    async def take_erased_files(self) -> list[str]:
        """Forget the documents of erased dossier rows, and the envelope spool files of outbox
        entries that no longer go (sent, discarded, or erased); the files to remove."""

        def run(c: sqlite3.Connection) -> list[str]:
            erased = (
                "dossier_seq IN (SELECT seq FROM dossier WHERE sealed IS NULL)"
                " OR dossier_seq NOT IN (SELECT seq FROM dossier)"
            )
            where = f"dossier_seq IS NOT NULL AND ({erased})"
            ids = [str(r[0]) for r in c.execute(f"SELECT file_id FROM documents WHERE {where}")]
            c.execute(f"DELETE FROM documents WHERE {where}")
            spent = "envelope_file IS NOT NULL AND state IN ('sent', 'discarded')"
            ids += [str(r[0]) for r in c.execute(f"SELECT envelope_file FROM outbox WHERE {spent}")]
            c.execute(f"UPDATE outbox SET envelope_file = NULL WHERE {spent}")
            return ids

        return await self.run(run)

    async def known_files(self) -> set[str]:
        """Every file a row names (documents and envelope spool files)."""

        def run(c: sqlite3.Connection) -> set[str]:
            names = {str(r[0]) for r in c.execute("SELECT file_id FROM documents")}
            spool = c.execute("SELECT envelope_file FROM outbox WHERE envelope_file IS NOT NULL")
            return names | {str(r[0]) for r in spool}

        return await self.run(run)
