"""The body schema of every purpose: strict, frozen, tagged msgspec Structs (spec §7.2).

Every body is a JSON object tagged with its purpose in the field ``purpose``. Unknown fields are
rejected, every string has a length cap (counted in characters) and follows the text rules of
``body_text.py``, every list has a length cap, and every enumerated value is a closed
``StrEnum``. Bodies with narrative fields (descriptions and notes, where special-category data
may end up) carry ``special_category`` and a mandatory ``special_category_reason`` when it is
set.

Calendar dates are ISO 8601 ``YYYY-MM-DD`` strings and instants are Unix seconds (spec §2): the
pure core does not import ``datetime`` (no clock, spec §2), so dates are checked here.
"""

from __future__ import annotations

import enum
import functools
from typing import Annotated, ClassVar, Final, TypeAlias

import msgspec

from .attachments import AttachmentRef
from .body_text import (
    MAX_DESCRIPTION,
    MAX_LIST_ITEMS,
    MAX_MESSAGE_IDS,
    MAX_NAME_LENGTH,
    MAX_NOTE,
    MAX_SHORT_TEXT,
    Description,
    Email,
    Ident,
    IsoDate,
    LocalTime,
    MessageIdHex,
    Name,
    NonceHex,
    Note,
    Phone,
    ShortText,
    UnixTime,
    check_text,
    single_line_fields,
)
from .cases import ClosureReason

__all__ = [  # the text forms are part of this module's interface (gateway, tests)
    "MAX_DESCRIPTION",
    "MAX_LIST_ITEMS",
    "MAX_MESSAGE_IDS",
    "MAX_NAME_LENGTH",
    "MAX_NOTE",
    "MAX_SHORT_TEXT",
    "Ident",
]

FICHE_NONCE_BYTES: Final = 32


class LegalGround(enum.StrEnum):
    """The legal basis a message relies on; every body names at least one."""

    WET_30_JULI_2018 = "wet_30_juli_2018"  # federal law founding the LIVC-R
    DECREET_2021 = "decreet_2021"  # Flemish decree on processing for the cell's purpose
    ART_458TER_SW = "art_458ter_sw"  # shared professional secrecy, Strafwetboek


LegalGrounds = Annotated[frozenset[LegalGround], msgspec.Meta(min_length=1, max_length=3)]


class Urgency(enum.StrEnum):
    NORMAAL = "normaal"
    DRINGEND = "dringend"  # put on the next meeting's agenda, or an extra meeting


class ConcernCategory(enum.StrEnum):
    JIHADISME = "jihadisme"
    EXTREEMRECHTS = "extreemrechts"
    EXTREEMLINKS = "extreemlinks"
    ANTI_OVERHEID = "anti_overheid"
    SINGLE_ISSUE = "single_issue"
    POLARISATIE = "polarisatie"
    ONDUIDELIJK = "onduidelijk"


class ScreeningAnswer(enum.StrEnum):
    """``no_answer`` is always a valid answer: nobody at the table is obliged to speak."""

    KNOWN = "known"
    NOT_KNOWN = "not_known"
    NO_ANSWER = "no_answer"


class Domain(enum.StrEnum):
    """The life domain a meeting note is about."""

    ONDERWIJS = "onderwijs"
    WELZIJN = "welzijn"
    GEZONDHEID = "gezondheid"
    WERK = "werk"
    JEUGD = "jeugd"
    JUSTITIE = "justitie"
    HUISVESTING = "huisvesting"
    ANDERE = "andere"


class FollowUpStatus(enum.StrEnum):
    POSITIEF = "positief"
    NEUTRAAL = "neutraal"
    ZORGWEKKEND = "zorgwekkend"


class FicheFollowUp(enum.StrEnum):
    """The pre-agreed follow-up values a feedback form to the police may state."""

    GEEN_VERDERE_OPVOLGING = "geen_verdere_opvolging"
    OPVOLGING_DOOR_CEL = "opvolging_door_cel"
    SOCIO_PREVENTIEF_TRAJECT = "socio_preventief_traject"
    DOORVERWEZEN = "doorverwezen"


class ReferrerStatus(enum.StrEnum):
    """The only thing a referrer learns about its referral."""

    ONTVANGEN = "ontvangen"
    IN_BEHANDELING = "in_behandeling"
    BESPROKEN = "besproken"
    OPGEVOLGD = "opgevolgd"
    AFGESLOTEN = "afgesloten"


class RightsRequestType(enum.StrEnum):
    INZAGE = "inzage"  # GDPR art. 15
    RECTIFICATIE = "rectificatie"  # art. 16
    WISSING = "wissing"  # art. 17
    BEPERKING = "beperking"  # art. 18
    BEZWAAR = "bezwaar"  # art. 21


class RightsDecision(enum.StrEnum):
    TOEGEKEND = "toegekend"
    GEDEELTELIJK_TOEGEKEND = "gedeeltelijk_toegekend"
    GEWEIGERD = "geweigerd"  # e.g. a restriction under the law of 2018


def fiche_nonce(random_bytes: bytes) -> str:
    """The hex nonce of a terugkoppelingsfiche, from 32 bytes the caller drew from a CSPRNG.

    Raises:
        ValueError: ``random_bytes`` is not exactly 32 bytes.
    """
    if len(random_bytes) != FICHE_NONCE_BYTES:
        raise ValueError(f"a fiche nonce needs {FICHE_NONCE_BYTES} random bytes")
    return random_bytes.hex()


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in {4, 6, 9, 11} else 31


def _check_calendar_date(field: str, value: str) -> None:
    # The pattern already bounds year, month and day; only the month length is left.
    year, month, day = (int(part) for part in value.split("-"))
    if day > _days_in_month(year, month):
        raise ValueError(f"{field} {value} is not a calendar date")


@functools.cache
def _single_line_fields(struct_type: type[msgspec.Struct]) -> frozenset[str]:
    return single_line_fields(struct_type)


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Strict, immutable, keyword-only; ``_validate`` runs after construction and decoding.

    msgspec turns a ValueError raised here into a ValidationError while decoding.
    """

    _date_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        single_line = _single_line_fields(type(self))
        for name in self.__struct_fields__:
            check_text(name, getattr(self, name), single_line=name in single_line)
        for name in self._date_fields:
            value = getattr(self, name)
            if value is not None:
                _check_calendar_date(name, value)


class _Body(_Strict, tag_field="purpose", forbid_unknown_fields=True, frozen=True, kw_only=True):
    legal_ground: LegalGrounds


class _NarrativeBody(_Body, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A body with narrative fields: special-category data needs a flag and a reason."""

    special_category: bool = False
    special_category_reason: ShortText | None = None

    def _validate(self) -> None:
        super()._validate()
        reason = self.special_category_reason
        if self.special_category and (reason is None or not reason.strip()):
            raise ValueError("special_category is set without a special_category_reason")
        if not self.special_category and reason is not None:
            raise ValueError("special_category_reason given but special_category is not set")


# Documents a body carries (spec §6.7): the purpose's rule in the catalogue says whether any may.
Attachments = tuple[AttachmentRef, ...]


# Parts shared by several bodies.
class Person(_Strict, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The minimal identifiers to recognise a person in one's own files."""

    _date_fields = ("birth_date",)

    family_name: Name
    given_name: Name
    birth_date: IsoDate
    residence_municipality: ShortText | None = None


class Contact(_Strict, forbid_unknown_fields=True, frozen=True, kw_only=True):
    organisation: ShortText
    name: Name
    phone: Phone | None = None
    email: Email | None = None


class Action(_Strict, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One action: who (a participant id), what, by when."""

    _date_fields = ("due",)

    owner: Ident
    what: Description
    due: IsoDate


class DomainNote(_Strict, forbid_unknown_fields=True, frozen=True, kw_only=True):
    domain: Domain
    text: Note


# One body per purpose; the tag is the purpose.
class AanmeldingBody(
    _NarrativeBody, tag="aanmelding", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    person: Person
    minor: bool
    concern_category: ConcernCategory
    description: Description
    urgency: Urgency
    referrer_contact: Contact
    attachments: Attachments = ()


class ScreeningVraagBody(
    _Body, tag="screening_vraag", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    _date_fields = ("answer_by",)

    person: Person
    answer_by: IsoDate


class ScreeningAntwoordBody(
    _Body, tag="screening_antwoord", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    answer: ScreeningAnswer


class UitnodigingOverlegBody(
    _Body, tag="uitnodiging_overleg", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    _date_fields = ("meeting_date",)

    meeting_ref: Ident
    meeting_date: IsoDate
    start_time: LocalTime
    place: ShortText
    case_refs: Annotated[tuple[Ident, ...], msgspec.Meta(min_length=1, max_length=MAX_LIST_ITEMS)]


class CasusinfoOverlegBody(
    _NarrativeBody, tag="casusinfo_overleg", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    _date_fields = ("expires_on",)

    meeting_ref: Ident
    notes: Annotated[tuple[DomainNote, ...], msgspec.Meta(min_length=1, max_length=MAX_LIST_ITEMS)]
    expires_on: IsoDate  # the recipient deletes the notes from its dossier by then
    attachments: Attachments = ()


class VerslagBesluitBody(
    _NarrativeBody, tag="verslag_besluit", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    _date_fields = ("next_review",)

    meeting_ref: Ident
    decisions: Annotated[
        tuple[Description, ...], msgspec.Meta(min_length=1, max_length=MAX_LIST_ITEMS)
    ]
    actions: Annotated[tuple[Action, ...], msgspec.Meta(max_length=MAX_LIST_ITEMS)] = ()
    next_review: IsoDate | None = None
    attachments: Attachments = ()


class ActieplanBody(
    _NarrativeBody, tag="actieplan", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    _date_fields = ("next_review",)

    case_owner: Ident
    goals: Annotated[tuple[Description, ...], msgspec.Meta(min_length=1, max_length=MAX_LIST_ITEMS)]
    actions: Annotated[tuple[Action, ...], msgspec.Meta(min_length=1, max_length=MAX_LIST_ITEMS)]
    next_review: IsoDate
    attachments: Attachments = ()


class OpvolgingsrapportBody(
    _NarrativeBody, tag="opvolgingsrapport", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    status: FollowUpStatus
    note: Description
    attachments: Attachments = ()


class TerugkoppelingsficheBody(
    _Body, tag="terugkoppelingsfiche", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    """Only pre-agreed fields: no free text that could carry professional-secret content.

    ``nonce`` is 32 random bytes in hex, so that the content digest the hub sees (spec §7.4)
    cannot be confirmed by hashing guessed bodies.
    """

    _date_fields = ("next_review",)

    case_ref: Ident
    meeting_ref: Ident
    discussed: bool
    follow_up: FicheFollowUp
    next_review: IsoDate | None = None
    contact_service: ShortText
    nonce: NonceHex


class TerugkoppelingAanmelderBody(
    _Body, tag="terugkoppeling_aanmelder", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    status: ReferrerStatus


class AfsluitingBody(
    _Body, tag="afsluiting", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    """A deletion deadline is given exactly when deletion is requested."""

    _date_fields = ("deletion_deadline",)

    reason: ClosureReason
    deletion_requested: bool
    deletion_deadline: IsoDate | None = None

    def _validate(self) -> None:
        super()._validate()
        if self.deletion_requested != (self.deletion_deadline is not None):
            raise ValueError("deletion_deadline is required exactly when deletion_requested")


class WissingsbevestigingBody(
    _Body, tag="wissingsbevestiging", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    deleted_at: UnixTime
    scope: ShortText
    message_ids: Annotated[tuple[MessageIdHex, ...], msgspec.Meta(max_length=MAX_MESSAGE_IDS)]


class RechtenverzoekBody(
    _Body, tag="rechtenverzoek", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    _date_fields = ("received_on", "deadline")

    request_type: RightsRequestType
    received_on: IsoDate
    deadline: IsoDate
    decision: RightsDecision | None = None
    note: ShortText | None = None

    def _validate(self) -> None:
        super()._validate()
        # ISO dates of one fixed width compare correctly as strings.
        if self.deadline < self.received_on:
            raise ValueError("deadline is before received_on")


Body: TypeAlias = (
    AanmeldingBody
    | ScreeningVraagBody
    | ScreeningAntwoordBody
    | UitnodigingOverlegBody
    | CasusinfoOverlegBody
    | VerslagBesluitBody
    | ActieplanBody
    | OpvolgingsrapportBody
    | TerugkoppelingsficheBody
    | TerugkoppelingAanmelderBody
    | AfsluitingBody
    | WissingsbevestigingBody
    | RechtenverzoekBody
)

BODY_TYPES: Final[tuple[type[_Body], ...]] = (
    AanmeldingBody,
    ScreeningVraagBody,
    ScreeningAntwoordBody,
    UitnodigingOverlegBody,
    CasusinfoOverlegBody,
    VerslagBesluitBody,
    ActieplanBody,
    OpvolgingsrapportBody,
    TerugkoppelingsficheBody,
    TerugkoppelingAanmelderBody,
    AfsluitingBody,
    WissingsbevestigingBody,
    RechtenverzoekBody,
)
