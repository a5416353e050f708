"""The coordinator's case calls (the hub refuses them from anyone else), and a case as the hub
reports it."""

from __future__ import annotations

from collections.abc import Iterable

from livcr_exchange.cases import mint_case_ref
from livcr_exchange.hashing import RandomSource
from livcr_exchange.hub_answers import CaseView
from livcr_exchange.service.hub_client import HubClient


class Cases:
    """Open, staff, meet, move and read cases through the hub."""

    def __init__(self, client: HubClient, random: RandomSource) -> None:
        self._client = client
        self._random = random

    def new_case_ref(self) -> str:
        """A fresh pseudonymous case reference: random, meaningless, never derived from a person."""
        return mint_case_ref(self._random)

    async def open_case(self, members: Iterable[str], case_ref: str | None = None) -> str:
        """Open a case; its reference (a new one unless given). Raises HubRefused."""
        case_ref = case_ref or self.new_case_ref()
        await self._client.open_case(case_ref, sorted(set(members)))
        return case_ref

    async def case(self, case_ref: str) -> CaseView:
        """The case's state and members as the hub reports them. Raises HubRefused."""
        return await self._client.case(case_ref)

    async def change_members(
        self,
        case_ref: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        owner: str | None = None,
    ) -> CaseView:
        """Raises HubRefused."""
        return await self._client.change_members(
            case_ref, add=list(add), remove=list(remove), owner=owner
        )

    async def record_meeting(
        self, case_ref: str, meeting_ref: str, present: Iterable[str]
    ) -> CaseView:
        """Raises HubRefused."""
        return await self._client.record_meeting(case_ref, meeting_ref, sorted(set(present)))

    async def move_case(self, case_ref: str, to: str, reason: str | None = None) -> CaseView:
        """Raises HubRefused."""
        return await self._client.move_case(case_ref, to, reason)
