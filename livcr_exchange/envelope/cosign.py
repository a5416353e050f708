"""Co-signatures: members present at a meeting sign a body's content digest (spec §7.4).

The hub cannot read the body, so members sign ``BLAKE2b-256(LABEL_CONTENT_DIGEST || body)`` and
the hub checks the signatures; the recipient checks that the digest is the body it opened. The
body carries a random nonce so the hub cannot confirm a guessed body from the digest.
"""

from __future__ import annotations

from ..constants import LABEL_CONTENT_DIGEST, LABEL_COSIGNATURE
from ..directory import Directory
from ..errors import CosignatureInvalid, LivcrError
from ..hashing import labelled_hash
from ..keys import IdentityKey
from ..wire import Writer
from .header import Cosignature, CosignBlock


def content_digest(body: bytes) -> bytes:
    return labelled_hash(LABEL_CONTENT_DIGEST, body)


def cosignature_message(
    cell_id: str, case_ref: str, meeting_ref: str, purpose: str, digest: bytes
) -> bytes:
    return LABEL_COSIGNATURE + (
        Writer()
        .ident(cell_id)
        .ident(case_ref)
        .ident(meeting_ref)
        .ident(purpose)
        .fixed(digest, 32)
        .getvalue()
    )


def cosign(
    signer: IdentityKey,
    signer_id: str,
    *,
    cell_id: str,
    case_ref: str,
    meeting_ref: str,
    purpose: str,
    digest: bytes,
) -> Cosignature:
    """One member's co-signature over a content digest."""
    message = cosignature_message(cell_id, case_ref, meeting_ref, purpose, digest)
    return Cosignature(signer_id, signer.key_id, signer.sign(message))


def build_block(digest: bytes, signatures: list[Cosignature]) -> CosignBlock:
    """A co-signature block in canonical (ascending signer) order."""
    return CosignBlock(digest, tuple(sorted(signatures, key=lambda s: s.signer_id)))


def verify_cosignatures(
    block: CosignBlock,
    directory: Directory,
    *,
    cell_id: str,
    case_ref: str,
    meeting_ref: str,
    purpose: str,
    at: int,
) -> frozenset[str]:
    """Check every co-signature; return the set of signers.

    Raises:
        CosignatureInvalid: a signer unknown, revoked or not valid at ``at``, or a bad signature.
    """
    message = cosignature_message(cell_id, case_ref, meeting_ref, purpose, block.content_digest)
    for item in block.signatures:
        try:
            entry = directory.entry_for_key(item.signer_id, item.signer_key_id, at)
            entry.identity_key.verify(message, item.signature)
        except LivcrError as exc:
            raise CosignatureInvalid(f"co-signature of {item.signer_id}: {exc}") from exc
    return frozenset(item.signer_id for item in block.signatures)
