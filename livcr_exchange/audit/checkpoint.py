"""C2SP tlog-checkpoints carried in C2SP signed notes with Ed25519 signatures (type 0x01).

A checkpoint's text is ``origin\\nsize\\nbase64(root)\\n`` followed by optional extension lines.
A signed note is that text, a blank line, and one or more lines
``— <key name> <base64(key hash[4] || signature)>\\n`` (U+2014 then a space). Base64 here is the
standard alphabet with padding (RFC 4648 §4), not the project's base64url.

Every failure to parse, to meet a limit or to verify raises ``CheckpointInvalid``, grammar errors
included, so that vectors and peers see one code for a bad checkpoint; the message says which
rule was broken. Parsing is strict: only the one canonical spelling of a checkpoint is accepted.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ..constants import ED25519_PUBLIC_BYTES, SIGNATURE_BYTES
from ..errors import BadSignature, CheckpointInvalid
from ..hashing import sha256
from ..keys import IdentityKey, verify_signature
from .merkle import HASH_SIZE, MAX_TREE_SIZE

MAX_NOTE_BYTES: Final = 1 << 20
# golang.org/x/mod/sumdb/note refuses more; C2SP signed-note requires accepting at least 16.
MAX_SIGNATURES: Final = 100
# Extension lines after origin, size and root (C2SP tlog-checkpoint): we write none; a few are
# plenty for anyone's, and a bound keeps a hostile note from costing a line check per byte.
MAX_EXTENSION_LINES: Final = 16
ED25519_SIGNATURE_TYPE: Final = 0x01  # C2SP signed-note §Signature types
KEY_HASH_BYTES: Final = 4
SIGNATURE_LINE_PREFIX: Final = "\u2014 "

_SIZE_PATTERN: Final = re.compile(r"0|[1-9][0-9]*")
_MAX_SIZE_DIGITS: Final = len(str(MAX_TREE_SIZE))
_STD_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def default_origin(cell_id: str) -> str:
    """The origin line of a cell's log unless its hub is configured otherwise (spec §10.3)."""
    return f"livcr-exchange/{cell_id}"


def _std_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _std_unb64(text: str, what: str) -> bytes:
    """Decode standard padded base64, refusing every spelling but the canonical one."""
    if _STD_BASE64.fullmatch(text) is None:
        raise CheckpointInvalid(f"{what} is not padded standard base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointInvalid(f"{what} is not padded standard base64") from exc
    # Non-zero bits in the last character's unused low bits decode to the same bytes.
    if _std_b64(data) != text:
        raise CheckpointInvalid(f"{what} is non-canonical base64")
    return data


def _check_line(value: str, what: str) -> None:
    """A text line: non-empty, UTF-8 encodable, no control characters (so no newline or CR)."""
    if not value:
        raise CheckpointInvalid(f"{what} is empty")
    if any(ch < " " for ch in value):
        raise CheckpointInvalid(f"{what} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CheckpointInvalid(f"{what} is not valid Unicode text") from exc


def _check_key_name(name: str) -> None:
    """C2SP signed-note: key names are non-empty, without Unicode spaces or plus signs."""
    _check_line(name, "key name")
    if "+" in name or any(ch.isspace() for ch in name):
        raise CheckpointInvalid(f"key name {name!r} contains a space or '+'")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, size and root hash, plus opaque extension lines.

    Construction checks the fields (raising CheckpointInvalid), so every Checkpoint has a body.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if self.origin != self.origin.strip():
            raise CheckpointInvalid("origin has leading or trailing whitespace")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointInvalid(f"tree size {self.size!r} is outside 0..2**64-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointInvalid(f"root hash is {len(self.root)} bytes, not {HASH_SIZE}")
        if not isinstance(self.extensions, tuple):
            raise CheckpointInvalid("extensions must be a tuple of lines")
        if len(self.extensions) > MAX_EXTENSION_LINES:
            raise CheckpointInvalid(
                f"{len(self.extensions)} extension lines (at most {MAX_EXTENSION_LINES})"
            )
        for position, line in enumerate(self.extensions):
            _check_line(line, f"extension line {position}")

    def body(self) -> bytes:
        """The note text: origin, size and root lines, then the extension lines, each ending
        in a newline (C2SP tlog-checkpoint §Note text)."""
        lines = [self.origin, str(self.size), _std_b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")


def note_key_hash(name: str, public: bytes) -> bytes:
    """The 4-byte key hash of an Ed25519 note key: SHA-256(name || 0x0A || 0x01 || public)[:4].

    Raises:
        CheckpointInvalid: the name is not a valid key name, or the key is not 32 bytes.
    """
    _check_key_name(name)
    if len(public) != ED25519_PUBLIC_BYTES:
        raise CheckpointInvalid(f"Ed25519 public key is {len(public)} bytes, not 32")
    material = name.encode("utf-8") + b"\n" + bytes((ED25519_SIGNATURE_TYPE,)) + public
    return sha256(material)[:KEY_HASH_BYTES]


def _check_note_text(text: bytes) -> str:
    """C2SP signed-note: valid UTF-8, no control characters but newline, ending in a newline."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointInvalid("note is not valid UTF-8") from exc
    if any(ch < " " and ch != "\n" for ch in decoded):
        raise CheckpointInvalid("note contains a control character other than newline")
    return decoded


def sign_note(text: bytes, key_name: str, identity_key: IdentityKey) -> bytes:
    """Sign a note text with one Ed25519 key and return the signed note.

    Raises:
        CheckpointInvalid: the text is empty, does not end in a newline, is not valid UTF-8 or
            has a control character; the key name is invalid; or the note would be too large.
    """
    decoded = _check_note_text(text)
    if not decoded.endswith("\n"):
        raise CheckpointInvalid("note text must end with a newline")
    key_hash = note_key_hash(key_name, identity_key.public.raw)
    signature = identity_key.sign(text)
    line = f"{SIGNATURE_LINE_PREFIX}{key_name} {_std_b64(key_hash + signature)}\n"
    note = text + b"\n" + line.encode("utf-8")
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointInvalid(f"signed note would exceed {MAX_NOTE_BYTES} bytes")
    return note


def _signature_lines(block: str) -> Iterator[tuple[str, bytes, bytes]]:
    """Parse the signature block into (key name, key hash, signature) triples."""
    if not block.endswith("\n"):
        raise CheckpointInvalid("note has no signature lines or does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointInvalid(f"note has {len(lines)} signatures (at most {MAX_SIGNATURES})")
    for line in lines:
        if not line.startswith(SIGNATURE_LINE_PREFIX):
            raise CheckpointInvalid("signature line does not start with an em dash and a space")
        name, separator, encoded = line.removeprefix(SIGNATURE_LINE_PREFIX).partition(" ")
        if not separator:
            raise CheckpointInvalid("signature line has no space between key name and signature")
        _check_key_name(name)
        raw = _std_unb64(encoded, "signature")
        # C2SP signed-note: a key hash and at least one signature byte.
        if len(raw) <= KEY_HASH_BYTES:
            raise CheckpointInvalid("signature is shorter than a key hash and one byte")
        yield name, raw[:KEY_HASH_BYTES], raw[KEY_HASH_BYTES:]


def open_note(note: bytes, key_name: str, public_key: bytes) -> bytes:
    """Check a signed note against one known Ed25519 key and return its verified text.

    Signature lines of other keys (another name, or another key hash) are parsed and ignored,
    as C2SP signed-note requires. Every line of the known key must verify, and there must be at
    least one.

    Raises:
        CheckpointInvalid: the key name or public key is invalid; or the note is over 1 MiB,
            not valid UTF-8, has a control character other than newline, has no blank line
            before its signatures, has a malformed signature line (non-canonical base64
            included) or more than 100 of them, has no signature by the known key, or has one
            that does not verify.
    """
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointInvalid(f"note is {len(note)} bytes (at most {MAX_NOTE_BYTES})")
    key_hash = note_key_hash(key_name, public_key)
    decoded = _check_note_text(note)
    # The text ends at the last blank line (C2SP signed-note §Format); it keeps its newline.
    split = decoded.rfind("\n\n")
    if split < 0:
        raise CheckpointInvalid("note has no blank line before its signatures")
    text = decoded[: split + 1].encode("utf-8")
    verified = 0
    for name, line_key_hash, signature in _signature_lines(decoded[split + 2 :]):
        if name != key_name or line_key_hash != key_hash:
            continue
        if len(signature) != SIGNATURE_BYTES:
            raise CheckpointInvalid(f"Ed25519 signature by {key_name!r} is not 64 bytes")
        try:
            verify_signature(public_key, text, signature)
        except BadSignature as exc:
            raise CheckpointInvalid(f"signature by {key_name!r} does not verify") from exc
        verified += 1
    if verified == 0:
        raise CheckpointInvalid(f"note has no signature by key {key_name!r}")
    return text


def sign_checkpoint(checkpoint: Checkpoint, key_name: str, identity_key: IdentityKey) -> bytes:
    """The checkpoint's body as a note signed by ``identity_key`` under ``key_name``.

    Raises:
        CheckpointInvalid: the key name is invalid or the note would exceed 1 MiB.
    """
    return sign_note(checkpoint.body(), key_name, identity_key)


def open_checkpoint(
    note: bytes, origin: str, public_key: bytes, *, key_name: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note of the log ``origin`` with the log's key; parse its body.

    The key name is ``key_name``, by default the origin (spec §10.3). The signature is checked
    before the body is read (C2SP signed-note: unverified text is ignored). The body must have
    at least three lines, none empty, and at most MAX_EXTENSION_LINES after them; its origin
    line must be exactly ``origin``; the size is ASCII decimal without leading zeros (``0`` for
    the empty tree) and at most 2**64-1; the root is the canonical padded standard base64 of
    exactly 32 bytes.

    Raises:
        CheckpointInvalid: everything ``open_note`` raises for, and any body rule above.
    """
    checkpoint = _parse_body(open_note(note, origin if key_name is None else key_name, public_key))
    if checkpoint.origin != origin:
        raise CheckpointInvalid(
            f"checkpoint of log {checkpoint.origin!r}, not of the configured {origin!r}"
        )
    return checkpoint


def _parse_body(text: bytes) -> Checkpoint:
    """Parse verified checkpoint text; ``text`` is UTF-8 without control characters."""
    if text.count(b"\n") > 3 + MAX_EXTENSION_LINES:  # counted before any line is looked at
        raise CheckpointInvalid(f"checkpoint has more than {MAX_EXTENSION_LINES} extension lines")
    lines = text.decode("utf-8")[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointInvalid(f"checkpoint has {len(lines)} lines, needs origin, size and root")
    if not all(lines):
        raise CheckpointInvalid("checkpoint has an empty line")
    origin, size_text, root_text, *extensions = lines
    if len(size_text) > _MAX_SIZE_DIGITS or _SIZE_PATTERN.fullmatch(size_text) is None:
        raise CheckpointInvalid("tree size is not a decimal number without leading zeros")
    root = _std_unb64(root_text, "root hash")
    checkpoint = Checkpoint(origin, int(size_text), root, tuple(extensions))
    # Defence in depth: the one accepted spelling is the one we would write.
    if checkpoint.body() != text:
        raise CheckpointInvalid("checkpoint text is not in canonical form")
    return checkpoint
