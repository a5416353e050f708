"""C2SP signed-note checkpoints: known answers, round trips, and every rejection is one code."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livcr_exchange.audit.checkpoint import (
    MAX_EXTENSION_LINES,
    MAX_NOTE_BYTES,
    Checkpoint,
    note_key_hash,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)
from livcr_exchange.audit.merkle import EMPTY_ROOT
from livcr_exchange.errors import CheckpointInvalid
from livcr_exchange.keys import IdentityKey

LOG = IdentityKey.from_seed(bytes(range(32)))
OTHER = IdentityKey.from_seed(bytes(range(1, 33)))
NAME = "example.com/log"
ROOT_HASH = hashlib.sha256(b"a root").digest()
CHECKPOINT = Checkpoint(NAME, 5, ROOT_HASH)
BODY = f"{NAME}\n5\n{base64.b64encode(ROOT_HASH).decode()}\n".encode()
EM_DASH = "\u2014".encode()

# golang.org/x/mod/sumdb/note's documented example: key, text and the exact signed note.
GO_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # 0x01 || Ed25519 seed
GO_PUBLIC = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"  # 0x01 || public key
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_SIGNATURE_LINE = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# The worked example of C2SP signed-note (verifier key example.com/foo+530d903a+...).
SPEC_PUBLIC = "AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()


def open_log(note: bytes, origin: str = NAME) -> Checkpoint:
    return open_checkpoint(note, origin, LOG.public.raw, key_name=NAME)


def raw_line(text: bytes, key: IdentityKey = LOG, name: str = NAME) -> bytes:
    """A signature line built by hand, so malformed texts can carry a valid signature."""
    blob = hashlib.sha256(name.encode() + b"\n\x01" + key.public.raw).digest()[:4]
    encoded = base64.b64encode(blob + key.sign(text)).decode()
    return f"\u2014 {name} {encoded}\n".encode()


def raw_note(text: bytes) -> bytes:
    """``text`` signed by the log key, with none of sign_note's checks."""
    return text + b"\n" + raw_line(text)


# --- known answers and format ----------------------------------------------------------------


def test_go_sumdb_note_known_answer() -> None:
    seed, public = base64.b64decode(GO_SEED), base64.b64decode(GO_PUBLIC)
    assert seed[0] == public[0] == 0x01
    key = IdentityKey.from_seed(seed[1:])
    assert key.public.raw == public[1:]
    assert note_key_hash("PeterNeumann", public[1:]) == bytes.fromhex("c74f20a3")
    note = sign_note(GO_TEXT, "PeterNeumann", key)
    assert note == GO_TEXT + b"\n" + GO_SIGNATURE_LINE.encode()
    assert open_note(note, "PeterNeumann", public[1:]) == GO_TEXT


def test_c2sp_signed_note_example_verifies() -> None:
    public = base64.b64decode(SPEC_PUBLIC)[1:]
    assert note_key_hash("example.com/foo", public) == bytes.fromhex("530d903a")
    assert open_note(SPEC_NOTE, "example.com/foo", public) == b"This is an example message.\n"


def test_body_is_the_checkpoint_text() -> None:
    assert CHECKPOINT.body() == BODY
    with_extensions = Checkpoint(NAME, 0, EMPTY_ROOT, ("ext one", "ext two"))
    assert with_extensions.body() == (
        f"{NAME}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\next two\n".encode()
    )


def test_signed_note_layout() -> None:
    note = sign_checkpoint(CHECKPOINT, NAME, LOG)
    text, signatures = note[: len(BODY)], note[len(BODY) :]
    assert text == BODY
    assert signatures.startswith(b"\n" + EM_DASH + b" " + NAME.encode() + b" ")
    assert signatures.endswith(b"\n")
    blob = base64.b64decode(signatures.split(b" ")[-1].rstrip(b"\n"), validate=True)
    key_hash = hashlib.sha256(NAME.encode() + b"\n\x01" + LOG.public.raw).digest()[:4]
    assert blob[:4] == key_hash == note_key_hash(NAME, LOG.public.raw)
    assert len(blob) == 4 + 64
    LOG.public.verify(BODY, blob[4:])


# --- accepted notes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "checkpoint",
    [
        CHECKPOINT,
        Checkpoint(NAME, 0, EMPTY_ROOT),
        Checkpoint(NAME, 2**64 - 1, ROOT_HASH),
        Checkpoint("logs.example/\u00e9t\u00e9 2024", 7, ROOT_HASH, ("x", "\u2014 not a sig")),
    ],
    ids=["plain", "empty-tree", "max-size", "unicode-and-extensions"],
)
def test_round_trip(checkpoint: Checkpoint) -> None:
    assert open_log(sign_checkpoint(checkpoint, NAME, LOG), checkpoint.origin) == checkpoint


def test_key_name_need_not_be_the_origin() -> None:
    note = sign_checkpoint(Checkpoint("another.example/log", 1, ROOT_HASH), NAME, LOG)
    assert open_log(note, "another.example/log").origin == "another.example/log"


def test_the_origin_must_be_the_configured_one() -> None:
    """A note the log key signed, but for another log (spec §10.3)."""
    note = sign_checkpoint(Checkpoint("another.example/log", 1, ROOT_HASH), NAME, LOG)
    with pytest.raises(CheckpointInvalid, match="not of the configured"):
        open_log(note)


def test_extension_lines_are_bounded_before_they_are_read() -> None:
    """16 extension lines open; 17 do not, nor 500,000, counted before any is parsed (§10.3)."""
    lines = tuple(f"x{i}" for i in range(MAX_EXTENSION_LINES))
    assert open_log(sign_checkpoint(Checkpoint(NAME, 1, ROOT_HASH, lines), NAME, LOG)).extensions
    with pytest.raises(CheckpointInvalid, match="extension lines"):
        Checkpoint(NAME, 1, ROOT_HASH, (*lines, "x"))
    body = Checkpoint(NAME, 1, ROOT_HASH).body()
    for count in (MAX_EXTENSION_LINES + 1, 500_000):
        note = sign_note(body + b"x\n" * count, NAME, LOG)
        with pytest.raises(CheckpointInvalid, match="extension lines"):
            open_log(note)


def test_signatures_by_unknown_keys_are_ignored() -> None:
    """Other names, and the same name with another key hash (C2SP signed-note §Signatures)."""
    other_line = raw_line(BODY, OTHER, "witness.example/w1")
    same_name_other_key = raw_line(BODY, OTHER, NAME)
    note = BODY + b"\n" + other_line + same_name_other_key + raw_line(BODY) + other_line
    assert open_log(note) == CHECKPOINT


def test_repeated_signature_by_the_known_key_is_accepted() -> None:
    assert open_log(raw_note(BODY) + raw_line(BODY)) == CHECKPOINT


@given(
    origin=st.text(
        st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=40
    ).filter(lambda s: s == s.strip()),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1),
        max_size=3,
    ),
)
def test_round_trip_property(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert open_log(sign_checkpoint(checkpoint, NAME, LOG), origin) == checkpoint


# --- rejected notes --------------------------------------------------------------------------


def good_note() -> bytes:
    return sign_checkpoint(CHECKPOINT, NAME, LOG)


def tampered_body() -> bytes:
    return good_note().replace(b"\n5\n", b"\n6\n", 1)


def tampered_signature() -> bytes:
    note = good_note()
    line = note[len(BODY) + 1 :]
    encoded = line.split(b" ")[-1].rstrip(b"\n")
    blob = bytearray(base64.b64decode(encoded))
    blob[10] ^= 1  # inside the signature; the key hash still names the log key
    return BODY + b"\n" + line.replace(encoded, base64.b64encode(bytes(blob)))


def body_with(size: str = "5", root: str | None = None, extra: str = "") -> bytes:
    root_text = base64.b64encode(ROOT_HASH).decode() if root is None else root
    return f"{NAME}\n{size}\n{root_text}\n{extra}".encode()


def non_canonical_root() -> str:
    # The last character carries 2 unused bits; setting one changes the text, not the bytes.
    text = base64.b64encode(ROOT_HASH).decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(text[-2]) | 1]
    assert last != text[-2]
    return text[:-2] + last + "="


def signature_block(*lines: bytes) -> bytes:
    return BODY + b"\n" + b"".join(lines)


SIGNED_BY_LOG = raw_line(BODY)
WITNESS = raw_line(BODY, OTHER, "w.example")
VERIFY = "does not verify"
NO_KNOWN = "no signature by key"
CONTROL = "control character"
SIZE = "without leading zeros"
BLANK = "no blank line"
EMPTY_LINE = "empty line"
NOT_B64 = "not padded standard base64"

# Each bad note and the rule it must fail on; all raise CheckpointInvalid.
REJECTED: dict[str, tuple[Callable[[], bytes], str]] = {
    "tampered-body": (tampered_body, VERIFY),
    "tampered-signature": (tampered_signature, VERIFY),
    "wrong-key": (lambda: sign_checkpoint(CHECKPOINT, NAME, OTHER), NO_KNOWN),
    "wrong-key-name": (lambda: sign_checkpoint(CHECKPOINT, "example.com/other", LOG), NO_KNOWN),
    "only-unknown-signatures": (lambda: signature_block(WITNESS), NO_KNOWN),
    "missing-signature": (lambda: BODY + b"\n", "no signature lines"),
    "no-blank-line": (lambda: BODY + SIGNED_BY_LOG, BLANK),
    "only-the-body": (lambda: BODY, BLANK),
    "body-without-final-newline": (lambda: raw_note(body_with()[:-1]), BLANK),
    "crlf": (lambda: good_note().replace(b"\n", b"\r\n"), CONTROL),
    "cr-in-signed-body": (lambda: raw_note(BODY.replace(b"\n5\n", b"\r\n5\n")), CONTROL),
    "tab-in-signed-body": (lambda: raw_note(BODY.replace(b"log", b"l\tog")), CONTROL),
    "invalid-utf8": (lambda: raw_note(BODY.replace(b"log", b"l\xffog")), "not valid UTF-8"),
    "leading-zero-size": (lambda: raw_note(body_with(size="05")), SIZE),
    "double-zero-size": (lambda: raw_note(body_with(size="00")), SIZE),
    "plus-sign-size": (lambda: raw_note(body_with(size="+5")), SIZE),
    "spaced-size": (lambda: raw_note(body_with(size=" 5")), SIZE),
    "underscore-size": (lambda: raw_note(body_with(size="1_000")), SIZE),
    "non-ascii-digit-size": (lambda: raw_note(body_with(size="\u0665")), SIZE),
    "size-above-uint64": (lambda: raw_note(body_with(size=str(2**64))), "outside 0..2"),
    "empty-size": (lambda: raw_note(body_with(size="")), EMPTY_LINE),
    "non-canonical-root": (
        lambda: raw_note(body_with(root=non_canonical_root())),
        "non-canonical base64",
    ),
    "unpadded-root": (
        lambda: raw_note(body_with(root=base64.b64encode(ROOT_HASH).decode()[:-1])),
        NOT_B64,
    ),
    "base64url-root": (
        lambda: raw_note(body_with(root=base64.urlsafe_b64encode(b"\xfb" * 32).decode())),
        NOT_B64,
    ),
    "short-root": (
        lambda: raw_note(body_with(root=base64.b64encode(ROOT_HASH[:31]).decode())),
        "31 bytes",
    ),
    "long-root": (
        lambda: raw_note(body_with(root=base64.b64encode(ROOT_HASH + b"!").decode())),
        "33 bytes",
    ),
    "two-lines": (lambda: raw_note(f"{NAME}\n5\n".encode()), "has 2 lines"),
    "empty-extension-line": (lambda: raw_note(body_with(extra="ext\n\nmore\n")), EMPTY_LINE),
    "empty-origin": (lambda: raw_note(body_with()[len(NAME) :]), EMPTY_LINE),
    "origin-trailing-space": (
        lambda: raw_note(body_with().replace(b"log\n", b"log \n", 1)),
        "whitespace",
    ),
    "origin-leading-nbsp": (lambda: raw_note("\u00a0".encode() + body_with()), "whitespace"),
    "hyphen-instead-of-em-dash": (lambda: good_note().replace(EM_DASH, b"--"), "em dash"),
    "signature-line-without-space": (
        lambda: signature_block(SIGNED_BY_LOG.replace(NAME.encode() + b" ", NAME.encode(), 1)),
        "no space between",
    ),
    "key-name-with-plus": (
        lambda: signature_block(raw_line(BODY, OTHER, "a+b"), SIGNED_BY_LOG),
        "contains a space or '+'",
    ),
    "key-name-with-nbsp": (
        lambda: signature_block(raw_line(BODY, OTHER, "a\u00a0b"), SIGNED_BY_LOG),
        "contains a space or '+'",
    ),
    "signature-too-short": (
        lambda: signature_block(EM_DASH + b" w.example YWJjZA==\n", SIGNED_BY_LOG),
        "shorter than a key hash",
    ),
    "signature-bad-base64": (
        lambda: signature_block(EM_DASH + b" w.example abc!\n", SIGNED_BY_LOG),
        "signature is " + NOT_B64,
    ),
    "signature-missing-final-newline": (lambda: good_note()[:-1], "does not end with a newline"),
    "trailing-blank-line": (lambda: good_note() + b"\n", "no signature lines"),
    "second-known-signature-bad": (
        lambda: good_note() + tampered_signature()[len(BODY) + 1 :],
        VERIFY,
    ),
    "101-signatures": (lambda: signature_block(SIGNED_BY_LOG, WITNESS * 100), "101 signatures"),
    "over-one-mebibyte": (
        lambda: raw_note(body_with(extra="x" * MAX_NOTE_BYTES + "\n")),
        "at most 1048576",
    ),
}


@pytest.mark.parametrize(("make", "rule"), list(REJECTED.values()), ids=list(REJECTED))
def test_rejected(make: Callable[[], bytes], rule: str) -> None:
    with pytest.raises(CheckpointInvalid, match=re.escape(rule)) as caught:
        open_log(make())
    assert caught.value.code == "checkpoint_invalid"


def test_the_valid_note_the_rejections_start_from_opens() -> None:
    assert open_log(good_note()) == CHECKPOINT
    assert open_log(raw_note(BODY)) == CHECKPOINT
    assert open_log(signature_block(SIGNED_BY_LOG, WITNESS * 99)) == CHECKPOINT  # 100 lines


# --- construction and signing refuse what could not be opened ----------------------------------


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT_HASH, ()),
        (" log", 1, ROOT_HASH, ()),
        ("log\n", 1, ROOT_HASH, ()),
        ("lo\rg", 1, ROOT_HASH, ()),
        ("\ud800", 1, ROOT_HASH, ()),
        ("log", -1, ROOT_HASH, ()),
        ("log", 2**64, ROOT_HASH, ()),
        ("log", True, ROOT_HASH, ()),
        ("log", 1, ROOT_HASH[:31], ()),
        ("log", 1, "x" * 32, ()),
        ("log", 1, ROOT_HASH, ("",)),
        ("log", 1, ROOT_HASH, ("a\nb",)),
        ("log", 1, ROOT_HASH, ["a"]),
    ],
)
def test_invalid_checkpoints_cannot_be_built(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(CheckpointInvalid):
        Checkpoint(origin, size, root, extensions)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u2003b", "a\nb"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(CheckpointInvalid):
        sign_checkpoint(CHECKPOINT, name, LOG)
    with pytest.raises(CheckpointInvalid):
        note_key_hash(name, LOG.public.raw)
    with pytest.raises(CheckpointInvalid):
        open_checkpoint(good_note(), name, LOG.public.raw)


def test_sign_note_refuses_texts_that_would_not_open() -> None:
    for text in (b"", b"no newline", b"a\r\n", b"\xff\n"):
        with pytest.raises(CheckpointInvalid):
            sign_note(text, NAME, LOG)
    with pytest.raises(CheckpointInvalid, match="exceed"):
        sign_note(b"x" * MAX_NOTE_BYTES + b"\n", NAME, LOG)


def test_public_key_must_be_32_bytes() -> None:
    with pytest.raises(CheckpointInvalid, match="33 bytes"):
        open_checkpoint(good_note(), NAME, LOG.public.raw + b"\x00")
