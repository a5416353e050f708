"""Keys and their text forms (spec §5.1-§5.2), signed statements (§5.3-§5.5), lookups (§5.6)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from factories import (
    CELL_ID,
    DAY,
    ENTRY_NOT_AFTER,
    ENTRY_NOT_BEFORE,
    NOW,
    Cell,
    det_bytes,
    directory_entry_body,
    expect_error,
    flip,
    kbo,
    sign_as_directory_entry,
)

from livcr_exchange.constants import (
    LABEL_KEY_ID,
    LABEL_PREKEY,
    LABEL_REVOCATION,
    MAX_ALLOWED_PURPOSES,
    MAX_PREKEY_LIFETIME,
    MAX_REASON_LENGTH,
)
from livcr_exchange.directory import Directory
from livcr_exchange.envelope.wrap import hpke_unwrap, hpke_wrap
from livcr_exchange.errors import (
    BadSignature,
    KeyNotValid,
    KeyRevoked,
    Malformed,
    NonCanonical,
    UnknownSender,
)
from livcr_exchange.keys import (
    Algorithm,
    IdentityKey,
    IdentityPublicKey,
    PrekeyPublic,
    PrekeySecret,
    Suite,
    key_id,
)
from livcr_exchange.roles import Role
from livcr_exchange.statements import (
    DirectoryEntry,
    PrekeyStatement,
    Revocation,
    StatementType,
    check_kbo,
)
from livcr_exchange.wire import Writer, b64


@pytest.fixture
def cell() -> Cell:
    return Cell.build()


def independent_key_id(algorithm: int, public: bytes) -> bytes:
    """Spec §5.1 computed with hashlib rather than the library's own hash helper."""
    return hashlib.blake2b(LABEL_KEY_ID + bytes((algorithm,)) + public, digest_size=32).digest()[
        :16
    ]


def prekey_secret(suite: Suite, label: str = "prekey") -> PrekeySecret:
    return PrekeySecret(suite, det_bytes(f"{label} {suite.value}", suite.secret_seed_bytes))


# Key ids (§5.1).
def test_identity_key_id_follows_the_spec_and_is_stable() -> None:
    key = IdentityKey.from_seed(det_bytes("identity", 32))
    expected = independent_key_id(0x01, key.public.raw)
    assert key.key_id == key.public.key_id == expected
    assert IdentityKey.from_seed(det_bytes("identity", 32)).key_id == expected
    assert len(expected) == 16


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_prekey_key_id_follows_the_spec_and_is_stable(suite: Suite) -> None:
    secret = prekey_secret(suite)
    algorithm = 0x02 if suite is Suite.X25519 else 0x03
    assert suite.algorithm == algorithm
    assert secret.key_id == secret.public.key_id
    assert secret.key_id == independent_key_id(algorithm, secret.public.raw)
    assert prekey_secret(suite).key_id == secret.key_id


def test_key_ids_are_distinct_per_algorithm_for_the_same_bytes() -> None:
    public = det_bytes("same bytes", 32)
    ids = {key_id(algorithm, public) for algorithm in Algorithm}
    assert len(ids) == len(Algorithm)


def test_key_ids_are_distinct_per_key() -> None:
    ids = {IdentityKey.from_seed(det_bytes(f"k{i}", 32)).key_id for i in range(20)}
    ids |= {prekey_secret(s, f"k{i}").key_id for s in Suite for i in range(5)}
    assert len(ids) == 30


# Text forms (§4.2).
def test_identity_text_round_trips() -> None:
    public = IdentityKey.from_seed(det_bytes("identity", 32)).public
    text = public.to_text()
    assert text.startswith("livcr-ed25519:")
    assert str(public) == text
    assert "=" not in text
    assert IdentityPublicKey.from_text(text) == public


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_prekey_text_round_trips(suite: Suite) -> None:
    public = prekey_secret(suite).public
    text = public.to_text()
    assert text.startswith("livcr-x25519:" if suite is Suite.X25519 else "livcr-xwing:")
    assert PrekeyPublic.from_text(text) == public


def test_identity_text_rejects_other_prefixes() -> None:
    body = b64(IdentityKey.from_seed(det_bytes("identity", 32)).public.raw)
    for prefix in ("livcr-x25519:", "livcr-xwing:", "LIVCR-ED25519:", "ed25519:", "", " "):
        with expect_error(Malformed):
            IdentityPublicKey.from_text(prefix + body)


def test_prekey_text_rejects_other_prefixes() -> None:
    raw = prekey_secret(Suite.X25519).public.raw
    for prefix in ("livcr-ed25519:", "livcr-X25519:", "x25519:", ""):
        with expect_error(Malformed):
            PrekeyPublic.from_text(prefix + b64(raw))


def test_prekey_text_length_must_match_its_suite() -> None:
    x = prekey_secret(Suite.X25519).public.raw
    xwing = prekey_secret(Suite.XWING).public.raw
    with expect_error(Malformed):
        PrekeyPublic.from_text("livcr-xwing:" + b64(x))
    with expect_error(Malformed):
        PrekeyPublic.from_text("livcr-x25519:" + b64(xwing))


def test_identity_text_of_wrong_length_is_malformed() -> None:
    with expect_error(Malformed):
        IdentityPublicKey.from_text("livcr-ed25519:" + b64(bytes(31)))
    with expect_error(Malformed):
        IdentityPublicKey.from_text("livcr-ed25519:" + b64(bytes(33)))


def non_canonical_spelling(text: str) -> str:
    """Set the unused low bits of the last base64url character (32 bytes leave two unused)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    return text[:-1] + alphabet[last | 0b01]


def test_text_forms_reject_non_canonical_base64() -> None:
    identity = IdentityKey.from_seed(det_bytes("identity", 32)).public.to_text()
    prekey = prekey_secret(Suite.X25519).public.to_text()
    for text, parse in (
        (identity, IdentityPublicKey.from_text),
        (prekey, PrekeyPublic.from_text),
    ):
        if text[-1] not in "AEIMQUYcgkosw048":  # last char must leave the unused bits zero
            pytest.fail(f"canonical text {text} has non-zero unused bits")
        with expect_error(NonCanonical):
            parse(non_canonical_spelling(text))
        with pytest.raises((Malformed, NonCanonical)):
            parse(text + "=")
        std = text.replace("-", "+").replace("_", "/")
        if std != text:
            with pytest.raises((Malformed, NonCanonical)):
                parse(std)


def test_wrong_sized_keys_and_seeds_are_malformed() -> None:
    with expect_error(Malformed):
        IdentityPublicKey(bytes(31))
    with expect_error(Malformed):
        IdentityKey.from_seed(bytes(31))
    with expect_error(Malformed):
        PrekeyPublic(Suite.XWING, bytes(32))
    with expect_error(Malformed):
        PrekeySecret(Suite.X25519, bytes(96))
    with expect_error(Malformed):
        PrekeySecret(Suite.XWING, bytes(96))  # the v1 form (ML-KEM seed || X25519 scalar)


# Reprs never show secrets (§5).
def secret_spellings(seed: bytes) -> list[str]:
    spellings = [repr(seed), str(seed), seed.hex(), seed.hex().upper()]
    spellings += [base64.b64encode(seed).decode(), b64(seed), base64.b32encode(seed).decode()]
    # Every 8-byte window in hex, and every 3-aligned 12-byte window in both base64 alphabets.
    spellings += [seed[i : i + 8].hex() for i in range(len(seed) - 7)]
    for i in range(0, len(seed) - 11, 3):
        spellings += [base64.b64encode(seed[i : i + 12]).decode(), b64(seed[i : i + 12])]
    return spellings


def rendered(obj: object) -> str:
    return "\n".join(
        [repr(obj), str(obj), f"{obj}", f"{obj!r}", repr([obj]), repr({"k": obj}), repr((obj,))]
    )


def test_identity_key_repr_hides_the_seed() -> None:
    key = IdentityKey.from_seed(det_bytes("secret identity", 32))
    text = rendered(key)
    assert key.public.to_text() in repr(key)
    for spelling in secret_spellings(key.seed):
        assert spelling not in text


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_prekey_secret_repr_hides_the_seed(suite: Suite) -> None:
    secret = prekey_secret(suite, "secret prekey")
    text = rendered(secret)
    assert secret.key_id.hex() in repr(secret)
    for spelling in secret_spellings(secret.seed):
        assert spelling not in text


# Prekeys of both suites (§5.2).
@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_prekey_public_is_a_function_of_the_seed(suite: Suite) -> None:
    seed = det_bytes(f"prekey seed {suite.value}", suite.secret_seed_bytes)
    first, second = PrekeySecret(suite, seed), PrekeySecret(suite, bytes(seed))
    assert first.public == second.public
    assert first.key_id == second.key_id
    assert len(first.public.raw) == suite.public_key_bytes
    assert first.public != prekey_secret(suite, "another").public


def test_xwing_seed_expands_with_shake256_as_the_draft_says() -> None:
    """§6.1: expanded = SHAKE256(seed, 96); ML-KEM-768 from expanded[0:64], X25519 the rest."""
    seed = det_bytes("xwing seed", 32)
    expanded = hashlib.shake_256(seed).digest(96)
    hybrid = PrekeySecret(Suite.XWING, seed).public.raw
    expected_mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key()
    expected_x25519 = x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key()
    assert hybrid == expected_mlkem.public_bytes_raw() + expected_x25519.public_bytes_raw()
    classic = PrekeySecret(Suite.X25519, expanded[64:]).public.raw
    assert hybrid[1184:] == classic


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_prekey_wraps_and_unwraps(suite: Suite) -> None:
    secret = prekey_secret(suite)
    stanza = hpke_wrap(b"k" * 32, secret.public, b"info")
    assert len(stanza) == suite.enc_bytes + 48
    assert hpke_unwrap(stanza, PrekeySecret(suite, secret.seed), b"info") == b"k" * 32


# Directory entries (§5.3).
def test_directory_entry_round_trips(cell: Cell) -> None:
    for participant in cell.participants.values():
        opened = DirectoryEntry.open(participant.signed_entry, cell.root.public)
        assert opened == participant.entry
        assert DirectoryEntry.decode(participant.entry.encode()) == participant.entry


def test_directory_entry_from_another_signer_is_rejected(cell: Cell) -> None:
    forged = cell.entry("caw").sign(cell.identity("coord"))
    with expect_error(BadSignature):
        DirectoryEntry.open(forged, cell.root.public)


def test_every_tampered_byte_of_a_directory_entry_is_rejected(cell: Cell) -> None:
    signed = cell["caw"].signed_entry
    for index in range(len(signed)):
        with expect_error(BadSignature):
            DirectoryEntry.open(flip(signed, index, 0x40), cell.root.public)


def test_statements_are_not_interchangeable(cell: Cell) -> None:
    revocation = cell.revocation("caw", NOW)
    signed_revocation = revocation.sign(cell.root)
    # A revocation offered as an entry: the label differs, so the signature fails.
    with expect_error(BadSignature):
        DirectoryEntry.open(signed_revocation, cell.root.public)
    with expect_error(BadSignature):
        Revocation.open(cell["caw"].signed_entry, cell.root.public)
    # Even signed under the entry label, the type byte refuses it.
    with expect_error(Malformed):
        DirectoryEntry.open(
            sign_as_directory_entry(cell.root, revocation.encode()), cell.root.public
        )
    entry_body = cell.entry("caw").encode()
    as_revocation = entry_body + cell.root.sign(LABEL_REVOCATION + entry_body)
    with expect_error(Malformed):
        Revocation.open(as_revocation, cell.root.public)
    retyped = bytes((StatementType.REVOCATION,)) + entry_body[1:]
    with expect_error(Malformed):
        DirectoryEntry.open(sign_as_directory_entry(cell.root, retyped), cell.root.public)


def raw_entry(cell: Cell, **changes: object) -> bytes:
    fields: dict[str, object] = {
        "cell_id": CELL_ID,
        "participant_id": "caw",
        "organisation": cell["caw"].organisation,
        "role": "deelnemer",
        "identity": cell.identity("caw").public.raw,
        "purposes": ["aanmelding"],
        "not_before": ENTRY_NOT_BEFORE,
        "not_after": ENTRY_NOT_AFTER,
    }
    fields.update(changes)
    body = directory_entry_body(**fields)  # type: ignore[arg-type]
    return sign_as_directory_entry(cell.root, body)


def test_raw_entry_helper_matches_the_encoder(cell: Cell) -> None:
    entry = cell.entry("caw", allowed_purposes=frozenset({"aanmelding"}))
    assert raw_entry(cell) == entry.sign(cell.root)


@pytest.mark.parametrize("first_eight", [0, 1, 96, 97, 20743746, 99999999, 12345678])
def test_kbo_check_digits(first_eight: int) -> None:
    number = kbo(first_eight)
    assert check_kbo(number) == number
    wrong = number[:8] + f"{(int(number[8:]) % 97) + 1:02d}"
    with expect_error(Malformed):
        check_kbo(wrong)


@pytest.mark.parametrize(
    "number",
    [
        "020743746",
        "02074374680",
        "02074374a8",
        "0207437468 ",
        "\uff10\uff12\uff10\uff17\uff14\uff13\uff17\uff14\uff16\uff18",
        "\u00b2207437468",
    ],
    ids=["nine_digits", "eleven_digits", "letter", "space", "fullwidth", "superscript"],
)
def test_kbo_must_be_ten_ascii_digits(number: str) -> None:
    with expect_error(Malformed):
        check_kbo(number)


def test_bad_kbo_is_rejected_by_encoder_and_decoder(cell: Cell) -> None:
    bad = "0207437469"
    with expect_error(Malformed):
        check_kbo(bad)
    with expect_error(Malformed):
        cell.entry("caw", organisation=bad).encode()
    with expect_error(Malformed):
        DirectoryEntry.open(raw_entry(cell, organisation=bad), cell.root.public)


def test_casusverantwoordelijke_is_never_a_directory_role(cell: Cell) -> None:
    with expect_error(Malformed):
        cell.entry("caw", role=Role.CASUSVERANTWOORDELIJKE).encode()
    with expect_error(Malformed):
        DirectoryEntry.open(raw_entry(cell, role="casusverantwoordelijke"), cell.root.public)
    with expect_error(Malformed):
        DirectoryEntry.open(raw_entry(cell, role="admin"), cell.root.public)


@pytest.mark.parametrize("delta", [0, -1, -DAY], ids=["empty", "inverted_by_one", "inverted"])
def test_entry_window_must_be_non_empty(cell: Cell, delta: int) -> None:
    with expect_error(Malformed):
        cell.entry("caw", not_before=NOW, not_after=NOW + delta).encode()
    with expect_error(Malformed):
        DirectoryEntry.open(
            raw_entry(cell, not_before=NOW, not_after=NOW + delta), cell.root.public
        )


def test_entry_with_unsorted_purposes_is_non_canonical(cell: Cell) -> None:
    body = bytearray(cell.entry("caw", allowed_purposes=frozenset({"aa", "bb"})).encode())
    start = body.index(b"\x02\x02aa\x02bb")
    body[start : start + 7] = b"\x02\x02bb\x02aa"
    with expect_error(NonCanonical):
        DirectoryEntry.open(sign_as_directory_entry(cell.root, bytes(body)), cell.root.public)


def test_entry_with_trailing_or_missing_bytes_is_malformed(cell: Cell) -> None:
    body = cell.entry("caw").encode()
    for changed in (body + b"\x00", body[:-1]):
        with expect_error(Malformed):
            DirectoryEntry.open(sign_as_directory_entry(cell.root, changed), cell.root.public)
    with expect_error(Malformed):
        DirectoryEntry.open(b"\x01" * 64, cell.root.public)


# Revocations (§5.4).
def test_revocation_round_trips_and_rejects_forgeries(cell: Cell) -> None:
    revocation = cell.revocation("caw", NOW, "sleutel gelekt — vervangen")
    signed = revocation.sign(cell.root)
    assert Revocation.open(signed, cell.root.public) == revocation
    with expect_error(BadSignature):
        Revocation.open(revocation.sign(cell.identity("coord")), cell.root.public)
    for index in range(len(signed)):
        with expect_error(BadSignature):
            Revocation.open(flip(signed, index), cell.root.public)


def test_revocation_reason_is_capped(cell: Cell) -> None:
    at_limit = cell.revocation("caw", NOW, "x" * MAX_REASON_LENGTH)
    assert Revocation.open(at_limit.sign(cell.root), cell.root.public) == at_limit
    with pytest.raises(ValueError, match="longer"):
        cell.revocation("caw", NOW, "x" * (MAX_REASON_LENGTH + 1)).encode()
    body = (
        Writer()
        .u8(StatementType.REVOCATION)
        .ident(CELL_ID)
        .ident("caw")
        .fixed(cell.identity("caw").key_id, 16)
        .u64(NOW)
        .opaque16(b"x" * (MAX_REASON_LENGTH + 1))
        .getvalue()
    )
    with expect_error(Malformed):
        Revocation.open(body + cell.root.sign(LABEL_REVOCATION + body), cell.root.public)


# Prekey statements (§5.5).
@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_prekey_statement_round_trips(cell: Cell, suite: Suite) -> None:
    participant = cell["caw"]
    opened = PrekeyStatement.open(participant.signed_prekeys[suite], participant.identity.public)
    assert opened == participant.prekey_statements[suite]
    assert opened.prekey_id == participant.prekey_secrets[suite].key_id


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_prekey_statement_from_another_signer_is_rejected(cell: Cell, suite: Suite) -> None:
    signed = cell["caw"].signed_prekeys[suite]
    with expect_error(BadSignature):
        PrekeyStatement.open(signed, cell.identity("clb").public)
    with expect_error(BadSignature):
        PrekeyStatement.open(flip(signed, 5), cell.identity("caw").public)
    with expect_error(BadSignature):
        PrekeyStatement.open(flip(signed, len(signed) - 1), cell.identity("caw").public)


def test_prekey_statement_naming_another_identity_is_rejected(cell: Cell) -> None:
    statement = replace(
        cell["caw"].prekey_statements[Suite.X25519], identity_key_id=cell.identity("clb").key_id
    )
    with pytest.raises(ValueError, match="different identity"):
        statement.sign(cell.identity("caw"))
    body = statement.encode()
    signed = body + cell.identity("caw").sign(LABEL_PREKEY + body)
    with expect_error(Malformed):
        PrekeyStatement.open(signed, cell.identity("caw").public)


def sign_prekey_body(cell: Cell, body: bytes) -> bytes:
    return body + cell.identity("caw").sign(LABEL_PREKEY + body)


def prekey_body(cell: Cell, suite_code: int, raw: bytes, not_before: int, not_after: int) -> bytes:
    return (
        Writer()
        .u8(StatementType.PREKEY)
        .ident("caw")
        .fixed(cell.identity("caw").key_id, 16)
        .u8(suite_code)
        .opaque16(raw)
        .u64(not_before)
        .u64(not_after)
        .getvalue()
    )


def test_prekey_lifetime_is_capped(cell: Cell) -> None:
    statement = cell["caw"].prekey_statements[Suite.X25519]
    longest = replace(statement, not_before=NOW, not_after=NOW + MAX_PREKEY_LIFETIME)
    opened = PrekeyStatement.open(longest.sign(cell.identity("caw")), cell.identity("caw").public)
    assert opened == longest
    too_long = replace(longest, not_after=NOW + MAX_PREKEY_LIFETIME + 1)
    with expect_error(Malformed):
        too_long.encode()
    raw = statement.prekey.raw
    body = prekey_body(cell, 1, raw, NOW, NOW + MAX_PREKEY_LIFETIME + 1)
    with expect_error(Malformed):
        PrekeyStatement.open(sign_prekey_body(cell, body), cell.identity("caw").public)


@pytest.mark.parametrize("delta", [0, -1], ids=["empty", "inverted"])
def test_prekey_window_must_be_non_empty(cell: Cell, delta: int) -> None:
    statement = cell["caw"].prekey_statements[Suite.X25519]
    with expect_error(Malformed):
        replace(statement, not_before=NOW, not_after=NOW + delta).encode()
    body = prekey_body(cell, 1, statement.prekey.raw, NOW, NOW + delta)
    with expect_error(Malformed):
        PrekeyStatement.open(sign_prekey_body(cell, body), cell.identity("caw").public)


def test_prekey_key_must_match_its_suite(cell: Cell) -> None:
    x = cell["caw"].prekey(Suite.X25519).raw
    xwing = cell["caw"].prekey(Suite.XWING).raw
    for suite_code, raw in ((2, x), (1, xwing), (3, x), (0, x)):
        body = prekey_body(cell, suite_code, raw, NOW, NOW + DAY)
        with expect_error(Malformed):
            PrekeyStatement.open(sign_prekey_body(cell, body), cell.identity("caw").public)


# Directory lookups (§5.6).
def test_directory_finds_every_enrolled_key(cell: Cell) -> None:
    for pid, participant in cell.participants.items():
        found = cell.directory.entry_for_key(pid, participant.identity.key_id, NOW)
        assert found == participant.entry
        assert cell.directory.current_entry(pid, NOW) == participant.entry
    assert set(cell.directory.participants(NOW)) == set(cell.participants)


def test_directory_from_signed_rejects_a_foreign_root(cell: Cell) -> None:
    other = IdentityKey.from_seed(det_bytes("another root", 32))
    with expect_error(BadSignature):
        Directory.from_signed(CELL_ID, cell.root.public, [cell.entry("caw").sign(other)])
    with expect_error(BadSignature):
        Directory.from_signed(
            CELL_ID,
            cell.root.public,
            [cell["caw"].signed_entry],
            [cell.revocation("caw", NOW).sign(other)],
        )


def test_directory_rejects_statements_of_another_cell(cell: Cell) -> None:
    foreign = cell.entry("caw", cell_id="cell-other")
    with expect_error(Malformed):
        Directory(CELL_ID, cell.root.public, (foreign,))
    with expect_error(Malformed):
        Directory.from_signed(CELL_ID, cell.root.public, [foreign.sign(cell.root)])
    with expect_error(Malformed):
        Directory(
            CELL_ID, cell.root.public, (), (replace(cell.revocation("caw", NOW), cell_id="x"),)
        )


def test_unknown_participant_is_unknown_sender(cell: Cell) -> None:
    with expect_error(UnknownSender):
        cell.directory.entry_for_key("ocmw", cell.identity("caw").key_id, NOW)
    with expect_error(UnknownSender):
        cell.directory.current_entry("ocmw", NOW)
    directory = cell.directory_with(omit=["caw"])
    with expect_error(UnknownSender):
        directory.entry_for_key("caw", cell.identity("caw").key_id, NOW)


def test_key_of_another_participant_is_unknown_sender(cell: Cell) -> None:
    with expect_error(UnknownSender):
        cell.directory.entry_for_key("caw", cell.identity("coord").key_id, NOW)
    with expect_error(UnknownSender):
        cell.directory.entry_for_key("caw", bytes(16), NOW)


@pytest.mark.parametrize(
    ("judged_at", "revoked"),
    [(NOW - 1, False), (NOW, True), (NOW + 1, True), (NOW + 300 * DAY, True)],
    ids=["before", "at", "just_after", "long_after"],
)
def test_revocation_applies_from_revoked_at(cell: Cell, judged_at: int, revoked: bool) -> None:
    directory = cell.directory_with(revocations=[cell.revocation("caw", NOW)])
    key = cell.identity("caw").key_id
    if revoked:
        with expect_error(KeyRevoked):
            directory.entry_for_key("caw", key, judged_at)
        with expect_error(KeyRevoked):
            directory.current_entry("caw", judged_at)
        assert "caw" not in directory.participants(judged_at)
    else:
        assert directory.entry_for_key("caw", key, judged_at) == cell["caw"].entry
        assert "caw" in directory.participants(judged_at)


def test_earliest_of_several_revocations_counts(cell: Cell) -> None:
    directory = cell.directory_with(
        revocations=[cell.revocation("caw", NOW + DAY), cell.revocation("caw", NOW - DAY)]
    )
    with expect_error(KeyRevoked):
        directory.entry_for_key("caw", cell.identity("caw").key_id, NOW - DAY)
    assert directory.entry_for_key("caw", cell.identity("caw").key_id, NOW - DAY - 1)


def test_revocation_is_checked_before_the_window(cell: Cell) -> None:
    directory = cell.directory_with(revocations=[cell.revocation("caw", NOW)])
    with expect_error(KeyRevoked):
        directory.entry_for_key("caw", cell.identity("caw").key_id, ENTRY_NOT_AFTER + 1)


@pytest.mark.parametrize(
    ("at", "valid"),
    [
        (ENTRY_NOT_BEFORE - 1, False),
        (ENTRY_NOT_BEFORE, True),
        (ENTRY_NOT_AFTER - 1, True),
        (ENTRY_NOT_AFTER, False),
        (0, False),
        (2**64 - 1, False),
    ],
    ids=["before", "first_second", "last_second", "at_not_after", "epoch", "far_future"],
)
def test_validity_window_is_half_open(cell: Cell, at: int, valid: bool) -> None:
    key = cell.identity("caw").key_id
    if valid:
        assert cell.directory.entry_for_key("caw", key, at) == cell["caw"].entry
    else:
        with expect_error(KeyNotValid):
            cell.directory.entry_for_key("caw", key, at)
        with expect_error(KeyNotValid):
            cell.directory.current_entry("caw", at)


def test_current_entry_follows_a_key_change(cell: Cell) -> None:
    new_key = IdentityKey.from_seed(det_bytes("caw second identity", 32))
    new_entry = cell.entry(
        "caw", identity_key=new_key.public, not_before=NOW, not_after=NOW + 365 * DAY
    )
    directory = cell.directory_with(
        entries=[new_entry], revocations=[cell.revocation("caw", NOW + DAY)]
    )
    old_key = cell.identity("caw").key_id
    assert directory.current_entry("caw", NOW - 1) == cell["caw"].entry
    assert directory.current_entry("caw", NOW) == new_entry
    assert directory.current_entry("caw", NOW + 2 * DAY) == new_entry
    assert directory.participants(NOW + 2 * DAY)["caw"] == new_entry
    # The old key still speaks for caw in its own past, not after its revocation.
    assert directory.entry_for_key("caw", old_key, NOW) == cell["caw"].entry
    with expect_error(KeyRevoked):
        directory.entry_for_key("caw", old_key, NOW + DAY)
    with expect_error(KeyNotValid):
        directory.entry_for_key("caw", new_key.key_id, NOW - 1)


def test_current_entry_reports_why_nothing_is_usable(cell: Cell) -> None:
    revoked = cell.directory_with(revocations=[cell.revocation("caw", NOW)])
    with expect_error(KeyRevoked):
        revoked.current_entry("caw", NOW)
    with expect_error(KeyNotValid):
        cell.directory.current_entry("caw", ENTRY_NOT_AFTER)


def test_with_statements_adds_verified_statements(cell: Cell) -> None:
    directory = cell.directory.with_statements(revocations=[cell.revocation("caw", NOW)])
    with expect_error(KeyRevoked):
        directory.entry_for_key("caw", cell.identity("caw").key_id, NOW)
    assert cell.directory.entry_for_key("caw", cell.identity("caw").key_id, NOW)


def test_renewed_entry_for_the_same_key_keeps_its_past(cell: Cell) -> None:
    """An entry renewed with the same key (say, new purposes from NOW) must not erase the old
    window: spec §5.6 asks whether *an* entry binds the key at the judging time, and a directory
    is a set, so the answer must not depend on the order its statements are listed in."""
    first = cell.entry("caw", not_before=ENTRY_NOT_BEFORE, not_after=NOW)
    renewed = cell.entry(
        "caw",
        allowed_purposes=frozenset({"aanmelding"}),
        not_before=NOW,
        not_after=ENTRY_NOT_AFTER,
    )
    key = cell.identity("caw").key_id
    for order in ((first, renewed), (renewed, first)):
        directory = Directory(CELL_ID, cell.root.public, order)
        assert directory.entry_for_key("caw", key, NOW - DAY) == first
        assert directory.entry_for_key("caw", key, NOW + DAY) == renewed
        assert directory.current_entry("caw", NOW - DAY) == first
        assert directory.current_entry("caw", NOW + DAY) == renewed


def test_allowed_purposes_are_capped(cell: Cell) -> None:
    most = frozenset(f"purpose-{i:02d}" for i in range(MAX_ALLOWED_PURPOSES))
    entry = cell.entry("caw", allowed_purposes=most)
    assert DirectoryEntry.open(entry.sign(cell.root), cell.root.public) == entry
    too_many = most | {"one-more"}
    with pytest.raises(ValueError, match="more than"):
        cell.entry("caw", allowed_purposes=too_many).encode()
    with expect_error(Malformed):
        DirectoryEntry.open(raw_entry(cell, purposes=sorted(too_many)), cell.root.public)
