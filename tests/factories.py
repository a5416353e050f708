"""Deterministic builders for tests: a small demo cell, its keys, statements and envelopes.

Everything is derived from fixed labels, so a test that fails fails the same way every run. The
one exception is HPKE encapsulation, which pyca/cryptography randomises internally (spec §14.1);
no test compares stanza bytes across runs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import nacl.utils
import pytest

from livcr_exchange.cases import mint_case_ref
from livcr_exchange.constants import LABEL_DIRECTORY_ENTRY
from livcr_exchange.directory import Directory
from livcr_exchange.envelope import (
    CosignBlock,
    CosignedFacts,
    MessageSpec,
    OpenedMessage,
    SealParts,
    build_block,
    content_digest,
    cosign,
    open_envelope,
    seal,
)
from livcr_exchange.envelope.seal import (
    body_hasher,
    draw_parts,
    seal_from_parts_stream,
    signature_message,
)
from livcr_exchange.errors import LivcrError, error_codes
from livcr_exchange.keys import IdentityKey, PrekeyPublic, PrekeySecret, Suite
from livcr_exchange.replay import ReplayCache
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry, PrekeyStatement, Revocation, StatementType
from livcr_exchange.wire import Writer

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
DAY = 86_400
CELL_ID = "cell-demo"
CASE_REF = "case-owfbixfqfo2tbclo32qnogu7bq"
MEETING_REF = "meeting-2030-01"
PURPOSE = "screening_vraag"
FICHE = "terugkoppelingsfiche"
TTL = 7 * DAY
ENTRY_NOT_BEFORE = NOW - 365 * DAY
ENTRY_NOT_AFTER = NOW + 365 * DAY
PREKEY_NOT_BEFORE = NOW - DAY
PREKEY_NOT_AFTER = NOW + 6 * DAY
ALLOWED_PURPOSES = frozenset({"aanmelding", "screening_vraag", "terugkoppelingsfiche"})

BASE_PARTICIPANTS: dict[str, Role] = {
    "coord": Role.COORDINATOR,
    "io-politie": Role.IO_POLITIE,
    "caw": Role.DEELNEMER,
    "clb": Role.DEELNEMER,
}

_TEST_LABEL = b"livcr-exchange tests\x00"


def case_ref(label: str) -> str:
    """A case reference in the minted form (spec §8.3), the same for ``label`` every run."""
    digest = hashlib.blake2b(b"livcr-exchange tests case " + label.encode(), digest_size=16)
    return mint_case_ref(lambda _: digest.digest())


def det_bytes(label: str, size: int) -> bytes:
    """``size`` deterministic bytes for ``label`` (libsodium's randombytes_deterministic)."""
    seed = hashlib.blake2b(_TEST_LABEL + label.encode(), digest_size=32).digest()
    value: bytes = nacl.utils.randombytes_deterministic(size, seed)
    return value


def kbo(first_eight: int) -> str:
    """A KBO number whose last two digits are the mod-97 check of the first eight."""
    return f"{first_eight:08d}{97 - first_eight % 97:02d}"


class DeterministicRandom:
    """A counter-based ``RandomSource``: BLAKE2b keyed with the seed, over a running counter."""

    def __init__(self, seed: bytes | str = b"livcr-exchange tests") -> None:
        raw = seed.encode() if isinstance(seed, str) else seed
        self._key = hashlib.blake2b(raw, digest_size=32).digest()
        self._counter = 0

    def __call__(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            block = self._counter.to_bytes(8, "big")
            out += hashlib.blake2b(block, key=self._key, digest_size=64).digest()
            self._counter += 1
        return bytes(out[:size])


@dataclass(frozen=True)
class Participant:
    """One member of the demo cell with every key and signed statement it owns."""

    participant_id: str
    role: Role
    organisation: str
    identity: IdentityKey
    prekey_secrets: Mapping[Suite, PrekeySecret]
    entry: DirectoryEntry
    signed_entry: bytes
    prekey_statements: Mapping[Suite, PrekeyStatement]
    signed_prekeys: Mapping[Suite, bytes]

    def prekey(self, suite: Suite) -> PrekeyPublic:
        return self.prekey_secrets[suite].public

    def secrets_by_id(self) -> dict[bytes, PrekeySecret]:
        """Every prekey secret this participant holds, keyed by prekey id (both suites)."""
        return {secret.key_id: secret for secret in self.prekey_secrets.values()}


def make_participant(
    cell_id: str, root: IdentityKey, participant_id: str, role: Role, index: int
) -> Participant:
    identity = IdentityKey.from_seed(det_bytes(f"{cell_id} identity {participant_id}", 32))
    secrets = {
        suite: PrekeySecret(
            suite,
            det_bytes(f"{cell_id} prekey {participant_id} {suite.value}", suite.secret_seed_bytes),
        )
        for suite in Suite
    }
    entry = DirectoryEntry(
        cell_id,
        participant_id,
        kbo(20_743_746 + index),
        role,
        identity.public,
        ALLOWED_PURPOSES,
        ENTRY_NOT_BEFORE,
        ENTRY_NOT_AFTER,
    )
    statements = {
        suite: PrekeyStatement(
            participant_id, identity.key_id, secret.public, PREKEY_NOT_BEFORE, PREKEY_NOT_AFTER
        )
        for suite, secret in secrets.items()
    }
    return Participant(
        participant_id,
        role,
        entry.organisation,
        identity,
        secrets,
        entry,
        entry.sign(root),
        statements,
        {suite: statement.sign(identity) for suite, statement in statements.items()},
    )


def service_ids(count: int) -> tuple[str, ...]:
    """Ids of the extra deelnemer services a larger cell gets: svc-01, svc-02, ..."""
    return tuple(f"svc-{i:02d}" for i in range(1, count + 1))


@functools.cache
def _members(cell_id: str, extra_services: int) -> tuple[IdentityKey, tuple[Participant, ...]]:
    root = IdentityKey.from_seed(det_bytes(f"{cell_id} root", 32))
    roles = dict(BASE_PARTICIPANTS)
    roles.update(dict.fromkeys(service_ids(extra_services), Role.DEELNEMER))
    members = tuple(
        make_participant(cell_id, root, pid, role, index)
        for index, (pid, role) in enumerate(roles.items())
    )
    return root, members


@dataclass
class Cell:
    """A cell with its root key, participants, verified directory and a deterministic RNG."""

    cell_id: str
    root: IdentityKey
    participants: dict[str, Participant]
    directory: Directory
    random: DeterministicRandom = field(repr=False)

    @classmethod
    def build(cls, extra_services: int = 0, *, cell_id: str = CELL_ID, seed: str = "demo") -> Cell:
        """The demo cell: coord, io-politie, caw, clb, plus ``extra_services`` deelnemers.

        Key material is cached between calls; the random source is fresh for each cell.
        """
        root, members = _members(cell_id, extra_services)
        directory = Directory.from_signed(
            cell_id, root.public, [member.signed_entry for member in members]
        )
        return cls(
            cell_id,
            root,
            {member.participant_id: member for member in members},
            directory,
            DeterministicRandom(f"{cell_id} {seed} {extra_services}"),
        )

    def __getitem__(self, participant_id: str) -> Participant:
        return self.participants[participant_id]

    def identity(self, participant_id: str) -> IdentityKey:
        return self.participants[participant_id].identity

    # Directory variants.
    def entry(self, participant_id: str, **changes: Any) -> DirectoryEntry:
        """The participant's directory entry with ``changes`` applied (unsigned)."""
        return replace(self.participants[participant_id].entry, **changes)

    def revocation(
        self, participant_id: str, revoked_at: int, reason: str = "key compromised"
    ) -> Revocation:
        return Revocation(
            self.cell_id,
            participant_id,
            self.identity(participant_id).key_id,
            revoked_at,
            reason,
        )

    def directory_with(
        self,
        *,
        entries: Iterable[DirectoryEntry] = (),
        revocations: Iterable[Revocation] = (),
        omit: Iterable[str] = (),
    ) -> Directory:
        """A directory verified from signed statements: the cell's entries (minus ``omit``),
        plus ``entries`` and ``revocations``, all signed by the root key."""
        skipped = set(omit)
        signed = [p.signed_entry for pid, p in self.participants.items() if pid not in skipped]
        signed += [entry.sign(self.root) for entry in entries]
        return Directory.from_signed(
            self.cell_id,
            self.root.public,
            signed,
            [revocation.sign(self.root) for revocation in revocations],
        )

    # Sealing and opening.
    def spec(
        self,
        recipients: Iterable[str],
        *,
        sender: str = "coord",
        suite: Suite = Suite.XWING,
        purpose: str = PURPOSE,
        case_ref: str = CASE_REF,
        cosign_block: CosignBlock | None = None,
        cell_id: str | None = None,
        meeting_ref: str | None = None,
    ) -> MessageSpec:
        return MessageSpec(
            cell_id or self.cell_id,
            sender,
            purpose,
            case_ref,
            {rid: self.participants[rid].prekey(suite) for rid in recipients},
            suite,
            cosign_block,
            meeting_ref or (MEETING_REF if cosign_block else None),
        )

    def parts(self, *, now: int = NOW, ttl: int = TTL) -> SealParts:
        """Fresh message id, content key and payload nonce from this cell's random source."""
        return draw_parts(self.random, now, ttl)

    def seal_to(
        self,
        recipients: Iterable[str],
        body: bytes = b'{"question":"known?"}',
        *,
        sender: str = "coord",
        suite: Suite = Suite.XWING,
        now: int = NOW,
        ttl: int = TTL,
        purpose: str = PURPOSE,
        case_ref: str = CASE_REF,
        cosign_block: CosignBlock | None = None,
        cell_id: str | None = None,
    ) -> bytes:
        spec = self.spec(
            recipients,
            sender=sender,
            suite=suite,
            purpose=purpose,
            case_ref=case_ref,
            cosign_block=cosign_block,
            cell_id=cell_id,
        )
        return seal(self.identity(sender), spec, body, now=now, ttl=ttl, random=self.random)

    def open_as(
        self,
        recipient: str,
        envelope: bytes,
        *,
        now: int = NOW + 60,
        judged_at: int = NOW + 30,
        replay: ReplayCache | None = None,
        directory: Directory | None = None,
        prekeys: Mapping[bytes, PrekeySecret] | None = None,
    ) -> OpenedMessage:
        """``open_envelope`` as ``recipient`` with every prekey it holds (both suites)."""
        return open_envelope(
            envelope,
            recipient_id=recipient,
            prekeys=self.participants[recipient].secrets_by_id() if prekeys is None else prekeys,
            directory=directory or self.directory,
            now=now,
            judged_at=judged_at,
            replay=replay,
        )

    def cosign_block(
        self,
        body: bytes,
        signers: Iterable[str],
        *,
        meeting_ref: str = MEETING_REF,
        purpose: str = FICHE,
        case_ref: str = CASE_REF,
        recipients: tuple[str, ...] = ("io-politie",),
        deadline: int = NOW + TTL,
    ) -> CosignBlock:
        """Valid co-signatures of ``signers`` over ``body``'s content digest, for delivery to
        ``recipients`` logged by ``deadline``."""
        digest = content_digest(body)
        facts = CosignedFacts(self.cell_id, case_ref, meeting_ref, purpose, recipients, deadline)
        return build_block(
            digest, deadline, [cosign(self.identity(pid), pid, facts, digest) for pid in signers]
        )


# Raw statement bodies, for defects the encoders refuse to produce.
def directory_entry_body(
    cell_id: str,
    participant_id: str,
    organisation: str,
    role: str,
    identity: bytes,
    purposes: Iterable[str],
    not_before: int,
    not_after: int,
) -> bytes:
    """The §5.3 encoding written field by field, without the encoder's checks."""
    return (
        Writer()
        .u8(StatementType.DIRECTORY_ENTRY)
        .ident(cell_id)
        .ident(participant_id)
        .raw(organisation.encode("ascii"))
        .ident(role)
        .fixed(identity, 32)
        .idents(purposes, 255)
        .u64(not_before)
        .u64(not_after)
        .getvalue()
    )


def sign_as_directory_entry(root: IdentityKey, body: bytes) -> bytes:
    return body + root.sign(LABEL_DIRECTORY_ENTRY + body)


# Envelope framing: a sender who signs whatever header and body it likes (spec §6.5).
def split_envelope(envelope: bytes) -> tuple[bytes, bytes, bytes]:
    """(header, sealed body, signature) of a well-framed envelope."""
    header_length = int.from_bytes(envelope[:4], "big")
    header = envelope[4 : 4 + header_length]
    return header, envelope[4 + header_length + 8 : -64], envelope[-64:]


def frame(header: bytes, sealed_body: bytes, signature: bytes) -> bytes:
    """u32be(len(header)) || header || u64be(len(sealed body)) || sealed body || signature."""
    return (
        len(header).to_bytes(4, "big")
        + header
        + len(sealed_body).to_bytes(8, "big")
        + sealed_body
        + signature
    )


def resign(sender: IdentityKey, header: bytes, sealed_body: bytes) -> bytes:
    """Frame ``header`` and ``sealed_body`` with a fresh, valid signature by ``sender``."""
    hasher = body_hasher(len(sealed_body))
    hasher.update(sealed_body)
    return frame(header, sealed_body, sender.sign(signature_message(header, hasher.digest())))


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


@contextlib.contextmanager
def expect_error(cls: type[LivcrError]) -> Iterator[pytest.ExceptionInfo[LivcrError]]:
    """Require exactly ``cls`` (not a sibling or subclass) carrying its registered ``code``."""
    with pytest.raises(cls) as caught:
        yield caught
    assert type(caught.value) is cls, f"{type(caught.value).__name__}: {caught.value}"
    assert caught.value.code == cls.code
    assert error_codes()[cls.code] is cls


def seal_opaque(
    sender: IdentityKey, spec: MessageSpec, size: int, *, now: int, ttl: int, random: Any
) -> bytes:
    """A really sealed and signed envelope whose plaintext is about ``size`` bytes: a small
    body followed by ``size`` bytes as if they were one document (a hub never reads either;
    its tests need big envelopes, and a body JSON alone is capped at MAX_BODY_JSON_BYTES)."""
    piece = b"x" * (64 * 1024)
    filler = (piece[: min(len(piece), size - offset)] for offset in range(0, size, len(piece)))
    parts = draw_parts(random, now, ttl)
    _, pieces = seal_from_parts_stream(sender, spec, parts, b"{}", [(size, filler)])
    return b"".join(pieces)
