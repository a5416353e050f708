"""A HubClient that hands back the hub's answers as the JSON documents they are on the wire.

The gateway decodes every answer with its type (``livcr_exchange.hub_answers``); the hub's own
tests check the documents themselves, field by field, and send requests the client would not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from livcr_exchange.service.hub_client import HubClient


class JsonClient(HubClient):
    """``HubClient`` with every answer as builtins (bytes as base64 text, as in the JSON)."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: bytes = b"",
        content_type: str = "application/json",
    ) -> Any:
        """Any request; its JSON answer decoded (text answers as bytes). Raises HubRefused."""
        _, payload = await self.request(
            method, path, query=query, body=body, content_type=content_type, expect=range(200, 300)
        )
        try:
            return msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return payload

    async def submit(self, envelope: bytes) -> Any:
        return msgspec.to_builtins((await super().submit(envelope)).receipt)

    async def submit_batch(self, envelopes: Sequence[bytes]) -> Any:
        return msgspec.to_builtins((await super().submit_batch(envelopes)).results)

    async def inbox(self, after: int = 0, limit: int = 50) -> Any:
        return msgspec.to_builtins(await super().inbox(after, limit))

    async def ack(self, receipts: Sequence[tuple[bytes, int, bytes]]) -> Any:
        return msgspec.to_builtins(await super().ack(receipts))

    async def directory(self) -> Any:
        return msgspec.to_builtins(await super().directory())

    async def open_case(self, case_ref: str, members: Sequence[str]) -> Any:
        return msgspec.to_builtins(await super().open_case(case_ref, members))

    async def case(self, case_ref: str) -> Any:
        return msgspec.to_builtins(await super().case(case_ref))

    async def change_members(self, case_ref: str, **changes: Any) -> Any:
        return msgspec.to_builtins(await super().change_members(case_ref, **changes))

    async def record_meeting(self, case_ref: str, meeting_ref: str, present: Sequence[str]) -> Any:
        return msgspec.to_builtins(await super().record_meeting(case_ref, meeting_ref, present))

    async def move_case(self, case_ref: str, to: str, reason: str | None = None) -> Any:
        return msgspec.to_builtins(await super().move_case(case_ref, to, reason))
