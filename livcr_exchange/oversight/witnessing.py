"""Witness coverage of a checkpoint: the signature lines of a C2SP signed note by other keys.

The log's own signature is verified with ``open_checkpoint``. Every other line is counted as a
cosignature (C2SP tlog-cosignature lines are signed-note lines by a witness key) and named.
Where the evidence holds the cell's witness policy (signed by the root key, spec §10.8), the
lines of its witnesses are verified too, and the report says which verify and whether they
reach the quorum; lines by keys outside the policy are counted, not verified.
"""

from __future__ import annotations

import base64

from ..audit.checkpoint import SIGNATURE_LINE_PREFIX, Checkpoint, note_key_hash, open_checkpoint
from ..errors import CheckpointInvalid
from ..witness_policy import WitnessPolicy
from .model import CheckpointSeen


def signature_lines(note: bytes) -> list[tuple[str, bytes]]:
    """(key name, key hash) of every signature line after the note's last blank line.

    Raises:
        CheckpointInvalid: the note has no blank line, a line without the em-dash prefix, a
            name without a signature, or a signature that is not base64 of more than 4 bytes.
    """
    text = note.decode("utf-8", "replace")
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise CheckpointInvalid("note has no signature block")
    found: list[tuple[str, bytes]] = []
    for line in text[split + 2 : -1].split("\n"):
        name, _, encoded = line.removeprefix(SIGNATURE_LINE_PREFIX).partition(" ")
        if not line.startswith(SIGNATURE_LINE_PREFIX) or not name or not encoded:
            raise CheckpointInvalid("a signature line is not '— <name> <signature>'")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise CheckpointInvalid("a signature line is not base64") from exc
        if len(raw) <= 4:
            raise CheckpointInvalid("a signature is shorter than a key hash and one byte")
        found.append((name, raw[:4]))
    return found


def checkpoint_seen(
    note: bytes,
    key_name: str,
    log_key: bytes,
    policy: WitnessPolicy | None = None,
    *,
    now: int = 0,
) -> tuple[Checkpoint, CheckpointSeen]:
    """Verify the log's signature on ``note`` and count the other signature lines; with a
    ``policy``, verify its witnesses' lines as of ``now`` (a cosignature may not be dated
    later than MAX_CLOCK_SKEW after it).

    Raises:
        CheckpointInvalid: the note does not verify under the log key or does not parse.
    """
    checkpoint = open_checkpoint(note, key_name, log_key)
    coverage = None if policy is None else policy.coverage(note, key_name, log_key, now=now)
    own = note_key_hash(key_name, log_key)
    lines = signature_lines(note)
    others = [name for name, key_hash in lines if (name, key_hash) != (key_name, own)]
    return checkpoint, CheckpointSeen(
        origin=checkpoint.origin,
        size=checkpoint.size,
        root=base64.b64encode(checkpoint.root).decode("ascii"),
        note=note.decode("utf-8"),
        log_signatures=len(lines) - len(others),
        cosignatures=len(others),
        cosigners=sorted(set(others)),
        witnessed_by=[] if coverage is None else sorted(c.witness for c in coverage.valid),
        invalid_cosigners=[] if coverage is None else sorted(set(coverage.invalid)),
        quorum=None if policy is None else policy.quorum,
    )
