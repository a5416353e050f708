"""C2SP tlog-witness add-checkpoint: request and response bytes, and the witness's decision.

The decision is a pure function of the request, the log's key and the last checkpoint this
witness cosigned for that log: it cosigns only a consistent extension of that checkpoint, and
refuses everything else with the error whose HTTP status C2SP names (``HTTP_STATUS``). Storing
the new state atomically with the check is the caller's job (C2SP tlog-witness §add-checkpoint).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from ..errors import (
    CheckpointInvalid,
    LivcrError,
    Malformed,
    ProofInvalid,
    UnknownLog,
    WitnessConflict,
)
from .checkpoint import SIGNATURE_LINE_PREFIX, Checkpoint, _std_b64, open_checkpoint
from .cosignature import split_note
from .merkle import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE, verify_consistency

MAX_PROOF_LINES: Final = 63
MAX_REQUEST_BYTES: Final = 1 << 20
SIZE_CONTENT_TYPE: Final = "text/x.tlog.size"
_SIZE: Final = r"(?:0|[1-9][0-9]{0,19})"
_OLD_LINE: Final = re.compile(rf"old ({_SIZE})")
_SIZE_BODY: Final = re.compile(rf"({_SIZE})\n")

# C2SP tlog-witness status codes for each refusal.
HTTP_STATUS: Final[dict[str, int]] = {
    "malformed": 400,
    "checkpoint_invalid": 403,
    "unknown_log": 404,
    "witness_conflict": 409,
    "proof_invalid": 422,
}


def http_status(error: LivcrError) -> int:
    """The HTTP status a witness answers for a refusal (400 for anything unnamed)."""
    return HTTP_STATUS.get(error.code, 400)


def _size(text: str, what: str) -> int:
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise Malformed(f"{what} {value} is above 2**64-1")
    return value


@dataclass(frozen=True)
class AddCheckpoint:
    """An add-checkpoint request: the old size, a consistency proof, a signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes

    def encode(self) -> bytes:
        """``old <size>\\n``, one base64 line per proof hash, a blank line, then the note.

        Raises:
            Malformed: more than 63 proof hashes, or one that is not 32 bytes.
        """
        _check_proof(self.proof)
        lines = [f"old {self.old_size}", *(_std_b64(h) for h in self.proof), ""]
        return "".join(line + "\n" for line in lines).encode("ascii") + self.note


def _check_proof(proof: tuple[bytes, ...]) -> None:
    if len(proof) > MAX_PROOF_LINES:
        raise Malformed(f"{len(proof)} consistency proof lines (at most {MAX_PROOF_LINES})")
    if any(len(h) != HASH_SIZE for h in proof):
        raise Malformed("a consistency proof hash is not 32 bytes")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint request body (the note itself is checked later, with its key).

    Raises:
        Malformed: over 1 MiB, no ``old`` line, a size with leading zeros or above 2**64-1,
            more than 63 proof lines, a proof line that is not base64 of 32 bytes, or no blank
            line before the checkpoint.
    """
    if len(body) > MAX_REQUEST_BYTES:
        raise Malformed(f"add-checkpoint request over {MAX_REQUEST_BYTES} bytes")
    head, separator, note = body.partition(b"\n\n")
    if not separator:
        raise Malformed("add-checkpoint request has no blank line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise Malformed("add-checkpoint header lines are not ASCII") from exc
    match = _OLD_LINE.fullmatch(lines[0])
    if match is None:
        raise Malformed("add-checkpoint request does not start with 'old <size>'")
    proof = tuple(_proof_hash(line) for line in lines[1:])
    _check_proof(proof)
    return AddCheckpoint(_size(match.group(1), "old size"), proof, note)


def _proof_hash(line: str) -> bytes:
    try:
        value = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed("a consistency proof line is not standard base64") from exc
    if len(value) != HASH_SIZE or _std_b64(value) != line:
        raise Malformed("a consistency proof line is not canonical base64 of 32 bytes")
    return value


def encode_size(size: int) -> bytes:
    """The body of a 409 answer: the size the witness last cosigned, in decimal, a newline."""
    return b"%d\n" % size


def parse_size(body: bytes) -> int:
    """Raises Malformed unless ``body`` is a ``text/x.tlog.size`` body."""
    match = _SIZE_BODY.fullmatch(body.decode("ascii", "replace"))
    if match is None:
        raise Malformed("a witness's size answer is not a decimal size and a newline")
    return _size(match.group(1), "witness size")


def parse_cosignature_lines(body: bytes) -> list[bytes]:
    """The signature lines of a 200 answer, each kept with its newline.

    Raises:
        CheckpointInvalid: a line that is not a signed-note signature line, or none at all.
    """
    split_note(b"x\n\n" + body)  # the signed-note line grammar, on a placeholder text
    return body.splitlines(keepends=True)


def merge_signatures(note: bytes, lines: list[bytes]) -> bytes:
    """The note with ``lines`` appended after its own, each signature line once.

    Raises:
        CheckpointInvalid: the note, or the merged note, breaks a signed-note rule.
    """
    split_note(note)
    present = set(note.split(b"\n\n")[-1].splitlines(keepends=True))
    merged = note + b"".join(line for line in dict.fromkeys(lines) if line not in present)
    split_note(merged)
    return merged


def note_origin(note: bytes) -> str:
    """The origin line of a note, unverified, to find the key it must verify against.

    Raises:
        CheckpointInvalid: not a signed note.
    """
    text, _ = split_note(note)
    return text.decode("utf-8").split("\n", 1)[0]


@dataclass(frozen=True)
class LogKey:
    """A log a witness follows: its origin and the note key its checkpoints are signed with."""

    origin: str
    key_name: str
    public: bytes


@dataclass(frozen=True)
class Cosigned:
    """The last checkpoint a witness cosigned for a log: its size and root."""

    size: int
    root: bytes


def decide(request: AddCheckpoint, log: LogKey | None, last: Cosigned | None) -> Checkpoint:
    """Judge an add-checkpoint request; return the checkpoint to cosign and record.

    ``last`` is the checkpoint this witness last cosigned for the log (None: never). The checks
    run in C2SP tlog-witness order, so each refusal has its status.

    Raises:
        UnknownLog: the origin is not a log this witness follows (404).
        CheckpointInvalid: no valid signature by the log's key (403).
        Malformed: the old size is above the checkpoint's size (400).
        WitnessConflict: the old size is not the last cosigned size (409).
        ProofInvalid: a size-0 checkpoint with another root, a proof from size 0, a proof that
            does not verify, or a same-size checkpoint with another root (422).
    """
    if log is None or note_origin(request.note) != log.origin:
        raise UnknownLog("this witness does not follow that log")
    checkpoint = open_checkpoint(request.note, log.key_name, log.public)
    if checkpoint.origin != log.origin:
        raise CheckpointInvalid("checkpoint origin is not the log's")
    if request.old_size > checkpoint.size:
        raise Malformed(f"old size {request.old_size} is above the checkpoint's {checkpoint.size}")
    last_size = 0 if last is None else last.size
    if request.old_size != last_size:
        raise WitnessConflict(f"old size {request.old_size}, last cosigned {last_size}")
    if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
        raise ProofInvalid("a checkpoint of size 0 must have the empty tree's root")
    if request.old_size == 0:
        if request.proof:
            raise ProofInvalid("a consistency proof from size 0 must be empty")
        return checkpoint
    if last is None:  # unreachable: old_size == last_size > 0; narrows the type
        raise WitnessConflict("no cosigned checkpoint to extend")
    verify_consistency(last.size, checkpoint.size, last.root, checkpoint.root, request.proof)
    return checkpoint


def cosignature_response(lines: list[bytes]) -> bytes:
    """A 200 body: the witness's signature lines (each starts with the em dash)."""
    prefix = SIGNATURE_LINE_PREFIX.encode()
    if not lines or not all(ln.startswith(prefix) and ln.endswith(b"\n") for ln in lines):
        raise Malformed("a cosignature answer is one or more signature lines")
    return b"".join(lines)
