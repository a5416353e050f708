"""The purpose catalogue as data, and the strict body codec (spec §7.1, §7.2).

Each purpose names who may send it (roles, and a tie to the case), who may receive it, in which
case states it may be sent, its body schema (``bodies.py``) and whether it needs co-signatures.
``policy.py`` evaluates these rules; this module only states them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import msgspec
import msgspec.inspect

from .attachments import AttachmentRef, AttachmentRule, MediaType
from .bodies import (
    BODY_TYPES,
    AanmeldingBody,
    ActieplanBody,
    AfsluitingBody,
    Body,
    CasusinfoOverlegBody,
    OpvolgingsrapportBody,
    RechtenverzoekBody,
    ScreeningAntwoordBody,
    ScreeningVraagBody,
    TerugkoppelingAanmelderBody,
    TerugkoppelingsficheBody,
    UitnodigingOverlegBody,
    VerslagBesluitBody,
    WissingsbevestigingBody,
)
from .body_json import check_structure
from .cases import CaseState
from .constants import MAX_BODY_BYTES, MAX_BODY_JSON_BYTES
from .errors import AttachmentNotAllowed, BodySchemaViolation, PurposeNotAllowed
from .roles import Role


class CaseTie(enum.StrEnum):
    """How a sender or recipient must relate to the case, beyond holding the right role."""

    ANY = "any"  # no relation needed
    MEMBER = "member"  # on the case: a listed member, the case owner, or a coordinator
    PRESENT = "present"  # a member recorded present at the message's meeting
    REFERRER = "referrer"  # the participant that referred the case


@dataclass(frozen=True)
class Purpose:
    """One purpose: a tag, a sender-role x recipient-role rule, states, and a body schema.

    ``case_states`` may contain ``None``: the purpose may then be sent on a case the hub does not
    know yet (only ``aanmelding``). Ties are checked only when the hub knows the case.
    """

    tag: str
    sender_roles: frozenset[Role]
    recipient_roles: frozenset[Role]
    case_states: frozenset[CaseState | None]
    body_type: type[msgspec.Struct]
    needs_cosignatures: bool
    description: str
    sender_tie: CaseTie = CaseTie.MEMBER
    recipient_tie: CaseTie = CaseTie.MEMBER
    attachments: AttachmentRule | None = None  # None: the purpose carries no documents


_R = Role
_S = CaseState
_MEETING_ROLES: Final = frozenset({_R.VOORZITTER, _R.COORDINATOR, _R.IO_POLITIE, _R.DEELNEMER})
# Roles that receive case data from the coordinator, and so must later delete it.
_CASE_DATA_HOLDERS: Final = frozenset({_R.VOORZITTER, _R.IO_POLITIE, _R.DEELNEMER})
_COORDINATOR: Final = frozenset({_R.COORDINATOR})
_NOT_WIPED: Final[frozenset[CaseState | None]] = frozenset(_S) - {_S.GEWIST}
_AFTER_MEETING: Final[frozenset[CaseState | None]] = frozenset({_S.BESPROKEN, _S.TRAJECT_LOPEND})

# §6.7 Which purposes carry documents, and which. Office documents for the cell's own written
# work (minutes, action plans, progress reports); scans and images where a referral or a report
# leans on a paper document. The total leaves room for the body JSON in MAX_BODY_BYTES.
_MIB: Final = 1024 * 1024
_M = MediaType
_OFFICE: Final = frozenset({_M.PDF, _M.ODT, _M.ODS})
_SCANS: Final = frozenset({_M.PDF, _M.ODT, _M.PNG, _M.JPEG})
MAX_ATTACHMENTS_TOTAL: Final = MAX_BODY_BYTES - MAX_BODY_JSON_BYTES - _MIB  # 254 MiB
_CASE_DOCUMENTS: Final = AttachmentRule(
    _OFFICE | {_M.PNG, _M.JPEG}, 128 * _MIB, MAX_ATTACHMENTS_TOTAL, 20
)
_REFERRAL_DOCUMENTS: Final = AttachmentRule(_SCANS, 32 * _MIB, 64 * _MIB, 5)
_MEETING_DOCUMENTS: Final = AttachmentRule(_OFFICE, 32 * _MIB, 64 * _MIB, 10)


def _purpose(
    body_type: type[msgspec.Struct],
    senders: frozenset[Role],
    recipients: frozenset[Role],
    states: frozenset[CaseState | None],
    description: str,
    *,
    needs_cosignatures: bool = False,
    sender_tie: CaseTie = CaseTie.MEMBER,
    recipient_tie: CaseTie = CaseTie.MEMBER,
    attachments: AttachmentRule | None = None,
) -> Purpose:
    # The tag is the body's msgspec tag, so the catalogue and the schemas cannot drift apart.
    tag = body_type.__struct_config__.tag
    assert isinstance(tag, str)  # noqa: S101  (every body type is tagged with a string)
    return Purpose(
        tag,
        senders,
        recipients,
        states,
        body_type,
        needs_cosignatures,
        description,
        sender_tie,
        recipient_tie,
        attachments,
    )


_PURPOSES: Final = (
    _purpose(
        AanmeldingBody,
        frozenset({_R.DEELNEMER, _R.AANMELDER_EXTERN}),
        _COORDINATOR,
        frozenset({None, _S.SIGNAAL_ONTVANGEN}),
        "referral of a person to the cell",
        # On a case the hub already knows, only its referrer may add to the referral.
        sender_tie=CaseTie.REFERRER,
        recipient_tie=CaseTie.ANY,
        attachments=_REFERRAL_DOCUMENTS,
    ),
    _purpose(
        ScreeningVraagBody,
        _COORDINATOR,
        frozenset({_R.DEELNEMER, _R.IO_POLITIE}),
        frozenset({_S.IN_SCREENING}),
        "is this person known to you? (minimal identifiers)",
    ),
    _purpose(
        ScreeningAntwoordBody,
        frozenset({_R.DEELNEMER, _R.IO_POLITIE}),
        _COORDINATOR,
        # A late answer may still inform the meeting it was asked for.
        frozenset({_S.IN_SCREENING, _S.GEAGENDEERD}),
        "known / not known / no answer",
    ),
    _purpose(
        UitnodigingOverlegBody,
        _COORDINATOR,
        _MEETING_ROLES - _COORDINATOR,
        frozenset({_S.GEAGENDEERD}),
        "invitation to a case meeting",
    ),
    _purpose(
        CasusinfoOverlegBody,
        _MEETING_ROLES,
        _MEETING_ROLES,
        frozenset({_S.GEAGENDEERD}),
        "domain-tagged notes for a meeting, with an expiry",
        attachments=_MEETING_DOCUMENTS,
    ),
    _purpose(
        VerslagBesluitBody,
        _COORDINATOR,
        _MEETING_ROLES - _COORDINATOR,
        _AFTER_MEETING,
        "minutes: decisions, actions, next review; to the members present",
        recipient_tie=CaseTie.PRESENT,
        attachments=_CASE_DOCUMENTS,
    ),
    _purpose(
        ActieplanBody,
        _COORDINATOR,
        frozenset({_R.CASUSVERANTWOORDELIJKE, _R.DEELNEMER}),
        _AFTER_MEETING,
        "action plan: goals, actions, deadlines; to the case owner and action owners",
        attachments=_CASE_DOCUMENTS,
    ),
    _purpose(
        OpvolgingsrapportBody,
        frozenset({_R.CASUSVERANTWOORDELIJKE}),
        _COORDINATOR,
        # A trajectory back on the agenda (traject_lopend -> geagendeerd) is reported on.
        frozenset({_S.TRAJECT_LOPEND, _S.GEAGENDEERD}),
        "case owner's progress report",
        attachments=_CASE_DOCUMENTS,
    ),
    _purpose(
        TerugkoppelingsficheBody,
        _COORDINATOR,
        frozenset({_R.IO_POLITIE}),
        _AFTER_MEETING,
        "feedback form to the police; pre-agreed fields; co-signed by every member present",
        needs_cosignatures=True,
    ),
    _purpose(
        TerugkoppelingAanmelderBody,
        _COORDINATOR,
        frozenset({_R.DEELNEMER, _R.AANMELDER_EXTERN}),
        _NOT_WIPED,
        "status of a referral, to its referrer",
        recipient_tie=CaseTie.REFERRER,
    ),
    _purpose(
        AfsluitingBody,
        _COORDINATOR,
        _CASE_DATA_HOLDERS,
        frozenset({_S.AFGESLOTEN}),
        "case closed: reason, deletion request and deadline",
    ),
    _purpose(
        WissingsbevestigingBody,
        _CASE_DATA_HOLDERS,
        _COORDINATOR,
        frozenset({_S.AFGESLOTEN}),
        "attestation that case data was deleted",
    ),
    _purpose(
        RechtenverzoekBody,
        frozenset({_R.DPO, _R.COORDINATOR}),
        frozenset({_R.DPO, _R.COORDINATOR}),
        _NOT_WIPED,
        "data-subject rights request between DPOs and the coordinator",
        # DPOs are not on cases; the request concerns the case but needs no tie to it.
        sender_tie=CaseTie.ANY,
        recipient_tie=CaseTie.ANY,
    ),
)

CATALOGUE: Final[Mapping[str, Purpose]] = MappingProxyType({p.tag: p for p in _PURPOSES})

# One reused decoder for the tagged union: the ``purpose`` field picks the schema.
_DECODER: Final = msgspec.json.Decoder(Body)


def get_purpose(tag: str) -> Purpose:
    """The catalogue entry for ``tag``.

    Raises:
        PurposeNotAllowed: ``tag`` is not in the catalogue.
    """
    purpose = CATALOGUE.get(tag)
    if purpose is None:
        raise PurposeNotAllowed(f"unknown purpose {tag!r}")
    return purpose


def purpose_of(body: msgspec.Struct) -> str:
    """The purpose tag of a body.

    Raises:
        TypeError: ``body`` is not one of the catalogue's body types.
    """
    tag = type(body).__struct_config__.tag
    if not isinstance(body, BODY_TYPES) or not isinstance(tag, str):
        raise TypeError(f"{type(body).__name__} is not a purpose body")
    return tag


def decode_body(purpose_tag: str, data: bytes) -> Body:
    """Decode and check a JSON body against the schema of ``purpose_tag``.

    Raises:
        PurposeNotAllowed: ``purpose_tag`` is not in the catalogue.
        AttachmentNotAllowed: the purpose carries no documents and the body has ``attachments``.
        BodySchemaViolation: the bytes are not JSON, nest deeper than MAX_BODY_DEPTH, repeat a
            key in one object, break the schema (unknown field, over-long text, a text that is
            not NFC, missing reason for special-category data, ...) or are tagged with another
            purpose; the message is msgspec's, naming the offending path.
    """
    purpose = get_purpose(purpose_tag)
    check_structure(data)  # before msgspec: its skipping of unknown values recurses
    if purpose.attachments is None:
        _refuse_attachments(purpose_tag, data)
    try:
        body: Body = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise BodySchemaViolation(f"{purpose_tag} body: {exc}") from exc
    except RecursionError as exc:  # nesting deeper than msgspec's limit: no schema allows it
        raise BodySchemaViolation(f"{purpose_tag} body: nested too deeply") from exc
    tag = purpose_of(body)
    if tag != purpose_tag:
        raise BodySchemaViolation(f"{purpose_tag} body: body is tagged {tag!r}")
    _check_unique_set_items(purpose_tag, data)
    return body


class _AttachmentProbe(msgspec.Struct):
    """Only the ``attachments`` member of a body; every other member is skipped."""

    attachments: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)  # empty: absent


_PROBE: Final = msgspec.json.Decoder(_AttachmentProbe)


def _refuse_attachments(purpose_tag: str, data: bytes) -> None:
    # A purpose without documents has no ``attachments`` field: its schema would refuse one as
    # an unknown field, but the refusal has a code of its own (spec §6.7).
    try:
        probe = _PROBE.decode(data)
    except msgspec.DecodeError:
        return  # not a JSON object: the schema decoder says why
    # An empty list names nothing: the schema refuses it as an unknown field, as any other.
    if len(probe.attachments) and msgspec.json.decode(probe.attachments) not in ([], None):
        raise AttachmentNotAllowed(f"{purpose_tag} carries no attachments")


def attachments_of(body: Body) -> tuple[AttachmentRef, ...]:
    """The attachments a decoded body names (none for a purpose without documents)."""
    refs: tuple[AttachmentRef, ...] = getattr(body, "attachments", ())
    return refs


def _set_fields(body_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The JSON names of a body's top-level set fields (``uniqueItems`` in the schema)."""
    info = msgspec.inspect.type_info(body_type)
    assert isinstance(info, msgspec.inspect.StructType)  # noqa: S101  (bodies are Structs)
    return tuple(
        f.encode_name
        for f in info.fields
        if isinstance(f.type, msgspec.inspect.SetType | msgspec.inspect.FrozenSetType)
    )


_SET_FIELDS: Final = {tag: _set_fields(p.body_type) for tag, p in CATALOGUE.items()}


def _check_unique_set_items(purpose_tag: str, data: bytes) -> None:
    # msgspec folds a repeated item into its set; a JSON Schema validator refuses the array
    # (uniqueItems), and the two readers must agree. The body decoded already, so this cannot
    # fail to parse, and its depth is bounded.
    fields = _SET_FIELDS[purpose_tag]
    if not fields:
        return
    raw = msgspec.json.decode(data)
    for name in fields:
        items = raw[name]
        if len(set(items)) != len(items):
            raise BodySchemaViolation(f"{purpose_tag} body: {name} repeats an item")


def encode_body(body: msgspec.Struct) -> bytes:
    """The canonical JSON of a body (sets sorted), checked against its schema.

    Raises:
        TypeError: ``body`` is not one of the catalogue's body types.
        BodySchemaViolation: the body breaks its schema. Building a Struct in Python does not
            check length caps or patterns, so the encoding is decoded again before it is
            returned: nothing invalid is ever sealed.
    """
    tag = purpose_of(body)
    data = msgspec.json.encode(body, order="deterministic")
    decode_body(tag, data)
    return data
