"""Identity keys (Ed25519), prekeys (X25519 or X-Wing) and their key ids and text forms (spec §5).

PyNaCl is the only Ed25519 signer and verifier; pyca/cryptography holds the HPKE prekeys. Secret
material is created from explicit seeds so that callers, tests and vectors control randomness;
reprs never show it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

import nacl.bindings
import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from .constants import ED25519_PUBLIC_BYTES, KEY_ID_BYTES, LABEL_KEY_ID, SIGNATURE_BYTES
from .errors import BadSignature, Malformed
from .hashing import labelled_hash
from .wire import b64, unb64

IDENTITY_SEED_BYTES = 32
X25519_BYTES = 32
XWING_SEED_BYTES = 32  # the X-Wing decapsulation key is this seed (spec §6.1)
MLKEM768_SEED_BYTES = 64  # d || z, the first 64 bytes of the expanded X-Wing seed
MLKEM768_PUBLIC_BYTES = 1184
XWING_EXPANDED_BYTES = MLKEM768_SEED_BYTES + X25519_BYTES


class Algorithm(enum.IntEnum):
    """Key algorithm codes, hashed into key ids (spec §5.1)."""

    ED25519 = 0x01
    X25519_PREKEY = 0x02
    XWING_PREKEY = 0x03


class Suite(enum.IntEnum):
    """Envelope suites (spec §6.1): which HPKE KEM wraps the content key."""

    X25519 = 1  # DHKEM(X25519, HKDF-SHA256) (KEM 0x0020), HKDF-SHA256, ChaCha20-Poly1305
    XWING = 2  # MLKEM768-X25519 "X-Wing" (KEM 0x647A), HKDF-SHA256, ChaCha20-Poly1305; default

    @property
    def algorithm(self) -> Algorithm:
        return Algorithm.X25519_PREKEY if self is Suite.X25519 else Algorithm.XWING_PREKEY

    @property
    def public_key_bytes(self) -> int:
        return X25519_BYTES if self is Suite.X25519 else MLKEM768_PUBLIC_BYTES + X25519_BYTES

    @property
    def secret_seed_bytes(self) -> int:
        return X25519_BYTES if self is Suite.X25519 else XWING_SEED_BYTES

    @property
    def hpke(self) -> hpke.Suite:
        return _HPKE_SUITES[self]

    @property
    def enc_bytes(self) -> int:
        """Length of the HPKE encapsulated key in a stanza."""
        return _HPKE_KEMS[self].enc_length()

    @property
    def text_prefix(self) -> str:
        return "livcr-x25519:" if self is Suite.X25519 else "livcr-xwing:"


# pyca/cryptography's KEM.MLKEM768_X25519 is HPKE KEM 0x647A of draft-ietf-hpke-pq (X-Wing);
# specs/vectors/external/hpke-pq pins it against the working group's own vectors.
_HPKE_KEMS = {Suite.X25519: hpke.KEM.X25519, Suite.XWING: hpke.KEM.MLKEM768_X25519}
HPKE_KEM_IDS = {Suite.X25519: 0x0020, Suite.XWING: 0x647A}
_HPKE_SUITES = {
    suite: hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    for suite, kem in _HPKE_KEMS.items()
}

DEFAULT_SUITE = Suite.XWING
IDENTITY_TEXT_PREFIX = "livcr-ed25519:"


def key_id(algorithm: Algorithm, public: bytes) -> bytes:
    """First 16 bytes of BLAKE2b-256(LABEL_KEY_ID || algorithm || public key) (spec §5.1)."""
    return labelled_hash(LABEL_KEY_ID, bytes((algorithm,)), public)[:KEY_ID_BYTES]


def verify_signature(public: bytes, message: bytes, signature: bytes) -> None:
    """Verify an Ed25519 signature with libsodium (the project's one verifier).

    Raises:
        BadSignature: wrong length, rejected public key or a signature that does not verify.
    """
    if len(public) != ED25519_PUBLIC_BYTES or len(signature) != SIGNATURE_BYTES:
        raise BadSignature("Ed25519 key or signature has the wrong length")
    try:
        # libsodium's crypto_sign_open, which VerifyKey.verify calls too; the lengths are checked
        # above, so the VerifyKey object (built per call) would only add its own checks again.
        nacl.bindings.crypto_sign_open(signature + message, public)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:  # TypeError: not bytes
        raise BadSignature("Ed25519 signature does not verify") from exc


@dataclass(frozen=True)
class IdentityPublicKey:
    """A participant's (or the cell root's) Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != ED25519_PUBLIC_BYTES:
            raise Malformed("Ed25519 public key must be 32 bytes")

    @cached_property
    def key_id(self) -> bytes:
        """Hashed once per key: directory lookups ask for it on every request."""
        return key_id(Algorithm.ED25519, self.raw)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raises BadSignature unless ``signature`` is this key's signature over ``message``."""
        verify_signature(self.raw, message, signature)

    def to_text(self) -> str:
        return IDENTITY_TEXT_PREFIX + b64(self.raw)

    @classmethod
    def from_text(cls, text: str) -> IdentityPublicKey:
        """Raises Malformed or NonCanonical for anything but the one text form."""
        if not text.startswith(IDENTITY_TEXT_PREFIX):
            raise Malformed(f"identity key must start with {IDENTITY_TEXT_PREFIX!r}")
        return cls(unb64(text.removeprefix(IDENTITY_TEXT_PREFIX), "identity key"))

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True)
class IdentityKey:
    """An Ed25519 signing key. Create with ``from_seed``; the seed never appears in reprs."""

    seed: bytes = field(repr=False)
    _signing: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.seed) != IDENTITY_SEED_BYTES:
            raise Malformed("identity seed must be 32 bytes")
        object.__setattr__(self, "_signing", nacl.signing.SigningKey(self.seed))

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKey:
        return cls(seed)

    @property
    def public(self) -> IdentityPublicKey:
        return IdentityPublicKey(bytes(self._signing.verify_key))

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._signing.sign(message).signature
        return signature

    def __repr__(self) -> str:
        return f"IdentityKey(public={self.public.to_text()}, secret=<hidden>)"


@dataclass(frozen=True)
class PrekeyPublic:
    """The public half of a prekey: X25519 (suite 1) or ML-KEM-768 || X25519 (suite 2)."""

    suite: Suite
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != self.suite.public_key_bytes:
            raise Malformed(
                f"suite {self.suite.value} prekey must be {self.suite.public_key_bytes} bytes"
            )

    @cached_property
    def key_id(self) -> bytes:
        return key_id(self.suite.algorithm, self.raw)

    @cached_property
    def hpke_key(self) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
        """The key object pyca/cryptography's HPKE wants (built once: ML-KEM keys are costly)."""
        return self.hpke_public()

    def hpke_public(self) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
        """The key object pyca/cryptography's HPKE wants. Raises Malformed for bad ML-KEM keys."""
        if self.suite is Suite.X25519:
            return x25519.X25519PublicKey.from_public_bytes(self.raw)
        try:
            kem = mlkem.MLKEM768PublicKey.from_public_bytes(self.raw[:MLKEM768_PUBLIC_BYTES])
        except ValueError as exc:
            raise Malformed("ML-KEM-768 public key is not valid") from exc
        dh = x25519.X25519PublicKey.from_public_bytes(self.raw[MLKEM768_PUBLIC_BYTES:])
        return hpke.MLKEM768X25519PublicKey(kem, dh)

    def to_text(self) -> str:
        return self.suite.text_prefix + b64(self.raw)

    @classmethod
    def from_text(cls, text: str) -> PrekeyPublic:
        for suite in Suite:
            if text.startswith(suite.text_prefix):
                return cls(suite, unb64(text.removeprefix(suite.text_prefix), "prekey"))
        raise Malformed("prekey text must start with livcr-x25519: or livcr-xwing:")


def expand_xwing_seed(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    """The X-Wing key pair of a 32-byte seed (draft-connolly-cfrg-xwing-kem, spec §6.1).

    ``expanded = SHAKE256(seed, 96 bytes)``; ML-KEM-768 is generated from ``d || z =
    expanded[0:64]`` and the X25519 secret scalar is ``expanded[64:96]``.
    """
    shake = hashes.Hash(hashes.SHAKE256(digest_size=XWING_EXPANDED_BYTES))
    shake.update(seed)
    expanded = shake.finalize()
    kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:MLKEM768_SEED_BYTES])
    dh = x25519.X25519PrivateKey.from_private_bytes(expanded[MLKEM768_SEED_BYTES:])
    return kem, dh


@dataclass(frozen=True)
class PrekeySecret:
    """The secret half of a prekey, held as its seed (the X25519 scalar, or the X-Wing seed)."""

    suite: Suite
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != self.suite.secret_seed_bytes:
            raise Malformed(
                f"suite {self.suite.value} prekey seed must be {self.suite.secret_seed_bytes} bytes"
            )

    @cached_property
    def hpke_key(self) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
        """The key object pyca/cryptography's HPKE wants (built once: ML-KEM keys are costly)."""
        return self.hpke_private()

    def hpke_private(self) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
        if self.suite is Suite.X25519:
            return x25519.X25519PrivateKey.from_private_bytes(self.seed)
        return hpke.MLKEM768X25519PrivateKey(*expand_xwing_seed(self.seed))

    @cached_property
    def public(self) -> PrekeyPublic:
        if self.suite is Suite.X25519:
            raw = (
                x25519.X25519PrivateKey.from_private_bytes(self.seed)
                .public_key()
                .public_bytes_raw()
            )
        else:
            kem, dh = expand_xwing_seed(self.seed)
            raw = kem.public_key().public_bytes_raw() + dh.public_key().public_bytes_raw()
        return PrekeyPublic(self.suite, raw)

    @cached_property
    def key_id(self) -> bytes:
        return self.public.key_id

    def __repr__(self) -> str:
        return f"PrekeySecret(suite={self.suite.name}, key_id={self.key_id.hex()}, secret=<hidden>)"
