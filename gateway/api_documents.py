"""The local API's documents: an upload step, then a send that names its uploads; and the
streamed download of a document in the dossier.

``POST /v1/attachments?name=...`` takes the raw file as the request body, its media type as the
``Content-Type``; it streams to a sealed file, checked by content as it comes, in constant
memory. The JSON routes keep the API's request cap; this one has the largest per-file cap of
the purpose catalogue. An upload not sent within a day is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import hdrs, web
from aiohttp.helpers import content_disposition_header

from livcr_exchange.service.problems import Problem

from .api_inputs import reply
from .api_outbox import message_id_of
from .docfiles import DocumentFiles
from .errors import UploadGone
from .facade import Gateway
from .sealed_files import CHUNK_BYTES
from .store import DocumentRow

DOCUMENTS_GATEWAY = web.AppKey("documents-gateway", Gateway)
MAX_DOCUMENT_INDEX = 1000


def upload_json(row: DocumentRow) -> dict[str, object]:
    return {
        "attachment_id": row.file_id,
        "size": row.size,
        "digest": row.digest,
        "media_type": row.media_type,
        "name": row.name,
    }


async def upload(request: web.Request) -> web.Response:
    gateway = request.app[DOCUMENTS_GATEWAY]
    name = request.query.get("name", "")
    if not name:
        raise Problem("malformed", "the query parameter name gives the document's filename")
    row = await DocumentFiles(gateway.ctx).upload(
        name,
        request.headers.get(hdrs.CONTENT_TYPE, ""),
        request.content.iter_chunked(CHUNK_BYTES),
        length=request.content_length,
    )
    return reply(upload_json(row), 201)


async def uploads_named(gateway: Gateway, ids: Sequence[str]) -> list[DocumentRow]:
    """The uploads ``ids`` names, in its order.

    Raises:
        UploadGone: one is not held (never made, expired, or sent already).
    """
    held = await gateway.ctx.store.uploads(list(ids)) if ids else {}
    missing = [i for i in ids if i not in held]
    if missing:
        raise UploadGone(missing[0])
    return [held[i] for i in ids]


async def download(request: web.Request) -> web.StreamResponse:
    """The ``n``-th document of a message in the dossier, decrypted as it streams."""
    gateway = request.app[DOCUMENTS_GATEWAY]
    message_id = message_id_of(request)
    text = request.match_info["n"]
    if not text.isdigit() or int(text) > MAX_DOCUMENT_INDEX:
        raise Problem("malformed", f"n is a document's index, 0 to {MAX_DOCUMENT_INDEX}")
    row = await gateway.ctx.store.document(message_id, int(text))
    if row is None:
        raise Problem("not_found", "no such document in the dossier (or it was erased)", 404)
    chunks = DocumentFiles(gateway.ctx).read(row.file_id)
    first = next(chunks)  # a file that does not open is refused before any byte is sent
    response = web.StreamResponse(
        headers={
            hdrs.CONTENT_TYPE: row.media_type,
            hdrs.CONTENT_LENGTH: str(row.size),
            hdrs.CONTENT_DISPOSITION: content_disposition_header("attachment", filename=row.name),
        }
    )
    await response.prepare(request)
    await response.write(first)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def document_routes(app: web.Application, gateway: Gateway) -> None:
    app[DOCUMENTS_GATEWAY] = gateway
    app.router.add_routes(
        [
            web.post("/v1/attachments", upload),
            web.get("/v1/messages/{message_id}/attachments/{n}", download),
        ]
    )
