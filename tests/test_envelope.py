"""Sealing and opening envelopes: round trips, every receiver check of spec §6.6, streaming."""

from __future__ import annotations

import hashlib
import hmac
import sys
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.signing
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from factories import (
    CASE_REF,
    DAY,
    FICHE,
    MEETING_REF,
    NOW,
    PURPOSE,
    TTL,
    Cell,
    det_bytes,
    expect_error,
    flip,
    frame,
    resign,
    service_ids,
    split_envelope,
)

from livcr_exchange.constants import (
    CHUNK_BYTES,
    LABEL_BODY_HASH,
    LABEL_COMMITMENT,
    LABEL_ENVELOPE_SIGNATURE,
    LABEL_HEADER_CORE,
    LABEL_PAYLOAD_KEY,
    LABEL_WRAP_INFO,
    MAX_CLOCK_SKEW,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_LIFETIME,
    MAX_RECIPIENTS,
)
from livcr_exchange.envelope import (
    Cosignature,
    CosignBlock,
    CosignedFacts,
    Freshness,
    Header,
    HeaderCore,
    MessageSpec,
    SealParts,
    UnverifiedEnvelope,
    content_digest,
    cosign,
    open_stream,
    prekeys_valid_at,
    seal,
    seal_from_parts,
    seal_stream,
)
from livcr_exchange.envelope.framing import split_plaintext
from livcr_exchange.envelope.open import MAX_SEALED_BODY_BYTES
from livcr_exchange.envelope.seal import seal_from_parts_stream
from livcr_exchange.envelope.wrap import hpke_wrap
from livcr_exchange.errors import (
    CRYPTO_WIRE_REASON,
    AttachmentSizeMismatch,
    BadSignature,
    CommitmentMismatch,
    CosignatureInvalid,
    DigestMismatch,
    Expired,
    KeyNotValid,
    KeyRevoked,
    LivcrError,
    LoggedAtOutOfBounds,
    LowOrderShare,
    Malformed,
    NonCanonical,
    NotARecipient,
    Oversized,
    PayloadAuthFailed,
    PayloadTruncated,
    Replayed,
    StanzaInvalid,
    TimestampOutOfWindow,
    UnknownSender,
    UnsupportedVersion,
    UnwrapFailed,
)
from livcr_exchange.keys import PrekeyPublic, Suite, expand_xwing_seed
from livcr_exchange.replay import ReplayCache
from livcr_exchange.statements import PrekeyStatement

SEALED_CHUNK = CHUNK_BYTES + 16
SUITES = pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name.lower())
RECIPIENTS = {
    1: ("io-politie",),
    3: ("caw", "clb", "io-politie"),
    10: ("caw", "clb", "io-politie", *service_ids(7)),
}
BODY_SIZES = {
    "empty": 0,
    "small": 57,
    "exactly_64k": CHUNK_BYTES,
    "64k_plus_1": CHUNK_BYTES + 1,
    "about_200k": 200 * 1024 + 123,
}
LOW_ORDER_POINTS = [
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
]


@pytest.fixture(scope="module")
def cell() -> Cell:
    """coord, io-politie, caw, clb and svc-01..svc-07: enough for ten recipients."""
    return Cell.build(extra_services=7)


def sender_key(cell: Cell) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(cell.identity("coord").seed)


def decompose(envelope: bytes) -> tuple[Header, bytes, bytes]:
    header, body, signature = split_envelope(envelope)
    return Header.parse(header), body, signature


def rebuild(core: HeaderCore, stanzas: Iterable[bytes]) -> bytes:
    return Header.build(core, tuple(stanzas)).raw


def share_slice(suite: Suite) -> slice:
    enc = suite.enc_bytes
    return slice(enc - 32, enc)


# Round trips.
@SUITES
@pytest.mark.parametrize("count", list(RECIPIENTS))
def test_round_trip_to_every_recipient(cell: Cell, suite: Suite, count: int) -> None:
    recipients = RECIPIENTS[count]
    body = b'{"legal_ground":["wet_30_juli_2018"],"question":"known?"}'
    envelope = cell.seal_to(recipients, body, suite=suite)
    header, _, _ = decompose(envelope)
    assert header.core.recipient_ids() == tuple(sorted(recipients))
    assert len(header.stanzas) == count
    for recipient in recipients:
        opened = cell.open_as(recipient, envelope)
        assert opened.body == body
        assert opened.sender == cell["coord"].entry
        assert opened.purpose == PURPOSE
        assert opened.case_ref == CASE_REF
        assert opened.cosigners == frozenset()
        assert opened.message_id == header.core.message_id
    with expect_error(NotARecipient):
        cell.open_as("coord", envelope)


@SUITES
@pytest.mark.parametrize("size", BODY_SIZES.values(), ids=list(BODY_SIZES))
def test_round_trip_of_every_body_size(cell: Cell, suite: Suite, size: int) -> None:
    """``size`` is the plaintext's: the body JSON after its 4-byte length (§6.4)."""
    body = det_bytes(f"body {size}", max(size - 4, 0))
    envelope = cell.seal_to(RECIPIENTS[3], body, suite=suite)
    plain = len(body) + 4
    chunks = max(1, -(-plain // CHUNK_BYTES))
    _, sealed_body, _ = split_envelope(envelope)
    assert len(sealed_body) == plain + 16 * chunks
    for recipient in RECIPIENTS[3]:
        assert cell.open_as(recipient, envelope).body == body


def test_each_seal_draws_fresh_randomness(cell: Cell) -> None:
    first, _, _ = decompose(cell.seal_to(["caw"], b"same"))
    second, _, _ = decompose(cell.seal_to(["caw"], b"same"))
    assert first.core.message_id != second.core.message_id
    assert first.core.payload_nonce != second.core.payload_nonce
    assert first.core.commitment != second.core.commitment


def test_envelope_follows_the_spec_byte_for_byte(cell: Cell) -> None:
    """Recompute §6.2-§6.5 with hashlib, libsodium and pyca's HPKE directly, not the library."""
    parts = SealParts(det_bytes("mid", 16), NOW, NOW + TTL, det_bytes("ck", 32), det_bytes("n", 19))
    body = det_bytes("spec body", CHUNK_BYTES + 1000)
    spec = cell.spec(["caw", "clb"], suite=Suite.X25519)
    _, envelope = seal_from_parts(cell.identity("coord"), spec, parts, body)
    header, sealed, signature = split_envelope(envelope)

    def kh(key: bytes, label: bytes, data: bytes) -> bytes:
        return hashlib.blake2b(label + data, key=key, digest_size=32).digest()

    def h(label: bytes, data: bytes) -> bytes:
        return hashlib.blake2b(label + data, digest_size=32).digest()

    stanza_area = 2 * (2 + 80)
    core = header[:-stanza_area]
    assert core.startswith(b"LVCR\x02\x01" + parts.message_id)
    assert kh(parts.content_key, LABEL_COMMITMENT, parts.message_id) in core
    core_hash = h(LABEL_HEADER_CORE, core)
    for index, rid in enumerate(("caw", "clb")):
        start = len(core) + index * 82
        assert header[start : start + 2] == (80).to_bytes(2, "big")
        stanza = header[start + 2 : start + 82]
        info = LABEL_WRAP_INFO + core_hash + bytes((len(rid),)) + rid.encode()
        private = cell[rid].prekey_secrets[Suite.X25519].hpke_private()
        assert Suite.X25519.hpke.decrypt(stanza, private, info=info) == parts.content_key
    payload_key = kh(parts.content_key, LABEL_PAYLOAD_KEY, parts.message_id)
    plain = b""
    for index, offset in enumerate(range(0, len(sealed), SEALED_CHUNK)):
        last = offset + SEALED_CHUNK >= len(sealed)
        nonce = parts.payload_nonce + index.to_bytes(4, "big") + bytes((last,))
        plain += nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[offset : offset + SEALED_CHUNK], header, nonce, payload_key
        )
    assert plain == len(body).to_bytes(4, "big") + body
    body_hash = h(LABEL_BODY_HASH, len(sealed).to_bytes(8, "big") + sealed)
    message = LABEL_ENVELOPE_SIGNATURE + len(header).to_bytes(4, "big") + header + body_hash
    sender_key(cell).verify_key.verify(message, signature)


def _hpke_base_open(kem_id: int, shared_secret: bytes, info: bytes, ciphertext: bytes) -> bytes:
    """RFC 9180 base-mode key schedule with HKDF-SHA256 and ChaCha20-Poly1305, by hand."""
    suite_id = b"HPKE" + kem_id.to_bytes(2, "big") + b"\x00\x01\x00\x03"

    def extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        key = salt or bytes(32)
        return hmac.new(key, b"HPKE-v1" + suite_id + label + ikm, hashlib.sha256).digest()

    def expand(prk: bytes, label: bytes, info: bytes, size: int) -> bytes:
        labelled = size.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
        return hmac.new(prk, labelled + b"\x01", hashlib.sha256).digest()[:size]

    context = b"\x00" + extract(b"", b"psk_id_hash", b"") + extract(b"", b"info_hash", info)
    secret = extract(shared_secret, b"secret", b"")
    key, nonce = expand(secret, b"key", context, 32), expand(secret, b"base_nonce", context, 12)
    return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, b"")


def test_xwing_share_checked_is_the_kem_x25519_share(cell: Cell) -> None:
    """The low-order check (§6.3) must look where X-Wing keeps its X25519 share: decapsulate by
    hand with ``enc = ct_mlkem || ct_x25519`` and open the stanza with that split."""
    secret = cell["caw"].prekey_secrets[Suite.XWING]
    stanza = hpke_wrap(b"k" * 32, secret.public, b"info")
    share = stanza[share_slice(Suite.XWING)]
    assert share_slice(Suite.XWING) == slice(1088, 1120)
    kem, dh = expand_xwing_seed(secret.seed)
    ss_m = kem.decapsulate(stanza[:1088])
    ss_x = dh.exchange(x25519.X25519PublicKey.from_public_bytes(share))
    pk_x = dh.public_key().public_bytes_raw()
    shared = hashlib.sha3_256(ss_m + ss_x + share + pk_x + b"\\.//^\\").digest()
    assert _hpke_base_open(0x647A, shared, b"info", stanza[1120:]) == b"k" * 32


def test_hub_view_has_metadata_but_no_body(cell: Cell) -> None:
    envelope = cell.seal_to(RECIPIENTS[3], b"secret body")
    unverified = UnverifiedEnvelope.parse(envelope)
    assert unverified.sender_id == "coord"
    assert unverified.purpose == PURPOSE
    assert unverified.case_ref == CASE_REF
    assert unverified.recipient_ids == ("caw", "clb", "io-politie")
    assert unverified.size == len(envelope)
    assert unverified.to_bytes() == envelope
    assert len(unverified.message_id) == 16
    assert not hasattr(unverified, "body")
    assert b"secret body" not in envelope


# Receiver checks in order (§6.6), each with its code.
COARSE = [
    BadSignature,  # step 6
    CosignatureInvalid,  # step 8
    NotARecipient,  # step 10
    StanzaInvalid,  # step 11
    LowOrderShare,  # step 12
    UnwrapFailed,
    CommitmentMismatch,  # step 13
    PayloadAuthFailed,  # step 14
    PayloadTruncated,
    DigestMismatch,  # step 15
]
PRECISE = [Malformed, NonCanonical, UnsupportedVersion, Oversized]  # steps 1-4
PRECISE += [UnknownSender, KeyRevoked, KeyNotValid, TimestampOutOfWindow, Expired]  # steps 5, 7


@pytest.mark.parametrize("error", COARSE, ids=lambda e: e.code)
def test_crypto_failures_share_one_coarse_wire_reason(error: type[LivcrError]) -> None:
    assert error.crypto
    assert error("precise detail for our log").wire_reason == CRYPTO_WIRE_REASON


@pytest.mark.parametrize("error", PRECISE, ids=lambda e: e.code)
def test_other_refusals_keep_their_precise_wire_reason(error: type[LivcrError]) -> None:
    assert not error.crypto
    assert error("precise detail").wire_reason == "precise detail"


def test_not_a_recipient(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    with expect_error(NotARecipient) as caught:
        cell.open_as("clb", envelope)
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON


@SUITES
def test_unknown_prekey_is_stanza_invalid(cell: Cell, suite: Suite) -> None:
    envelope = cell.seal_to(["caw"], suite=suite)
    other_suite = next(s for s in Suite if s is not suite)
    held_elsewhere = cell["caw"].prekey_secrets[other_suite]
    for prekeys in ({}, cell["clb"].secrets_by_id(), {held_elsewhere.key_id: held_elsewhere}):
        with expect_error(StanzaInvalid):
            cell.open_as("caw", envelope, prekeys=prekeys)


@SUITES
@pytest.mark.parametrize("delta", [-1, 1, -48], ids=["short", "long", "no_wrapped_key"])
def test_wrong_stanza_length_is_stanza_invalid(cell: Cell, suite: Suite, delta: int) -> None:
    header, body, _ = decompose(cell.seal_to(["caw", "clb"], suite=suite))
    stanza = header.stanzas[1]
    changed = stanza[:delta] if delta < 0 else stanza + b"\x00" * delta
    tampered = rebuild(header.core, (header.stanzas[0], changed))
    with expect_error(StanzaInvalid):
        cell.open_as("caw", resign(cell.identity("coord"), tampered, body))


def test_stanza_of_the_other_suite_is_stanza_invalid(cell: Cell) -> None:
    header, body, _ = decompose(cell.seal_to(["caw"], suite=Suite.XWING))
    x25519_header, _, _ = decompose(cell.seal_to(["caw"], suite=Suite.X25519))
    tampered = rebuild(header.core, x25519_header.stanzas)
    with expect_error(StanzaInvalid):
        cell.open_as("caw", resign(cell.identity("coord"), tampered, body))


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_tampered_signature(cell: Cell, index: int) -> None:
    header, body, signature = split_envelope(cell.seal_to(["caw"]))
    with expect_error(BadSignature) as caught:
        cell.open_as("caw", frame(header, body, flip(signature, index)))
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON
    with expect_error(BadSignature):
        cell.open_as("caw", frame(header, body, bytes(64)))


def test_signature_by_another_member_is_bad_signature(cell: Cell) -> None:
    header, body, _ = split_envelope(cell.seal_to(["caw"]))
    with expect_error(BadSignature):
        cell.open_as("caw", resign(cell.identity("clb"), header, body))


CoreChange = Callable[[HeaderCore], HeaderCore]
CORE_CHANGES: dict[str, CoreChange] = {
    "purpose": lambda c: replace(c, purpose="aanmelding"),
    "case_ref": lambda c: replace(c, case_ref="case-other"),
    "timestamp": lambda c: replace(c, timestamp=c.timestamp - 1),
    "expires_at": lambda c: replace(c, expires_at=c.expires_at + DAY),
    "message_id": lambda c: replace(c, message_id=flip(c.message_id, 0)),
    "payload_nonce": lambda c: replace(c, payload_nonce=flip(c.payload_nonce, 0)),
    "commitment": lambda c: replace(c, commitment=flip(c.commitment, 0)),
    "meeting_added": lambda c: replace(c, meeting_ref=MEETING_REF),
    "cosign_added": lambda c: replace(
        c,
        meeting_ref=MEETING_REF,
        cosign=CosignBlock(bytes(32), NOW, (Cosignature("caw", bytes(16), bytes(64)),)),
    ),
}


@pytest.mark.parametrize("change", CORE_CHANGES.values(), ids=list(CORE_CHANGES))
def test_tampered_header_field_is_bad_signature(cell: Cell, change: CoreChange) -> None:
    header, body, signature = decompose(cell.seal_to(["caw", "clb"]))
    tampered = rebuild(change(header.core), header.stanzas)
    with expect_error(BadSignature):
        cell.open_as("caw", frame(tampered, body, signature))


def drop_last_recipient(header: Header) -> bytes:
    core = replace(header.core, recipients=header.core.recipients[:-1])
    return rebuild(core, header.stanzas[:-1])


def test_tampered_recipient_list_is_bad_signature(cell: Cell) -> None:
    header, body, signature = decompose(cell.seal_to(RECIPIENTS[3]))
    with expect_error(BadSignature):
        cell.open_as("caw", frame(drop_last_recipient(header), body, signature))
    rebound = replace(header.core.recipients[0], prekey_id=bytes(16))
    core = replace(header.core, recipients=(rebound, *header.core.recipients[1:]))
    with expect_error(BadSignature):
        cell.open_as("clb", frame(rebuild(core, header.stanzas), body, signature))


@pytest.mark.parametrize(
    "change",
    [CORE_CHANGES[k] for k in ("purpose", "case_ref", "timestamp", "expires_at", "payload_nonce")],
    ids=["purpose", "case_ref", "timestamp", "expires_at", "payload_nonce"],
)
@SUITES
def test_resigned_tampered_header_does_not_unwrap(
    cell: Cell, suite: Suite, change: CoreChange
) -> None:
    """A sender can sign anything, but the stanza's HPKE info binds the original header core."""
    header, body, _ = decompose(cell.seal_to(["caw", "clb"], suite=suite))
    tampered = rebuild(change(header.core), header.stanzas)
    with expect_error(UnwrapFailed) as caught:
        cell.open_as("caw", resign(cell.identity("coord"), tampered, body))
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON


@SUITES
def test_resigned_recipient_list_does_not_unwrap(cell: Cell, suite: Suite) -> None:
    header, body, _ = decompose(cell.seal_to(RECIPIENTS[3], suite=suite))
    with expect_error(UnwrapFailed):
        cell.open_as("caw", resign(cell.identity("coord"), drop_last_recipient(header), body))


@SUITES
def test_stanza_moved_to_another_recipient_does_not_unwrap(cell: Cell, suite: Suite) -> None:
    """caw and clb share one prekey, so swapping their stanzas leaves the header core unchanged:
    only the recipient id in ``info`` tells the stanzas apart."""
    shared = cell["caw"].prekey(suite)
    spec = replace(
        cell.spec(["caw", "clb"], suite=suite), recipients={"caw": shared, "clb": shared}
    )
    envelope = seal(cell.identity("coord"), spec, b"body", now=NOW, ttl=TTL, random=cell.random)
    caw_secrets = cell["caw"].secrets_by_id()
    assert cell.open_as("clb", envelope, prekeys=caw_secrets).body == b"body"
    header, body, _ = decompose(envelope)
    swapped = rebuild(header.core, reversed(header.stanzas))
    assert Header.parse(swapped).core_hash == header.core_hash
    for recipient in ("caw", "clb"):
        with expect_error(UnwrapFailed):
            cell.open_as(
                recipient, resign(cell.identity("coord"), swapped, body), prekeys=caw_secrets
            )


@SUITES
def test_stanza_transplanted_from_another_envelope_does_not_unwrap(
    cell: Cell, suite: Suite
) -> None:
    header, body, _ = decompose(cell.seal_to(["caw"], suite=suite))
    donor, _, _ = decompose(cell.seal_to(["caw"], suite=suite))
    tampered = rebuild(header.core, donor.stanzas)
    with expect_error(UnwrapFailed):
        cell.open_as("caw", resign(cell.identity("coord"), tampered, body))


@SUITES
def test_tampered_stanza_bytes_do_not_unwrap(cell: Cell, suite: Suite) -> None:
    header, body, _ = decompose(cell.seal_to(["caw"], suite=suite))
    stanza = header.stanzas[0]
    for index in (0, suite.enc_bytes - 1, suite.enc_bytes, len(stanza) - 1):
        tampered = rebuild(header.core, (flip(stanza, index),))
        with expect_error(UnwrapFailed):
            cell.open_as("caw", resign(cell.identity("coord"), tampered, body))


@SUITES
@pytest.mark.parametrize("high_bit", [False, True], ids=["", "bit255"])
@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=[f"p{i}" for i in range(7)])
def test_low_order_share(cell: Cell, suite: Suite, point: bytes, high_bit: bool) -> None:
    header, body, _ = decompose(cell.seal_to(["caw"], suite=suite))
    share = bytearray(point)
    if high_bit:
        share[31] |= 0x80
    stanza = bytearray(header.stanzas[0])
    stanza[share_slice(suite)] = share
    tampered = rebuild(header.core, (bytes(stanza),))
    with expect_error(LowOrderShare) as caught:
        cell.open_as("caw", resign(cell.identity("coord"), tampered, body))
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON


@SUITES
def test_commitment_mismatch(cell: Cell, suite: Suite) -> None:
    """A sender gives clb another content key than the one committed to: caw still opens."""
    parts = cell.parts()
    other_key = det_bytes("another content key", 32)

    def wrap(content_key: bytes, prekey: PrekeyPublic, info: bytes) -> bytes:
        if prekey.key_id == cell["clb"].prekey(suite).key_id:
            return hpke_wrap(other_key, prekey, info)
        return hpke_wrap(content_key, prekey, info)

    spec = cell.spec(["caw", "clb"], suite=suite)
    _, envelope = seal_from_parts(cell.identity("coord"), spec, parts, b"one body", wrap)
    assert cell.open_as("caw", envelope).body == b"one body"
    with expect_error(CommitmentMismatch) as caught:
        cell.open_as("clb", envelope)
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON


def sealed_parts(cell: Cell, size: int, suite: Suite = Suite.X25519) -> tuple[bytes, bytes, bytes]:
    """An envelope whose plaintext (the body JSON after its 4-byte length) is ``size`` bytes."""
    body = det_bytes(f"b{size}", max(size - 4, 0))
    return split_envelope(cell.seal_to(["caw"], body, suite=suite))


@pytest.mark.parametrize(
    "position",
    [0, 100, SEALED_CHUNK - 1, SEALED_CHUNK, 2 * SEALED_CHUNK + 5, -1],
    ids=["first", "inside", "first_tag", "second_chunk", "third_chunk", "last_tag"],
)
def test_body_byte_flipped_and_resigned(cell: Cell, position: int) -> None:
    header, body, _ = sealed_parts(cell, 2 * CHUNK_BYTES + 500)
    with expect_error(PayloadAuthFailed) as caught:
        cell.open_as("caw", resign(cell.identity("coord"), header, flip(body, position)))
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON


def test_empty_body_tag_flipped(cell: Cell) -> None:
    header, body, _ = sealed_parts(cell, 0)
    assert len(body) == 4 + 16  # the smallest plaintext: an empty body JSON's length
    with expect_error(PayloadAuthFailed):
        cell.open_as("caw", resign(cell.identity("coord"), header, flip(body, 7)))


@pytest.mark.parametrize(
    "size", [CHUNK_BYTES + 1, 2 * CHUNK_BYTES, 2 * CHUNK_BYTES + 700], ids=["2", "2_full", "3"]
)
def test_last_chunk_dropped_and_resigned(cell: Cell, size: int) -> None:
    header, body, _ = sealed_parts(cell, size)
    cut = body[: (len(body) - 1) // SEALED_CHUNK * SEALED_CHUNK]
    assert 0 < len(cut) < len(body)
    with expect_error(PayloadTruncated):
        cell.open_as("caw", resign(cell.identity("coord"), header, cut))


def test_final_chunk_repeated_and_resigned(cell: Cell) -> None:
    """Extension: the chunk flagged final is no longer last by position."""
    header, body, _ = sealed_parts(cell, 2 * CHUNK_BYTES)
    extended = body + body[SEALED_CHUNK:]
    with expect_error(PayloadTruncated):
        cell.open_as("caw", resign(cell.identity("coord"), header, extended))


def test_chunks_swapped_and_resigned(cell: Cell) -> None:
    header, body, _ = sealed_parts(cell, 3 * CHUNK_BYTES)
    swapped = body[SEALED_CHUNK : 2 * SEALED_CHUNK] + body[:SEALED_CHUNK] + body[2 * SEALED_CHUNK :]
    with expect_error(PayloadAuthFailed):
        cell.open_as("caw", resign(cell.identity("coord"), header, swapped))


@pytest.mark.parametrize(
    ("sealed_length", "error"),
    [
        (0, Malformed),
        (15, Malformed),
        (SEALED_CHUNK + 15, Malformed),
        (SEALED_CHUNK + 16, NonCanonical),
        (2 * SEALED_CHUNK + 16, NonCanonical),
    ],
    ids=["empty", "short_tag", "short_final_chunk", "empty_final_chunk", "empty_third_chunk"],
)
def test_impossible_sealed_body_lengths(
    cell: Cell, sealed_length: int, error: type[LivcrError]
) -> None:
    header, _, _ = sealed_parts(cell, 10)
    body = det_bytes("filler", sealed_length)
    with expect_error(error):
        cell.open_as("caw", resign(cell.identity("coord"), header, body))


# Freshness (§9.1).
def test_expired(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"], now=NOW, ttl=DAY)
    assert cell.open_as("caw", envelope, now=NOW + DAY - 1).body
    with expect_error(Expired) as caught:
        cell.open_as("caw", envelope, now=NOW + DAY)
    assert caught.value.wire_reason != CRYPTO_WIRE_REASON
    with expect_error(Expired):
        cell.open_as("caw", envelope, now=NOW + 30 * DAY)


def test_future_timestamp(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"], now=NOW)
    assert cell.open_as("caw", envelope, now=NOW - MAX_CLOCK_SKEW).body
    with expect_error(TimestampOutOfWindow):
        cell.open_as("caw", envelope, now=NOW - MAX_CLOCK_SKEW - 1)


def test_stale_at_submission_but_fine_on_delivery(cell: Cell) -> None:
    unverified = UnverifiedEnvelope.parse(cell.seal_to(["caw"], now=NOW))

    def verify(now: int, freshness: Freshness) -> None:
        # The hub judges at its own now; a recipient at the hub's log time (spec §9.2).
        judged_at = now if freshness is Freshness.SUBMISSION else NOW + 60
        unverified.verify(cell.directory, now=now, judged_at=judged_at, freshness=freshness)

    verify(NOW + MAX_CLOCK_SKEW, Freshness.SUBMISSION)
    verify(NOW - MAX_CLOCK_SKEW, Freshness.SUBMISSION)
    with expect_error(TimestampOutOfWindow):
        verify(NOW + MAX_CLOCK_SKEW + 1, Freshness.SUBMISSION)
    with expect_error(TimestampOutOfWindow):
        verify(NOW - MAX_CLOCK_SKEW - 1, Freshness.SUBMISSION)
    verify(NOW + 5 * DAY, Freshness.DELIVERY)
    with expect_error(Expired):
        verify(NOW + TTL, Freshness.DELIVERY)


def test_signature_is_checked_before_freshness(cell: Cell) -> None:
    header, body, signature = split_envelope(cell.seal_to(["caw"], ttl=DAY))
    with expect_error(BadSignature):
        cell.open_as("caw", frame(header, body, flip(signature, 0)), now=NOW + 2 * DAY)


# Replay (§9.3).
def test_replay_is_refused(cell: Cell) -> None:
    envelope = cell.seal_to(["caw", "clb"])
    cache = ReplayCache()
    with expect_error(NotARecipient):
        cell.open_as("io-politie", envelope, replay=cache)
    assert len(cache) == 0  # a refused message is not remembered
    assert cell.open_as("caw", envelope, replay=cache).body
    with expect_error(Replayed):
        cell.open_as("caw", envelope, replay=cache)
    assert cell.open_as("clb", envelope, replay=ReplayCache()).body


def test_forgery_reusing_a_message_id_is_bad_signature_not_replayed(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    cache = ReplayCache()
    cell.open_as("caw", envelope, replay=cache)
    header, body, signature = split_envelope(envelope)
    with expect_error(BadSignature):
        cell.open_as("caw", frame(header, flip(body, 0), signature), replay=cache)


def test_replay_cache_forgets_only_after_expiry(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"], ttl=DAY)
    cache = ReplayCache()
    cell.open_as("caw", envelope, replay=cache, now=NOW + 10)
    with expect_error(Replayed):
        cell.open_as("caw", envelope, replay=cache, now=NOW + DAY - 1)
    with expect_error(Expired):
        cell.open_as("caw", envelope, replay=cache, now=NOW + DAY)


# Parsing (§6.6 steps 1-4).
@SUITES
def test_recipients_out_of_order_are_non_canonical(cell: Cell, suite: Suite) -> None:
    header, body, _ = decompose(cell.seal_to(RECIPIENTS[3], suite=suite))
    core = replace(header.core, recipients=tuple(reversed(header.core.recipients)))
    tampered = rebuild(core, reversed(header.stanzas))
    with expect_error(NonCanonical):
        cell.open_as("caw", resign(cell.identity("coord"), tampered, body))
    doubled = replace(header.core, recipients=(header.core.recipients[0],) * 3)
    with expect_error(NonCanonical):
        cell.open_as("caw", resign(cell.identity("coord"), rebuild(doubled, header.stanzas), body))


def test_header_over_the_limit_is_oversized(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    with expect_error(Oversized):
        cell.open_as("caw", (MAX_HEADER_BYTES + 1).to_bytes(4, "big") + envelope[4:])
    huge = frame(b"LVCR\x02\x02" + bytes(MAX_HEADER_BYTES - 5), bytes(16), bytes(64))
    with expect_error(Oversized):
        cell.open_as("caw", huge)
    with expect_error(Oversized):
        UnverifiedEnvelope.parse(huge)


def test_sealed_body_length_over_the_limit_is_oversized(cell: Cell) -> None:
    header, body, signature = split_envelope(cell.seal_to(["caw"]))
    claimed = (MAX_SEALED_BODY_BYTES + 1).to_bytes(8, "big")
    tampered = len(header).to_bytes(4, "big") + header + claimed + body + signature
    with expect_error(Oversized):
        cell.open_as("caw", tampered)


def test_frame_length_must_match(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    for changed in (envelope + b"\x00", envelope[:-1], envelope[:3], b""):
        with expect_error(Malformed):
            cell.open_as("caw", changed)


@pytest.mark.parametrize(
    ("offset", "value", "error"),
    [
        (4, 1, UnsupportedVersion),
        (4, 0, UnsupportedVersion),
        (4, 255, UnsupportedVersion),
        (5, 3, UnsupportedVersion),
        (5, 0, UnsupportedVersion),
        (0, ord("X"), Malformed),
    ],
    ids=["version_1", "version_0", "version_255", "suite_3", "suite_0", "magic"],
)
def test_version_suite_and_magic(
    cell: Cell, offset: int, value: int, error: type[LivcrError]
) -> None:
    header, body, _ = split_envelope(cell.seal_to(["caw"]))
    changed = header[:offset] + bytes((value,)) + header[offset + 1 :]
    with expect_error(error):
        cell.open_as("caw", resign(cell.identity("coord"), changed, body))


def test_trailing_byte_after_the_last_stanza_is_malformed(cell: Cell) -> None:
    header, body, _ = split_envelope(cell.seal_to(["caw"]))
    with expect_error(Malformed):
        cell.open_as("caw", resign(cell.identity("coord"), header + b"\x00", body))


def test_bad_cosign_flag_is_malformed(cell: Cell) -> None:
    header, body, _ = decompose(cell.seal_to(["caw"]))
    raw = header.raw
    flag_at = len(header.core.encode()) - (1 + len(header.core.recipients) * (1 + 3 + 16)) - 1
    assert raw[flag_at] == 0
    with expect_error(Malformed):
        cell.open_as("caw", resign(cell.identity("coord"), flip(raw, flag_at, 0x02), body))


# Trust (§6.6 step 5).
def test_revoked_sender(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    directory = cell.directory_with(revocations=[cell.revocation("coord", NOW + 30)])
    with expect_error(KeyRevoked) as caught:
        cell.open_as("caw", envelope, directory=directory, judged_at=NOW + 30)
    assert caught.value.wire_reason != CRYPTO_WIRE_REASON
    # Logged before the revocation: still valid, whenever it is delivered.
    opened = cell.open_as("caw", envelope, directory=directory, judged_at=NOW + 29, now=NOW + DAY)
    assert opened.sender == cell["coord"].entry


def test_sender_key_outside_its_window(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    entry = cell.entry("coord", not_before=NOW + 60, not_after=NOW + DAY)
    directory = cell.directory_with(entries=[entry], omit=["coord"])
    with expect_error(KeyNotValid):
        cell.open_as("caw", envelope, directory=directory, judged_at=NOW + 59)


def test_envelope_of_another_cell(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"], cell_id="cell-other")
    with expect_error(UnknownSender):
        cell.open_as("caw", envelope)


def test_sender_not_enrolled_or_using_another_key(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    with expect_error(UnknownSender):
        cell.open_as("caw", envelope, directory=cell.directory_with(omit=["coord"]))
    header, body, _ = decompose(envelope)
    borrowed = replace(header.core, sender_key_id=cell.identity("clb").key_id)
    forged = resign(cell.identity("clb"), rebuild(borrowed, header.stanzas), body)
    with expect_error(UnknownSender):
        cell.open_as("caw", forged)


def test_sender_key_is_checked_before_the_signature(cell: Cell) -> None:
    header, body, signature = split_envelope(cell.seal_to(["caw"]))
    directory = cell.directory_with(revocations=[cell.revocation("coord", NOW)])
    with expect_error(KeyRevoked):
        cell.open_as("caw", frame(header, body, flip(signature, 3)), directory=directory)


# Co-signatures (§7.4).
FICHE_BODY = b'{"nonce":"5f2c","fields":{"status":"besproken"}}'
COSIGNERS = ("caw", "clb", "coord")


def fiche(cell: Cell, block: CosignBlock, body: bytes = FICHE_BODY) -> bytes:
    return cell.seal_to(["io-politie"], body, purpose=FICHE, cosign_block=block)


def test_valid_cosignatures_yield_the_cosigners(cell: Cell) -> None:
    envelope = fiche(cell, cell.cosign_block(FICHE_BODY, COSIGNERS))
    opened = cell.open_as("io-politie", envelope)
    assert opened.cosigners == frozenset(COSIGNERS)
    assert opened.body == FICHE_BODY
    verified = UnverifiedEnvelope.parse(envelope).verify(
        cell.directory, now=NOW, judged_at=NOW, freshness=Freshness.SUBMISSION
    )
    assert verified.cosigners == frozenset(COSIGNERS)


def forged_blocks(cell: Cell) -> dict[str, CosignBlock]:
    good = cell.cosign_block(FICHE_BODY, COSIGNERS)
    digest = good.content_digest

    facts = CosignedFacts(
        cell.cell_id, CASE_REF, MEETING_REF, FICHE, ("io-politie",), good.deadline
    )

    def signed_by(pid: str, signer: str, **context: Any) -> Cosignature:
        made = cosign(cell.identity(signer), pid, replace(facts, **context), digest)
        return replace(made, signer_key_id=cell.identity(pid).key_id)

    def with_first(item: Cosignature) -> CosignBlock:
        return replace(good, signatures=(item, *good.signatures[1:]))

    first = good.signatures[0]
    return {
        "flipped_signature": with_first(replace(first, signature=flip(first.signature, 0))),
        "signed_by_another_member": with_first(signed_by("caw", "clb")),
        "other_case": with_first(signed_by("caw", "caw", case_ref="case-other")),
        "other_meeting": with_first(signed_by("caw", "caw", meeting_ref="meeting-other")),
        "other_purpose": with_first(signed_by("caw", "caw", purpose="verslag_besluit")),
        "other_recipients": with_first(signed_by("caw", "caw", recipients=("caw", "io-politie"))),
        "other_deadline": with_first(signed_by("caw", "caw", deadline=good.deadline + 1)),
        "unknown_signer": replace(
            good, signatures=(*good.signatures, Cosignature("dpo", bytes(16), bytes(64)))
        ),
        "key_of_another_member": with_first(
            replace(first, signer_key_id=cell.identity("clb").key_id)
        ),
    }


@pytest.mark.parametrize(
    "defect",
    [
        "flipped_signature",
        "signed_by_another_member",
        "other_case",
        "other_meeting",
        "other_purpose",
        "other_recipients",
        "other_deadline",
        "unknown_signer",
        "key_of_another_member",
    ],
)
def test_forged_cosignature(cell: Cell, defect: str) -> None:
    envelope = fiche(cell, forged_blocks(cell)[defect])
    with expect_error(CosignatureInvalid) as caught:
        cell.open_as("io-politie", envelope)
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON


def test_cosigner_revoked_before_the_judging_time(cell: Cell) -> None:
    envelope = fiche(cell, cell.cosign_block(FICHE_BODY, COSIGNERS))
    directory = cell.directory_with(revocations=[cell.revocation("clb", NOW)])
    with expect_error(CosignatureInvalid):
        cell.open_as("io-politie", envelope, directory=directory, judged_at=NOW)
    assert cell.open_as("io-politie", envelope, directory=directory, judged_at=NOW - 1).cosigners


def test_cosigners_out_of_order_are_non_canonical(cell: Cell) -> None:
    good = cell.cosign_block(FICHE_BODY, COSIGNERS)
    unsorted = replace(good, signatures=tuple(reversed(good.signatures)))
    with pytest.raises(Malformed, match="strictly ascending"):
        fiche(cell, unsorted)  # the sender refuses to emit it ...
    sealed = UnverifiedEnvelope.parse(fiche(cell, good))
    header = Header.build(replace(sealed.header.core, cosign=unsorted), sealed.header.stanzas)
    _, body, _ = split_envelope(sealed.to_bytes())
    with expect_error(NonCanonical):  # ... and a receiver rejects it when someone else does
        cell.open_as("io-politie", resign(cell.identity("coord"), header.raw, body))


def test_body_not_matching_the_cosigned_digest(cell: Cell) -> None:
    block = cell.cosign_block(b'{"nonce":"other"}', COSIGNERS)
    envelope = fiche(cell, block)
    with expect_error(DigestMismatch) as caught:
        cell.open_as("io-politie", envelope)
    assert caught.value.wire_reason == CRYPTO_WIRE_REASON
    assert block.content_digest != content_digest(FICHE_BODY)


# Sender-side checks (§6.2, §6.5).
def test_seal_refuses_bad_specs(cell: Cell) -> None:
    identity = cell.identity("coord")

    def attempt(spec: MessageSpec, ttl: int = TTL) -> None:
        seal(identity, spec, b"x", now=NOW, ttl=ttl, random=cell.random)

    with expect_error(Malformed):
        attempt(cell.spec([]))
    mixed = cell.spec(["caw", "clb"])
    mixed_recipients = {**mixed.recipients, "clb": cell["clb"].prekey(Suite.X25519)}
    with expect_error(Malformed):
        attempt(replace(mixed, recipients=mixed_recipients))
    with expect_error(Malformed):
        attempt(cell.spec(["caw"]), ttl=0)
    with expect_error(Malformed):
        attempt(cell.spec(["caw"]), ttl=MAX_MESSAGE_LIFETIME + 1)
    attempt(cell.spec(["caw"]), ttl=MAX_MESSAGE_LIFETIME)
    too_many = {f"r{i:02d}": cell["caw"].prekey(Suite.X25519) for i in range(MAX_RECIPIENTS + 1)}
    with expect_error(Malformed):
        attempt(replace(cell.spec(["caw"], suite=Suite.X25519), recipients=too_many))


def test_sixty_four_recipients_fit_in_a_header(cell: Cell) -> None:
    prekey = cell["caw"].prekey(Suite.XWING)
    spec = replace(
        cell.spec(["caw"]), recipients={f"r{i:02d}": prekey for i in range(MAX_RECIPIENTS)}
    )
    envelope = seal(cell.identity("coord"), spec, b"x", now=NOW, ttl=TTL, random=cell.random)
    header, _, _ = decompose(envelope)
    assert len(header.stanzas) == MAX_RECIPIENTS
    assert len(header.raw) <= MAX_HEADER_BYTES
    opened = cell.open_as("r00", envelope, prekeys=cell["caw"].secrets_by_id())
    assert opened.body == b"x"


def test_prekeys_valid_at(cell: Cell) -> None:
    statements = {pid: cell[pid].prekey_statements[Suite.XWING] for pid in ("caw", "clb")}
    chosen = prekeys_valid_at(statements, NOW)
    assert chosen == {pid: cell[pid].prekey(Suite.XWING) for pid in ("caw", "clb")}
    late = statements["caw"].not_after
    with expect_error(KeyNotValid):
        prekeys_valid_at(statements, late)
    with expect_error(KeyNotValid):
        prekeys_valid_at(statements, statements["caw"].not_before - 1)
    misfiled: dict[str, PrekeyStatement] = {"clb": statements["caw"]}
    with expect_error(Malformed):
        prekeys_valid_at(misfiled, NOW)


# Streaming (§6.6, last paragraph).
STREAM_BYTES = 5 * 1024 * 1024
MEMORY_BUDGET = 1536 * 1024


def generated_body(size: int, piece: int = 50_000) -> Iterator[bytes]:
    produced, index = 0, 0
    while produced < size:
        count = min(piece, size - produced)
        yield hashlib.shake_256(index.to_bytes(4, "big")).digest(count)
        produced, index = produced + count, index + 1


def file_pieces(path: Path, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    with path.open("rb") as source:
        while piece := source.read(size):
            yield piece


def peak_extra_memory(run: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - baseline


def test_stream_five_mebibytes_in_constant_memory(cell: Cell, tmp_path: Path) -> None:
    path = tmp_path / "envelope.bin"
    expected = hashlib.sha256()
    for piece in generated_body(STREAM_BYTES):
        expected.update(piece)
    head = (2).to_bytes(4, "big") + b"{}"  # the body JSON before the attachment (§6.4)

    def write() -> None:
        pieces = seal_stream(
            cell.identity("coord"),
            cell.spec(["caw", "clb"]),
            b"{}",
            [(STREAM_BYTES, generated_body(STREAM_BYTES))],
            now=NOW,
            ttl=TTL,
            random=cell.random,
        )
        with path.open("wb") as out:
            for piece in pieces:
                out.write(piece)

    received = hashlib.sha256()

    def read() -> None:
        plaintext = open_stream(
            lambda: file_pieces(path),
            recipient_id="clb",
            prekeys=cell["clb"].secrets_by_id(),
            directory=cell.directory,
            now=NOW + 60,
            judged_at=NOW + 30,
        )
        first = next(plaintext)
        assert first[:6] == head
        received.update(first[6:])
        for plain in plaintext:
            received.update(plain)

    assert peak_extra_memory(write) < MEMORY_BUDGET
    assert path.stat().st_size > STREAM_BYTES
    assert peak_extra_memory(read) < MEMORY_BUDGET
    assert received.digest() == expected.digest()
    # The streamed envelope is an ordinary envelope.
    opened = cell.open_as("caw", path.read_bytes())
    assert opened.body == b"{}"
    assert hashlib.sha256(opened.attachment_data).digest() == expected.digest()


def pieces_of(data: bytes, size: int = 7_777) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def stream_open(cell: Cell, passes: list[bytes], recipient: str = "caw") -> bytes:
    """open_stream over a source whose n-th read returns ``passes[n]``."""
    reads = iter(passes)
    plaintext = b"".join(
        open_stream(
            lambda: pieces_of(next(reads)),
            recipient_id=recipient,
            prekeys=cell[recipient].secrets_by_id(),
            directory=cell.directory,
            now=NOW + 60,
            judged_at=NOW + 30,
        )
    )
    return split_plaintext(plaintext)[0]


@pytest.mark.parametrize("size", [0, 10, CHUNK_BYTES, 3 * CHUNK_BYTES + 3])
def test_stream_matches_in_memory_open(cell: Cell, size: int) -> None:
    body = det_bytes(f"stream {size}", size)
    envelope = cell.seal_to(["caw"], body)
    assert stream_open(cell, [envelope, envelope]) == body == cell.open_as("caw", envelope).body


def test_streamed_and_in_memory_sealing_agree(cell: Cell) -> None:
    """The same parts and stanzas give the same bytes, however the body is cut into pieces."""
    data = det_bytes("same parts", 2 * CHUNK_BYTES + 9)
    stanzas: dict[bytes, bytes] = {}

    def pinned(content_key: bytes, prekey: PrekeyPublic, info: bytes) -> bytes:
        return stanzas.setdefault(info, hpke_wrap(content_key, prekey, info))

    spec, parts, identity = cell.spec(["caw"]), cell.parts(), cell.identity("coord")
    _, whole = seal_from_parts(identity, spec, parts, b"{}", pinned)
    assert b"".join(seal_from_parts_stream(identity, spec, parts, b"{}", (), pinned)[1]) == whole
    _, one = seal_from_parts_stream(identity, spec, parts, b"{}", [(len(data), [data])], pinned)
    one_piece = b"".join(one)
    for size in (1000, CHUNK_BYTES, CHUNK_BYTES + 1, len(data)):
        _, pieces = seal_from_parts_stream(
            identity, spec, parts, b"{}", [(len(data), pieces_of(data, size))], pinned
        )
        assert b"".join(pieces) == one_piece
    assert cell.open_as("caw", one_piece).attachment_data == data


def test_seal_stream_refuses_an_attachment_of_another_length(cell: Cell) -> None:
    for declared in (99, 101):
        with expect_error(AttachmentSizeMismatch):
            b"".join(
                seal_stream(
                    cell.identity("coord"),
                    cell.spec(["caw"]),
                    b"{}",
                    [(declared, [b"x" * 100])],
                    now=NOW,
                    ttl=TTL,
                    random=cell.random,
                )
            )


def same_header_other_body(cell: Cell, size: int) -> tuple[bytes, bytes]:
    """Two envelopes with identical headers (same parts, pinned stanzas) and different bodies."""
    stanzas: dict[bytes, bytes] = {}

    def pinned(content_key: bytes, prekey: PrekeyPublic, info: bytes) -> bytes:
        return stanzas.setdefault(info, hpke_wrap(content_key, prekey, info))

    spec, parts = cell.spec(["caw"]), cell.parts()
    identity = cell.identity("coord")
    _, first = seal_from_parts(identity, spec, parts, det_bytes("first", size), pinned)
    _, second = seal_from_parts(identity, spec, parts, det_bytes("second", size), pinned)
    assert split_envelope(first)[0] == split_envelope(second)[0]
    return first, second


def test_stream_source_changing_between_passes_is_rejected(cell: Cell) -> None:
    size = 2 * CHUNK_BYTES + 50
    first, swapped = same_header_other_body(cell, size)
    header, body, signature = split_envelope(first)
    changes: dict[str, tuple[bytes, type[LivcrError]]] = {
        "other_body_same_header": (swapped, Malformed),
        "other_envelope": (cell.seal_to(["caw"], det_bytes("first", size)), Malformed),
        "other_signature": (frame(header, body, flip(signature, 0)), Malformed),
        "truncated": (first[:-1], Malformed),
        "trailing_byte": (first + b"\x00", Malformed),
        "body_byte_flipped": (frame(header, flip(body, 5), signature), PayloadAuthFailed),
    }
    for second_pass, error in changes.values():
        with expect_error(error):
            stream_open(cell, [first, second_pass])
    assert stream_open(cell, [first, first]) == det_bytes("first", size)


def test_stream_runs_the_same_checks(cell: Cell) -> None:
    envelope = cell.seal_to(["caw"])
    header, body, signature = split_envelope(envelope)
    with expect_error(NotARecipient):
        stream_open(cell, [envelope, envelope], recipient="clb")
    with expect_error(BadSignature):
        stream_open(cell, [frame(header, body, flip(signature, 1))] * 2)
    with expect_error(Malformed):
        stream_open(cell, [envelope[:-1]] * 2)
    with expect_error(Malformed):
        stream_open(cell, [envelope + b"\x00"] * 2)
    with expect_error(Oversized):
        stream_open(cell, [(MAX_HEADER_BYTES + 1).to_bytes(4, "big") + envelope[4:]] * 2)
    header_only = resign(cell.identity("coord"), header, b"")
    with expect_error(Malformed):
        stream_open(cell, [header_only] * 2)


def test_stream_checks_the_cosigned_digest_at_the_end(cell: Cell) -> None:
    block = cell.cosign_block(b'{"nonce":"other"}', COSIGNERS)
    envelope = fiche(cell, block)
    with expect_error(DigestMismatch):
        stream_open(cell, [envelope, envelope], recipient="io-politie")
    good = fiche(cell, cell.cosign_block(FICHE_BODY, COSIGNERS))
    assert stream_open(cell, [good, good], recipient="io-politie") == FICHE_BODY


def test_stream_detects_truncation_and_extension(cell: Cell) -> None:
    header, body, _ = sealed_parts(cell, 2 * CHUNK_BYTES + 10, Suite.XWING)
    identity = cell.identity("coord")
    dropped = resign(identity, header, body[: 2 * SEALED_CHUNK])
    with expect_error(PayloadTruncated):
        stream_open(cell, [dropped, dropped])
    extended = resign(identity, header, body[:SEALED_CHUNK] + body)
    with expect_error(PayloadAuthFailed):
        stream_open(cell, [extended, extended])


def test_seal_emits_only_envelopes_receivers_can_parse(cell: Cell) -> None:
    """Whatever ``seal`` returns must parse (§6.2): a co-signature block with no signatures, more
    than MAX_COSIGNERS, or signers out of order is refused by every receiver, so the sender side
    must refuse it too (or canonicalise it) instead of emitting it."""
    good = cell.cosign_block(FICHE_BODY, COSIGNERS)
    blocks = {
        "no_signatures": replace(good, signatures=()),
        "unsorted": replace(good, signatures=tuple(reversed(good.signatures))),
        "duplicate_signer": replace(good, signatures=(good.signatures[0],) * 2),
        "too_many": replace(good, signatures=good.signatures * 11),
    }
    emitted = []
    for name, block in blocks.items():
        try:
            envelope = fiche(cell, block)
        except LivcrError:
            continue
        try:
            UnverifiedEnvelope.parse(envelope)
        except LivcrError as exc:
            emitted.append(f"{name}: {exc.code}")
    assert emitted == []


@pytest.mark.parametrize(
    ("timestamp", "expires_at"),
    [
        (NOW, NOW + MAX_MESSAGE_LIFETIME + 1),
        (NOW, 2**64 - 1),
        (NOW + 200, NOW + 100),
    ],
    ids=["lifetime_over_limit", "never_expires", "expires_before_timestamp"],
)
def test_receiver_enforces_the_header_time_window(
    cell: Cell, monkeypatch: pytest.MonkeyPatch, timestamp: int, expires_at: int
) -> None:
    """§6.2: ``timestamp < expires_at <= timestamp + MAX_MESSAGE_LIFETIME``; a header outside
    that does not parse as §6.2 (§6.6 step 4, ``malformed``). Only the sender checks it today, so
    a sender that skips the check gets a never-expiring message past hub and recipients, and
    every replay cache must then hold its id forever (spec §9.3 relies on the bound)."""
    seal_module = sys.modules["livcr_exchange.envelope.seal"]  # shadowed by the seal function
    monkeypatch.setattr(seal_module, "_check_spec", lambda _spec, _parts: None)
    parts = replace(cell.parts(), timestamp=timestamp, expires_at=expires_at)
    _, envelope = seal_from_parts(cell.identity("coord"), cell.spec(["caw"]), parts, b"x")
    with expect_error(Malformed):
        UnverifiedEnvelope.parse(envelope).verify(
            cell.directory, now=NOW, judged_at=NOW, freshness=Freshness.SUBMISSION
        )
    with expect_error(Malformed):
        cell.open_as("caw", envelope, now=NOW, replay=ReplayCache())


@pytest.mark.parametrize(
    ("logged_at", "allowed"),
    [
        (NOW - MAX_CLOCK_SKEW - 1, False),
        (NOW - MAX_CLOCK_SKEW, True),
        (NOW + TTL - 1, True),
        (NOW + TTL, False),
        (NOW - 30 * DAY, False),  # a hub back-dating to when a since-revoked key was valid
    ],
)
def test_a_recipient_bounds_the_hubs_logged_at(cell: Cell, logged_at: int, allowed: bool) -> None:
    """logged_at must lie in [timestamp - MAX_CLOCK_SKEW, expires_at) (spec §9.2)."""
    unverified = UnverifiedEnvelope.parse(cell.seal_to(["caw"], now=NOW))

    def verify() -> None:
        unverified.verify(
            cell.directory, now=NOW + DAY, judged_at=logged_at, freshness=Freshness.DELIVERY
        )

    if allowed:
        verify()
    else:
        with expect_error(LoggedAtOutOfBounds):
            verify()


def test_cosigned_content_resent_to_other_recipients_is_refused(cell: Cell) -> None:
    """The co-signers named the police as recipient: the same block, sealed to the police and
    the CAW, does not verify (spec §7.4)."""
    block = cell.cosign_block(FICHE_BODY, COSIGNERS)
    envelope = cell.seal_to(["caw", "io-politie"], FICHE_BODY, purpose=FICHE, cosign_block=block)
    with expect_error(CosignatureInvalid):
        cell.open_as("io-politie", envelope)


@pytest.mark.parametrize(("logged_at", "allowed"), [(NOW + 60, True), (NOW + 61, False)])
def test_cosigned_content_logged_after_its_deadline_is_refused(
    cell: Cell, logged_at: int, allowed: bool
) -> None:
    """Co-signers fix the last log time; a later one (a later re-send, or a hub logging it late)
    is refused by hub and recipient alike (spec §7.4)."""
    envelope = fiche(cell, cell.cosign_block(FICHE_BODY, COSIGNERS, deadline=NOW + 60))
    unverified = UnverifiedEnvelope.parse(envelope)
    for freshness, now in ((Freshness.SUBMISSION, logged_at), (Freshness.DELIVERY, NOW + DAY)):

        def verify(freshness: Freshness = freshness, now: int = now) -> None:
            unverified.verify(cell.directory, now=now, judged_at=logged_at, freshness=freshness)

        if allowed:
            verify()
        else:
            with expect_error(CosignatureInvalid):
                verify()
