"""Every public parser and opener of the core, fed mutated vectors, raises only LivcrError (§13).

Seeds are the published vectors (specs/vectors/) and a few encodings built here; mutations are
bit flips, truncation, splicing, duplication, huge length fields, deep nesting and lone
surrogates. Any exception outside the LivcrError hierarchy fails the test. ``make test`` runs a
bounded number of examples per parser; ``make test-slow`` (``-m slow``) runs many more.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livcr_exchange.audit import open_checkpoint, open_note, verify_consistency, verify_inclusion
from livcr_exchange.audit.cosignature import (
    WitnessKey,
    split_note,
    verify_cosignature_line,
    verify_cosigned_checkpoint,
)
from livcr_exchange.audit.leaves import (
    LEAF_SALT_BYTES,
    CaseMembership,
    EnvelopeAccepted,
    Refusal,
    decode_leaf,
)
from livcr_exchange.audit.witness import (
    Cosigned,
    LogKey,
    decide,
    note_origin,
    parse_add_checkpoint,
    parse_cosignature_lines,
    parse_size,
)
from livcr_exchange.body_json import MAX_BODY_DEPTH
from livcr_exchange.conformance import (
    AddCheckpointVector,
    BodyVector,
    CheckpointVector,
    CosignatureVector,
    CosignedCheckpointVector,
    DirectoryEntryVector,
    EnvelopeVector,
    InclusionVector,
    PrekeyVector,
    RequestSignatureVector,
    RevocationVector,
    SecretKeyFileVector,
    Vector,
    WitnessKeyVector,
    WitnessPolicyVector,
    decode_vector_file,
    unb64std,
)
from livcr_exchange.directory import Directory
from livcr_exchange.envelope import Header, UnverifiedEnvelope, open_stream
from livcr_exchange.envelope.wrap import hpke_unwrap
from livcr_exchange.errors import LivcrError, Malformed
from livcr_exchange.external_vectors import (
    cctv_ed25519_vectors,
    hpke_xwing_vectors,
    merkle_vectors,
)
from livcr_exchange.keyfile import SecretBundle, unlock
from livcr_exchange.keys import IdentityPublicKey, PrekeyPublic, PrekeySecret, Suite
from livcr_exchange.oversight.evidence import decode_evidence
from livcr_exchange.oversight.model import decode_report
from livcr_exchange.policy import MessageFacts, Participant, evaluate_message
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE, decode_body, encode_body, get_purpose
from livcr_exchange.replay import ReplayCache
from livcr_exchange.request_auth import RequestTarget, signature_base, verify_request
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry, PrekeyStatement, Revocation, check_kbo
from livcr_exchange.wire import Reader, check_ident, unb64
from livcr_exchange.witness_policy import WitnessPolicy

from livcr_exchange.service.vectors import load_vector_dir  # isort: skip  (test support)

VECTOR_DIR = Path(__file__).resolve().parent.parent / "specs" / "vectors"
VECTORS = load_vector_dir(VECTOR_DIR)
FAST = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
LONG = settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def of_kind(kind: type[Vector]) -> list[Any]:
    return [v for v in VECTORS if isinstance(v, kind)]


# Mutations.
HUGE = [b"\xff" * 8, b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff", b"\x80"]
# A surrogate as UTF-8 would spell it (not valid UTF-8; text targets decode it with
# surrogateescape into lone surrogates), as a JSON escape, and a format character.
ODD_TEXT = [b"\xed\xa0\x80", b"\\ud800", b"\\udfff\\ud800", b"\xe2\x80\xae", b"\xff"]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` changed by one to three of: flip, truncate, splice, duplicate, a huge field, a
    deletion, or an odd text (a lone surrogate, a format character)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(
            st.sampled_from(["flip", "truncate", "splice", "duplicate", "huge", "drop", "odd"])
        )
        if action == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            del data[where:]
        elif action == "splice":
            data[where:where] = draw(st.binary(min_size=1, max_size=40))
        elif action == "duplicate":
            data[where:where] = data[where : where + draw(st.integers(1, 200))]
        elif action == "huge":
            field = draw(st.sampled_from(HUGE))
            data[where : where + len(field)] = field
        elif action == "odd":
            data[where:where] = draw(st.sampled_from(ODD_TEXT))
        else:
            del data[where : where + draw(st.integers(1, 64))]
    return bytes(data)


def deeply_nested(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + closer * depth


@dataclass(frozen=True)
class Target:
    """One public entry point: seeds and how to call it with (possibly mutated) bytes."""

    name: str
    seeds: Sequence[bytes]
    call: Callable[[bytes], object]


def envelope_call(vector: EnvelopeVector) -> Callable[[bytes], object]:
    def call(data: bytes) -> object:
        return msgspec.structs.replace(vector, envelope=base64.b64encode(data).decode()).run()

    return call


def stream_call(vector: EnvelopeVector) -> Callable[[bytes], object]:
    secrets = [PrekeySecret(Suite(p.suite), bytes.fromhex(p.seed)) for p in vector.prekeys]
    directory = vector.cell.directory()

    def call(data: bytes) -> object:
        pieces = [data[i : i + 7000] for i in range(0, len(data), 7000)]
        return list(
            open_stream(
                lambda: iter(pieces),
                recipient_id=vector.recipient_id,
                prekeys={s.key_id: s for s in secrets},
                directory=directory,
                now=vector.now,
                judged_at=vector.judged_at,
            )
        )

    return call


def stanza_call(vector: EnvelopeVector) -> Callable[[bytes], object]:
    secret = PrekeySecret(Suite(vector.prekeys[0].suite), bytes.fromhex(vector.prekeys[0].seed))
    return lambda data: hpke_unwrap(data, secret, b"info")


def statement_call(kind: type[Any], key_field: str, vector: Any) -> Callable[[bytes], object]:
    key = IdentityPublicKey.from_text(getattr(vector, key_field))
    return lambda data: kind.open(data, key)


def request_call(vector: RequestSignatureVector) -> Callable[[bytes], object]:
    """The mutated bytes are the request's JSON form: method, path, query, headers."""
    directory = vector.cell.directory()

    def call(data: bytes) -> object:
        try:
            fields = json.loads(data.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError):  # not the input under test: the harness's encoding
            return None
        if not isinstance(fields, dict):
            return None
        headers = fields.get("headers")
        parts = [fields.get(k) for k in ("method", "path", "query")]
        if not (isinstance(headers, dict) and all(isinstance(p, str) for p in parts)):
            return None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            return None
        target = RequestTarget(*parts, unb64std(vector.body))
        return verify_request(
            target, headers, directory, origin=vector.origin, now=vector.now, nonces=ReplayCache()
        )

    return call


def request_seed(vector: RequestSignatureVector) -> bytes:
    fields = {"method": vector.method, "path": vector.path, "query": vector.query}
    return json.dumps({**fields, "headers": vector.headers}).encode()


def keyfile_seeds() -> list[bytes]:
    files = [unb64std(v.file) for v in of_kind(SecretKeyFileVector)]
    hostile = files[0][:9] + (2**32 - 1).to_bytes(4, "big") * 2 + files[0][17:]
    return [*files, hostile, files[0][: 57 + 15]]


SALT = bytes(range(LEAF_SALT_BYTES))


def leaf_seeds() -> list[bytes]:
    return [
        EnvelopeAccepted(
            1, SALT, bytes(16), "caw", "aanmelding", "case-1", ("a", "b"), bytes(32), 9
        ).encode(),
        CaseMembership(1, SALT, "case-1", "coord", ("caw",), ("clb",)).encode(),
        Refusal(1, SALT, "caw", "submit", "bad_signature", bytes(16)).encode(),
    ]


def body_seeds() -> list[bytes]:
    seeds = [encode_body(example_body(tag)) for tag in CATALOGUE]
    seeds += [v.body.encode("utf-8", "surrogatepass") for v in of_kind(BodyVector)]
    depth = MAX_BODY_DEPTH * 70
    seeds.append(b'{"x":' + deeply_nested(depth, b"[", b"]") + b',"purpose":"aanmelding"}')
    seeds.append(deeply_nested(depth, b'{"a":', b"}"))
    return seeds


def body_call(data: bytes) -> object:
    return decode_body("aanmelding" if data[:1] != b"[" else "actieplan", data)


def policy_call(data: bytes) -> object:
    people = {
        "coord": Participant("coord", Role.COORDINATOR, frozenset(CATALOGUE)),
        "caw": Participant("caw", Role.DEELNEMER, frozenset(CATALOGUE)),
    }
    facts = MessageFacts("caw", "aanmelding", "case-1", ("coord",), None, frozenset())
    return evaluate_message(facts, people["caw"], {"coord": people["coord"]}, None, data)


def proof_call(vector: InclusionVector) -> Callable[[bytes], object]:
    """The mutated bytes are a packed proof: u64 index, u64 size, then 32-byte hashes."""

    def call(data: bytes) -> object:
        index, size = int.from_bytes(data[:8], "big"), int.from_bytes(data[8:16], "big")
        rest = data[16:]
        proof = [rest[i : i + 32] for i in range(0, len(rest), 32)]
        verify_inclusion(bytes.fromhex(vector.leaf_hash), index, size, proof, rest[:32])
        return verify_consistency(index, size, rest[:32], rest[32:64], proof)

    return call


def proof_seed(vector: InclusionVector) -> bytes:
    packed = vector.index.to_bytes(8, "big") + vector.size.to_bytes(8, "big")
    return packed + b"".join(bytes.fromhex(h) for h in vector.proof)


def reader_call(data: bytes) -> object:
    reader = Reader(data, "fuzz")
    return reader.ident(), reader.text(200), reader.idents(64), reader.opaque16(), reader.finish()


def text_call(decode: Callable[[str], object]) -> Callable[[bytes], object]:
    return lambda data: decode(data.decode("utf-8", "surrogateescape"))


def envelope_targets() -> list[Target]:
    """Envelopes, headers and stanzas: parsed, verified and opened."""
    envelope = of_kind(EnvelopeVector)
    ok = [v for v in envelope if v.expect == "ok"]
    envelopes = [unb64std(v.envelope) for v in envelope]
    headers = [UnverifiedEnvelope.parse(e).header.raw for e in envelopes[:6]]
    xwing = next(v for v in ok if v.prekeys[0].suite == Suite.XWING)
    x25519 = next(v for v in ok if v.prekeys[0].suite == Suite.X25519)
    prekey_texts = [
        PrekeySecret(Suite(v.prekeys[0].suite), bytes.fromhex(v.prekeys[0].seed))
        .public.to_text()
        .encode()
        for v in (xwing, x25519)
    ]
    entries = [unb64std(e) for e in xwing.cell.entries]
    root = IdentityPublicKey.from_text(xwing.cell.root_key)
    return [
        Target("envelope_parse", envelopes, UnverifiedEnvelope.parse),
        Target("header_parse", headers, Header.parse),
        Target("envelope_open_xwing", envelopes[:8], envelope_call(xwing)),
        Target("envelope_open_x25519", envelopes[:8], envelope_call(x25519)),
        Target("envelope_open_stream", [unb64std(x25519.envelope)], stream_call(x25519)),
        Target("stanza_unwrap_xwing", [bytes(1168)], stanza_call(xwing)),
        Target("stanza_unwrap_x25519", [bytes(80)], stanza_call(x25519)),
        Target(
            "prekey_text",
            prekey_texts,
            text_call(lambda t: PrekeyPublic.from_text(t).hpke_public()),
        ),
        Target(
            "directory_from_signed",
            entries[:4],
            lambda d: Directory.from_signed(xwing.cell.cell_id, root, [*entries[1:], d]),
        ),
    ]


def statement_and_log_targets() -> list[Target]:
    """Signed statements, checkpoints, proofs, leaves, key files and request signatures."""
    checkpoint = of_kind(CheckpointVector)
    cp = checkpoint[0]
    cp_key = IdentityPublicKey.from_text(cp.public_key).raw
    notes = [c.note.encode() for c in checkpoint]
    inclusion = of_kind(InclusionVector)
    request = of_kind(RequestSignatureVector)
    targets = [
        Target("keyfile_unlock", keyfile_seeds(), lambda d: unlock(d, b"x")),
        Target("secret_bundle_decode", keyfile_seeds(), SecretBundle.decode),
        Target("checkpoint_open", notes, lambda d: open_checkpoint(d, cp.key_name, cp_key)),
        Target("note_open", notes, lambda d: open_note(d, cp.key_name, cp_key)),
        Target("leaf_decode", leaf_seeds(), decode_leaf),
        Target("inclusion_verify", [proof_seed(v) for v in inclusion], proof_call(inclusion[0])),
        Target(
            "consistency_verify", [proof_seed(v) for v in inclusion[:3]], proof_call(inclusion[0])
        ),
        Target("request_verify", [request_seed(v) for v in request], request_call(request[0])),
        Target(
            "identity_key_text",
            [IdentityPublicKey.from_text(cp.public_key).to_text().encode()],
            text_call(IdentityPublicKey.from_text),
        ),
    ]
    statements = {
        DirectoryEntry: of_kind(DirectoryEntryVector),
        Revocation: of_kind(RevocationVector),
        PrekeyStatement: of_kind(PrekeyVector),
    }
    for kind, vectors in statements.items():
        key_field = "identity_key" if kind is PrekeyStatement else "root_key"
        seeds = [unb64std(v.statement) for v in vectors]
        targets.append(
            Target(f"{kind.__name__}_open", seeds, statement_call(kind, key_field, vectors[0]))
        )
        targets.append(Target(f"{kind.__name__}_decode", [s[:-64] for s in seeds], kind.decode))
    return targets


def text_and_file_targets() -> list[Target]:
    """Bodies, identifiers, the wire reader, vector files and the external suites' readers."""
    hpke_file = (VECTOR_DIR / "external" / "hpke-pq" / "test-vectors-0x647a.json").read_bytes()
    merkle_dir = VECTOR_DIR / "external" / "transparency-dev-merkle"
    merkle_seed = (merkle_dir / "inclusion" / "1" / "happy-path.json").read_bytes()
    return [
        Target("body_decode", body_seeds(), body_call),
        Target("policy_body", body_seeds()[:3], policy_call),
        Target("wire_reader", [b"\x03caw\x00\x02hi\x01\x01a\x00\x00"], reader_call),
        Target("unb64", [b"AAAA", b"livcr"], text_call(unb64)),
        Target("check_ident", [b"case-1"], text_call(check_ident)),
        Target("check_kbo", [b"0207437468"], text_call(check_kbo)),
        Target("get_purpose", [b"aanmelding"], text_call(get_purpose)),
        Target(
            "vector_file_decode",
            [(VECTOR_DIR / n).read_bytes() for n in ("keyfile.json", "cases.json")],
            decode_vector_file,
        ),
        Target("hpke_pq_file", [hpke_file], hpke_xwing_vectors),
        Target("merkle_file", [merkle_seed], lambda d: merkle_vectors({"inclusion/x.json": d})),
        Target(
            "cctv_file",
            [b'[{"number":0,"key":"00","sig":"00","msg":"","flags":null}]'],
            lambda d: cctv_ed25519_vectors(d, b'{"outcomes":[{"number":0,"outcome":"accept"}]}'),
        ),
    ]


def witness_targets() -> list[Target]:
    """Witness keys, cosignatures, add-checkpoint requests, the witness policy, oversight files."""
    keys = of_kind(WitnessKeyVector)
    cosig = of_kind(CosignatureVector)[0]
    cosigned = of_kind(CosignedCheckpointVector)
    add = of_kind(AddCheckpointVector)[0]
    policy = of_kind(WitnessPolicyVector)[0]
    log = LogKey(
        add.log.origin, add.log.key_name, IdentityPublicKey.from_text(add.log.public_key).raw
    )
    last = None if add.last is None else Cosigned(add.last.size, bytes.fromhex(add.last.root))
    root = IdentityPublicKey.from_text(policy.root_key)
    notes = [v.note.encode() for v in cosigned]
    statements = [unb64std(v.statement) for v in of_kind(WitnessPolicyVector)]
    requests = [v.request.encode() for v in of_kind(AddCheckpointVector)]
    return [
        Target("witness_vkey", [v.vkey.encode() for v in keys], text_call(WitnessKey.from_vkey)),
        Target(
            "cosignature_line",
            [v.line.encode() for v in of_kind(CosignatureVector)],
            lambda d: verify_cosignature_line(
                cosig.body.encode(), d, WitnessKey.from_vkey(cosig.witness)
            ),
        ),
        Target(
            "cosigned_checkpoint",
            notes,
            lambda d: verify_cosigned_checkpoint(
                d,
                cosigned[0].log_key_name,
                IdentityPublicKey.from_text(cosigned[0].log_public_key).raw,
                [WitnessKey.from_vkey(v) for v in cosigned[0].witnesses],
                cosigned[0].quorum,
                now=cosigned[0].now,
            ),
        ),
        Target("split_note", notes, split_note),
        Target("note_origin", notes, note_origin),
        Target("add_checkpoint", requests, lambda d: decide(parse_add_checkpoint(d), log, last)),
        Target("witness_size", [b"12\n", b"0\n"], parse_size),
        Target(
            "cosignature_lines", [v.line.encode() + b"\n" for v in [cosig]], parse_cosignature_lines
        ),
        Target(
            "witness_policy_open", statements, lambda d: WitnessPolicy.open(d, root, policy.cell_id)
        ),
        Target("witness_policy_decode", [s[:-64] for s in statements], WitnessPolicy.decode),
        Target("evidence_decode", [b'{"format":"livcr-audit-evidence/1"}'], decode_evidence),
        Target("report_decode", [b'{"format":"livcr-oversight-report/1"}'], decode_report),
    ]


TARGETS = [
    *envelope_targets(),
    *statement_and_log_targets(),
    *text_and_file_targets(),
    *witness_targets(),
]


def call_expecting_only_livcr_errors(target: Target, data: bytes) -> None:
    try:
        target.call(data)
    except LivcrError as error:
        code, name = error.code, type(error).__name__
    else:
        return
    assert code != LivcrError.code, f"{target.name}: {name} without a code of its own"


def check_target(target: Target, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(list(target.seeds)), label="seed")
    candidate = data.draw(mutated(seed), label="mutated")
    call_expecting_only_livcr_errors(target, candidate)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
@FAST
@given(data=st.data())
def test_mutated_inputs_raise_only_coded_errors(target: Target, data: st.DataObject) -> None:
    check_target(target, data)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
@LONG
@given(data=st.data())
def test_mutated_inputs_raise_only_coded_errors_long(target: Target, data: st.DataObject) -> None:
    check_target(target, data)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_seeds_themselves_raise_only_coded_errors(target: Target) -> None:
    for seed in target.seeds:
        call_expecting_only_livcr_errors(target, seed)


# The three uncoded exceptions fuzzing found in protocol v1, each pinned.
def test_body_nested_1000_deep_is_coded() -> None:
    data = b'{"legal_ground":' + deeply_nested(1000, b"[", b"]") + b',"purpose":"aanmelding"}'
    call_expecting_only_livcr_errors(TARGETS[[t.name for t in TARGETS].index("body_decode")], data)


def test_keyfile_shorter_than_its_tag_is_coded() -> None:
    with pytest.raises(Malformed):
        unlock(keyfile_seeds()[0][: 57 + 15], b"x")


@pytest.mark.parametrize("path", ["/v1/\ud800", "/v1/log?\udfff"])
def test_lone_surrogate_in_a_signed_request_is_coded(path: str) -> None:
    with pytest.raises(Malformed):
        signature_base(RequestTarget("GET", path, "", b""), "caw", "params")
    vector = of_kind(RequestSignatureVector)[0]
    target = RequestTarget(vector.method, path, "", unb64std(vector.body))
    with pytest.raises(LivcrError) as caught:
        verify_request(
            target,
            vector.headers,
            vector.cell.directory(),
            origin=vector.origin,
            now=vector.now,
            nonces=ReplayCache(),
        )
    assert caught.value.code != LivcrError.code


@pytest.mark.parametrize(
    "text", ["livcr-ed25519:\ud800", "livcr-xwing:" + "A" * 1620 + "\udfff", "livcr-x25519:é"]
)
def test_key_texts_with_surrogates_are_coded(text: str) -> None:
    with pytest.raises(LivcrError):
        (IdentityPublicKey if "ed25519" in text else PrekeyPublic).from_text(text)


@pytest.mark.parametrize("opslimit", [2**32 - 1, 17])
def test_hostile_argon2_cost_is_coded(opslimit: int) -> None:
    seed = keyfile_seeds()[0]
    with pytest.raises(Malformed):
        unlock(seed[:9] + opslimit.to_bytes(4, "big") + seed[13:], b"x")
