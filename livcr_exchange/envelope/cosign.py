"""Co-signatures: members present at a meeting sign a body's content digest (spec §7.4).

The hub cannot read the body, so members sign ``BLAKE2b-256(LABEL_CONTENT_DIGEST || body)`` and
the hub checks the signatures; the recipient checks that the digest is the body it opened. The
body carries a random nonce so the hub cannot confirm a guessed body from the digest.

Members sign delivery too: the recipient list and a deadline. The same co-signed content sent to
other recipients, or logged after the deadline, does not verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..constants import LABEL_CONTENT_DIGEST, LABEL_COSIGNATURE, MAX_RECIPIENTS
from ..directory import Directory
from ..errors import CosignatureInvalid, LivcrError
from ..hashing import labelled_hash
from ..keys import IdentityKey
from ..wire import Writer
from .header import Cosignature, CosignBlock


def content_digest(body: bytes) -> bytes:
    return labelled_hash(LABEL_CONTENT_DIGEST, body)


@dataclass(frozen=True)
class CosignedFacts:
    """What a co-signer agrees to (spec §7.4): this content, on this case and meeting, for this
    purpose, to exactly these recipients, logged no later than ``deadline``."""

    cell_id: str
    case_ref: str
    meeting_ref: str
    purpose: str
    recipients: tuple[str, ...]  # strictly ascending, as the header lists them
    deadline: int


def cosignature_message(facts: CosignedFacts, digest: bytes) -> bytes:
    """LABEL_COSIGNATURE || cell || case || meeting || purpose || digest || recipients ||
    deadline (spec §7.4). Raises Malformed or NonCanonical for recipients out of grammar."""
    return LABEL_COSIGNATURE + (
        Writer()
        .ident(facts.cell_id)
        .ident(facts.case_ref)
        .ident(facts.meeting_ref)
        .ident(facts.purpose)
        .fixed(digest, 32)
        .idents(facts.recipients, MAX_RECIPIENTS)
        .u64(facts.deadline)
        .getvalue()
    )


def cosign(signer: IdentityKey, signer_id: str, facts: CosignedFacts, digest: bytes) -> Cosignature:
    """One member's co-signature over a content digest and its delivery."""
    return Cosignature(signer_id, signer.key_id, signer.sign(cosignature_message(facts, digest)))


def build_block(digest: bytes, deadline: int, signatures: Sequence[Cosignature]) -> CosignBlock:
    """A co-signature block in canonical (ascending signer) order."""
    return CosignBlock(digest, deadline, tuple(sorted(signatures, key=lambda s: s.signer_id)))


def verify_cosignatures(
    block: CosignBlock, directory: Directory, facts: CosignedFacts, *, at: int
) -> frozenset[str]:
    """Check the deadline and every co-signature at the judging time ``at``; return the signers.

    ``facts`` are the header's (its recipients, and the block's deadline).

    Raises:
        CosignatureInvalid: ``at`` after the deadline; a signer unknown, revoked or not valid at
            ``at``; or a bad signature (other content, recipients or deadline included).
    """
    if at > facts.deadline:
        raise CosignatureInvalid(f"logged at {at}, after the co-signers' deadline {facts.deadline}")
    message = cosignature_message(facts, block.content_digest)
    for item in block.signatures:
        try:
            entry = directory.entry_for_key(item.signer_id, item.signer_key_id, at)
            entry.identity_key.verify(message, item.signature)
        except LivcrError as exc:
            raise CosignatureInvalid(f"co-signature of {item.signer_id}: {exc}") from exc
    return frozenset(item.signer_id for item in block.signatures)
