"""A body as a service submits it: the purpose tag filled in when left out, a wrong one refused.

A body names its purpose in its ``purpose`` field (spec §7.2). A service already says the
purpose once, next to the body; repeating it is optional. A body that names another purpose is
refused with its own code, before any schema check could report a confusing unknown field.
Also the body's bytes as the outbox seals them, and the checked ``Draft`` of a message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from livcr_exchange.bodies import Body
from livcr_exchange.envelope import Cosignature
from livcr_exchange.purposes import encode_body

from .store_documents import DocumentRow

PURPOSE_FIELD = "purpose"


class PurposeTagMismatch(Exception):
    """The body's ``purpose`` tag names another purpose than the message's."""

    code = "body_purpose_mismatch"

    def __init__(self, purpose: str, tagged: object) -> None:
        super().__init__(
            f"the body is tagged purpose {tagged!r} but the message's purpose is {purpose!r};"
            " leave the tag out or make it match"
        )


def tagged_body(purpose: str, body: bytes | dict[str, Any]) -> bytes:
    """The body's JSON with its ``purpose`` tag: given bytes unchanged when they carry the tag.

    Bytes that are not a JSON object are returned unchanged: the schema check reports them.

    Raises:
        PurposeTagMismatch: the body carries a tag naming another purpose.
    """
    if isinstance(body, dict):
        fields = body
    else:
        try:
            fields = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return body
        if not isinstance(fields, dict):
            return body
    tag = fields.get(PURPOSE_FIELD, None)
    if tag is not None and tag != purpose:
        raise PurposeTagMismatch(purpose, tag)
    if tag is not None and isinstance(body, bytes):
        return body
    return msgspec.json.encode({PURPOSE_FIELD: purpose, **fields})


BodyInput = Body | bytes | dict[str, object]


def body_bytes(purpose: str, body: BodyInput) -> bytes:
    """The body's bytes; JSON given as bytes or a dict gets its purpose tag when it lacks it.

    Raises:
        PurposeTagMismatch: a JSON body tagged with another purpose.
    """
    if isinstance(body, bytes | dict):
        return tagged_body(purpose, body)
    return encode_body(body)


@dataclasses.dataclass(frozen=True)
class Draft:
    """A message checked and ready to seal."""

    case_ref: str
    purpose: str
    recipients: list[str]
    raw: bytes
    meeting_ref: str | None
    cosignatures: list[Cosignature]
    cosign_deadline: int | None = None  # the co-signers' deadline (spec §7.4)
    documents: tuple[DocumentRow, ...] = ()  # uploads the body names, in its order
