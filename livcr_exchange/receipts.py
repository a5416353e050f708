"""Checking a hub's receipt for a submitted envelope: the leaf rebuilt, its inclusion proven."""

from __future__ import annotations

from .audit.checkpoint import Checkpoint
from .audit.leaves import EnvelopeAccepted, salt_from_hex
from .audit.merkle import leaf_hash, verify_inclusion
from .envelope.incoming import ReceivedEnvelope
from .errors import ProofInvalid
from .hub_answers import ReceiptAnswer


def verify_receipt(envelope: bytes, receipt: ReceiptAnswer, checkpoint: Checkpoint) -> None:
    """Check that ``receipt`` proves ``envelope``'s leaf under ``checkpoint`` (opened and
    verified by the caller); see ``verify_receipt_of``.

    Raises:
        ProofInvalid: the receipt names another message or size, or its proof does not verify.
        Malformed: ``envelope`` does not parse.
    """
    verify_receipt_of(ReceivedEnvelope.whole(envelope), receipt, checkpoint)


def verify_receipt_of(
    envelope: ReceivedEnvelope, receipt: ReceiptAnswer, checkpoint: Checkpoint
) -> None:
    """As ``verify_receipt``, for an envelope known by its header and digests (one read from a
    file piece by piece): the leaf rebuilt from them and the receipt's time, the tree size the
    checkpoint's, the inclusion proof valid against its root.

    Raises:
        ProofInvalid: the receipt names another message or size, or its proof does not verify.
    """
    parsed = envelope.envelope
    if receipt.message_id != parsed.message_id.hex():
        raise ProofInvalid(
            f"receipt for message {receipt.message_id}, not {parsed.message_id.hex()}"
        )
    if checkpoint.size != receipt.tree_size:
        raise ProofInvalid(
            f"receipt for tree size {receipt.tree_size} carries a checkpoint of {checkpoint.size}"
        )
    leaf = EnvelopeAccepted(
        receipt.logged_at,
        salt_from_hex(receipt.salt),
        parsed.message_id,
        parsed.sender_id,
        parsed.purpose,
        parsed.case_ref,
        parsed.recipient_ids,
        envelope.envelope_hash,
        envelope.size,
    )
    verify_inclusion(
        leaf_hash(leaf.encode()),
        receipt.leaf_index,
        receipt.tree_size,
        receipt.inclusion_proof,
        checkpoint.root,
    )
