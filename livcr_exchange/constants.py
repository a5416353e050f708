"""Every domain-separation label, size limit and clock tolerance of the protocol.

Each constant appears verbatim in specs/livcr-exchange.md; the section is named beside it.
"""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 2  # §12: version 1 is not accepted

# §3 Domain-separation labels. Each ends in a NUL byte so no label is a prefix of another.
LABEL_KEY_ID: Final = b"livcr-exchange/v2 key id\x00"
LABEL_DIRECTORY_ENTRY: Final = b"livcr-exchange/v2 directory entry\x00"
LABEL_REVOCATION: Final = b"livcr-exchange/v2 revocation\x00"
LABEL_PREKEY: Final = b"livcr-exchange/v2 prekey\x00"
# A directory-change leaf names its signed statement by this hash (spec §10).
LABEL_STATEMENT: Final = b"livcr-exchange/v2 statement\x00"
LABEL_HEADER_CORE: Final = b"livcr-exchange/v2 header core\x00"
LABEL_WRAP_INFO: Final = b"livcr-exchange/v2 wrap\x00"
LABEL_COMMITMENT: Final = b"livcr-exchange/v2 key commitment\x00"
LABEL_PAYLOAD_KEY: Final = b"livcr-exchange/v2 payload key\x00"
LABEL_BODY_HASH: Final = b"livcr-exchange/v2 body\x00"
LABEL_ENVELOPE_SIGNATURE: Final = b"livcr-exchange/v2 envelope signature\x00"
LABEL_COSIGNATURE: Final = b"livcr-exchange/v2 cosignature\x00"
LABEL_CONTENT_DIGEST: Final = b"livcr-exchange/v2 content digest\x00"
LABEL_SECRET_KEY_FILE: Final = b"livcr-exchange/v2 secret key file\x00"
LABEL_DELIVERY_RECEIPT: Final = b"livcr-exchange/v2 delivery receipt\x00"
LABEL_ENVELOPE_HASH: Final = b"livcr-exchange/v2 envelope hash\x00"
LABEL_WITNESS_POLICY: Final = b"livcr-exchange/v2 witness policy\x00"
LABEL_OVERSIGHT_REPORT: Final = b"livcr-exchange/v2 oversight report\x00"
# An attachment's digest, named in its message's body JSON (spec §6.7).
LABEL_ATTACHMENT: Final = b"livcr-exchange/v2 attachment\x00"

# §4 Sizes of fixed fields, in bytes.
MESSAGE_ID_BYTES: Final = 16
KEY_ID_BYTES: Final = 16
CONTENT_KEY_BYTES: Final = 32
COMMITMENT_BYTES: Final = 32
PAYLOAD_NONCE_PREFIX_BYTES: Final = 19
HASH_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
ED25519_PUBLIC_BYTES: Final = 32

# §4 Limits.
MAX_ID_LENGTH: Final = 64  # participant ids, purposes, case and meeting references
MAX_RECIPIENTS: Final = 64
MAX_COSIGNERS: Final = 32
MAX_HEADER_BYTES: Final = 128 * 1024
CHUNK_BYTES: Final = 64 * 1024  # plaintext bytes per body chunk; the last may be shorter
MAX_BODY_BYTES: Final = 256 * 1024 * 1024
# §6.4 The body JSON at the head of the plaintext; attachments follow it (spec §6.7).
MAX_BODY_JSON_BYTES: Final = 1024 * 1024
MAX_ALLOWED_PURPOSES: Final = 32
MAX_REASON_LENGTH: Final = 200

# §9 Clock tolerances, in seconds.
MAX_CLOCK_SKEW: Final = 300
MAX_MESSAGE_LIFETIME: Final = 30 * 24 * 3600
MAX_DELIVERY_DELAY: Final = 14 * 24 * 3600
DEFAULT_PREKEY_LIFETIME: Final = 7 * 24 * 3600
MAX_PREKEY_LIFETIME: Final = 35 * 24 * 3600

# §5 Secret-key files: Argon2id cost (libsodium's "moderate" profile).
SECRET_KEY_OPSLIMIT: Final = 3
SECRET_KEY_MEMLIMIT: Final = 256 * 1024 * 1024
SECRET_KEY_SALT_BYTES: Final = 16
# §5.7 The costs a reader accepts. They are read before anything authenticates them, so the
# maximum bounds what a hostile file can make an unlock cost; the minimum is Argon2id's own.
MIN_SECRET_KEY_OPSLIMIT: Final = 1
MAX_SECRET_KEY_OPSLIMIT: Final = 4
MIN_SECRET_KEY_MEMLIMIT: Final = 8 * 1024
MAX_SECRET_KEY_MEMLIMIT: Final = 256 * 1024 * 1024
