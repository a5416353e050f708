"""Purpose policy decisions for a representative cell."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import pytest

from livcr_exchange.cases import CaseState
from livcr_exchange.errors import (
    BodySchemaViolation,
    CaseStateForbids,
    CosignatureInvalid,
    LivcrError,
    PurposeNotAllowed,
    RecipientNotAllowed,
)
from livcr_exchange.policy import (
    CaseView,
    Decision,
    MessageFacts,
    Participant,
    effective_roles,
    evaluate_before_sealing,
    evaluate_header,
    evaluate_message,
    possible_roles,
)
from livcr_exchange.purpose_examples import (
    EXAMPLE_CASE_REF,
    EXAMPLE_MEETING_REF,
    EXAMPLE_OWNER_ID,
    example_body,
)
from livcr_exchange.purposes import CATALOGUE, encode_body
from livcr_exchange.roles import Role

S = CaseState
ALL = frozenset(CATALOGUE)

COORD = "preventie-voorbeeldstad"
IO = "politie-voorbeeldstad"
CAW = EXAMPLE_OWNER_ID  # deelnemer, owner of the case
CLB = "clb-voorbeeldstad"  # deelnemer, referrer of the case
OCMW = "ocmw-voorbeeldstad"  # deelnemer, not on the case
MAYOR = "burgemeester-voorbeeldstad"
EXT = "school-extern"  # aanmelder_extern
DPO = "dpo-voorbeeldstad"
DPO_CAW = "dpo-caw"
HUB = "hub-operator"
AUDIT = "toezicht-vlaanderen"

# Every entry lists every purpose, so the role rules are what the tests exercise.
CELL: Mapping[str, Participant] = MappingProxyType(
    {
        pid: Participant(pid, role, ALL)
        for pid, role in (
            (COORD, Role.COORDINATOR),
            (IO, Role.IO_POLITIE),
            (CAW, Role.DEELNEMER),
            (CLB, Role.DEELNEMER),
            (OCMW, Role.DEELNEMER),
            (MAYOR, Role.VOORZITTER),
            (EXT, Role.AANMELDER_EXTERN),
            (DPO, Role.DPO),
            (DPO_CAW, Role.DPO),
            (HUB, Role.HUB_OPERATOR),
            (AUDIT, Role.TOEZICHT),
        )
    }
)
PRESENT = frozenset({COORD, IO, CAW, CLB, MAYOR})


def case_in(state: CaseState, **changes: object) -> CaseView:
    case = CaseView(
        case_ref=EXAMPLE_CASE_REF,
        state=state,
        members=frozenset({IO, CAW, CLB, MAYOR}),
        owner=CAW,
        referrer=CLB,
        present_at=MappingProxyType({EXAMPLE_MEETING_REF: PRESENT}),
    )
    return replace(case, **changes)  # type: ignore[arg-type]


def facts(
    purpose: str,
    sender: str,
    recipients: Iterable[str],
    *,
    meeting_ref: str | None = None,
    cosigners: Iterable[str] = (),
) -> MessageFacts:
    return MessageFacts(
        sender_id=sender,
        purpose=purpose,
        case_ref=EXAMPLE_CASE_REF,
        recipients=tuple(sorted(recipients)),  # the header lists them in ascending order
        meeting_ref=meeting_ref,
        cosigners=frozenset(cosigners),
    )


def decide(
    message: MessageFacts,
    case: CaseView | None,
    cell: Mapping[str, Participant] = CELL,
) -> Decision:
    return evaluate_header(message, cell[message.sender_id], cell, case)


@dataclass(frozen=True)
class Scenario:
    name: str
    message: MessageFacts
    case: CaseView | None


ALLOWED = [
    Scenario("aanmelding-deelnemer", facts("aanmelding", CLB, [COORD]), None),
    Scenario("aanmelding-extern", facts("aanmelding", EXT, [COORD]), None),
    Scenario(
        "aanmelding-referrer-adds",
        facts("aanmelding", CLB, [COORD]),
        case_in(S.SIGNAAL_ONTVANGEN),
    ),
    Scenario(
        "screening_vraag",
        facts("screening_vraag", COORD, [CAW, CLB, IO]),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "screening_antwoord", facts("screening_antwoord", IO, [COORD]), case_in(S.IN_SCREENING)
    ),
    Scenario(
        "screening_antwoord-late",
        facts("screening_antwoord", CLB, [COORD]),
        case_in(S.GEAGENDEERD),
    ),
    Scenario(
        "uitnodiging_overleg",
        facts("uitnodiging_overleg", COORD, [MAYOR, IO, CAW, CLB]),
        case_in(S.GEAGENDEERD),
    ),
    Scenario(
        "casusinfo_overleg",
        facts("casusinfo_overleg", CAW, [COORD, MAYOR, IO, CLB]),
        case_in(S.GEAGENDEERD),
    ),
    Scenario(
        "verslag_besluit",
        facts("verslag_besluit", COORD, [MAYOR, IO, CAW, CLB], meeting_ref=EXAMPLE_MEETING_REF),
        case_in(S.BESPROKEN),
    ),
    Scenario("actieplan", facts("actieplan", COORD, [CAW, CLB]), case_in(S.TRAJECT_LOPEND)),
    Scenario(
        "opvolgingsrapport", facts("opvolgingsrapport", CAW, [COORD]), case_in(S.TRAJECT_LOPEND)
    ),
    Scenario(
        "terugkoppelingsfiche",
        facts(
            "terugkoppelingsfiche",
            COORD,
            [IO],
            meeting_ref=EXAMPLE_MEETING_REF,
            cosigners=PRESENT,
        ),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "terugkoppeling_aanmelder",
        facts("terugkoppeling_aanmelder", COORD, [CLB]),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "terugkoppeling_aanmelder-extern",
        facts("terugkoppeling_aanmelder", COORD, [EXT]),
        case_in(S.AFGESLOTEN, referrer=EXT),
    ),
    Scenario(
        "afsluiting",
        facts("afsluiting", COORD, [MAYOR, IO, CAW, CLB]),
        case_in(S.AFGESLOTEN),
    ),
    Scenario(
        "wissingsbevestiging", facts("wissingsbevestiging", CLB, [COORD]), case_in(S.AFGESLOTEN)
    ),
    Scenario("rechtenverzoek", facts("rechtenverzoek", DPO, [COORD]), case_in(S.TRAJECT_LOPEND)),
    Scenario("rechtenverzoek-dpo", facts("rechtenverzoek", DPO_CAW, [DPO]), case_in(S.AFGESLOTEN)),
]


@pytest.mark.parametrize("scenario", ALLOWED, ids=lambda s: s.name)
def test_allowed(scenario: Scenario) -> None:
    decision = decide(scenario.message, scenario.case)
    assert decision == Decision.allow(
        purpose=scenario.message.purpose, sender_id=scenario.message.sender_id
    )
    decision.raise_for_denial()


def test_every_purpose_has_an_allowed_scenario() -> None:
    assert {s.message.purpose for s in ALLOWED} == ALL


@pytest.mark.parametrize("scenario", ALLOWED, ids=lambda s: s.name)
def test_allowed_message_with_its_example_body(scenario: Scenario) -> None:
    body = encode_body(example_body(scenario.message.purpose))
    sender = CELL[scenario.message.sender_id]
    decision = evaluate_message(scenario.message, sender, CELL, scenario.case, body)
    assert decision.allowed, decision.reason


PURPOSE_DENIALS = [
    Scenario("unknown-purpose", facts("roddel", COORD, [IO]), case_in(S.BESPROKEN)),
    Scenario("police-may-not-refer", facts("aanmelding", IO, [COORD]), None),
    Scenario("coordinator-may-not-refer", facts("aanmelding", COORD, [COORD]), None),
    Scenario(
        "only-the-referrer-adds-to-a-referral",
        facts("aanmelding", OCMW, [COORD]),
        case_in(S.SIGNAAL_ONTVANGEN),
    ),
    Scenario(
        "deelnemer-may-not-screen",
        facts("screening_vraag", CLB, [CAW]),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "answer-from-someone-not-on-the-case",
        facts("screening_antwoord", OCMW, [COORD]),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "only-the-owner-reports",
        facts("opvolgingsrapport", CLB, [COORD]),
        case_in(S.TRAJECT_LOPEND),
    ),
    Scenario(
        "only-the-coordinator-sends-the-fiche",
        facts("terugkoppelingsfiche", CAW, [IO], meeting_ref=EXAMPLE_MEETING_REF),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "dpo-may-not-send-case-data",
        facts("casusinfo_overleg", DPO, [CAW]),
        case_in(S.GEAGENDEERD),
    ),
    Scenario(
        "external-referrer-may-not-confirm-deletion",
        facts("wissingsbevestiging", EXT, [COORD]),
        case_in(S.AFGESLOTEN),
    ),
]
STATE_DENIALS = [
    Scenario("unknown-case", facts("screening_vraag", COORD, [CLB]), None),
    Scenario(
        "screening-after-the-meeting",
        facts("screening_vraag", COORD, [CLB]),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "referral-during-screening", facts("aanmelding", CLB, [COORD]), case_in(S.IN_SCREENING)
    ),
    Scenario(
        "minutes-before-the-meeting", facts("verslag_besluit", COORD, [IO]), case_in(S.GEAGENDEERD)
    ),
    Scenario("closing-an-open-case", facts("afsluiting", COORD, [IO]), case_in(S.TRAJECT_LOPEND)),
    Scenario("rights-after-wiping", facts("rechtenverzoek", DPO, [COORD]), case_in(S.GEWIST)),
]
RECIPIENT_DENIALS = [
    Scenario("to-self", facts("rechtenverzoek", COORD, [COORD]), case_in(S.BESPROKEN)),
    Scenario("to-nobody", facts("screening_vraag", COORD, []), case_in(S.IN_SCREENING)),
    Scenario(
        "twice",
        replace(facts("screening_vraag", COORD, []), recipients=(CLB, CLB)),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "not-enrolled",
        facts("screening_vraag", COORD, ["vzw-onbekend"]),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "not-on-the-case",
        facts("screening_vraag", COORD, [CLB, OCMW]),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "referral-not-to-a-deelnemer",
        facts("aanmelding", EXT, [CLB]),
        None,
    ),
    Scenario(
        "fiche-not-to-a-deelnemer",
        facts(
            "terugkoppelingsfiche",
            COORD,
            [CAW, IO],
            meeting_ref=EXAMPLE_MEETING_REF,
            cosigners=PRESENT,
        ),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "minutes-to-someone-absent",
        facts("verslag_besluit", COORD, [CAW, IO], meeting_ref=EXAMPLE_MEETING_REF),
        case_in(
            S.BESPROKEN, present_at=MappingProxyType({EXAMPLE_MEETING_REF: frozenset({COORD, CAW})})
        ),
    ),
    Scenario(
        "minutes-to-a-removed-member",
        facts("verslag_besluit", COORD, [CAW, IO], meeting_ref=EXAMPLE_MEETING_REF),
        case_in(S.BESPROKEN, members=frozenset({CAW})),
    ),
    Scenario(
        "minutes-without-a-meeting",
        facts("verslag_besluit", COORD, [CAW]),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "status-to-someone-not-the-referrer",
        facts("terugkoppeling_aanmelder", COORD, [CAW]),
        case_in(S.IN_SCREENING),
    ),
    Scenario(
        "action-plan-to-the-police",
        facts("actieplan", COORD, [CAW, IO]),
        case_in(S.TRAJECT_LOPEND),
    ),
    Scenario(
        "closure-to-an-external-referrer",
        facts("afsluiting", COORD, [EXT]),
        case_in(S.AFGESLOTEN, members=frozenset({EXT})),
    ),
]
COSIGNATURE_DENIALS = [
    Scenario(
        "fiche-missing-a-cosigner",
        facts(
            "terugkoppelingsfiche",
            COORD,
            [IO],
            meeting_ref=EXAMPLE_MEETING_REF,
            cosigners=PRESENT - {MAYOR},
        ),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "fiche-missing-the-coordinators-own-cosignature",
        facts(
            "terugkoppelingsfiche",
            COORD,
            [IO],
            meeting_ref=EXAMPLE_MEETING_REF,
            cosigners=PRESENT - {COORD},
        ),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "fiche-cosigned-by-someone-absent",
        facts(
            "terugkoppelingsfiche",
            COORD,
            [IO],
            meeting_ref=EXAMPLE_MEETING_REF,
            cosigners=PRESENT | {OCMW},
        ),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "fiche-without-a-meeting",
        facts("terugkoppelingsfiche", COORD, [IO]),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "fiche-for-a-meeting-without-attendance",
        facts("terugkoppelingsfiche", COORD, [IO], meeting_ref="meeting-x", cosigners=PRESENT),
        case_in(S.BESPROKEN),
    ),
    Scenario(
        "cosignatures-on-another-purpose",
        facts(
            "verslag_besluit",
            COORD,
            [IO],
            meeting_ref=EXAMPLE_MEETING_REF,
            cosigners=PRESENT,
        ),
        case_in(S.BESPROKEN),
    ),
]

EXPECTED_CODE = {
    scenario.name: code
    for code, group in (
        (PurposeNotAllowed.code, PURPOSE_DENIALS),
        (CaseStateForbids.code, STATE_DENIALS),
        (RecipientNotAllowed.code, RECIPIENT_DENIALS),
        (CosignatureInvalid.code, COSIGNATURE_DENIALS),
    )
    for scenario in group
}
DENIED = PURPOSE_DENIALS + STATE_DENIALS + RECIPIENT_DENIALS + COSIGNATURE_DENIALS


@pytest.mark.parametrize("scenario", DENIED, ids=lambda s: s.name)
def test_denied(scenario: Scenario) -> None:
    decision = decide(scenario.message, scenario.case)
    assert not decision.allowed
    assert decision.code == EXPECTED_CODE[scenario.name], decision.reason
    assert decision.purpose == scenario.message.purpose
    assert decision.sender_id == scenario.message.sender_id
    with pytest.raises(LivcrError) as info:
        decision.raise_for_denial()
    assert info.value.code == decision.code
    assert str(info.value) == decision.reason


def test_denial_reasons_are_precise() -> None:
    reasons = {s.name: decide(s.message, s.case).reason for s in DENIED}
    assert reasons["fiche-missing-a-cosigner"] == (
        f"terugkoppelingsfiche lacks co-signatures of {MAYOR}"
    )
    assert reasons["not-on-the-case"] == f"{OCMW} is not a member of case {EXAMPLE_CASE_REF}"
    assert reasons["screening-after-the-meeting"] == (
        "screening_vraag is not allowed on state besproken"
    )
    assert (
        reasons["unknown-case"] == "screening_vraag is not allowed on a case the hub does not know"
    )


def test_directory_entry_must_list_the_purpose() -> None:
    limited = dict(CELL)
    limited[EXT] = Participant(EXT, Role.AANMELDER_EXTERN, frozenset({"aanmelding"}))
    message = facts("terugkoppeling_aanmelder", COORD, [EXT])
    decision = decide(message, case_in(S.IN_SCREENING, referrer=EXT), limited)
    assert decision.code == RecipientNotAllowed.code
    assert "does not list" in decision.reason

    limited[COORD] = Participant(COORD, Role.COORDINATOR, ALL - {"terugkoppeling_aanmelder"})
    decision = decide(message, case_in(S.IN_SCREENING, referrer=EXT), limited)
    assert decision.code == PurposeNotAllowed.code
    assert "does not list" in decision.reason


@pytest.mark.parametrize("purpose", sorted(ALL))
@pytest.mark.parametrize("outsider", [HUB, AUDIT])
def test_hub_operator_and_supervisor_never_send_or_receive(purpose: str, outsider: str) -> None:
    for state in S:
        case = case_in(state, members=frozenset({IO, CAW, CLB, MAYOR, outsider}))
        sent = decide(facts(purpose, outsider, [COORD]), case)
        assert sent.code == PurposeNotAllowed.code
        for sender in (COORD, CAW, DPO):
            received = decide(facts(purpose, sender, [outsider]), case)
            assert received.code in {
                PurposeNotAllowed.code,
                CaseStateForbids.code,
                RecipientNotAllowed.code,
            }
            assert not received.allowed


def test_receiving_is_denied_by_role_when_everything_else_holds() -> None:
    for scenario in ALLOWED:
        message = scenario.message
        for outsider in (HUB, AUDIT):
            # Make the outsider a member, present, and (for status messages) the referrer.
            case = scenario.case and replace(
                scenario.case,
                members=scenario.case.members | {outsider},
                present_at=MappingProxyType({EXAMPLE_MEETING_REF: PRESENT | {outsider}}),
            )
            if case is not None and message.purpose == "terugkoppeling_aanmelder":
                case = replace(case, referrer=outsider)
            changed = replace(message, recipients=(outsider,))
            decision = decide(changed, case)
            assert decision.code == RecipientNotAllowed.code, (scenario.name, decision.reason)
            assert "may not receive" in decision.reason


@pytest.mark.parametrize("purpose", sorted(ALL - {"rechtenverzoek"}))
def test_a_dpo_only_handles_rights_requests(purpose: str) -> None:
    for state in S:
        decision = decide(facts(purpose, DPO, [COORD]), case_in(state))
        assert not decision.allowed


def test_nothing_is_allowed_on_a_wiped_case() -> None:
    for scenario in ALLOWED:
        if scenario.case is None:
            continue
        decision = decide(scenario.message, replace(scenario.case, state=S.GEWIST))
        assert decision.code == CaseStateForbids.code


def test_checks_run_in_the_documented_order() -> None:
    # Wrong state (step 4) and a recipient not on the case (step 6): the state decides.
    message = facts("screening_vraag", COORD, [OCMW])
    assert decide(message, case_in(S.BESPROKEN)).code == CaseStateForbids.code
    # Wrong sender role (step 3) and wrong state (step 4): the role decides.
    message = facts("screening_vraag", CLB, [OCMW])
    assert decide(message, case_in(S.BESPROKEN)).code == PurposeNotAllowed.code
    # Recipients (step 6) before co-signatures (step 7).
    message = facts("terugkoppelingsfiche", COORD, [CAW], meeting_ref=EXAMPLE_MEETING_REF)
    assert decide(message, case_in(S.BESPROKEN)).code == RecipientNotAllowed.code
    # Recipients are checked in header order: the first failing one is named.
    message = facts("screening_vraag", COORD, ["aaa-onbekend", OCMW])
    assert decide(message, case_in(S.IN_SCREENING)).reason == "aaa-onbekend is not enrolled"


def test_effective_roles() -> None:
    case = case_in(S.TRAJECT_LOPEND)
    assert effective_roles(CELL[CAW], case) == {Role.DEELNEMER, Role.CASUSVERANTWOORDELIJKE}
    assert effective_roles(CELL[CAW], None) == {Role.DEELNEMER}
    assert effective_roles(CELL[CLB], case) == {Role.DEELNEMER}
    # Only a deelnemer can be appointed case owner.
    assert effective_roles(CELL[IO], replace(case, owner=IO)) == {Role.IO_POLITIE}


def test_a_new_owner_takes_over_reporting() -> None:
    message = facts("opvolgingsrapport", CLB, [COORD])
    assert decide(message, case_in(S.TRAJECT_LOPEND, owner=CLB)).allowed
    assert not decide(message, case_in(S.TRAJECT_LOPEND)).allowed


def test_inconsistent_inputs_are_a_callers_bug() -> None:
    message = facts("screening_antwoord", IO, [COORD])
    with pytest.raises(ValueError, match="sender"):
        evaluate_header(message, CELL[CLB], CELL, case_in(S.IN_SCREENING))
    with pytest.raises(ValueError, match="case"):
        evaluate_header(message, CELL[IO], CELL, case_in(S.IN_SCREENING, case_ref="case-other"))


# The gateway's view: the body too.


def body_of(purpose: str, **changes: object) -> bytes:
    value = json.loads(encode_body(example_body(purpose)))
    value.update(changes)
    return json.dumps(value).encode()


def gateway(message: MessageFacts, case: CaseView | None, body: bytes) -> Decision:
    return evaluate_message(message, CELL[message.sender_id], CELL, case, body)


FICHE = facts(
    "terugkoppelingsfiche", COORD, [IO], meeting_ref=EXAMPLE_MEETING_REF, cosigners=PRESENT
)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("unknown-field", body_of("terugkoppelingsfiche", remark="vrije tekst")),
        ("not-json", b"\x00"),
        ("another-purpose", encode_body(example_body("verslag_besluit"))),
        ("other-case", body_of("terugkoppelingsfiche", case_ref="case-other")),
        ("other-meeting", body_of("terugkoppelingsfiche", meeting_ref="meeting-other")),
    ],
)
def test_body_schema_violation(name: str, body: bytes) -> None:
    decision = gateway(FICHE, case_in(S.BESPROKEN), body)
    assert decision.code == BodySchemaViolation.code, name
    with pytest.raises(BodySchemaViolation):
        decision.raise_for_denial()


def test_body_is_checked_only_after_the_header() -> None:
    bad_state = case_in(S.GEAGENDEERD)
    assert gateway(FICHE, bad_state, b"\x00").code == CaseStateForbids.code


def test_body_violation_reason_names_the_path() -> None:
    body = body_of("aanmelding", description="x" * 1001)
    decision = gateway(facts("aanmelding", CLB, [COORD]), None, body)
    assert decision.code == BodySchemaViolation.code
    assert "$.description" in decision.reason


def test_every_denial_code_is_produced() -> None:
    codes = {decide(s.message, s.case).code for s in DENIED}
    codes.add(gateway(FICHE, case_in(S.BESPROKEN), b"{}").code)
    assert codes == {
        PurposeNotAllowed.code,
        RecipientNotAllowed.code,
        CaseStateForbids.code,
        CosignatureInvalid.code,
        BodySchemaViolation.code,
    }


# Decision as a value.


def test_decision_invariants() -> None:
    with pytest.raises(ValueError, match="exactly when"):
        Decision(allowed=True, code="purpose_not_allowed", reason="", purpose="x", sender_id="y")
    with pytest.raises(ValueError, match="exactly when"):
        Decision(allowed=False, code=None, reason="", purpose="x", sender_id="y")
    with pytest.raises(ValueError, match="unknown error code"):
        Decision(allowed=False, code="nope", reason="", purpose="x", sender_id="y")


@pytest.mark.parametrize(
    "error",
    [
        PurposeNotAllowed,
        RecipientNotAllowed,
        CaseStateForbids,
        BodySchemaViolation,
        CosignatureInvalid,
    ],
)
def test_raise_for_denial_maps_codes_to_classes(error: type[LivcrError]) -> None:
    decision = Decision.deny(error, "why", purpose="afsluiting", sender_id=COORD)
    with pytest.raises(error, match="why"):
        decision.raise_for_denial()


# Before sealing: the sender's gateway, with its directory and without the case.


def before_sealing(message: MessageFacts, cell: Mapping[str, Participant] = CELL) -> Decision:
    return evaluate_before_sealing(message, cell[message.sender_id], cell)


@pytest.mark.parametrize("scenario", ALLOWED, ids=lambda s: s.name)
def test_before_sealing_allows_what_the_hub_allows(scenario: Scenario) -> None:
    """No false refusal: the gateway cannot see the case, so a deelnemer may be its owner."""
    decision = before_sealing(scenario.message)
    assert decision == Decision.allow(
        purpose=scenario.message.purpose, sender_id=scenario.message.sender_id
    )


@pytest.mark.parametrize("scenario", DENIED, ids=lambda s: s.name)
def test_before_sealing_denies_only_what_the_hub_denies(scenario: Scenario) -> None:
    """What the directory alone settles is denied with the hub's code; the case's state, the
    ties and the co-signatures are left to the hub."""
    hub = decide(scenario.message, scenario.case)
    decision = before_sealing(scenario.message)
    if not decision.allowed:
        if decision.code != hub.code:  # the hub stopped at step 4 or 5, before the recipients
            assert decision.code == RecipientNotAllowed.code, (decision.reason, hub.reason)
            assert hub.code in {CaseStateForbids.code, PurposeNotAllowed.code}
        return
    assert hub.code in {
        CaseStateForbids.code,
        CosignatureInvalid.code,
        PurposeNotAllowed.code,  # a sender tie, or only the case's owner may send it
        RecipientNotAllowed.code,  # a recipient tie
    }


@pytest.mark.parametrize("purpose", sorted(ALL))
def test_before_sealing_tells_what_a_role_may_send_from_what_it_may_only_receive(
    purpose: str,
) -> None:
    """Every entry lists every purpose here (as enrolment grants both directions); the roles
    decide. A deelnemer counts as a possible case owner."""
    rule = CATALOGUE[purpose]
    recipient = next(pid for pid, p in CELL.items() if p.role in rule.recipient_roles)
    for sender_id, sender in CELL.items():
        if sender_id == recipient:
            continue
        decision = before_sealing(facts(purpose, sender_id, [recipient]))
        may_send = bool(possible_roles(sender) & rule.sender_roles)
        assert (decision.code != PurposeNotAllowed.code) == may_send, (sender_id, decision)
        if not may_send:
            roles = ", ".join(sorted(possible_roles(sender)))
            assert decision.reason.startswith(f"{sender_id} ({roles}) may not send {purpose};")


def test_before_sealing_refuses_recipients_by_role_and_unknown_ones() -> None:
    listed = before_sealing(facts("screening_antwoord", CAW, [IO]))  # IO's entry lists it
    assert (listed.code, listed.reason) == (
        RecipientNotAllowed.code,
        f"{IO} (io_politie) may not receive screening_antwoord; recipients: coordinator",
    )
    assert before_sealing(facts("aanmelding", CLB, [CLB])).code == RecipientNotAllowed.code
    assert before_sealing(facts("aanmelding", CLB, ["nobody"])).reason == "nobody is not enrolled"


def test_possible_roles() -> None:
    assert possible_roles(CELL[CLB]) == {Role.DEELNEMER, Role.CASUSVERANTWOORDELIJKE}
    assert possible_roles(CELL[COORD]) == {Role.COORDINATOR}
