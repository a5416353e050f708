"""Receiving: every delivered envelope verified, opened and checked on its own, then stored once
per verified (sender, message id) and acknowledged.

The hub announces deliveries (a notice: id and size); each envelope is fetched into the spool
(gateway/spool.py) and opened from there. A large one is fetched beside the stream, one at a
time, so the messages behind it do not wait for its transfer; one that cannot be fetched now is
left with the hub and the next one goes on.

An envelope that fails any check (a library error, or anything unexpected while handling it) is
quarantined: kept as it came, with its code, and acknowledged, so that the hub's queue moves on
and the loop goes on. Only what was opened, or kept in quarantine, is acknowledged; the hub's
word on an envelope's id is never believed over the envelope's signed header. A halted gateway
neither stores nor acknowledges: what the hub holds for it stays queued there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import msgspec

from livcr_exchange.audit.leaves import delivery_receipt_message
from livcr_exchange.envelope import HeaderCore
from livcr_exchange.errors import LivcrError
from livcr_exchange.hub_answers import DeliveryFrame, DeliveryItem, PushFrame
from livcr_exchange.policy import MessageFacts
from livcr_exchange.service.hub_client import HubAnswerInvalid, HubRefused

from .context import Context
from .docfiles import DocumentFiles
from .errors import NO_ANSWER, GatewayHalted
from .incoming import open_delivered
from .prekeys import OwnPrekeys
from .spool import KEPT_IN_STORE_BYTES, FetchFailed, Spool, header_core_of, read_pieces
from .store import Quarantined
from .trust import TrustFailure

Stored = Callable[[HeaderCore, bytes], None]
_FRAME = msgspec.json.Decoder(PushFrame)
UNEXPECTED = "unexpected"  # the quarantine code of a failure that is no library error
# A delivery larger than this is fetched beside the stream (``_dispatch``).
BESIDE_STREAM_BYTES = 1024 * 1024


class Inbox:
    """The push stream's loop, polling, and the handling of one delivered envelope."""

    def __init__(
        self,
        ctx: Context,
        prekeys: OwnPrekeys,
        refresh: Callable[[], Awaitable[None]],
        on_stored: Stored,
        on_connected: Callable[[], Awaitable[None]],
    ) -> None:
        self._ctx = ctx
        self._prekeys = prekeys
        self._refresh = refresh
        self._on_stored = on_stored
        self._on_connected = on_connected
        self._files = DocumentFiles(ctx)
        self.stream: aiohttp.ClientWebSocketResponse | None = None
        self.arrived = asyncio.Event()  # set on each newly stored message (``messages``)
        self.arrival = asyncio.Event()  # set, then replaced, on each newly stored message
        database = ctx.config.path(ctx.config.gateway.database)
        self.spool = Spool(database, ctx.client)
        self._large: dict[str, asyncio.Task[None]] = {}  # fetched beside the stream, by id
        self._large_turn = asyncio.Lock()  # one large transfer at a time

    async def loop(self) -> None:
        """Follow the push stream; reconnect with backoff when it ends."""
        ctx = self._ctx
        delay = ctx.config.gateway.retry_initial_seconds
        while ctx.halted is None:
            try:
                if await self._follow():
                    delay = ctx.config.gateway.retry_initial_seconds
            except (*NO_ANSWER, HubRefused) as exc:
                self._ctx.log.info("hub stream lost; reconnecting", error=type(exc).__name__)
            except (GatewayHalted, TrustFailure):
                break  # the halt said why; nothing more is accepted from this hub
            finally:
                self.stream = None
                ctx.connected.clear()
            await asyncio.sleep(delay)
            delay = min(ctx.config.gateway.retry_max_seconds, delay * 2)
        self._ctx.log.warning("push stream closed: the gateway is halted", reason=ctx.halted)

    async def _follow(self) -> bool:
        """Read the stream until it ends; whether it was connected.

        Raises:
            HubAnswerInvalid: a frame that breaks the contract (the stream is reopened).
        """
        ctx = self._ctx
        socket = await ctx.client.stream()
        async with socket:
            self.stream = socket
            if ctx.halted is not None:
                return False
            ctx.connected.set()
            await self._on_connected()
            async for frame in socket:
                if frame.type != aiohttp.WSMsgType.TEXT or ctx.halted is not None:
                    break
                try:
                    decoded = _FRAME.decode(frame.data)
                except msgspec.DecodeError as exc:
                    raise HubAnswerInvalid(f"push frame: {exc}") from exc
                if isinstance(decoded, DeliveryFrame):
                    await self._dispatch(decoded)
        return True

    async def poll(self) -> int:
        """Fetch and process what the hub holds for us (the push stream does this too).

        Raises:
            GatewayHalted: the gateway stopped trusting the hub.
            HubRefused, HubAnswerInvalid, aiohttp.ClientError: the hub did not answer well.
        """
        self._ctx.check_running()
        processed, after = 0, 0
        while True:
            page = await self._ctx.client.inbox(after=after, limit=50)
            if not page.deliveries:
                return processed
            for item in page.deliveries:
                await self._dispatch(item)
                processed += 1
            after = page.next_after

    async def _dispatch(self, item: DeliveryItem) -> None:
        """Receive a small delivery now; start a large one beside the stream (once)."""
        if item.size <= BESIDE_STREAM_BYTES:
            await self.receive(item)
        elif item.message_id not in self._large:
            task = asyncio.create_task(self._receive_large(item), name="gateway-large-delivery")
            self._large[item.message_id] = task

    async def _receive_large(self, item: DeliveryItem) -> None:
        try:
            async with self._large_turn:
                await self.receive(item)
        except (GatewayHalted, TrustFailure):
            pass  # the halt said why
        except (*NO_ANSWER, HubRefused) as exc:
            self._ctx.log.info("large delivery left with the hub", error=type(exc).__name__)
        finally:
            self._large.pop(item.message_id, None)

    async def receive(self, item: DeliveryItem) -> None:
        """Fetch one delivered envelope; verify, open, check and store it (or quarantine it),
        then acknowledge it. One that cannot be fetched now stays with the hub.

        Raises:
            GatewayHalted: the gateway stopped trusting the hub: it neither stores nor
                acknowledges anything more, so the hub keeps the envelope queued.
            HubRefused, aiohttp.ClientError, TimeoutError, OSError: the hub did not answer (to
                a refresh, or the acknowledgement); the envelope stays queued there.
        """
        ctx = self._ctx
        ctx.check_running()
        try:
            path = await self.spool.fetch(item, ctx.config.gateway.retry_initial_seconds)
        except (FetchFailed, HubRefused) as exc:  # gone meanwhile, or not now: the next one
            ctx.log.warning("delivery not fetched; left with the hub", error=str(exc))
            return
        try:
            # Hashed first: a quarantined envelope's file moves away.
            digest = await asyncio.to_thread(self.spool.envelope_hash, path)
            message_id = await self._handle(item, path)
            ctx.check_running()  # halted while accepting (the directory or log failed)
            await self._acknowledge(message_id, digest)
        finally:
            self.spool.remove(path)

    async def _handle(self, item: DeliveryItem, path: Path) -> bytes:
        """Accept the envelope spooled at ``path`` or quarantine it; the message id to
        acknowledge."""
        try:
            return await self._accept(item, path)
        except (GatewayHalted, TrustFailure, *NO_ANSWER, HubRefused):
            raise
        except LivcrError as exc:
            return await self._quarantine(item, path, exc.code)
        except Exception:
            self._ctx.log.exception("received envelope broke its handling; quarantined")
            return await self._quarantine(item, path, UNEXPECTED)

    async def _accept(self, item: DeliveryItem, path: Path) -> bytes:
        """Open and check ``item``'s envelope and store it once; its verified message id.

        Raises:
            LivcrError: a check failed.
        """
        ctx = self._ctx
        opened = await open_delivered(
            ctx, self._prekeys, self._refresh, lambda: read_pieces(path), item.logged_at
        )
        core = opened.header.core
        if core.message_id.hex() != item.message_id:
            # The signed header decides; the hub's label is only where it files the delivery.
            self._ctx.log.warning("the hub delivered an envelope under another message id")
        await self._check(core, opened.body_json, item.logged_at)
        # Every document checked and sealed at rest; this also ends the envelope's checks.
        documents = await self._files.keep_received(opened)
        sealed = ctx.box.seal(_aad(core), opened.body_json)
        row = (
            core.message_id,
            "received",
            core.case_ref,
            core.purpose,
            core.sender_id,
            ",".join(core.recipient_ids()),
            core.meeting_ref,
            item.logged_at,
            None,
            sealed,
        )
        ctx.check_running()
        if await ctx.store.store_received(row, documents):
            self._ctx.log.info("received", purpose=core.purpose, documents=len(documents))
            self.arrived.set()
            self.arrival.set()
            self.arrival = asyncio.Event()
            self._on_stored(core, opened.body_json)
        else:
            self._files.remove_now([d.file_id for d in documents])  # a redelivery
        return core.message_id

    async def _check(self, core: HeaderCore, body: bytes, logged_at: int) -> None:
        """What the directory can judge of the message and its body (spec §7.3, §6.6 step 16),
        at the time the hub logged it. A refusal first refreshes the directory once: the hub
        may know an enrolment we have not seen.

        Raises:
            PurposeNotAllowed, RecipientNotAllowed, BodySchemaViolation: it may not exist.
        """
        ctx = self._ctx
        facts = MessageFacts(
            core.sender_id, core.purpose, core.case_ref, core.recipient_ids(), core.meeting_ref
        )
        decision = ctx.decide(facts, body, logged_at)
        if not decision.allowed and decision.code != "body_schema_violation":
            await self._refresh()
            decision = ctx.decide(facts, body, logged_at)
        decision.raise_for_denial()

    async def _quarantine(self, item: DeliveryItem, path: Path, code: str) -> bytes:
        """Keep the envelope as it came, with ``code``: in the store when it is small, else
        in its file in the quarantine folder; the message id to acknowledge."""
        envelope = file = None
        if item.size <= KEPT_IN_STORE_BYTES:
            envelope = await asyncio.to_thread(path.read_bytes)
        try:
            core = await asyncio.to_thread(header_core_of, path)
            message_id, case_ref = core.message_id, core.case_ref
        except LivcrError:
            message_id, case_ref = bytes.fromhex(item.message_id), None
        if envelope is None:
            file = (await asyncio.to_thread(self.spool.keep, path)).name
            self._ctx.log.info("quarantined envelope kept in a file", file=file)
        kept = Quarantined(message_id, code, case_ref, envelope, file)
        await self._ctx.store.quarantine(kept, self._ctx.clock())
        self._ctx.log.warning("received envelope quarantined", code=code)
        return message_id

    async def _acknowledge(self, message_id: bytes, digest: bytes) -> None:
        """Send the signed receipt for the envelope of hash ``digest``."""
        ctx = self._ctx
        received_at = ctx.clock()
        message = delivery_receipt_message(message_id, digest, ctx.participant_id, received_at)
        await ctx.client.ack([(message_id, received_at, ctx.identity.sign(message))])


def _aad(core: HeaderCore) -> bytes:
    return b"|".join((core.message_id, b"received", core.case_ref.encode(), core.purpose.encode()))
