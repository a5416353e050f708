"""Sealing: from a body and its recipients to envelope bytes (spec §6.5).

Three layers, as in Fernet: ``seal`` draws randomness from the ``RandomSource`` it is given and
checks prekey windows; ``seal_stream`` does the same for a body JSON followed by attachments
given as iterables of pieces; ``seal_from_parts`` is deterministic in everything but HPKE
encapsulation and returns every intermediate value so vectors can show them. The plaintext is
framed as spec §6.4 says: the body JSON's length, the body JSON, then the attachments' bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ..constants import (
    CONTENT_KEY_BYTES,
    LABEL_BODY_HASH,
    LABEL_ENVELOPE_SIGNATURE,
    MAX_BODY_BYTES,
    MAX_COSIGNERS,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_LIFETIME,
    MAX_RECIPIENTS,
    MESSAGE_ID_BYTES,
    PAYLOAD_NONCE_PREFIX_BYTES,
)
from ..errors import AttachmentSizeMismatch, KeyNotValid, Malformed, Oversized
from ..hashing import Blake2bStream, RandomSource, labelled_hash
from ..keys import DEFAULT_SUITE, IdentityKey, PrekeyPublic, Suite
from ..statements import PrekeyStatement
from ..times import iso8601
from .framing import body_frame
from .header import CosignBlock, Header, HeaderCore, Recipient
from .payload import encrypt_chunks, key_commitment, payload_key, sealed_length
from .wrap import WrapFunction, hpke_wrap, wrap_info


@dataclass(frozen=True)
class MessageSpec:
    """What the sender decides: who, why, about which case, valid how long."""

    cell_id: str
    sender_id: str
    purpose: str
    case_ref: str
    recipients: Mapping[str, PrekeyPublic]
    suite: Suite = DEFAULT_SUITE
    cosign: CosignBlock | None = None
    meeting_ref: str | None = None  # the meeting a message is about; required when co-signed


@dataclass(frozen=True)
class SealParts:
    """The values a sender would otherwise draw at random or read from the clock."""

    message_id: bytes
    timestamp: int
    expires_at: int
    content_key: bytes = field(repr=False)
    payload_nonce: bytes = field(repr=False)


@dataclass(frozen=True)
class SealTrace:
    """The envelope prefix and the intermediate values a vector publishes."""

    header: Header
    payload_key: bytes = field(repr=False)
    infos: tuple[bytes, ...]

    def frame_prefix(self, sealed_body_length: int) -> bytes:
        """``u32be(len(header)) || header || u64be(len(sealed body))``."""
        raw = self.header.raw
        return len(raw).to_bytes(4, "big") + raw + sealed_body_length.to_bytes(8, "big")


def signature_message(header: bytes, body_hash: bytes) -> bytes:
    """LABEL_ENVELOPE_SIGNATURE || u32be(len(header)) || header || body hash (spec §6.5)."""
    return LABEL_ENVELOPE_SIGNATURE + len(header).to_bytes(4, "big") + header + body_hash


def body_hasher(sealed_body_length: int) -> Blake2bStream:
    """BLAKE2b-256(LABEL_BODY_HASH || u64be(len) || sealed body), fed chunk by chunk."""
    hasher = Blake2bStream(LABEL_BODY_HASH)
    hasher.update(sealed_body_length.to_bytes(8, "big"))
    return hasher


def body_hash(sealed_body: bytes) -> bytes:
    """The digest ``body_hasher`` computes, in one call for a body held whole (the hub's case:
    a streaming hasher costs several binding calls more per envelope)."""
    return labelled_hash(LABEL_BODY_HASH, len(sealed_body).to_bytes(8, "big"), sealed_body)


def build_header(
    spec: MessageSpec, parts: SealParts, sender_key_id: bytes, wrap: WrapFunction
) -> SealTrace:
    """Compute the header core, wrap the content key to each recipient and assemble the header.

    Raises:
        Malformed: no recipients, too many, or a prekey of another suite.
        Oversized: the header would exceed MAX_HEADER_BYTES.
    """
    _check_spec(spec, parts)
    recipients = tuple(
        Recipient(rid, spec.recipients[rid].key_id) for rid in sorted(spec.recipients)
    )
    core = HeaderCore(
        suite=spec.suite,
        message_id=parts.message_id,
        timestamp=parts.timestamp,
        expires_at=parts.expires_at,
        cell_id=spec.cell_id,
        sender_id=spec.sender_id,
        sender_key_id=sender_key_id,
        purpose=spec.purpose,
        case_ref=spec.case_ref,
        meeting_ref=spec.meeting_ref,
        payload_nonce=parts.payload_nonce,
        commitment=key_commitment(parts.content_key, parts.message_id),
        cosign=spec.cosign,
        recipients=recipients,
    )
    core_hash = core.hash()
    infos = tuple(wrap_info(core_hash, r.participant_id) for r in core.recipients)
    stanzas = tuple(
        wrap(parts.content_key, spec.recipients[r.participant_id], info)
        for r, info in zip(core.recipients, infos, strict=True)
    )
    header = Header.build(core, stanzas)
    if len(header.raw) > MAX_HEADER_BYTES:
        raise Oversized(f"header of {len(header.raw)} bytes exceeds MAX_HEADER_BYTES")
    return SealTrace(header, payload_key(parts.content_key, parts.message_id), infos)


def _check_spec(spec: MessageSpec, parts: SealParts) -> None:
    if not 1 <= len(spec.recipients) <= MAX_RECIPIENTS:
        raise Malformed(f"{len(spec.recipients)} recipients (1..{MAX_RECIPIENTS} allowed)")
    if any(p.suite is not spec.suite for p in spec.recipients.values()):
        raise Malformed(f"every recipient prekey must be of suite {spec.suite.value}")
    if len(parts.message_id) != MESSAGE_ID_BYTES or len(parts.content_key) != CONTENT_KEY_BYTES:
        raise Malformed("message id must be 16 bytes and the content key 32")
    if len(parts.payload_nonce) != PAYLOAD_NONCE_PREFIX_BYTES:
        raise Malformed("payload nonce must be 19 bytes")
    if not parts.timestamp < parts.expires_at <= parts.timestamp + MAX_MESSAGE_LIFETIME:
        raise Malformed("expiry must be after the timestamp and within MAX_MESSAGE_LIFETIME")
    if spec.cosign is not None:
        _check_cosign(spec.cosign, spec.meeting_ref)


def _check_cosign(cosign: CosignBlock, meeting_ref: str | None) -> None:
    """Refuse to seal a co-signature block that no receiver would parse (spec §6.2)."""
    signers = [s.signer_id for s in cosign.signatures]
    if meeting_ref is None:
        raise Malformed("a co-signed message must name its meeting")
    if not 1 <= len(signers) <= MAX_COSIGNERS:
        raise Malformed(f"{len(signers)} co-signatures (1..{MAX_COSIGNERS} allowed)")
    if any(a >= b for a, b in itertools.pairwise(signers)):
        raise Malformed("co-signers must be in strictly ascending order, without duplicates")


# An attachment as the envelope layer sees it: its declared size and its bytes, in pieces.
AttachmentBytes = tuple[int, Iterable[bytes]]


def seal_from_parts_stream(
    sender: IdentityKey,
    spec: MessageSpec,
    parts: SealParts,
    body: bytes,
    attachments: Sequence[AttachmentBytes] = (),
    wrap: WrapFunction = hpke_wrap,
) -> tuple[SealTrace, Iterator[bytes]]:
    """The deterministic inner layer; returns the trace and the envelope as a stream of pieces.

    The pieces raise AttachmentSizeMismatch when an attachment yields more or fewer bytes than
    its declared size; what was yielded before is then no envelope and must be dropped.

    Raises:
        Malformed, Oversized: see ``build_header``; Oversized also for a body JSON over
            MAX_BODY_JSON_BYTES or a plaintext over MAX_BODY_BYTES.
    """
    frame = body_frame(body)
    body_length = len(frame) + sum(size for size, _ in attachments)
    if body_length > MAX_BODY_BYTES:
        raise Oversized(f"body of {body_length} bytes exceeds MAX_BODY_BYTES")
    trace = build_header(spec, parts, sender.key_id, wrap)
    plaintext = itertools.chain([frame], *(_exactly(size, pieces) for size, pieces in attachments))
    return trace, _envelope_pieces(sender, trace, parts, body_length, plaintext)


def _exactly(size: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
    seen = 0
    for piece in pieces:
        seen += len(piece)
        if seen > size:
            raise AttachmentSizeMismatch(f"an attachment is longer than its {size} bytes")
        yield piece
    if seen != size:
        raise AttachmentSizeMismatch(f"an attachment is shorter than its {size} bytes")


def _envelope_pieces(
    sender: IdentityKey, trace: SealTrace, parts: SealParts, body_length: int, body: Iterable[bytes]
) -> Iterator[bytes]:
    header = trace.header.raw
    total = sealed_length(body_length)
    hasher = body_hasher(total)
    yield trace.frame_prefix(total)
    for sealed in encrypt_chunks(trace.payload_key, parts.payload_nonce, header, body_length, body):
        hasher.update(sealed)
        yield sealed
    yield sender.sign(signature_message(header, hasher.digest()))


def seal_from_parts(
    sender: IdentityKey,
    spec: MessageSpec,
    parts: SealParts,
    body: bytes,
    wrap: WrapFunction = hpke_wrap,
) -> tuple[SealTrace, bytes]:
    """``seal_from_parts_stream`` for a body JSON without attachments; the whole envelope."""
    trace, pieces = seal_from_parts_stream(sender, spec, parts, body, (), wrap)
    return trace, b"".join(pieces)


def draw_parts(random: RandomSource, now: int, ttl: int) -> SealParts:
    """Fresh message id, content key and payload nonce from ``random``."""
    return SealParts(
        message_id=random(MESSAGE_ID_BYTES),
        timestamp=now,
        expires_at=now + ttl,
        content_key=random(CONTENT_KEY_BYTES),
        payload_nonce=random(PAYLOAD_NONCE_PREFIX_BYTES),
    )


def prekeys_valid_at(prekeys: Mapping[str, PrekeyStatement], now: int) -> dict[str, PrekeyPublic]:
    """The recipients' prekeys, if each is valid now.

    Raises:
        KeyNotValid: a prekey outside its window at ``now`` (sealing to it would be unreadable).
        Malformed: a statement that belongs to another participant.
    """
    chosen: dict[str, PrekeyPublic] = {}
    for recipient_id, statement in prekeys.items():
        if statement.participant_id != recipient_id:
            raise Malformed(f"prekey for {recipient_id} belongs to {statement.participant_id}")
        if not statement.not_before <= now < statement.not_after:
            raise KeyNotValid(f"prekey of {recipient_id} is not valid at {iso8601(now)}")
        chosen[recipient_id] = statement.prekey
    return chosen


def seal(
    sender: IdentityKey,
    spec: MessageSpec,
    body: bytes,
    *,
    now: int,
    ttl: int,
    random: RandomSource,
) -> bytes:
    """Seal a body JSON without attachments for the recipients in ``spec``.

    Raises:
        Malformed: bad recipients, suite mix, ttl out of range. Oversized: body or header too big.
    """
    return seal_from_parts(sender, spec, draw_parts(random, now, ttl), body)[1]


def seal_stream(
    sender: IdentityKey,
    spec: MessageSpec,
    body: bytes,
    attachments: Sequence[AttachmentBytes] = (),
    *,
    now: int,
    ttl: int,
    random: RandomSource,
) -> Iterator[bytes]:
    """Seal a body JSON and attachments given as pieces, in constant memory. Raises as
    ``seal``; the pieces raise as ``seal_from_parts_stream`` says."""
    parts = draw_parts(random, now, ttl)
    return seal_from_parts_stream(sender, spec, parts, body, attachments)[1]
