"""The one rooted error hierarchy; every peer-facing error carries a stable ``code``.

The codes are the ones in the spec's error table (specs/livcr-exchange.md §13) and in the
vectors' ``expect`` field. The message (``str(error)``) is precise and meant for our own logs;
``wire_reason`` is what a peer may be told. Cryptographic failures share one coarse wire reason
so that a remote party cannot use the answer as an oracle.
"""

from __future__ import annotations

from typing import ClassVar

CRYPTO_WIRE_REASON = "message could not be verified or decrypted"


class LivcrError(Exception):
    """Root of every error this library raises on purpose."""

    code: ClassVar[str] = "livcr_error"
    crypto: ClassVar[bool] = False

    @property
    def wire_reason(self) -> str:
        """What may be said to a peer: coarse for crypto failures, precise otherwise."""
        return CRYPTO_WIRE_REASON if self.crypto else str(self)


# Families (not raised themselves).
class EncodingError(LivcrError):
    """Bytes that do not parse as the format says."""

    code = "malformed"


class VerificationError(LivcrError):
    """A signature, proof or authenticated ciphertext did not check."""

    code = "verification_failed"
    crypto = True


class TrustError(LivcrError):
    """A key, sender or statement the directory does not vouch for."""

    code = "untrusted"


class FreshnessError(LivcrError):
    """Something outside its validity window, or seen before."""

    code = "stale"


class PolicyError(LivcrError):
    """A request the purpose rules do not allow."""

    code = "policy_denied"


class StateError(LivcrError):
    """A case transition the state table does not allow."""

    code = "state"


class LimitError(LivcrError):
    """Input larger than a named limit."""

    code = "oversized"


class LocalKeyError(LivcrError):
    """A local secret-key file that cannot be unlocked."""

    code = "local_key"


# Encoding.
class Malformed(EncodingError):
    """The bytes do not follow the grammar (truncated, trailing bytes, bad length, bad value)."""

    code = "malformed"


class NonCanonical(EncodingError):
    """The bytes parse, but are not the one canonical encoding of what they say."""

    code = "non_canonical"


class UnsupportedVersion(EncodingError):
    """A protocol version or suite this implementation does not speak."""

    code = "unsupported_version"


class Oversized(LimitError):
    """Larger than the limit the spec names for it."""

    code = "oversized"


# Verification (all share the coarse wire reason).
class BadSignature(VerificationError):
    """An Ed25519 signature did not verify."""

    code = "bad_signature"


class NotARecipient(VerificationError):
    """The envelope has no stanza for this receiver."""

    code = "not_a_recipient"


class StanzaInvalid(VerificationError):
    """A recipient stanza has the wrong length for its suite or names an unknown prekey."""

    code = "stanza_invalid"


class LowOrderShare(VerificationError):
    """An X25519 share in a stanza is a low-order point (contributes no secret)."""

    code = "low_order_share"


class UnwrapFailed(VerificationError):
    """HPKE could not open the content key for this receiver."""

    code = "unwrap_failed"


class CommitmentMismatch(VerificationError):
    """The unwrapped content key does not match the header's key commitment."""

    code = "commitment_mismatch"


class PayloadAuthFailed(VerificationError):
    """A body chunk failed XChaCha20-Poly1305 authentication."""

    code = "payload_auth_failed"


class PayloadTruncated(VerificationError):
    """The chunk stream ended before its final chunk, or went on after it."""

    code = "payload_truncated"


class ProofInvalid(VerificationError):
    """A Merkle inclusion or consistency proof does not reproduce the expected root."""

    code = "proof_invalid"


class CheckpointInvalid(VerificationError):
    """A checkpoint note that does not parse or whose signature does not verify."""

    code = "checkpoint_invalid"


class CosignatureInvalid(VerificationError):
    """A co-signature on a terugkoppelingsfiche is missing, unknown or does not verify."""

    code = "cosignature_invalid"


class DigestMismatch(VerificationError):
    """The opened body does not match the content digest its co-signers signed."""

    code = "digest_mismatch"


# Trust.
class UnknownSender(TrustError):
    """No directory entry for this participant, or the key id is not theirs."""

    code = "unknown_sender"


class KeyRevoked(TrustError):
    """The key was revoked at or before the time it is judged at."""

    code = "key_revoked"


class KeyNotValid(TrustError):
    """The key exists but the time is outside its not_before/not_after window."""

    code = "key_not_valid"


# Freshness.
class Expired(FreshnessError):
    """The message's expiry has passed."""

    code = "expired"


class TimestampOutOfWindow(FreshnessError):
    """The timestamp is further from the judging time than the clock tolerance allows."""

    code = "timestamp_out_of_window"


class LoggedAtOutOfBounds(FreshnessError):
    """The hub's log time lies outside [timestamp - MAX_CLOCK_SKEW, expires_at) (spec §9.2)."""

    code = "logged_at_out_of_bounds"


class Replayed(FreshnessError):
    """This (sender, message id) has been accepted before."""

    code = "replayed"


# Policy (raised by ``Decision.raise_for_denial``; evaluate() itself returns a value).
class PurposeNotAllowed(PolicyError):
    """The sender's role or directory entry does not allow this purpose."""

    code = "purpose_not_allowed"


class RecipientNotAllowed(PolicyError):
    """A recipient's role, membership or presence does not allow it to receive this purpose."""

    code = "recipient_not_allowed"


class CaseStateForbids(PolicyError):
    """The case's current state does not allow this purpose."""

    code = "case_state_forbids"


class BodySchemaViolation(PolicyError):
    """The body does not match its purpose's schema (unknown field, too long, missing reason)."""

    code = "body_schema_violation"


# Attachments (spec §6.7): each refusal of a document has its own code.
class AttachmentError(PolicyError):
    """An attachment the purpose's rules or its own metadata do not allow."""

    code = "attachment_refused"


class AttachmentNotAllowed(AttachmentError):
    """The purpose carries no attachments, or fewer than the message carries."""

    code = "attachment_not_allowed"


class AttachmentTypeNotAllowed(AttachmentError):
    """The declared media type is not one the purpose allows."""

    code = "attachment_type_not_allowed"


class AttachmentNameInvalid(AttachmentError):
    """A filename outside the rule: not single-line NFC, a path separator, too long, an
    extension that does not match the media type, or a name given twice."""

    code = "attachment_name_invalid"


class AttachmentTooLarge(AttachmentError):
    """A file over the purpose's per-file cap, or files together over its total cap."""

    code = "attachment_too_large"


class AttachmentSizeMismatch(AttachmentError):
    """The plaintext is not the body JSON followed by exactly the declared attachment sizes."""

    code = "attachment_size_mismatch"


class AttachmentDigestMismatch(AttachmentError):
    """An attachment's bytes do not hash to the digest its body names."""

    code = "attachment_digest_mismatch"


class AttachmentTypeMismatch(AttachmentError):
    """An attachment's content is not of its declared media type (judged by content)."""

    code = "attachment_type_mismatch"


class AttachmentActiveContent(AttachmentError):
    """A document carrying active content: PDF scripts, launch actions or embedded files; ODF
    macros or scripts."""

    code = "attachment_active_content"


# State.
class IllegalTransition(StateError):
    """A case transition that is not in the table."""

    code = "illegal_transition"


# Witnesses (spec §10.6-§10.8).
class UnknownLog(TrustError):
    """A checkpoint for a log (origin) the witness does not follow."""

    code = "unknown_log"


class WitnessConflict(StateError):
    """An add-checkpoint whose old size is not the size the witness last cosigned."""

    code = "witness_conflict"


class QuorumNotMet(TrustError):
    """Fewer than the policy's quorum of witnesses validly cosigned a checkpoint."""

    code = "quorum_not_met"


# Local keys.
class WrongPassphrase(LocalKeyError):
    """The passphrase does not open this secret-key file (or the file was altered)."""

    code = "wrong_passphrase"


def error_codes() -> dict[str, type[LivcrError]]:
    """Every concrete error code, mapped to the class that introduces it.

    Families are excluded, and so is a subclass that does not set a code of its own (a store's
    more specific duplicate is still a ``replayed`` on the wire).
    """
    families = {
        LivcrError,
        EncodingError,
        VerificationError,
        TrustError,
        FreshnessError,
        PolicyError,
        StateError,
        LimitError,
        LocalKeyError,
        AttachmentError,
    }
    found: dict[str, type[LivcrError]] = {}
    stack: list[type[LivcrError]] = [LivcrError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls not in families and "code" in vars(cls):
            found[cls.code] = cls
    return found
