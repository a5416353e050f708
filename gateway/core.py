"""The embedding API: ``async with Gateway.open(config) as gw`` then send, receive, manage cases.

``send`` returns after the message is in the durable outbox and the hub acknowledged it (the
receipt's inclusion proof checked); a background task delivers and retries with backoff,
resending the same envelope until the hub acknowledges: if an earlier attempt was committed and
only its answer lost, the hub answers the same bytes with their original receipt (spec §9.3). An
envelope that waited longer than ``RESEAL_AFTER_SECONDS`` (the hub was away) before its first
attempt is sealed again under the same message id before it goes, since the hub refuses stale
timestamps (spec §9.1); after an attempt, only once the hub refused the old bytes as stale, which
means it never accepted them. With ``wait=False`` a message can be
queued while the hub is away, sealed to the recipients' cached prekeys (``prekeys.py``).
Incoming envelopes are verified, opened, schema-checked and written to the dossier exactly once,
and only then acknowledged to the hub. A halted gateway (``GatewayHalted``) neither sends nor
accepts: what the hub holds for it stays queued there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from livcr_exchange.audit.leaves import EnvelopeAccepted, delivery_receipt_message, envelope_hash
from livcr_exchange.audit.merkle import leaf_hash, verify_inclusion
from livcr_exchange.bodies import Body
from livcr_exchange.cases import mint_case_ref
from livcr_exchange.constants import (
    CONTENT_KEY_BYTES,
    MAX_CLOCK_SKEW,
    MAX_DELIVERY_DELAY,
    PAYLOAD_NONCE_PREFIX_BYTES,
)
from livcr_exchange.directory import Directory
from livcr_exchange.envelope import (
    Cosignature,
    HeaderCore,
    MessageSpec,
    SealParts,
    build_block,
    content_digest,
    cosign,
    open_envelope,
    seal,
    seal_from_parts,
)
from livcr_exchange.envelope.open import UnverifiedEnvelope
from livcr_exchange.errors import (
    BodySchemaViolation,
    KeyNotValid,
    LivcrError,
    UnknownSender,
)
from livcr_exchange.hashing import RandomSource
from livcr_exchange.keyfile import unlock
from livcr_exchange.keys import IdentityKey, PrekeyPublic, PrekeySecret
from livcr_exchange.policy import Decision, MessageFacts, Participant, evaluate_before_sealing
from livcr_exchange.purposes import decode_body, encode_body
from livcr_exchange.service.hub_client import HubClient, HubRefused
from livcr_exchange.statements import DirectoryEntry, PrekeyStatement

from .config import GatewayConfig
from .eventlog import EventLogger, event_logger
from .localbox import LocalBox, read_local_key
from .prekeys import PeerPrekeys, current_prekey
from .store import DossierRow, GatewayStore, OutboxRow
from .submission import tagged_body
from .trust import (
    CheckpointTracker,
    LogForked,
    TrustFailure,
    cached_directory,
    fetch_directory,
)
from .witness_key import read_witness_key
from .witnessing import WitnessMonitor

PASSPHRASE_ENV = "LIVCR_PASSPHRASE"  # noqa: S105  (the variable's name, not a secret)
DAY = 86_400
PERMANENT_STATUSES = range(400, 500)
# An envelope the outbox held longer than this is sealed again before it goes: the hub refuses
# a timestamp more than MAX_CLOCK_SKEW old (spec §9.1); half of it is left for clock differences.
RESEAL_AFTER_SECONDS = MAX_CLOCK_SKEW // 2
# What a hub that does not answer raises (a 5xx answer counts as none: the hub is not serving).
NO_ANSWER = (aiohttp.ClientError, TimeoutError, OSError)


class GatewayHalted(Exception):
    """The gateway found the hub untrustworthy (a forked log, a bad directory) and stopped."""


class HubUnavailable(ConnectionError):
    """The hub did not answer, and what was asked cannot be done without it; nothing was stored."""


def hub_not_serving(exc: BaseException) -> bool:
    """Whether ``exc`` means the hub did not answer (rather than that it refused)."""
    return isinstance(exc, NO_ANSWER) or (isinstance(exc, HubRefused) and exc.status >= 500)


class SendRefused(Exception):
    """The hub refused a message for good; ``code`` and ``status`` are the hub's answer."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status


class SendTimeout(TimeoutError):
    """``send`` stopped waiting for the receipt; the message stays queued and will still go."""

    def __init__(self, message_id: bytes) -> None:
        super().__init__(f"no receipt yet for message {message_id.hex()}; it stays in the outbox")
        self.message_id = message_id


@dataclass(frozen=True)
class Receipt:
    """The hub's acknowledgement: where the message sits in the log, proven by inclusion.

    In one case the hub holds the message but shows no receipt for it (spec §9.3): an earlier
    attempt was committed, and the hub accepted other bytes under the message id or can no
    longer show their log record. The message was sent; its place in the log is not proven, so
    every field but ``message_id`` is None (``proven`` is False).
    """

    message_id: bytes
    leaf_index: int | None
    logged_at: int | None
    tree_size: int | None
    checkpoint: bytes | None

    @classmethod
    def unproven(cls, message_id: bytes) -> Receipt:
        return cls(message_id, None, None, None, None)

    @property
    def proven(self) -> bool:
        return self.leaf_index is not None


@dataclass(frozen=True)
class Message:
    """A received message that passed every check; ``body`` is the decoded, schema-checked body."""

    message_id: bytes
    case_ref: str
    purpose: str
    sender_id: str
    recipients: tuple[str, ...]
    meeting_ref: str | None
    logged_at: int
    body: Body = field(repr=False)
    raw_body: bytes = field(repr=False)


def _observe(outcome: asyncio.Future[Receipt]) -> None:
    """Retrieve a receipt future's exception nobody awaits, so it is not reported as lost."""
    if not outcome.cancelled():
        outcome.exception()


def _aad(message_id: bytes, direction: str, case_ref: str, purpose: str) -> bytes:
    return b"|".join((message_id, direction.encode(), case_ref.encode(), purpose.encode()))


def check_body(purpose: str, body: bytes, case_ref: str, meeting_ref: str | None) -> Body:
    """The gateway's body checks (spec §7.3 steps 8-9).

    Raises:
        PurposeNotAllowed: an unknown purpose.
        BodySchemaViolation: the body does not match its purpose's schema or names another case.
    """
    decoded = decode_body(purpose, body)
    body_case = getattr(decoded, "case_ref", None)
    if body_case is not None and body_case != case_ref:
        raise BodySchemaViolation(f"body names case {body_case}, header {case_ref}")
    body_meeting = getattr(decoded, "meeting_ref", None)
    if body_meeting is not None and meeting_ref is not None and body_meeting != meeting_ref:
        raise BodySchemaViolation(f"body names meeting {body_meeting}, header {meeting_ref}")
    return decoded


class Gateway:
    """One participant's gateway. Create with ``Gateway.open``; see the module docstring."""

    def __init__(
        self,
        config: GatewayConfig,
        identity: IdentityKey,
        store: GatewayStore,
        box: LocalBox,
        session: aiohttp.ClientSession,
        clock: Callable[[], int],
        random: RandomSource,
        logger: EventLogger | None = None,
    ) -> None:
        self.config = config
        self.log = event_logger(logger)
        self.participant_id = config.participant_id
        self._identity = identity
        self._store = store
        self._box = box
        self._session = session
        self._clock = clock
        self._random = random
        self.client = HubClient(
            config.gateway.hub_url,
            self.participant_id,
            identity,
            session,
            clock=clock,
            random=random,
        )
        self.trust = CheckpointTracker(store, self.client, config.log_origin, config.hub_log_key)
        self.witnesses = WitnessMonitor(
            store,
            self.trust,
            config.gateway.cell_id,
            config.root_key,
            config.log_origin,
            config.hub_log_key,
            clock,
            read_witness_key(config.path(".")),
        )
        self.directory = Directory(config.gateway.cell_id, config.root_key)
        self.peers = PeerPrekeys(store, self.client, config.suite)
        self.halted: str | None = None
        self._hub_missed_at_start = False  # then maintenance retries soon, not after an interval
        self._stream: aiohttp.ClientWebSocketResponse | None = None
        self._prekeys: dict[bytes, PrekeySecret] = {}
        self._waiters: dict[bytes, asyncio.Future[Receipt]] = {}
        self._outbox_wake = asyncio.Event()
        self._inbox_event = asyncio.Event()
        self._arrival = asyncio.Event()  # set, then replaced, on each newly stored message
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()

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
        verifies again): it serves its dossier and queues what ``send(wait=False)`` can seal to
        cached prekeys, and catches up with the hub once it answers.

        Raises:
            DirectoryUntrusted: the hub's (or the kept) directory does not verify against the
                root key.
            HubUnavailable: the hub did not answer, and no directory was ever verified.
            WrongPassphrase, LocalKeyError: the key files do not open.
            ValueError: no passphrase given and $LIVCR_PASSPHRASE not set; a key file of
                another participant.
        """
        if passphrase is None:
            if PASSPHRASE_ENV not in os.environ:
                raise ValueError(f"no passphrase: pass passphrase= or set {PASSPHRASE_ENV}")
            passphrase = os.environ[PASSPHRASE_ENV].encode("utf-8")
        bundle = unlock(config.path(config.gateway.key_file).read_bytes(), passphrase)
        if bundle.participant_id != config.participant_id:
            raise ValueError(f"the key file belongs to {bundle.participant_id}")
        box = LocalBox(read_local_key(config.path(config.gateway.local_key_file)), random)
        store = GatewayStore(config.path(config.gateway.database))
        await store.open()
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        gateway = cls(
            config, bundle.identity, store, box, session, clock, random, event_logger(logger)
        )
        try:
            await gateway.witnesses.load()
            try:
                await gateway.maintain()
            except (*NO_ANSWER, HubRefused) as exc:
                if not hub_not_serving(exc):
                    raise
                await gateway._start_without_hub(exc)
            if background:
                gateway._start()
            yield gateway
        finally:
            await gateway._stop()
            await session.close()
            await store.close()

    def _start(self) -> None:
        for name, job in (
            ("outbox", self._outbox_loop),
            ("inbox", self._inbox_loop),
            ("maintenance", self._maintenance_loop),
        ):
            self._tasks.append(asyncio.create_task(job(), name=f"gateway-{name}"))

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.cancel()

    def _halt(self, reason: str) -> None:
        """Stop trusting the hub: no more sending, and no more accepting or acknowledging what it
        pushes (it keeps those queued); the push stream is closed and not reopened."""
        if self.halted is None:
            self.halted = reason
            self.log.error("gateway halted: the hub is not trustworthy", reason=reason)
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(GatewayHalted(reason))
            stream = self._stream
            if stream is not None and not stream.closed:
                # The inbox loop reading it then ends; close() waits for that reader.
                self._tasks.append(asyncio.create_task(self._close_stream(stream)))

    async def _close_stream(self, stream: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(*NO_ANSWER):
            await stream.close()

    async def _start_without_hub(self, why: BaseException) -> None:
        """Open on the directory verified before and the prekey secrets at hand.

        Raises:
            HubUnavailable: no directory was ever verified.
            DirectoryUntrusted: the kept directory does not verify.
        """
        try:
            directory = await cached_directory(
                self._store, self.config.gateway.cell_id, self.config.root_key
            )
        except TrustFailure as exc:
            self._halt(str(exc))
            raise
        if directory is None:
            raise HubUnavailable(
                f"the hub did not answer ({type(why).__name__}) and this gateway has never"
                " verified a directory: start it once while the hub is reachable"
            ) from why
        self.directory = directory
        await self._load_prekeys()
        self._hub_missed_at_start = True
        self.log.warning(
            "the hub did not answer; started on the directory verified before",
            error=type(why).__name__,
            participants=len(directory.participants(self._clock())),
        )

    # Keys, directory, log.
    async def maintain(self) -> None:
        """Refresh the verified directory; rotate, upload and destroy prekeys; check the log."""
        try:
            self.directory = await fetch_directory(
                self.client, self.config.gateway.cell_id, self.config.root_key, self._store
            )
            await self.trust.observe(await self.client.checkpoint())
            await self.witnesses.update_policy()
            await self.witnesses.cosign(self.client)
            await self.witnesses.round(self.client)
        except TrustFailure as exc:
            self._halt(str(exc))
            raise
        await self._rotate_prekeys()
        await self._refresh_peer_prekeys()

    async def _refresh_peer_prekeys(self) -> None:
        """Fetch (and cache) the prekeys of every other participant, for sealing while the hub
        is away. Best effort: a failure leaves the cache as it was, and is logged."""
        now = self._clock()
        peers = sorted(set(self.directory.participants(now)) - {self.participant_id})
        try:
            if peers:
                await self.peers.fetch(self.directory, peers, now)
        except (*NO_ANSWER, HubRefused, LivcrError) as exc:
            self.log.warning("prekeys of the other participants not refreshed", error=str(exc))

    async def _rotate_prekeys(self) -> None:
        now = self._clock()
        lifetime = self.config.gateway.prekey_lifetime_days * DAY
        rows = await self._store.prekeys()
        if not any(nb <= now + lifetime // 2 < na for _, secret, _, nb, na, _ in rows if secret):
            start = max([now, *(na - lifetime // 7 for *_, na, _ in rows if na > now)])
            await self._new_prekey(start, start + lifetime)
            rows = await self._store.prekeys()
        destroyed = await self._store.destroy_prekeys_before(now - MAX_DELIVERY_DELAY)
        if destroyed:
            self.log.info("prekey secrets destroyed", count=destroyed)
        # Loaded before the upload: a hub that stops answering now must not leave this
        # gateway unable to open what was sealed to its keys.
        await self._load_prekeys()
        pending = [
            (pid, statement)
            for pid, _, statement, _, na, uploaded in rows
            if not uploaded and na > now
        ]
        if pending:
            await self.client.put_prekeys([s for _, s in pending])
            await self._store.mark_uploaded([pid for pid, _ in pending])

    async def _load_prekeys(self) -> None:
        """The prekey secrets not destroyed yet, decrypted from the store."""
        self._prekeys = {
            pid: PrekeySecret(self.config.suite, self._box.open(b"prekey|" + pid, secret))
            for pid, secret, *_ in await self._store.prekeys()
            if secret is not None
        }

    async def _new_prekey(self, not_before: int, not_after: int) -> None:
        suite = self.config.suite
        secret = PrekeySecret(suite, self._random(suite.secret_seed_bytes))
        statement = PrekeyStatement(
            self.participant_id, self._identity.key_id, secret.public, not_before, not_after
        ).sign(self._identity)
        pid = secret.key_id
        await self._store.add_prekey(
            pid, self._box.seal(b"prekey|" + pid, secret.seed), statement, not_before, not_after
        )

    async def _maintenance_loop(self) -> None:
        """A round every interval; after a failed round (or a start without the hub) the next
        comes sooner, backing off like deliveries, so a hub that is back is caught up with."""
        failures = int(self._hub_missed_at_start)
        while True:
            pause = self.config.gateway.maintenance_interval_seconds
            if failures:
                pause = min(pause, self._backoff(failures - 1))
            await asyncio.sleep(pause)
            try:
                await self.maintain()
                failures = 0
            except TrustFailure:
                return
            except (aiohttp.ClientError, HubRefused, TimeoutError, LivcrError) as exc:
                failures += 1
                self.log.warning("maintenance round failed", error=str(exc) or type(exc).__name__)

    def _backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` earlier tries: doubling, capped."""
        base = self.config.gateway.retry_initial_seconds * 2.0 ** min(attempts, 10)
        return min(self.config.gateway.retry_max_seconds, base)

    # Sending.
    async def send(
        self,
        case_ref: str,
        purpose: str,
        *,
        to: Iterable[str],
        body: Body | bytes | dict[str, Any],
        meeting_ref: str | None = None,
        cosignatures: Iterable[Cosignature] = (),
        wait: bool = True,
        timeout: float = 60.0,
    ) -> Receipt | bytes:
        """Check, seal and queue a message; with ``wait``, return the hub's checked receipt.

        Without ``wait`` it returns the message id once the outbox holds the message durably;
        while the hub does not answer, the message is then sealed to the recipients' cached
        prekeys (fetched recently from the hub and verified again against the directory) and
        delivered once the hub is back. With ``wait``, a hub that does not answer is refused at
        once (``HubUnavailable``), nothing stored.

        Raises:
            GatewayHalted: the gateway stopped trusting the hub.
            PurposeNotAllowed, RecipientNotAllowed: refused before sealing (checked first).
            PurposeTagMismatch, BodySchemaViolation: the body is refused before sealing.
            KeyNotValid: a recipient has no valid prekey at the hub.
            HubUnavailable: the hub did not answer and (with ``wait``, or for want of a recent
                cached prekey of every recipient) the message could not be queued.
            SendRefused: the hub refused the message (its code says why).
            SendTimeout: no receipt within ``timeout``; the message stays queued.
        """
        if self.halted is not None:
            raise GatewayHalted(self.halted)
        recipients = sorted(set(to))
        # Who may send what to whom first: a sender that may not use the purpose learns that,
        # not which field its body lacks.
        self.check_sendable(purpose, case_ref, recipients, meeting_ref)
        raw = self._body_bytes(purpose, body)
        check_body(purpose, raw, case_ref, meeting_ref)
        prekeys = await self._recipient_prekeys(recipients, hub_away_ok=not wait)
        signatures = list(cosignatures)
        block = build_block(content_digest(raw), signatures) if signatures else None
        spec = MessageSpec(
            self.config.gateway.cell_id,
            self.participant_id,
            purpose,
            case_ref,
            prekeys,
            self.config.suite,
            block,
            meeting_ref,
        )
        now = self._clock()
        envelope = seal(
            self._identity,
            spec,
            raw,
            now=now,
            ttl=self.config.gateway.message_ttl_days * DAY,
            random=self._random,
        )
        message_id = UnverifiedEnvelope.parse(envelope).message_id
        dossier = (
            message_id,
            "sent",
            case_ref,
            purpose,
            self.participant_id,
            ",".join(recipients),
            meeting_ref,
            None,
            None,
            self._box.seal(_aad(message_id, "sent", case_ref, purpose), raw),
        )
        waiter: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._waiters[message_id] = waiter
        await self._store.enqueue(
            OutboxRow(message_id, case_ref, purpose, envelope, "pending", 0, None, None),
            dossier,
            now,
        )
        self.log.info("queued", purpose=purpose, recipients=len(recipients))
        self._outbox_wake.set()
        if not wait:
            waiter.add_done_callback(_observe)
            return message_id
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError as exc:
            waiter.add_done_callback(_observe)
            raise SendTimeout(message_id) from exc
        finally:
            if waiter.done():
                self._waiters.pop(message_id, None)

    @staticmethod
    def _body_bytes(purpose: str, body: Body | bytes | dict[str, Any]) -> bytes:
        """Raises PurposeTagMismatch: a JSON body tagged with another purpose."""
        if isinstance(body, bytes | dict):
            return tagged_body(purpose, body)
        return encode_body(body)

    def check_sendable(
        self, purpose: str, case_ref: str, recipients: Iterable[str], meeting_ref: str | None
    ) -> None:
        """What the verified directory alone can tell before sealing (spec §7.3): the purpose,
        and the roles that may send and receive it; the hub checks the case too.

        Raises:
            PurposeNotAllowed, RecipientNotAllowed: the policy's denial, with the hub's code.
            UnknownSender, KeyRevoked, KeyNotValid: this gateway's own entry is not usable.
        """
        facts = MessageFacts(
            self.participant_id, purpose, case_ref, tuple(sorted(set(recipients))), meeting_ref
        )
        decision = self._directory_decision(facts, self._clock())
        if not decision.allowed:
            self.log.info("refused before sealing", purpose=purpose, code=decision.code)
        decision.raise_for_denial()

    def _directory_decision(self, facts: MessageFacts, at: int) -> Decision:
        """Spec §7.3 steps 1-3 and 6 as the verified directory decides them at ``at``.

        Raises:
            UnknownSender, KeyRevoked, KeyNotValid: the sender's entry is not usable at ``at``.
        """
        sender = _participant(self.directory.current_entry(facts.sender_id, at))
        entries = self.directory.participants(at)
        recipients = {r: _participant(entries[r]) for r in facts.recipients if r in entries}
        return evaluate_before_sealing(facts, sender, recipients)

    async def _recipient_prekeys(
        self, recipients: list[str], *, hub_away_ok: bool
    ) -> dict[str, PrekeyPublic]:
        """Each recipient's current prekey: from the hub, or, when it does not answer and
        ``hub_away_ok``, from the cache.

        Raises:
            KeyNotValid: the hub has no valid prekey of a recipient.
            HubUnavailable: the hub did not answer, and the cache cannot stand in.
            HubRefused: the hub refused the request.
        """
        now = self._clock()
        try:
            found = await self.peers.fetch(self.directory, recipients, now)
        except (*NO_ANSWER, HubRefused) as exc:
            if not hub_not_serving(exc):
                raise
            why = f"the hub did not answer ({type(exc).__name__})"
            if not hub_away_ok:
                raise HubUnavailable(f"{why}; nothing was queued (wait=False queues)") from exc
            found = await self.peers.cached(self.directory, recipients, now)
            missing = [r for r in recipients if not found[r]]
            if missing:
                raise HubUnavailable(
                    f"{why} and no recent verified prekey of {', '.join(missing)} is cached;"
                    " nothing was queued"
                ) from exc
            self.log.info("hub away: sealing to cached prekeys", recipients=len(recipients))
        chosen = {}
        for recipient in recipients:
            statement = current_prekey(found[recipient])
            if statement is None:
                raise KeyNotValid(
                    f"{recipient} has no valid {self.config.suite.name} prekey at the hub"
                )
            chosen[recipient] = statement.prekey
        return chosen

    async def _reseal(self, row: OutboxRow) -> OutboxRow:
        """The row's message sealed again with a fresh timestamp, under the same message id and
        expiry, to the recipients' current prekeys; stored before it is sent. The same row when
        it is still fresh, already expired, or its content was erased meanwhile (the hub then
        refuses it, and says why).

        Raises:
            PurposeNotAllowed, RecipientNotAllowed, KeyNotValid, ...: refused before sealing.
            aiohttp.ClientError, TimeoutError, OSError, HubRefused: the hub did not answer.
        """
        now = self._clock()
        core = UnverifiedEnvelope.parse(row.envelope).header.core
        if now - core.timestamp <= RESEAL_AFTER_SECONDS or now >= core.expires_at:
            return row
        sealed = await self._store.sent_body(row.message_id)
        if sealed is None:
            return row
        raw = self._box.open(_aad(row.message_id, "sent", row.case_ref, row.purpose), sealed)
        recipients = list(core.recipient_ids())
        self.check_sendable(core.purpose, core.case_ref, recipients, core.meeting_ref)
        spec = MessageSpec(
            core.cell_id,
            core.sender_id,
            core.purpose,
            core.case_ref,
            await self._recipient_prekeys(recipients, hub_away_ok=False),
            core.suite,
            core.cosign,
            core.meeting_ref,
        )
        parts = SealParts(
            core.message_id,
            now,
            core.expires_at,
            self._random(CONTENT_KEY_BYTES),
            self._random(PAYLOAD_NONCE_PREFIX_BYTES),
        )
        envelope = seal_from_parts(self._identity, spec, parts, raw)[1]
        await self._store.replace_envelope(row.message_id, envelope)
        self.log.info("stale envelope sealed again", waited_seconds=now - core.timestamp)
        return dataclasses.replace(row, envelope=envelope)

    async def _outbox_loop(self) -> None:
        delay = self.config.gateway.retry_initial_seconds
        while True:
            self._outbox_wake.clear()
            for row in await self._store.due(time.time()):
                await self._deliver(row)
            upcoming = await self._store.next_due()
            wait = None if upcoming is None else max(0.0, upcoming - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._outbox_wake.wait(), wait if wait is not None else delay * 20
                )

    async def _deliver(self, row: OutboxRow) -> None:
        if self.halted is not None:
            return
        if not row.attempts:
            # Never submitted, so nothing of it is at the hub: grown stale in the outbox, it is
            # sealed again first. After an attempt the same bytes go as they are: if that
            # attempt was committed, the hub answers them with their receipt (spec §9.3).
            fresh = await self._resealed(row)
            if fresh is None:
                return
            row = fresh
        await self._store.begin_attempt(row.message_id)  # row.attempts: those begun before
        try:
            answer = await self.client.submit(row.envelope)
        except HubRefused as exc:
            await self._refused(row, exc)
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            await self._retry(row, type(exc).__name__)
            return
        await self._receipt_answered(row, answer)

    async def _resealed(self, row: OutboxRow) -> OutboxRow | None:
        """``_reseal(row)``; None when that ended this delivery: the message was refused before
        sealing (it fails), or the hub did not answer (it is retried later)."""
        try:
            return await self._reseal(row)
        except LivcrError as exc:
            self.log.warning("refused before sealing again", code=exc.code, purpose=row.purpose)
            await self._fail(row, exc.code, exc)
        except (*NO_ANSWER, HubRefused) as exc:
            if isinstance(exc, HubRefused) and not hub_not_serving(exc):
                await self._fail(row, exc.code, SendRefused(exc.code, exc.detail, exc.status))
            else:
                await self._retry(row, type(exc).__name__)
        return None

    async def _refused(self, row: OutboxRow, exc: HubRefused) -> None:
        """The hub refused ``row``'s envelope: retry, seal again, settle without a receipt, or
        fail, as its answer says."""
        if exc.status not in PERMANENT_STATUSES:
            await self._retry(row, exc.code)
        elif exc.code == "timestamp_out_of_window":
            await self._reseal_refused(row, exc)
        elif exc.code == "replayed" and row.attempts > 0:
            await self._sent_without_receipt(row, exc)
        else:
            await self._fail(row, exc.code, SendRefused(exc.code, exc.detail, exc.status))

    async def _reseal_refused(self, row: OutboxRow, exc: HubRefused) -> None:
        """The hub found the envelope stale. Had it accepted these bytes before, it would have
        answered with their receipt: so it never did, and the message, sealed again, goes at
        once. An envelope still fresh by our own clock (the clocks disagree), already expired,
        or erased meanwhile cannot be helped: the refusal stands."""
        resealed = await self._resealed(row)
        if resealed is None:
            return
        if resealed.envelope == row.envelope:
            await self._fail(row, exc.code, SendRefused(exc.code, exc.detail, exc.status))
            return
        await self._store.retry_later(row.message_id, time.time(), exc.code)
        self._outbox_wake.set()

    async def _sent_without_receipt(self, row: OutboxRow, exc: HubRefused) -> None:
        """The hub holds the message from an earlier attempt but shows no receipt for these
        bytes (spec §9.3): it accepted other bytes under the message id (sealed again after an
        attempt it committed) or can no longer show their log record. The message was sent;
        the dossier marks its log position unknown (-1) and the receipt claims no proof."""
        self.log.warning(
            "sent, but the hub showed no receipt: its place in the log is not proven",
            code=exc.code,
            purpose=row.purpose,
        )
        await self._store.mark_sent(row.message_id, None, -1, -1)
        self._settle(row.message_id, Receipt.unproven(row.message_id))

    async def _fail(self, row: OutboxRow, code: str, outcome: Exception) -> None:
        """The message is refused for good: recorded with ``code``; ``send`` raises ``outcome``."""
        await self._store.mark_failed(row.message_id, code)
        self._settle(row.message_id, outcome)
        self.log.warning("message refused", code=code, purpose=row.purpose)

    async def _receipt_answered(self, row: OutboxRow, answer: dict[str, Any]) -> None:
        """Check the hub's receipt like any (a resubmission's too) and mark the message sent."""
        try:
            receipt = await self._check_receipt(row, answer)
        except TrustFailure as exc:
            self._halt(str(exc))
            return
        except LivcrError as exc:
            self._halt(f"the hub's receipt does not prove inclusion: {exc}")
            return
        except (aiohttp.ClientError, HubRefused, TimeoutError, OSError) as exc:
            # Checking the receipt needs the hub (a consistency proof); try again later.
            await self._retry(row, type(exc).__name__)
            return
        await self._store.mark_sent(
            row.message_id, json.dumps(answer), int(answer["logged_at"]), int(answer["leaf_index"])
        )
        self._settle(row.message_id, receipt)

    async def _retry(self, row: OutboxRow, reason: str) -> None:
        delay = self._backoff(row.attempts)
        await self._store.retry_later(row.message_id, time.time() + delay, reason)
        self.log.info(
            "delivery retry", attempts=row.attempts + 1, in_seconds=round(delay, 2), reason=reason
        )

    def _settle(self, message_id: bytes, outcome: Receipt | Exception) -> None:
        waiter = self._waiters.pop(message_id, None)
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, Exception):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)

    async def _check_receipt(self, row: OutboxRow, answer: dict[str, Any]) -> Receipt:
        """Recompute our envelope's leaf and check its inclusion under the signed checkpoint.

        Raises:
            ProofInvalid, CheckpointInvalid: the receipt does not prove what it claims.
            LogForked: the checkpoint contradicts one seen before.
        """
        envelope = UnverifiedEnvelope.parse(row.envelope)
        leaf = EnvelopeAccepted(
            int(answer["logged_at"]),
            envelope.message_id,
            envelope.sender_id,
            envelope.purpose,
            envelope.case_ref,
            envelope.recipient_ids,
            envelope_hash(row.envelope),
            len(row.envelope),
        )
        note = str(answer["checkpoint"]).encode("utf-8")
        checkpoint = self.trust.open(note)
        proof = [base64.b64decode(h) for h in answer["inclusion_proof"]]
        index, size = int(answer["leaf_index"]), int(answer["tree_size"])
        if checkpoint.size != size:
            raise LogForked(
                f"receipt for tree size {size} carries a checkpoint of {checkpoint.size}"
            )
        verify_inclusion(leaf_hash(leaf.encode()), index, size, proof, checkpoint.root)
        await self.trust.observe(note)
        return Receipt(envelope.message_id, index, leaf.logged_at, size, note)

    # Receiving.
    async def _inbox_loop(self) -> None:
        delay = self.config.gateway.retry_initial_seconds
        while self.halted is None:
            try:
                socket = await self.client.stream()
                async with socket:
                    self._stream = socket
                    if self.halted is not None:
                        break
                    self.connected.set()
                    delay = self.config.gateway.retry_initial_seconds
                    await self._hub_is_back()
                    async for frame in socket:
                        if frame.type != aiohttp.WSMsgType.TEXT or self.halted is not None:
                            break
                        item = json.loads(frame.data)
                        if item.get("type") == "envelope":
                            await self.receive(item)
            except (aiohttp.ClientError, HubRefused, TimeoutError, OSError) as exc:
                self.log.info("hub stream lost; reconnecting", error=type(exc).__name__)
            except (GatewayHalted, TrustFailure):
                break  # _halt said why; nothing more is accepted from this hub
            finally:
                self._stream = None
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(self.config.gateway.retry_max_seconds, delay * 2)
        self.log.warning("push stream closed: the gateway is halted", reason=self.halted)

    async def _hub_is_back(self) -> None:
        """Send what waited in the outbox now, not after its backoff."""
        if await self._store.retry_now():
            self._outbox_wake.set()

    async def poll(self) -> int:
        """Fetch and process what the hub holds for us (the push stream does this too).

        Raises:
            GatewayHalted: the gateway stopped trusting the hub.
        """
        if self.halted is not None:
            raise GatewayHalted(self.halted)
        processed, after = 0, 0
        while True:
            page = await self.client.inbox(after=after, limit=50)
            if not page["envelopes"]:
                return processed
            for item in page["envelopes"]:
                await self.receive(item)
                processed += 1
            after = page["next_after"]

    async def receive(self, item: dict[str, Any]) -> None:
        """Verify, open, check and store one delivered envelope, then acknowledge it.

        Raises:
            GatewayHalted: the gateway stopped trusting the hub: it neither stores nor
                acknowledges anything more, so the hub keeps the envelope queued.
        """
        if self.halted is not None:
            raise GatewayHalted(self.halted)
        message_id = bytes.fromhex(item["message_id"])
        envelope = base64.b64decode(item["envelope"])
        logged_at = int(item["logged_at"])
        if not await self._store.has_received(message_id):
            await self._accept(message_id, envelope, logged_at)
        if self.halted is not None:  # halted while accepting (the directory or log failed)
            raise GatewayHalted(self.halted)
        await self._acknowledge(message_id, envelope)

    async def _accept(self, message_id: bytes, envelope: bytes, logged_at: int) -> None:
        now = self._clock()
        try:
            opened = await self._open(envelope, now, logged_at)
            core = opened.header.core
            await self._check_received_roles(core, logged_at)
            decoded = check_body(core.purpose, opened.body, core.case_ref, core.meeting_ref)
        except LivcrError as exc:
            await self._store.record_rejection(message_id, exc.code, now)
            self.log.warning("received envelope rejected", code=exc.code)
            return
        sealed = self._box.seal(
            _aad(message_id, "received", core.case_ref, core.purpose), opened.body
        )
        row = (
            message_id,
            "received",
            core.case_ref,
            core.purpose,
            core.sender_id,
            ",".join(core.recipient_ids()),
            core.meeting_ref,
            logged_at,
            None,
            sealed,
        )
        if self.halted is not None:
            raise GatewayHalted(self.halted)
        if await self._store.store_received(row):
            self.log.info("received", purpose=core.purpose)
            self._inbox_event.set()
            self._arrival.set()
            self._arrival = asyncio.Event()
            if core.purpose == "afsluiting" and getattr(decoded, "deletion_requested", False):
                asyncio.create_task(  # noqa: RUF006
                    self._confirm_deletion(core.case_ref, core.sender_id, message_id)
                )

    async def _open(self, envelope: bytes, now: int, logged_at: int) -> Any:
        try:
            return open_envelope(
                envelope,
                recipient_id=self.participant_id,
                prekeys=self._prekeys,
                directory=self.directory,
                now=now,
                judged_at=logged_at,
            )
        except UnknownSender:
            await self.maintain()  # a participant enrolled since our last refresh
            return open_envelope(
                envelope,
                recipient_id=self.participant_id,
                prekeys=self._prekeys,
                directory=self.directory,
                now=now,
                judged_at=logged_at,
            )

    async def _check_received_roles(self, core: HeaderCore, logged_at: int) -> None:
        """Check what the hub let through as far as our own directory can judge it.

        The sender signed the envelope, so a sender's gateway that skipped its checks, or a hub
        that routed what policy forbids, would otherwise reach us unnoticed. Judged at the time
        the hub logged it (a member revoked since then was a fine recipient then). A refusal
        first refreshes the directory once: the hub may know an enrolment we have not seen.

        Raises:
            PurposeNotAllowed, RecipientNotAllowed: the directory says this message may not exist.
        """
        facts = MessageFacts(
            core.sender_id, core.purpose, core.case_ref, core.recipient_ids(), core.meeting_ref
        )
        decision = self._directory_decision(facts, logged_at)
        if not decision.allowed:
            await self.maintain()
            decision = self._directory_decision(facts, logged_at)
        decision.raise_for_denial()

    async def _acknowledge(self, message_id: bytes, envelope: bytes) -> None:
        received_at = self._clock()
        message = delivery_receipt_message(
            message_id, envelope_hash(envelope), self.participant_id, received_at
        )
        await self.client.ack([(message_id, received_at, self._identity.sign(message))])

    async def messages(self, *, follow: bool = True) -> AsyncIterator[Message]:
        """Every received message, once, in arrival order.

        With ``follow`` (the default) it then waits for more and never ends by itself: a
        service's receiving loop. With ``follow=False`` it ends once the messages received so
        far are handed over.
        """
        while True:
            self._inbox_event.clear()
            rows = await self._store.dossier(unconsumed=True, limit=100)
            for row in rows:
                yield self._message(row)
                await self._store.mark_consumed(row.seq)
            if not rows:
                if not follow:
                    return
                await self._inbox_event.wait()

    def arrival(self) -> asyncio.Event:
        """An event set when the next received message is stored (for long polling).

        Take it before calling ``received`` and wait on it when that returned nothing: a message
        stored in between has then already set it, so no wake-up is missed.
        """
        return self._arrival

    async def received(self, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Received messages with a dossier ``seq`` above ``after``, oldest first, as records.

        A cursor: the same ``after`` gives the same records again (an erased one with ``body``
        None). The records count as handed over: ``status()["unread"]`` and ``messages()`` skip
        them from then on.
        """
        return [self._record(r) for r in await self._store.received_after(after, limit)]

    def _message(self, row: DossierRow) -> Message:
        assert row.sealed is not None  # noqa: S101  (unconsumed rows are never erased ones)
        raw = self._box.open(
            _aad(row.message_id, row.direction, row.case_ref, row.purpose), row.sealed
        )
        return Message(
            row.message_id,
            row.case_ref,
            row.purpose,
            row.sender_id,
            tuple(row.recipients.split(",")),
            row.meeting_ref,
            row.logged_at or 0,
            decode_body(row.purpose, raw),
            raw,
        )

    # Co-signatures.
    def is_witnessed(self, receipt: Receipt) -> bool:
        """Whether a checkpoint with a quorum of witness cosignatures covers the receipt's leaf
        (spec §10.7); always False under a policy with quorum 0."""
        return self.witnesses.is_witnessed(receipt.leaf_index)

    def cosign(self, case_ref: str, meeting_ref: str, body: Body | bytes) -> Cosignature:
        """This member's co-signature over the exact content of a terugkoppelingsfiche."""
        raw = self._body_bytes("terugkoppelingsfiche", body)
        check_body("terugkoppelingsfiche", raw, case_ref, meeting_ref)
        return cosign(
            self._identity,
            self.participant_id,
            cell_id=self.config.gateway.cell_id,
            case_ref=case_ref,
            meeting_ref=meeting_ref,
            purpose="terugkoppelingsfiche",
            digest=content_digest(raw),
        )

    # Cases (the coordinator's calls; the hub refuses them from anyone else).
    def new_case_ref(self) -> str:
        """A fresh pseudonymous case reference: random, meaningless, never derived from a person."""
        return mint_case_ref(self._random)

    async def open_case(self, members: Iterable[str], case_ref: str | None = None) -> str:
        case_ref = case_ref or self.new_case_ref()
        await self.client.open_case(case_ref, sorted(set(members)))
        return case_ref

    async def change_members(
        self,
        case_ref: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        owner: str | None = None,
    ) -> dict[str, Any]:
        return await self.client.change_members(
            case_ref, add=list(add), remove=list(remove), owner=owner
        )

    async def record_meeting(
        self, case_ref: str, meeting_ref: str, present: Iterable[str]
    ) -> dict[str, Any]:
        return await self.client.record_meeting(case_ref, meeting_ref, sorted(set(present)))

    async def move_case(self, case_ref: str, to: str, reason: str | None = None) -> dict[str, Any]:
        return await self.client.move_case(case_ref, to, reason)

    # The dossier.
    async def dossier(
        self, *, case_ref: str | None = None, purpose: str | None = None
    ) -> list[dict[str, Any]]:
        """What this service sent and received, searchable by case reference and purpose."""
        return [
            self._record(r) for r in await self._store.dossier(case_ref=case_ref, purpose=purpose)
        ]

    def _record(self, row: DossierRow) -> dict[str, Any]:
        body = None
        if row.sealed is not None:
            body = json.loads(
                self._box.open(
                    _aad(row.message_id, row.direction, row.case_ref, row.purpose), row.sealed
                )
            )
        return {
            "seq": row.seq,
            "message_id": row.message_id.hex(),
            "direction": row.direction,
            "case_ref": row.case_ref,
            "purpose": row.purpose,
            "sender": row.sender_id,
            "recipients": row.recipients.split(","),
            "meeting_ref": row.meeting_ref,
            "logged_at": row.logged_at,
            "leaf_index": row.leaf_index,
            "witnessed": self.witnesses.is_witnessed(row.leaf_index),
            "body": body,
            "deleted_at": row.deleted_at,
        }

    async def export(self, case_ref: str) -> dict[str, Any]:
        """Subject-access export: everything sent and received about one case, with the log
        evidence (leaf index, inclusion proof, signed checkpoint) of when and to whom."""
        note = await self.client.checkpoint()
        try:
            checkpoint = await self.trust.observe(note)
        except TrustFailure as exc:
            self._halt(str(exc))
            raise
        records = await self.dossier(case_ref=case_ref)
        for record in records:
            index = record["leaf_index"]
            if index is not None and index >= 0 and index < checkpoint.size:
                proof = await self.client.inclusion(index, checkpoint.size)
                record["inclusion_proof"] = [base64.b64encode(h).decode() for h in proof]
        return {
            "case_ref": case_ref,
            "participant": self.participant_id,
            "checkpoint": note.decode("utf-8"),
            "records": records,
        }

    async def erase_case(self, case_ref: str) -> list[bytes]:
        """Delete this service's content about a case (metadata stays as evidence)."""
        return await self._store.erase_case(case_ref, self._clock())

    async def _confirm_deletion(self, case_ref: str, coordinator: str, request: bytes) -> None:
        """Erase the case and attest it; the deletion request itself (a reason and a deadline,
        nothing about the person) stays readable, so the service's software learns of it."""
        erased = await self._store.erase_case(case_ref, self._clock(), keep=request)
        body = {
            "purpose": "wissingsbevestiging",
            "legal_ground": ["decreet_2021"],
            "deleted_at": self._clock(),
            "scope": "all case data in this service's dossier",
            "message_ids": sorted(m.hex() for m in erased),
        }
        try:
            await self.send(
                case_ref, "wissingsbevestiging", to=[coordinator], body=body, wait=False
            )
        except (LivcrError, GatewayHalted) as exc:
            self.log.exception(
                "deletion confirmation not sent", code=getattr(exc, "code", "halted")
            )

    async def status(self) -> dict[str, Any]:
        counts = await self._store.counts()
        return {
            "participant": self.participant_id,
            "halted": self.halted,
            "connected": self.connected.is_set(),
            "witness_quorum": self.witnesses.policy.quorum,
            "witnessed_size": self.witnesses.witnessed_size,
            **counts,
        }


def _participant(entry: DirectoryEntry) -> Participant:
    return Participant(entry.participant_id, entry.role, entry.allowed_purposes)
