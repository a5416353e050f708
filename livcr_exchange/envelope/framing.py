"""The plaintext's frame: the body JSON first, then its attachments (spec §6.4, §6.7).

``plaintext = u32 len(body_json) || body_json || attachment_1 || ... || attachment_n``

The envelope layer knows only the first field: the body JSON names the attachments and their
sizes, so cutting the rest is the job of ``documents.py``, which reads the body first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..constants import MAX_BODY_JSON_BYTES
from ..errors import Malformed, Oversized

BODY_JSON_LENGTH_BYTES = 4


def body_frame(body_json: bytes) -> bytes:
    """``u32be(len(body_json)) || body_json``.

    Raises:
        Oversized: the body JSON exceeds MAX_BODY_JSON_BYTES.
    """
    if len(body_json) > MAX_BODY_JSON_BYTES:
        raise Oversized(f"body JSON of {len(body_json)} bytes exceeds MAX_BODY_JSON_BYTES")
    return len(body_json).to_bytes(BODY_JSON_LENGTH_BYTES, "big") + body_json


def split_plaintext(plaintext: bytes) -> tuple[bytes, bytes]:
    """The body JSON and the attachment bytes that follow it, of a plaintext held whole.

    Raises:
        Malformed: shorter than its length field, or than the body JSON it announces.
        Oversized: a body JSON length over MAX_BODY_JSON_BYTES.
    """
    reader = PlaintextReader([plaintext])
    body = reader.read_body()
    return body, plaintext[BODY_JSON_LENGTH_BYTES + len(body) :]


class PlaintextReader:
    """Exact reads over the plaintext pieces an opener yields, in constant memory."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._buffer = b""

    def _fill(self, size: int) -> None:
        parts = [self._buffer]
        held = len(self._buffer)
        while held < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            parts.append(piece)
            held += len(piece)
        self._buffer = b"".join(parts)

    def read_body(self) -> bytes:
        """The body JSON, read before anything else.

        Raises:
            Malformed: the plaintext ends before its length field or its body JSON.
            Oversized: the length field exceeds MAX_BODY_JSON_BYTES.
        """
        self._fill(BODY_JSON_LENGTH_BYTES)
        if len(self._buffer) < BODY_JSON_LENGTH_BYTES:
            raise Malformed("plaintext is shorter than its body JSON length")
        length = int.from_bytes(self._buffer[:BODY_JSON_LENGTH_BYTES], "big")
        if length > MAX_BODY_JSON_BYTES:
            raise Oversized(f"body JSON of {length} bytes exceeds MAX_BODY_JSON_BYTES")
        end = BODY_JSON_LENGTH_BYTES + length
        self._fill(end)
        if len(self._buffer) < end:
            raise Malformed("plaintext is shorter than its body JSON")
        body, self._buffer = self._buffer[BODY_JSON_LENGTH_BYTES:end], self._buffer[end:]
        return body

    def segment(self, size: int) -> Iterator[bytes]:
        """The next ``size`` bytes, in pieces as they arrive.

        Raises:
            Malformed: the plaintext ends first.
        """
        left = size
        while left > 0:
            if not self._buffer:
                self._fill(1)
                if not self._buffer:
                    raise Malformed("plaintext ends inside an attachment")
            piece, self._buffer = self._buffer[:left], self._buffer[left:]
            left -= len(piece)
            yield piece

    def finish(self) -> None:
        """Read the source to its end, so its own final checks run.

        Raises:
            Malformed: bytes follow the last attachment.
        """
        self._fill(1)
        if self._buffer:
            raise Malformed("plaintext goes on after its last attachment")
