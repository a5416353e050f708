"""The embedding API: ``async with Gateway.open(config) as gw`` then send, receive, manage cases.

The parts do the work: ``outbox`` sends, ``inbox`` receives, ``prekeys`` keeps keys, ``dossier``
reads and erases, ``cases`` runs the coordinator's calls, ``upkeep`` keeps directory, log and
prekeys current. Background tasks (delivery, the push stream, maintenance) run under a
supervisor: one that crashes is logged, restarted with backoff, and the gateway reports
``degraded`` meanwhile. A halted gateway (``GatewayHalted``) neither
sends nor accepts: what the hub holds for it stays queued there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import aiohttp

from livcr_exchange.directory import Directory
from livcr_exchange.envelope import (
    Cosignature,
    CosignedFacts,
    HeaderCore,
    content_digest,
    cosign,
)
from livcr_exchange.hashing import RandomSource
from livcr_exchange.hub_answers import DeliveryItem
from livcr_exchange.keyfile import unlock
from livcr_exchange.keys import IdentityKey
from livcr_exchange.policy import Decision, MessageFacts, evaluate_body
from livcr_exchange.purposes import decode_body
from livcr_exchange.service.cli_env import PASSPHRASE_ENV
from livcr_exchange.service.hub_client import HubClient

from .cases import Cases
from .config import GatewayConfig
from .context import Context, Message, Receipt
from .dossier import Dossier
from .eventlog import EventLogger, event_logger
from .inbox import Inbox
from .localbox import LocalBox, read_local_key
from .outbox import Outbox
from .outgoing import Attachable, with_documents
from .prekeys import OwnPrekeys, PeerPrekeys
from .store import GatewayStore
from .submission import BodyInput, Draft, body_bytes
from .supervisor import Supervisor
from .trust import CheckpointTracker
from .upkeep import Upkeep
from .witness_key import read_witness_key
from .witnessing import WitnessMonitor


class Gateway:
    """One participant's gateway. Create with ``Gateway.open``; see the module docstring."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.participant_id = ctx.participant_id
        self.client = ctx.client
        self.trust = ctx.trust
        self.witnesses = ctx.witnesses
        self.peers = PeerPrekeys(ctx.store, ctx.client, ctx.config.suite, ctx.log)
        self.own_prekeys = OwnPrekeys(ctx)
        self.outbox = Outbox(ctx, self.peers)
        self.dossier_ = Dossier(ctx)
        self.cases = Cases(ctx.client, ctx.random)
        self.upkeep = Upkeep(ctx, self.own_prekeys, self.peers)
        self.inbox = Inbox(ctx, self.own_prekeys, self.maintain, self._stored, self._hub_is_back)
        self.supervisor = Supervisor(ctx.config.gateway.retry_initial_seconds, log=ctx.log)
        self.connected = ctx.connected
        ctx.on_halt.append(self._close_stream)

    @property
    def halted(self) -> str | None:
        return self.ctx.halted

    @property
    def directory(self) -> Directory:
        return self.ctx.directory

    # Life cycle.
    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config: GatewayConfig,
        *,
        passphrase: bytes | None = None,
        clock: Callable[[], int] = lambda: int(time.time()),
        random: RandomSource = os.urandom,
        background: bool = True,
        logger: logging.Logger | EventLogger | None = None,
    ) -> AsyncIterator[Gateway]:
        """Open the gateway: keys, store, verified directory, prekeys, background tasks.

        ``logger`` takes the gateway's log: a stdlib ``logging.Logger`` or a structlog logger,
        so that an application embedding the gateway keeps its own output; by default it is
        structlog's ``livcr.gateway``.

        When the hub does not answer, the gateway starts on the directory it verified last (and
        verifies again), and catches up with the hub once it answers.

        Raises:
            DirectoryUntrusted: the hub's (or the kept) directory does not verify.
            HubUnavailable: the hub did not answer, and no directory was ever verified.
            WrongPassphrase, LocalKeyError: the key files do not open.
            StoreLocked: another gateway process has the folder open.
            StoreTooNew: the store was written by a newer gateway.
            ValueError: no passphrase given and $LIVCR_PASSPHRASE not set; a key file of
                another participant.
        """
        passphrase = _passphrase_or_env(passphrase)  # before any file is read
        bundle = unlock(config.path(config.gateway.key_file).read_bytes(), passphrase)
        if bundle.participant_id != config.participant_id:
            raise ValueError(f"the key file belongs to {bundle.participant_id}")
        box = LocalBox(read_local_key(config.path(config.gateway.local_key_file)), random)
        store = GatewayStore(config.path(config.gateway.database))
        await store.open()
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        log = event_logger(logger)
        gateway = cls(_context(config, bundle.identity, store, box, session, clock, random, log))
        try:
            await gateway.upkeep.first_round()
            if background:
                gateway._start()
            yield gateway
        finally:
            await gateway.supervisor.stop()
            gateway.outbox.cancel_waiters()
            await session.close()
            await store.close()

    def _start(self) -> None:
        self.supervisor.start("outbox", self.outbox.loop)
        self.supervisor.start("inbox", self.inbox.loop)
        self.supervisor.start("maintenance", self.upkeep.loop)

    def _close_stream(self, _reason: str) -> None:
        stream = self.inbox.stream
        if stream is not None and not stream.closed:
            self.supervisor.spawn("close-stream", stream.close())

    async def _hub_is_back(self) -> None:
        """Send what waited in the outbox now, not after its backoff."""
        if await self.ctx.store.retry_now():
            self.outbox.wake.set()

    def _stored(self, core: HeaderCore, body: bytes) -> None:
        """A received message was stored: a deletion request is carried out and confirmed."""
        if core.purpose != "afsluiting":
            return
        if getattr(decode_body(core.purpose, body), "deletion_requested", False):
            self.supervisor.spawn(
                "confirm-deletion",
                self.dossier_.confirm_deletion(
                    core.case_ref, core.sender_id, core.message_id, self._send_later
                ),
            )

    async def _send_later(
        self, case_ref: str, purpose: str, to: list[str], body: dict[str, object]
    ) -> object:
        return await self.send(case_ref, purpose, to=to, body=body, wait=False)

    async def maintain(self) -> None:
        """Refresh the directory, rotate prekeys, check the log; see ``Upkeep.maintain``."""
        await self.upkeep.maintain()

    # Sending.
    async def send(
        self,
        case_ref: str,
        purpose: str,
        *,
        to: Iterable[str],
        body: BodyInput,
        meeting_ref: str | None = None,
        cosignatures: Iterable[Cosignature] = (),
        cosign_deadline: int | None = None,
        wait: bool = True,
        timeout: float = 60.0,
        idempotency: tuple[str, bytes] | None = None,
        attachments: Sequence[Attachable] = (),
    ) -> Receipt | bytes:
        """Check, seal and queue a message; with ``wait``, return the hub's checked receipt.

        Without ``wait`` it returns the message id once the outbox holds the message durably
        (sealed to cached prekeys while the hub does not answer). ``idempotency``: the
        request's key and hash, stored with the message. ``attachments``: documents (paths,
        binary files, uploads) that fill the body's ``attachments`` list; sealed as streams.

        Raises:
            GatewayHalted: the gateway stopped trusting the hub.
            PurposeNotAllowed, RecipientNotAllowed: refused before sealing (checked first).
            PurposeTagMismatch, BodySchemaViolation: the body is refused before sealing.
            AttachmentError (its code says which), UploadGone: a document is refused.
            KeyNotValid: a recipient has no valid prekey at the hub.
            HubUnavailable: the hub did not answer and the message could not be queued.
            SendRefused: the hub refused the message (its code says why; it is kept as failed).
            SendTimeout: no receipt within ``timeout``; the message stays queued.
        """
        self.ctx.check_running()
        recipients = sorted(set(to))
        # Who may send what to whom first: a sender that may not use the purpose learns that,
        # not which field its body lacks.
        self.check_sendable(purpose, case_ref, recipients, meeting_ref)
        raw, docs = await with_documents(self.ctx, purpose, body_bytes(purpose, body), attachments)
        signed = list(cosignatures)
        draft = Draft(
            case_ref, purpose, recipients, raw, meeting_ref, signed, cosign_deadline, docs
        )
        self.outbox.check(draft)
        message_id, waiter = await self.outbox.queue(
            draft, hub_away_ok=not wait, idempotency=idempotency
        )
        if not wait:
            self.outbox.detach(waiter)
            return message_id
        return await self.outbox.wait(message_id, waiter, timeout)

    def check_sendable(
        self, purpose: str, case_ref: str, recipients: Iterable[str], meeting_ref: str | None
    ) -> None:
        """What the verified directory alone tells before the body is read; see
        ``Outbox.check_sendable``."""
        self.outbox.check_sendable(purpose, case_ref, recipients, meeting_ref)

    def new_case_ref(self) -> str:
        """A fresh pseudonymous case reference; see ``Cases.new_case_ref``."""
        return self.cases.new_case_ref()

    def is_witnessed(self, receipt: Receipt) -> bool:
        """Whether a checkpoint with a quorum of witness cosignatures covers the receipt's leaf
        (spec §10.7); always False under a policy with quorum 0."""
        return self.ctx.witnesses.is_witnessed(receipt.leaf_index)

    def cosign(
        self,
        case_ref: str,
        meeting_ref: str,
        body: BodyInput,
        *,
        to: Iterable[str],
        deadline: int,
    ) -> Cosignature:
        """This member's co-signature over the exact content of a terugkoppelingsfiche, for
        delivery to exactly ``to``, logged by the hub no later than ``deadline`` (spec §7.4).

        Raises:
            PurposeTagMismatch, BodySchemaViolation: the body is not one of this case and meeting.
        """
        raw = body_bytes("terugkoppelingsfiche", body)
        facts = MessageFacts(self.participant_id, "terugkoppelingsfiche", case_ref, (), meeting_ref)
        evaluate_body(
            facts, raw, Decision.allow(purpose=facts.purpose, sender_id=facts.sender_id)
        ).raise_for_denial()
        signed = CosignedFacts(
            self.config.gateway.cell_id,
            case_ref,
            meeting_ref,
            "terugkoppelingsfiche",
            tuple(sorted(set(to))),
            deadline,
        )
        return cosign(self.ctx.identity, self.participant_id, signed, content_digest(raw))

    # Receiving.
    async def receive(self, item: DeliveryItem) -> None:
        """Handle one delivered envelope; see ``Inbox.receive``."""
        await self.inbox.receive(item)

    async def poll(self) -> int:
        """Fetch and process what the hub holds for us; see ``Inbox.poll``."""
        return await self.inbox.poll()

    def messages(self, *, follow: bool = True) -> AsyncIterator[Message]:
        """Every received message, once, in arrival order.

        With ``follow`` (the default) it then waits for more and never ends by itself: a
        service's receiving loop. With ``follow=False`` it ends once the messages received so
        far are handed over.
        """
        return self.dossier_.messages(self.inbox.arrived, follow=follow)

    def arrival(self) -> asyncio.Event:
        """An event set when the next received message is stored (for long polling): take it
        before calling ``received`` and wait on it when that returned nothing."""
        return self.inbox.arrival

    async def received(self, *, after: int = 0, limit: int = 100) -> list[dict[str, object]]:
        return await self.dossier_.received(after=after, limit=limit)

    async def dossier(
        self, *, case_ref: str | None = None, purpose: str | None = None
    ) -> list[dict[str, object]]:
        return await self.dossier_.records(case_ref=case_ref, purpose=purpose)

    async def export(self, case_ref: str) -> dict[str, object]:
        self.ctx.check_running()
        return await self.dossier_.export(case_ref)

    async def erase_case(self, case_ref: str) -> list[bytes]:
        return await self.dossier_.erase_case(case_ref)

    async def status(self) -> dict[str, object]:
        counts = await self.ctx.store.counts()
        degraded = self.supervisor.degraded
        return {
            "participant": self.participant_id,
            "halted": self.halted,
            "connected": self.connected.is_set(),
            "degraded": degraded,
            "ready": self.halted is None and self.connected.is_set(),
            "witness_quorum": self.ctx.witnesses.policy.quorum,
            "witnessed_size": self.ctx.witnesses.witnessed_size,
            **counts,
        }


def _passphrase_or_env(passphrase: bytes | None) -> bytes:
    """Raises ValueError: none given and $LIVCR_PASSPHRASE not set."""
    if passphrase is not None:
        return passphrase
    if PASSPHRASE_ENV not in os.environ:
        raise ValueError(f"no passphrase: pass passphrase= or set {PASSPHRASE_ENV}")
    return os.environ[PASSPHRASE_ENV].encode("utf-8")


def request_hash(body: bytes) -> bytes:
    """What an Idempotency-Key is bound to: the request body's hash."""
    return hashlib.sha256(body).digest()


def _context(
    config: GatewayConfig,
    identity: IdentityKey,
    store: GatewayStore,
    box: LocalBox,
    session: aiohttp.ClientSession,
    clock: Callable[[], int],
    random: RandomSource,
    log: EventLogger,
) -> Context:
    client = HubClient(
        config.gateway.hub_url,
        config.participant_id,
        identity,
        session,
        hub=config.hub,
        clock=clock,
        random=random,
    )
    trust = CheckpointTracker(store, client, config.log_origin, config.hub_log_key)
    witnesses = WitnessMonitor(
        store,
        trust,
        config.gateway.cell_id,
        config.root_key,
        config.log_origin,
        config.hub_log_key,
        clock,
        read_witness_key(config.path(".")),
        log=log,
    )
    directory = Directory(config.gateway.cell_id, config.root_key)
    return Context(
        config, identity, store, box, client, clock, random, trust, directory, witnesses, log
    )
