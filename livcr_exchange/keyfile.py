"""Passphrase-protected secret-key files: Argon2id, then XChaCha20-Poly1305 (spec §5.7).

``file = magic || u8 version || u32be opslimit || u32be memlimit || salt[16] || nonce[24] || ct``
where ``ct`` seals the canonical ``SecretBundle`` under ``Argon2id(passphrase, salt)`` with every
byte before it as associated data, so the cost parameters cannot be lowered unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions
import nacl.pwhash

from .constants import (
    LABEL_SECRET_KEY_FILE,
    MAX_SECRET_KEY_MEMLIMIT,
    MAX_SECRET_KEY_OPSLIMIT,
    MIN_SECRET_KEY_MEMLIMIT,
    MIN_SECRET_KEY_OPSLIMIT,
    SECRET_KEY_MEMLIMIT,
    SECRET_KEY_OPSLIMIT,
    SECRET_KEY_SALT_BYTES,
)
from .errors import Malformed, UnsupportedVersion, WrongPassphrase
from .hashing import RandomSource
from .keys import IdentityKey, PrekeySecret, Suite
from .wire import Reader, Writer

KEYFILE_MAGIC = b"LVCRKEY\x00"
KEYFILE_VERSION = 2  # version 1 held suite-2 prekeys in protocol v1's 96-byte form
NONCE_BYTES = 24
TAG_BYTES = 16
MAX_PREKEYS_IN_FILE = 64
# The shortest ciphertext that can hold the label and a bundle (one-byte id, no prekeys).
_MIN_CIPHERTEXT = TAG_BYTES + len(LABEL_SECRET_KEY_FILE) + 2 + 32 + 1


def costs_in_bounds(opslimit: int, memlimit: int) -> bool:
    """Whether an Argon2id cost is one a reader accepts (spec §5.7)."""
    return (
        MIN_SECRET_KEY_OPSLIMIT <= opslimit <= MAX_SECRET_KEY_OPSLIMIT
        and MIN_SECRET_KEY_MEMLIMIT <= memlimit <= MAX_SECRET_KEY_MEMLIMIT
    )


@dataclass(frozen=True)
class SecretBundle:
    """A participant's identity key and the prekey secrets it still holds."""

    participant_id: str
    identity: IdentityKey
    prekeys: tuple[PrekeySecret, ...] = field(default=())

    def encode(self) -> bytes:
        if len(self.prekeys) > MAX_PREKEYS_IN_FILE:
            raise ValueError(f"at most {MAX_PREKEYS_IN_FILE} prekeys per file")
        writer = Writer().ident(self.participant_id).fixed(self.identity.seed, 32)
        writer.u8(len(self.prekeys))
        for prekey in self.prekeys:
            writer.u8(prekey.suite).opaque16(prekey.seed)
        return writer.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> SecretBundle:
        reader = Reader(data, "secret bundle")
        participant_id = reader.ident("participant id")
        identity = IdentityKey.from_seed(reader.fixed(32))
        count = reader.u8()
        if count > MAX_PREKEYS_IN_FILE:
            raise Malformed(f"{count} prekeys in one file")
        prekeys = []
        for _ in range(count):
            suite_code = reader.u8()
            try:
                suite = Suite(suite_code)
            except ValueError as exc:
                raise Malformed(f"unknown suite {suite_code}") from exc
            prekeys.append(PrekeySecret(suite, reader.opaque16()))
        reader.finish()
        return cls(participant_id, identity, tuple(prekeys))

    def __repr__(self) -> str:
        return f"SecretBundle({self.participant_id}, {len(self.prekeys)} prekeys, secrets=<hidden>)"


def _derive(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    key: bytes = nacl.pwhash.argon2id.kdf(
        32, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )
    return key


def lock_from_parts(
    bundle: SecretBundle,
    passphrase: bytes,
    *,
    salt: bytes,
    nonce: bytes,
    opslimit: int,
    memlimit: int,
) -> bytes:
    """The deterministic layer: salt, nonce and cost given explicitly.

    Raises:
        ValueError: a cost no reader would accept, or a salt or nonce of the wrong length.
    """
    if not costs_in_bounds(opslimit, memlimit):
        raise ValueError(f"Argon2id cost {opslimit}, {memlimit} is outside the bounds of §5.7")
    header = (
        Writer()
        .raw(KEYFILE_MAGIC)
        .u8(KEYFILE_VERSION)
        .u32(opslimit)
        .u32(memlimit)
        .fixed(salt, SECRET_KEY_SALT_BYTES)
        .fixed(nonce, NONCE_BYTES)
        .getvalue()
    )
    key = _derive(passphrase, salt, opslimit, memlimit)
    sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        LABEL_SECRET_KEY_FILE + bundle.encode(), header, nonce, key
    )
    return header + sealed


def lock(
    bundle: SecretBundle,
    passphrase: bytes,
    random: RandomSource,
    *,
    opslimit: int = SECRET_KEY_OPSLIMIT,
    memlimit: int = SECRET_KEY_MEMLIMIT,
) -> bytes:
    """Encrypt a secret bundle under a passphrase."""
    return lock_from_parts(
        bundle,
        passphrase,
        salt=random(SECRET_KEY_SALT_BYTES),
        nonce=random(NONCE_BYTES),
        opslimit=opslimit,
        memlimit=memlimit,
    )


def unlock(data: bytes, passphrase: bytes) -> SecretBundle:
    """Decrypt a secret-key file.

    Everything that can be checked without the passphrase is checked before Argon2id runs, so
    a hostile file costs at most one unlock at the maximum cost.

    Raises:
        Malformed: not a key file, cost parameters out of bounds, a ciphertext too short to
            hold a bundle, or a bundle that does not parse.
        UnsupportedVersion: a file of another version (version 1: create new keys).
        WrongPassphrase: the passphrase is wrong or the file was altered.
    """
    reader = Reader(data, "secret-key file")
    if reader.fixed(len(KEYFILE_MAGIC)) != KEYFILE_MAGIC:
        raise Malformed("not a livcr secret-key file")
    if (version := reader.u8()) != KEYFILE_VERSION:
        raise UnsupportedVersion(
            f"secret-key file version {version}; this software reads version {KEYFILE_VERSION}"
            " (protocol v2): create new keys with `livcr keys new` and enrol them again"
        )
    opslimit, memlimit = reader.u32(), reader.u32()
    if not costs_in_bounds(opslimit, memlimit):
        raise Malformed("secret-key file cost parameters out of bounds")
    salt, nonce = reader.fixed(SECRET_KEY_SALT_BYTES), reader.fixed(NONCE_BYTES)
    header_length = reader.position
    if len(data) - header_length < _MIN_CIPHERTEXT:
        raise Malformed("secret-key file is too short to hold a key")
    key = _derive(passphrase, salt, opslimit, memlimit)
    try:
        plain: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            data[header_length:], data[:header_length], nonce, key
        )
    except nacl.exceptions.CryptoError as exc:
        raise WrongPassphrase("passphrase does not open this secret-key file") from exc
    if not plain.startswith(LABEL_SECRET_KEY_FILE):
        raise Malformed("secret-key file payload has the wrong label")
    return SecretBundle.decode(plain[len(LABEL_SECRET_KEY_FILE) :])
