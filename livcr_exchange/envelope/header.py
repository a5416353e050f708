"""The envelope header: its fields, canonical bytes and strict parser (spec §6.2).

The header *core* is everything but the recipient stanzas; its hash binds each stanza's HPKE
``info`` to every field, the recipient list included. The full header (core and stanzas) is the
associated data of every body chunk and is covered by the sender's signature.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

from ..constants import (
    COMMITMENT_BYTES,
    HASH_BYTES,
    KEY_ID_BYTES,
    LABEL_HEADER_CORE,
    MAX_COSIGNERS,
    MAX_MESSAGE_LIFETIME,
    MAX_RECIPIENTS,
    MESSAGE_ID_BYTES,
    PAYLOAD_NONCE_PREFIX_BYTES,
    PROTOCOL_VERSION,
    SIGNATURE_BYTES,
)
from ..errors import Malformed, NonCanonical, StanzaInvalid, UnsupportedVersion
from ..hashing import labelled_hash
from ..keys import Suite
from ..wire import Reader, Writer

HEADER_MAGIC = b"LVCR"
WRAPPED_KEY_BYTES = 48  # 32-byte content key + 16-byte ChaCha20-Poly1305 tag


def stanza_bytes(suite: Suite) -> int:
    """Exact length of one stanza: HPKE enc followed by the wrapped content key."""
    return suite.enc_bytes + WRAPPED_KEY_BYTES


@dataclass(frozen=True)
class Recipient:
    participant_id: str
    prekey_id: bytes


@dataclass(frozen=True)
class Cosignature:
    signer_id: str
    signer_key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class CosignBlock:
    """Co-signatures over a body's content digest, for purposes that need them (spec §7.4).

    The meeting they were agreed at is the header's ``meeting_ref``, which a co-signed header
    must carry. Co-signers also sign the header's recipient list and ``deadline``, the last log
    time at which the message may be accepted.
    """

    content_digest: bytes
    deadline: int
    signatures: tuple[Cosignature, ...]


@dataclass(frozen=True)
class HeaderCore:
    """Every header field except the stanzas, in wire order."""

    suite: Suite
    message_id: bytes
    timestamp: int
    expires_at: int
    cell_id: str
    sender_id: str
    sender_key_id: bytes
    purpose: str
    case_ref: str
    meeting_ref: str | None
    payload_nonce: bytes
    commitment: bytes
    cosign: CosignBlock | None
    recipients: tuple[Recipient, ...]

    def encode(self) -> bytes:
        writer = (
            Writer()
            .raw(HEADER_MAGIC)
            .u8(PROTOCOL_VERSION)
            .u8(self.suite)
            .fixed(self.message_id, MESSAGE_ID_BYTES)
            .u64(self.timestamp)
            .u64(self.expires_at)
            .ident(self.cell_id)
            .ident(self.sender_id)
            .fixed(self.sender_key_id, KEY_ID_BYTES)
            .ident(self.purpose)
            .ident(self.case_ref)
        )
        _write_meeting(writer, self.meeting_ref)
        (
            writer.fixed(self.payload_nonce, PAYLOAD_NONCE_PREFIX_BYTES).fixed(
                self.commitment, COMMITMENT_BYTES
            )
        )
        _write_cosign(writer, self.cosign)
        writer.u8(len(self.recipients))
        for recipient in self.recipients:
            writer.ident(recipient.participant_id).fixed(recipient.prekey_id, KEY_ID_BYTES)
        return writer.getvalue()

    def hash(self) -> bytes:
        """BLAKE2b-256(LABEL_HEADER_CORE || core bytes)."""
        return labelled_hash(LABEL_HEADER_CORE, self.encode())

    def recipient_ids(self) -> tuple[str, ...]:
        return tuple(r.participant_id for r in self.recipients)


def _write_meeting(writer: Writer, meeting_ref: str | None) -> None:
    if meeting_ref is None:
        writer.u8(0)
    else:
        writer.u8(1).ident(meeting_ref)


def _write_cosign(writer: Writer, cosign: CosignBlock | None) -> None:
    if cosign is None:
        writer.u8(0)
        return
    writer.u8(1).fixed(cosign.content_digest, HASH_BYTES).u64(cosign.deadline)
    writer.u8(len(cosign.signatures))
    for item in cosign.signatures:
        writer.ident(item.signer_id).fixed(item.signer_key_id, KEY_ID_BYTES)
        writer.fixed(item.signature, SIGNATURE_BYTES)


@dataclass(frozen=True)
class Header:
    """A parsed header: its core, its stanzas (one per recipient, in order) and exact bytes."""

    core: HeaderCore
    stanzas: tuple[bytes, ...]
    raw: bytes
    core_length: int  # the core's canonical bytes are raw[:core_length]

    @cached_property
    def core_hash(self) -> bytes:
        """BLAKE2b-256(LABEL_HEADER_CORE || core bytes), the same as ``core.hash()``.

        Hashed when first asked for: a recipient needs it to unwrap its stanza, while the hub,
        which parses every envelope, never does.
        """
        return labelled_hash(LABEL_HEADER_CORE, self.raw[: self.core_length])

    @classmethod
    def build(cls, core: HeaderCore, stanzas: tuple[bytes, ...]) -> Header:
        core_bytes = core.encode()
        writer = Writer().raw(core_bytes)
        for stanza in stanzas:
            writer.opaque16(stanza)
        return cls(core, stanzas, writer.getvalue(), len(core_bytes))

    @classmethod
    def parse(cls, data: bytes) -> Header:
        """Parse the exact header bytes (spec §6.2, receiver checks 2-4).

        Raises:
            Malformed: wrong magic, truncation, trailing bytes, a count out of range.
            UnsupportedVersion: a version or suite this implementation does not speak.
            NonCanonical: recipients or co-signers not in strictly ascending order.
            StanzaInvalid: a stanza whose length is not the one its suite prescribes.
        """
        reader = Reader(data, "header")
        if reader.fixed(len(HEADER_MAGIC)) != HEADER_MAGIC:
            raise Malformed("header does not start with the LVCR magic")
        version = reader.u8()
        if version != PROTOCOL_VERSION:
            raise UnsupportedVersion(f"header version {version}")
        suite_code = reader.u8()
        try:
            suite = Suite(suite_code)
        except ValueError as exc:
            raise UnsupportedVersion(f"suite {suite_code}") from exc
        fields = (
            reader.fixed(MESSAGE_ID_BYTES),
            reader.u64(),
            reader.u64(),
            reader.ident("cell id"),
            reader.ident("sender id"),
            reader.fixed(KEY_ID_BYTES),
            reader.ident("purpose"),
            reader.ident("case reference"),
            _read_meeting(reader),
            reader.fixed(PAYLOAD_NONCE_PREFIX_BYTES),
            reader.fixed(COMMITMENT_BYTES),
        )
        cosign = _read_cosign(reader)
        if cosign is not None and fields[8] is None:
            raise Malformed("a co-signed header must name its meeting")
        timestamp, expires_at = fields[1], fields[2]
        if not timestamp < expires_at <= timestamp + MAX_MESSAGE_LIFETIME:
            raise Malformed("expiry must follow the timestamp within MAX_MESSAGE_LIFETIME")
        recipients = _read_recipients(reader)
        core_end = reader.position
        stanzas = tuple(_read_stanza(reader, suite) for _ in recipients)
        reader.finish()
        core = HeaderCore(suite, *fields, cosign=cosign, recipients=recipients)
        return cls(core, stanzas, bytes(data), core_end)


def _read_flag(reader: Reader, what: str) -> bool:
    flag = reader.u8()
    if flag not in {0, 1}:
        raise Malformed(f"{what} flag must be 0 or 1, not {flag}")
    return flag == 1


def _read_meeting(reader: Reader) -> str | None:
    return reader.ident("meeting reference") if _read_flag(reader, "meeting") else None


def _read_cosign(reader: Reader) -> CosignBlock | None:
    if not _read_flag(reader, "co-signature"):
        return None
    digest = reader.fixed(HASH_BYTES)
    deadline = reader.u64()
    count = reader.u8()
    if not 1 <= count <= MAX_COSIGNERS:
        raise Malformed(f"{count} co-signatures (1..{MAX_COSIGNERS} allowed)")
    signatures = tuple(
        Cosignature(
            reader.ident("co-signer id"), reader.fixed(KEY_ID_BYTES), reader.fixed(SIGNATURE_BYTES)
        )
        for _ in range(count)
    )
    _require_ascending([s.signer_id for s in signatures], "co-signers")
    return CosignBlock(digest, deadline, signatures)


def _read_recipients(reader: Reader) -> tuple[Recipient, ...]:
    count = reader.u8()
    if not 1 <= count <= MAX_RECIPIENTS:
        raise Malformed(f"{count} recipients (1..{MAX_RECIPIENTS} allowed)")
    recipients = tuple(
        Recipient(reader.ident("recipient id"), reader.fixed(KEY_ID_BYTES)) for _ in range(count)
    )
    _require_ascending([r.participant_id for r in recipients], "recipients")
    return recipients


def _read_stanza(reader: Reader, suite: Suite) -> bytes:
    stanza = reader.opaque16()
    if len(stanza) != stanza_bytes(suite):
        raise StanzaInvalid(
            f"stanza of {len(stanza)} bytes; suite {suite.value} needs {stanza_bytes(suite)}"
        )
    return stanza


def _require_ascending(ids: list[str], what: str) -> None:
    if any(a >= b for a, b in itertools.pairwise(ids)):
        raise NonCanonical(f"{what} are not in strictly ascending order")
