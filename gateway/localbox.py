"""Encryption at rest with the gateway's local key (XChaCha20-Poly1305, random nonce)."""

from __future__ import annotations

import os
from pathlib import Path

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash

from livcr_exchange.hashing import RandomSource

NONCE_BYTES = 24
KEY_BYTES = 32


class LocalKeyError(Exception):
    """The local key file is missing, readable by others, or the data was altered."""


class LocalBox:
    """Seals records with the local key; the associated data ties a record to its row."""

    def __init__(self, key: bytes, random: RandomSource = os.urandom) -> None:
        if len(key) != KEY_BYTES:
            raise LocalKeyError("local key must be 32 bytes")
        self._key = key
        self._random = random

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        nonce = self._random(NONCE_BYTES)
        sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, aad, nonce, self._key
        )
        return nonce + sealed

    def open(self, aad: bytes, data: bytes) -> bytes:
        """Raises LocalKeyError if the record was altered or moved to another row."""
        try:
            plain: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                data[NONCE_BYTES:], aad, data[:NONCE_BYTES], self._key
            )
        except nacl.exceptions.CryptoError as exc:
            raise LocalKeyError("a record does not open with the local key") from exc
        return plain

    def files_key(self) -> bytes:
        """The key of documents sealed at rest (``sealed_files``): derived from the local key
        for that use alone, so no key serves two constructions."""
        derived: bytes = nacl.hash.blake2b(
            b"",
            digest_size=KEY_BYTES,
            key=self._key,
            person=b"livcr-gw-files00",
            encoder=nacl.encoding.RawEncoder,
        )
        return derived

    def __repr__(self) -> str:
        return "LocalBox(key=<hidden>)"


def read_local_key(path: Path) -> bytes:
    """Raises LocalKeyError when the file is unreadable, of the wrong size or readable by others."""
    try:
        if path.stat().st_mode & 0o077:
            raise LocalKeyError(f"{path}: local key is readable by others (chmod 600 it)")
        key = path.read_bytes()
    except OSError as exc:
        raise LocalKeyError(f"{path}: cannot read the local key: {exc.strerror}") from exc
    if len(key) != KEY_BYTES:
        raise LocalKeyError(f"{path}: not a local key")
    return key
