"""Envelopes in and out as streams: a large submission goes to storage as it arrives, and a
recipient fetches its deliveries' bytes with a streamed GET that resumes (spec §11.2).

A streamed submission's headers were checked before its body (hub/admission.py). Its handler
then reads the body piece by piece: the envelope's frame and header are parsed from the first
bytes (a bad or oversized one is refused before the rest is read), every piece is written to
the store's sink, and the request's SHA-256 Content-Digest, the sealed body's hash and the
envelope hash are computed as the pieces pass. Only then are the request's signature, the
envelope's signature and the policy checked; whatever fails is discarded from storage, and the
receipt is sent only once the envelope's bytes and its row are durable (``EnvelopeSink``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re

import msgspec
from aiohttp import StreamReader, web

from livcr_exchange.envelope.incoming import IncomingEnvelope
from livcr_exchange.errors import UnknownSender
from livcr_exchange.request_auth import digest_field
from livcr_exchange.service.problems import Problem

from . import operations
from .admission import read_deadline
from .appkeys import AUDITED, CALLER, HUB, METRICS, PURPOSE, caller_of
from .authn import verify_caller
from .store.base import EnvelopeSink, HubStore

NO_DELIVERY = "no such delivery"  # one answer whatever the reason: nothing leaks
_RANGE = re.compile(r"bytes=([0-9]{1,19})-")
_MESSAGE_ID = re.compile(r"[0-9a-f]{32}")


class Upload:
    """One streamed envelope: its digests so far, and the sink its bytes went to."""

    def __init__(self, store: HubStore, participant_id: str, cap: int) -> None:
        self._store = store
        self._participant_id = participant_id
        self._cap = cap
        self.incoming = IncomingEnvelope()
        self.request_hash = hashlib.sha256()  # PyNaCl has no incremental SHA-256
        self.sink: EnvelopeSink | None = None
        self._pending: list[bytes] = []  # the first pieces, until the header parsed

    async def read(self, content: StreamReader) -> None:
        """Read the body to its end, hashing and storing it.

        Raises:
            Problem: ``oversized`` over the cap.
            LivcrError: a bad frame or header, or another sender's envelope.
        """
        async for piece in content.iter_any():
            if self.incoming.received + len(piece) > self._cap:
                raise Problem("oversized", f"request body over {self._cap} bytes", 413)
            self.request_hash.update(piece)
            self.incoming.feed(piece)
            if self.sink is not None:
                await self.sink.write(piece)
            else:
                self._pending.append(piece)
                if self.incoming.header is not None:
                    await self._open_sink()

    async def _open_sink(self) -> None:
        """Once the header parsed: refuse what it already shows, else start storing."""
        header = self.incoming.header
        assert header is not None  # noqa: S101  (called once it parsed)
        size = self.incoming.expected_size or 0
        if size > self._cap:
            raise Problem("oversized", f"envelope of {size} bytes over {self._cap}", 413)
        if header.core.sender_id != self._participant_id:
            raise UnknownSender("the envelope's sender is not the requesting participant")
        self.sink = await self._store.envelope_sink(header.core.message_id)
        for piece in self._pending:
            await self.sink.write(piece)
        self._pending = []

    async def discard(self) -> None:
        if self.sink is not None:
            await self.sink.discard()


async def submit_streamed(request: web.Request) -> web.Response:
    """POST /v1/envelopes with a large body (or one of unknown length): see the module doc."""
    hub = request.app[HUB]
    section = hub.config.hub
    cap = section.max_request_bytes
    declared = cap if request.content_length is None else request.content_length
    # Until its signature is checked, a submission is from nobody: the bytes it may put on disk
    # meanwhile come out of one budget, reserved before any is read.
    if not hub.streamed_budget.try_reserve(declared):
        raise Problem("busy", "the hub is receiving too many large envelopes; retry shortly", 503)
    upload = Upload(hub.store, request.headers.get("Livcr-Participant", ""), cap)
    try:
        try:
            async with asyncio.timeout(read_deadline(section, declared)):
                await upload.read(request.content)
        except TimeoutError as exc:
            raise Problem("body_timeout", "the request body did not arrive in time", 408) from exc
        received = upload.incoming.finish()
        digest = digest_field(upload.request_hash.digest())
        caller = await verify_caller(hub, request, b"", digest=digest)
        hub.streamed_budget.release(declared)  # authenticated: its bytes are a participant's now
        declared = 0
        request[CALLER] = caller
        request[AUDITED] = True  # accept_submission audits every refusal, with the message id

        def submission() -> operations.Submission:
            return operations.Submission(received, sink=upload.sink)

        receipt = await operations.accept_submission(
            hub, caller, submission, note_purpose=lambda p: request.__setitem__(PURPOSE, p)
        )
    finally:
        hub.streamed_budget.release(declared)
        await upload.discard()  # a no-op once the sink committed
    body = msgspec.json.encode(receipt.answer())
    if receipt.accepted_before:  # 200: the original receipt of a resubmission (spec §9.3)
        return web.Response(body=body, content_type="application/json")
    request.app[METRICS].accepted(request[PURPOSE])
    return web.Response(body=body, status=201, content_type="application/json")


def range_start(header: str | None, size: int) -> int | None:
    """Where a ``Range: bytes=N-`` asks the envelope to start (None: no Range header).

    Raises:
        Problem: ``range_not_satisfiable`` (416) for another form, or N at or past the end.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or int(match[1]) >= size:
        raise Problem("range_not_satisfiable", f"only bytes=N- with N below {size} is served", 416)
    return int(match[1])


async def fetch_delivery(request: web.Request) -> web.StreamResponse:
    """GET /v1/deliveries/{message_id}: the raw envelope of a delivery waiting for the caller,
    streamed piece by piece; from byte N with ``Range: bytes=N-`` (206)."""
    hub = request.app[HUB]
    caller = caller_of(request)
    raw_id = request.match_info["message_id"]
    stored = None
    if _MESSAGE_ID.fullmatch(raw_id):
        stored = await hub.store.stored_envelope(caller.participant_id, bytes.fromhex(raw_id))
    if stored is None:
        raise Problem("not_found", NO_DELIVERY, 404)
    start = range_start(request.headers.get("Range"), stored.size)
    response = web.StreamResponse(status=200 if start is None else 206)
    response.content_type = "application/octet-stream"
    response.content_length = stored.size - (start or 0)
    response.headers["Accept-Ranges"] = "bytes"
    if start is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stored.size - 1}/{stored.size}"
    await response.prepare(request)
    async for piece in stored.chunks(start or 0):
        await response.write(piece)
    await response.write_eof()
    return response
