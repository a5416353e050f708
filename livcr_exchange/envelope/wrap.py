"""Wrapping the content key to each recipient's prekey with HPKE base mode (spec §6.3).

``info = LABEL_WRAP_INFO || core_hash || u8(len(recipient_id)) || recipient_id``, so a stanza
opens only for the recipient it names and only under the exact header core it was made for.

HPKE encapsulation draws its ephemeral secret inside pyca/cryptography, which offers no way to
pass randomness in; this is the one place the core does not control its randomness. ``seal``
therefore takes the wrapping function as an argument, and the vector generator passes one that
reuses pinned stanzas after checking them.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag

from ..constants import LABEL_WRAP_INFO
from ..errors import LowOrderShare, StanzaInvalid, UnwrapFailed
from ..keys import PrekeyPublic, PrekeySecret, Suite
from ..wire import Writer

X25519_SHARE_BYTES = 32

# Curve25519 points of small order, and their non-canonical encodings, with bit 255 cleared
# (the list libsodium's has_small_order() uses). A share equal to one of them contributes no
# secret: DH output would be fixed whatever the recipient's key.
_LOW_ORDER_POINTS = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)

# (plaintext content key, recipient prekey, info) -> stanza
WrapFunction = Callable[[bytes, PrekeyPublic, bytes], bytes]


def wrap_info(core_hash: bytes, recipient_id: str) -> bytes:
    return LABEL_WRAP_INFO + core_hash + Writer().ident(recipient_id).getvalue()


def hpke_wrap(content_key: bytes, prekey: PrekeyPublic, info: bytes) -> bytes:
    """HPKE base-mode SealBase: returns ``enc || ciphertext``."""
    return prekey.suite.hpke.encrypt(content_key, prekey.hpke_key, info=info)


def x25519_share(suite: Suite, stanza: bytes) -> bytes:
    """The X25519 share in a stanza's enc (X-Wing puts it after the ML-KEM ciphertext)."""
    return stanza[suite.enc_bytes - X25519_SHARE_BYTES : suite.enc_bytes]


def check_share(suite: Suite, stanza: bytes) -> None:
    """Check the stanza's X25519 share.

    Raises:
        StanzaInvalid: the stanza is too short to hold its suite's ``enc``.
        LowOrderShare: the share is a small-order point.
    """
    if len(stanza) < suite.enc_bytes:
        raise StanzaInvalid(f"stanza of {len(stanza)} bytes is shorter than its enc")
    share = bytearray(x25519_share(suite, stanza))
    share[-1] &= 0x7F
    if bytes(share) in _LOW_ORDER_POINTS:
        raise LowOrderShare("stanza carries a low-order X25519 share")


def hpke_unwrap(stanza: bytes, secret: PrekeySecret, info: bytes) -> bytes:
    """HPKE base-mode OpenBase of one stanza.

    Raises:
        StanzaInvalid: the stanza is too short to hold its suite's ``enc``.
        LowOrderShare: the X25519 share is a small-order point.
        UnwrapFailed: HPKE rejects the stanza (wrong key, wrong info, tampered bytes).
    """
    check_share(secret.suite, stanza)
    try:
        content_key = secret.suite.hpke.decrypt(stanza, secret.hpke_key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise UnwrapFailed("HPKE could not open the stanza") from exc
    if len(content_key) != 32:
        raise UnwrapFailed("stanza does not carry a 32-byte content key")
    return content_key
