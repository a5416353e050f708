"""The canonical binary encoding every signed structure uses (spec §4.1).

Big-endian fixed-width integers, length-prefixed strings and byte strings, fixed field order, no
optional fields, no trailing bytes. Each value has exactly one encoding, so a parser that accepts
only the grammar below rejects every non-canonical form without re-encoding.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import struct
from collections.abc import Iterable

from .constants import MAX_ID_LENGTH
from .errors import Malformed, NonCanonical

# Identifiers: participant ids, roles, purposes, case and meeting references (spec §4.1).
IDENT_PATTERN = re.compile(rb"[a-z0-9][a-z0-9._-]{0,63}")

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def check_ident(value: str, what: str = "identifier") -> str:
    """Return ``value`` if it is a valid identifier; raise Malformed otherwise."""
    raw = value.encode("ascii", "replace")
    if IDENT_PATTERN.fullmatch(raw) is None:
        raise Malformed(f"{what} {value!r} is not 1-{MAX_ID_LENGTH} of [a-z0-9._-]")
    return value


class Writer:
    """Appends canonical fields to a growing byte string."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(bytes((value,)))
        return self

    def u16(self, value: int) -> Writer:
        self._parts.append(_U16.pack(value))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(_U32.pack(value))
        return self

    def u64(self, value: int) -> Writer:
        self._parts.append(_U64.pack(value))
        return self

    def fixed(self, value: bytes, size: int) -> Writer:
        if len(value) != size:
            raise ValueError(f"expected {size} bytes, got {len(value)}")
        self._parts.append(bytes(value))
        return self

    def ident(self, value: str) -> Writer:
        raw = check_ident(value).encode("ascii")
        return self.u8(len(raw)).raw(raw)

    def text(self, value: str, max_bytes: int) -> Writer:
        raw = value.encode("utf-8")
        if len(raw) > max_bytes:
            raise ValueError(f"text longer than {max_bytes} bytes")
        return self.u16(len(raw)).raw(raw)

    def opaque16(self, value: bytes) -> Writer:
        return self.u16(len(value)).raw(value)

    def idents(self, values: Iterable[str], max_count: int) -> Writer:
        """A set of identifiers: count, then strictly ascending (sorted, no duplicates)."""
        items = sorted(set(values))
        if len(items) > max_count:
            raise ValueError(f"more than {max_count} identifiers")
        self.u8(len(items))
        for item in items:
            self.ident(item)
        return self

    def raw(self, value: bytes) -> Writer:
        self._parts.append(bytes(value))
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads canonical fields; every deviation from the grammar raises Malformed/NonCanonical."""

    def __init__(self, data: bytes, what: str = "structure") -> None:
        # Fields are sliced from bytes (no copy when ``data`` is bytes already) and integers
        # unpacked in place: the hub parses every envelope header with this, field by field.
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def position(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _advance(self, size: int) -> int:
        """Move past ``size`` bytes; return where they start."""
        start = self._pos
        if size < 0 or start + size > len(self._data):
            raise Malformed(f"{self._what}: truncated at byte {start} (wanted {size})")
        self._pos = start + size
        return start

    def take(self, size: int) -> bytes:
        start = self._advance(size)
        return self._data[start : start + size]

    def u8(self) -> int:
        return self._data[self._advance(1)]

    def u16(self) -> int:
        value: int = _U16.unpack_from(self._data, self._advance(2))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack_from(self._data, self._advance(4))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack_from(self._data, self._advance(8))[0]
        return value

    def fixed(self, size: int) -> bytes:
        return self.take(size)

    def ident(self, what: str = "identifier") -> str:
        size = self.u8()
        raw = self.take(size)
        if IDENT_PATTERN.fullmatch(raw) is None:
            raise Malformed(f"{self._what}: {what} is not a valid identifier")
        return raw.decode("ascii")

    def text(self, max_bytes: int) -> str:
        size = self.u16()
        if size > max_bytes:
            raise Malformed(f"{self._what}: text longer than {max_bytes} bytes")
        try:
            return self.take(size).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Malformed(f"{self._what}: text is not UTF-8") from exc

    def opaque16(self) -> bytes:
        return self.take(self.u16())

    def idents(self, max_count: int, what: str = "identifier list") -> tuple[str, ...]:
        count = self.u8()
        if count > max_count:
            raise Malformed(f"{self._what}: {what} has {count} entries (max {max_count})")
        items = tuple(self.ident(what) for _ in range(count))
        if any(a >= b for a, b in itertools.pairwise(items)):
            raise NonCanonical(f"{self._what}: {what} is not strictly ascending")
        return items

    def finish(self) -> None:
        """Require that every byte was consumed."""
        if self._pos != len(self._data):
            raise Malformed(f"{self._what}: {len(self._data) - self._pos} trailing bytes")


def b64(data: bytes) -> str:
    """Base64url without padding: the text form of keys and signatures (spec §4.2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str, what: str = "base64 value") -> bytes:
    """Decode base64url without padding, rejecting any other spelling of the same bytes."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise Malformed(f"{what}: not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Malformed(f"{what}: not unpadded base64url") from exc
    if b64(data) != text:
        raise NonCanonical(f"{what}: non-canonical base64url")
    return data
