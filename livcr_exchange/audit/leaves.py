"""Transparency-log leaves: what the hub records, without content or personal data (spec §10.4).

Each leaf is a canonical binary record (§4.1) whose first byte is its type and whose second field
is the hub's log time. Participant ids name services, not people; case references are random
pseudonyms; envelopes appear only as a hash and a size.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..constants import (
    HASH_BYTES,
    LABEL_DELIVERY_RECEIPT,
    LABEL_ENVELOPE_HASH,
    MAX_RECIPIENTS,
    MESSAGE_ID_BYTES,
    SIGNATURE_BYTES,
)
from ..errors import Malformed
from ..hashing import labelled_hash
from ..wire import Reader, Writer

MAX_LEAF_LIST = MAX_RECIPIENTS
MAX_REASON_BYTES = 200


class LeafType(enum.IntEnum):
    ENVELOPE_ACCEPTED = 0x01
    DELIVERY_RECEIPT = 0x02
    DIRECTORY_CHANGE = 0x03
    CASE_TRANSITION = 0x04
    CASE_MEMBERSHIP = 0x05
    MEETING_RECORDED = 0x06
    REFUSAL = 0x07
    DELIVERY_DROPPED = 0x08
    DELIVERY_WITHDRAWN = 0x09


class DropReason(enum.StrEnum):
    """Why an operator dropped a pending delivery (spec §10.4): a closed list, so that the
    log never holds free text an operator typed."""

    UNDELIVERABLE = "undeliverable"  # the recipient cannot take it (too large, keeps failing)
    RECIPIENT_GONE = "recipient_gone"  # the participant left the cell and will not fetch it
    TOO_OLD = "too_old"  # it waited past any use
    SENDER_REQUEST = "sender_request"  # the sender asked for it to be withdrawn


def envelope_hash(envelope: bytes) -> bytes:
    return labelled_hash(LABEL_ENVELOPE_HASH, envelope)


@dataclass(frozen=True)
class EnvelopeAccepted:
    logged_at: int
    message_id: bytes
    sender_id: str
    purpose: str
    case_ref: str
    recipients: tuple[str, ...]
    envelope_hash: bytes
    size: int

    def encode(self) -> bytes:
        return (
            _start(LeafType.ENVELOPE_ACCEPTED, self.logged_at)
            .fixed(self.message_id, MESSAGE_ID_BYTES)
            .ident(self.sender_id)
            .ident(self.purpose)
            .ident(self.case_ref)
            .idents(self.recipients, MAX_LEAF_LIST)
            .fixed(self.envelope_hash, HASH_BYTES)
            .u64(self.size)
            .getvalue()
        )


def delivery_receipt_message(
    message_id: bytes, envelope_digest: bytes, recipient_id: str, received_at: int
) -> bytes:
    """What a recipient signs to acknowledge an envelope (spec §10.4)."""
    return LABEL_DELIVERY_RECEIPT + (
        Writer()
        .fixed(message_id, MESSAGE_ID_BYTES)
        .fixed(envelope_digest, HASH_BYTES)
        .ident(recipient_id)
        .u64(received_at)
        .getvalue()
    )


@dataclass(frozen=True)
class DeliveryReceipt:
    logged_at: int
    message_id: bytes
    recipient_id: str
    envelope_hash: bytes
    received_at: int
    signature: bytes

    def encode(self) -> bytes:
        return (
            _start(LeafType.DELIVERY_RECEIPT, self.logged_at)
            .fixed(self.message_id, MESSAGE_ID_BYTES)
            .ident(self.recipient_id)
            .fixed(self.envelope_hash, HASH_BYTES)
            .u64(self.received_at)
            .fixed(self.signature, SIGNATURE_BYTES)
            .getvalue()
        )


@dataclass(frozen=True)
class DirectoryChange:
    logged_at: int
    statement_type: int  # 0x01 entry, 0x02 revocation, 0x03 prekey
    participant_id: str
    statement_hash: bytes

    def encode(self) -> bytes:
        return (
            _start(LeafType.DIRECTORY_CHANGE, self.logged_at)
            .u8(self.statement_type)
            .ident(self.participant_id)
            .fixed(self.statement_hash, HASH_BYTES)
            .getvalue()
        )


@dataclass(frozen=True)
class CaseTransition:
    logged_at: int
    case_ref: str
    actor_id: str
    from_state: str  # "none" when the case is opened
    to_state: str
    reason: str  # "none" when there is none

    def encode(self) -> bytes:
        return (
            _start(LeafType.CASE_TRANSITION, self.logged_at)
            .ident(self.case_ref)
            .ident(self.actor_id)
            .ident(self.from_state)
            .ident(self.to_state)
            .ident(self.reason)
            .getvalue()
        )


@dataclass(frozen=True)
class CaseMembership:
    logged_at: int
    case_ref: str
    actor_id: str
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def encode(self) -> bytes:
        return (
            _start(LeafType.CASE_MEMBERSHIP, self.logged_at)
            .ident(self.case_ref)
            .ident(self.actor_id)
            .idents(self.added, MAX_LEAF_LIST)
            .idents(self.removed, MAX_LEAF_LIST)
            .getvalue()
        )


@dataclass(frozen=True)
class MeetingRecorded:
    logged_at: int
    case_ref: str
    meeting_ref: str
    actor_id: str
    present: tuple[str, ...]

    def encode(self) -> bytes:
        return (
            _start(LeafType.MEETING_RECORDED, self.logged_at)
            .ident(self.case_ref)
            .ident(self.meeting_ref)
            .ident(self.actor_id)
            .idents(self.present, MAX_LEAF_LIST)
            .getvalue()
        )


@dataclass(frozen=True)
class Refusal:
    """An authenticated request the hub refused: who, what, which code. No content."""

    logged_at: int
    actor_id: str
    action: str
    code: str
    message_id: bytes  # 16 zero bytes when the request was not an envelope

    def encode(self) -> bytes:
        return (
            _start(LeafType.REFUSAL, self.logged_at)
            .ident(self.actor_id)
            .ident(self.action)
            .ident(self.code)
            .fixed(self.message_id, MESSAGE_ID_BYTES)
            .getvalue()
        )


@dataclass(frozen=True)
class DeliveryDropped:
    """An operator removed an envelope from one recipient's queue before it was delivered."""

    logged_at: int
    message_id: bytes
    recipient_id: str
    envelope_hash: bytes
    size: int
    reason: DropReason

    def encode(self) -> bytes:
        return (
            _start(LeafType.DELIVERY_DROPPED, self.logged_at)
            .fixed(self.message_id, MESSAGE_ID_BYTES)
            .ident(self.recipient_id)
            .fixed(self.envelope_hash, HASH_BYTES)
            .u64(self.size)
            .ident(DropReason(self.reason).value)
            .getvalue()
        )


def _read_dropped(logged_at: int, reader: Reader) -> DeliveryDropped:
    message_id = reader.fixed(MESSAGE_ID_BYTES)
    recipient_id = reader.ident()
    digest = reader.fixed(HASH_BYTES)
    size = reader.u64()
    reason = reader.ident()
    try:
        return DeliveryDropped(
            logged_at, message_id, recipient_id, digest, size, DropReason(reason)
        )
    except ValueError:
        raise Malformed(f"unknown drop reason {reason!r}") from None


@dataclass(frozen=True)
class DeliveryWithdrawn:
    """An envelope of a case taken from the queue of a member removed from that case before
    it fetched it: removal cuts what is still queued too."""

    logged_at: int
    message_id: bytes
    recipient_id: str
    case_ref: str
    actor_id: str  # who removed the member

    def encode(self) -> bytes:
        return (
            _start(LeafType.DELIVERY_WITHDRAWN, self.logged_at)
            .fixed(self.message_id, MESSAGE_ID_BYTES)
            .ident(self.recipient_id)
            .ident(self.case_ref)
            .ident(self.actor_id)
            .getvalue()
        )


Leaf = (
    EnvelopeAccepted
    | DeliveryReceipt
    | DirectoryChange
    | CaseTransition
    | CaseMembership
    | MeetingRecorded
    | Refusal
    | DeliveryDropped
    | DeliveryWithdrawn
)


def _start(leaf_type: LeafType, logged_at: int) -> Writer:
    return Writer().u8(leaf_type).u64(logged_at)


def decode_leaf(data: bytes) -> Leaf:
    """Decode a leaf strictly. Raises Malformed or NonCanonical."""
    reader = Reader(data, "log leaf")
    code = reader.u8()
    logged_at = reader.u64()
    leaf: Leaf
    match code:
        case LeafType.ENVELOPE_ACCEPTED:
            leaf = EnvelopeAccepted(
                logged_at,
                reader.fixed(MESSAGE_ID_BYTES),
                reader.ident(),
                reader.ident(),
                reader.ident(),
                reader.idents(MAX_LEAF_LIST),
                reader.fixed(HASH_BYTES),
                reader.u64(),
            )
        case LeafType.DELIVERY_RECEIPT:
            leaf = DeliveryReceipt(
                logged_at,
                reader.fixed(MESSAGE_ID_BYTES),
                reader.ident(),
                reader.fixed(HASH_BYTES),
                reader.u64(),
                reader.fixed(SIGNATURE_BYTES),
            )
        case LeafType.DIRECTORY_CHANGE:
            leaf = DirectoryChange(logged_at, reader.u8(), reader.ident(), reader.fixed(HASH_BYTES))
        case LeafType.CASE_TRANSITION:
            leaf = CaseTransition(
                logged_at,
                reader.ident(),
                reader.ident(),
                reader.ident(),
                reader.ident(),
                reader.ident(),
            )
        case LeafType.CASE_MEMBERSHIP:
            leaf = CaseMembership(
                logged_at,
                reader.ident(),
                reader.ident(),
                reader.idents(MAX_LEAF_LIST),
                reader.idents(MAX_LEAF_LIST),
            )
        case LeafType.MEETING_RECORDED:
            leaf = MeetingRecorded(
                logged_at,
                reader.ident(),
                reader.ident(),
                reader.ident(),
                reader.idents(MAX_LEAF_LIST),
            )
        case LeafType.REFUSAL:
            leaf = Refusal(
                logged_at,
                reader.ident(),
                reader.ident(),
                reader.ident(),
                reader.fixed(MESSAGE_ID_BYTES),
            )
        case LeafType.DELIVERY_DROPPED:
            leaf = _read_dropped(logged_at, reader)
        case LeafType.DELIVERY_WITHDRAWN:
            leaf = DeliveryWithdrawn(
                logged_at,
                reader.fixed(MESSAGE_ID_BYTES),
                reader.ident(),
                reader.ident(),
                reader.ident(),
            )
        case _:
            raise Malformed(f"unknown leaf type {code:#04x}")
    reader.finish()
    return leaf
