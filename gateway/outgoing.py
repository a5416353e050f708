"""Sending documents: what a sender names (uploads, paths, open files) made into uploads, the
body's ``attachments`` list filled from them and checked against the purpose, and the message
sealed from the sealed files into a spool file, in constant memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from livcr_exchange.attachments import AttachmentRef, check_refs
from livcr_exchange.documents import seal_message_stream
from livcr_exchange.envelope import MessageSpec, SealParts
from livcr_exchange.envelope.incoming import ReceivedEnvelope
from livcr_exchange.errors import AttachmentNotAllowed, AttachmentTypeNotAllowed, Malformed
from livcr_exchange.purposes import get_purpose
from livcr_exchange.service.hub_client import ReceiptAnswered
from livcr_exchange.sniff import media_type_of

from .context import Context
from .docfiles import DocumentFiles, write_spool
from .errors import UploadGone
from .sealed_files import CHUNK_BYTES
from .spool import envelope_of
from .store import DocumentRow, OutboxRow
from .submission import Draft

# What a sender may name as a document: an upload, a file's path, or a file open for reading
# in binary mode (its ``name`` names the document).
Attachable = DocumentRow | str | os.PathLike[str] | BinaryIO
_HEAD_BYTES = 1024  # enough for ``media_type_of``


def ref_of(row: DocumentRow) -> AttachmentRef:
    return AttachmentRef(name=row.name, media_type=row.media_type, size=row.size, digest=row.digest)


def with_refs(purpose: str, raw: bytes, documents: Sequence[DocumentRow]) -> bytes:
    """The body JSON with its ``attachments`` list naming ``documents``, checked against the
    purpose's rule before anything is sealed or queued.

    Raises:
        AttachmentNotAllowed, AttachmentTypeNotAllowed, AttachmentNameInvalid,
            AttachmentTooLarge: the rule of spec §6.7.
        Malformed: the body is not a JSON object.
    """
    refs = [ref_of(row) for row in documents]
    check_refs(purpose, get_purpose(purpose).attachments, refs)
    try:
        fields = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise Malformed(f"the body is not JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise Malformed("the body is not a JSON object")
    fields["attachments"] = [msgspec.to_builtins(ref) for ref in refs]
    return msgspec.json.encode(fields)


async def with_documents(
    ctx: Context, purpose: str, raw: bytes, named: Sequence[Attachable]
) -> tuple[bytes, tuple[DocumentRow, ...]]:
    """The body naming the documents ``named`` (``with_refs``), and them as uploads
    (``uploads_of``); the body unchanged without any. Raises as those two."""
    documents = tuple(await uploads_of(ctx, purpose, named))
    return (with_refs(purpose, raw, documents) if documents else raw), documents


async def uploads_of(ctx: Context, purpose: str, named: Sequence[Attachable]) -> list[DocumentRow]:
    """Each document named, as an upload: paths and open files are uploaded (checked by
    content, their type read from it), uploads are looked up.

    Raises:
        AttachmentNotAllowed: the purpose carries no documents (before any is read).
        UploadGone: an upload this gateway does not hold (expired, or sent already).
        AttachmentTypeNotAllowed: a file whose content is of no type a purpose carries.
        The upload's errors (``DocumentFiles.upload``); OSError for a path that cannot be read.
    """
    if not named:
        return []
    if get_purpose(purpose).attachments is None:
        raise AttachmentNotAllowed(f"{purpose} carries no attachments")
    files = DocumentFiles(ctx)
    rows: list[DocumentRow] = []
    for item in named:
        if isinstance(item, DocumentRow):
            rows.append(item)
        elif isinstance(item, str | os.PathLike):
            with Path(item).open("rb") as handle:
                rows.append(await _upload_file(files, Path(item).name, handle))
        else:
            rows.append(await _upload_file(files, Path(str(item.name)).name, item))
    held = await ctx.store.uploads([row.file_id for row in rows])
    for row in rows:
        if row.file_id not in held:
            raise UploadGone(row.file_id)
    return rows


async def _upload_file(files: DocumentFiles, name: str, handle: BinaryIO) -> DocumentRow:
    head = handle.read(_HEAD_BYTES)
    media_type = media_type_of(head)
    if media_type is None:
        raise AttachmentTypeNotAllowed(f"{name[:80]!r} is of no type a purpose carries")

    async def pieces() -> AsyncIterator[bytes]:
        yield head
        while piece := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield piece

    return await files.upload(name, media_type.value, pieces())


async def seal_documents(ctx: Context, spec: MessageSpec, draft: Draft, parts: SealParts) -> str:
    """Seal the draft's body and documents, read from their sealed files, into a spool file,
    off the event loop, under ``parts`` (message id, times, keys); the spool file's name.

    Raises:
        As ``seal_message_stream`` (its pieces' errors included); LocalKeyError for a document
            file that does not open.
    """
    files = DocumentFiles(ctx)
    attachments = [(ref_of(row), files.read(row.file_id)) for row in draft.documents]
    pieces = seal_message_stream(
        ctx.identity,
        spec,
        draft.raw,
        attachments,
        now=parts.timestamp,
        ttl=parts.expires_at - parts.timestamp,
        random=ctx.random,
        parts=parts,
    )
    name, path = files.spool_path()
    await asyncio.to_thread(write_spool, path, pieces)
    return name


class Submitted(NamedTuple):
    """A submitted envelope, by its header and digests (what its receipt must name), and the
    hub's answer."""

    envelope: ReceivedEnvelope
    answered: ReceiptAnswered


async def submit_row(ctx: Context, row: OutboxRow) -> Submitted:
    """Submit ``row``'s envelope: one with documents streamed from its spool file (read twice,
    once for the digests and once to send, never whole), any other from memory.

    Raises:
        HubRefused, HubAnswerInvalid, aiohttp.ClientError, TimeoutError, OSError: as
            ``HubClient.submit``.
    """
    if row.envelope_file is None:
        return Submitted(
            ReceivedEnvelope.whole(row.envelope), await ctx.client.submit(row.envelope)
        )
    path = DocumentFiles(ctx).path(row.envelope_file)
    received = await asyncio.to_thread(envelope_of, path)
    return Submitted(received, await ctx.client.submit_file(path))
