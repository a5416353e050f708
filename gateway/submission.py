"""A body as a service submits it: the purpose tag filled in when left out, a wrong one refused.

A body names its purpose in its ``purpose`` field (spec §7.2). A service already says the
purpose once, next to the body; repeating it is optional. A body that names another purpose is
refused with its own code, before any schema check could report a confusing unknown field.
"""

from __future__ import annotations

from typing import Any

import msgspec

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
