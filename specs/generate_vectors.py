"""Generate the protocol's test vectors into specs/vectors/ (spec §14).

Everything is derived from fixed seeds, so regenerating changes no byte, with one exception the
spec explains: HPKE encapsulation draws its ephemeral secret inside pyca/cryptography. The
generator therefore reuses each stanza already published (``envelope-stanzas.json`` in the
output folder, or in specs/vectors when the folder has none), after checking that it opens to
the vector's content key under the vector's ``info``; only a stanza that is missing or no longer
valid (because an input changed) is made afresh.

Usage: python specs/generate_vectors.py [OUT_DIR]   (default: specs/vectors)
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nacl.utils
from body_vectors import DESCRIPTION as BODY_DESCRIPTION
from body_vectors import body_vectors
from document_vectors import DESCRIPTION as DOCUMENT_DESCRIPTION
from document_vectors import document_vectors
from generate_witness_vectors import DESCRIPTION as WITNESS_DESCRIPTION
from generate_witness_vectors import witness_vectors

from livcr_exchange.audit.checkpoint import (
    MAX_EXTENSION_LINES,
    Checkpoint,
    sign_checkpoint,
    sign_note,
)
from livcr_exchange.audit.leaves import LEAF_SALT_BYTES, DeliveryDropped, DropReason
from livcr_exchange.audit.merkle import (
    LeafHashList,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
)
from livcr_exchange.cases import mint_case_ref
from livcr_exchange.constants import CHUNK_BYTES, MAX_CLOCK_SKEW, MAX_HEADER_BYTES
from livcr_exchange.directory import Directory
from livcr_exchange.envelope import (
    CosignedFacts,
    MessageSpec,
    SealParts,
    build_block,
    content_digest,
    cosign,
)
from livcr_exchange.envelope.header import Header
from livcr_exchange.envelope.seal import body_hasher, seal_from_parts_stream, signature_message
from livcr_exchange.envelope.wrap import hpke_unwrap, hpke_wrap
from livcr_exchange.errors import LivcrError
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keyfile import SecretBundle, lock_from_parts
from livcr_exchange.keys import IdentityKey, PrekeyPublic, PrekeySecret, Suite
from livcr_exchange.purpose_examples import EXAMPLE_CASE_REF, EXAMPLE_MEETING_REF, example_body
from livcr_exchange.purposes import CATALOGUE, encode_body
from livcr_exchange.request_auth import HubBinding, RequestTarget, sign_request
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry, PrekeyStatement, Revocation
from livcr_exchange.wire import Writer

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
DAY = 86_400
CELL = "cell-vectors"
HUB = HubBinding(CELL, f"livcr-exchange/{CELL}")  # the verifying hub of request vectors
KBO = "0207437468"  # a syntactically valid enterprise number (mod-97 check holds)


def det(label: str, size: int) -> bytes:
    """Deterministic bytes for ``label``: libsodium's randombytes_deterministic on a hashed seed."""
    seed = labelled_hash(b"livcr-exchange/v1 test vectors\x00", label.encode())
    value: bytes = nacl.utils.randombytes_deterministic(size, seed)
    return value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# The cell every vector lives in.
PARTICIPANTS = {
    "coord": Role.COORDINATOR,
    "io-politie": Role.IO_POLITIE,
    "voorzitter": Role.VOORZITTER,
    "caw": Role.DEELNEMER,
    "cgg": Role.DEELNEMER,
    "clb": Role.DEELNEMER,
    "jeugdhulp": Role.DEELNEMER,
    "justitiehuis": Role.DEELNEMER,
    "ocmw": Role.DEELNEMER,
    "school": Role.DEELNEMER,
    "vdab": Role.DEELNEMER,
    "dpo": Role.DPO,
}


@dataclass
class Cell:
    root: IdentityKey = field(default_factory=lambda: IdentityKey.from_seed(det("root", 32)))
    identities: dict[str, IdentityKey] = field(default_factory=dict)
    prekeys: dict[tuple[str, Suite], PrekeySecret] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pid in PARTICIPANTS:
            self.identities[pid] = IdentityKey.from_seed(det(f"identity {pid}", 32))
            for suite in Suite:
                seed = det(f"prekey {pid} {suite.value}", suite.secret_seed_bytes)
                self.prekeys[(pid, suite)] = PrekeySecret(suite, seed)

    def entry(self, pid: str, **changes: Any) -> DirectoryEntry:
        entry = DirectoryEntry(
            CELL,
            pid,
            KBO,
            PARTICIPANTS[pid],
            self.identities[pid].public,
            frozenset({"aanmelding", "screening_vraag", "terugkoppelingsfiche"}),
            NOW - 365 * DAY,
            NOW + 365 * DAY,
        )
        return replace(entry, **changes)

    def inputs(
        self, *, omit: str | None = None, revocations: tuple[bytes, ...] = ()
    ) -> dict[str, Any]:
        entries = [self.entry(pid).sign(self.root) for pid in PARTICIPANTS if pid != omit]
        return {
            "cell_id": CELL,
            "root_key": self.root.public.to_text(),
            "entries": [b64(e) for e in entries],
            "revocations": [b64(r) for r in revocations],
        }

    def directory(self) -> Directory:
        return Directory.from_signed(
            CELL, self.root.public, [self.entry(pid).sign(self.root) for pid in PARTICIPANTS]
        )

    def secret_for(self, prekey: PrekeyPublic) -> PrekeySecret:
        for secret in self.prekeys.values():
            if secret.key_id == prekey.key_id:
                return secret
        raise KeyError(prekey.key_id.hex())


class PinnedWrap:
    """HPKE wrapping that reuses published stanzas when they still open correctly."""

    def __init__(self, cell: Cell, published: dict[str, list[str]]) -> None:
        self._cell = cell
        self._published = published
        self.stanzas: dict[str, list[str]] = {}

    def for_vector(self, name: str) -> Callable[[bytes, PrekeyPublic, bytes], bytes]:
        candidates = [base64.b64decode(s) for s in self._published.get(name, [])]
        made: list[str] = self.stanzas.setdefault(name, [])

        def wrap(content_key: bytes, prekey: PrekeyPublic, info: bytes) -> bytes:
            secret = self._cell.secret_for(prekey)
            stanza = next((s for s in candidates if _opens(s, secret, info, content_key)), None)
            stanza = stanza or hpke_wrap(content_key, prekey, info)
            made.append(b64(stanza))
            return stanza

        return wrap


def _opens(stanza: bytes, secret: PrekeySecret, info: bytes, content_key: bytes) -> bool:
    try:
        return hpke_unwrap(stanza, secret, info) == content_key
    except LivcrError:
        return False


# Re-framing helpers for negative vectors: a sender who signs whatever it likes.
def split(envelope: bytes) -> tuple[bytes, bytes, bytes]:
    header_length = int.from_bytes(envelope[:4], "big")
    header = envelope[4 : 4 + header_length]
    body = envelope[4 + header_length + 8 : -64]
    return header, body, envelope[-64:]


def frame(header: bytes, body: bytes, signature: bytes) -> bytes:
    return len(header).to_bytes(4, "big") + header + len(body).to_bytes(8, "big") + body + signature


def resign(sender: IdentityKey, header: bytes, body: bytes) -> bytes:
    hasher = body_hasher(len(body))
    hasher.update(body)
    return frame(header, body, sender.sign(signature_message(header, hasher.digest())))


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


@dataclass
class Sealed:
    name: str
    sender: str
    recipients: tuple[str, ...]
    suite: Suite
    parts: SealParts
    body: bytes
    envelope: bytes
    header: Header
    intermediate: dict[str, Any]


class EnvelopeVectors:
    """Positive envelopes with every intermediate value, then one negative per receiver check."""

    def __init__(self, cell: Cell, wraps: PinnedWrap) -> None:
        self.cell = cell
        self.wraps = wraps

    def seal(
        self,
        name: str,
        *,
        suite: Suite,
        recipients: tuple[str, ...],
        body: bytes,
        sender: str = "coord",
        purpose: str = "screening_vraag",
        cosigned_by: tuple[str, ...] = (),
        wrap_key: bytes | None = None,
        signed_body: bytes | None = None,
        cosign_recipients: tuple[str, ...] | None = None,
        cosign_deadline: int = NOW + 7 * DAY,
        cell_id: str = CELL,
        attachments: tuple[bytes, ...] = (),
    ) -> Sealed:
        parts = SealParts(
            message_id=det(f"{name} message id", 16),
            timestamp=NOW,
            expires_at=NOW + 7 * DAY,
            content_key=det(f"{name} content key", 32),
            payload_nonce=det(f"{name} payload nonce", 19),
        )
        block = None
        if cosigned_by:
            digest = content_digest(body if signed_body is None else signed_body)
            facts = CosignedFacts(
                cell_id,
                "case-7k2m9q",
                "meeting-2030-01",
                purpose,
                tuple(sorted(recipients if cosign_recipients is None else cosign_recipients)),
                cosign_deadline,
            )
            block = build_block(
                digest,
                cosign_deadline,
                [cosign(self.cell.identities[pid], pid, facts, digest) for pid in cosigned_by],
            )
        spec = MessageSpec(
            cell_id,
            sender,
            purpose,
            "case-7k2m9q",
            {r: self.cell.prekeys[(r, suite)].public for r in recipients},
            suite,
            block,
            "meeting-2030-01" if block else None,
        )
        wrap = self.wraps.for_vector(name)
        if wrap_key is not None:
            inner = wrap

            def wrap(_key: bytes, prekey: PrekeyPublic, info: bytes) -> bytes:
                return inner(wrap_key, prekey, info)

        trace, pieces = seal_from_parts_stream(
            self.cell.identities[sender],
            spec,
            parts,
            body,
            [(len(data), [data]) for data in attachments],
            wrap,
        )
        envelope = b"".join(pieces)
        _, sealed_body, _ = split(envelope)
        hasher = body_hasher(len(sealed_body))
        hasher.update(sealed_body)
        intermediate = {
            "message_id": parts.message_id.hex(),
            "timestamp": parts.timestamp,
            "expires_at": parts.expires_at,
            "content_key": parts.content_key.hex(),
            "payload_nonce": parts.payload_nonce.hex(),
            "payload_key": trace.payload_key.hex(),
            "commitment": trace.header.core.commitment.hex(),
            "header_core_hash": trace.header.core_hash.hex(),
            "wrap_infos": [i.hex() for i in trace.infos],
            "header": b64(trace.header.raw),
            "body_hash": hasher.digest().hex(),
            "recipient_prekeys": {r: spec.recipients[r].to_text() for r in sorted(recipients)},
        }
        return Sealed(
            name, sender, recipients, suite, parts, body, envelope, trace.header, intermediate
        )

    def vector(
        self,
        sealed: Sealed,
        name: str,
        expect: str,
        *,
        envelope: bytes | None = None,
        recipient: str | None = None,
        prekey_of: str | None = None,
        cell: dict[str, Any] | None = None,
        now: int = NOW + 3600,
        judged_at: int | None = None,
        seen: list[tuple[str, str]] | None = None,
        comment: str = "",
        view: str = "recipient",
    ) -> dict[str, Any]:
        recipient = recipient or sorted(sealed.recipients)[0]
        secret = self.cell.prekeys[(prekey_of or recipient, sealed.suite)]
        vector: dict[str, Any] = {
            "kind": "envelope",
            "name": name,
            "expect": expect,
            "comment": comment,
            "cell": cell or self.cell.inputs(),
            "recipient_id": recipient,
            "prekeys": [{"suite": secret.suite.value, "seed": secret.seed.hex()}],
            "now": now,
            "judged_at": NOW + 60 if judged_at is None else judged_at,
            "envelope": b64(envelope if envelope is not None else sealed.envelope),
            "seen": seen or [],
        }
        if view != "recipient":
            vector["view"] = view
        if expect == "ok":
            vector["body"] = b64(sealed.body)
            vector["intermediate"] = sealed.intermediate
        return vector

    def positives(self) -> Iterator[dict[str, Any]]:
        recipients_by_count = {
            1: ("io-politie",),
            3: ("caw", "clb", "io-politie"),
            10: tuple(p for p in PARTICIPANTS if p not in {"coord", "dpo"}),
        }
        small = b'{"legal_ground":["wet_30_juli_2018"],"question":"known?"}'
        for suite in Suite:
            tag = "x25519" if suite is Suite.X25519 else "xwing"
            for count, recipients in recipients_by_count.items():
                name = f"envelope_ok_{tag}_{count}_recipients"
                sealed = self.seal(name, suite=suite, recipients=recipients, body=small)
                yield self.vector(sealed, name, "ok")
            for label, body in (("empty", b""), ("70000_bytes", det("large body", 70_000))):
                name = f"envelope_ok_{tag}_{label}_body"
                sealed = self.seal(name, suite=suite, recipients=("caw",), body=body)
                yield self.vector(sealed, name, "ok")
        for size in (CHUNK_BYTES, 2 * CHUNK_BYTES):  # exactly one, and two, full chunks
            # The plaintext is the body JSON after its 4-byte length (§6.4).
            name = f"envelope_ok_x25519_{size}_bytes_body"
            body = det(name, size - 4)
            sealed = self.seal(name, suite=Suite.X25519, recipients=("caw",), body=body)
            yield self.vector(sealed, name, "ok")
        cosigned = self.fiche("envelope_ok_cosigned")
        yield self.vector(cosigned, "envelope_ok_cosigned", "ok", recipient="io-politie")

    def fiche(self, name: str, **kwargs: Any) -> Sealed:
        kwargs.setdefault("recipients", ("io-politie",))
        return self.seal(
            name,
            suite=Suite.XWING,
            body=b'{"nonce":"' + det(name + " nonce", 16).hex().encode() + b'"}',
            purpose="terugkoppelingsfiche",
            cosigned_by=("caw", "clb", "coord"),
            **kwargs,
        )

    def times(self) -> Iterator[dict[str, Any]]:
        """The bounds on the hub's logged_at (§9.2) and the hub's freshness window (§9.1)."""
        base = self.seal(
            "envelope_base",
            suite=Suite.XWING,
            recipients=("caw", "clb", "io-politie"),
            body=b'{"legal_ground":["decreet_2021"]}',
        )
        expires_at = base.parts.expires_at
        lowest = NOW - MAX_CLOCK_SKEW
        yield self.vector(base, "envelope_ok_logged_at_lowest", "ok", judged_at=lowest)
        yield self.vector(
            base,
            "envelope_logged_at_before_timestamp",
            "logged_at_out_of_bounds",
            judged_at=lowest - 1,
            comment="a hub back-dating its log time beyond the clock tolerance",
        )
        yield self.vector(base, "envelope_ok_logged_at_latest", "ok", judged_at=expires_at - 1)
        yield self.vector(
            base,
            "envelope_logged_at_at_expiry",
            "logged_at_out_of_bounds",
            judged_at=expires_at,
            now=expires_at - 1,
            comment="no hub accepts an envelope at or after its expiry",
        )
        for name, expect, now in (
            ("envelope_hub_ok_oldest", "ok", NOW + MAX_CLOCK_SKEW),
            ("envelope_hub_stale", "timestamp_out_of_window", NOW + MAX_CLOCK_SKEW + 1),
            ("envelope_hub_ok_newest", "ok", NOW - MAX_CLOCK_SKEW),
            ("envelope_hub_future", "timestamp_out_of_window", NOW - MAX_CLOCK_SKEW - 1),
        ):
            yield self.vector(
                base,
                name,
                expect,
                now=now,
                view="hub",
                comment="the hub's submission window: |now - timestamp| <= MAX_CLOCK_SKEW",
            )

    def negatives(self) -> Iterator[dict[str, Any]]:  # noqa: PLR0915  (one defect per line)
        base = self.seal(
            "envelope_base",
            suite=Suite.XWING,
            recipients=("caw", "clb", "io-politie"),
            body=b'{"legal_ground":["decreet_2021"]}',
        )
        sender = self.cell.identities["coord"]
        header, body, signature = split(base.envelope)
        core = base.header.core
        v = self.vector

        yield v(
            base,
            "envelope_bad_signature",
            "bad_signature",
            envelope=frame(header, body, flip(signature, 10)),
        )
        purpose_at = header.index(b"screening_vraag")
        tampered = header[:purpose_at] + b"screening_xxxx" + b"g" + header[purpose_at + 15 :]
        yield v(
            base,
            "envelope_tampered_purpose",
            "bad_signature",
            envelope=frame(tampered, body, signature),
            comment="purpose changed in transit; the signature covers the header",
        )
        yield v(
            base,
            "envelope_tampered_purpose_resigned",
            "unwrap_failed",
            envelope=resign(sender, tampered, body),
            comment="the sender re-signs another purpose: the stanza's HPKE info binds "
            "the header core, so the content key no longer unwraps",
        )
        prekey_at = header.index(core.recipients[2].prekey_id)
        rebound = flip(header, prekey_at)
        yield v(
            base,
            "envelope_tampered_recipients",
            "bad_signature",
            envelope=frame(rebound, body, signature),
        )
        yield v(
            base,
            "envelope_tampered_recipients_resigned",
            "unwrap_failed",
            envelope=resign(sender, rebound, body),
        )
        yield v(base, "envelope_not_a_recipient", "not_a_recipient", recipient="ocmw")
        yield v(
            base,
            "envelope_unknown_prekey",
            "stanza_invalid",
            recipient="caw",
            prekey_of="ocmw",
            comment="the stanza names a prekey the receiver does not hold",
        )
        short = _shorten_first_stanza(base.header)
        yield v(
            base,
            "envelope_wrong_stanza_length",
            "stanza_invalid",
            envelope=resign(sender, short, body),
        )
        yield v(
            base,
            "envelope_sender_not_enrolled",
            "unknown_sender",
            cell=self.cell.inputs(omit="coord"),
        )
        key_id_at = header.index(core.sender_key_id)
        yield v(
            base,
            "envelope_wrong_sender_key",
            "unknown_sender",
            envelope=frame(flip(header, key_id_at), body, signature),
        )
        revocation = Revocation(CELL, "coord", sender.key_id, NOW, "key compromised").sign(
            self.cell.root
        )
        yield v(
            base,
            "envelope_revoked_sender",
            "key_revoked",
            cell=self.cell.inputs(revocations=(revocation,)),
            judged_at=NOW + 60,
            comment="revoked at NOW; judged at the hub's log time NOW+60",
        )
        expired_entry = self.cell.inputs()
        expired_entry["entries"] = [
            b64(
                self.cell.entry(pid, **({"not_after": NOW + 30} if pid == "coord" else {})).sign(
                    self.cell.root
                )
            )
            for pid in PARTICIPANTS
        ]
        yield v(
            base,
            "envelope_sender_key_not_valid",
            "key_not_valid",
            cell=expired_entry,
            comment="coord's entry ends at NOW+30; the hub logged the envelope at NOW+60",
        )
        yield v(base, "envelope_expired", "expired", now=core.expires_at)
        yield v(
            base,
            "envelope_future_timestamp",
            "timestamp_out_of_window",
            now=NOW - MAX_CLOCK_SKEW - 1,
            judged_at=NOW,
        )
        yield v(base, "envelope_replayed", "replayed", seen=[("coord", core.message_id.hex())])
        swapped = _swap_recipients(base.header, 0, 1)
        yield v(
            base,
            "envelope_noncanonical_recipient_order",
            "non_canonical",
            envelope=resign(sender, swapped, body),
        )
        too_big = (MAX_HEADER_BYTES + 1).to_bytes(4, "big") + base.envelope[4:]
        yield v(base, "envelope_oversized_header", "oversized", envelope=too_big)
        yield v(base, "envelope_trailing_byte", "malformed", envelope=base.envelope + b"\x00")
        expiry_at = 4 + 1 + 1 + 16 + 8  # magic, version, suite, message id, timestamp
        never = header[:expiry_at] + (2**64 - 1).to_bytes(8, "big") + header[expiry_at + 8 :]
        yield v(
            base,
            "envelope_lifetime_over_limit",
            "malformed",
            envelope=resign(sender, never, body),
            comment="expires_at beyond timestamp + MAX_MESSAGE_LIFETIME: a message that "
            "never expires would pin replay caches forever",
        )
        yield v(
            base,
            "envelope_unsupported_version",
            "unsupported_version",
            envelope=resign(sender, header[:4] + b"\x03" + header[5:], body),
        )
        yield v(
            base,
            "envelope_version_1",
            "unsupported_version",
            envelope=resign(sender, header[:4] + b"\x01" + header[5:], body),
            comment="version 1 is withdrawn (§12); re-signed so the version check decides",
        )
        yield v(
            base,
            "envelope_body_tag",
            "payload_auth_failed",
            envelope=resign(sender, header, flip(body, 3)),
        )

        low = self.seal(
            "envelope_low_order_base", suite=Suite.X25519, recipients=("caw",), body=b"{}"
        )
        _, low_body, _ = split(low.envelope)
        zeroed = _replace_share(low.header, bytes(32))
        yield v(
            low,
            "envelope_low_order_share",
            "low_order_share",
            envelope=resign(sender, zeroed, low_body),
            comment="the stanza's X25519 share is the all-zero point",
        )

        low_xwing = self.seal(
            "envelope_low_order_xwing_base", suite=Suite.XWING, recipients=("caw",), body=b"{}"
        )
        _, low_xwing_body, _ = split(low_xwing.envelope)
        # A low-order point (order 8) with bit 255 set: receivers compare with it cleared.
        order_8 = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880")
        yield v(
            low_xwing,
            "envelope_low_order_share_xwing",
            "low_order_share",
            envelope=resign(sender, _replace_share(low_xwing.header, order_8), low_xwing_body),
            comment="suite 2: ct_X, bytes 1088-1119 of enc, is a low-order point",
        )

        wrong = self.seal(
            "envelope_commitment_base",
            suite=Suite.XWING,
            recipients=("caw",),
            body=b"{}",
            wrap_key=det("another content key", 32),
        )
        yield v(
            wrong,
            "envelope_commitment_mismatch",
            "commitment_mismatch",
            comment="the stanza carries a content key other than the one committed to",
        )

        large = self.seal(
            "envelope_truncation_base",
            suite=Suite.X25519,
            recipients=("caw",),
            body=det("truncation body", 70_000),
        )
        large_header, large_body, _ = split(large.envelope)
        yield v(
            large,
            "envelope_truncated_chunks",
            "payload_truncated",
            envelope=resign(sender, large_header, large_body[: 65_536 + 16]),
            comment="the final chunk is dropped; the first chunk is not flagged final",
        )

        forged = self.fiche("envelope_cosign_base")
        forged_header, forged_body, _ = split(forged.envelope)
        cosig = forged.header.core.cosign
        assert cosig is not None  # noqa: S101
        sig_at = forged_header.index(cosig.signatures[0].signature)
        yield v(
            forged,
            "envelope_cosignature_invalid",
            "cosignature_invalid",
            envelope=resign(sender, flip(forged_header, sig_at + 5), forged_body),
            recipient="io-politie",
        )
        mismatched = self.seal(
            "envelope_digest_mismatch",
            suite=Suite.XWING,
            recipients=("io-politie",),
            body=b'{"nonce":"00"}',
            purpose="terugkoppelingsfiche",
            cosigned_by=("caw",),
            signed_body=b'{"nonce":"01"}',
        )
        yield v(
            mismatched,
            "envelope_digest_mismatch",
            "digest_mismatch",
            recipient="io-politie",
            comment="co-signatures are over another digest than the body's",
        )
        yield from self.cosign_delivery()
        yield from self.layout(base)

    def cosign_delivery(self) -> Iterator[dict[str, Any]]:
        """Co-signers bind the recipients and a deadline (§7.4)."""
        resent = self.fiche(
            "envelope_cosign_other_recipients",
            recipients=("caw", "io-politie"),
            cosign_recipients=("io-politie",),
        )
        yield self.vector(
            resent,
            "envelope_cosign_other_recipients",
            "cosignature_invalid",
            recipient="io-politie",
            comment="co-signed for io-politie alone, sealed to caw and io-politie",
        )
        on_time = self.fiche("envelope_ok_cosign_at_deadline", cosign_deadline=NOW + 60)
        yield self.vector(
            on_time,
            "envelope_ok_cosign_at_deadline",
            "ok",
            recipient="io-politie",
            comment="logged (judged_at) exactly at the co-signers' deadline",
        )
        late = self.fiche("envelope_cosign_after_deadline", cosign_deadline=NOW + 59)
        yield self.vector(
            late,
            "envelope_cosign_after_deadline",
            "cosignature_invalid",
            recipient="io-politie",
            comment="logged at NOW+60, one second after the co-signers' deadline",
        )

    def layout(self, base: Sealed) -> Iterator[dict[str, Any]]:
        """Magic, flags, chunk layout and cell: defects of the frame and the header grammar."""
        sender = self.cell.identities["coord"]
        header, body, signature = split(base.envelope)
        v = self.vector
        yield v(
            base,
            "envelope_bad_magic",
            "malformed",
            envelope=resign(sender, b"LVCX" + header[4:], body),
        )
        meeting_at = header.index(b"\x0bcase-7k2m9q") + 12
        cosign_at = meeting_at + 1 + 19 + 32
        for name, at in (("meeting", meeting_at), ("cosign", cosign_at)):
            yield v(
                base,
                f"envelope_{name}_flag_2",
                "malformed",
                envelope=resign(sender, header[:at] + b"\x02" + header[at + 1 :], body),
                comment=f"the {name} flag is 0 or 1",
            )
        fiche = self.fiche("envelope_cosign_without_meeting")
        fiche_header, fiche_body, _ = split(fiche.envelope)
        at = fiche_header.index(b"\x0bcase-7k2m9q") + 12
        length = fiche_header[at + 1]
        no_meeting = fiche_header[:at] + b"\x00" + fiche_header[at + 2 + length :]
        yield v(
            fiche,
            "envelope_cosign_without_meeting",
            "malformed",
            envelope=resign(sender, no_meeting, fiche_body),
            recipient="io-politie",
            comment="a co-signed header must name its meeting",
        )
        for name, expect, sealed_length in (
            ("envelope_chunk_shorter_than_tag", "malformed", 15),
            ("envelope_final_chunk_shorter_than_tag", "malformed", 65_536 + 16 + 15),
            ("envelope_empty_final_chunk", "non_canonical", 65_536 + 16 + 16),
        ):
            yield v(
                base,
                name,
                expect,
                envelope=frame(header, bytes(sealed_length), signature),
                comment="the sealed-body length splits into chunks as §6.4 says (§6.6 step 2)",
            )
        elsewhere = self.seal(
            "envelope_other_cell",
            suite=Suite.XWING,
            recipients=("caw",),
            body=b"{}",
            cell_id="cell-elsewhere",
        )
        yield v(
            elsewhere,
            "envelope_other_cell",
            "unknown_sender",
            comment="an envelope of another cell, by a sender enrolled in this one",
        )


def _rebuild(
    header: Header,
    stanzas: tuple[bytes, ...] | None = None,
    core_bytes: bytes | None = None,
) -> bytes:
    core = core_bytes if core_bytes is not None else header.raw[: _core_length(header)]
    writer = Writer().raw(core)
    for stanza in stanzas if stanzas is not None else header.stanzas:
        writer.opaque16(stanza)
    return writer.getvalue()


def _core_length(header: Header) -> int:
    return len(header.raw) - sum(2 + len(s) for s in header.stanzas)


def _shorten_first_stanza(header: Header) -> bytes:
    stanzas = (header.stanzas[0][:-1], *header.stanzas[1:])
    return _rebuild(header, stanzas=stanzas)


def _replace_share(header: Header, share: bytes) -> bytes:
    suite = header.core.suite
    stanza = header.stanzas[0]
    at = suite.enc_bytes - 32
    return _rebuild(header, stanzas=(stanza[:at] + share + stanza[at + 32 :], *header.stanzas[1:]))


def _swap_recipients(header: Header, i: int, j: int) -> bytes:
    core = header.core
    recipients = list(core.recipients)
    recipients[i], recipients[j] = recipients[j], recipients[i]
    prefix_end = (
        _core_length(header) - sum(1 + len(r.participant_id) + 16 for r in core.recipients) - 1
    )
    writer = Writer().raw(header.raw[:prefix_end]).u8(len(recipients))
    for r in recipients:
        writer.ident(r.participant_id).fixed(r.prekey_id, 16)
    stanzas = list(header.stanzas)
    stanzas[i], stanzas[j] = stanzas[j], stanzas[i]
    return _rebuild(header, stanzas=tuple(stanzas), core_bytes=writer.getvalue())


def statement_vectors(cell: Cell) -> Iterator[dict[str, Any]]:
    root_text = cell.root.public.to_text()
    stranger = IdentityKey.from_seed(det("stranger", 32))
    entry = cell.entry("caw")
    signed = entry.sign(cell.root)

    def kind(kind: str, name: str, expect: str, **fields: Any) -> dict[str, Any]:
        return {"kind": kind, "name": name, "expect": expect, **fields}

    yield kind(
        "directory_entry", "directory_entry_ok", "ok", root_key=root_text, statement=b64(signed)
    )
    yield kind(
        "directory_entry",
        "directory_entry_wrong_signer",
        "bad_signature",
        root_key=root_text,
        statement=b64(entry.sign(stranger)),
    )
    yield kind(
        "directory_entry",
        "directory_entry_tampered_role",
        "bad_signature",
        root_key=root_text,
        statement=b64(signed.replace(b"deelnemer", b"dpo\x00\x00\x00\x00\x00\x00", 1)),
    )
    body = entry.encode()
    bad_kbo = body.replace(KBO.encode(), b"0207437469")
    yield kind(
        "directory_entry",
        "directory_entry_bad_kbo",
        "malformed",
        root_key=root_text,
        statement=b64(bad_kbo + cell.root.sign(b"livcr-exchange/v2 directory entry\x00" + bad_kbo)),
    )
    yield kind(
        "directory_entry",
        "directory_entry_trailing_byte",
        "malformed",
        root_key=root_text,
        statement=b64(
            body
            + b"\x00"
            + cell.root.sign(b"livcr-exchange/v2 directory entry\x00" + body + b"\x00")
        ),
    )
    revocation = Revocation(CELL, "caw", cell.identities["caw"].key_id, NOW, "left the cell")
    yield kind(
        "revocation",
        "revocation_ok",
        "ok",
        root_key=root_text,
        statement=b64(revocation.sign(cell.root)),
    )
    yield kind(
        "revocation",
        "revocation_wrong_signer",
        "bad_signature",
        root_key=root_text,
        statement=b64(revocation.sign(stranger)),
    )
    identity = cell.identities["caw"]
    for suite in Suite:
        prekey = PrekeyStatement(
            "caw", identity.key_id, cell.prekeys[("caw", suite)].public, NOW, NOW + 7 * DAY
        )
        yield kind(
            "prekey",
            f"prekey_ok_suite_{suite.value}",
            "ok",
            identity_key=identity.public.to_text(),
            statement=b64(prekey.sign(identity)),
        )
    prekey = PrekeyStatement(
        "caw", identity.key_id, cell.prekeys[("caw", Suite.X25519)].public, NOW, NOW + 7 * DAY
    )
    yield kind(
        "prekey",
        "prekey_wrong_signer",
        "bad_signature",
        identity_key=identity.public.to_text(),
        statement=b64(
            prekey.encode() + stranger.sign(b"livcr-exchange/v2 prekey\x00" + prekey.encode())
        ),
    )
    too_long = _prekey_body(prekey, NOW + 36 * DAY)
    yield kind(
        "prekey",
        "prekey_lifetime_too_long",
        "malformed",
        identity_key=identity.public.to_text(),
        statement=b64(too_long + identity.sign(b"livcr-exchange/v2 prekey\x00" + too_long)),
    )
    inputs = cell.inputs(revocations=(revocation.sign(cell.root),))
    key_id = identity.key_id.hex()
    yield kind(
        "key_lookup",
        "key_lookup_ok",
        "ok",
        cell=inputs,
        participant_id="caw",
        key_id=key_id,
        at=NOW - 1,
    )
    yield kind(
        "key_lookup",
        "key_lookup_revoked_at_judging_time",
        "key_revoked",
        cell=inputs,
        participant_id="caw",
        key_id=key_id,
        at=NOW,
    )
    yield kind(
        "key_lookup",
        "key_lookup_not_yet_valid",
        "key_not_valid",
        cell=inputs,
        participant_id="clb",
        key_id=cell.identities["clb"].key_id.hex(),
        at=NOW - 366 * DAY,
    )
    yield kind(
        "key_lookup",
        "key_lookup_key_of_another_participant",
        "unknown_sender",
        cell=inputs,
        participant_id="clb",
        key_id=key_id,
        at=NOW - 1,
    )


def _prekey_body(prekey: PrekeyStatement, not_after: int) -> bytes:
    return (
        Writer()
        .u8(0x03)
        .ident(prekey.participant_id)
        .fixed(prekey.identity_key_id, 16)
        .u8(prekey.prekey.suite)
        .opaque16(prekey.prekey.raw)
        .u64(prekey.not_before)
        .u64(not_after)
        .getvalue()
    )


def keyfile_vectors(cell: Cell) -> Iterator[dict[str, Any]]:
    bundle = SecretBundle("caw", cell.identities["caw"], (cell.prekeys[("caw", Suite.XWING)],))
    locked = lock_from_parts(
        bundle,
        b"correct horse battery staple",
        salt=det("keyfile salt", 16),
        nonce=det("keyfile nonce", 24),
        opslimit=1,
        memlimit=8192,
    )
    base = {"kind": "secret_key_file", "participant_id": "caw"}
    yield {
        **base,
        "name": "secret_key_file_ok",
        "expect": "ok",
        "file": b64(locked),
        "passphrase": "correct horse battery staple",
        "comment": "Argon2id opslimit 1, memlimit 8 KiB: cheap for tests, not for use",
    }
    yield {
        **base,
        "name": "secret_key_file_wrong_passphrase",
        "expect": "wrong_passphrase",
        "file": b64(locked),
        "passphrase": "Correct horse battery staple",
    }
    yield {
        **base,
        "name": "secret_key_file_lowered_cost",
        "expect": "wrong_passphrase",
        "file": b64(locked[:9] + (2).to_bytes(4, "big") + locked[13:]),
        "passphrase": "correct horse battery staple",
        "comment": "cost parameters are associated data: lowering them breaks the tag",
    }
    yield {
        **base,
        "name": "secret_key_file_not_a_key_file",
        "expect": "malformed",
        "file": b64(b"-----BEGIN" + locked[10:]),
        "passphrase": "x",
    }
    yield from _hostile_keyfile_vectors(locked)


def _hostile_keyfile_vectors(locked: bytes) -> Iterator[dict[str, Any]]:
    """Files refused before Argon2id runs (spec §5.7): nothing in them is authenticated yet."""
    base = {"kind": "secret_key_file", "participant_id": "caw", "passphrase": "x"}
    header = 8 + 1 + 4 + 4 + 16 + 24
    costly = locked[:9] + (16).to_bytes(4, "big") + (1024**3).to_bytes(4, "big") + locked[17:]
    yield {
        **base,
        "name": "secret_key_file_cost_over_limit",
        "expect": "malformed",
        "file": b64(costly[: header + 16]),
        "comment": "73 bytes asking for opslimit 16 and 1 GiB, which protocol v1 allowed",
    }
    yield {
        **base,
        "name": "secret_key_file_ciphertext_shorter_than_tag",
        "expect": "malformed",
        "file": b64(locked[: header + 15]),
    }
    yield {
        **base,
        "name": "secret_key_file_version_1",
        "expect": "unsupported_version",
        "file": b64(locked[:8] + b"\x01" + locked[9:]),
        "comment": "protocol v1's key file: its holder creates new keys",
    }


def audit_vectors() -> Iterator[dict[str, Any]]:
    log_key = IdentityKey.from_seed(det("log key", 32))
    tree = LeafHashList(leaf_hash(det(f"leaf {i}", 40)) for i in range(7))
    origin = "livcr-exchange/cell-vectors"
    key_text = log_key.public.to_text()
    note = sign_checkpoint(Checkpoint(origin, 7, root_hash(tree, 7)), origin, log_key).decode()
    stranger = IdentityKey.from_seed(det("stranger", 32))
    foreign = sign_checkpoint(Checkpoint(origin, 7, root_hash(tree, 7)), origin, stranger).decode()

    def checkpoint(name: str, expect: str, text: str, **fields: Any) -> dict[str, Any]:
        return {
            "kind": "checkpoint",
            "name": name,
            "expect": expect,
            "note": text,
            "origin": origin,
            "key_name": origin,
            "public_key": key_text,
            **fields,
        }

    yield checkpoint("checkpoint_ok", "ok", note, size=7, root=root_hash(tree, 7).hex())
    body, signature_line = note.split("\n\n")
    yield checkpoint(
        "checkpoint_tampered_size",
        "checkpoint_invalid",
        body.replace("\n7\n", "\n8\n", 1) + "\n\n" + signature_line,
    )
    yield checkpoint(
        "checkpoint_signed_by_another_key",
        "checkpoint_invalid",
        foreign,
        comment="signatures by unknown keys are ignored; the log key's is missing",
    )
    yield checkpoint("checkpoint_crlf", "checkpoint_invalid", note.replace("\n", "\r\n"))
    yield checkpoint(
        "checkpoint_leading_zero_size",
        "checkpoint_invalid",
        body.replace("\n7\n", "\n07\n", 1) + "\n\n" + signature_line,
    )

    def inclusion(
        name: str, expect: str, index: int, proof: list[bytes], leaf: bytes
    ) -> dict[str, Any]:
        return {
            "kind": "inclusion_proof",
            "name": name,
            "expect": expect,
            "leaf_hash": leaf.hex(),
            "index": index,
            "size": 7,
            "proof": [h.hex() for h in proof],
            "root": root_hash(tree, 7).hex(),
        }

    yield from leaf_vectors()
    proof = inclusion_proof(tree, 5, 7)
    yield inclusion("inclusion_proof_ok", "ok", 5, proof, tree.leaf(5))
    yield inclusion("inclusion_proof_wrong_index", "proof_invalid", 4, proof, tree.leaf(5))
    yield inclusion(
        "inclusion_proof_tampered_hash",
        "proof_invalid",
        5,
        [flip(proof[0], 0), *proof[1:]],
        tree.leaf(5),
    )
    yield inclusion(
        "inclusion_proof_extra_hash", "proof_invalid", 5, [*proof, proof[0]], tree.leaf(5)
    )

    def consistency(name: str, expect: str, old: int, proof: list[bytes]) -> dict[str, Any]:
        return {
            "kind": "consistency_proof",
            "name": name,
            "expect": expect,
            "old_size": old,
            "new_size": 7,
            "old_root": root_hash(tree, old).hex(),
            "new_root": root_hash(tree, 7).hex(),
            "proof": [h.hex() for h in proof],
        }

    good = consistency_proof(tree, 3, 7)
    yield consistency("consistency_proof_ok", "ok", 3, good)
    yield consistency(
        "consistency_proof_tampered_hash", "proof_invalid", 3, [*good[:-1], flip(good[-1], 31)]
    )
    yield consistency("consistency_proof_truncated", "proof_invalid", 3, good[:-1])
    yield from _checkpoint_origin_and_extensions(checkpoint, log_key, root_hash(tree, 7))


def _checkpoint_origin_and_extensions(
    checkpoint: Callable[..., dict[str, Any]], log_key: IdentityKey, root: bytes
) -> Iterator[dict[str, Any]]:
    """The origin line must be the configured origin; extension lines are bounded (§10.3)."""
    origin = "livcr-exchange/cell-vectors"
    other = sign_checkpoint(Checkpoint("livcr-exchange/cell-other", 7, root), origin, log_key)
    yield checkpoint(
        "checkpoint_origin_mismatch",
        "checkpoint_invalid",
        other.decode(),
        comment="signed by the log key under the configured key name, but of another log",
    )
    custom = "hub.gent.example/livcr"
    note = sign_checkpoint(Checkpoint(custom, 7, root), custom, log_key).decode()
    yield checkpoint(
        "checkpoint_ok_custom_origin",
        "ok",
        note,
        origin=custom,
        key_name=custom,
        size=7,
        root=root.hex(),
        comment="a hub configured with its own origin: the verifier is configured with it too",
    )
    lines = [f"extension {i}" for i in range(MAX_EXTENSION_LINES + 1)]
    allowed = Checkpoint(origin, 7, root, tuple(lines[:MAX_EXTENSION_LINES]))
    yield checkpoint(
        "checkpoint_ok_most_extension_lines",
        "ok",
        sign_checkpoint(allowed, origin, log_key).decode(),
        size=7,
        root=root.hex(),
    )
    text = (allowed.body().decode() + lines[-1] + "\n").encode()
    yield checkpoint(
        "checkpoint_too_many_extension_lines",
        "checkpoint_invalid",
        sign_note(text, origin, log_key).decode(),
        comment=f"{MAX_EXTENSION_LINES + 1} extension lines, correctly signed",
    )


def leaf_vectors() -> Iterator[dict[str, Any]]:
    """The delivery-dropped leaf (spec §10.4): one positive, a reason outside the list, a cut."""
    dropped = DeliveryDropped(
        1_760_000_000,
        det("dropped leaf salt", LEAF_SALT_BYTES),
        det("dropped message id", 16),
        "caw",
        det("dropped envelope hash", 32),
        3_145_728,
        DropReason.UNDELIVERABLE,
    )
    good = dropped.encode()

    def vector(name: str, expect: str, data: bytes, **fields: Any) -> dict[str, Any]:
        return {
            "kind": "log_leaf",
            "name": name,
            "expect": expect,
            "leaf": data.hex(),
            "leaf_hash": leaf_hash(data).hex(),
            **fields,
        }

    values = {k: v.hex() if isinstance(v, bytes) else str(v) for k, v in vars(dropped).items()}
    values["logged_at"], values["size"] = dropped.logged_at, dropped.size
    yield vector("leaf_delivery_dropped_ok", "ok", good, fields=values)
    other = good[: -len(b"undeliverable")] + b"because-i-can"
    yield vector(
        "leaf_delivery_dropped_unknown_reason",
        "malformed",
        other,
        comment="the reason is an ident from the closed list of spec §10.4",
    )
    yield vector("leaf_delivery_dropped_truncated", "malformed", good[:-1])


POLICY_PARTICIPANTS: dict[str, dict[str, Any]] = {
    "coord": {"role": "coordinator", "allowed_purposes": sorted(CATALOGUE)},
    "io-politie": {"role": "io_politie", "allowed_purposes": sorted(CATALOGUE)},
    "caw": {"role": "deelnemer", "allowed_purposes": sorted(CATALOGUE)},
    "clb": {"role": "deelnemer", "allowed_purposes": sorted(CATALOGUE)},
    "ocmw": {"role": "deelnemer", "allowed_purposes": sorted(CATALOGUE)},
    "dpo": {"role": "dpo", "allowed_purposes": ["rechtenverzoek"]},
    "hub-operator": {"role": "hub_operator", "allowed_purposes": []},
}
CASE_REF = EXAMPLE_CASE_REF
MEETING_REF = EXAMPLE_MEETING_REF


def _case(state: str, **changes: Any) -> dict[str, Any]:
    case = {
        "state": state,
        "members": ["caw", "clb", "coord", "io-politie"],
        "owner": "caw",
        "referrer": None,
        "present_at": {MEETING_REF: ["caw", "clb", "coord", "io-politie"]},
    }
    return {**case, **changes}


def policy_vectors() -> Iterator[dict[str, Any]]:
    def policy(
        name: str,
        expect: str,
        sender: str,
        purpose: str,
        recipients: list[str],
        case: dict[str, Any] | None,
        **fields: Any,
    ) -> dict[str, Any]:
        return {
            "kind": "policy",
            "name": name,
            "expect": expect,
            "sender_id": sender,
            "purpose": purpose,
            "case_ref": CASE_REF,
            "recipients": recipients,
            "participants": POLICY_PARTICIPANTS,
            "case": case,
            **fields,
        }

    screening = _case("in_screening")
    yield policy(
        "policy_ok_screening_vraag",
        "ok",
        "coord",
        "screening_vraag",
        ["caw", "io-politie"],
        screening,
    )
    yield policy(
        "policy_ok_aanmelding_opens_case",
        "ok",
        "caw",
        "aanmelding",
        ["coord"],
        None,
        comment="the hub does not know the case yet: only an aanmelding may open it",
    )
    yield policy(
        "policy_unknown_purpose", "purpose_not_allowed", "coord", "roddel", ["caw"], screening
    )
    yield policy(
        "policy_sender_role_not_allowed",
        "purpose_not_allowed",
        "caw",
        "screening_vraag",
        ["clb"],
        screening,
    )
    yield policy(
        "policy_hub_operator_sends",
        "purpose_not_allowed",
        "hub-operator",
        "screening_vraag",
        ["caw"],
        screening,
    )
    yield policy(
        "policy_recipient_role_not_allowed",
        "recipient_not_allowed",
        "coord",
        "screening_vraag",
        ["dpo"],
        screening,
    )
    yield policy(
        "policy_recipient_not_member",
        "recipient_not_allowed",
        "coord",
        "screening_vraag",
        ["ocmw"],
        screening,
        comment="removed or never added to the case: cut off from what follows",
    )
    yield policy(
        "policy_recipient_not_enrolled",
        "recipient_not_allowed",
        "coord",
        "screening_vraag",
        ["revoked-service"],
        screening,
    )
    yield policy(
        "policy_case_state_forbids",
        "case_state_forbids",
        "coord",
        "screening_vraag",
        ["caw"],
        _case("afgesloten"),
    )
    fiche = _case("besproken")
    yield policy(
        "policy_ok_terugkoppelingsfiche",
        "ok",
        "coord",
        "terugkoppelingsfiche",
        ["io-politie"],
        fiche,
        meeting_ref=MEETING_REF,
        cosigners=["caw", "clb", "coord", "io-politie"],
    )
    yield policy(
        "policy_terugkoppelingsfiche_missing_cosigner",
        "cosignature_invalid",
        "coord",
        "terugkoppelingsfiche",
        ["io-politie"],
        fiche,
        meeting_ref=MEETING_REF,
        cosigners=["caw", "coord", "io-politie"],
        comment="clb was present and did not co-sign",
    )
    yield policy(
        "policy_terugkoppelingsfiche_to_a_service",
        "recipient_not_allowed",
        "coord",
        "terugkoppelingsfiche",
        ["caw"],
        fiche,
        meeting_ref=MEETING_REF,
        cosigners=["caw", "clb", "coord", "io-politie"],
    )
    question = encode_body(example_body("screening_vraag")).decode()
    yield policy(
        "policy_body_ok", "ok", "coord", "screening_vraag", ["caw"], screening, body=question
    )
    yield policy(
        "policy_body_unknown_field",
        "body_schema_violation",
        "coord",
        "screening_vraag",
        ["caw"],
        screening,
        body=question[:-1] + ',"diagnosis":"x"}',
    )
    yield policy(
        "policy_body_field_too_long",
        "body_schema_violation",
        "coord",
        "screening_vraag",
        ["caw"],
        screening,
        body=question.replace('"Voorbeeld"', '"' + "V" * 5000 + '"', 1),
    )
    yield policy(
        "policy_body_of_another_purpose",
        "body_schema_violation",
        "coord",
        "screening_vraag",
        ["caw"],
        screening,
        body=encode_body(example_body("afsluiting")).decode(),
    )


def case_vectors() -> Iterator[dict[str, Any]]:
    def case(
        name: str, expect: str, current: str, target: str, reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "kind": "case_transition",
            "name": name,
            "expect": expect,
            "current": current,
            "target": target,
            "reason": reason,
        }

    yield case("case_ok_screening", "ok", "signaal_ontvangen", "in_screening")
    yield case("case_ok_back_on_agenda", "ok", "traject_lopend", "geagendeerd")
    yield case("case_ok_close", "ok", "besproken", "afgesloten", "traject_afgerond")
    yield case("case_ok_reopen", "ok", "afgesloten", "in_screening")
    yield case("case_ok_erase", "ok", "afgesloten", "gewist")
    yield case("case_skips_screening", "illegal_transition", "signaal_ontvangen", "besproken")
    yield case("case_close_without_reason", "illegal_transition", "besproken", "afgesloten")
    yield case(
        "case_reason_without_closing", "illegal_transition", "in_screening", "geagendeerd", "andere"
    )
    yield case("case_leaves_gewist", "illegal_transition", "gewist", "in_screening")
    yield from case_ref_vectors()


def case_ref_vectors() -> Iterator[dict[str, Any]]:
    """Case references (spec §8.3): minted ones, and forms the hub refuses."""

    def ref(name: str, expect: str, text: str, random: bytes | None = None) -> dict[str, Any]:
        return {
            "kind": "case_ref",
            "name": name,
            "expect": expect,
            "case_ref": text,
            "random": None if random is None else random.hex(),
        }

    for label, drawn in (("counting", bytes(range(16))), ("random", det("case ref", 16))):
        yield ref(f"case_ref_ok_{label}", "ok", mint_case_ref(lambda _, d=drawn: d), drawn)
    minted = mint_case_ref(lambda _: det("case ref", 16))
    yield ref("case_ref_guessable", "malformed", "case-0001")
    yield ref("case_ref_short", "malformed", minted[:-1])
    yield ref("case_ref_long", "malformed", minted + "a")
    yield ref("case_ref_upper_case", "malformed", minted.upper())
    yield ref("case_ref_wrong_prefix", "malformed", "zaak-" + minted.removeprefix("case-"))
    yield ref("case_ref_not_base32", "malformed", minted[:-2] + "1" + minted[-1])
    # The last letter's two low bits must be zero: one spelling per 16 bytes.
    tail = "abcdefghijklmnopqrstuvwxyz234567"
    yield ref("case_ref_non_canonical", "malformed", minted[:-1] + tail[tail.index(minted[-1]) + 1])


def request_vectors(cell: Cell) -> Iterator[dict[str, Any]]:
    body = b'{"case_ref":"case-7k2m9q","members":["caw","clb"]}'
    target = RequestTarget("POST", "/v1/cases", "", body)
    signer = cell.identities["coord"]

    def sign(name: str, target: RequestTarget = target, hub: HubBinding = HUB) -> dict[str, str]:
        nonces = iter([det(name + " nonce", 16)])
        return sign_request(
            target, "coord", signer, hub=hub, now=NOW, random=lambda _n: next(nonces)
        )

    def vector(name: str, expect: str, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
        fields = {
            "method": "POST",
            "path": "/v1/cases",
            "query": "",
            "body": b64(body),
            "now": NOW + 10,
            **changes,
        }
        return {
            "kind": "request_signature",
            "name": name,
            "expect": expect,
            "cell": cell.inputs(),
            "origin": HUB.origin,
            "headers": headers,
            **fields,
        }

    good = sign("request_ok")
    yield vector("request_ok", "ok", good)
    yield vector(
        "request_body_changed", "bad_signature", good, body=b64(body.replace(b"clb", b"cgg"))
    )
    yield vector("request_path_changed", "bad_signature", good, path="/v1/cases/x")
    yield vector("request_method_changed", "bad_signature", good, method="PUT")
    yield vector("request_stale", "timestamp_out_of_window", good, now=NOW + MAX_CLOCK_SKEW + 1)
    yield vector(
        "request_nonce_reused",
        "replayed",
        good,
        seen_nonces=[("coord", good["Signature-Input"].split('nonce="')[1][:22])],
    )
    yield vector(
        "request_missing_signature",
        "malformed",
        {k: v for k, v in good.items() if k != "Signature"},
    )
    other = {**good, "Livcr-Participant": "caw"}
    yield vector(
        "request_other_participant",
        "unknown_sender",
        other,
        comment="the key id belongs to coord, not to the participant named",
    )
    query = RequestTarget("GET", "/v1/inbox", "after=0&limit=50", b"")
    signed_query = sign("request_query", query)
    yield vector(
        "request_query_ok",
        "ok",
        signed_query,
        method="GET",
        path="/v1/inbox",
        query="after=0&limit=50",
        body="",
    )
    yield vector(
        "request_query_changed",
        "bad_signature",
        signed_query,
        method="GET",
        path="/v1/inbox",
        query="after=0&limit=100",
        body="",
    )
    yield from _request_binding_vectors(sign, vector, target, good)


def _request_binding_vectors(
    sign: Callable[..., dict[str, str]],
    vector: Callable[..., dict[str, Any]],
    target: RequestTarget,
    good: dict[str, str],
) -> Iterator[dict[str, Any]]:
    """Which hub a request is for, and the exact forms of its headers (spec §11.1)."""
    for name, hub in (
        ("request_other_cell", HubBinding("cell-elsewhere", HUB.origin)),
        ("request_other_origin", HubBinding(CELL, "hub-b.example/livcr")),
    ):
        yield vector(
            name,
            "bad_signature",
            sign(name, target, hub),
            comment="signed by an enrolled participant, but for another hub: the verifier's"
            " cell and origin are in the signature base",
        )
    encoded = RequestTarget("GET", "/v1/cases/case%2D7k2m9q", "", b"")
    signed_encoded = sign("request_encoded_path", encoded)
    yield vector(
        "request_encoded_path_ok",
        "ok",
        signed_encoded,
        method="GET",
        path="/v1/cases/case%2D7k2m9q",
        body="",
        comment="@path is the path as sent, percent-encoding included",
    )
    yield vector(
        "request_encoded_path_decoded",
        "bad_signature",
        signed_encoded,
        method="GET",
        path="/v1/cases/case-7k2m9q",
        body="",
        comment="the same path percent-decoded is another @path",
    )
    upper = good["Signature-Input"].replace(
        good["Signature-Input"].split('keyid="')[1][:32],
        good["Signature-Input"].split('keyid="')[1][:32].upper(),
    )
    yield vector(
        "request_key_id_upper_case",
        "malformed",
        {**good, "Signature-Input": upper},
        comment="the key id is 32 lowercase hex digits",
    )
    digest = good["Content-Digest"]
    for name, value in (
        ("request_digest_two_members", digest + ", sha-512=:" + b64(bytes(64)) + ":"),
        ("request_digest_sha512", "sha-512=:" + b64(bytes(64)) + ":"),
        ("request_digest_spaced", digest.replace("=:", "= :", 1)),
    ):
        yield vector(
            name,
            "malformed",
            {**good, "Content-Digest": value},
            comment="Content-Digest must be exactly one sha-256 member",
        )
    yield vector(
        "request_participant_not_ident",
        "malformed",
        {**good, "Livcr-Participant": "Coord"},
        comment="the participant id must be an ident (§4.1)",
    )


AREAS: dict[str, str] = {
    "envelope": "Sealed envelopes: positives with intermediate values, one negative per "
    "receiver check (spec §6.6).",
    "statements": "Directory entries, revocations, prekey statements and key lookups (spec §5).",
    "keyfile": "Passphrase-protected secret-key files (spec §5.7).",
    "audit": "Checkpoints, log leaves, Merkle inclusion and consistency proofs (spec §10).",
    "policy": "Purpose policy decisions, the hub's and a gateway's (spec §7.3).",
    "cases": "Case state transitions (spec §8.2).",
    "request": "Signed HTTP requests to the hub (spec §11.1).",
    "bodies": BODY_DESCRIPTION,
    "documents": DOCUMENT_DESCRIPTION,
    "witness": WITNESS_DESCRIPTION,
}


PUBLISHED_DIR = Path(__file__).parent / "vectors"
PINS_NAME = "envelope-stanzas.json"


def generate(out_dir: Path) -> dict[str, bytes]:
    """Build every vector file; return {file name: bytes} without writing."""
    cell = Cell()
    published: dict[str, list[str]] = {}
    # The output folder's own pins if it has them, else the published ones: a regeneration
    # into an empty folder then reproduces specs/vectors byte for byte.
    for pins in (out_dir / PINS_NAME, PUBLISHED_DIR / PINS_NAME):
        if pins.exists():
            published = json.loads(pins.read_text())
            break
    wraps = PinnedWrap(cell, published)
    envelopes = EnvelopeVectors(cell, wraps)
    areas = {
        "envelope": [*envelopes.positives(), *envelopes.negatives(), *envelopes.times()],
        "statements": list(statement_vectors(cell)),
        "keyfile": list(keyfile_vectors(cell)),
        "audit": list(audit_vectors()),
        "policy": list(policy_vectors()),
        "cases": list(case_vectors()),
        "request": list(request_vectors(cell)),
        "bodies": list(body_vectors()),
        "documents": list(document_vectors(envelopes)),
        "witness": witness_vectors(),
    }
    files = {
        f"{area}.json": _dump({"area": area, "description": AREAS[area], "vectors": vectors})
        for area, vectors in areas.items()
    }
    files[PINS_NAME] = _dump(dict(sorted(wraps.stanzas.items())))
    return files


def _dump(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=False, ensure_ascii=True) + "\n").encode()


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else PUBLISHED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for file_name, data in generate(out_dir).items():
        (out_dir / file_name).write_bytes(data)
        print(f"wrote {out_dir / file_name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
