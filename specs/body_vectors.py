"""Body vectors for specs/generate_vectors.py: a valid and an invalid body per purpose, and the
text and JSON rules of spec §4.4 (duplicate keys, depth, format characters, NFC)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from livcr_exchange.body_json import MAX_BODY_DEPTH
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE, encode_body

DESCRIPTION = (
    "Bodies decoded against their purpose's schema: a valid and an invalid one per purpose, "
    "and the JSON and text rules (spec §4.4, §7.2, specs/schemas/)."
)
SCHEMA_VIOLATION = "body_schema_violation"

# Per purpose: how its invalid example breaks the schema, and the change that does it.
_INVALID: dict[str, tuple[str, dict[str, Any]]] = {
    "aanmelding": ("special_category_without_reason", {"special_category": True}),
    "screening_vraag": ("answer_by_not_a_date", {"answer_by": "2030-02-30"}),
    "screening_antwoord": ("unknown_answer", {"answer": "misschien"}),
    "uitnodiging_overleg": ("start_time_out_of_range", {"start_time": "24:00"}),
    "casusinfo_overleg": ("no_notes", {"notes": []}),
    "verslag_besluit": ("too_many_decisions", {"decisions": ["besluit"] * 51}),
    "actieplan": ("case_owner_not_an_ident", {"case_owner": "CAW Voorbeeldstad"}),
    "opvolgingsrapport": ("note_too_long", {"note": "x" * 1001}),
    "terugkoppelingsfiche": ("free_text_field", {"remarks": "geen"}),
    "terugkoppeling_aanmelder": ("unknown_status", {"status": "gesloten"}),
    "afsluiting": ("deadline_without_deletion", {"deletion_requested": False}),
    "wissingsbevestiging": ("negative_time", {"deleted_at": -1}),
    "rechtenverzoek": ("deadline_before_receipt", {"deadline": "2000-01-01"}),
}


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _example(purpose: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(encode_body(example_body(purpose)))
    return value


def _vector(name: str, expect: str, purpose: str, body: str, comment: str = "") -> dict[str, Any]:
    return {
        "kind": "body",
        "name": name,
        "expect": expect,
        "comment": comment,
        "purpose": purpose,
        "body": body,
    }


def _with_family_name(name: str) -> str:
    value = _example("aanmelding")
    value["person"]["family_name"] = name
    return _text(value)


def body_vectors() -> Iterator[dict[str, Any]]:
    for purpose in CATALOGUE:
        yield _vector(
            f"body_ok_{purpose}", "ok", purpose, encode_body(example_body(purpose)).decode()
        )
    for purpose, (defect, change) in _INVALID.items():
        yield _vector(
            f"body_{purpose}_{defect}", SCHEMA_VIOLATION, purpose, _text(_example(purpose) | change)
        )

    answer = '{"answer":"known","legal_ground":["decreet_2021"],"purpose":"screening_antwoord"}'
    yield _vector(
        "body_duplicate_key",
        SCHEMA_VIOLATION,
        "screening_antwoord",
        answer[:-1] + ',"answer":"no_answer"}',
        "one key twice in an object: parsers disagree on which value wins",
    )
    yield _vector(
        "body_duplicate_key_escaped",
        SCHEMA_VIOLATION,
        "screening_antwoord",
        answer[:-1] + ',"\\u0061nswer":"no_answer"}',
        "keys are compared after unescaping: \\u0061nswer is answer",
    )
    yield _vector(
        "body_duplicate_set_item",
        SCHEMA_VIOLATION,
        "screening_antwoord",
        answer.replace('["decreet_2021"]', '["decreet_2021","decreet_2021"]'),
        "legal_ground is a set: the schema says uniqueItems",
    )
    nested = "[" * 1000 + "]" * 1000
    yield _vector(
        "body_nested_too_deep",
        SCHEMA_VIOLATION,
        "aanmelding",
        '{"legal_ground":' + nested + ',"purpose":"aanmelding"}',
        f"1000 levels, over MAX_BODY_DEPTH = {MAX_BODY_DEPTH}, before the purpose tag",
    )
    yield _vector(
        "body_format_character_in_name",
        SCHEMA_VIOLATION,
        "aanmelding",
        _with_family_name("Jan\u202eneb"),
        "U+202E RIGHT-TO-LEFT OVERRIDE (category Cf): displays as Janben",
    )
    yield _vector(
        "body_zero_width_space_in_name",
        SCHEMA_VIOLATION,
        "aanmelding",
        _with_family_name("Voor\u200bbeeld"),
        "U+200B ZERO WIDTH SPACE (category Cf)",
    )
    yield _vector(
        "body_line_separator_in_name",
        SCHEMA_VIOLATION,
        "aanmelding",
        _with_family_name("Voor\u2028beeld"),
        "U+2028 LINE SEPARATOR (category Zl) in a single-line text",
    )
    yield _vector(
        "body_c1_control_in_name",
        SCHEMA_VIOLATION,
        "aanmelding",
        _with_family_name("Voor\x85beeld"),
        "U+0085 NEXT LINE (category Cc)",
    )
    yield _vector(
        "body_name_not_nfc",
        SCHEMA_VIOLATION,
        "aanmelding",
        _with_family_name("Jose\u0301"),
        "e + U+0301 COMBINING ACUTE ACCENT: NFC is U+00E9",
    )
    yield _vector(
        "body_ok_name_nfc",
        "ok",
        "aanmelding",
        _with_family_name("Jos\u00e9 \u00c7elik-Ni\u0161"),
        "non-ASCII letters in NFC are fine",
    )
    yield _vector(
        "body_lone_surrogate_escape",
        SCHEMA_VIOLATION,
        "aanmelding",
        _with_family_name("Voor").replace('"Voor"', '"Voor\\ud800"'),
        "a \\ud800 escape with no low surrogate is not a Unicode text",
    )
    notes = _example("casusinfo_overleg")
    notes["notes"][0]["text"] = "regel een\r\nregel twee\tmet tab"
    yield _vector(
        "body_ok_multi_line_text", "ok", "casusinfo_overleg", _text(notes), "tab, CR and LF"
    )
    yield _vector(
        "body_tagged_with_another_purpose",
        SCHEMA_VIOLATION,
        "aanmelding",
        encode_body(example_body("screening_antwoord")).decode(),
    )
