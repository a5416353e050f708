"""Upkeep: the verified directory refreshed, the log checked, prekeys rotated, every interval;
and a start on what was verified before when the hub does not answer."""

from __future__ import annotations

import asyncio

from livcr_exchange.errors import LivcrError
from livcr_exchange.service.hub_client import HubRefused

from .context import Context
from .docfiles import DocumentFiles
from .errors import NO_ANSWER, HubUnavailable, hub_not_serving
from .prekeys import OwnPrekeys, PeerPrekeys
from .trust import TrustFailure, cached_directory, fetch_directory


class Upkeep:
    """The maintenance rounds of one gateway."""

    def __init__(self, ctx: Context, own: OwnPrekeys, peers: PeerPrekeys) -> None:
        self._ctx = ctx
        self._own = own
        self._peers = peers
        self._hub_missed_at_start = False  # then the loop retries soon, not after an interval

    async def first_round(self) -> None:
        """The first round, or a start on what was verified before.

        Raises:
            DirectoryUntrusted: the hub's (or the kept) directory does not verify.
            HubUnavailable: the hub did not answer, and no directory was ever verified.
        """
        await self._ctx.witnesses.load()
        try:
            await self.maintain()
        except (*NO_ANSWER, HubRefused) as exc:
            if not hub_not_serving(exc):
                raise
            await self._start_without_hub(exc)

    async def _start_without_hub(self, why: BaseException) -> None:
        """Open on the directory verified before and the prekey secrets at hand.

        Raises:
            HubUnavailable: no directory was ever verified.
            DirectoryUntrusted: the kept directory does not verify.
        """
        ctx = self._ctx
        try:
            directory = await cached_directory(
                ctx.store, ctx.config.gateway.cell_id, ctx.config.root_key
            )
        except TrustFailure as exc:
            ctx.halt(str(exc))
            raise
        if directory is None:
            raise HubUnavailable(
                f"the hub did not answer ({type(why).__name__}) and this gateway has never"
                " verified a directory: start it once while the hub is reachable"
            ) from why
        ctx.directory = directory
        await self._own.load()
        self._hub_missed_at_start = True
        self._ctx.log.warning(
            "the hub did not answer; started on the directory verified before",
            error=type(why).__name__,
            participants=len(directory.participants(ctx.clock())),
        )

    async def maintain(self) -> None:
        """Refresh the verified directory; check the log and its witnesses (and cosign as one);
        rotate, upload and destroy prekeys."""
        ctx = self._ctx
        try:
            ctx.directory = await fetch_directory(
                ctx.client, ctx.config.gateway.cell_id, ctx.config.root_key, ctx.store
            )
            await ctx.trust.observe(await ctx.client.checkpoint())
            await ctx.witnesses.update_policy()
            await ctx.witnesses.cosign(ctx.client)
            await ctx.witnesses.round(ctx.client)
        except TrustFailure as exc:
            ctx.halt(str(exc))
            raise
        await self._own.rotate()
        await self._peers.refresh(ctx.directory, ctx.participant_id, ctx.clock())
        try:
            await DocumentFiles(ctx).sweep()  # uploads never sent, erased documents, strays
        except OSError as exc:
            ctx.log.warning("documents folder not swept", error=str(exc))

    async def loop(self) -> None:
        """A round every interval; after a failed round (or a start without the hub) the next
        comes sooner, backing off like deliveries, so a hub that is back is caught up with."""
        failures = int(self._hub_missed_at_start)
        while True:
            pause = self._ctx.config.gateway.maintenance_interval_seconds
            if failures:
                pause = min(pause, self._ctx.backoff(failures - 1))
            await asyncio.sleep(pause)
            try:
                await self.maintain()
                failures = 0
            except TrustFailure:
                return
            except (*NO_ANSWER, HubRefused, LivcrError) as exc:
                failures += 1
                self._ctx.log.warning(
                    "maintenance round failed", error=str(exc) or type(exc).__name__
                )
