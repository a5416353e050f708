"""A signed HTTP client for the hub's /v1 API, used by gateways, tools and tests.

Every request carries the RFC 9421-style signature of spec §11.1; a problem+json answer becomes
a ``HubRefused`` with the hub's error code.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
from yarl import URL

from ..hashing import RandomSource
from ..keys import IdentityKey
from ..request_auth import RequestTarget, sign_request

LARGE_BODY_BYTES = 1024 * 1024  # aiohttp's threshold for its large-body warning


class HubRefused(Exception):
    """The hub answered with a problem document."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class HubClient:
    def __init__(
        self,
        base_url: str,
        participant_id: str,
        identity: IdentityKey,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], int] = lambda: int(time.time()),
        random: RandomSource = os.urandom,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.participant_id = participant_id
        self._identity = identity
        self._session = session
        self._clock = clock
        self._random = random

    def signed_headers(self, method: str, path: str, query: str, body: bytes) -> dict[str, str]:
        target = RequestTarget(method, path, query, body)
        return sign_request(
            target, self.participant_id, self._identity, now=self._clock(), random=self._random
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes = b"",
        content_type: str = "application/json",
    ) -> Any:
        """Send a signed request; return the decoded JSON (or text) answer.

        Raises:
            HubRefused: the hub answered with a problem document or another error status.
        """
        query_string = urlencode(query or {})
        headers = self.signed_headers(method, path, query_string, body)
        if body:
            headers["Content-Type"] = content_type
        # Sent exactly as signed: left to itself, yarl would re-quote the query ("%2C" -> ",").
        url = URL(
            self.base_url + quote(path) + (f"?{query_string}" if query_string else ""),
            encoded=True,
        )
        # A file-like body is written in pieces; aiohttp warns that raw bytes over 1 MiB would
        # be written in one go, holding up the event loop.
        data = io.BytesIO(body) if len(body) > LARGE_BODY_BYTES else body
        async with self._session.request(method, url, data=data, headers=headers) as response:
            payload = await response.read()
            if response.status >= 400:
                raise _refusal(response.status, payload)
            if response.content_type == "application/json":
                return msgspec.json.decode(payload)
            return payload

    async def submit(self, envelope: bytes) -> dict[str, Any]:
        receipt: dict[str, Any] = await self.call(
            "POST", "/v1/envelopes", body=envelope, content_type="application/octet-stream"
        )
        return receipt

    async def submit_batch(self, envelopes: list[bytes]) -> list[dict[str, Any]]:
        body = msgspec.json.encode({"envelopes": [_b64(e) for e in envelopes]})
        results: list[dict[str, Any]] = (await self.call("POST", "/v1/envelopes/batch", body=body))[
            "results"
        ]
        return results

    async def inbox(self, after: int = 0, limit: int = 50) -> dict[str, Any]:
        page: dict[str, Any] = await self.call(
            "GET", "/v1/inbox", query={"after": after, "limit": limit}
        )
        return page

    async def ack(self, receipts: list[tuple[bytes, int, bytes]]) -> dict[str, Any]:
        body = msgspec.json.encode(
            {
                "receipts": [
                    {"message_id": m.hex(), "received_at": t, "signature": _b64(s)}
                    for m, t, s in receipts
                ]
            }
        )
        result: dict[str, Any] = await self.call("POST", "/v1/inbox/ack", body=body)
        return result

    async def directory(self) -> dict[str, Any]:
        listing: dict[str, Any] = await self.call("GET", "/v1/directory")
        return listing

    async def put_prekeys(self, statements: list[bytes]) -> None:
        await self.call(
            "PUT",
            "/v1/prekeys",
            body=msgspec.json.encode({"statements": [_b64(s) for s in statements]}),
        )

    async def prekeys(self, participant_ids: list[str]) -> dict[str, list[bytes]]:
        found = await self.call("GET", "/v1/prekeys", query={"ids": ",".join(participant_ids)})
        return {
            pid: [base64.b64decode(s) for s in items] for pid, items in found["prekeys"].items()
        }

    async def open_case(self, case_ref: str, members: list[str]) -> dict[str, Any]:
        body = msgspec.json.encode({"case_ref": case_ref, "members": members})
        case: dict[str, Any] = await self.call("POST", "/v1/cases", body=body)
        return case

    async def case(self, case_ref: str) -> dict[str, Any]:
        case: dict[str, Any] = await self.call("GET", f"/v1/cases/{case_ref}")
        return case

    async def change_members(
        self,
        case_ref: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        owner: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"add": list(add), "remove": list(remove)}
        if owner is not None:
            body["owner"] = owner
        case: dict[str, Any] = await self.call(
            "POST", f"/v1/cases/{case_ref}/members", body=msgspec.json.encode(body)
        )
        return case

    async def record_meeting(
        self, case_ref: str, meeting_ref: str, present: list[str]
    ) -> dict[str, Any]:
        body = msgspec.json.encode({"meeting_ref": meeting_ref, "present": present})
        case: dict[str, Any] = await self.call("POST", f"/v1/cases/{case_ref}/meetings", body=body)
        return case

    async def move_case(self, case_ref: str, to: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"to": to} if reason is None else {"to": to, "reason": reason}
        case: dict[str, Any] = await self.call(
            "POST", f"/v1/cases/{case_ref}/transition", body=msgspec.json.encode(body)
        )
        return case

    async def checkpoint(self) -> bytes:
        note: bytes = await self.call("GET", "/v1/log/checkpoint")
        return note

    async def cosigned(self) -> bytes | None:
        """The newest checkpoint with a quorum of witness cosignatures (spec §10.7), or None
        when the hub has none yet.

        Raises:
            HubRefused: any other refusal.
        """
        try:
            note: bytes = await self.call("GET", "/v1/log/cosigned")
        except HubRefused as exc:
            if exc.status == 404:
                return None
            raise
        return note

    async def offer_cosignature(self, note: bytes) -> list[str]:
        """Send this gateway's witness cosignature, as the checkpoint note with its line added
        (spec §10.7); return the witness names the hub accepted.

        Raises:
            HubRefused: the line is not a valid cosignature of a witness of the policy.
        """
        answer = await self.call(
            "POST", "/v1/log/cosignatures", body=note, content_type="text/plain"
        )
        return [str(name) for name in answer["accepted"]]

    async def consistency(self, old: int, new: int) -> list[bytes]:
        answer = await self.call("GET", "/v1/log/consistency", query={"old": old, "new": new})
        return [base64.b64decode(h) for h in answer["proof"]]

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        answer = await self.call("GET", "/v1/log/inclusion", query={"index": index, "size": size})
        return [base64.b64decode(h) for h in answer["proof"]]

    async def stream(self) -> aiohttp.ClientWebSocketResponse:
        """Open the push WebSocket (the upgrade request is signed like any other)."""
        headers = self.signed_headers("GET", "/v1/stream", "", b"")
        url = self.base_url.replace("http", "ws", 1) + "/v1/stream"
        return await self._session.ws_connect(url, headers=headers, heartbeat=20)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _refusal(status: int, payload: bytes) -> HubRefused:
    try:
        problem = msgspec.json.decode(payload)
        return HubRefused(
            status, str(problem.get("code", "http_error")), str(problem.get("detail", ""))
        )
    except (msgspec.DecodeError, AttributeError):
        return HubRefused(status, "http_error", payload[:200].decode("utf-8", "replace"))
