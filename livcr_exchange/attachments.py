"""Attachments: how a body names its documents, and the rules a purpose sets on them (§6.7).

A body that may carry documents lists them in ``attachments``: a name, a declared media type, a
size and a digest. The bytes travel after the body JSON inside the same sealed plaintext
(``envelope/framing.py``); ``documents.py`` seals and opens them as streams; ``sniff.py`` judges
each by its content. This module holds the metadata, the per-purpose rule and the checks that
need only the metadata, so a receiver refuses a message before it reads any document byte.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

import msgspec

from .body_text import CONTROL_RANGES, FORMAT_CHARACTER_RANGES, SEPARATOR_RANGE
from .constants import LABEL_ATTACHMENT, MAX_BODY_BYTES
from .errors import (
    AttachmentNameInvalid,
    AttachmentNotAllowed,
    AttachmentTooLarge,
    AttachmentTypeNotAllowed,
)
from .hashing import Blake2bStream, labelled_hash

MAX_ATTACHMENT_NAME_LENGTH: Final = 120  # characters of a filename, extension included
# What the body schema admits before the rule runs: long enough that the rule, not the schema,
# refuses a long name or an unknown type with its own code, short enough to bound the body.
SCHEMA_NAME_LENGTH: Final = 1024
SCHEMA_MEDIA_TYPE_LENGTH: Final = 255


class MediaType(enum.StrEnum):
    """The document types any purpose may allow: no executables, no macro-enabled formats."""

    PDF = "application/pdf"
    ODT = "application/vnd.oasis.opendocument.text"
    ODS = "application/vnd.oasis.opendocument.spreadsheet"
    PNG = "image/png"
    JPEG = "image/jpeg"


# The extensions a filename of each type must end in (compared case-insensitively).
EXTENSIONS: Final = {
    MediaType.PDF: (".pdf",),
    MediaType.ODT: (".odt",),
    MediaType.ODS: (".ods",),
    MediaType.PNG: (".png",),
    MediaType.JPEG: (".jpg", ".jpeg"),
}

DigestHex = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{64}\Z")]


class AttachmentRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One document as its body names it. The rule (``check_refs``) judges name and type."""

    name: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=SCHEMA_NAME_LENGTH,
            description="filename rule of spec §6.7, checked with its own code",
        ),
    ]
    media_type: Annotated[str, msgspec.Meta(min_length=1, max_length=SCHEMA_MEDIA_TYPE_LENGTH)]
    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_BODY_BYTES)]
    digest: DigestHex  # hex of H(LABEL_ATTACHMENT, bytes)


@dataclass(frozen=True)
class AttachmentRule:
    """What a purpose allows: media types, a per-file and a total cap, a number of files."""

    media_types: frozenset[MediaType]
    max_file_bytes: int
    max_total_bytes: int
    max_count: int


def attachment_hasher() -> Blake2bStream:
    """BLAKE2b-256(LABEL_ATTACHMENT || bytes), fed piece by piece."""
    return Blake2bStream(LABEL_ATTACHMENT)


def attachment_digest(data: bytes) -> bytes:
    """H(LABEL_ATTACHMENT, data) for a document held whole."""
    return labelled_hash(LABEL_ATTACHMENT, data)


def _forbidden_in_name(char: str) -> bool:
    code = ord(char)
    ranges = (*CONTROL_RANGES, SEPARATOR_RANGE, *FORMAT_CHARACTER_RANGES, (0xD800, 0xDFFF))
    return char in "/\\" or any(first <= code <= last for first, last in ranges)


def check_name(name: str, media_type: MediaType) -> None:
    """A filename: single-line NFC text without path separators, bounded, with an extension
    that matches its media type, and not a dot name (spec §6.7).

    Raises:
        AttachmentNameInvalid: the name breaks the rule.
    """
    if not 1 <= len(name) <= MAX_ATTACHMENT_NAME_LENGTH:
        raise AttachmentNameInvalid(f"a filename has 1..{MAX_ATTACHMENT_NAME_LENGTH} characters")
    if any(_forbidden_in_name(c) for c in name):
        raise AttachmentNameInvalid("a filename holds a path separator or a control character")
    if not unicodedata.is_normalized("NFC", name):
        raise AttachmentNameInvalid("a filename is not in normalization form NFC")
    if name.startswith(".") or name != name.strip():
        raise AttachmentNameInvalid("a filename starts with a dot or a space, or ends in one")
    extensions = EXTENSIONS[media_type]
    stem_ok = any(len(name) > len(ext) for ext in extensions)
    if not stem_ok or not name.lower().endswith(extensions):
        raise AttachmentNameInvalid(f"a {media_type.value} file is named *{extensions[0]}")


def check_refs(
    purpose_tag: str, rule: AttachmentRule | None, refs: Sequence[AttachmentRef]
) -> None:
    """The metadata checks of spec §6.7, in order; a receiver makes them before any document
    byte is read, a sender before it seals.

    Raises:
        AttachmentNotAllowed: the purpose carries none, or fewer than ``refs`` holds.
        AttachmentTypeNotAllowed: a media type the purpose does not allow.
        AttachmentNameInvalid: a filename outside the rule, or one name given twice.
        AttachmentTooLarge: a file over the per-file cap, or all over the total cap.
    """
    if not refs:
        return
    if rule is None:
        raise AttachmentNotAllowed(f"{purpose_tag} carries no attachments")
    if len(refs) > rule.max_count:
        raise AttachmentNotAllowed(f"{purpose_tag} carries at most {rule.max_count} attachments")
    names: set[str] = set()
    for ref in refs:
        media_type = _allowed_type(purpose_tag, rule, ref.media_type)
        check_name(ref.name, media_type)
        if ref.name.casefold() in names:
            raise AttachmentNameInvalid(f"the filename {ref.name!r} is given twice")
        names.add(ref.name.casefold())
        if ref.size > rule.max_file_bytes:
            raise AttachmentTooLarge(f"{ref.name!r} exceeds {rule.max_file_bytes} bytes")
    if sum(ref.size for ref in refs) > rule.max_total_bytes:
        raise AttachmentTooLarge(f"attachments exceed {rule.max_total_bytes} bytes together")


def _allowed_type(purpose_tag: str, rule: AttachmentRule, declared: str) -> MediaType:
    try:
        media_type = MediaType(declared)
    except ValueError:
        media_type = None
    if media_type is None or media_type not in rule.media_types:
        raise AttachmentTypeNotAllowed(f"{purpose_tag} does not carry {declared[:80]!r}")
    return media_type
