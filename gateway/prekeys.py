"""Prekeys: this gateway's own (rotated, uploaded, destroyed) and the other participants'.

A sender seals to each recipient's current prekey (spec §5.5). The hub serves the signed prekey
statements, but the gateway believes one only when the recipient's identity key in its verified
directory signed it. The statements that verified are kept in the gateway's store, so that a
message can still be sealed and queued while the hub is away. A cached statement is used only
if it was fetched at most ``PREKEY_CACHE_MAX_AGE`` seconds ago, is valid now, and verifies again
against the directory of the moment (the recipient may have changed keys or been revoked since).
"""

from __future__ import annotations

from collections.abc import Sequence

from livcr_exchange.constants import DEFAULT_PREKEY_LIFETIME, MAX_DELIVERY_DELAY
from livcr_exchange.directory import Directory
from livcr_exchange.errors import KeyNotValid
from livcr_exchange.keys import PrekeyPublic, PrekeySecret, Suite
from livcr_exchange.prekey_choice import Verified, current_prekey, verified_prekeys
from livcr_exchange.service.hub_client import HubClient, HubRefused
from livcr_exchange.statements import PrekeyStatement

from .context import DAY, Context
from .errors import NO_ANSWER, HubUnavailable, hub_not_serving
from .eventlog import EventLogger, event_logger
from .store import GatewayStore

__all__ = ["PREKEY_CACHE_MAX_AGE", "OwnPrekeys", "PeerPrekeys", "Verified", "current_prekey"]

# A cached statement older than this is not used, however long its window: the recipients
# rotate their prekeys every DEFAULT_PREKEY_LIFETIME, and a gateway refreshes its cache at
# every maintenance round.
PREKEY_CACHE_MAX_AGE = DEFAULT_PREKEY_LIFETIME
MAX_PREKEY_QUERY = 64  # participant ids per GET /v1/prekeys (the hub's limit)


class PeerPrekeys:
    """Recipients' prekeys: ``fetch`` asks the hub (and caches), ``cached`` answers without it."""

    def __init__(
        self, store: GatewayStore, client: HubClient, suite: Suite, log: EventLogger | None = None
    ) -> None:
        self._store = store
        self._client = client
        self._suite = suite
        self._log = event_logger(log)

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
        rows = [
            (pid, statement.prekey_id, signed, statement.not_after)
            for pid, verified in found.items()
            for statement, signed in verified
        ]
        await self._store.cache_peer_prekeys(rows, now)
        return found

    async def cached(
        self, directory: Directory, participant_ids: Sequence[str], now: int
    ) -> dict[str, list[Verified]]:
        """Each participant's cached statements that are recent, valid now and verify again.

        Raises:
            UnknownSender, KeyRevoked, KeyNotValid: a participant has no usable directory entry.
        """
        since = now - PREKEY_CACHE_MAX_AGE
        stored = await self._store.peer_prekeys(list(participant_ids), now, since)
        return {
            pid: verified_prekeys(pid, stored[pid], directory, now, self._suite)
            for pid in participant_ids
        }

    async def current(
        self, directory: Directory, recipients: list[str], now: int, *, hub_away_ok: bool
    ) -> dict[str, PrekeyPublic]:
        """Each recipient's current prekey: from the hub, or, when it does not answer and
        ``hub_away_ok``, from the cache.

        Raises:
            KeyNotValid: the hub has no valid prekey of a recipient.
            HubUnavailable: the hub did not answer, and the cache cannot stand in.
            HubRefused: the hub refused the request.
        """
        try:
            found = await self.fetch(directory, recipients, now)
        except (*NO_ANSWER, HubRefused) as exc:
            if not hub_not_serving(exc):
                raise
            found = await self._instead(directory, recipients, now, exc, hub_away_ok=hub_away_ok)
        chosen = {}
        for recipient in recipients:
            statement = current_prekey(found[recipient])
            if statement is None:
                suite = self._suite.name
                raise KeyNotValid(f"{recipient} has no valid {suite} prekey at the hub")
            chosen[recipient] = statement.prekey
        return chosen

    async def _instead(
        self,
        directory: Directory,
        recipients: list[str],
        now: int,
        why: BaseException,
        *,
        hub_away_ok: bool,
    ) -> dict[str, list[Verified]]:
        """The cached statements, when the hub did not answer. Raises HubUnavailable."""
        text = f"the hub did not answer ({type(why).__name__})"
        if not hub_away_ok:
            raise HubUnavailable(f"{text}; nothing was queued (wait=False queues)") from why
        found = await self.cached(directory, recipients, now)
        missing = [r for r in recipients if not found[r]]
        if missing:
            raise HubUnavailable(
                f"{text} and no recent verified prekey of {', '.join(missing)} is cached;"
                " nothing was queued"
            ) from why
        self._log.info("hub away: sealing to cached prekeys", recipients=len(recipients))
        return found

    async def refresh(self, directory: Directory, own_id: str, now: int) -> None:
        """Fetch (and cache) every other participant's prekeys, for sealing while the hub is
        away. Best effort: a failure leaves the cache as it was, and is logged."""
        peers = sorted(set(directory.participants(now)) - {own_id})
        try:
            if peers:
                await self.fetch(directory, peers, now)
        except Exception as exc:  # noqa: BLE001  (best effort, by design; logged)
            self._log.warning("prekeys of the other participants not refreshed", error=str(exc))


class OwnPrekeys:
    """This gateway's prekeys: rotated before they run out, uploaded, destroyed after use."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.secrets: dict[bytes, PrekeySecret] = {}

    async def rotate(self) -> None:
        """A new prekey when none covers the next half lifetime; expired secrets destroyed;
        what was not uploaded yet, uploaded.

        Raises:
            HubRefused, aiohttp.ClientError, TimeoutError, OSError: the upload failed (retried
                at the next round).
        """
        ctx = self._ctx
        now = ctx.clock()
        lifetime = ctx.config.gateway.prekey_lifetime_days * DAY
        rows = await ctx.store.prekeys()
        if not any(nb <= now + lifetime // 2 < na for _, secret, _, nb, na, _ in rows if secret):
            start = max([now, *(na - lifetime // 7 for *_, na, _ in rows if na > now)])
            await self._new(start, start + lifetime)
            rows = await ctx.store.prekeys()
        destroyed = await ctx.store.destroy_prekeys_before(now - MAX_DELIVERY_DELAY)
        if destroyed:
            self._ctx.log.info("prekey secrets destroyed", count=destroyed)
        # Loaded before the upload: a hub that stops answering now must not leave this
        # gateway unable to open what was sealed to its keys.
        await self.load()
        pending = [(pid, st) for pid, _, st, _, na, uploaded in rows if not uploaded and na > now]
        if pending:
            await ctx.client.put_prekeys([s for _, s in pending])
            await ctx.store.mark_uploaded([pid for pid, _ in pending])

    async def load(self) -> None:
        """The prekey secrets not destroyed yet, decrypted from the store."""
        ctx = self._ctx
        self.secrets = {
            pid: PrekeySecret(ctx.config.suite, ctx.box.open(b"prekey|" + pid, secret))
            for pid, secret, *_ in await ctx.store.prekeys()
            if secret is not None
        }

    async def _new(self, not_before: int, not_after: int) -> None:
        ctx = self._ctx
        suite = ctx.config.suite
        secret = PrekeySecret(suite, ctx.random(suite.secret_seed_bytes))
        statement = PrekeyStatement(
            ctx.participant_id, ctx.identity.key_id, secret.public, not_before, not_after
        ).sign(ctx.identity)
        pid = secret.key_id
        sealed = ctx.box.seal(b"prekey|" + pid, secret.seed)
        await ctx.store.add_prekey(pid, sealed, statement, not_before, not_after)
