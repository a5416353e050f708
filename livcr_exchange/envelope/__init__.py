"""Sealed envelopes: seal, parse, verify and open (spec §6)."""

from .cosign import CosignedFacts, build_block, content_digest, cosign, verify_cosignatures
from .header import Cosignature, CosignBlock, Header, HeaderCore, Recipient
from .open import (
    Freshness,
    OpenedMessage,
    StreamOpening,
    UnverifiedEnvelope,
    VerifiedEnvelope,
    open_envelope,
    open_stream,
    open_stream_verified,
    open_verified,
)
from .seal import (
    AttachmentBytes,
    MessageSpec,
    SealParts,
    SealTrace,
    draw_parts,
    prekeys_valid_at,
    seal,
    seal_from_parts,
    seal_from_parts_stream,
    seal_stream,
)

__all__ = [
    "AttachmentBytes",
    "CosignBlock",
    "Cosignature",
    "CosignedFacts",
    "Freshness",
    "Header",
    "HeaderCore",
    "MessageSpec",
    "OpenedMessage",
    "Recipient",
    "SealParts",
    "SealTrace",
    "StreamOpening",
    "UnverifiedEnvelope",
    "VerifiedEnvelope",
    "build_block",
    "content_digest",
    "cosign",
    "draw_parts",
    "open_envelope",
    "open_stream",
    "open_stream_verified",
    "open_verified",
    "prekeys_valid_at",
    "seal",
    "seal_from_parts",
    "seal_from_parts_stream",
    "seal_stream",
    "verify_cosignatures",
]
