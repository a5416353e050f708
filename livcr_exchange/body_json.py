"""Structural checks on a body's JSON text before it is decoded: depth and duplicate keys (§7.2).

Two parsers must never read one signed body differently. JSON parsers disagree on duplicate
object keys (first wins, last wins, error), so a body with a duplicate key is refused. A body
nested deeper than ``MAX_BODY_DEPTH`` is refused before any recursive decoder sees it.

The scan is one pass over the bytes: a regular expression finds each string (with the colon that
makes it an object key) and each bracket; everything else (numbers, literals, commas) is left to
the strict decoder that runs next. In valid JSON a string never contains a raw control character
or an unescaped quote, so the scan tracks strings exactly; on invalid JSON it may read garbage,
but it then either refuses or leaves the refusal to the decoder.
"""

from __future__ import annotations

import json
import re
from typing import Final

from .errors import BodySchemaViolation

MAX_BODY_DEPTH: Final = 16  # nested objects and arrays; every schema of §7.2 needs at most 3

# A JSON string (unrolled: no backtracking), optionally followed by the colon of an object key;
# or one bracket.
_TOKEN: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(?P<colon>[ \t\r\n]*:)?|[\[\]{}]', re.DOTALL)
_OPENERS: Final = frozenset(b"[{")


def check_structure(data: bytes) -> None:
    """Refuse a JSON text nested too deeply or with a duplicate key in any object.

    Keys are compared after unescaping, so ``"a"`` and ``"\\u0061"`` are the same key.

    Raises:
        BodySchemaViolation: nesting beyond MAX_BODY_DEPTH, a duplicate key, or a key that is
            not a valid JSON string.
    """
    # One entry per open bracket: the keys seen so far for an object, None for an array.
    open_keys: list[set[str] | None] = []
    for token in _TOKEN.finditer(data):
        first = token.group()[0]
        if first in _OPENERS:
            if len(open_keys) >= MAX_BODY_DEPTH:
                raise BodySchemaViolation(f"body nested deeper than {MAX_BODY_DEPTH} levels")
            open_keys.append(set() if first == ord("{") else None)
        elif first != ord('"'):
            if open_keys:  # an unbalanced closer is left to the decoder
                open_keys.pop()
        elif token["colon"] is not None and open_keys and open_keys[-1] is not None:
            _remember_key(open_keys[-1], data[token.start() : token.start("colon")])


def _remember_key(seen: set[str], raw: bytes) -> None:
    try:
        # Without a backslash the key is its bytes; only escapes need the JSON decoder.
        key = raw[1:-1].decode("utf-8") if b"\\" not in raw else json.loads(raw)
    except ValueError as exc:  # bad UTF-8 or a bad escape
        raise BodySchemaViolation("body has an object key that is not a JSON string") from exc
    if key in seen:
        raise BodySchemaViolation(f"body repeats the key {key!r} in one object")
    seen.add(key)
