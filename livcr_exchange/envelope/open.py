"""Receiving: parse, verify, then open, in the order spec §6.6 lists the receiver's checks.

``UnverifiedEnvelope`` is what anybody, the hub included, may look at: it has no accessor for the
body. ``verify`` turns it into a ``VerifiedEnvelope`` (sender key, signature, freshness,
co-signatures); only ``open_verified`` on that decrypts, and only for a named recipient.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ..constants import (
    LABEL_CONTENT_DIGEST,
    MAX_BODY_BYTES,
    MAX_CLOCK_SKEW,
    MAX_HEADER_BYTES,
    SIGNATURE_BYTES,
)
from ..directory import Directory
from ..errors import (
    CommitmentMismatch,
    DigestMismatch,
    Expired,
    LoggedAtOutOfBounds,
    Malformed,
    NotARecipient,
    Oversized,
    StanzaInvalid,
    TimestampOutOfWindow,
    UnknownSender,
)
from ..hashing import Blake2bStream
from ..keys import PrekeySecret
from ..replay import ReplayCache
from ..statements import DirectoryEntry
from ..times import iso8601
from .cosign import CosignedFacts, content_digest, verify_cosignatures
from .framing import BODY_JSON_LENGTH_BYTES, split_plaintext
from .header import Header
from .payload import (
    TAG_BYTES,
    chunk_count,
    commitments_equal,
    decrypt_chunks,
    key_commitment,
    payload_key,
    sealed_chunk_sizes,
)
from .seal import body_hash, body_hasher, signature_message
from .wrap import hpke_unwrap, wrap_info

FRAME_PREFIX_BYTES = 4
BODY_LENGTH_BYTES = 8
MAX_SEALED_BODY_BYTES = MAX_BODY_BYTES + 16 * chunk_count(MAX_BODY_BYTES)
MAX_ENVELOPE_BYTES = (
    FRAME_PREFIX_BYTES
    + MAX_HEADER_BYTES
    + BODY_LENGTH_BYTES
    + MAX_SEALED_BODY_BYTES
    + SIGNATURE_BYTES
)


class Freshness(enum.Enum):
    """Which clock rule applies (spec §9.1)."""

    SUBMISSION = "submission"  # the hub: timestamp within MAX_CLOCK_SKEW of now
    DELIVERY = "delivery"  # a recipient, possibly days later: timestamp not in the future


@dataclass(frozen=True)
class UnverifiedEnvelope:
    """A parsed envelope whose signature nobody has checked yet. No body accessor, by design."""

    header: Header
    sealed_body_length: int
    signature: bytes
    _raw: bytes
    _body_start: int

    @classmethod
    def parse(cls, data: bytes) -> UnverifiedEnvelope:
        """Parse the frame and the header (receiver checks 1-4).

        Raises:
            Oversized: the envelope, header or body exceeds its limit.
            Malformed, NonCanonical, UnsupportedVersion, StanzaInvalid: see ``Header.parse``.
        """
        if len(data) > MAX_ENVELOPE_BYTES:
            raise Oversized(f"envelope of {len(data)} bytes exceeds the limit")
        header_length = _read_length(data, 0, FRAME_PREFIX_BYTES)
        if header_length > MAX_HEADER_BYTES:
            raise Oversized(f"header of {header_length} bytes exceeds MAX_HEADER_BYTES")
        body_start = FRAME_PREFIX_BYTES + header_length + BODY_LENGTH_BYTES
        sealed_length = _read_length(data, body_start - BODY_LENGTH_BYTES, BODY_LENGTH_BYTES)
        if sealed_length > MAX_SEALED_BODY_BYTES:
            raise Oversized(f"body of {sealed_length} bytes exceeds MAX_BODY_BYTES")
        if len(data) != body_start + sealed_length + SIGNATURE_BYTES:
            raise Malformed("envelope length does not match its frame")
        sealed_chunk_sizes(sealed_length)
        header = Header.parse(data[FRAME_PREFIX_BYTES : FRAME_PREFIX_BYTES + header_length])
        return cls(header, sealed_length, data[-SIGNATURE_BYTES:], bytes(data), body_start)

    # What the hub may see (spec §11).
    @property
    def message_id(self) -> bytes:
        return self.header.core.message_id

    @property
    def sender_id(self) -> str:
        return self.header.core.sender_id

    @property
    def purpose(self) -> str:
        return self.header.core.purpose

    @property
    def case_ref(self) -> str:
        return self.header.core.case_ref

    @property
    def recipient_ids(self) -> tuple[str, ...]:
        return self.header.core.recipient_ids()

    @property
    def size(self) -> int:
        return len(self._raw)

    def to_bytes(self) -> bytes:
        """The exact bytes received, for storing and forwarding unchanged."""
        return self._raw

    def verify(
        self, directory: Directory, *, now: int, judged_at: int, freshness: Freshness
    ) -> VerifiedEnvelope:
        """Receiver checks 5-8: sender key at ``judged_at``, signature, clock, co-signatures.

        ``judged_at`` is the hub's log time for the envelope (or ``now`` at the hub itself), so a
        revoked sender cannot back-date a message into its validity window.

        Raises:
            LoggedAtOutOfBounds: on delivery, ``judged_at`` (the hub's log time) is outside
                [timestamp - MAX_CLOCK_SKEW, expires_at).
            UnknownSender, KeyRevoked, KeyNotValid: the directory does not vouch for the key.
            BadSignature: the signature does not verify.
            Expired, TimestampOutOfWindow: the message is outside its time window.
            CosignatureInvalid: a co-signature that does not verify.
        """
        body = self._raw[self._body_start : self._body_start + self.sealed_body_length]
        return _verify(self, body_hash(body), directory, now, judged_at, freshness)


def _verify(
    envelope: UnverifiedEnvelope,
    body_hash: bytes,
    directory: Directory,
    now: int,
    judged_at: int,
    freshness: Freshness,
) -> VerifiedEnvelope:
    """Receiver checks 5-8, shared by the in-memory and the streaming paths."""
    core = envelope.header.core
    if core.cell_id != directory.cell_id:
        raise UnknownSender(f"envelope belongs to cell {core.cell_id}")
    if freshness is Freshness.DELIVERY:
        check_logged_at(core.timestamp, core.expires_at, judged_at)
    sender = directory.entry_for_key(core.sender_id, core.sender_key_id, judged_at)
    sender.identity_key.verify(
        signature_message(envelope.header.raw, body_hash), envelope.signature
    )
    check_freshness(core.timestamp, core.expires_at, now, freshness)
    cosigners: frozenset[str] = frozenset()
    if core.cosign is not None and core.meeting_ref is not None:
        facts = CosignedFacts(
            core.cell_id,
            core.case_ref,
            core.meeting_ref,
            core.purpose,
            core.recipient_ids(),
            core.cosign.deadline,
        )
        cosigners = verify_cosignatures(core.cosign, directory, facts, at=judged_at)
    return VerifiedEnvelope(envelope, sender, cosigners)


def _read_length(data: bytes, offset: int, size: int) -> int:
    if len(data) < offset + size:
        raise Malformed("envelope is truncated")
    return int.from_bytes(data[offset : offset + size], "big")


def check_logged_at(timestamp: int, expires_at: int, logged_at: int) -> None:
    """A recipient's bound on the hub's log time (spec §9.2): the hub accepts an envelope only
    within MAX_CLOCK_SKEW of its timestamp and before its expiry, so an honest hub's
    ``logged_at`` lies in [timestamp - MAX_CLOCK_SKEW, expires_at). A hub that back-dates
    further (to judge a since-revoked key valid) is caught here.

    Raises:
        LoggedAtOutOfBounds: ``logged_at`` outside that interval.
    """
    if not timestamp - MAX_CLOCK_SKEW <= logged_at < expires_at:
        raise LoggedAtOutOfBounds(
            f"logged at {logged_at}, outside [{timestamp - MAX_CLOCK_SKEW}, {expires_at})"
        )


def check_freshness(timestamp: int, expires_at: int, now: int, freshness: Freshness) -> None:
    """Raises TimestampOutOfWindow or Expired per spec §9.1."""
    if timestamp > now + MAX_CLOCK_SKEW:
        raise TimestampOutOfWindow(
            f"timestamp {iso8601(timestamp)} is in the future (now {iso8601(now)})"
        )
    if freshness is Freshness.SUBMISSION and timestamp < now - MAX_CLOCK_SKEW:
        raise TimestampOutOfWindow(f"timestamp {iso8601(timestamp)} is stale (now {iso8601(now)})")
    if now >= expires_at:
        raise Expired(f"message expired at {iso8601(expires_at)} (now {iso8601(now)})")


@dataclass(frozen=True)
class VerifiedEnvelope:
    """Signed by a key the directory vouches for, fresh, co-signatures checked; still sealed."""

    envelope: UnverifiedEnvelope
    sender: DirectoryEntry
    cosigners: frozenset[str]

    @property
    def header(self) -> Header:
        return self.envelope.header

    def sealed_chunks(self) -> Iterator[bytes]:
        env = self.envelope
        position = env._body_start  # the body is this module's to read
        for size in sealed_chunk_sizes(env.sealed_body_length):
            yield env._raw[position : position + size]
            position += size


@dataclass(frozen=True)
class OpenedMessage:
    """A message that passed every check in spec §6.6: its body JSON, and the attachment bytes
    that followed it in the plaintext, still uncut and unchecked (``documents.py`` cuts and
    checks them by what the body names)."""

    header: Header
    sender: DirectoryEntry
    cosigners: frozenset[str]
    body: bytes = field(repr=False)
    attachment_data: bytes = field(repr=False, default=b"")

    @property
    def message_id(self) -> bytes:
        return self.header.core.message_id

    @property
    def purpose(self) -> str:
        return self.header.core.purpose

    @property
    def case_ref(self) -> str:
        return self.header.core.case_ref


def unwrap_content_key(
    header: Header, recipient_id: str, prekeys: Mapping[bytes, PrekeySecret]
) -> bytes:
    """Receiver checks 9-12: find our stanza, unwrap it, check the key commitment.

    Raises:
        NotARecipient: no stanza names ``recipient_id``.
        StanzaInvalid: the stanza names a prekey we do not hold (or of another suite).
        LowOrderShare, UnwrapFailed: HPKE refuses the stanza.
        CommitmentMismatch: the content key does not match the header's commitment.
    """
    core = header.core
    index = next(
        (i for i, r in enumerate(core.recipients) if r.participant_id == recipient_id), None
    )
    if index is None:
        raise NotARecipient(f"{recipient_id} is not a recipient")
    recipient, stanza = core.recipients[index], header.stanzas[index]
    secret = prekeys.get(recipient.prekey_id)
    if secret is None or secret.suite is not core.suite:
        raise StanzaInvalid(f"stanza names prekey {recipient.prekey_id.hex()}, which is not held")
    content_key = hpke_unwrap(stanza, secret, wrap_info(header.core_hash, recipient_id))
    if not commitments_equal(key_commitment(content_key, core.message_id), core.commitment):
        raise CommitmentMismatch("content key does not match the header's key commitment")
    return content_key


def open_verified(
    verified: VerifiedEnvelope, recipient_id: str, prekeys: Mapping[bytes, PrekeySecret]
) -> OpenedMessage:
    """Receiver checks 9-14 on a verified envelope held in memory.

    Raises:
        NotARecipient, StanzaInvalid, LowOrderShare, UnwrapFailed, CommitmentMismatch: see
            ``unwrap_content_key``.
        PayloadAuthFailed, PayloadTruncated: a body chunk fails, or the stream is cut short.
        Malformed, Oversized: the plaintext's frame (§6.4): no room for the body JSON it
            announces, or a body JSON over MAX_BODY_JSON_BYTES.
        DigestMismatch: the body JSON is not the one its co-signers signed.
    """
    header = verified.header
    key = payload_key(unwrap_content_key(header, recipient_id, prekeys), header.core.message_id)
    count = len(sealed_chunk_sizes(verified.envelope.sealed_body_length))
    plaintext = b"".join(
        decrypt_chunks(key, header.core.payload_nonce, header.raw, verified.sealed_chunks(), count)
    )
    body, attachment_data = split_plaintext(plaintext)
    check_digest(header, body)
    return OpenedMessage(header, verified.sender, verified.cosigners, body, attachment_data)


def check_digest(header: Header, body: bytes) -> None:
    """Raises DigestMismatch if a co-signed header's digest is not this body JSON's."""
    cosign = header.core.cosign
    if cosign is not None and not commitments_equal(content_digest(body), cosign.content_digest):
        raise DigestMismatch("body does not match the co-signed content digest")


def open_envelope(
    data: bytes,
    *,
    recipient_id: str,
    prekeys: Mapping[bytes, PrekeySecret],
    directory: Directory,
    now: int,
    judged_at: int,
    replay: ReplayCache | None = None,
) -> OpenedMessage:
    """Every receiver check of spec §6.6, in order, for an envelope held in memory.

    The replay cache is consulted after verification (so forgeries cannot fill it) and updated
    only once every check passed (so a message that failed can be retried after a fix).

    Raises:
        Any error of ``UnverifiedEnvelope.parse``, ``verify`` and ``open_verified``, and
        Replayed for a (sender, message id) the cache has seen.
    """
    verified = UnverifiedEnvelope.parse(data).verify(
        directory, now=now, judged_at=judged_at, freshness=Freshness.DELIVERY
    )
    core = verified.header.core
    if replay is not None:
        replay.check_unseen(core.sender_id, core.message_id, now)
    opened = open_verified(verified, recipient_id, prekeys)
    if replay is not None:
        replay.check_and_remember(core.sender_id, core.message_id, core.expires_at, now)
    return opened


# Streaming: two passes over a source that can be read twice (a file, a stored blob).
Source = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class StreamOpening:
    """A verified envelope being opened from a source: header facts, and the plaintext.

    ``plaintext`` yields authenticated pieces of the framed plaintext (§6.4), but they are
    provisional until it finishes: a changed source and a co-signed digest that does not match
    are reported at its end.
    """

    header: Header
    sender: DirectoryEntry
    cosigners: frozenset[str]
    plaintext_length: int
    plaintext: Iterator[bytes]


def open_stream_verified(
    source: Source,
    *,
    recipient_id: str,
    prekeys: Mapping[bytes, PrekeySecret],
    directory: Directory,
    now: int,
    judged_at: int,
) -> StreamOpening:
    """Open a large envelope in constant memory: pass one verifies (steps 1-8 and 10-13 run
    before this returns), pass two decrypts as the plaintext is read.

    Raises:
        As ``open_envelope`` (without replay); the plaintext iterator raises the errors of steps
        14-15, and Malformed if the source changes between passes or the frame is cut short.
    """
    first = _StreamFrame.read(source())
    verified = first.verify(directory, now=now, judged_at=judged_at)
    header = verified.header
    key = payload_key(unwrap_content_key(header, recipient_id, prekeys), header.core.message_id)
    length = first.sealed_length - TAG_BYTES * first.chunk_total
    return StreamOpening(
        header,
        verified.sender,
        verified.cosigners,
        length,
        _second_pass(source, first, header, key),
    )


def _second_pass(
    source: Source, first: _StreamFrame, header: Header, key: bytes
) -> Iterator[bytes]:
    second = _StreamFrame.read(source(), keep_chunks=True)
    if second.header_raw != header.raw:
        raise Malformed("envelope changed between the verifying and decrypting passes")
    digest = _BodyJsonDigest()
    for plain in decrypt_chunks(
        key, header.core.payload_nonce, header.raw, second.chunks, second.chunk_total
    ):
        digest.update(plain)
        yield plain
    if second.body_hash() != first.body_hash() or second.signature != first.signature:
        raise Malformed("envelope changed between the verifying and decrypting passes")
    cosign = header.core.cosign
    if cosign is not None and not commitments_equal(digest.digest(), cosign.content_digest):
        raise DigestMismatch("body does not match the co-signed content digest")


def open_stream(
    source: Source,
    *,
    recipient_id: str,
    prekeys: Mapping[bytes, PrekeySecret],
    directory: Directory,
    now: int,
    judged_at: int,
) -> Iterator[bytes]:
    """The framed plaintext of ``open_stream_verified``, as one iterator.

    Raises:
        As ``open_stream_verified``.
    """
    opening = open_stream_verified(
        source,
        recipient_id=recipient_id,
        prekeys=prekeys,
        directory=directory,
        now=now,
        judged_at=judged_at,
    )
    return opening.plaintext


class _BodyJsonDigest:
    """The content digest (§7.4) of the body JSON at the head of a streamed plaintext."""

    def __init__(self) -> None:
        self._prefix = b""
        self._left: int | None = None
        self._hasher = Blake2bStream(LABEL_CONTENT_DIGEST)

    def update(self, piece: bytes) -> None:
        if self._left is None:
            need = BODY_JSON_LENGTH_BYTES - len(self._prefix)
            self._prefix += piece[:need]
            piece = piece[need:]
            if len(self._prefix) < BODY_JSON_LENGTH_BYTES:
                return
            self._left = int.from_bytes(self._prefix, "big")
        taken = piece[: self._left]
        self._hasher.update(taken)
        self._left -= len(taken)

    def digest(self) -> bytes:
        return self._hasher.digest()


class _ByteStream:
    """Exact-size reads over an iterable of arbitrary pieces."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                raise Malformed("envelope is truncated")
            self._buffer += piece
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def at_end(self) -> bool:
        while not self._buffer:
            piece = next(self._pieces, None)
            if piece is None:
                return True
            self._buffer += piece
        return False


class _StreamFrame:
    """One pass over a streamed envelope: frame, header, body hash, signature."""

    def __init__(
        self, stream: _ByteStream, header_raw: bytes, sealed_length: int, *, keep_chunks: bool
    ) -> None:
        self.header_raw = header_raw
        self.sealed_length = sealed_length
        self._stream = stream
        self._hasher = body_hasher(sealed_length)
        self._sizes = sealed_chunk_sizes(sealed_length)
        self.chunk_total = len(self._sizes)
        self.signature = b""
        if not keep_chunks:
            for _ in self.chunks:
                pass

    @classmethod
    def read(cls, pieces: Iterable[bytes], *, keep_chunks: bool = False) -> _StreamFrame:
        stream = _ByteStream(pieces)
        header_length = int.from_bytes(stream.read(FRAME_PREFIX_BYTES), "big")
        if header_length > MAX_HEADER_BYTES:
            raise Oversized(f"header of {header_length} bytes exceeds MAX_HEADER_BYTES")
        header_raw = stream.read(header_length)
        sealed_length = int.from_bytes(stream.read(BODY_LENGTH_BYTES), "big")
        if sealed_length > MAX_SEALED_BODY_BYTES:
            raise Oversized(f"body of {sealed_length} bytes exceeds MAX_BODY_BYTES")
        return cls(stream, header_raw, sealed_length, keep_chunks=keep_chunks)

    @property
    def chunks(self) -> Iterator[bytes]:
        for size in self._sizes:
            chunk = self._stream.read(size)
            self._hasher.update(chunk)
            yield chunk
        self.signature = self._stream.read(SIGNATURE_BYTES)
        if not self._stream.at_end():
            raise Malformed("trailing bytes after the signature")

    def body_hash(self) -> bytes:
        return self._hasher.digest()

    def verify(self, directory: Directory, *, now: int, judged_at: int) -> VerifiedEnvelope:
        header = Header.parse(self.header_raw)
        frame = FRAME_PREFIX_BYTES + len(self.header_raw) + BODY_LENGTH_BYTES
        shell = UnverifiedEnvelope(header, self.sealed_length, self.signature, b"", frame)
        return _verify(shell, self.body_hash(), directory, now, judged_at, Freshness.DELIVERY)
