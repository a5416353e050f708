"""Signed statements: directory entries, revocations and prekeys (spec §5.3-§5.5).

A signed statement is ``body || signature``: the canonical body (§4.1) followed by a 64-byte
Ed25519 signature over ``label || body``. The first body byte names the statement type, so a
signature for one kind can never be read as another even if labels were ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .constants import (
    KEY_ID_BYTES,
    LABEL_DIRECTORY_ENTRY,
    LABEL_PREKEY,
    LABEL_REVOCATION,
    MAX_ALLOWED_PURPOSES,
    MAX_PREKEY_LIFETIME,
    MAX_REASON_LENGTH,
    SIGNATURE_BYTES,
)
from .errors import Malformed
from .keys import IdentityKey, IdentityPublicKey, PrekeyPublic, Suite
from .roles import DIRECTORY_ROLES, Role
from .wire import Reader, Writer

KBO_DIGITS = 10


class StatementType(enum.IntEnum):
    DIRECTORY_ENTRY = 0x01
    REVOCATION = 0x02
    PREKEY = 0x03


def check_kbo(number: str) -> str:
    """A Belgian enterprise number: 10 digits, the last two a mod-97 check (spec §5.3).

    Raises:
        Malformed: not 10 digits, or the check digits do not match.
    """
    if len(number) != KBO_DIGITS or not number.isascii() or not number.isdigit():
        raise Malformed("organisation must be a 10-digit KBO number")
    if 97 - int(number[:8]) % 97 != int(number[8:]):
        raise Malformed(f"KBO number {number} fails its check digits")
    return number


def _check_window(not_before: int, not_after: int) -> None:
    if not_after <= not_before:
        raise Malformed("not_after must be later than not_before")


def _split_signed(data: bytes, what: str) -> tuple[bytes, bytes]:
    if len(data) <= SIGNATURE_BYTES:
        raise Malformed(f"{what}: too short to carry a signature")
    return data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]


def _expect_type(reader: Reader, expected: StatementType) -> None:
    found = reader.u8()
    if found != expected:
        raise Malformed(f"statement type {found:#04x}, expected {expected.name}")


@dataclass(frozen=True)
class DirectoryEntry:
    """The cell root's word that a participant holds a role and an identity key (spec §5.3)."""

    cell_id: str
    participant_id: str
    organisation: str
    role: Role
    identity_key: IdentityPublicKey
    allowed_purposes: frozenset[str]
    not_before: int
    not_after: int

    def encode(self) -> bytes:
        if self.role not in DIRECTORY_ROLES:
            raise Malformed(f"role {self.role} cannot be held in the directory")
        _check_window(self.not_before, self.not_after)
        return (
            Writer()
            .u8(StatementType.DIRECTORY_ENTRY)
            .ident(self.cell_id)
            .ident(self.participant_id)
            .raw(check_kbo(self.organisation).encode("ascii"))
            .ident(self.role.value)
            .fixed(self.identity_key.raw, 32)
            .idents(self.allowed_purposes, MAX_ALLOWED_PURPOSES)
            .u64(self.not_before)
            .u64(self.not_after)
            .getvalue()
        )

    @classmethod
    def decode(cls, body: bytes) -> DirectoryEntry:
        """Raises Malformed or NonCanonical."""
        reader = Reader(body, "directory entry")
        _expect_type(reader, StatementType.DIRECTORY_ENTRY)
        cell_id = reader.ident("cell id")
        participant_id = reader.ident("participant id")
        organisation = check_kbo(reader.fixed(KBO_DIGITS).decode("ascii", "replace"))
        role_text = reader.ident("role")
        try:
            role = Role(role_text)
        except ValueError as exc:
            raise Malformed(f"unknown role {role_text!r}") from exc
        if role not in DIRECTORY_ROLES:
            raise Malformed(f"role {role} cannot be held in the directory")
        identity_key = IdentityPublicKey(reader.fixed(32))
        purposes = frozenset(reader.idents(MAX_ALLOWED_PURPOSES, "allowed purposes"))
        not_before, not_after = reader.u64(), reader.u64()
        reader.finish()
        _check_window(not_before, not_after)
        return cls(
            cell_id,
            participant_id,
            organisation,
            role,
            identity_key,
            purposes,
            not_before,
            not_after,
        )

    def sign(self, root: IdentityKey) -> bytes:
        body = self.encode()
        return body + root.sign(LABEL_DIRECTORY_ENTRY + body)

    @classmethod
    def open(cls, signed: bytes, root: IdentityPublicKey) -> DirectoryEntry:
        """Verify the root's signature, then decode. Raises BadSignature, Malformed."""
        body, signature = _split_signed(signed, "directory entry")
        root.verify(LABEL_DIRECTORY_ENTRY + body, signature)
        return cls.decode(body)


@dataclass(frozen=True)
class Revocation:
    """The cell root's word that a participant's identity key stops being valid (spec §5.4)."""

    cell_id: str
    participant_id: str
    identity_key_id: bytes
    revoked_at: int
    reason: str

    def encode(self) -> bytes:
        return (
            Writer()
            .u8(StatementType.REVOCATION)
            .ident(self.cell_id)
            .ident(self.participant_id)
            .fixed(self.identity_key_id, KEY_ID_BYTES)
            .u64(self.revoked_at)
            .text(self.reason, MAX_REASON_LENGTH)
            .getvalue()
        )

    @classmethod
    def decode(cls, body: bytes) -> Revocation:
        reader = Reader(body, "revocation")
        _expect_type(reader, StatementType.REVOCATION)
        revocation = cls(
            reader.ident("cell id"),
            reader.ident("participant id"),
            reader.fixed(KEY_ID_BYTES),
            reader.u64(),
            reader.text(MAX_REASON_LENGTH),
        )
        reader.finish()
        return revocation

    def sign(self, root: IdentityKey) -> bytes:
        body = self.encode()
        return body + root.sign(LABEL_REVOCATION + body)

    @classmethod
    def open(cls, signed: bytes, root: IdentityPublicKey) -> Revocation:
        """Verify the root's signature, then decode. Raises BadSignature, Malformed."""
        body, signature = _split_signed(signed, "revocation")
        root.verify(LABEL_REVOCATION + body, signature)
        return cls.decode(body)


@dataclass(frozen=True)
class PrekeyStatement:
    """A participant's signed word that a prekey is theirs for a time window (spec §5.5)."""

    participant_id: str
    identity_key_id: bytes
    prekey: PrekeyPublic
    not_before: int
    not_after: int

    @property
    def prekey_id(self) -> bytes:
        return self.prekey.key_id

    def encode(self) -> bytes:
        _check_prekey_window(self.not_before, self.not_after)
        return (
            Writer()
            .u8(StatementType.PREKEY)
            .ident(self.participant_id)
            .fixed(self.identity_key_id, KEY_ID_BYTES)
            .u8(self.prekey.suite)
            .opaque16(self.prekey.raw)
            .u64(self.not_before)
            .u64(self.not_after)
            .getvalue()
        )

    @classmethod
    def decode(cls, body: bytes) -> PrekeyStatement:
        reader = Reader(body, "prekey statement")
        _expect_type(reader, StatementType.PREKEY)
        participant_id = reader.ident("participant id")
        identity_key_id = reader.fixed(KEY_ID_BYTES)
        suite_code = reader.u8()
        try:
            suite = Suite(suite_code)
        except ValueError as exc:
            raise Malformed(f"unknown suite {suite_code}") from exc
        prekey = PrekeyPublic(suite, reader.opaque16())
        not_before, not_after = reader.u64(), reader.u64()
        reader.finish()
        _check_prekey_window(not_before, not_after)
        return cls(participant_id, identity_key_id, prekey, not_before, not_after)

    def sign(self, identity: IdentityKey) -> bytes:
        if identity.key_id != self.identity_key_id:
            raise ValueError("prekey statement names a different identity key")
        body = self.encode()
        return body + identity.sign(LABEL_PREKEY + body)

    @classmethod
    def open(cls, signed: bytes, identity: IdentityPublicKey) -> PrekeyStatement:
        """Verify the owner's signature, then decode.

        Raises:
            BadSignature: the signature does not verify under ``identity``.
            Malformed: bad grammar, or the statement names another identity key.
        """
        body, signature = _split_signed(signed, "prekey statement")
        identity.verify(LABEL_PREKEY + body, signature)
        statement = cls.decode(body)
        if statement.identity_key_id != identity.key_id:
            raise Malformed("prekey statement names a different identity key")
        return statement


def _check_prekey_window(not_before: int, not_after: int) -> None:
    _check_window(not_before, not_after)
    if not_after - not_before > MAX_PREKEY_LIFETIME:
        raise Malformed("prekey lifetime exceeds MAX_PREKEY_LIFETIME")
