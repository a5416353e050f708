"""A signed HTTP client for the hub's /v1 API, used by gateways, tools and tests.

Every request carries the RFC 9421-style signature of spec §11.1. Every answer is decoded with
its type (``livcr_exchange.hub_answers``): a problem+json answer becomes a ``HubRefused`` with
the hub's error code, and an answer that breaks the contract (not JSON, a field missing, of the
wrong type or unknown, an unexpected status) a ``HubAnswerInvalid``, which callers treat like a
hub that did not answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
from yarl import URL

from ..hashing import RandomSource
from ..hub_answers import (
    AckResult,
    Answer,
    BatchResult,
    CaseView,
    ConsistencyAnswer,
    CosignaturesAccepted,
    DirectoryListing,
    InboxPage,
    InclusionAnswer,
    LeavesPage,
    PrekeyListing,
    ProblemAnswer,
    ReceiptAnswer,
    StoredCount,
)
from ..keys import IdentityKey
from ..request_auth import HubBinding, RequestTarget, digest_field, sign_request
from .problems import Problem

LARGE_BODY_BYTES = 1024 * 1024  # aiohttp's threshold for its large-body warning
FILE_PIECE = 256 * 1024  # bytes per read or write of an envelope streamed from or to a file
A = TypeVar("A", bound=Answer)
OK = frozenset({200})


class HubRefused(Problem):
    """The hub answered with a problem document (or another error status): its code, detail
    and status, which a service may pass on as they are."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(code, detail, status)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"


class HubAnswerInvalid(HubRefused):
    """The hub's answer breaks the API contract; counted as no answer (status 502)."""

    code_name = "hub_answer_invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(502, self.code_name, detail)


class ReceiptAnswered(msgspec.Struct, frozen=True):
    """A submission's receipt; ``accepted_before``: a resubmission's original one (200)."""

    receipt: ReceiptAnswer
    accepted_before: bool


_DECODERS: dict[type[Answer], msgspec.json.Decoder[Answer]] = {}


def decode_answer(kind: type[A], payload: bytes) -> A:
    """``payload`` decoded as ``kind``. Raises HubAnswerInvalid."""
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    try:
        answer = decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise HubAnswerInvalid(f"not a {kind.__name__}: {exc}") from exc
    if not isinstance(answer, kind):  # pragma: no cover  (the decoder's own guarantee)
        raise HubAnswerInvalid(f"not a {kind.__name__}")
    return answer


class HubClient:
    """The hub's API as typed calls; see the module docstring for what each raises."""

    def __init__(
        self,
        base_url: str,
        participant_id: str,
        identity: IdentityKey,
        session: aiohttp.ClientSession,
        *,
        hub: HubBinding,
        clock: Callable[[], int] = lambda: int(time.time()),
        random: RandomSource = os.urandom,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.participant_id = participant_id
        self.hub = hub
        self._identity = identity
        self._session = session
        self._clock = clock
        self._random = random

    def signed_headers(
        self, method: str, path: str, query: str, body: bytes, *, digest: str | None = None
    ) -> dict[str, str]:
        """Headers signing a request for this client's hub; ``path`` and ``query`` exactly as
        sent, percent-encoding included (spec §11.1). ``digest``: the Content-Digest of a body
        streamed from a file (``body`` is then empty)."""
        target = RequestTarget(method, path, query, body)
        return sign_request(
            target,
            self.participant_id,
            self._identity,
            hub=self.hub,
            now=self._clock(),
            random=self._random,
            digest=digest,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: bytes = b"",
        content_type: str = "application/json",
        expect: Collection[int] = OK,
    ) -> tuple[int, bytes]:
        """Send a signed request; return the status and the raw answer.

        Raises:
            HubRefused: the hub answered with a problem document or another error status.
            HubAnswerInvalid: a status not in ``expect``.
        """
        query_string = urlencode(query or {})
        sent_path = quote(path)
        headers = self.signed_headers(method, sent_path, query_string, body)
        if body:
            headers["Content-Type"] = content_type
        # Sent exactly as signed: left to itself, yarl would re-quote the query ("%2C" -> ",").
        url = URL(
            self.base_url + sent_path + (f"?{query_string}" if query_string else ""),
            encoded=True,
        )
        # A file-like body is written in pieces; aiohttp warns that raw bytes over 1 MiB would
        # be written in one go, holding up the event loop.
        data = io.BytesIO(body) if len(body) > LARGE_BODY_BYTES else body
        async with self._session.request(
            method, url, data=data, headers=headers, allow_redirects=False
        ) as response:
            payload = await response.read()
            if response.status >= 400:
                raise _refusal(response.status, payload)
            if response.status not in expect:
                raise HubAnswerInvalid(f"unexpected status {response.status} for {path}")
            return response.status, payload

    async def typed(
        self,
        kind: type[A],
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: bytes = b"",
        expect: Collection[int] = OK,
    ) -> A:
        """``call``, its answer decoded as ``kind``. Raises HubRefused, HubAnswerInvalid."""
        _, payload = await self.request(method, path, query=query, body=body, expect=expect)
        return decode_answer(kind, payload)

    async def submit(self, envelope: bytes) -> ReceiptAnswered:
        status, payload = await self.request(
            "POST",
            "/v1/envelopes",
            body=envelope,
            content_type="application/octet-stream",
            expect=(200, 201),
        )
        return ReceiptAnswered(decode_answer(ReceiptAnswer, payload), status == 200)

    async def submit_file(self, path: Path) -> ReceiptAnswered:
        """Submit the envelope in the file at ``path`` as a streamed body: a first pass over the
        file computes its Content-Digest, the second sends it, neither holds it whole.

        Raises:
            HubRefused, HubAnswerInvalid: as ``request``; OSError: the file cannot be read.
        """
        digest = digest_field(await asyncio.to_thread(_file_sha256, path))
        headers = self.signed_headers("POST", "/v1/envelopes", "", b"", digest=digest)
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Length"] = str(path.stat().st_size)
        url = URL(self.base_url + "/v1/envelopes", encoded=True)
        async with self._session.post(
            url, data=_file_pieces(path), headers=headers, allow_redirects=False
        ) as response:
            payload = await response.read()
            if response.status >= 400:
                raise _refusal(response.status, payload)
            if response.status not in (200, 201):
                raise HubAnswerInvalid(f"unexpected status {response.status} for /v1/envelopes")
        return ReceiptAnswered(decode_answer(ReceiptAnswer, payload), response.status == 200)

    async def fetch_envelope(self, message_id: str) -> bytes:
        """The envelope of delivery ``message_id``, whole in memory (a small one; a gateway
        spools with ``download``). Raises HubRefused (404: no such delivery waits)."""
        return (await self.request("GET", f"/v1/deliveries/{message_id}"))[1]

    async def download(self, message_id: str, target: Path, size: int) -> None:
        """Fetch the envelope of delivery ``message_id`` (``size`` bytes, as its notice says)
        into ``target``, resuming after what ``target`` holds already (``Range``).

        Raises:
            HubRefused: the hub refused (404 ``not_found``: no such delivery waits).
            HubAnswerInvalid: more bytes than announced, or an unexpected status.
            aiohttp.ClientError, TimeoutError, OSError: the transfer broke off; call again to
                resume.
        """
        have = target.stat().st_size if target.exists() else 0
        if have >= size:
            if have == size:
                return
            target.unlink()
            have = 0
        path = f"/v1/deliveries/{message_id}"
        headers = self.signed_headers("GET", path, "", b"")
        if have:
            headers["Range"] = f"bytes={have}-"
        url = URL(self.base_url + path, encoded=True)
        async with self._session.get(url, headers=headers, allow_redirects=False) as response:
            if response.status >= 400:
                raise _refusal(response.status, await response.read())
            if response.status != (206 if have else 200):
                raise HubAnswerInvalid(f"unexpected status {response.status} for {path}")
            with target.open("ab") as out:
                async for piece in response.content.iter_chunked(FILE_PIECE):
                    have += len(piece)
                    if have > size:
                        raise HubAnswerInvalid(f"{path} sent more than its {size} bytes")
                    await asyncio.to_thread(out.write, piece)
        if have != size:
            raise aiohttp.ClientPayloadError(f"{path} ended after {have} of {size} bytes")

    async def submit_batch(self, envelopes: Sequence[bytes]) -> BatchResult:
        body = msgspec.json.encode({"envelopes": list(envelopes)})
        return await self.typed(BatchResult, "POST", "/v1/envelopes/batch", body=body)

    async def inbox(self, after: int = 0, limit: int = 50) -> InboxPage:
        query = {"after": after, "limit": limit}
        return await self.typed(InboxPage, "GET", "/v1/inbox", query=query)

    async def ack(self, receipts: Sequence[tuple[bytes, int, bytes]]) -> AckResult:
        items = [{"message_id": m.hex(), "received_at": t, "signature": s} for m, t, s in receipts]
        body = msgspec.json.encode({"receipts": items})
        return await self.typed(AckResult, "POST", "/v1/inbox/ack", body=body)

    async def directory(self) -> DirectoryListing:
        return await self.typed(DirectoryListing, "GET", "/v1/directory")

    async def put_prekeys(self, statements: Sequence[bytes]) -> StoredCount:
        body = msgspec.json.encode({"statements": list(statements)})
        return await self.typed(StoredCount, "PUT", "/v1/prekeys", body=body)

    async def prekeys(self, participant_ids: Sequence[str]) -> dict[str, list[bytes]]:
        query = {"ids": ",".join(participant_ids)}
        return (await self.typed(PrekeyListing, "GET", "/v1/prekeys", query=query)).prekeys

    async def open_case(self, case_ref: str, members: Sequence[str]) -> CaseView:
        body = msgspec.json.encode({"case_ref": case_ref, "members": list(members)})
        return await self.typed(CaseView, "POST", "/v1/cases", body=body, expect=(201,))

    async def case(self, case_ref: str) -> CaseView:
        return await self.typed(CaseView, "GET", f"/v1/cases/{case_ref}")

    async def change_members(
        self,
        case_ref: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        owner: str | None = None,
    ) -> CaseView:
        change = {"add": list(add), "remove": list(remove)}
        body = msgspec.json.encode(change if owner is None else {**change, "owner": owner})
        return await self.typed(CaseView, "POST", f"/v1/cases/{case_ref}/members", body=body)

    async def record_meeting(
        self, case_ref: str, meeting_ref: str, present: Sequence[str]
    ) -> CaseView:
        body = msgspec.json.encode({"meeting_ref": meeting_ref, "present": list(present)})
        path = f"/v1/cases/{case_ref}/meetings"
        return await self.typed(CaseView, "POST", path, body=body, expect=(201,))

    async def move_case(self, case_ref: str, to: str, reason: str | None = None) -> CaseView:
        move = {"to": to} if reason is None else {"to": to, "reason": reason}
        path = f"/v1/cases/{case_ref}/transition"
        return await self.typed(CaseView, "POST", path, body=msgspec.json.encode(move))

    async def leaves(self, start: int, end: int) -> LeavesPage:
        query = {"start": start, "end": end}
        return await self.typed(LeavesPage, "GET", "/v1/log/leaves", query=query)

    async def text(self, path: str) -> bytes:
        """A text document the hub serves at ``path`` (a checkpoint note). Raises HubRefused."""
        return (await self.request("GET", path))[1]

    async def checkpoint(self) -> bytes:
        return (await self.request("GET", "/v1/log/checkpoint"))[1]

    async def cosigned(self) -> bytes | None:
        """The newest checkpoint with a quorum of witness cosignatures (spec §10.7), or None
        when the hub has none yet.

        Raises:
            HubRefused: any other refusal.
        """
        try:
            return (await self.request("GET", "/v1/log/cosigned"))[1]
        except HubRefused as exc:
            if exc.status == 404:
                return None
            raise

    async def offer_cosignature(self, note: bytes) -> list[str]:
        """Send this gateway's witness cosignature, as the checkpoint note with its line added
        (spec §10.7); return the witness names the hub accepted.

        Raises:
            HubRefused: the line is not a valid cosignature of a witness of the policy.
            HubAnswerInvalid: the answer is not a CosignaturesAccepted.
        """
        _, payload = await self.request(
            "POST", "/v1/log/cosignatures", body=note, content_type="text/plain", expect=(202,)
        )
        return decode_answer(CosignaturesAccepted, payload).accepted

    async def consistency(self, old: int, new: int) -> list[bytes]:
        query = {"old": old, "new": new}
        path = "/v1/log/consistency"
        return (await self.typed(ConsistencyAnswer, "GET", path, query=query)).proof

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        query = {"index": index, "size": size}
        return (await self.typed(InclusionAnswer, "GET", "/v1/log/inclusion", query=query)).proof

    async def stream(self) -> aiohttp.ClientWebSocketResponse:
        """Open the push WebSocket (the upgrade request is signed like any other)."""
        headers = self.signed_headers("GET", "/v1/stream", "", b"")
        url = self.base_url.replace("http", "ws", 1) + "/v1/stream"
        return await self._session.ws_connect(url, headers=headers, heartbeat=20)


_PROBLEM = msgspec.json.Decoder(ProblemAnswer)


def _file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()  # PyNaCl offers no incremental SHA-256
    with path.open("rb") as source:
        while piece := source.read(FILE_PIECE):
            digest.update(piece)
    return digest.digest()


async def _file_pieces(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while piece := await asyncio.to_thread(source.read, FILE_PIECE):
            yield piece


def _refusal(status: int, payload: bytes) -> HubRefused:
    try:
        problem = _PROBLEM.decode(payload)
    except msgspec.DecodeError:
        return HubRefused(status, "http_error", payload[:200].decode("utf-8", "replace"))
    return HubRefused(status, problem.code, problem.detail)
