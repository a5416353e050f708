"""Sending: check, seal and queue a message, then deliver it until the hub holds it.

``send`` returns once the durable outbox holds the message (with ``wait``, once the hub's
receipt is checked). The delivery loop follows the sender's rules of spec §9.3 as the table in
``livcr_exchange.sending`` gives them: the same bytes again after no answer; sealed again (same
message id, fresh timestamp) after a refusal for time, and retried with backoff for as long as
the clocks disagree; sent once the hub shows a receipt (checked) or holds the message without
one; ``failed`` and kept, body included, after any other refusal, until an operator retries or
discards it. Nothing the outbox accepted is dropped without the API saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterable

import msgspec

from livcr_exchange.envelope import (
    MessageSpec,
    build_block,
    content_digest,
    draw_parts,
    seal,
)
from livcr_exchange.envelope.open import UnverifiedEnvelope
from livcr_exchange.errors import LivcrError, Malformed
from livcr_exchange.keys import PrekeyPublic
from livcr_exchange.policy import MessageFacts
from livcr_exchange.receipts import verify_receipt_of
from livcr_exchange.sending import HubAnswer, OutboxState, Step, classify, next_step
from livcr_exchange.service.hub_client import HubRefused

from .context import DAY, Context, Receipt, body_aad
from .errors import NO_ANSWER, SendRefused, SendTimeout
from .outgoing import Submitted, seal_documents, submit_row
from .prekeys import PeerPrekeys
from .reseal import reseal
from .store import OutboxRow
from .submission import Draft
from .trust import TrustFailure


def _observe(outcome: asyncio.Future[Receipt]) -> None:
    """Retrieve a receipt future's exception nobody awaits, so it is not reported as lost."""
    if not outcome.cancelled():
        outcome.exception()


class Outbox:
    """The durable outbox and its delivery loop."""

    def __init__(self, ctx: Context, peers: PeerPrekeys) -> None:
        self._ctx = ctx
        self.peers = peers
        self._waiters: dict[bytes, asyncio.Future[Receipt]] = {}
        self.wake = asyncio.Event()
        ctx.on_halt.append(self._fail_waiters)

    def _fail_waiters(self, reason: str) -> None:
        from .errors import GatewayHalted  # noqa: PLC0415  (kept next to its only use)

        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(GatewayHalted(reason))

    def cancel_waiters(self) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.cancel()

    def check_sendable(
        self, purpose: str, case_ref: str, recipients: Iterable[str], meeting_ref: str | None
    ) -> None:
        """What the verified directory alone can tell before the body is read (spec §7.3): the
        purpose, and the roles that may send and receive it; the hub checks the case too.

        Raises:
            PurposeNotAllowed, RecipientNotAllowed: the policy's denial, with the hub's code.
            UnknownSender, KeyRevoked, KeyNotValid: this gateway's own entry is not usable.
        """
        ctx = self._ctx
        facts = MessageFacts(
            ctx.participant_id, purpose, case_ref, tuple(sorted(set(recipients))), meeting_ref
        )
        decision = ctx.decide_header(facts, ctx.clock())
        if not decision.allowed:
            ctx.log.info("refused before sealing", purpose=purpose, code=decision.code)
        decision.raise_for_denial()

    def check(self, draft: Draft) -> None:
        """What the verified directory can tell before sealing (spec §7.3), body included.

        Raises:
            BodySchemaViolation, PurposeNotAllowed, RecipientNotAllowed: the policy's denial.
            UnknownSender, KeyRevoked, KeyNotValid: this gateway's own entry is not usable.
        """
        ctx = self._ctx
        facts = MessageFacts(
            ctx.participant_id,
            draft.purpose,
            draft.case_ref,
            tuple(draft.recipients),
            draft.meeting_ref,
        )
        decision = ctx.decide(facts, draft.raw, ctx.clock())
        if not decision.allowed:
            self._ctx.log.info("refused before sealing", purpose=draft.purpose, code=decision.code)
        decision.raise_for_denial()

    async def queue(
        self, draft: Draft, *, hub_away_ok: bool, idempotency: tuple[str, bytes] | None = None
    ) -> tuple[bytes, asyncio.Future[Receipt]]:
        """Seal ``draft`` to the recipients' current prekeys and store it durably.

        Raises:
            KeyNotValid: a recipient has no valid prekey.
            HubUnavailable: the hub did not answer and the cache cannot stand in.
        """
        ctx = self._ctx
        prekeys = await self.peers.current(
            ctx.directory, draft.recipients, ctx.clock(), hub_away_ok=hub_away_ok
        )
        now = ctx.clock()
        envelope, spool = b"", None
        if draft.documents:  # sealed into a spool file, in constant memory
            parts = draw_parts(ctx.random, now, ctx.config.gateway.message_ttl_days * DAY)
            spool = await seal_documents(ctx, self._spec(draft, prekeys), draft, parts)
            message_id = parts.message_id
        else:
            envelope = self._seal(draft, prekeys, now)
            message_id = UnverifiedEnvelope.parse(envelope).message_id
        sealed = ctx.box.seal(
            body_aad(message_id, "sent", draft.case_ref, draft.purpose), draft.raw
        )
        recipients = ",".join(draft.recipients)
        dossier = (
            message_id,
            "sent",
            draft.case_ref,
            draft.purpose,
            ctx.participant_id,
            recipients,
            draft.meeting_ref,
            None,
            None,
            sealed,
        )
        waiter: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._waiters[message_id] = waiter
        row = OutboxRow(
            message_id, draft.case_ref, draft.purpose, envelope, OutboxState.PENDING, 0, None, None
        )
        row = dataclasses.replace(row, envelope_file=spool)
        await ctx.store.enqueue(row, dossier, now, idempotency, draft.documents)
        self._ctx.log.info("queued", purpose=draft.purpose, recipients=len(draft.recipients))
        self.wake.set()
        return message_id, waiter

    def _seal(self, draft: Draft, prekeys: dict[str, PrekeyPublic], now: int) -> bytes:
        """The envelope of ``draft``. Raises Malformed, Oversized (from ``seal``)."""
        spec, ttl = self._spec(draft, prekeys), self._ctx.config.gateway.message_ttl_days * DAY
        return seal(self._ctx.identity, spec, draft.raw, now=now, ttl=ttl, random=self._ctx.random)

    def _spec(self, draft: Draft, prekeys: dict[str, PrekeyPublic]) -> MessageSpec:
        ctx = self._ctx
        block = None
        if draft.cosignatures:
            if draft.cosign_deadline is None:
                raise Malformed("co-signatures need the deadline they were made for (spec §7.4)")
            block = build_block(
                content_digest(draft.raw), draft.cosign_deadline, draft.cosignatures
            )
        return MessageSpec(
            ctx.config.gateway.cell_id,
            ctx.participant_id,
            draft.purpose,
            draft.case_ref,
            prekeys,
            ctx.config.suite,
            block,
            draft.meeting_ref,
        )

    async def wait(
        self, message_id: bytes, waiter: asyncio.Future[Receipt], timeout: float
    ) -> Receipt:
        """The receipt, once the hub gave one.

        Raises:
            SendRefused: the hub refused the message for good.
            SendTimeout: none within ``timeout``; the message stays queued.
            GatewayHalted: the gateway stopped trusting the hub.
        """
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError as exc:
            waiter.add_done_callback(_observe)
            raise SendTimeout(message_id) from exc
        finally:
            if waiter.done():
                self._waiters.pop(message_id, None)

    def detach(self, waiter: asyncio.Future[Receipt]) -> None:
        waiter.add_done_callback(_observe)

    # The delivery loop.
    async def loop(self) -> None:
        delay = self._ctx.config.gateway.retry_initial_seconds
        while True:
            self.wake.clear()
            for row in await self._ctx.store.due(time.time()):
                await self.deliver(row)
            upcoming = await self._ctx.store.next_due()
            wait = delay * 20 if upcoming is None else max(0.0, upcoming - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)

    async def deliver(self, row: OutboxRow) -> None:
        """One delivery attempt of ``row``; its outcome as the sender's rules say."""
        if self._ctx.halted is not None:
            return
        fresh = await self._fresh(row)
        if fresh is None:
            return
        row = fresh
        await self._ctx.store.begin_attempt(row.message_id)  # row.attempts: those begun before
        try:
            submitted = await submit_row(self._ctx, row)
        except HubRefused as exc:
            await self._refused(row, exc)
            return
        except NO_ANSWER as exc:
            await self._retry(row, type(exc).__name__)
            return
        await self._receipt_answered(row, submitted)

    async def _fresh(self, row: OutboxRow) -> OutboxRow | None:
        """``row`` sealed again when its timestamp is too far from the clock. Only before its
        first attempt, or after the hub refused it for time: otherwise the same bytes go, and a
        hub that committed an earlier attempt answers them with their receipt (spec §9.3).
        None when that ended this delivery (refused before sealing, or no answer)."""
        if row.attempts and row.last_error not in TIME_ERRORS:
            return row
        try:
            return await self._reseal(row)
        except LivcrError as exc:
            self._ctx.log.warning(
                "refused before sealing again", code=exc.code, purpose=row.purpose
            )
            await self._fail(row, exc.code, str(exc), SendRefused(exc.code, str(exc)))
        except HubRefused as exc:
            if classify(exc.status, exc.code) is HubAnswer.REFUSED:
                await self._fail(
                    row, exc.code, exc.detail, SendRefused(exc.code, exc.detail, exc.status)
                )
            else:
                await self._retry(row, exc.code)
        except NO_ANSWER as exc:
            await self._retry(row, type(exc).__name__)
        return None

    async def _reseal(self, row: OutboxRow) -> OutboxRow:
        """The row's message sealed again with a fresh timestamp (``reseal``)."""
        return await reseal(self._ctx, self.peers, self.check, row)

    async def _refused(self, row: OutboxRow, exc: HubRefused) -> None:
        step = next_step(classify(exc.status, exc.code), attempted_before=row.attempts > 0)
        if step in {Step.RETRY, Step.RESEAL}:
            # A refusal for time is retried with backoff; the next attempt seals again with
            # the clock of then (the clocks may still disagree).
            await self._retry(row, exc.code)
        elif step is Step.UNPROVEN:
            await self._sent_without_receipt(row, exc)
        else:
            await self._fail(
                row, exc.code, exc.detail, SendRefused(exc.code, exc.detail, exc.status)
            )

    async def _sent_without_receipt(self, row: OutboxRow, exc: HubRefused) -> None:
        """The hub holds the message from an earlier attempt but shows no receipt for these
        bytes (spec §9.3). The message was sent; the dossier marks its log position unknown (-1)
        and the receipt claims no proof."""
        self._ctx.log.warning(
            "sent, but the hub showed no receipt: its place in the log is not proven",
            code=exc.code,
            purpose=row.purpose,
        )
        await self._ctx.store.mark_sent(row.message_id, None, -1, -1)
        self._settle(row.message_id, Receipt.unproven(row.message_id))

    async def _fail(self, row: OutboxRow, code: str, detail: str, outcome: Exception) -> None:
        """Refused for good: kept as failed with ``code``; ``send`` raises ``outcome``."""
        await self._ctx.store.mark_failed(row.message_id, code, detail)
        self._settle(row.message_id, outcome)
        self._ctx.log.warning("message refused; kept as failed", code=code, purpose=row.purpose)

    async def _receipt_answered(self, row: OutboxRow, submitted: Submitted) -> None:
        """Check the hub's receipt like any (a resubmission's too) and mark the message sent."""
        ctx = self._ctx
        answer = submitted.answered.receipt
        try:
            checkpoint = ctx.trust.open(answer.checkpoint.encode("utf-8"))
            verify_receipt_of(submitted.envelope, answer, checkpoint)
            await ctx.trust.observe(answer.checkpoint.encode("utf-8"))
        except (TrustFailure, LivcrError) as exc:
            ctx.halt(f"the hub's receipt does not prove inclusion: {exc}")
            return
        except (*NO_ANSWER, HubRefused) as exc:
            # Checking the receipt needs the hub (a consistency proof); try again later.
            await self._retry(row, type(exc).__name__)
            return
        receipt_json = msgspec.json.encode(answer).decode()
        await ctx.store.mark_sent(row.message_id, receipt_json, answer.logged_at, answer.leaf_index)
        self._settle(
            row.message_id,
            Receipt(
                row.message_id,
                answer.leaf_index,
                answer.logged_at,
                answer.tree_size,
                answer.checkpoint.encode(),
            ),
        )

    async def _retry(self, row: OutboxRow, reason: str) -> None:
        delay = self._ctx.backoff(row.attempts)
        await self._ctx.store.retry_later(row.message_id, time.time() + delay, reason)
        self._ctx.log.info(
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

    # The operator's calls on what is kept.
    async def rows(self, states: Iterable[OutboxState]) -> list[OutboxRow]:
        return await self._ctx.store.outbox(tuple(states))

    async def retry_failed(self, message_id: bytes) -> bool:
        """A failed message goes again (sealed anew when it must be); False if not failed."""
        done = await self._ctx.store.retry_failed(message_id)
        self.wake.set()
        return done

    async def discard(self, message_id: bytes) -> bool:
        """Give a failed message up (its content goes); False if it is not failed."""
        return await self._ctx.store.discard(message_id)


TIME_ERRORS = frozenset({"timestamp_out_of_window", "stale"}) | {HubAnswer.TIME.value}
