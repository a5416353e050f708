"""Body JSON is read one way only: duplicate keys, deep nesting and ambiguous texts are refused."""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata
from typing import Any

import pytest

from livcr_exchange.body_json import MAX_BODY_DEPTH, check_structure
from livcr_exchange.body_text import (
    FORMAT_CHARACTER_RANGES,
    MULTI_LINE_PATTERN,
    SINGLE_LINE_PATTERN,
)
from livcr_exchange.errors import BodySchemaViolation
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import decode_body, encode_body

ANSWER = b'{"purpose":"screening_antwoord","legal_ground":["decreet_2021"],"answer":"known"}'


def example_dict(tag: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode_body(example_body(tag)))
    return result


def decode_dict(tag: str, value: dict[str, Any]) -> object:
    return decode_body(tag, json.dumps(value, ensure_ascii=False).encode())


def with_family_name(name: str) -> dict[str, Any]:
    value = example_dict("aanmelding")
    value["person"]["family_name"] = name
    return value


def test_the_example_answer_decodes() -> None:
    assert decode_body("screening_antwoord", ANSWER)


@pytest.mark.parametrize(
    "data",
    [
        ANSWER[:-1] + b',"answer":"no_answer"}',
        ANSWER[:-1] + b',"\\u0061nswer":"no_answer"}',  # the same key, spelt with an escape
        ANSWER[:-1] + b' , "purpose" : "screening_antwoord"}',
    ],
    ids=["plain", "escaped", "tag"],
)
def test_duplicate_keys_are_refused(data: bytes) -> None:
    """msgspec alone keeps the last value: another parser could keep the first."""
    with pytest.raises(BodySchemaViolation, match="repeats the key"):
        decode_body("screening_antwoord", data)


def test_duplicate_key_in_a_nested_object_is_refused() -> None:
    text = encode_body(example_body("aanmelding")).decode()
    doubled = text.replace('"given_name":', '"family_name":"X","given_name":', 1)
    with pytest.raises(BodySchemaViolation, match="family_name"):
        decode_body("aanmelding", doubled.encode())


def test_equal_keys_in_different_objects_are_fine() -> None:
    check_structure(b'{"a":{"a":1},"b":[{"a":1},{"a":2}],"c":"\\"a\\":"}')


@pytest.mark.parametrize("depth", [MAX_BODY_DEPTH + 1, 1000, 200_000])
@pytest.mark.parametrize(
    "shape",
    [
        "{{}}",  # objects as a value of an unknown key, before the tag
        "[[]]",
        "tag-then-array",
    ],
)
def test_deep_nesting_is_a_schema_violation_not_a_recursion_error(depth: int, shape: str) -> None:
    if shape == "{{}}":
        data = b'{"x":' * depth + b"1" + b"}" * depth
    elif shape == "[[]]":
        data = b'{"legal_ground":' + b"[" * depth + b"]" * depth + b',"purpose":"aanmelding"}'
    else:
        data = b'{"purpose":"aanmelding","x":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(BodySchemaViolation, match="nested deeper"):
        decode_body("aanmelding", data)


def test_depth_limit_is_exact() -> None:
    check_structure(b"[" * MAX_BODY_DEPTH + b"]" * MAX_BODY_DEPTH)
    with pytest.raises(BodySchemaViolation):
        check_structure(b"[" * (MAX_BODY_DEPTH + 1) + b"]" * (MAX_BODY_DEPTH + 1))
    # Brackets inside strings do not count.
    check_structure(b'["' + b"[" * 100 + b'"]')


def test_invalid_json_is_left_to_the_decoder() -> None:
    for data in (b"", b"]]]", b'{"a', b'{"\\x":1}', b"\xff"):
        with contextlib.suppress(BodySchemaViolation):
            check_structure(data)
        with pytest.raises(BodySchemaViolation):
            decode_body("aanmelding", data)


@pytest.mark.parametrize(
    "char",
    ["\u202e", "\u200b", "\u2066", "\ufeff", "\u00ad", "\U000e0041", "\u2028", "\x85", "\x7f"],
    ids=["rlo", "zwsp", "lri", "bom", "soft-hyphen", "tag-a", "line-sep", "nel", "del"],
)
def test_single_line_texts_refuse_format_and_control_characters(char: str) -> None:
    refused = "regex|format character"  # a pattern, or the check beyond the BMP
    with pytest.raises(BodySchemaViolation, match=refused):
        decode_dict("aanmelding", with_family_name(f"Voor{char}beeld"))
    value = example_dict("aanmelding")
    value["referrer_contact"]["email"] = f"an{char}@clb.example"
    with pytest.raises(BodySchemaViolation, match=refused):
        decode_dict("aanmelding", value)


def test_multi_line_texts_refuse_c1_controls_and_keep_layout() -> None:
    value = example_dict("casusinfo_overleg")
    value["notes"][0]["text"] = "regel een\r\nregel twee\ttab, emoji \U0001f469\u200d\U0001f4bb"
    assert decode_dict("casusinfo_overleg", value)
    value["notes"][0]["text"] = "regel\x85twee"
    with pytest.raises(BodySchemaViolation, match="regex"):
        decode_dict("casusinfo_overleg", value)


def test_texts_must_be_nfc() -> None:
    decomposed = "Jose\u0301"  # e + COMBINING ACUTE ACCENT, displays as "José"
    assert decode_dict("aanmelding", with_family_name(unicodedata.normalize("NFC", decomposed)))
    with pytest.raises(BodySchemaViolation, match="NFC"):
        decode_dict("aanmelding", with_family_name(decomposed))
    value = example_dict("verslag_besluit")
    value["decisions"] = ["goed", "Ve\u0301rder"]
    with pytest.raises(BodySchemaViolation, match="NFC"):
        decode_dict("verslag_besluit", value)


def test_lone_surrogates_are_refused() -> None:
    data = encode_body(example_body("aanmelding")).replace(b'"Voorbeeld"', b'"Voor\\ud800"', 1)
    with pytest.raises(BodySchemaViolation):
        decode_body("aanmelding", data)


def test_format_characters_are_unicode_category_cf() -> None:
    """The spec's list is Unicode 14.0's Cf, the version Python 3.11 ships."""
    listed = {c for first, last in FORMAT_CHARACTER_RANGES for c in range(first, last + 1)}
    if unicodedata.unidata_version == "14.0.0":
        cf = {c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}
        assert listed == cf
    for code in listed:
        with pytest.raises(BodySchemaViolation):
            decode_dict("aanmelding", with_family_name(f"a{chr(code)}b"))
        if code <= 0xFFFF:  # the patterns stay ASCII: the BMP ones are in them
            assert re.search(SINGLE_LINE_PATTERN, f"a{chr(code)}b") is None, hex(code)
    assert re.search(MULTI_LINE_PATTERN, "a\u202eb") is not None
    assert SINGLE_LINE_PATTERN.isascii()
    assert MULTI_LINE_PATTERN.isascii()


def test_a_set_holds_no_item_twice() -> None:
    """The schema's uniqueItems: msgspec alone would fold the repeat into the set."""
    data = ANSWER.replace(b'["decreet_2021"]', b'["decreet_2021","decreet\\u005f2021"]')
    with pytest.raises(BodySchemaViolation, match="legal_ground repeats"):
        decode_body("screening_antwoord", data)
