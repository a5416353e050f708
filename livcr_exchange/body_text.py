"""The text and value forms body fields use: patterns, caps and the text rules of spec §4.4.

A single-line text (names, places, short reasons) holds no control character (category Cc), no
format character (Cf, e.g. U+202E RIGHT-TO-LEFT OVERRIDE, which makes a name display as another),
no line or paragraph separator (Zl, Zp) and no surrogate (Cs). A multi-line text may hold tab,
line feed and carriage return, and otherwise no Cc and no Cs. Every text is NFC, so that two
spellings that look the same are the same bytes. ``check_text`` enforces, after decoding, what
the patterns leave out: NFC, which no pattern can say; surrogates (a decoded UTF-8 text cannot
hold one, and UTF-8 regular-expression engines refuse them in a pattern); and the format
characters beyond the BMP, which regular-expression dialects spell differently. The patterns
are then plain ASCII and read the same in Python, ECMA-262, Java, .NET and Rust engines.

Patterns use ``\\A`` and ``\\Z``: msgspec matches with ``re.search``, and ``$`` would accept a
trailing newline. The schema generator writes them as ECMA-262 ``^`` and ``$`` (spec §7.2).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Final

import msgspec
import msgspec.inspect

# §7.2 Body limits, in characters (not bytes) for strings and items for lists.
MAX_NAME_LENGTH: Final = 100  # family and given names
MAX_SHORT_TEXT: Final = 200  # places, contacts, scopes, reasons for a flag
MAX_DESCRIPTION: Final = 1000  # short factual descriptions, decisions, actions, goals
MAX_NOTE: Final = 2000  # notes for a meeting
MAX_LIST_ITEMS: Final = 50  # decisions, actions, goals, notes, agenda items
MAX_MESSAGE_IDS: Final = 4096  # message ids in one deletion attestation

# §4.4 Format characters (general category Cf, Unicode 14.0), as inclusive code point ranges.
FORMAT_CHARACTER_RANGES: Final = (
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
# Cc (C0, DEL, C1), Cs (surrogates), Zl and Zp: as ranges, like the format characters.
CONTROL_RANGES: Final = ((0x00, 0x1F), (0x7F, 0x9F))
SURROGATE_RANGE: Final = (0xD800, 0xDFFF)
SEPARATOR_RANGE: Final = (0x2028, 0x2029)  # LINE SEPARATOR (Zl), PARAGRAPH SEPARATOR (Zp)


def _class_item(first: int, last: int) -> str:
    # \xHH and \uHHHH escapes read the same in every common regular-expression dialect.
    def one(code: int) -> str:
        return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"

    return one(first) if first == last else f"{one(first)}-{one(last)}"


def _excluding(ranges: tuple[tuple[int, int], ...]) -> str:
    return "\\A[^" + "".join(_class_item(a, b) for a, b in ranges) + "]*\\Z"


_BMP_FORMAT_RANGES: Final = tuple(r for r in FORMAT_CHARACTER_RANGES if r[1] <= 0xFFFF)
_ASTRAL_FORMAT_RANGES: Final = tuple(r for r in FORMAT_CHARACTER_RANGES if r[0] > 0xFFFF)
_SINGLE_LINE_EXCLUDED: Final = (*CONTROL_RANGES, SEPARATOR_RANGE, *_BMP_FORMAT_RANGES)
_MULTI_LINE_EXCLUDED: Final = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F))
SINGLE_LINE_PATTERN: Final = _excluding(_SINGLE_LINE_EXCLUDED)
MULTI_LINE_PATTERN: Final = _excluding(_MULTI_LINE_EXCLUDED)
# An address: single-line characters other than "@" and space, one "@" between two parts.
_EMAIL_PART = "[^@ " + "".join(_class_item(a, b) for a, b in _SINGLE_LINE_EXCLUDED) + "]"
_EMAIL = f"\\A{_EMAIL_PART}{{1,64}}@{_EMAIL_PART}{{1,189}}\\Z"
_SINGLE_LINE_RULE = "single-line text: NFC; no character of category Cc, Cf, Cs, Zl or Zp"
_MULTI_LINE_RULE = "multi-line text: NFC; no Cc other than tab, line feed and carriage return"
_SINGLE_LINE_PATTERNS: Final = frozenset({SINGLE_LINE_PATTERN, _EMAIL})

_IDENT = r"\A[a-z0-9][a-z0-9._-]{0,63}\Z"  # the ident grammar of spec §4.1
_ISO_DATE = r"\A(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])\Z"
_LOCAL_TIME = r"\A([01][0-9]|2[0-3]):[0-5][0-9]\Z"
_PHONE = r"\A\+?[0-9][0-9 ./()-]{5,31}\Z"


Ident = Annotated[str, msgspec.Meta(pattern=_IDENT)]
Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=SINGLE_LINE_PATTERN,
        description=_SINGLE_LINE_RULE,
    ),
]
ShortText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_SHORT_TEXT,
        pattern=SINGLE_LINE_PATTERN,
        description=_SINGLE_LINE_RULE,
    ),
]
Description = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_DESCRIPTION,
        pattern=MULTI_LINE_PATTERN,
        description=_MULTI_LINE_RULE,
    ),
]
Note = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=MAX_NOTE, pattern=MULTI_LINE_PATTERN, description=_MULTI_LINE_RULE
    ),
]
IsoDate = Annotated[str, msgspec.Meta(pattern=_ISO_DATE, description="a calendar date")]
LocalTime = Annotated[str, msgspec.Meta(pattern=_LOCAL_TIME)]  # HH:MM, Europe/Brussels
UnixTime = Annotated[int, msgspec.Meta(ge=0)]
Phone = Annotated[str, msgspec.Meta(pattern=_PHONE)]
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254, pattern=_EMAIL, description="e-mail address; " + _SINGLE_LINE_RULE
    ),
]
MessageIdHex = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]  # 16-byte message id
NonceHex = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{64}\Z")]  # 32 random bytes


def _in_ranges(text: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(first <= ord(c) <= last for c in text for first, last in ranges)


def check_text(field: str, value: object, *, single_line: bool) -> None:
    """Raise ValueError unless every text in ``value`` (a str, or a tuple of them) is NFC and
    holds no surrogate, nor (for a single-line text) a format character beyond the BMP.

    msgspec turns the ValueError into a ValidationError while decoding.
    """
    texts = value if isinstance(value, tuple) else (value,)
    for text in texts:
        if not isinstance(text, str) or text.isascii():
            continue
        if _in_ranges(text, (SURROGATE_RANGE,)):
            raise ValueError(f"{field} holds a surrogate code point")
        if single_line and _in_ranges(text, _ASTRAL_FORMAT_RANGES):
            raise ValueError(f"{field} holds a format character (category Cf)")
        if not unicodedata.is_normalized("NFC", text):
            raise ValueError(f"{field} is not in Unicode normalization form NFC")


def single_line_fields(struct_type: type[msgspec.Struct]) -> frozenset[str]:
    """The fields of ``struct_type`` that hold single-line texts (alone, optional or listed)."""
    found: set[str] = set()
    info = msgspec.inspect.type_info(struct_type)
    assert isinstance(info, msgspec.inspect.StructType)  # noqa: S101  (only Structs are asked)
    for field in info.fields:
        if any(_is_single_line(t) for t in _member_types(field.type)):
            found.add(field.name)
    return frozenset(found)


def _member_types(info: msgspec.inspect.Type) -> list[msgspec.inspect.Type]:
    if isinstance(info, msgspec.inspect.UnionType):
        return [m for t in info.types for m in _member_types(t)]
    if isinstance(info, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
        return _member_types(info.item_type)
    if isinstance(info, msgspec.inspect.Metadata):  # a description rides on the type
        return _member_types(info.type)
    return [info]


def _is_single_line(info: msgspec.inspect.Type) -> bool:
    return isinstance(info, msgspec.inspect.StrType) and info.pattern in _SINGLE_LINE_PATTERNS
