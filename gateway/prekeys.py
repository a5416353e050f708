"""Other participants' prekeys: fetched from the hub, verified, and cached for a hub outage.

A sender seals to each recipient's current prekey (spec §5.5). The hub serves the signed prekey
statements, but the gateway believes one only when the recipient's identity key in its verified
directory signed it. The statements that verified are kept in the gateway's store, so that a
message can still be sealed and queued while the hub is away. A cached statement is used only
if it was fetched at most ``PREKEY_CACHE_MAX_AGE`` seconds ago, is valid now, and verifies again
against the directory of the moment (the recipient may have changed keys or been revoked since).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import structlog

from livcr_exchange.constants import DEFAULT_PREKEY_LIFETIME
from livcr_exchange.directory import Directory
from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import Suite
from livcr_exchange.service.hub_client import HubClient
from livcr_exchange.statements import PrekeyStatement

from .store import GatewayStore

log = structlog.get_logger("livcr.gateway.prekeys")
# A cached statement older than this is not used, however long its window: the recipients
# rotate their prekeys every DEFAULT_PREKEY_LIFETIME, and a gateway refreshes its cache at
# every maintenance round.
PREKEY_CACHE_MAX_AGE = DEFAULT_PREKEY_LIFETIME
MAX_PREKEY_QUERY = 64  # participant ids per GET /v1/prekeys (the hub's limit)


Verified = tuple[PrekeyStatement, bytes]  # a statement and the signed bytes it came from


def verified_prekeys(
    participant_id: str, signed: Iterable[bytes], directory: Directory, now: int, suite: Suite
) -> list[Verified]:
    """The statements that verify against the participant's current identity key, name it,
    are of ``suite`` and are valid at ``now``; the others are dropped (and logged).

    Raises:
        UnknownSender, KeyRevoked, KeyNotValid: the participant has no usable directory entry.
    """
    identity = directory.current_entry(participant_id, now).identity_key
    usable = []
    for item in signed:
        try:
            statement = PrekeyStatement.open(item, identity)
        except LivcrError as exc:
            log.warning("a prekey statement does not verify", code=exc.code)
            continue
        if (
            statement.participant_id == participant_id
            and statement.prekey.suite is suite
            and statement.not_before <= now < statement.not_after
        ):
            usable.append((statement, item))
    return usable


def current_prekey(statements: Sequence[Verified]) -> PrekeyStatement | None:
    """The most recently started of the valid statements, or None."""
    latest = max(statements, key=lambda v: v[0].not_before, default=None)
    return None if latest is None else latest[0]


class PeerPrekeys:
    """Recipients' prekeys: ``fetch`` asks the hub (and caches), ``cached`` answers without it."""

    def __init__(self, store: GatewayStore, client: HubClient, suite: Suite) -> None:
        self._store = store
        self._client = client
        self._suite = suite

    async def fetch(
        self, directory: Directory, participant_ids: Sequence[str], now: int
    ) -> dict[str, list[Verified]]:
        """Each participant's valid statements at the hub, verified; cached for an outage.

        Raises:
            aiohttp.ClientError, TimeoutError, OSError: the hub did not answer.
            HubRefused: the hub refused the request.
            UnknownSender, KeyRevoked, KeyNotValid: a participant has no usable directory entry.
        """
        found: dict[str, list[Verified]] = {}
        for start in range(0, len(participant_ids), MAX_PREKEY_QUERY):
            chunk = list(participant_ids[start : start + MAX_PREKEY_QUERY])
            served = await self._client.prekeys(chunk)
            for pid in chunk:
                found[pid] = verified_prekeys(pid, served.get(pid, []), directory, now, self._suite)
        await self._store.cache_peer_prekeys(
            [
                (pid, statement.prekey_id, signed, statement.not_after)
                for pid, verified in found.items()
                for statement, signed in verified
            ],
            now,
        )
        return found

    async def cached(
        self, directory: Directory, participant_ids: Sequence[str], now: int
    ) -> dict[str, list[Verified]]:
        """Each participant's cached statements that are recent, valid now and verify again.

        Raises:
            UnknownSender, KeyRevoked, KeyNotValid: a participant has no usable directory entry.
        """
        stored = await self._store.peer_prekeys(
            list(participant_ids), now, now - PREKEY_CACHE_MAX_AGE
        )
        return {
            pid: verified_prekeys(pid, stored[pid], directory, now, self._suite)
            for pid in participant_ids
        }
