"""The hub's answers to a gateway, as typed documents: encoded by the hub, decoded by the client.

One definition per answer (specs/hub-api.yaml): a receipt, a delivery item, an inbox page, a
push frame, a directory listing (with the witness policy), a batch result, an acknowledgement, a
case view, prekey and proof listings, accepted cosignatures, and a problem. Unknown fields are
refused: a hub that answers something other than the contract is not guessed at. Binary values
travel as standard base64 (msgspec's own).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

MessageIdHex = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]
Count = Annotated[int, msgspec.Meta(ge=0)]
LeafIndex = Annotated[int, msgspec.Meta(ge=0)]
SaltHex = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]


class Answer(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Base of every hub answer."""


class ReceiptAnswer(Answer, frozen=True):
    """POST /v1/envelopes: where an accepted envelope sits in the log, with its proof."""

    message_id: MessageIdHex
    leaf_index: LeafIndex
    logged_at: Count
    salt: SaltHex  # the envelope leaf's salt: the sender rebuilds the leaf (spec §10.2)
    tree_size: Annotated[int, msgspec.Meta(ge=1)]
    checkpoint: str
    inclusion_proof: list[bytes]


class DeliveryItem(Answer, frozen=True):
    """A delivery notice: one envelope the hub holds for the caller (an inbox item). It never
    carries the envelope: the recipient fetches its ``size`` bytes with
    ``GET /v1/deliveries/{message_id}``, so no envelope, however large, rides in a JSON page or
    a push frame."""

    seq: Count
    message_id: MessageIdHex
    logged_at: Count
    leaf_index: LeafIndex | None
    size: Annotated[int, msgspec.Meta(ge=1)]


class InboxPage(Answer, frozen=True):
    """GET /v1/inbox."""

    deliveries: list[DeliveryItem]
    next_after: Count


class DeliveryFrame(DeliveryItem, frozen=True, tag="delivery", tag_field="type"):
    """A push frame carrying one delivery notice."""


class CaughtUpFrame(Answer, frozen=True, tag="caught_up", tag_field="type"):
    """A push frame: everything pending was sent."""


PushFrame = DeliveryFrame | CaughtUpFrame


class DirectoryListing(Answer, frozen=True):
    """GET /v1/directory: the signed statements, to be verified against the root key."""

    cell_id: str
    root_key: str
    entries: list[bytes]
    revocations: list[bytes]
    # The root-signed witness policy (spec §10.7), standard base64; None when the cell has none.
    witness_policy: str | None = None


class BatchItem(Answer, frozen=True, omit_defaults=True):
    """One envelope's result in a batch: a receipt (and whether it is a resubmission's
    original one), or a refusal's code and detail."""

    receipt: ReceiptAnswer | None = None
    accepted_before: bool | None = None
    code: str | None = None
    detail: str | None = None


class BatchResult(Answer, frozen=True):
    """POST /v1/envelopes/batch: one result per envelope, in order."""

    results: list[BatchItem]


class AckResult(Answer, frozen=True):
    """POST /v1/inbox/ack."""

    acknowledged: Count
    leaf_indexes: list[LeafIndex]
    unknown: list[str]


class CaseView(Answer, frozen=True):
    """A case as the hub reports it (state and members)."""

    case_ref: str
    state: str
    owner: str | None
    referrer: str | None
    members: list[str]
    meetings: dict[str, list[str]]


class PrekeyListing(Answer, frozen=True):
    """GET /v1/prekeys: signed prekey statements per participant."""

    prekeys: dict[str, list[bytes]]


class StoredCount(Answer, frozen=True):
    """PUT /v1/prekeys."""

    stored: Count


class InclusionAnswer(Answer, frozen=True):
    index: LeafIndex
    size: Count
    proof: list[bytes]


class ConsistencyAnswer(Answer, frozen=True):
    old: Count
    new: Count
    proof: list[bytes]


class LeafItem(Answer, frozen=True):
    """One log leaf: its hash, and its data unless retention deleted or the hub withheld it."""

    index: LeafIndex
    hash: str  # standard base64
    data: str | None  # standard base64
    withheld: bool = False


class LeavesPage(Answer, frozen=True):
    """GET /v1/log/leaves."""

    leaves: list[LeafItem]


class CosignaturesAccepted(Answer, frozen=True):
    """POST /v1/log/cosignatures: the witness names whose cosignature lines the hub took."""

    accepted: list[str]


class ProblemAnswer(msgspec.Struct, frozen=True):
    """An RFC 9457 problem document (extra members are allowed by that RFC)."""

    code: str
    detail: str = ""
    status: int | None = None
    type: str = "about:blank"
    title: str = ""
