"""What an auditor fetched from the hub, and its verification offline (spec §16.1).

The evidence file holds the signed directory, the signed checkpoints seen (an earlier audit's
first, if any), the consistency proofs between them and every leaf of the log up to the last
checkpoint (its hash, and its data where the hub kept it). Verifying it needs no network: the
directory against the cell's root key, every checkpoint against the log key, every consistency
proof, every leaf's hash against its data, and the tree recomputed from all leaf hashes against
every checkpoint's root, which proves every leaf's inclusion.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from dataclasses import dataclass
from typing import Final

import msgspec

from ..audit.checkpoint import Checkpoint
from ..audit.leaves import DirectoryChange, Leaf, decode_leaf
from ..audit.leaves import statement_hash as leaf_statement_hash
from ..audit.merkle import LeafHashList, leaf_hash, root_hash, verify_consistency
from ..directory import Directory
from ..errors import CheckpointInvalid, Malformed, ProofInvalid
from ..keys import IdentityPublicKey
from ..statements import DirectoryEntry, Revocation
from ..witness_policy import WitnessPolicy
from .model import CheckpointSeen
from .witnessing import checkpoint_seen

EVIDENCE_FORMAT: Final = "livcr-audit-evidence/1"
# The hash a directory-change leaf carries of its signed statement (spec §10.4).


class LeafRecord(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    index: int
    hash: str  # standard base64
    data: str | None  # standard base64; None when deleted by retention or withheld
    withheld: bool = False


class ConsistencyRecord(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    old: int
    new: int
    proof: list[str]


class Evidence(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: str
    cell_id: str
    origin: str
    root_key: str
    log_key: str
    fetched_at: int
    directory_entries: list[str]
    directory_revocations: list[str]
    checkpoints: list[str]  # signed notes by size, the current one last (spec §16.1)
    previous_audit_size: int | None = None  # the size of the last checkpoint an earlier audit saw
    witness_policy: str | None = None  # the root-signed witness policy (standard base64), if any
    consistency: list[ConsistencyRecord]
    leaves: list[LeafRecord]


@dataclass(frozen=True)
class VerifiedLog:
    """The evidence once every signature and proof checked out."""

    cell_id: str
    origin: str
    directory: Directory
    checkpoints: tuple[CheckpointSeen, ...]
    leaves: tuple[Leaf, ...]  # the readable ones, in log order
    deleted: int  # leaves whose data retention deleted
    withheld: int  # leaves whose data the hub did not show the auditor
    statements_logged: int  # directory statements found in the log
    statements: dict[bytes, DirectoryEntry | Revocation]  # by their leaf's statement hash
    consistent_from_size: int | None


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed(f"{what} is not base64") from exc


def _utf8(note: str) -> bytes:
    try:
        return note.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape
        raise CheckpointInvalid("a checkpoint note is not valid Unicode text") from exc


def decode_evidence(data: bytes) -> Evidence:
    """Raises Malformed for a file that is not audit evidence of this format."""
    try:
        evidence = msgspec.json.decode(data, type=Evidence)
    except msgspec.DecodeError as exc:
        raise Malformed(f"evidence: {exc}") from exc
    if evidence.format != EVIDENCE_FORMAT:
        raise Malformed("not livcr-audit-evidence/1")
    return evidence


def verify_evidence(evidence: Evidence) -> VerifiedLog:
    """Check everything the evidence claims, offline.

    Raises:
        BadSignature, Malformed, NonCanonical: a directory statement or the witness policy
            that does not verify against the root key or does not decode.
        CheckpointInvalid: a checkpoint not signed by the log key, or of another log.
        ProofInvalid: a consistency proof that fails; checkpoints out of order (a rollback);
            leaves missing or out of order; a leaf whose data does not match its hash; a tree
            that does not reproduce a checkpoint's root; a directory statement not in the log.
    """
    root = IdentityPublicKey.from_text(evidence.root_key)
    log_key = IdentityPublicKey.from_text(evidence.log_key).raw
    entries = [_unb64(s, "directory entry") for s in evidence.directory_entries]
    revocations = [_unb64(s, "revocation") for s in evidence.directory_revocations]
    directory = Directory.from_signed(evidence.cell_id, root, entries, revocations)
    policy = (
        None
        if evidence.witness_policy is None
        else WitnessPolicy.open(
            _unb64(evidence.witness_policy, "witness policy"), root, evidence.cell_id
        )
    )
    seen = [
        checkpoint_seen(_utf8(note), evidence.origin, log_key, policy, now=evidence.fetched_at)
        for note in evidence.checkpoints
    ]
    if not seen:
        raise CheckpointInvalid("the evidence holds no checkpoint")
    if evidence.previous_audit_size is not None and evidence.previous_audit_size not in {
        c.size for c, _ in seen
    }:
        raise Malformed("the earlier audit's checkpoint is not among the checkpoints")
    for checkpoint, _ in seen:
        if checkpoint.origin != evidence.origin:
            raise CheckpointInvalid(f"a checkpoint of another log: {checkpoint.origin!r}")
    _check_consistency([c for c, _ in seen], evidence.consistency)
    tree, leaves, deleted, withheld = _read_leaves(evidence.leaves, seen[-1][0].size)
    for checkpoint, _ in seen:
        if root_hash(tree, checkpoint.size) != checkpoint.root:
            raise ProofInvalid(f"the leaves do not reproduce the root of size {checkpoint.size}")
    logged = {leaf.statement_hash for leaf in leaves if isinstance(leaf, DirectoryChange)}
    statements: dict[bytes, DirectoryEntry | Revocation] = {}
    pairs: list[tuple[bytes, DirectoryEntry | Revocation]] = [
        *zip(entries, directory.entries, strict=True),
        *zip(revocations, directory.revocations, strict=True),
    ]
    for signed, statement in pairs:
        statement_hash = leaf_statement_hash(signed)
        if statement_hash not in logged:
            raise ProofInvalid(f"a directory statement of {statement.participant_id} is not logged")
        statements[statement_hash] = statement
    return VerifiedLog(
        cell_id=evidence.cell_id,
        origin=evidence.origin,
        directory=directory,
        checkpoints=tuple(s for _, s in seen),
        leaves=tuple(leaves),
        deleted=deleted,
        withheld=withheld,
        statements_logged=len(statements),
        statements=statements,
        consistent_from_size=evidence.previous_audit_size or None,
    )


def _check_consistency(checkpoints: list[Checkpoint], proofs: list[ConsistencyRecord]) -> None:
    by_sizes = {(p.old, p.new): p.proof for p in proofs}
    for old, new in itertools.pairwise(checkpoints):
        if new.size < old.size:
            raise ProofInvalid(f"the log went back from size {old.size} to {new.size}")
        if old.size == 0:
            continue  # every tree extends the empty one
        proof = by_sizes.get((old.size, new.size))
        if proof is None:
            raise ProofInvalid(f"no consistency proof from size {old.size} to {new.size}")
        hashes = [_unb64(h, "proof hash") for h in proof]
        verify_consistency(old.size, new.size, old.root, new.root, hashes)


def _read_leaves(records: list[LeafRecord], size: int) -> tuple[LeafHashList, list[Leaf], int, int]:
    if [r.index for r in records] != list(range(size)):
        raise ProofInvalid(f"the evidence does not hold leaves 0 to {size - 1} in order")
    tree = LeafHashList()
    leaves: list[Leaf] = []
    deleted = withheld = 0
    for record in records:
        stated = _unb64(record.hash, "leaf hash")
        if record.data is None:
            withheld += record.withheld
            deleted += not record.withheld
        else:
            data = _unb64(record.data, "leaf data")
            if leaf_hash(data) != stated:
                raise ProofInvalid(f"leaf {record.index}'s data does not match its hash")
            leaves.append(decode_leaf(data))
        tree.append(stated)
    return tree, leaves, deleted, withheld
