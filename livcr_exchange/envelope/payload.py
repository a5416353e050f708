"""The body: a content key's derived keys and its STREAM-style chunked encryption (spec §6.4).

Chunk ``i`` of ``n`` is XChaCha20-Poly1305 under the payload key with nonce
``payload_nonce (19 bytes) || u32be(i) || u8(i == n - 1)`` and the exact header bytes as
associated data. The last-chunk flag in the nonce makes truncation and extension detectable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import nacl.bindings
import nacl.exceptions

from ..constants import CHUNK_BYTES, LABEL_COMMITMENT, LABEL_PAYLOAD_KEY
from ..errors import Malformed, NonCanonical, PayloadAuthFailed, PayloadTruncated
from ..hashing import keyed_hash

TAG_BYTES = 16
SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES


def payload_key(content_key: bytes, message_id: bytes) -> bytes:
    return keyed_hash(content_key, LABEL_PAYLOAD_KEY, message_id)


def key_commitment(content_key: bytes, message_id: bytes) -> bytes:
    return keyed_hash(content_key, LABEL_COMMITMENT, message_id)


def commitments_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison (libsodium's sodium_memcmp)."""
    return len(a) == len(b) and bool(nacl.bindings.sodium_memcmp(a, b))


def chunk_count(body_length: int) -> int:
    """Number of chunks for a plaintext of ``body_length`` bytes (an empty body is one chunk)."""
    return max(1, -(-body_length // CHUNK_BYTES))


def sealed_length(body_length: int) -> int:
    return body_length + TAG_BYTES * chunk_count(body_length)


def sealed_chunk_sizes(sealed_body_length: int) -> list[int]:
    """Split a sealed body length into chunk sizes, rejecting impossible or non-canonical ones.

    Raises:
        Malformed: shorter than one tag, or a final chunk shorter than a tag.
        NonCanonical: an empty final chunk after a full one (only an empty body has one).
    """
    if sealed_body_length < TAG_BYTES:
        raise Malformed("sealed body is shorter than one chunk tag")
    full, rest = divmod(sealed_body_length, SEALED_CHUNK_BYTES)
    if rest == 0:
        return [SEALED_CHUNK_BYTES] * full
    if rest < TAG_BYTES:
        raise Malformed("final chunk is shorter than its tag")
    if rest == TAG_BYTES and full > 0:
        raise NonCanonical("empty final chunk after a full chunk")
    return [SEALED_CHUNK_BYTES] * full + [rest]


def _nonce(prefix: bytes, index: int, *, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _encrypt(
    key: bytes, prefix: bytes, header: bytes, index: int, chunk: bytes, *, last: bool
) -> bytes:
    sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        chunk, header, _nonce(prefix, index, last=last), key
    )
    return sealed


def _decrypt(
    key: bytes, prefix: bytes, header: bytes, index: int, sealed: bytes, *, last: bool
) -> bytes | None:
    try:
        plain: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, header, _nonce(prefix, index, last=last), key
        )
    except nacl.exceptions.CryptoError:
        return None
    return plain


def rechunk(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup arbitrary byte pieces into ``size``-byte chunks (the last may be shorter)."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def encrypt_chunks(
    key: bytes, prefix: bytes, header: bytes, body_length: int, body: Iterable[bytes]
) -> Iterator[bytes]:
    """Encrypt a body of exactly ``body_length`` bytes, one sealed chunk at a time.

    Raises:
        ValueError: the body iterable yields more or fewer bytes than ``body_length``.
    """
    total = chunk_count(body_length)
    seen = 0
    for index, chunk in enumerate(rechunk(body, CHUNK_BYTES)):
        seen += len(chunk)
        if index >= total or seen > body_length:
            raise ValueError("body is longer than its declared length")
        yield _encrypt(key, prefix, header, index, chunk, last=index == total - 1)
    if seen != body_length:
        raise ValueError("body is shorter than its declared length")
    if body_length == 0:
        yield _encrypt(key, prefix, header, 0, b"", last=True)


def decrypt_chunk(
    key: bytes, prefix: bytes, header: bytes, index: int, sealed: bytes, *, last: bool
) -> bytes:
    """Decrypt chunk ``index``; ``last`` says whether it is the final chunk by position.

    Raises:
        PayloadTruncated: the chunk authenticates only with the opposite last-chunk flag, i.e.
            the stream was cut short (or went on after its end).
        PayloadAuthFailed: it authenticates with neither flag.
    """
    plain = _decrypt(key, prefix, header, index, sealed, last=last)
    if plain is not None:
        return plain
    if _decrypt(key, prefix, header, index, sealed, last=not last) is not None:
        raise PayloadTruncated(
            f"chunk {index} is {'not ' if last else ''}marked final but is {'' if last else 'not '}"
            "the last chunk"
        )
    raise PayloadAuthFailed(f"chunk {index} failed authentication")


def decrypt_chunks(
    key: bytes, prefix: bytes, header: bytes, sealed_chunks: Iterable[bytes], count: int
) -> Iterator[bytes]:
    """Decrypt ``count`` sealed chunks in order; see ``decrypt_chunk`` for what it raises."""
    for index, sealed in enumerate(sealed_chunks):
        yield decrypt_chunk(key, prefix, header, index, sealed, last=index == count - 1)
