"""Runs the published test vectors (specs/vectors/) against this implementation (spec §14).

Each vector is a JSON object with a ``name`` (``<area>_<defect>``), a ``kind`` saying which
receiver it exercises, its inputs, and ``expect``: ``"ok"`` or an error code from spec §13.
Vector files are decoded strictly: an unknown field or kind is an error, not a skipped test.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from .attachments import MediaType
from .audit.checkpoint import open_checkpoint
from .audit.cosignature import (
    WitnessKey,
    cosigned_message,
    verify_cosignature_line,
    verify_cosigned_checkpoint,
)
from .audit.leaves import decode_leaf
from .audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from .audit.witness import Cosigned, LogKey, decide, parse_add_checkpoint
from .cases import CaseState, ClosureReason, check_case_ref, mint_case_ref, transition
from .directory import Directory
from .documents import open_documents
from .envelope import Freshness, UnverifiedEnvelope, open_envelope
from .errors import LivcrError, Malformed
from .keyfile import unlock
from .keys import IdentityPublicKey, PrekeySecret, Suite
from .policy import CaseView, MessageFacts, Participant, evaluate_header, evaluate_message
from .purposes import decode_body
from .replay import ReplayCache
from .request_auth import RequestTarget, verify_request
from .roles import Role
from .sniff import sniffer_for
from .statements import DirectoryEntry, PrekeyStatement, Revocation
from .wire import unb64
from .witness_policy import WitnessPolicy

OK = "ok"


def unb64std(text: str) -> bytes:
    """Standard base64 with padding, as the vector files use for large byte strings."""
    return base64.b64decode(text, validate=True)


class Vector(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="kind", kw_only=True
):
    name: str
    expect: str
    comment: str = ""

    def run(self) -> str:
        """Exercise the receiver; return "ok" or raise the LivcrError it raises."""
        raise NotImplementedError


class CellInputs(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cell_id: str
    root_key: str  # livcr-ed25519:... text form
    entries: list[str]  # signed directory entries, standard base64
    revocations: list[str] = []

    def directory(self) -> Directory:
        return Directory.from_signed(
            self.cell_id,
            IdentityPublicKey.from_text(self.root_key),
            [unb64std(e) for e in self.entries],
            [unb64std(r) for r in self.revocations],
        )


class PrekeySecretInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    suite: int
    seed: str  # hex


class EnvelopeVector(Vector, tag="envelope", frozen=True):
    """An envelope judged by a recipient (spec §6.6 steps 1-15) or, with ``view`` "hub", by the
    hub on submission (steps 1-9, its freshness rule, ``judged_at`` = ``now``; spec §14)."""

    cell: CellInputs
    recipient_id: str
    prekeys: list[PrekeySecretInput]
    now: int
    judged_at: int
    envelope: str  # standard base64
    seen: list[tuple[str, str]] = []  # (sender id, message id hex) already accepted
    body: str | None = None  # expected plaintext, standard base64, for expect == "ok"
    intermediate: dict[str, Any] = {}
    view: str = "recipient"  # or "hub"

    def run(self) -> str:
        replay = ReplayCache()
        for sender_id, message_id in self.seen:
            replay.check_and_remember(sender_id, bytes.fromhex(message_id), 2**63, self.now)
        if self.view == "hub":
            verified = UnverifiedEnvelope.parse(unb64std(self.envelope)).verify(
                self.cell.directory(),
                now=self.now,
                judged_at=self.now,
                freshness=Freshness.SUBMISSION,
            )
            core = verified.header.core
            replay.check_unseen(core.sender_id, core.message_id, self.now)
            return OK
        if self.view != "recipient":
            return "unknown_view"
        secrets = [PrekeySecret(Suite(p.suite), bytes.fromhex(p.seed)) for p in self.prekeys]
        opened = open_envelope(
            unb64std(self.envelope),
            recipient_id=self.recipient_id,
            prekeys={s.key_id: s for s in secrets},
            directory=self.cell.directory(),
            now=self.now,
            judged_at=self.judged_at,
            replay=replay,
        )
        if self.body is None or opened.body != unb64std(self.body):
            return "body_differs"
        return OK


class ExpectedAttachment(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    media_type: str
    data: str  # standard base64


class DocumentsVector(Vector, tag="documents", frozen=True):
    """An envelope whose plaintext carries attachments, opened by a recipient: §6.6, then the
    body and attachment checks of §6.7 in order; ``body`` and ``attachments`` are what an ``ok``
    opening yields."""

    cell: CellInputs
    recipient_id: str
    prekeys: list[PrekeySecretInput]
    now: int
    judged_at: int
    envelope: str  # standard base64
    body: str | None = None  # the body JSON, standard base64
    attachments: list[ExpectedAttachment] = []

    def run(self) -> str:
        secrets = [PrekeySecret(Suite(p.suite), bytes.fromhex(p.seed)) for p in self.prekeys]
        envelope = unb64std(self.envelope)
        opened = open_documents(
            lambda: [envelope],
            recipient_id=self.recipient_id,
            prekeys={s.key_id: s for s in secrets},
            directory=self.cell.directory(),
            now=self.now,
            judged_at=self.judged_at,
        )
        received = [
            ExpectedAttachment(ref.name, ref.media_type, base64.b64encode(data).decode())
            for ref, data in opened.read_all()
        ]
        if self.body is None or opened.body_json != unb64std(self.body):
            return "body_differs"
        return OK if received == self.attachments else "attachments_differ"


class AttachmentContentVector(Vector, tag="attachment_content", frozen=True):
    """A document judged by its content against a declared media type (§6.7)."""

    media_type: str
    data: str  # standard base64

    def run(self) -> str:
        sniffer = sniffer_for(MediaType(self.media_type))
        sniffer.feed(unb64std(self.data))
        sniffer.finish()
        return OK


class DirectoryEntryVector(Vector, tag="directory_entry", frozen=True):
    root_key: str
    statement: str  # standard base64

    def run(self) -> str:
        DirectoryEntry.open(unb64std(self.statement), IdentityPublicKey.from_text(self.root_key))
        return OK


class RevocationVector(Vector, tag="revocation", frozen=True):
    root_key: str
    statement: str

    def run(self) -> str:
        Revocation.open(unb64std(self.statement), IdentityPublicKey.from_text(self.root_key))
        return OK


class PrekeyVector(Vector, tag="prekey", frozen=True):
    identity_key: str
    statement: str

    def run(self) -> str:
        PrekeyStatement.open(
            unb64std(self.statement), IdentityPublicKey.from_text(self.identity_key)
        )
        return OK


class KeyLookupVector(Vector, tag="key_lookup", frozen=True):
    cell: CellInputs
    participant_id: str
    key_id: str  # hex
    at: int

    def run(self) -> str:
        self.cell.directory().entry_for_key(
            self.participant_id, bytes.fromhex(self.key_id), self.at
        )
        return OK


class SecretKeyFileVector(Vector, tag="secret_key_file", frozen=True):
    file: str  # standard base64
    passphrase: str
    participant_id: str | None = None

    def run(self) -> str:
        bundle = unlock(unb64std(self.file), self.passphrase.encode("utf-8"))
        return OK if bundle.participant_id == self.participant_id else "bundle_differs"


class CheckpointVector(Vector, tag="checkpoint", frozen=True):
    note: str  # the signed note, UTF-8 text
    origin: str  # the configured origin of the log
    key_name: str
    public_key: str  # livcr-ed25519:... text form
    size: int | None = None  # expected values for expect == "ok"
    root: str | None = None  # hex

    def run(self) -> str:
        key = IdentityPublicKey.from_text(self.public_key)
        checkpoint = open_checkpoint(
            self.note.encode("utf-8"), self.origin, key.raw, key_name=self.key_name
        )
        if (checkpoint.size, checkpoint.root.hex()) != (self.size, self.root):
            return "checkpoint_differs"
        return OK


class LeafVector(Vector, tag="log_leaf", frozen=True):
    leaf: str  # hex of the leaf's canonical encoding
    leaf_hash: str  # hex; a receiver recomputes it (spec §10.1)
    fields: dict[str, Any] = {}  # the decoded fields, bytes as hex, for expect == "ok"

    def run(self) -> str:
        data = bytes.fromhex(self.leaf)
        decoded = decode_leaf(data)
        if leaf_hash(data).hex() != self.leaf_hash or decoded.encode() != data:
            return "leaf_differs"
        actual = {k: v.hex() if isinstance(v, bytes) else v for k, v in vars(decoded).items()}
        return OK if actual == self.fields else "leaf_differs"


class InclusionVector(Vector, tag="inclusion_proof", frozen=True):
    leaf_hash: str  # hex
    index: int
    size: int
    proof: list[str]  # hex
    root: str  # hex

    def run(self) -> str:
        proof = [bytes.fromhex(h) for h in self.proof]
        verify_inclusion(
            bytes.fromhex(self.leaf_hash), self.index, self.size, proof, bytes.fromhex(self.root)
        )
        return OK


class ConsistencyVector(Vector, tag="consistency_proof", frozen=True):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]

    def run(self) -> str:
        verify_consistency(
            self.old_size,
            self.new_size,
            bytes.fromhex(self.old_root),
            bytes.fromhex(self.new_root),
            [bytes.fromhex(h) for h in self.proof],
        )
        return OK


class ParticipantInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    role: str
    allowed_purposes: list[str]


class CaseInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    state: str
    members: list[str]
    owner: str | None = None
    referrer: str | None = None
    present_at: dict[str, list[str]] = {}


class PolicyVector(Vector, tag="policy", frozen=True):
    """A policy decision: the hub's (header only) or, with ``body``, a gateway's."""

    sender_id: str
    purpose: str
    case_ref: str
    recipients: list[str]
    participants: dict[str, ParticipantInput]  # the enrolled ones; others are not enrolled
    case: CaseInput | None
    meeting_ref: str | None = None
    cosigners: list[str] = []
    body: str | None = None  # JSON text of the opened body

    def run(self) -> str:
        people = {
            pid: Participant(pid, Role(p.role), frozenset(p.allowed_purposes))
            for pid, p in self.participants.items()
        }
        facts = MessageFacts(
            self.sender_id,
            self.purpose,
            self.case_ref,
            tuple(self.recipients),
            self.meeting_ref,
            frozenset(self.cosigners),
        )
        case = None
        if self.case is not None:
            case = CaseView(
                self.case_ref,
                CaseState(self.case.state),
                frozenset(self.case.members),
                self.case.owner,
                self.case.referrer,
                {ref: frozenset(p) for ref, p in self.case.present_at.items()},
            )
        recipients = {r: people[r] for r in self.recipients if r in people}
        sender = people[self.sender_id]
        if self.body is None:
            decision = evaluate_header(facts, sender, recipients, case)
        else:
            decision = evaluate_message(facts, sender, recipients, case, self.body.encode("utf-8"))
        decision.raise_for_denial()
        return OK


class RequestSignatureVector(Vector, tag="request_signature", frozen=True):
    """A signed HTTP request to the hub (spec §11.1)."""

    cell: CellInputs
    origin: str  # the verifying hub's log origin (spec §10.3); its cell is ``cell.cell_id``
    method: str
    path: str  # as sent, percent-encoding included
    query: str
    body: str  # standard base64
    headers: dict[str, str]
    now: int
    seen_nonces: list[tuple[str, str]] = []  # (participant, nonce as sent) used before

    def run(self) -> str:
        nonces = ReplayCache()
        for participant, nonce in self.seen_nonces:
            nonces.check_and_remember(participant, unb64(nonce), 2**63, self.now)
        target = RequestTarget(self.method, self.path, self.query, unb64std(self.body))
        verify_request(
            target,
            self.headers,
            self.cell.directory(),
            origin=self.origin,
            now=self.now,
            nonces=nonces,
        )
        return OK


class BodyVector(Vector, tag="body", frozen=True):
    """A body's JSON text decoded against its purpose's schema (spec §4.4, §7.2)."""

    purpose: str
    body: str  # the JSON text; the receiver decodes its UTF-8 bytes

    def run(self) -> str:
        decode_body(self.purpose, self.body.encode("utf-8", "surrogatepass"))
        return OK


class CaseTransitionVector(Vector, tag="case_transition", frozen=True):
    current: str
    target: str
    reason: str | None = None

    def run(self) -> str:
        reason = None if self.reason is None else ClosureReason(self.reason)
        transition(CaseState(self.current), CaseState(self.target), reason)
        return OK


class CaseRefVector(Vector, tag="case_ref", frozen=True):
    case_ref: str
    random: str | None = None  # hex of the 16 bytes it was minted from (valid vectors)

    def run(self) -> str:
        if self.random is not None:
            drawn = bytes.fromhex(self.random)
            if mint_case_ref(lambda _: drawn) != self.case_ref:
                return "mint_mismatch"
        check_case_ref(self.case_ref)
        return OK


class WitnessKeyVector(Vector, tag="witness_key", frozen=True):
    vkey: str
    witness: str | None = None  # expected values for expect == "ok"
    public_key: str | None = None  # hex
    key_id: str | None = None  # hex

    def run(self) -> str:
        key = WitnessKey.from_vkey(self.vkey)
        found = (key.name, key.public.hex(), key.key_id.hex())
        return OK if found == (self.witness, self.public_key, self.key_id) else "key_differs"


class CosignatureVector(Vector, tag="cosignature", frozen=True):
    witness: str  # the witness's verifier key (vkey)
    body: str  # the checkpoint body, UTF-8 text
    line: str  # one signature line
    timestamp: int | None = None  # expected for expect == "ok"
    signed_message: str | None = None

    def run(self) -> str:
        witness = WitnessKey.from_vkey(self.witness)
        body = self.body.encode("utf-8")
        found = verify_cosignature_line(body, self.line.encode("utf-8"), witness)
        if self.signed_message is not None and (
            cosigned_message(body, found.timestamp) != self.signed_message.encode("utf-8")
        ):
            return "message_differs"
        return OK if found.timestamp == self.timestamp else "timestamp_differs"


class CosignedCheckpointVector(Vector, tag="cosigned_checkpoint", frozen=True):
    note: str
    log_key_name: str
    log_public_key: str  # livcr-ed25519:... text form
    witnesses: list[str]  # verifier keys
    quorum: int
    now: int
    cosigners: list[str] = []  # expected for expect == "ok"

    def run(self) -> str:
        coverage = verify_cosigned_checkpoint(
            self.note.encode("utf-8"),
            self.log_key_name,
            IdentityPublicKey.from_text(self.log_public_key).raw,
            [WitnessKey.from_vkey(v) for v in self.witnesses],
            self.quorum,
            now=self.now,
        )
        found = sorted(c.witness for c in coverage.valid)
        return OK if found == sorted(self.cosigners) else "cosigners_differ"


class LogInputs(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    origin: str
    key_name: str
    public_key: str  # livcr-ed25519:... text form


class CosignedInputs(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    size: int
    root: str  # hex


class AddCheckpointVector(Vector, tag="add_checkpoint", frozen=True):
    log: LogInputs
    last: CosignedInputs | None
    request: str  # the request body, UTF-8 text
    size: int | None = None  # the size cosigned, for expect == "ok"

    def run(self) -> str:
        request = parse_add_checkpoint(self.request.encode("utf-8"))
        log = LogKey(
            self.log.origin,
            self.log.key_name,
            IdentityPublicKey.from_text(self.log.public_key).raw,
        )
        last = (
            None if self.last is None else Cosigned(self.last.size, bytes.fromhex(self.last.root))
        )
        checkpoint = decide(request, log, last)
        return OK if checkpoint.size == self.size else "size_differs"


class WitnessPolicyVector(Vector, tag="witness_policy", frozen=True):
    root_key: str
    cell_id: str
    statement: str  # standard base64
    sequence: int | None = None  # expected for expect == "ok"
    quorum: int | None = None
    witnesses: list[str] = []  # verifier keys

    def run(self) -> str:
        root = IdentityPublicKey.from_text(self.root_key)
        policy = WitnessPolicy.open(unb64std(self.statement), root, self.cell_id)
        found = (policy.sequence, policy.quorum, [w.vkey() for w in policy.witnesses])
        return OK if found == (self.sequence, self.quorum, self.witnesses) else "policy_differs"


VectorKinds = (
    EnvelopeVector
    | DirectoryEntryVector
    | RevocationVector
    | PrekeyVector
    | KeyLookupVector
    | SecretKeyFileVector
    | CheckpointVector
    | LeafVector
    | InclusionVector
    | ConsistencyVector
    | PolicyVector
    | CaseTransitionVector
    | CaseRefVector
    | RequestSignatureVector
    | BodyVector
    | DocumentsVector
    | AttachmentContentVector
    | WitnessKeyVector
    | CosignatureVector
    | CosignedCheckpointVector
    | AddCheckpointVector
    | WitnessPolicyVector
)


class VectorFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    area: str
    description: str
    vectors: list[Any]


@dataclass(frozen=True)
class Outcome:
    name: str
    expected: str
    actual: str
    detail: str

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


_FILE_DECODER = msgspec.json.Decoder(VectorFile)
_VECTORS_DECODER = msgspec.json.Decoder(list[VectorKinds])
PIN_FILES = frozenset({"envelope-stanzas.json"})  # generator inputs, not vectors


def decode_vector_file(data: bytes) -> list[Vector]:
    """Strictly decode one vector file.

    Raises:
        Malformed: not JSON, an unknown field or kind, a missing or mistyped field.
    """
    try:
        listing = _FILE_DECODER.decode(data)
        return list(_VECTORS_DECODER.decode(msgspec.json.encode(listing.vectors)))
    except msgspec.DecodeError as exc:  # ValidationError included
        raise Malformed(f"vector file: {exc}") from exc


def vector_file_names(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n.endswith(".json") and n not in PIN_FILES)


def run_vector(vector: Vector) -> Outcome:
    """Run one vector; a LivcrError becomes its code, anything else is reported as a crash."""
    try:
        actual, detail = vector.run(), ""
    except LivcrError as exc:
        actual, detail = exc.code, str(exc)
    except Exception as exc:  # noqa: BLE001  (a crash is a result to report, not to hide)
        actual, detail = "crash", f"{type(exc).__name__}: {exc}"
    return Outcome(vector.name, vector.expect, actual, detail)
