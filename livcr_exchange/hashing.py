"""Hash functions of the protocol, each call prefixed with its domain-separation label (spec §3).

Every input after the label is either fixed-length or a canonical encoding, so concatenation is
unambiguous.
"""

from __future__ import annotations

from collections.abc import Callable

import nacl.bindings
import nacl.hashlib

from .constants import HASH_BYTES

# Explicit randomness: the core never draws its own. Services pass ``os.urandom``.
RandomSource = Callable[[int], bytes]


def labelled_hash(label: bytes, *parts: bytes) -> bytes:
    """BLAKE2b-256(label || parts...)."""
    # The raw binding: nacl.hash's encoder layer costs more than the hash on the hub's hot path.
    # One join copies the input once (label + join(parts) would copy it twice).
    digest: bytes = nacl.bindings.crypto_generichash_blake2b_salt_personal(
        b"".join((label, *parts)), digest_size=HASH_BYTES
    )
    return digest


def keyed_hash(key: bytes, label: bytes, *parts: bytes) -> bytes:
    """BLAKE2b-256 keyed with ``key`` (≤ 64 bytes) over label || parts..."""
    digest: bytes = nacl.bindings.crypto_generichash_blake2b_salt_personal(
        label + b"".join(parts), digest_size=HASH_BYTES, key=key
    )
    return digest


def sha256(data: bytes) -> bytes:
    """SHA-256, used only where RFC 9162 and C2SP signed notes require it."""
    digest: bytes = nacl.bindings.crypto_hash_sha256(data)
    return digest


class Blake2bStream:
    """Incremental BLAKE2b-256 over label || data..., for bodies hashed chunk by chunk."""

    def __init__(self, label: bytes) -> None:
        self._hasher = nacl.hashlib.blake2b(digest_size=HASH_BYTES)
        self._hasher.update(label)

    def update(self, data: bytes) -> None:
        self._hasher.update(data)

    def digest(self) -> bytes:
        value: bytes = self._hasher.digest()
        return value
