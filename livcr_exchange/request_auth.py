"""Signed HTTP requests between gateway and hub, on the model of RFC 9421 (spec §11.1).

Every request to the hub carries, besides its body:

    Content-Digest:    sha-256=:<base64 SHA-256 of the body>:            (RFC 9530)
    Livcr-Participant: <participant id>
    Signature-Input:   sig1=("@method" "@path" "@query" "content-digest" "livcr-participant")
                       ;created=<unix>;keyid="<identity key id, lowercase hex>"
                       ;nonce="<base64url 16 bytes>";alg="ed25519"
                       ;cell="<the hub's cell id>";origin="<the hub's log origin>"
                       ;tag="livcr-exchange/v2"
    Signature:         sig1=:<base64 Ed25519 signature over the signature base>:

The signature base is RFC 9421 §2.5's: one line per covered component, then the
``"@signature-params"`` line. The component list, its order and the parameters are fixed, so
the verifier rebuilds the base itself instead of trusting the sender's description of it; the
``cell`` and ``origin`` parameters name the hub the request is for, so a hub refuses a request
signed for another hub, even of a cell the participant is also enrolled in.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .constants import KEY_ID_BYTES, MAX_CLOCK_SKEW
from .directory import Directory
from .errors import BadSignature, Malformed, TimestampOutOfWindow
from .hashing import RandomSource, sha256
from .keys import IdentityKey
from .replay import ReplayCache
from .statements import DirectoryEntry
from .times import iso8601
from .wire import b64, check_ident, unb64

REQUEST_SIGNATURE_TAG = "livcr-exchange/v2"
REQUEST_NONCE_BYTES = 16
MAX_ORIGIN_LENGTH = 255
COVERED_COMPONENTS = ("@method", "@path", "@query", "content-digest", "livcr-participant")
_COMPONENT_LIST = "(" + " ".join(f'"{c}"' for c in COVERED_COMPONENTS) + ")"
# An origin is printable ASCII without space, quote or backslash, so that it is its own
# RFC 8941 sf-string without escapes (spec §10.3, §11.1).
_ORIGIN_PATTERN = re.compile(r"[!#-\[\]-~]{1,255}")
_INPUT_PATTERN = re.compile(
    r'sig1=\("@method" "@path" "@query" "content-digest" "livcr-participant"\)'
    r';created=(?P<created>[0-9]{1,12});keyid="(?P<keyid>[0-9a-f]{32})"'
    r';nonce="(?P<nonce>[A-Za-z0-9_-]{22})";alg="ed25519"'
    r';cell="(?P<cell>[a-z0-9][a-z0-9._-]{0,63})";origin="(?P<origin>[!#-\[\]-~]{1,255})"'
    r';tag="livcr-exchange/v2"'
)
_SIGNATURE_PATTERN = re.compile(r"sig1=:(?P<sig>[A-Za-z0-9+/]{86}==):")
_DIGEST_PATTERN = re.compile(r"sha-256=:[A-Za-z0-9+/]{43}=:")


def check_origin(origin: str) -> str:
    """Return ``origin`` if it may name a hub (spec §11.1); raise Malformed otherwise."""
    if _ORIGIN_PATTERN.fullmatch(origin) is None:
        raise Malformed(
            f"origin {origin!r} is not 1-{MAX_ORIGIN_LENGTH} printable ASCII characters"
            " without space, quote or backslash"
        )
    return origin


@dataclass(frozen=True)
class HubBinding:
    """The hub a request is for: its cell and its log origin (spec §10.3, §11.1).

    Construction checks both (raising Malformed), so a client cannot sign for a hub no
    verifier could name.
    """

    cell_id: str
    origin: str

    def __post_init__(self) -> None:
        check_ident(self.cell_id, "cell id")
        check_origin(self.origin)


@dataclass(frozen=True)
class RequestTarget:
    """What of an HTTP request is signed besides its headers."""

    method: str
    path: str
    query: str  # without the leading "?"; "" when there is none
    body: bytes


def content_digest(body: bytes) -> str:
    """The RFC 9530 Content-Digest field value for ``body``."""
    return digest_field(sha256(body))


def digest_field(sha256_digest: bytes) -> str:
    """The Content-Digest field value for a body whose SHA-256 is ``sha256_digest`` (computed
    by a receiver or sender that streams the body instead of holding it)."""
    return "sha-256=:" + base64.b64encode(sha256_digest).decode("ascii") + ":"


def signature_params(created: int, key_id: bytes, nonce: bytes, hub: HubBinding) -> str:
    return (
        f'{_COMPONENT_LIST};created={created};keyid="{key_id.hex()}";nonce="{b64(nonce)}"'
        f';alg="ed25519";cell="{hub.cell_id}";origin="{hub.origin}";tag="{REQUEST_SIGNATURE_TAG}"'
    )


def signature_base(
    target: RequestTarget, participant_id: str, params: str, *, digest: str | None = None
) -> bytes:
    """RFC 9421 §2.5 signature base for our fixed component list.

    ``digest`` is ``content_digest(target.body)`` when the caller has it already (the body is
    then hashed once per request, not twice).

    Raises:
        Malformed: a component holds a lone surrogate, which has no UTF-8 encoding.
    """
    if digest is None:
        digest = content_digest(target.body)
    lines = [
        f'"@method": {target.method.upper()}',
        f'"@path": {target.path}',
        f'"@query": ?{target.query}',
        f'"content-digest": {digest}',
        f'"livcr-participant": {participant_id}',
        f'"@signature-params": {params}',
    ]
    try:
        return "\n".join(lines).encode("utf-8")
    except UnicodeEncodeError as exc:  # a path or query decoded with surrogateescape
        raise Malformed("request target is not valid Unicode") from exc


def sign_request(
    target: RequestTarget,
    participant_id: str,
    identity: IdentityKey,
    *,
    hub: HubBinding,
    now: int,
    random: RandomSource,
    digest: str | None = None,
) -> dict[str, str]:
    """The headers that authenticate ``target`` as coming from ``participant_id``, for ``hub``.

    ``target.path`` is the path exactly as it will be sent, percent-encoding included.
    ``digest`` is the body's Content-Digest when the sender streams the body from a file and
    hashed it beforehand (``target.body`` is then not read).
    """
    params = signature_params(now, identity.key_id, random(REQUEST_NONCE_BYTES), hub)
    if digest is None:
        digest = content_digest(target.body)
    signature = identity.sign(signature_base(target, participant_id, params, digest=digest))
    return {
        "Content-Digest": digest,
        "Livcr-Participant": participant_id,
        "Signature-Input": f"sig1={params}",
        "Signature": "sig1=:" + base64.b64encode(signature).decode("ascii") + ":",
    }


@dataclass(frozen=True)
class AuthenticatedRequest:
    participant_id: str
    entry: DirectoryEntry


def verify_request(
    target: RequestTarget,
    headers: Mapping[str, str],
    directory: Directory,
    *,
    origin: str,
    now: int,
    nonces: ReplayCache,
    digest: str | None = None,
) -> AuthenticatedRequest:
    """Check a signed request to the hub of ``directory``'s cell and ``origin`` (spec §11.1,
    in this order). ``target.path`` is the path as received, percent-encoding included.
    ``digest`` is the body's Content-Digest when the receiver streamed the body and hashed it
    as it went (``target.body`` is then not read).

    Raises:
        Malformed: a missing or malformed header, a Content-Digest that is not exactly one
            sha-256 member.
        BadSignature: signed for another hub (cell or origin); the content digest or the
            signature does not match.
        UnknownSender, KeyRevoked, KeyNotValid: the key does not speak for the participant now.
        TimestampOutOfWindow: ``created`` is more than MAX_CLOCK_SKEW from ``now``.
        Replayed: the nonce was used before within the window.
    """
    participant_id = check_ident(_header(headers, "Livcr-Participant"), "participant id")
    match = _INPUT_PATTERN.fullmatch(_header(headers, "Signature-Input"))
    signature_match = _SIGNATURE_PATTERN.fullmatch(_header(headers, "Signature"))
    if match is None or signature_match is None:
        raise Malformed("Signature-Input or Signature is not in the required form")
    sent_digest = _header(headers, "Content-Digest")
    if _DIGEST_PATTERN.fullmatch(sent_digest) is None:
        raise Malformed("Content-Digest is not exactly one sha-256 member")
    created = int(match["created"])
    key_id = bytes.fromhex(match["keyid"])
    nonce = unb64(match["nonce"], "request nonce")
    if len(key_id) != KEY_ID_BYTES or len(nonce) != REQUEST_NONCE_BYTES:
        raise Malformed("key id or nonce has the wrong length")
    hub = HubBinding(directory.cell_id, origin)
    if (match["cell"], match["origin"]) != (hub.cell_id, hub.origin):
        raise BadSignature(
            f"request signed for cell {match['cell']!r} at origin {match['origin']!r},"
            f" not this hub ({hub.cell_id!r} at {hub.origin!r})"
        )
    if digest is None:
        digest = content_digest(target.body)
    if sent_digest != digest:
        raise BadSignature("Content-Digest does not match the body")
    entry = directory.entry_for_key(participant_id, key_id, now)
    params = signature_params(created, key_id, nonce, hub)
    try:
        signature = base64.b64decode(signature_match["sig"], validate=True)
    except binascii.Error as exc:
        raise Malformed("Signature is not base64") from exc
    entry.identity_key.verify(
        signature_base(target, participant_id, params, digest=digest), signature
    )
    if abs(now - created) > MAX_CLOCK_SKEW:
        raise TimestampOutOfWindow(f"request created at {iso8601(created)}, now {iso8601(now)}")
    nonces.check_and_remember(participant_id, nonce, created + MAX_CLOCK_SKEW + 1, now)
    return AuthenticatedRequest(participant_id, entry)


def check_request_headers(
    headers: Mapping[str, str], directory: Directory, *, now: int
) -> DirectoryEntry:
    """What of a signed request can be checked before its body is read (spec §11.1): the
    headers' form, and that the key they name speaks for the participant now. A receiver runs
    this before it reads a byte of body, then ``verify_request`` on the whole request.

    Raises:
        Malformed: a missing or malformed header.
        UnknownSender, KeyRevoked, KeyNotValid: the key does not speak for the participant now.
    """
    participant_id = check_ident(_header(headers, "Livcr-Participant"), "participant id")
    match = _INPUT_PATTERN.fullmatch(_header(headers, "Signature-Input"))
    signature_match = _SIGNATURE_PATTERN.fullmatch(_header(headers, "Signature"))
    if match is None or signature_match is None:
        raise Malformed("Signature-Input or Signature is not in the required form")
    if _DIGEST_PATTERN.fullmatch(_header(headers, "Content-Digest")) is None:
        raise Malformed("Content-Digest is not in the required form")
    return directory.entry_for_key(participant_id, bytes.fromhex(match["keyid"]), now)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise Malformed(f"missing {name} header")
    return value
