"""One realistic, valid, fictitious body per purpose, for tests, vectors and the demo.

Every name, place and organisation is invented ("Voorbeeldstad"); nothing here is personal data.
The fiche nonce is a fixed value so that vectors are reproducible; a real sender draws it from a
CSPRNG (``bodies.fiche_nonce``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from .bodies import (
    AanmeldingBody,
    ActieplanBody,
    Action,
    AfsluitingBody,
    Body,
    CasusinfoOverlegBody,
    ConcernCategory,
    Contact,
    Domain,
    DomainNote,
    FicheFollowUp,
    FollowUpStatus,
    LegalGround,
    OpvolgingsrapportBody,
    Person,
    RechtenverzoekBody,
    ReferrerStatus,
    RightsRequestType,
    ScreeningAnswer,
    ScreeningAntwoordBody,
    ScreeningVraagBody,
    TerugkoppelingAanmelderBody,
    TerugkoppelingsficheBody,
    UitnodigingOverlegBody,
    Urgency,
    VerslagBesluitBody,
    WissingsbevestigingBody,
)
from .cases import ClosureReason
from .errors import PurposeNotAllowed

EXAMPLE_CASE_REF: Final = "case-7f3a9c2e"
EXAMPLE_MEETING_REF: Final = "meeting-2025-03"
EXAMPLE_OWNER_ID: Final = "caw-voorbeeldstad"
EXAMPLE_FICHE_NONCE: Final = "5e" * 32

_CELL_GROUNDS: Final = frozenset({LegalGround.WET_30_JULI_2018, LegalGround.DECREET_2021})
_SECRECY_GROUNDS: Final = _CELL_GROUNDS | {LegalGround.ART_458TER_SW}

_PERSON: Final = Person(
    family_name="Voorbeeld",
    given_name="Sam",
    birth_date="2008-05-17",
    residence_municipality="Voorbeeldstad",
)


def _aanmelding() -> Body:
    return AanmeldingBody(
        legal_ground=_CELL_GROUNDS,
        person=_PERSON,
        minor=True,
        concern_category=ConcernCategory.EXTREEMRECHTS,
        description=(
            "Leerling deelt sinds enkele weken propaganda van een extreemrechtse groep in de "
            "klasgroep en zoekt contact met oudere leden. Ouders zijn op de hoogte."
        ),
        urgency=Urgency.NORMAAL,
        referrer_contact=Contact(
            organisation="CLB Voorbeeldstad",
            name="An Medewerker",
            phone="+32 9 000 00 00",
            email="an.medewerker@clb.voorbeeldstad.example",
        ),
    )


def _screening_vraag() -> Body:
    return ScreeningVraagBody(legal_ground=_CELL_GROUNDS, person=_PERSON, answer_by="2025-03-07")


def _screening_antwoord() -> Body:
    return ScreeningAntwoordBody(legal_ground=_SECRECY_GROUNDS, answer=ScreeningAnswer.KNOWN)


def _uitnodiging_overleg() -> Body:
    return UitnodigingOverlegBody(
        legal_ground=_CELL_GROUNDS,
        meeting_ref=EXAMPLE_MEETING_REF,
        meeting_date="2025-03-14",
        start_time="14:00",
        place="Stadhuis Voorbeeldstad, vergaderzaal 2",
        case_refs=(EXAMPLE_CASE_REF,),
    )


def _casusinfo_overleg() -> Body:
    return CasusinfoOverlegBody(
        legal_ground=_SECRECY_GROUNDS,
        meeting_ref=EXAMPLE_MEETING_REF,
        notes=(
            DomainNote(
                domain=Domain.ONDERWIJS,
                text="Schoolresultaten dalen sinds januari; regelmatig ongewettigd afwezig.",
            ),
            DomainNote(
                domain=Domain.JEUGD,
                text="Neemt niet meer deel aan de jeugdwerking waar hij vroeger actief was.",
            ),
        ),
        expires_on="2025-04-14",
    )


def _verslag_besluit() -> Body:
    return VerslagBesluitBody(
        legal_ground=_SECRECY_GROUNDS,
        meeting_ref=EXAMPLE_MEETING_REF,
        decisions=("Opstart van een socio-preventief traject met CAW als casusverantwoordelijke.",),
        actions=(
            Action(
                owner=EXAMPLE_OWNER_ID,
                what="Eerste gesprek met de jongere en de ouders.",
                due="2025-03-31",
            ),
        ),
        next_review="2025-05-09",
    )


def _actieplan() -> Body:
    return ActieplanBody(
        legal_ground=_SECRECY_GROUNDS,
        case_owner=EXAMPLE_OWNER_ID,
        goals=("Herstel van het schoolengagement.", "Een positief vrijetijdsnetwerk."),
        actions=(
            Action(
                owner=EXAMPLE_OWNER_ID,
                what="Wekelijks begeleidingsgesprek.",
                due="2025-04-30",
            ),
            Action(
                owner="clb-voorbeeldstad",
                what="Overleg met de school over een aangepast lesrooster.",
                due="2025-04-15",
            ),
        ),
        next_review="2025-05-09",
    )


def _opvolgingsrapport() -> Body:
    return OpvolgingsrapportBody(
        legal_ground=_SECRECY_GROUNDS,
        status=FollowUpStatus.POSITIEF,
        note="Jongere komt op afspraak en gaat opnieuw naar de jeugdwerking.",
    )


def _terugkoppelingsfiche() -> Body:
    return TerugkoppelingsficheBody(
        legal_ground=_CELL_GROUNDS,
        case_ref=EXAMPLE_CASE_REF,
        meeting_ref=EXAMPLE_MEETING_REF,
        discussed=True,
        follow_up=FicheFollowUp.SOCIO_PREVENTIEF_TRAJECT,
        next_review="2025-05-09",
        contact_service="Preventiedienst Voorbeeldstad",
        nonce=EXAMPLE_FICHE_NONCE,
    )


def _terugkoppeling_aanmelder() -> Body:
    return TerugkoppelingAanmelderBody(
        legal_ground=_CELL_GROUNDS, status=ReferrerStatus.IN_BEHANDELING
    )


def _afsluiting() -> Body:
    return AfsluitingBody(
        legal_ground=_CELL_GROUNDS,
        reason=ClosureReason.TRAJECT_AFGEROND,
        deletion_requested=True,
        deletion_deadline="2025-12-31",
    )


def _wissingsbevestiging() -> Body:
    return WissingsbevestigingBody(
        legal_ground=_CELL_GROUNDS,
        deleted_at=1767139200,  # 2025-12-31T00:00:00Z
        scope="Alle ontvangen berichten en eigen notities over deze casus",
        message_ids=("0f" * 16, "a1" * 16),
    )


def _rechtenverzoek() -> Body:
    return RechtenverzoekBody(
        legal_ground=_CELL_GROUNDS,
        request_type=RightsRequestType.INZAGE,
        received_on="2025-06-02",
        deadline="2025-07-02",
    )


_EXAMPLES: Final[Mapping[str, Callable[[], Body]]] = MappingProxyType(
    {
        "aanmelding": _aanmelding,
        "screening_vraag": _screening_vraag,
        "screening_antwoord": _screening_antwoord,
        "uitnodiging_overleg": _uitnodiging_overleg,
        "casusinfo_overleg": _casusinfo_overleg,
        "verslag_besluit": _verslag_besluit,
        "actieplan": _actieplan,
        "opvolgingsrapport": _opvolgingsrapport,
        "terugkoppelingsfiche": _terugkoppelingsfiche,
        "terugkoppeling_aanmelder": _terugkoppeling_aanmelder,
        "afsluiting": _afsluiting,
        "wissingsbevestiging": _wissingsbevestiging,
        "rechtenverzoek": _rechtenverzoek,
    }
)


def example_body(tag: str) -> Body:
    """A valid, fictitious body for the purpose ``tag``.

    Raises:
        PurposeNotAllowed: ``tag`` is not a purpose.
    """
    make = _EXAMPLES.get(tag)
    if make is None:
        raise PurposeNotAllowed(f"unknown purpose {tag!r}")
    return make()
