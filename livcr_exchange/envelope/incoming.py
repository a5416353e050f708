"""An envelope checked as its bytes arrive, without holding it whole (spec §6.6 steps 1-8).

``IncomingEnvelope`` is fed the envelope in pieces of any size, as a receiver reads them from a
socket: it parses the frame and the header from the first bytes (at most MAX_HEADER_BYTES of
header), refusing an oversized or malformed frame before the body arrives, then hashes the
sealed body and the whole envelope as the rest streams by, and keeps the signature from the end.
``finish`` checks the length and gives a ``ReceivedEnvelope``, whose ``verify`` runs the checks
``UnverifiedEnvelope.verify`` runs on an envelope held in memory. No I/O: where the bytes go
(a file, chunk rows) is the caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import LABEL_ENVELOPE_HASH, MAX_HEADER_BYTES, SIGNATURE_BYTES
from ..directory import Directory
from ..errors import Malformed, Oversized
from ..hashing import Blake2bStream, labelled_hash
from .header import Header
from .open import (
    BODY_LENGTH_BYTES,
    FRAME_PREFIX_BYTES,
    MAX_SEALED_BODY_BYTES,
    Freshness,
    UnverifiedEnvelope,
    VerifiedEnvelope,
    _verify,
)
from .payload import sealed_chunk_sizes
from .seal import body_hash, body_hasher


@dataclass(frozen=True)
class ReceivedEnvelope:
    """An envelope read whole, by its digests: its header, the hash of its sealed body (what
    its signature covers), the hash of all its bytes (what log leaves and delivery receipts
    name, spec §10.4) and its size."""

    envelope: UnverifiedEnvelope  # header, body length and signature; no bytes
    body_hash: bytes
    envelope_hash: bytes
    size: int

    @classmethod
    def whole(cls, data: bytes) -> ReceivedEnvelope:
        """An envelope held whole, parsed by ``UnverifiedEnvelope.parse`` (same checks, same
        errors) and hashed.

        Raises:
            As ``UnverifiedEnvelope.parse``.
        """
        envelope = UnverifiedEnvelope.parse(data)
        start = envelope._body_start  # this package's to read
        sealed = data[start : start + envelope.sealed_body_length]
        return cls(envelope, body_hash(sealed), labelled_hash(LABEL_ENVELOPE_HASH, data), len(data))

    def verify(
        self, directory: Directory, *, now: int, judged_at: int, freshness: Freshness
    ) -> VerifiedEnvelope:
        """Receiver checks 5-8, as ``UnverifiedEnvelope.verify``."""
        return _verify(self.envelope, self.body_hash, directory, now, judged_at, freshness)


class IncomingEnvelope:
    """Receiver checks 1-4 on the first bytes, then the digests of the rest (module doc)."""

    def __init__(self) -> None:
        self._prefix = bytearray()  # the frame prefix, header and body length, until parsed
        self._whole = Blake2bStream(LABEL_ENVELOPE_HASH)
        self._header: Header | None = None
        self._body = body_hasher(0)
        self._body_left = 0
        self._sealed_length = 0
        self._tail = bytearray()  # the signature
        self.received = 0

    @property
    def header(self) -> Header | None:
        """The parsed header, once the first bytes arrived; None until then."""
        return self._header

    @property
    def expected_size(self) -> int | None:
        """The envelope's length by its frame, once the header arrived."""
        if self._header is None:
            return None
        return (
            FRAME_PREFIX_BYTES
            + len(self._header.raw)
            + BODY_LENGTH_BYTES
            + self._sealed_length
            + SIGNATURE_BYTES
        )

    def feed(self, data: bytes) -> None:
        """Take the next ``data`` of the envelope.

        Raises:
            Oversized: the header or the body is over its limit.
            Malformed, NonCanonical, UnsupportedVersion, StanzaInvalid: a bad frame or header,
                or bytes after the signature.
        """
        self.received += len(data)
        self._whole.update(data)
        view = memoryview(data)
        if self._header is None:
            view = self._take_prefix(view)
        if self._header is None or not view:
            return
        if self._body_left:
            body, view = view[: self._body_left], view[self._body_left :]
            self._body.update(bytes(body))
            self._body_left -= len(body)
        if len(self._tail) + len(view) > SIGNATURE_BYTES:
            raise Malformed("trailing bytes after the signature")
        self._tail += view

    def _take_prefix(self, view: memoryview) -> memoryview:
        """Gather the frame prefix, header and body length; parse them once all arrived."""
        wanted = FRAME_PREFIX_BYTES
        if len(self._prefix) >= FRAME_PREFIX_BYTES:
            wanted += int.from_bytes(self._prefix[:FRAME_PREFIX_BYTES], "big") + BODY_LENGTH_BYTES
        while len(self._prefix) < wanted and view:
            take = wanted - len(self._prefix)
            self._prefix += view[:take]
            view = view[take:]
            if len(self._prefix) == FRAME_PREFIX_BYTES:
                header_length = int.from_bytes(self._prefix, "big")
                if header_length > MAX_HEADER_BYTES:
                    raise Oversized(f"header of {header_length} bytes exceeds MAX_HEADER_BYTES")
                wanted += header_length + BODY_LENGTH_BYTES
        if len(self._prefix) == wanted and wanted > FRAME_PREFIX_BYTES:
            self._parse_prefix()
        return view

    def _parse_prefix(self) -> None:
        sealed_length = int.from_bytes(self._prefix[-BODY_LENGTH_BYTES:], "big")
        if sealed_length > MAX_SEALED_BODY_BYTES:
            raise Oversized(f"body of {sealed_length} bytes exceeds MAX_BODY_BYTES")
        sealed_chunk_sizes(sealed_length)
        self._header = Header.parse(bytes(self._prefix[FRAME_PREFIX_BYTES:-BODY_LENGTH_BYTES]))
        self._sealed_length = self._body_left = sealed_length
        self._body = body_hasher(sealed_length)
        self._prefix = bytearray()

    def finish(self) -> ReceivedEnvelope:
        """The whole envelope's digests, once its last byte was fed.

        Raises:
            Malformed: it ended before its frame says it does.
        """
        if self._header is None or self._body_left or len(self._tail) != SIGNATURE_BYTES:
            raise Malformed("envelope is truncated")
        shell = UnverifiedEnvelope(
            self._header,
            self._sealed_length,
            bytes(self._tail),
            b"",
            FRAME_PREFIX_BYTES + len(self._header.raw) + BODY_LENGTH_BYTES,
        )
        return ReceivedEnvelope(shell, self._body.digest(), self._whole.digest(), self.received)
