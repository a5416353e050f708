"""The canonical binary encoding (spec §4.1) and the base64url text form (spec §4.2)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from factories import expect_error

from livcr_exchange.errors import Malformed, NonCanonical
from livcr_exchange.wire import Reader, Writer, b64, check_ident, unb64


def every_field() -> bytes:
    return (
        Writer()
        .u8(0xAB)
        .u16(0x0102)
        .u32(0x03040506)
        .u64(2**64 - 1)
        .fixed(b"\x00" * 16, 16)
        .ident("io-politie")
        .text("Zoë, één", 32)
        .opaque16(b"\x00\xff" * 5)
        .idents(["clb", "caw", "coord", "caw"], 8)
        .raw(b"tail")
        .getvalue()
    )


def test_writer_reader_round_trip() -> None:
    reader = Reader(every_field(), "test")
    assert reader.u8() == 0xAB
    assert reader.u16() == 0x0102
    assert reader.u32() == 0x03040506
    assert reader.u64() == 2**64 - 1
    assert reader.fixed(16) == b"\x00" * 16
    assert reader.ident() == "io-politie"
    assert reader.text(32) == "Zoë, één"
    assert reader.opaque16() == b"\x00\xff" * 5
    assert reader.idents(8) == ("caw", "clb", "coord")
    assert reader.remaining() == 4
    assert reader.take(4) == b"tail"
    assert reader.remaining() == 0
    reader.finish()


def test_integers_are_big_endian_and_fields_length_prefixed() -> None:
    data = (
        Writer()
        .u16(0x0102)
        .u32(0x03040506)
        .u64(0x0708)
        .ident("ab")
        .text("é", 10)
        .opaque16(b"xyz")
        .idents(["b", "a"], 4)
        .getvalue()
    )
    assert data == (
        b"\x01\x02"
        b"\x03\x04\x05\x06"
        b"\x00\x00\x00\x00\x00\x00\x07\x08"
        b"\x02ab"
        b"\x00\x02\xc3\xa9"
        b"\x00\x03xyz"
        b"\x02\x01a\x01b"
    )


def test_idents_are_sorted_and_deduplicated() -> None:
    data = Writer().idents(["zz", "aa", "mm", "aa"], 3).getvalue()
    assert Reader(data).idents(3) == ("aa", "mm", "zz")
    assert Writer().idents([], 3).getvalue() == b"\x00"


def test_position_tracks_consumed_bytes() -> None:
    reader = Reader(b"\x00\x01\x02\x03\x04")
    assert reader.position == 0
    reader.u16()
    assert reader.position == 2
    reader.u8()
    assert reader.position == 3


TRUNCATIONS: dict[str, tuple[bytes, Callable[[Reader], object]]] = {
    "u8": (b"", Reader.u8),
    "u16": (b"\x01", Reader.u16),
    "u32": (b"\x01\x02\x03", Reader.u32),
    "u64": (b"\x01" * 7, Reader.u64),
    "fixed": (b"\x01" * 15, lambda r: r.fixed(16)),
    "ident_length": (b"", Reader.ident),
    "ident_body": (b"\x05abc", Reader.ident),
    "text_length": (b"\x00", lambda r: r.text(10)),
    "text_body": (b"\x00\x05abc", lambda r: r.text(10)),
    "opaque16": (b"\x00\x04abc", Reader.opaque16),
    "idents_count": (b"", lambda r: r.idents(4)),
    "idents_item": (b"\x02\x01a", lambda r: r.idents(4)),
    "take": (b"ab", lambda r: r.take(3)),
}


@pytest.mark.parametrize("case", TRUNCATIONS, ids=list(TRUNCATIONS))
def test_every_truncation_is_malformed(case: str) -> None:
    data, read = TRUNCATIONS[case]
    with expect_error(Malformed):
        read(Reader(data, "truncated"))


def test_truncated_error_says_where() -> None:
    with expect_error(Malformed) as caught:
        Reader(b"\x00\x01", "thing").u32()
    assert "thing" in str(caught.value)
    assert "truncated" in str(caught.value)


def test_negative_take_is_malformed() -> None:
    with expect_error(Malformed):
        Reader(b"abc").take(-1)


def test_trailing_bytes_are_malformed() -> None:
    reader = Reader(b"\x01\x02")
    reader.u8()
    with expect_error(Malformed):
        reader.finish()


def test_finish_on_fully_read_data_passes() -> None:
    reader = Reader(b"\x01")
    reader.u8()
    reader.finish()
    Reader(b"").finish()


BAD_IDENTS = {
    "empty": b"",
    "uppercase": b"Coord",
    "leading_dash": b"-coord",
    "leading_dot": b".coord",
    "leading_underscore": b"_coord",
    "space": b"co ord",
    "slash": b"co/ord",
    "nul": b"coord\x00",
    "newline": b"coord\n",
    "non_ascii": "café".encode(),
    "too_long": b"a" * 65,
}


@pytest.mark.parametrize("raw", BAD_IDENTS.values(), ids=list(BAD_IDENTS))
def test_reader_rejects_bad_ident(raw: bytes) -> None:
    with expect_error(Malformed):
        Reader(bytes((len(raw),)) + raw).ident()


@pytest.mark.parametrize(
    "value", ["", "Coord", "-coord", "co ord", "café", "a" * 65, "coord\n"], ids=repr
)
def test_writer_and_check_ident_reject_bad_ident(value: str) -> None:
    with expect_error(Malformed):
        check_ident(value)
    with expect_error(Malformed):
        Writer().ident(value)


@pytest.mark.parametrize("value", ["a", "0", "a" * 64, "case-7k2m9q", "v1.2_x-y", "9lives"])
def test_good_idents_round_trip(value: str) -> None:
    assert check_ident(value) == value
    reader = Reader(Writer().ident(value).getvalue())
    assert reader.ident() == value
    reader.finish()


@pytest.mark.parametrize(
    "items",
    [[b"b", b"a"], [b"a", b"a"], [b"a", b"c", b"b"], [b"ab", b"a"]],
    ids=["descending", "duplicate", "unsorted_tail", "prefix_after_longer"],
)
def test_non_ascending_idents_are_non_canonical(items: list[bytes]) -> None:
    data = bytes((len(items),)) + b"".join(bytes((len(i),)) + i for i in items)
    with expect_error(NonCanonical):
        Reader(data).idents(8)


def test_ident_count_over_maximum_is_malformed() -> None:
    data = Writer().idents(["a", "b", "c"], 3).getvalue()
    assert Reader(data).idents(3) == ("a", "b", "c")
    with expect_error(Malformed):
        Reader(data).idents(2)


def test_bad_ident_inside_a_list_is_malformed() -> None:
    with expect_error(Malformed):
        Reader(b"\x02\x01a\x01B").idents(4)


def test_text_at_limit_passes_and_over_limit_is_malformed() -> None:
    data = Writer().text("x" * 10, 10).getvalue()
    assert Reader(data).text(10) == "x" * 10
    with expect_error(Malformed):
        Reader(data).text(9)


def test_text_length_counts_utf8_bytes() -> None:
    with pytest.raises(ValueError, match="longer"):
        Writer().text("é" * 6, 11)
    with expect_error(Malformed):
        Reader(Writer().text("é" * 6, 12).getvalue()).text(11)


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"],
    ids=["ff", "lone_lead", "bad_continuation", "surrogate", "five_byte", "overlong_slash"],
)
def test_text_that_is_not_utf8_is_malformed(raw: bytes) -> None:
    with expect_error(Malformed):
        Reader(len(raw).to_bytes(2, "big") + raw).text(100)


def test_writer_refuses_wrong_sizes_and_counts() -> None:
    with pytest.raises(ValueError, match="expected 16 bytes"):
        Writer().fixed(b"\x00" * 15, 16)
    with pytest.raises(ValueError, match="more than 2"):
        Writer().idents(["a", "b", "c"], 2)
    assert Writer().idents(["a", "a", "b"], 2).getvalue() == b"\x02\x01a\x01b"


# Base64url text form (spec §4.2).
@pytest.mark.parametrize("size", range(12))
def test_b64_round_trip_without_padding(size: int) -> None:
    data = bytes(range(250, 250 - size, -1))
    text = b64(data)
    assert "=" not in text
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert unb64(text) == data


def test_b64_uses_the_url_safe_alphabet() -> None:
    assert b64(b"\xfb\xff") == "-_8"
    assert unb64("-_8") == b"\xfb\xff"
    assert unb64("") == b""


@pytest.mark.parametrize(
    "text",
    ["AA==", "AAA=", "AA=", "AAAA===="],
    ids=["two_pad", "one_pad", "short_pad", "full_pad"],
)
def test_padding_is_rejected(text: str) -> None:
    with pytest.raises((Malformed, NonCanonical)):
        unb64(text)


@pytest.mark.parametrize(
    "text",
    ["+_8", "-/8", "AA AA", "AAAA\n", " AAAA", "AA.A", "AAé", "AA\x00A"],
    ids=["plus", "slash", "space", "newline", "leading_space", "dot", "non_ascii", "nul"],
)
def test_characters_outside_the_alphabet_are_rejected(text: str) -> None:
    with pytest.raises((Malformed, NonCanonical)):
        unb64(text)


@pytest.mark.parametrize("text", ["A", "AAAAA", "-"], ids=["one", "five", "dash"])
def test_impossible_lengths_are_malformed(text: str) -> None:
    with expect_error(Malformed):
        unb64(text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("AB", "AA"), ("AP", "AA"), ("AAB", "AAA"), ("AAD", "AAA"), ("-_9", "-_8")],
)
def test_non_zero_unused_bits_are_non_canonical(text: str, canonical: str) -> None:
    assert b64(unb64(canonical)) == canonical  # the canonical spelling decodes
    with expect_error(NonCanonical) as caught:
        unb64(text, "test key")
    assert "test key" in str(caught.value)
