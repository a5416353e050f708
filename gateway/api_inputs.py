"""The local API's inputs: strict request documents, query parameters, and JSON replies."""

from __future__ import annotations

import math
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from livcr_exchange.bodies import Ident
from livcr_exchange.constants import MAX_COSIGNERS, MAX_RECIPIENTS
from livcr_exchange.errors import Malformed
from livcr_exchange.service.problems import Problem
from livcr_exchange.wire import check_ident

T = TypeVar("T")

# Request bodies: strict, unknown fields rejected, every list and string bounded.
KeyIdHex = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]
SignatureB64 = Annotated[str, msgspec.Meta(pattern=r"\A[A-Za-z0-9+/]{86}==\Z")]
Instant = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Recipients = Annotated[tuple[Ident, ...], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]
Members = Annotated[tuple[Ident, ...], msgspec.Meta(max_length=MAX_RECIPIENTS)]
Present = Annotated[tuple[Ident, ...], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]


class CosignatureIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    signer_id: Ident
    signer_key_id: KeyIdHex
    signature: SignatureB64
    deadline: Instant  # the last log time the co-signer agreed to (spec §7.4)


# An upload's id (``POST /v1/attachments``), and the most any purpose carries.
AttachmentId = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]
MAX_ATTACHMENTS = 20


class SendIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    purpose: Ident
    to: Recipients
    body: msgspec.Raw  # checked against the purpose's schema by the library (422 if not)
    # Omitted on a referral (aanmelding): the gateway mints the new case's reference.
    case_ref: Ident | None = None
    meeting_ref: Ident | None = None
    cosignatures: Annotated[tuple[CosignatureIn, ...], msgspec.Meta(max_length=MAX_COSIGNERS)] = ()
    wait: bool = True
    attachments: Annotated[tuple[AttachmentId, ...], msgspec.Meta(max_length=MAX_ATTACHMENTS)] = ()


class CaseOpenIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    members: Members
    case_ref: Ident | None = None


class MembersIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    add: Members = ()
    remove: Members = ()
    owner: Ident | None = None


class MeetingIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    meeting_ref: Ident
    present: Present


class TransitionIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    to: Ident
    reason: Ident | None = None


class CosignIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    case_ref: Ident
    meeting_ref: Ident
    body: msgspec.Raw
    to: Recipients  # the recipients the co-signer agrees to (spec §7.4)
    deadline: Instant  # the last log time the co-signer agrees to


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind)
    for kind in (SendIn, CaseOpenIn, MembersIn, MeetingIn, TransitionIn, CosignIn)
}


async def read_json(request: web.Request, kind: type[T]) -> T:
    """Decode the request body strictly. Raises Problem ``malformed`` (400)."""
    try:
        decoded: T = _DECODERS[kind].decode(await request.read())
    except (msgspec.DecodeError, RecursionError) as exc:
        raise Problem("malformed", f"request body: {exc}") from exc
    return decoded


def reply(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def case_ref_of(request: web.Request) -> str:
    """The path's case reference. Raises Malformed (400)."""
    return check_ident(request.match_info["case_ref"], "case reference")


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 20) or not low <= int(text) <= high:
        raise Problem("malformed", f"query parameter {name} must be an integer in [{low}, {high}]")
    return int(text)


def query_seconds(request: web.Request, name: str, high: float) -> float:
    text = request.query.get(name)
    if text is None:
        return 0.0
    try:
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not 0 <= value <= high:  # also refuses nan
        raise Problem("malformed", f"query parameter {name} must be a number in [0, {high:g}]")
    return value


def query_ident(request: web.Request, name: str) -> str | None:
    text = request.query.get(name)
    return None if text is None else check_ident(text, name)


def common_deadline(items: tuple[CosignatureIn, ...]) -> int | None:
    """The one deadline every co-signature was made for; None without co-signatures.

    Raises:
        Malformed: co-signatures made for different deadlines (one block carries one).
    """
    deadlines = {item.deadline for item in items}
    if len(deadlines) > 1:
        raise Malformed("the co-signatures were made for different deadlines")
    return deadlines.pop() if deadlines else None
