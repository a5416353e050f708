"""Messages with documents: sealing a body JSON and its attachments as one stream, and opening
one, body first, then each attachment checked as it streams (spec §6.7).

Both sides run in constant memory: the body JSON is bounded (MAX_BODY_JSON_BYTES) and every
attachment passes through as pieces. The opener checks the body (schema, which purposes carry
documents, the purpose's caps, names, and that the sizes add up to the plaintext) before it
reads any attachment byte; each attachment's size, digest and content type are checked as it
streams, and refused at its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .attachments import AttachmentRef, MediaType, attachment_hasher, check_refs
from .bodies import Body
from .directory import Directory
from .envelope import (
    MessageSpec,
    OpenedMessage,
    SealParts,
    open_stream_verified,
    seal_from_parts_stream,
    seal_stream,
)
from .envelope.framing import BODY_JSON_LENGTH_BYTES, PlaintextReader
from .envelope.header import Header
from .envelope.open import Source
from .envelope.payload import commitments_equal
from .errors import AttachmentDigestMismatch, AttachmentNotAllowed, AttachmentSizeMismatch
from .hashing import RandomSource
from .keys import IdentityKey, PrekeySecret
from .purposes import attachments_of, decode_body, get_purpose
from .sniff import sniffer_for
from .statements import DirectoryEntry

# An attachment to seal: what the body names, and its bytes in pieces.
Outgoing = tuple[AttachmentRef, Iterable[bytes]]


def seal_message_stream(
    sender: IdentityKey,
    spec: MessageSpec,
    body: bytes,
    attachments: Sequence[Outgoing] = (),
    *,
    now: int,
    ttl: int,
    random: RandomSource,
    parts: SealParts | None = None,
) -> Iterator[bytes]:
    """Seal a body JSON and the attachments it names, in constant memory.

    ``parts`` seals under a message id, times and keys drawn before (a sender that must know
    the message id first, or seals a queued message again); ``now``, ``ttl`` and ``random``
    then go unused.

    The body is checked against its purpose before anything is sealed; each attachment's
    bytes are checked against its size, digest and media type as they pass, so a file changed
    since it was named makes the pieces raise: what was yielded is then no envelope.

    Raises:
        BodySchemaViolation, PurposeNotAllowed: the body does not decode under its purpose.
        AttachmentNotAllowed, AttachmentTypeNotAllowed, AttachmentNameInvalid,
            AttachmentTooLarge: the metadata checks of ``check_refs``.
        AttachmentSizeMismatch: ``attachments`` are not the ones the body names, in its order.
        Malformed, Oversized: as ``seal``.
    """
    named = _checked_refs(spec.purpose, body)
    if tuple(ref for ref, _ in attachments) != named:
        raise AttachmentSizeMismatch("the attachments given are not the ones the body names")
    pieces = [(ref.size, _checked_attachment(ref, data)) for ref, data in attachments]
    if parts is not None:
        return seal_from_parts_stream(sender, spec, parts, body, pieces)[1]
    return seal_stream(sender, spec, body, pieces, now=now, ttl=ttl, random=random)


def _checked_refs(purpose_tag: str, body_json: bytes) -> tuple[AttachmentRef, ...]:
    refs = attachments_of(decode_body(purpose_tag, body_json))
    check_refs(purpose_tag, get_purpose(purpose_tag).attachments, refs)
    return refs


def _checked_attachment(ref: AttachmentRef, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces, passed through; at the end their digest and content type are judged."""
    hasher = attachment_hasher()
    sniffer = sniffer_for(MediaType(ref.media_type))
    for piece in pieces:
        hasher.update(piece)
        sniffer.feed(piece)
        yield piece
    if not commitments_equal(hasher.digest(), bytes.fromhex(ref.digest)):
        raise AttachmentDigestMismatch(f"{ref.name!r} does not match its digest")
    sniffer.finish()


@dataclass
class OpenedDocuments:
    """A message being opened: its verified header and checked body, then its attachments.

    The body is final once ``attachments`` is exhausted: only then has every check run,
    including the end of the envelope's second pass (spec §6.6). A caller stores what it read
    provisionally and commits it after the loop ends without an error.
    """

    header: Header
    sender: DirectoryEntry
    cosigners: frozenset[str]
    body_json: bytes = field(repr=False)
    body: Body = field(repr=False)
    refs: tuple[AttachmentRef, ...]
    _reader: PlaintextReader = field(repr=False)

    def attachments(self) -> Iterator[tuple[AttachmentRef, Iterator[bytes]]]:
        """Each attachment's metadata and its checked bytes, in order. An attachment left
        unread is still read and checked before the next one is given.

        Raises (from the iterators):
            AttachmentDigestMismatch, AttachmentTypeMismatch, AttachmentActiveContent: an
                attachment's bytes; the envelope's errors of steps 14-15 and Malformed.
        """
        for ref in self.refs:
            pieces = _checked_attachment(ref, self._reader.segment(ref.size))
            yield ref, pieces
            for _ in pieces:  # whatever the caller left unread
                pass
        self._reader.finish()

    def read_all(self) -> list[tuple[AttachmentRef, bytes]]:
        """Every attachment held in memory (small messages, tests). Raises as ``attachments``."""
        return [(ref, b"".join(pieces)) for ref, pieces in self.attachments()]


def open_documents(
    source: Source,
    *,
    recipient_id: str,
    prekeys: Mapping[bytes, PrekeySecret],
    directory: Directory,
    now: int,
    judged_at: int,
) -> OpenedDocuments:
    """Open an envelope from a re-readable source: verify it, read and check its body JSON.

    Raises:
        Every error of ``open_stream_verified``; Malformed, Oversized for the plaintext's frame;
        the body's errors of ``decode_body``; the metadata errors of ``check_refs``;
        AttachmentSizeMismatch (or AttachmentNotAllowed, for a purpose without documents) when
        the body and the sizes it names do not fill the plaintext exactly.
    """
    opening = open_stream_verified(
        source,
        recipient_id=recipient_id,
        prekeys=prekeys,
        directory=directory,
        now=now,
        judged_at=judged_at,
    )
    reader = PlaintextReader(opening.plaintext)
    body_json = reader.read_body()
    purpose = opening.header.core.purpose
    body = decode_body(purpose, body_json)
    refs = attachments_of(body)
    check_refs(purpose, get_purpose(purpose).attachments, refs)
    framed = BODY_JSON_LENGTH_BYTES + len(body_json) + sum(ref.size for ref in refs)
    if framed != opening.plaintext_length:
        if get_purpose(purpose).attachments is None:
            raise AttachmentNotAllowed(f"{purpose} carries bytes after its body JSON")
        raise AttachmentSizeMismatch("the attachments' sizes do not fill the plaintext")
    return OpenedDocuments(
        opening.header, opening.sender, opening.cosigners, body_json, body, refs, reader
    )


def check_opened(opened: OpenedMessage) -> list[tuple[AttachmentRef, bytes]]:
    """The checks of ``open_documents`` for a message opened in memory (``open_envelope``):
    the body and its references, the frame's sizes, then each attachment's digest and content.

    Raises:
        As ``open_documents`` and ``OpenedDocuments.attachments``.
    """
    purpose = opened.header.core.purpose
    refs = _checked_refs(purpose, opened.body)
    data = opened.attachment_data
    if sum(ref.size for ref in refs) != len(data):
        if get_purpose(purpose).attachments is None:
            raise AttachmentNotAllowed(f"{purpose} carries bytes after its body JSON")
        raise AttachmentSizeMismatch("the attachments' sizes do not fill the plaintext")
    documents: list[tuple[AttachmentRef, bytes]] = []
    offset = 0
    for ref in refs:
        piece = data[offset : offset + ref.size]
        offset += ref.size
        documents.append((ref, b"".join(_checked_attachment(ref, [piece]))))
    return documents
