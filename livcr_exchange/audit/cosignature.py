"""C2SP tlog-cosignature v1 (Ed25519, signature type 0x04): witness keys, cosigning, quorum.

A cosignature is a signed-note signature line ``— <witness name> base64(key id[4] ||
timestamp[8, big-endian] || Ed25519 signature[64])`` over ``"cosignature/v1\\n" +
"time <timestamp>\\n" + checkpoint body``. The key id is ``SHA-256(name || 0x0A || 0x04 ||
public key)[:4]``. Time is always an argument: nothing here reads a clock.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from ..constants import ED25519_PUBLIC_BYTES, MAX_CLOCK_SKEW, SIGNATURE_BYTES
from ..errors import (
    BadSignature,
    CheckpointInvalid,
    CosignatureInvalid,
    Malformed,
    QuorumNotMet,
    TimestampOutOfWindow,
)
from ..hashing import sha256
from ..keys import IdentityKey, verify_signature
from .checkpoint import (
    KEY_HASH_BYTES,
    MAX_NOTE_BYTES,
    SIGNATURE_LINE_PREFIX,
    Checkpoint,
    _check_key_name,
    _check_note_text,
    _signature_lines,
    _std_b64,
    open_checkpoint,
)

COSIGNATURE_TYPE: Final = 0x04  # C2SP signed-note §Signature types
COSIGNATURE_HEADER: Final = b"cosignature/v1\n"
MAX_COSIGNATURE_TIMESTAMP: Final = 2**63 - 1
TIMESTAMP_BYTES: Final = 8
_TIMESTAMPED_SIGNATURE_BYTES: Final = TIMESTAMP_BYTES + SIGNATURE_BYTES


def cosigner_key_id(name: str, public: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public)[:4] (C2SP tlog-cosignature §Format).

    Raises:
        Malformed: the name is not a valid note key name, or the key is not 32 bytes.
    """
    try:
        _check_key_name(name)
    except CheckpointInvalid as exc:
        raise Malformed(f"witness name: {exc}") from exc
    if len(public) != ED25519_PUBLIC_BYTES:
        raise Malformed(f"witness public key is {len(public)} bytes, not 32")
    return sha256(name.encode("utf-8") + b"\n" + bytes((COSIGNATURE_TYPE,)) + public)[
        :KEY_HASH_BYTES
    ]


@dataclass(frozen=True)
class WitnessKey:
    """A witness (cosigner): its name and Ed25519 public key. Construction raises Malformed."""

    name: str
    public: bytes

    def __post_init__(self) -> None:
        cosigner_key_id(self.name, self.public)

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public)

    def vkey(self) -> str:
        """The C2SP signed-note verifier key: ``name+hex(key id)+base64(0x04 || public)``."""
        material = _std_b64(bytes((COSIGNATURE_TYPE,)) + self.public)
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def from_vkey(cls, text: str) -> WitnessKey:
        """Parse a cosignature/v1 verifier key.

        Raises:
            Malformed: not three '+'-separated parts, a signature type other than 0x04, a key
                that is not 32 bytes, non-canonical base64, or a key id that does not match.
        """
        name, _, rest = text.partition("+")
        key_id_hex, _, material_text = rest.partition("+")
        try:
            material = base64.b64decode(material_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Malformed("verifier key material is not standard base64") from exc
        if _std_b64(material) != material_text or not material:
            raise Malformed("verifier key material is not canonical base64")
        if material[0] != COSIGNATURE_TYPE:
            raise Malformed(f"verifier key type {material[0]:#04x} is not cosignature/v1 (0x04)")
        key = cls(name, material[1:])
        if key.key_id.hex() != key_id_hex:
            raise Malformed("verifier key id does not match its name and key")
        return key


@dataclass(frozen=True)
class Cosignature:
    """One valid cosignature: which witness, and the time it states."""

    witness: str
    timestamp: int


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs: header line, time line, then the checkpoint body.

    Raises:
        Malformed: the timestamp is outside 0..2**63-1.
    """
    _check_timestamp(timestamp)
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + body


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_COSIGNATURE_TIMESTAMP:
        raise Malformed(f"cosignature timestamp {timestamp!r} is outside 0..2**63-1")


def cosign(body: bytes, name: str, key: IdentityKey, timestamp: int) -> bytes:
    """A witness's cosignature/v1 signature line on a checkpoint body, newline included.

    The witness protocol never sends a zero timestamp, so neither does this function.

    Raises:
        Malformed: the name is invalid, or the timestamp is not in 1..2**63-1.
        CheckpointInvalid: the body is not a checkpoint body (one ending in a newline).
    """
    if timestamp == 0:
        raise Malformed("a witness cosignature never omits its timestamp")
    if not body.endswith(b"\n"):
        raise CheckpointInvalid("checkpoint body must end with a newline")
    key_id = cosigner_key_id(name, key.public.raw)
    signature = key.sign(cosigned_message(body, timestamp))
    encoded = _std_b64(key_id + struct.pack(">Q", timestamp) + signature)
    return f"{SIGNATURE_LINE_PREFIX}{name} {encoded}\n".encode()


def split_note(note: bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]]]:
    """A signed note's text and its (name, key id, signature) lines, unverified.

    Raises:
        CheckpointInvalid: the note breaks a C2SP signed-note rule.
    """
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointInvalid(f"note is {len(note)} bytes (at most {MAX_NOTE_BYTES})")
    decoded = _check_note_text(note)
    split = decoded.rfind("\n\n")
    if split < 0:
        raise CheckpointInvalid("note has no blank line before its signatures")
    return decoded[: split + 1].encode("utf-8"), list(_signature_lines(decoded[split + 2 :]))


def _open_cosignature(body: bytes, raw: bytes, witness: WitnessKey) -> int:
    """Verify a matched line's timestamped signature; return its timestamp.

    Raises:
        CosignatureInvalid: wrong length, a timestamp above 2**63-1, or a bad signature.
    """
    if len(raw) != _TIMESTAMPED_SIGNATURE_BYTES:
        raise CosignatureInvalid(f"cosignature by {witness.name!r} is not 8 + 64 bytes")
    (timestamp,) = struct.unpack(">Q", raw[:TIMESTAMP_BYTES])
    if timestamp > MAX_COSIGNATURE_TIMESTAMP:
        raise CosignatureInvalid(f"cosignature by {witness.name!r} has a timestamp over 2**63-1")
    try:
        verify_signature(witness.public, cosigned_message(body, timestamp), raw[TIMESTAMP_BYTES:])
    except BadSignature as exc:
        raise CosignatureInvalid(f"cosignature by {witness.name!r} does not verify") from exc
    return int(timestamp)


@dataclass(frozen=True)
class Coverage:
    """What a cosigned checkpoint proves: the checkpoint, and which witnesses vouch for it."""

    checkpoint: Checkpoint
    valid: tuple[Cosignature, ...]
    invalid: tuple[str, ...]  # names of known witnesses whose line did not verify

    def count(self) -> int:
        return len(self.valid)


def _matched_lines(
    lines: Sequence[tuple[str, bytes, bytes]], witnesses: Sequence[WitnessKey]
) -> Iterator[tuple[WitnessKey, bytes]]:
    """The lines by known witnesses (name and key id both match); others are ignored."""
    by_id = {(w.name, w.key_id): w for w in witnesses}
    for name, key_id, raw in lines:
        witness = by_id.get((name, key_id))
        if witness is not None:
            yield witness, raw


def witness_coverage(
    note: bytes,
    log_name: str,
    log_public: bytes,
    witnesses: Sequence[WitnessKey],
    *,
    now: int,
    max_future: int = MAX_CLOCK_SKEW,
) -> Coverage:
    """Open a cosigned checkpoint with the log key and count the witnesses that validly cosign it.

    Lenient on cosignatures (for counting, as an auditor does): a known witness's line that does
    not verify, or states a time more than ``max_future`` seconds after ``now``, is listed in
    ``invalid`` and not counted; a witness counts once however many lines it has.

    Raises:
        CheckpointInvalid: the note is not a checkpoint signed by the log key.
    """
    checkpoint = open_checkpoint(note, log_name, log_public)
    body, lines = split_note(note)
    valid: dict[str, Cosignature] = {}
    invalid: list[str] = []
    for witness, raw in _matched_lines(lines, witnesses):
        try:
            timestamp = _open_cosignature(body, raw, witness)
        except CosignatureInvalid:
            invalid.append(witness.name)
            continue
        if timestamp > now + max_future:
            invalid.append(witness.name)
        elif witness.name not in valid:
            valid[witness.name] = Cosignature(witness.name, timestamp)
    return Coverage(checkpoint, tuple(valid.values()), tuple(invalid))


def verify_cosigned_checkpoint(
    note: bytes,
    log_name: str,
    log_public: bytes,
    witnesses: Sequence[WitnessKey],
    quorum: int,
    *,
    now: int,
    max_future: int = MAX_CLOCK_SKEW,
) -> Coverage:
    """Verify a cosigned checkpoint strictly and require ``quorum`` distinct valid witnesses.

    Lines by unknown keys are ignored (C2SP signed-note). A line by a known witness that does
    not verify makes the note malformed, so it is refused, not skipped.

    Raises:
        CheckpointInvalid: the note is not a checkpoint signed by the log key.
        CosignatureInvalid: a known witness's line does not verify (a tampered timestamp too).
        TimestampOutOfWindow: a cosignature states a time more than ``max_future`` s ahead.
        QuorumNotMet: fewer than ``quorum`` distinct known witnesses cosigned.
        Malformed: ``quorum`` is below 1.
    """
    if quorum < 1:
        raise Malformed(f"a witness quorum must be at least 1, not {quorum}")
    checkpoint = open_checkpoint(note, log_name, log_public)
    body, lines = split_note(note)
    valid: dict[str, Cosignature] = {}
    for witness, raw in _matched_lines(lines, witnesses):
        timestamp = _open_cosignature(body, raw, witness)
        if timestamp > now + max_future:
            raise TimestampOutOfWindow(
                f"cosignature by {witness.name!r} is dated {timestamp - now} s in the future"
            )
        valid.setdefault(witness.name, Cosignature(witness.name, timestamp))
    if len(valid) < quorum:
        raise QuorumNotMet(f"{len(valid)} of the {quorum} witnesses needed cosigned")
    return Coverage(checkpoint, tuple(valid.values()), ())


def verify_cosignature_line(body: bytes, line: bytes, witness: WitnessKey) -> Cosignature:
    """Verify one signature line as ``witness``'s cosignature/v1 on a checkpoint body.

    Raises:
        CheckpointInvalid: the line is not a signed-note signature line.
        CosignatureInvalid: the line is by another name or key id, or does not verify.
    """
    if not body.endswith(b"\n"):
        raise CheckpointInvalid("checkpoint body must end with a newline")
    _, lines = split_note(body + b"\n" + line)
    if len(lines) != 1:
        raise CheckpointInvalid("expected exactly one signature line")
    matched = list(_matched_lines(lines, [witness]))
    if not matched:
        raise CosignatureInvalid(f"the line is not by witness {witness.name!r} and its key")
    return Cosignature(witness.name, _open_cosignature(body, matched[0][1], witness))


def valid_cosignature_lines(
    note: bytes,
    log_name: str,
    log_public: bytes,
    witnesses: Sequence[WitnessKey],
    *,
    now: int,
    max_future: int = MAX_CLOCK_SKEW,
) -> dict[str, bytes]:
    """The signature lines of a cosigned checkpoint that count (see ``witness_coverage``), one
    per witness name, each a complete line with its newline, for merging into another copy.

    Raises:
        CheckpointInvalid: the note is not a checkpoint signed by the log key.
    """
    coverage = witness_coverage(
        note, log_name, log_public, witnesses, now=now, max_future=max_future
    )
    counted = {c.witness for c in coverage.valid}
    body, lines = split_note(note)
    found: dict[str, bytes] = {}
    for name, key_id, raw in lines:
        if name in counted and name not in found:
            witness = next(w for w in witnesses if w.name == name)
            if key_id != witness.key_id:
                continue
            try:
                _open_cosignature(body, raw, witness)
            except CosignatureInvalid:
                continue
            found[name] = f"{SIGNATURE_LINE_PREFIX}{name} {_std_b64(key_id + raw)}\n".encode()
    return found
