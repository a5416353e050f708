"""The external suites of specs/vectors/external/ as vectors this library runs (spec §14.2).

- C2SP/CCTV Ed25519 edge cases, with the project's pinned accept/reject for each;
- transparency-dev/merkle RFC 9162 inclusion and consistency proofs, malformed ones included;
- the hpke-pq working group's vectors for HPKE KEM 0x647A (X-Wing), the KEM of suite 2.

Builders take the files' bytes (the service layer reads them) and return ``Vector`` objects, so
``livcr vectors verify`` counts them with the project's own vectors.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Annotated, ParamSpec

import msgspec
import nacl.bindings
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import x25519

from .audit.merkle import verify_consistency, verify_inclusion
from .conformance import OK, Vector
from .errors import Malformed
from .keys import (
    HPKE_KEM_IDS,
    MLKEM768_PUBLIC_BYTES,
    PrekeySecret,
    Suite,
    expand_xwing_seed,
    verify_signature,
)

P = ParamSpec("P")
ACCEPT = "accept"
XWING_KEM_ID = HPKE_KEM_IDS[Suite.XWING]
XWING_LABEL = b"\\.//^\\"  # X-Wing's combiner label, the six bytes 5c 2e 2f 2f 5e 5c
MLKEM768_CIPHERTEXT_BYTES = 1088
_HPKE_KDFS = {0x0001: hpke.KDF.HKDF_SHA256, 0x0011: hpke.KDF.SHAKE256}
_CHACHA20_POLY1305 = 0x0003
_U64 = Annotated[int, msgspec.Meta(ge=0)]  # the verifiers refuse values above 2**64-1


def _name(*parts: str) -> str:
    return "_".join(re.sub(r"[^a-z0-9]+", "_", p.lower()).strip("_") for p in parts)


def _strict_b64(text: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise Malformed(f"not standard base64: {text!r}") from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise Malformed(f"non-canonical base64: {text!r}")
    return data


# --- C2SP/CCTV Ed25519 --------------------------------------------------------------------------


class CctvEd25519Vector(Vector, tag="external_cctv_ed25519", frozen=True):
    key: str  # hex
    msg: str  # signed as its UTF-8 bytes
    sig: str  # hex

    def run(self) -> str:
        verify_signature(bytes.fromhex(self.key), self.msg.encode("utf-8"), bytes.fromhex(self.sig))
        return OK


class _CctvCase(msgspec.Struct):
    number: int
    key: str
    sig: str
    msg: str
    flags: list[str] | None


class _CctvOutcome(msgspec.Struct):
    number: int
    outcome: str


class _CctvExpected(msgspec.Struct):
    outcomes: list[_CctvOutcome]


def _loading(what: str) -> Callable[[Callable[P, list[Vector]]], Callable[P, list[Vector]]]:
    """A builder whose every failure to read its files is Malformed."""

    def decorate(build: Callable[P, list[Vector]]) -> Callable[P, list[Vector]]:
        @functools.wraps(build)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> list[Vector]:
            try:
                return build(*args, **kwargs)
            except (msgspec.DecodeError, KeyError, IndexError, TypeError) as exc:
                raise Malformed(f"{what}: {exc!r}") from exc

        return wrapper

    return decorate


@_loading("CCTV Ed25519 vectors")
def cctv_ed25519_vectors(vectors: bytes, expected: bytes) -> list[Vector]:
    """One vector per CCTV case; ``expected.json`` says whether it must verify.

    Raises:
        Malformed: a file that does not decode, or a case without an expected outcome.
    """
    outcomes = {
        o.number: o.outcome for o in msgspec.json.decode(expected, type=_CctvExpected).outcomes
    }
    cases = msgspec.json.decode(vectors, type=list[_CctvCase])
    return [
        CctvEd25519Vector(
            name=f"ed25519_cctv_{case.number}",
            expect=OK if outcomes[case.number] == ACCEPT else "bad_signature",
            comment=" ".join(case.flags or ()),
            key=case.key,
            msg=case.msg,
            sig=case.sig,
        )
        for case in cases
    ]


# --- transparency-dev/merkle ----------------------------------------------------------------------


class TdInclusionVector(Vector, tag="external_td_inclusion", frozen=True):
    leaf_idx: _U64
    tree_size: _U64
    root: str  # standard base64, as the files have it
    leaf_hash: str
    proof: list[str] | None  # null is Go's nil slice: the empty proof

    def run(self) -> str:
        proof = [_strict_b64(item) for item in self.proof or []]
        verify_inclusion(
            _strict_b64(self.leaf_hash),
            self.leaf_idx,
            self.tree_size,
            proof,
            _strict_b64(self.root),
        )
        return OK


class TdConsistencyVector(Vector, tag="external_td_consistency", frozen=True):
    size1: _U64
    size2: _U64
    root1: str
    root2: str
    proof: list[str] | None

    def run(self) -> str:
        proof = [_strict_b64(item) for item in self.proof or []]
        verify_consistency(
            self.size1, self.size2, _strict_b64(self.root1), _strict_b64(self.root2), proof
        )
        return OK


class _TdInclusion(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    leaf_idx: _U64
    tree_size: _U64
    root: str
    leaf_hash: str
    proof: list[str] | None
    desc: str
    want_err: bool


class _TdConsistency(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    size1: _U64
    size2: _U64
    root1: str
    root2: str
    proof: list[str] | None
    desc: str
    want_err: bool


@_loading("transparency-dev Merkle vectors")
def merkle_vectors(files: Mapping[str, bytes]) -> list[Vector]:
    """One vector per file, keyed by its path under the suite's folder (``inclusion/1/x.json``).

    Raises:
        Malformed: a file that does not decode as its kind.
    """
    vectors: list[Vector] = []
    for path in sorted(files):
        data = files[path]
        name = _name("merkle", "td", path.removesuffix(".json"))
        if path.startswith("inclusion/"):
            inc = msgspec.json.decode(data, type=_TdInclusion)
            fields = msgspec.structs.asdict(inc)
            del fields["desc"], fields["want_err"]
            expect = "proof_invalid" if inc.want_err else OK
            vectors.append(TdInclusionVector(name=name, expect=expect, comment=inc.desc, **fields))
        else:
            con = msgspec.json.decode(data, type=_TdConsistency)
            fields = msgspec.structs.asdict(con)
            del fields["desc"], fields["want_err"]
            expect = "proof_invalid" if con.want_err else OK
            vectors.append(
                TdConsistencyVector(name=name, expect=expect, comment=con.desc, **fields)
            )
    return vectors


# --- hpke-pq: HPKE KEM 0x647A, MLKEM768-X25519 (X-Wing) -------------------------------------------


def xwing_decapsulate(seed: bytes, enc: bytes) -> bytes:
    """X-Wing Decaps (draft-connolly-cfrg-xwing-kem §5.4) from pyca/cryptography's primitives.

    Used only to check the vectors' ``shared_secret``: pyca's HPKE API does not expose the KEM
    alone. Protocol traffic goes through pyca's HPKE, which the same vectors check end to end.
    """
    kem, dh = expand_xwing_seed(seed)
    ct_m, ct_x = enc[:MLKEM768_CIPHERTEXT_BYTES], enc[MLKEM768_CIPHERTEXT_BYTES:]
    ss_m = kem.decapsulate(ct_m)
    ss_x = dh.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    pk_x = dh.public_key().public_bytes_raw()
    combiner = hashes.Hash(hashes.SHA3_256())
    combiner.update(ss_m + ss_x + ct_x + pk_x + XWING_LABEL)
    return combiner.finalize()


class HpkeXWingVector(Vector, tag="external_hpke_xwing", frozen=True):
    """One hpke-pq vector for KEM 0x647A; all byte strings hex, as in the source file."""

    kdf_id: int
    info: str
    sk_rm: str
    pk_rm: str
    enc: str
    shared_secret: str
    key: str
    base_nonce: str
    aad: str  # the first encryption (sequence number 0)
    ct: str
    pt: str

    def run(self) -> str:
        secret = PrekeySecret(Suite.XWING, bytes.fromhex(self.sk_rm))
        if secret.public.raw != bytes.fromhex(self.pk_rm):
            return "public_key_differs"
        if len(secret.public.raw) != MLKEM768_PUBLIC_BYTES + 32:
            return "public_key_differs"
        enc = bytes.fromhex(self.enc)
        if not hmac.compare_digest(
            xwing_decapsulate(secret.seed, enc), bytes.fromhex(self.shared_secret)
        ):
            return "shared_secret_differs"
        key, nonce = bytes.fromhex(self.key), bytes.fromhex(self.base_nonce)
        plain: bytes = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes.fromhex(self.ct), bytes.fromhex(self.aad), nonce, key
        )
        if plain != bytes.fromhex(self.pt):
            return "plaintext_differs"
        # pyca's HPKE end to end: a message sealed under the vector's key schedule (empty aad,
        # sequence 0, as suite 2 wraps a content key) opens with the seed-expanded key.
        probe = b"livcr-exchange suite 2 probe"
        sealed: bytes = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            probe, b"", nonce, key
        )
        suite = hpke.Suite(
            hpke.KEM.MLKEM768_X25519, _HPKE_KDFS[self.kdf_id], hpke.AEAD.CHACHA20_POLY1305
        )
        if suite.decrypt(enc + sealed, secret.hpke_key, info=bytes.fromhex(self.info)) != probe:
            return "hpke_differs"
        return OK


class _HpkeEncryption(msgspec.Struct):
    aad: str
    ct: str
    nonce: str
    pt: str


class _HpkeCase(msgspec.Struct):
    mode: int
    kem_id: int
    kdf_id: int
    aead_id: int
    info: str
    sk_rm: str = msgspec.field(name="skRm")
    pk_rm: str = msgspec.field(name="pkRm")
    enc: str
    shared_secret: str
    key: str
    base_nonce: str
    encryptions: list[_HpkeEncryption]


@_loading("hpke-pq vectors")
def hpke_xwing_vectors(data: bytes) -> list[Vector]:
    """The file's base-mode KEM 0x647A vectors with ChaCha20-Poly1305 (the AEAD of suite 2).

    Raises:
        Malformed: the file does not decode, or a vector has no encryption.
    """
    vectors: list[Vector] = []
    for case in msgspec.json.decode(data, type=list[_HpkeCase]):
        if (case.mode, case.kem_id, case.aead_id) != (0, XWING_KEM_ID, _CHACHA20_POLY1305):
            continue
        if case.kdf_id not in _HPKE_KDFS:
            continue
        first = case.encryptions[0]
        vectors.append(
            HpkeXWingVector(
                name=f"hpke_xwing_kdf_{case.kdf_id:04x}",
                expect=OK,
                comment="decapsulates enc with skRm to shared_secret; pyca's HPKE opens",
                kdf_id=case.kdf_id,
                info=case.info,
                sk_rm=case.sk_rm,
                pk_rm=case.pk_rm,
                enc=case.enc,
                shared_secret=case.shared_secret,
                key=case.key,
                base_nonce=case.base_nonce,
                aad=first.aad,
                ct=first.ct,
                pt=first.pt,
            )
        )
    return vectors
