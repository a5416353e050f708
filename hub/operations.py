"""What the hub does for each request, between reading bytes and answering (DESIGN §7.7).

Each function takes the verified caller and plain inputs, calls the core, commits one batch to
the store and returns plain values; the HTTP handlers only translate.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

import structlog

from livcr_exchange.audit.leaves import (
    LEAF_SALT_BYTES,
    CaseMembership,
    CaseTransition,
    DeliveryReceipt,
    DeliveryWithdrawn,
    DirectoryChange,
    EnvelopeAccepted,
    Leaf,
    MeetingRecorded,
    Refusal,
    decode_leaf,
    delivery_receipt_message,
)
from livcr_exchange.audit.merkle import leaf_hash
from livcr_exchange.cases import (
    INITIAL_STATE,
    CaseState,
    ClosureReason,
    check_case_ref,
    transition,
)
from livcr_exchange.constants import LABEL_STATEMENT
from livcr_exchange.directory import Directory
from livcr_exchange.envelope import Freshness, HeaderCore
from livcr_exchange.envelope.incoming import ReceivedEnvelope
from livcr_exchange.errors import LivcrError, Replayed, UnknownSender
from livcr_exchange.hub_answers import DeliveryFrame, DeliveryItem, ReceiptAnswer
from livcr_exchange.policy import (
    CaseView,
    Decision,
    MessageFacts,
    Participant,
    evaluate_header,
    participant_of,
)
from livcr_exchange.purposes import CATALOGUE, CaseTie
from livcr_exchange.request_auth import AuthenticatedRequest
from livcr_exchange.roles import Role
from livcr_exchange.service.problems import Problem
from livcr_exchange.statements import PrekeyStatement, StatementType
from livcr_exchange.wire import check_ident

from .state import Hub
from .store.base import (
    CaseRecord,
    CommitResult,
    DeliveryRecord,
    EnvelopeSink,
    NewEnvelope,
    PendingLeaf,
    WriteBatch,
)
from .visibility import SEES_EVERY_LEAF, case_of, leaf_is_readable

log = structlog.get_logger("livcr.hub")
NO_MESSAGE = bytes(16)
# One answer for a case that does not exist and for one the caller may not see (get_case).
NO_SUCH_CASE = "no such case"
STATEMENT_HASH_LABEL = LABEL_STATEMENT  # the core's; named here for the hub's tests
P = ParamSpec("P")
T = TypeVar("T")


def leaf_salt(hub: Hub) -> bytes:
    """A leaf's fresh salt from the hub's CSPRNG (spec §10.4)."""
    return hub.random(LEAF_SALT_BYTES)


def pending_leaf(leaf: Leaf, case_ref: str | None = None) -> PendingLeaf:
    data = leaf.encode()
    return PendingLeaf(data, leaf_hash(data), case_ref)


def participant_view(directory: Directory, participant_id: str, at: int) -> Participant | None:
    try:
        entry = directory.current_entry(participant_id, at)
    except LivcrError:
        return None
    return participant_of(entry)


def case_view(record: CaseRecord | None) -> CaseView | None:
    if record is None:
        return None
    return CaseView(
        record.case_ref,
        CaseState(record.state),
        record.members,
        record.owner,
        record.referrer,
        record.meetings,
    )


@dataclass(frozen=True)
class Receipt:
    message_id: bytes
    leaf_index: int
    logged_at: int
    salt: bytes  # the envelope leaf's salt: the sender recomputes the leaf (spec §10.2)
    tree_size: int
    checkpoint: bytes
    inclusion_proof: list[bytes]
    # The same bytes were accepted by an earlier submission: this is their original receipt,
    # proven against the current tree, and nothing new was committed (spec §9.3).
    accepted_before: bool = False

    def answer(self) -> ReceiptAnswer:
        """The receipt as the hub answers it (livcr_exchange.hub_answers)."""
        return ReceiptAnswer(
            self.message_id.hex(),
            self.leaf_index,
            self.logged_at,
            self.salt.hex(),
            self.tree_size,
            self.checkpoint.decode("utf-8"),
            self.inclusion_proof,
        )


async def record_refusal(
    hub: Hub,
    caller: str,
    action: str,
    code: str,
    reason: str,
    message_id: bytes = NO_MESSAGE,
) -> None:
    """Audit an authenticated request the hub refused (spec §7.3, §10: one ``refusal`` leaf).

    ``reason`` is the precise one, for our own log only; the leaf holds the code.
    """
    now = hub.clock()
    leaf = Refusal(now, leaf_salt(hub), caller, action, code, message_id)
    await hub.store.commit(WriteBatch(leaves=[pending_leaf(leaf)], refusals=[(now, code)]))
    log.info("refusal", participant=caller, action=action, code=code, reason=reason)


@dataclass(frozen=True)
class Submission:
    """An envelope submitted for acceptance: read whole (its bytes go in its row), or streamed
    to the store's ``sink`` as it arrived (its bytes are there, not in memory)."""

    received: ReceivedEnvelope
    inline: bytes = b""
    sink: EnvelopeSink | None = None

    async def commit(self, hub: Hub, batch: WriteBatch) -> CommitResult:
        if self.sink is None:
            return await hub.store.commit(batch)
        return await self.sink.commit(batch)


async def accept_envelope(
    hub: Hub,
    caller: AuthenticatedRequest,
    data: bytes,
    *,
    note_purpose: Callable[[str], None] | None = None,
) -> Receipt:
    """Accept an envelope held whole (a small submission, an item of a batch): see
    ``accept_submission``."""
    return await accept_submission(
        hub, caller, lambda: Submission(ReceivedEnvelope.whole(data), data), note_purpose
    )


async def accept_submission(
    hub: Hub,
    caller: AuthenticatedRequest,
    submission: Callable[[], Submission],
    note_purpose: Callable[[str], None] | None = None,
) -> Receipt:
    """Verify, apply policy, store durably, log; return the sender's receipt.

    ``submission`` parses the envelope (its errors are refusals like the others).
    ``note_purpose`` hears the purpose tag as soon as the header parsed (for the request log,
    which records it whether the envelope is accepted or refused).

    Every refusal is audited before it is raised, with the envelope's message id when it
    parsed, so a refused submission leaves one ``refusal`` leaf and nothing else. The caller's
    resubmission of bytes the hub accepted before is no refusal: it gets their original
    receipt (``accepted_before``), and nothing is written.

    Raises:
        LivcrError: every receiver check of spec §6.6 steps 1-9 and every policy denial.
    """
    message_id = NO_MESSAGE
    try:
        parsed = submission()
        message_id = parsed.received.envelope.message_id
        if note_purpose is not None:
            note_purpose(parsed.received.envelope.purpose)
        try:
            return await _accept(hub, caller, parsed)
        except LivcrError:
            # Asked only once the envelope is refused, so that a first submission pays nothing
            # for it; whatever refused these bytes now (they went stale, the case moved on),
            # they were verified and admitted when they were accepted.
            earlier = await _earlier_receipt(
                hub, caller.participant_id, message_id, parsed.received.envelope_hash
            )
            if earlier is None:
                raise
            return earlier
    except LivcrError as exc:
        await record_refusal(hub, caller.participant_id, "submit", exc.code, str(exc), message_id)
        raise


async def _accept(hub: Hub, caller: AuthenticatedRequest, submission: Submission) -> Receipt:
    now = hub.clock()
    received = submission.received
    envelope = received.envelope
    if envelope.sender_id != caller.participant_id:
        raise UnknownSender("the envelope's sender is not the authenticated participant")
    check_case_ref(envelope.case_ref)
    directory = await hub.current_directory()
    verified = received.verify(directory, now=now, judged_at=now, freshness=Freshness.SUBMISSION)
    salt = leaf_salt(hub)
    core = verified.header.core
    admission = Admission(directory, now, verified.cosigners, core, submission, salt)
    record = await hub.store.case(core.case_ref)
    if record is None:
        # This envelope would open the case: decide and commit under the case lock, so two
        # referrals under one fresh reference cannot both open it (the second would overwrite
        # the first's referrer and members), nor race the coordinator opening it. The case is
        # read again under the lock: someone may have opened it meanwhile.
        async with hub.case_registry():
            record = await hub.store.case(core.case_ref)
            result = await _admit(hub, admission, record)
    else:
        # An existing case is decided on the record just read; no lock is held, so reading it
        # a second time would not make the decision any more current than it is now.
        result = await _admit(hub, admission, record)
    index = result.leaf_indexes[0]
    await hub.log.catch_up(result.tree_size)
    receipt = Receipt(
        core.message_id,
        index,
        now,
        salt,
        result.tree_size,
        hub.log.checkpoint_note(result.tree_size),
        hub.log.inclusion(index, result.tree_size),
    )
    frame = DeliveryFrame(0, core.message_id.hex(), now, index, received.size)
    for recipient in core.recipient_ids():
        hub.push.push(recipient, frame)  # a notice: the recipient fetches the bytes
    return receipt


async def _earlier_receipt(
    hub: Hub, sender_id: str, message_id: bytes, digest: bytes
) -> Receipt | None:
    """The original receipt of the envelope whose hash is ``digest`` if the hub accepted these
    exact bytes from ``sender_id`` before (spec §9.3), with its proof against the current
    tree; None when it accepted nothing under the pair (the refusal stands), or provably other
    bytes (so does the refusal: a replay, unless an earlier check failed).

    Raises:
        Replayed: the pair was accepted, but its leaf cannot be read (no log index was kept for
            it, or retention deleted the leaf's data): no receipt can be built.
    """
    acceptance = await hub.store.accepted_before(sender_id, message_id)
    if acceptance is None:
        return None
    if acceptance.leaf_index is None or acceptance.leaf_data is None:
        raise Replayed(
            f"message {message_id.hex()} from {sender_id} was accepted before;"
            " its log record can no longer be shown"
        )
    leaf = decode_leaf(acceptance.leaf_data)
    if not isinstance(leaf, EnvelopeAccepted) or leaf.envelope_hash != digest:
        return None
    index = acceptance.leaf_index
    size = await hub.log.catch_up()
    log.info("resubmission answered with its receipt", participant=sender_id)
    return Receipt(
        message_id,
        index,
        leaf.logged_at,
        leaf.salt,
        size,
        hub.log.checkpoint_note(size),
        hub.log.inclusion(index, size),
        accepted_before=True,
    )


@dataclass(frozen=True)
class Admission:
    """A verified envelope awaiting its policy decision and its commit."""

    directory: Directory
    now: int
    cosigners: frozenset[str]
    core: HeaderCore
    submission: Submission
    salt: bytes  # its leaf's


async def _admit(hub: Hub, admission: Admission, record: CaseRecord | None) -> CommitResult:
    """Apply policy to a verified envelope against ``record``, the case as stored now (None:
    not opened yet), then commit it with its leaf salted by ``admission.salt``."""
    core, now, received = admission.core, admission.now, admission.submission.received
    _decide(admission.directory, now, core, admission.cosigners, record).raise_for_denial()
    accepted = EnvelopeAccepted(
        now,
        admission.salt,
        core.message_id,
        core.sender_id,
        core.purpose,
        core.case_ref,
        core.recipient_ids(),
        received.envelope_hash,
        received.size,
    )
    envelope = NewEnvelope(
        core.message_id,
        core.sender_id,
        core.purpose,
        core.case_ref,
        core.recipient_ids(),
        now,
        core.expires_at,
        received.size,
        received.envelope_hash,
        admission.submission.inline,
    )
    batch = WriteBatch(envelopes=[envelope], leaves=[pending_leaf(accepted, core.case_ref)])
    if record is None:  # an aanmelding opens the case under the referrer's fresh reference
        _open_case_with(hub, batch, core, now)
    return await admission.submission.commit(hub, batch)


def _open_case_with(hub: Hub, batch: WriteBatch, core: HeaderCore, now: int) -> None:
    """Add to ``batch`` the case an aanmelding opens, and the leaf of its first transition."""
    opened = _new_case(
        core.case_ref, {core.sender_id, *core.recipient_ids()}, now, referrer=core.sender_id
    )
    batch.cases.append(opened)
    transition = CaseTransition(
        now, leaf_salt(hub), core.case_ref, core.sender_id, "none", opened.state, "none"
    )
    batch.leaves.append(pending_leaf(transition, core.case_ref))


def _decide(
    directory: Directory,
    now: int,
    core: HeaderCore,
    cosigners: frozenset[str],
    record: CaseRecord | None,
) -> Decision:
    sender = participant_view(directory, core.sender_id, now)
    if sender is None:
        raise UnknownSender(f"{core.sender_id} has no usable directory entry")
    recipients = {
        rid: view for rid in core.recipient_ids() if (view := participant_view(directory, rid, now))
    }
    facts = MessageFacts(
        core.sender_id,
        core.purpose,
        core.case_ref,
        core.recipient_ids(),
        core.meeting_ref,
        cosigners,
    )
    if record is not None and not _privy(sender, core.purpose, record):
        # Whoever is not on the case learns nothing of it, not even that it exists: the
        # answer is the one for a reference the hub does not know, whatever the case's state.
        # (Unless that answer is to open it: an aanmelding under a taken reference.)
        unknown = evaluate_header(facts, sender, recipients, None)
        if not unknown.allowed:
            return unknown
    return evaluate_header(facts, sender, recipients, case_view(record))


def _privy(sender: Participant, purpose: str, record: CaseRecord) -> bool:
    """Whether ``sender`` may learn that the case exists: a member, a coordinator, or a sender
    whose purpose needs no tie to the case (a rights request)."""
    known = CATALOGUE.get(purpose)
    return (
        sender.participant_id in record.members
        or sender.role is Role.COORDINATOR
        or (known is not None and known.sender_tie is CaseTie.ANY)
    )


def _new_case(
    case_ref: str, members: Iterable[str], now: int, *, referrer: str | None
) -> CaseRecord:
    return CaseRecord(
        case_ref, INITIAL_STATE.value, None, referrer, frozenset(members), {}, now, None, None
    )


async def leaf_reader(hub: Hub, caller: AuthenticatedRequest) -> Callable[[bytes], Awaitable[bool]]:
    """Whether ``caller`` may read a leaf's data (hub/visibility.py); cases are read once each."""
    if caller.entry.role in SEES_EVERY_LEAF:

        async def everything(_data: bytes) -> bool:
            return True

        return everything
    members: dict[str, frozenset[str]] = {}

    async def readable(data: bytes) -> bool:
        leaf = decode_leaf(data)
        case_ref = case_of(leaf)
        if case_ref is not None and case_ref not in members:
            record = await hub.store.case(case_ref)
            members[case_ref] = frozenset() if record is None else record.members
        case_members = frozenset() if case_ref is None else members[case_ref]
        return leaf_is_readable(leaf, caller.participant_id, case_members)

    return readable


def delivery_item(record: DeliveryRecord) -> DeliveryItem:
    """An inbox item: the notice of one delivery (its bytes: GET /v1/deliveries/{id})."""
    return DeliveryItem(
        record.seq, record.message_id.hex(), record.accepted_at, record.leaf_index, record.size
    )


def delivery_frame(record: DeliveryRecord) -> DeliveryFrame:
    """A push frame carrying the notice of one delivery."""
    return DeliveryFrame(
        record.seq, record.message_id.hex(), record.accepted_at, record.leaf_index, record.size
    )


async def acknowledge(
    hub: Hub, caller: AuthenticatedRequest, receipts: list[tuple[bytes, int, bytes]]
) -> tuple[list[int], list[str]]:
    """Record signed delivery receipts and drop the deliveries; unknown ids are reported back.

    Raises:
        BadSignature: a receipt not signed by the caller over that envelope.
    """
    now = hub.clock()
    batch = WriteBatch()
    unknown: list[str] = []
    seen: set[bytes] = set()
    for message_id, received_at, signature in receipts:
        if message_id in seen:  # one delivery, one receipt leaf: a repeat in a request is dropped
            continue
        seen.add(message_id)
        record = await hub.store.delivery(caller.participant_id, message_id)
        if record is None:
            unknown.append(message_id.hex())
            continue
        digest = record.digest
        message = delivery_receipt_message(message_id, digest, caller.participant_id, received_at)
        caller.entry.identity_key.verify(message, signature)
        batch.acks.append((caller.participant_id, message_id))
        leaf = DeliveryReceipt(
            now, leaf_salt(hub), message_id, caller.participant_id, digest, received_at, signature
        )
        batch.leaves.append(pending_leaf(leaf))
    if not batch.acks:
        return [], unknown
    result = await hub.store.commit(batch)
    return list(result.leaf_indexes), unknown


async def upload_prekeys(hub: Hub, caller: AuthenticatedRequest, statements: list[bytes]) -> int:
    """Store prekey statements signed by the caller's identity key.

    Raises:
        BadSignature, Malformed: a statement that does not verify or names someone else.
    """
    batch = WriteBatch()
    for signed in statements:
        statement = PrekeyStatement.open(signed, caller.entry.identity_key)
        if statement.participant_id != caller.participant_id:
            raise Problem("malformed", "prekey statement names another participant")
        batch.prekeys.append(
            (
                caller.participant_id,
                statement.prekey_id,
                signed,
                statement.not_before,
                statement.not_after,
            )
        )
        batch.leaves.append(
            pending_leaf(
                DirectoryChange.of(
                    hub.clock(),
                    leaf_salt(hub),
                    StatementType.PREKEY,
                    caller.participant_id,
                    signed,
                )
            )
        )
    await hub.store.commit(batch)
    return len(statements)


# Case registry: only the coordinator changes cases (DESIGN §5).
def case_write(
    operation: Callable[Concatenate[Hub, P], Awaitable[T]],
) -> Callable[Concatenate[Hub, P], Awaitable[T]]:
    """Run a read-modify-write of a case record under the case registry's lock.

    Each operation reads the whole record, changes it and stores it whole: two running at once
    would each write back the record it read, and one change (a member removed, a meeting
    recorded) would vanish from the registry while its leaf stays in the log.
    """

    @functools.wraps(operation)
    async def locked(hub: Hub, /, *args: P.args, **kwargs: P.kwargs) -> T:
        async with hub.case_registry():
            return await operation(hub, *args, **kwargs)

    return locked


def require_coordinator(caller: AuthenticatedRequest) -> None:
    if caller.entry.role is not Role.COORDINATOR:
        raise Problem("forbidden", "only the coordinator manages cases")


async def existing_case(hub: Hub, case_ref: str) -> CaseRecord:
    record = await hub.store.case(check_case_ref(case_ref))
    if record is None:
        raise Problem("not_found", NO_SUCH_CASE)
    return record


@case_write
async def open_case(
    hub: Hub, caller: AuthenticatedRequest, case_ref: str, members: list[str]
) -> CaseRecord:
    require_coordinator(caller)
    check_case_ref(case_ref)
    if await hub.store.case(case_ref) is not None:
        raise Problem("conflict", f"case {case_ref} exists")
    now = hub.clock()
    record = _new_case(
        case_ref, {caller.participant_id, *map(check_ident, members)}, now, referrer=None
    )
    batch = WriteBatch(
        cases=[record],
        leaves=[
            pending_leaf(
                CaseTransition(
                    now,
                    leaf_salt(hub),
                    case_ref,
                    caller.participant_id,
                    "none",
                    record.state,
                    "none",
                ),
                case_ref,
            ),
            pending_leaf(
                CaseMembership(
                    now,
                    leaf_salt(hub),
                    case_ref,
                    caller.participant_id,
                    tuple(sorted(record.members)),
                    (),
                ),
                case_ref,
            ),
        ],
    )
    await hub.store.commit(batch)
    return record


@case_write
async def change_members(
    hub: Hub,
    caller: AuthenticatedRequest,
    case_ref: str,
    add: list[str],
    remove: list[str],
    owner: str | None,
) -> CaseRecord:
    """Add or remove members; a removed member receives nothing on this case afterwards."""
    require_coordinator(caller)
    record = await existing_case(hub, case_ref)
    members = (record.members | set(map(check_ident, add))) - set(map(check_ident, remove))
    new_owner = record.owner if owner is None else check_ident(owner, "owner")
    if new_owner is not None and new_owner not in members:
        raise Problem("conflict", "the case owner must be a member")
    updated = CaseRecord(
        record.case_ref,
        record.state,
        new_owner,
        record.referrer,
        frozenset(members),
        record.meetings,
        record.opened_at,
        record.closed_at,
        record.purge_after,
    )
    removed = sorted(record.members - members)
    leaf = CaseMembership(
        hub.clock(),
        leaf_salt(hub),
        case_ref,
        caller.participant_id,
        tuple(sorted(members - record.members)),
        tuple(removed),
    )
    batch = WriteBatch(cases=[updated], leaves=[pending_leaf(leaf, case_ref)])
    await _withdraw_queued(hub, batch, case_ref, removed, caller.participant_id)
    await hub.store.commit(batch)
    return updated


async def _withdraw_queued(
    hub: Hub, batch: WriteBatch, case_ref: str, removed: list[str], actor_id: str
) -> None:
    """Add to ``batch`` the withdrawal of every envelope of the case still queued for a removed
    member, each with a ``delivery withdrawn`` leaf (spec §10.4): removal cuts future access,
    and what the member has not fetched yet is future access."""
    for recipient_id in removed:
        for message_id in await hub.store.pending_in_case(recipient_id, case_ref):
            batch.acks.append((recipient_id, message_id))
            withdrawn = DeliveryWithdrawn(
                hub.clock(), leaf_salt(hub), message_id, recipient_id, case_ref, actor_id
            )
            batch.leaves.append(pending_leaf(withdrawn, case_ref))


@case_write
async def record_meeting(
    hub: Hub, caller: AuthenticatedRequest, case_ref: str, meeting_ref: str, present: list[str]
) -> CaseRecord:
    require_coordinator(caller)
    record = await existing_case(hub, case_ref)
    check_ident(meeting_ref, "meeting reference")
    attendees = frozenset(map(check_ident, present))
    if not attendees <= record.members:
        raise Problem("conflict", "everyone present must be a member of the case")
    if meeting_ref in record.meetings:
        raise Problem("conflict", f"meeting {meeting_ref} is already recorded")
    updated = CaseRecord(
        record.case_ref,
        record.state,
        record.owner,
        record.referrer,
        record.members,
        {**record.meetings, meeting_ref: attendees},
        record.opened_at,
        record.closed_at,
        record.purge_after,
    )
    leaf = MeetingRecorded(
        hub.clock(),
        leaf_salt(hub),
        case_ref,
        meeting_ref,
        caller.participant_id,
        tuple(sorted(attendees)),
    )
    await hub.store.commit(WriteBatch(cases=[updated], leaves=[pending_leaf(leaf, case_ref)]))
    return updated


@case_write
async def move_case(
    hub: Hub, caller: AuthenticatedRequest, case_ref: str, target: str, reason: str | None
) -> CaseRecord:
    """Apply one transition of the case table; closing schedules the retention purge.

    Raises:
        IllegalTransition: not in the table, or a reason missing/extra.
    """
    require_coordinator(caller)
    record = await existing_case(hub, case_ref)
    try:
        to_state = CaseState(target)
        why = None if reason is None else ClosureReason(reason)
    except ValueError as exc:
        raise Problem("malformed", f"unknown state or reason: {exc}") from exc
    new_state = transition(CaseState(record.state), to_state, why)
    now = hub.clock()
    closing = new_state is CaseState.AFGESLOTEN
    retention = hub.config.hub.retention_days * 86_400
    updated = CaseRecord(
        record.case_ref,
        new_state.value,
        record.owner,
        record.referrer,
        record.members,
        record.meetings,
        record.opened_at,
        now if closing else record.closed_at,
        now + retention
        if closing
        else (None if new_state is CaseState.IN_SCREENING else record.purge_after),
    )
    leaf = CaseTransition(
        now,
        leaf_salt(hub),
        case_ref,
        caller.participant_id,
        record.state,
        new_state.value,
        reason or "none",
    )
    await hub.store.commit(WriteBatch(cases=[updated], leaves=[pending_leaf(leaf, case_ref)]))
    return updated
