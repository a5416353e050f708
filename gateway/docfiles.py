"""Documents in the gateway folder: uploads streamed in and checked, received documents kept,
both sealed at rest with the local key (``sealed_files``); read back as streams; removed when
erased, expired or never named.

Files live in ``documents/`` beside the store, one per document, named by a random id that the
``documents`` table records. Outbox envelopes with documents are spooled there too: they are
sealed end to end already, so they are written as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterable, Iterator
from pathlib import Path
from typing import Final

from livcr_exchange.attachments import MediaType, attachment_hasher, check_name
from livcr_exchange.documents import OpenedDocuments
from livcr_exchange.errors import AttachmentTooLarge, AttachmentTypeNotAllowed
from livcr_exchange.purposes import CATALOGUE
from livcr_exchange.sniff import START_BYTES, check_start, sniffer_for

from .context import Context
from .document import Document
from .sealed_files import SealedWriter, read_sealed
from .store import DocumentRow

# The largest document any purpose takes: the cap of one upload.
MAX_UPLOAD_BYTES: Final = max(
    p.attachments.max_file_bytes for p in CATALOGUE.values() if p.attachments is not None
)
UPLOAD_TTL_SECONDS: Final = 24 * 3600  # an upload never sent is dropped after a day
# A file no row names is removed once this old: younger, it may be an upload still streaming.
ORPHAN_AGE_SECONDS: Final = 3600
FOLDER: Final = "documents"


def upload_type(declared: str) -> MediaType:
    """The media type an upload declares, if any purpose carries it.

    Raises:
        AttachmentTypeNotAllowed: no purpose carries documents of that type.
    """
    try:
        return MediaType(declared.split(";", 1)[0].strip().lower())
    except ValueError as exc:
        raise AttachmentTypeNotAllowed(f"no purpose carries {declared[:80]!r}") from exc


def _check_size(size: int) -> None:
    if size > MAX_UPLOAD_BYTES:
        raise AttachmentTooLarge(f"a document is at most {MAX_UPLOAD_BYTES} bytes")


class DocumentFiles:
    """The documents folder of one gateway and the rows that name its files."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.folder = ctx.config.path(ctx.config.gateway.database).parent / FOLDER
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._key = ctx.box.files_key()

    def path(self, file_id: str) -> Path:
        return self.folder / file_id

    def new_id(self) -> str:
        return self._ctx.random(16).hex()

    def _writer(self, file_id: str) -> SealedWriter:
        return SealedWriter(self.path(file_id), self._key, file_id.encode("ascii"))

    def read(self, file_id: str) -> Iterator[bytes]:
        """A document's bytes, chunk by chunk. Raises LocalKeyError (altered or missing)."""
        return read_sealed(self.path(file_id), self._key, file_id.encode("ascii"))

    def document(self, row: DocumentRow) -> Document:
        return Document(
            row.name,
            row.media_type,
            row.size,
            row.digest,
            self.path(row.file_id),
            self._key,
            row.file_id.encode("ascii"),
        )

    async def upload(
        self, name: str, declared: str, pieces: AsyncIterable[bytes], *, length: int | None = None
    ) -> DocumentRow:
        """Stream an upload into a sealed file, checked as it comes; its row once complete.

        Raises:
            AttachmentTypeNotAllowed: a type no purpose carries.
            AttachmentNameInvalid: a name outside the filename rule.
            AttachmentTooLarge: over MAX_UPLOAD_BYTES (refused before reading when ``length``
                says so).
            AttachmentTypeMismatch, AttachmentActiveContent: the content is not its type.
        """
        media_type = upload_type(declared)
        check_name(name, media_type)
        _check_size(length or 0)
        file_id = self.new_id()
        writer = self._writer(file_id)
        hasher, sniffer = attachment_hasher(), sniffer_for(media_type)
        size, head = 0, b""
        try:
            async for piece in pieces:
                size += len(piece)
                _check_size(size)
                if len(head) < START_BYTES:
                    head += piece[: START_BYTES - len(head)]
                    check_start(media_type, head)  # refused early, not after the whole file
                sniffer.feed(piece)
                hasher.update(piece)
                writer.write(piece)
            sniffer.finish()
            writer.close()
        except BaseException:
            writer.discard()
            raise
        row = DocumentRow(
            file_id, None, None, name, media_type.value, size, hasher.digest().hex(), self._now()
        )
        await self._ctx.store.add_upload(row)
        return row

    def _now(self) -> int:
        return self._ctx.clock()

    async def keep_received(self, opened: OpenedDocuments) -> list[DocumentRow]:
        """Write each checked document of ``opened`` to a sealed file; their rows (not yet
        stored). Runs off the event loop; whatever fails leaves no file behind.

        Raises:
            AttachmentDigestMismatch, AttachmentTypeMismatch, AttachmentActiveContent, and the
                envelope's errors of its second pass: as ``OpenedDocuments.attachments``.
        """
        return await asyncio.to_thread(self._keep, opened, self._now())

    def _keep(self, opened: OpenedDocuments, now: int) -> list[DocumentRow]:
        rows: list[DocumentRow] = []
        try:
            for ref, pieces in opened.attachments():
                file_id = self.new_id()
                writer = self._writer(file_id)
                try:
                    for piece in pieces:
                        writer.write(piece)
                    writer.close()
                except BaseException:
                    writer.discard()
                    raise
                row = DocumentRow(
                    file_id, None, None, ref.name, ref.media_type, ref.size, ref.digest, now
                )
                rows.append(row)
        except BaseException:
            self.remove_now([row.file_id for row in rows])
            raise
        return rows

    def remove_now(self, file_ids: list[str]) -> None:
        for file_id in file_ids:
            self.path(file_id).unlink(missing_ok=True)

    async def drop_erased(self) -> list[str]:
        """Remove the documents of erased messages and the spool files of envelopes that no
        longer go; their names."""
        gone = await self._ctx.store.take_erased_files()
        self.remove_now(gone)
        return gone

    async def sweep(self) -> int:
        """Remove what no longer belongs: uploads never sent in UPLOAD_TTL_SECONDS, documents of
        erased messages, spool files of sent envelopes, and old files no row names. How many
        files went."""
        store = self._ctx.store
        gone = await store.take_expired_uploads(self._now() - UPLOAD_TTL_SECONDS)
        self.remove_now(gone)
        gone += await self.drop_erased()
        known = await store.known_files()
        cutoff = time.time() - ORPHAN_AGE_SECONDS
        for path in self.folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.name not in known and path.stat().st_mtime < cutoff:
                    path.unlink()
                    gone.append(path.name)
        return len(gone)

    def spool_path(self) -> tuple[str, Path]:
        """A fresh spool file's name and path (for a sealed envelope)."""
        name = self.new_id()
        return name, self.path(name)


def write_spool(path: Path, pieces: Iterator[bytes]) -> int:
    """Write ``pieces`` to a new file (0600), durably; its size. A failure removes the file."""
    size = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
                size += len(piece)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size
