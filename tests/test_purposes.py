"""The purpose catalogue and the strict body schemas."""

from __future__ import annotations

import inspect
import json
from typing import Any

import msgspec
import pytest

from livcr_exchange.bodies import (
    BODY_TYPES,
    MAX_DESCRIPTION,
    MAX_NAME_LENGTH,
    MAX_NOTE,
    MAX_SHORT_TEXT,
    AfsluitingBody,
    RechtenverzoekBody,
    RightsDecision,
    ScreeningAnswer,
    TerugkoppelingsficheBody,
    fiche_nonce,
)
from livcr_exchange.cases import CaseState
from livcr_exchange.errors import BodySchemaViolation, PurposeNotAllowed
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import (
    CATALOGUE,
    decode_body,
    encode_body,
    get_purpose,
    purpose_of,
)
from livcr_exchange.roles import Role

TAGS = [
    "aanmelding",
    "screening_vraag",
    "screening_antwoord",
    "uitnodiging_overleg",
    "casusinfo_overleg",
    "verslag_besluit",
    "actieplan",
    "opvolgingsrapport",
    "terugkoppelingsfiche",
    "terugkoppeling_aanmelder",
    "afsluiting",
    "wissingsbevestiging",
    "rechtenverzoek",
]
NARRATIVE = [t for t in TAGS if "special_category" in CATALOGUE[t].body_type.__struct_fields__]


def example_dict(tag: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode_body(example_body(tag)))
    return result


def decode_dict(tag: str, value: dict[str, Any]) -> msgspec.Struct:
    return decode_body(tag, json.dumps(value).encode())


# The catalogue.


def test_catalogue_has_every_purpose_of_the_design() -> None:
    assert list(CATALOGUE) == TAGS
    assert len(BODY_TYPES) == len(TAGS)


@pytest.mark.parametrize("tag", TAGS)
def test_body_types_are_strict_frozen_keyword_only_and_tagged(tag: str) -> None:
    purpose = CATALOGUE[tag]
    config = purpose.body_type.__struct_config__
    assert purpose.tag == tag == config.tag
    assert config.tag_field == "purpose"
    assert config.forbid_unknown_fields
    assert config.frozen
    params = inspect.signature(purpose.body_type).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert "legal_ground" in purpose.body_type.__struct_fields__


def test_nobody_sends_to_or_as_hub_operator_or_toezicht() -> None:
    for purpose in CATALOGUE.values():
        for role in (Role.HUB_OPERATOR, Role.TOEZICHT):
            assert role not in purpose.sender_roles | purpose.recipient_roles


def test_only_aanmelding_may_precede_the_case_and_nothing_follows_gewist() -> None:
    for purpose in CATALOGUE.values():
        assert (None in purpose.case_states) == (purpose.tag == "aanmelding")
        assert CaseState.GEWIST not in purpose.case_states
        assert purpose.case_states


def test_only_the_fiche_needs_cosignatures_and_goes_only_to_the_police() -> None:
    assert [p.tag for p in CATALOGUE.values() if p.needs_cosignatures] == ["terugkoppelingsfiche"]
    fiche = CATALOGUE["terugkoppelingsfiche"]
    assert fiche.sender_roles == {Role.COORDINATOR}
    assert fiche.recipient_roles == {Role.IO_POLITIE}


def test_the_fiche_carries_only_pre_agreed_fields() -> None:
    assert set(TerugkoppelingsficheBody.__struct_fields__) == {
        "legal_ground",
        "case_ref",
        "meeting_ref",
        "discussed",
        "follow_up",
        "next_review",
        "contact_service",
        "nonce",
    }


def test_get_purpose() -> None:
    assert get_purpose("afsluiting") is CATALOGUE["afsluiting"]
    with pytest.raises(PurposeNotAllowed):
        get_purpose("roddel")


# Valid bodies.


@pytest.mark.parametrize("tag", TAGS)
def test_every_purpose_has_a_valid_example_that_round_trips(tag: str) -> None:
    body = example_body(tag)
    data = encode_body(body)
    assert decode_body(tag, data) == body
    assert purpose_of(body) == tag
    assert encode_body(decode_body(tag, data)) == data  # one canonical encoding


def test_encoding_sorts_legal_grounds() -> None:
    assert example_dict("screening_antwoord")["legal_ground"] == [
        "art_458ter_sw",
        "decreet_2021",
        "wet_30_juli_2018",
    ]


def test_example_for_unknown_purpose() -> None:
    with pytest.raises(PurposeNotAllowed):
        example_body("roddel")


@pytest.mark.parametrize("answer", list(ScreeningAnswer))
def test_every_screening_answer_is_valid(answer: ScreeningAnswer) -> None:
    value = example_dict("screening_antwoord") | {"answer": answer.value}
    assert decode_dict("screening_antwoord", value)


# Invalid bodies.


@pytest.mark.parametrize("tag", TAGS)
def test_unknown_field_rejected(tag: str) -> None:
    value = example_dict(tag) | {"extra": 1}
    with pytest.raises(BodySchemaViolation, match="extra"):
        decode_dict(tag, value)


@pytest.mark.parametrize("tag", TAGS)
def test_body_of_another_purpose_rejected(tag: str) -> None:
    other = "aanmelding" if tag != "aanmelding" else "afsluiting"
    with pytest.raises(BodySchemaViolation):
        decode_body(other, encode_body(example_body(tag)))


@pytest.mark.parametrize("tag", TAGS)
def test_missing_purpose_tag_rejected(tag: str) -> None:
    value = example_dict(tag)
    del value["purpose"]
    with pytest.raises(BodySchemaViolation, match="purpose"):
        decode_dict(tag, value)


@pytest.mark.parametrize("tag", TAGS)
def test_legal_ground_required(tag: str) -> None:
    for bad in ([], ["wet_1830"], None):
        with pytest.raises(BodySchemaViolation, match="legal_ground"):
            decode_dict(tag, example_dict(tag) | {"legal_ground": bad})


def test_unknown_purpose_and_garbage() -> None:
    with pytest.raises(PurposeNotAllowed):
        decode_body("roddel", b"{}")
    with pytest.raises(BodySchemaViolation):
        decode_body("aanmelding", b"\xff not json")
    with pytest.raises(BodySchemaViolation):
        decode_body("aanmelding", b"[]")


@pytest.mark.parametrize(
    ("tag", "path", "cap"),
    [
        ("aanmelding", ("description",), MAX_DESCRIPTION),
        ("aanmelding", ("person", "family_name"), MAX_NAME_LENGTH),
        ("aanmelding", ("referrer_contact", "organisation"), MAX_SHORT_TEXT),
        ("opvolgingsrapport", ("note",), MAX_DESCRIPTION),
        ("casusinfo_overleg", ("notes", 0, "text"), MAX_NOTE),
        ("verslag_besluit", ("decisions", 0), MAX_DESCRIPTION),
        ("actieplan", ("actions", 0, "what"), MAX_DESCRIPTION),
        ("terugkoppelingsfiche", ("contact_service",), MAX_SHORT_TEXT),
        ("wissingsbevestiging", ("scope",), MAX_SHORT_TEXT),
        ("uitnodiging_overleg", ("place",), MAX_SHORT_TEXT),
    ],
)
def test_text_caps(tag: str, path: tuple[str | int, ...], cap: int) -> None:
    def with_text(text: str) -> dict[str, Any]:
        value = example_dict(tag)
        target: Any = value
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = text
        return value

    assert decode_dict(tag, with_text("é" * cap))  # the cap counts characters, not bytes
    with pytest.raises(BodySchemaViolation, match=f"length <= {cap}"):
        decode_dict(tag, with_text("x" * (cap + 1)))
    with pytest.raises(BodySchemaViolation, match="length >= 1"):
        decode_dict(tag, with_text(""))


def test_list_caps() -> None:
    value = example_dict("verslag_besluit")
    with pytest.raises(BodySchemaViolation, match="length <= 50"):
        decode_dict("verslag_besluit", value | {"decisions": ["besluit"] * 51})
    with pytest.raises(BodySchemaViolation, match="length >= 1"):
        decode_dict("verslag_besluit", value | {"decisions": []})


def test_control_characters() -> None:
    value = example_dict("casusinfo_overleg")
    value["notes"][0]["text"] = "regel een\nregel twee\ttab"
    assert decode_dict("casusinfo_overleg", value)
    value["notes"][0]["text"] = "bel\x07"
    with pytest.raises(BodySchemaViolation, match="regex"):
        decode_dict("casusinfo_overleg", value)
    aanmelding = example_dict("aanmelding")
    aanmelding["person"]["family_name"] = "Voor\nbeeld"
    with pytest.raises(BodySchemaViolation, match="regex"):
        decode_dict("aanmelding", aanmelding)


@pytest.mark.parametrize("ref", ["Case-1", "case 1", "-case", "case-1\n", "c" * 65, ""])
def test_references_follow_the_ident_grammar(ref: str) -> None:
    with pytest.raises(BodySchemaViolation, match="case_ref"):
        decode_dict(
            "terugkoppelingsfiche", example_dict("terugkoppelingsfiche") | {"case_ref": ref}
        )


@pytest.mark.parametrize(
    ("date", "ok"),
    [
        ("2024-02-29", True),
        ("2025-12-31", True),
        ("2025-02-29", False),
        ("2100-02-29", False),
        ("2025-04-31", False),
        ("2025-13-01", False),
        ("2025-1-01", False),
        ("25-01-01", False),
        ("2025-01-01T00:00:00", False),
        ("2025-01-01\n", False),
    ],
)
def test_dates_are_calendar_dates(date: str, ok: bool) -> None:
    value = example_dict("afsluiting") | {"deletion_deadline": date}
    if ok:
        assert decode_dict("afsluiting", value)
    else:
        with pytest.raises(BodySchemaViolation):
            decode_dict("afsluiting", value)


def test_nested_dates_are_checked() -> None:
    value = example_dict("aanmelding")
    value["person"]["birth_date"] = "2008-02-30"
    with pytest.raises(BodySchemaViolation, match="birth_date"):
        decode_dict("aanmelding", value)


@pytest.mark.parametrize("tag", NARRATIVE)
def test_special_category_needs_flag_and_reason_together(tag: str) -> None:
    reason = "gezondheidsgegevens: begeleiding door CGG"
    base = example_dict(tag)
    flagged = decode_dict(tag, base | {"special_category": True, "special_category_reason": reason})
    assert msgspec.structs.asdict(flagged)["special_category"] is True
    for bad in (
        {"special_category": True},
        {"special_category": True, "special_category_reason": "   "},
        {"special_category_reason": reason},
        {"special_category": False, "special_category_reason": reason},
    ):
        with pytest.raises(BodySchemaViolation, match="special_category"):
            decode_dict(tag, base | bad)


def test_narrative_bodies() -> None:
    assert set(NARRATIVE) == {
        "aanmelding",
        "casusinfo_overleg",
        "verslag_besluit",
        "actieplan",
        "opvolgingsrapport",
    }


def test_the_fiche_cannot_carry_special_category_text() -> None:
    value = example_dict("terugkoppelingsfiche") | {"special_category": False}
    with pytest.raises(BodySchemaViolation, match="special_category"):
        decode_dict("terugkoppelingsfiche", value)


@pytest.mark.parametrize("nonce", ["5e" * 31, "5E" * 32, "5e" * 33, "zz" * 32])
def test_fiche_nonce_is_32_bytes_of_lowercase_hex(nonce: str) -> None:
    value = example_dict("terugkoppelingsfiche") | {"nonce": nonce}
    with pytest.raises(BodySchemaViolation, match="nonce"):
        decode_dict("terugkoppelingsfiche", value)


def test_fiche_nonce_helper() -> None:
    assert fiche_nonce(bytes(range(32))) == bytes(range(32)).hex()
    with pytest.raises(ValueError, match="32 random bytes"):
        fiche_nonce(b"short")


def test_afsluiting_deadline_exactly_when_deletion_requested() -> None:
    value = example_dict("afsluiting")
    assert decode_dict(
        "afsluiting", value | {"deletion_requested": False, "deletion_deadline": None}
    )
    for bad in (
        {"deletion_requested": True, "deletion_deadline": None},
        {"deletion_requested": False},
    ):
        with pytest.raises(BodySchemaViolation, match="deletion_deadline"):
            decode_dict("afsluiting", value | bad)


def test_rechtenverzoek() -> None:
    value = example_dict("rechtenverzoek")
    decided = decode_dict("rechtenverzoek", value | {"decision": "geweigerd", "note": "art. 11"})
    assert isinstance(decided, RechtenverzoekBody)
    assert decided.decision is RightsDecision.GEWEIGERD
    with pytest.raises(BodySchemaViolation, match="before"):
        decode_dict("rechtenverzoek", value | {"deadline": "2025-06-01"})
    with pytest.raises(BodySchemaViolation, match="request_type"):
        decode_dict("rechtenverzoek", value | {"request_type": "vergetelheid"})


def test_wissingsbevestiging_message_ids() -> None:
    value = example_dict("wissingsbevestiging")
    with pytest.raises(BodySchemaViolation, match="message_ids"):
        decode_dict("wissingsbevestiging", value | {"message_ids": ["0f" * 15]})
    with pytest.raises(BodySchemaViolation, match="deleted_at"):
        decode_dict("wissingsbevestiging", value | {"deleted_at": -1})


# Encoding.


def test_encode_checks_what_construction_does_not() -> None:
    body = AfsluitingBody(
        legal_ground=frozenset(),
        reason="andere",  # type: ignore[arg-type]
        deletion_requested=False,
    )
    with pytest.raises(BodySchemaViolation, match="legal_ground"):
        encode_body(body)


def test_construction_runs_the_cross_field_checks() -> None:
    with pytest.raises(ValueError, match="deletion_deadline"):
        AfsluitingBody(
            legal_ground=frozenset(),
            reason="andere",  # type: ignore[arg-type]
            deletion_requested=True,
        )


def test_purpose_of_rejects_other_structs() -> None:
    class Other(msgspec.Struct):
        x: int

    with pytest.raises(TypeError):
        purpose_of(Other(x=1))
    with pytest.raises(TypeError):
        encode_body(Other(x=1))
